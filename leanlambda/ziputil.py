"""Deterministic zip archives: the same files give the same bytes, so a sha256 names a build.

Lambda only sees the archive, so anything that varies between two builds of the same inputs (file order,
timestamps, the builder's umask, stale bytecode) would make hashes useless for caching and review.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from pathlib import Path

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
FILE_MODE = 0o644
DIR_MODE = 0o755
COMPRESS_LEVEL = 9
UNIX_SYSTEM = 3  # "made by" Unix, so the permission bits in external_attr are honoured
SKIPPED_DIRS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc",)
HASH_CHUNK = 1 << 20


def _entries(src_dir: Path, keep_bytecode: bool = False) -> list[tuple[str, Path | None]]:
    """All (arcname, path) pairs under src_dir, directories with a trailing slash and path None."""
    entries: list[tuple[str, Path | None]] = []
    for root, dirs, files in os.walk(src_dir, followlinks=False):
        dirs[:] = [name for name in dirs if keep_bytecode or name not in SKIPPED_DIRS]
        rel_root = Path(root).relative_to(src_dir)
        for name in dirs:
            entries.append(((rel_root / name).as_posix() + "/", None))
        for name in files:
            if name.endswith(SKIPPED_SUFFIXES) and not keep_bytecode:
                continue
            entries.append(((rel_root / name).as_posix(), Path(root) / name))
    return sorted(entries)


def _info(arcname: str, mode: int, is_dir: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=FIXED_DATE_TIME)
    info.create_system = UNIX_SYSTEM
    kind = stat.S_IFDIR if is_dir else stat.S_IFREG
    info.external_attr = ((kind | mode) << 16) | (0x10 if is_dir else 0)
    info.compress_type = zipfile.ZIP_STORED if is_dir else zipfile.ZIP_DEFLATED
    return info


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_deterministic_zip(
    src_dir: Path,
    out_path: Path,
    arcname_prefix: str = "",
    include_dirs: bool = True,
    keep_bytecode: bool = False,
) -> tuple[int, str]:
    """Zip everything under src_dir (minus bytecode) into out_path; return (size in bytes, sha256 hex).

    Entries are sorted, dated 1980-01-01, 0o644 files / 0o755 dirs, deflate level 9. arcname_prefix
    (e.g. "python/") is put in front of every name. Without include_dirs, directories are implied by
    the files' paths (unzip and Lambda create them), which saves ~90 bytes each in a few-KB package.
    Bytecode is left out unless keep_bytecode (a package built with --bytecode for its runtime).
    The archive is written beside out_path and renamed into place, so a failure never leaves a
    half-written zip under the final name.
    """
    src_dir, out_path = Path(src_dir), Path(out_path)
    if not src_dir.is_dir():
        raise NotADirectoryError(f"not a directory: {src_dir}")
    prefix = arcname_prefix.strip("/")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(f".{out_path.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            if prefix:
                parts = prefix.split("/")
                for depth in range(1, len(parts) + 1):
                    archive.writestr(_info("/".join(parts[:depth]) + "/", DIR_MODE, True), b"")
            for arcname, path in _entries(src_dir, keep_bytecode):
                name = f"{prefix}/{arcname}" if prefix else arcname
                if path is None:
                    if include_dirs:
                        archive.writestr(_info(name, DIR_MODE, True), b"")
                else:
                    archive.writestr(
                        _info(name, FILE_MODE, False), path.read_bytes(), compresslevel=COMPRESS_LEVEL
                    )
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return out_path.stat().st_size, sha256_of(out_path)
