"""Build a function's deployment zip: the contents of src/ alone, byte-for-byte reproducible.

The source is staged first so that tests, caches and editor litter that happen to sit under src/
never ship, whatever the deterministic zip writer itself skips; source_tree decides what of src/
is read (never anything outside it).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from leanlambda.bytecode import FUNCTION_ROOT, compile_tree
from leanlambda.errors import UsageError
from leanlambda.function import FunctionDir
from leanlambda.limits import FUNCTION_NAME_PATTERN
from leanlambda.minify import READS_ANNOTATIONS, READS_DOCSTRINGS, minify, readers_named
from leanlambda.source_tree import collect, read_python
from leanlambda.ziputil import write_deterministic_zip

PACKAGE_BUDGET_KB = 10  # the deployment zip of a lean function, source only
# With bytecode the zip holds each module twice (minified source for tracebacks, and its .pyc): the
# default bake is about 23 KB and the full-options bake about 33 KB, so 64 KB leaves room for steps.
BYTECODE_BUDGET_KB = 64
BUILD_DIR = "build"
FUNCTION_NAME_RE = re.compile(FUNCTION_NAME_PATTERN)


@dataclass(frozen=True)
class PackageResult:
    path: Path
    size: int
    sha256: str
    notes: tuple[str, ...] = ()
    """One line per file left alone or left out, and why (the package command prints them)."""

    @property
    def kb(self) -> float:
        return self.size / 1024


def stage_source(src: Path, dest: Path, strip_docs: bool = True) -> Path:
    """Copy what ships (src/ minus tests, caches and bytecode) to dest: the zip's contents.

    Docstrings, comments, (where nothing reads them) annotations, and the spaces and indent
    widths the parser ignores are stripped from the copies, line numbers kept: they serve readers
    of the repository, not the runtime, and are most of a lean function's bytes.
    """
    return stage_source_with_notes(src, dest, strip_docs)[0]


def stage_source_with_notes(src: Path, dest: Path, strip_docs: bool = True) -> tuple[Path, list[str]]:
    """stage_source, plus what was left alone or out and why (source_tree and minify decide)."""
    tree = collect(src)
    notes = [f"left out src/{path}: test code that nothing shipped imports" for path in tree.left_out]
    texts = {}
    for item in tree.files:
        target = dest / item.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        read = read_python(item.path) if item.relative.suffix == ".py" and strip_docs else None
        if read is None:
            if item.relative.suffix == ".py" and strip_docs:
                notes.append(f"left alone src/{item.relative}: does not decode as its declared encoding")
            shutil.copyfile(item.path, target)
        else:
            texts[item.relative] = read
    sources = {str(relative): text for relative, (text, _) in texts.items()}
    annotations = readers_named(sources, READS_ANNOTATIONS)
    docstrings = readers_named(sources, READS_DOCSTRINGS)
    for kind, readers in (("annotations", annotations), ("docstrings", docstrings)):
        for where, reader in readers.items():
            notes.append(
                f"left alone: {kind} in every module (src/{where} names {reader!r}, which may read them)"
            )
    for relative, (text, encoding) in texts.items():
        shipped = minify(text, keep_annotations=bool(annotations), keep_docstrings=bool(docstrings))
        (dest / relative).write_bytes(shipped.encode(encoding))
    return dest, notes


def safe_zip_name(name: str) -> str:
    """``<name>.zip`` when name is a Lambda function name, so it cannot point outside the output folder."""
    if not FUNCTION_NAME_RE.fullmatch(name):
        raise UsageError(
            f"function name {name[:60]!r} cannot name the zip: use 1-64 letters, digits, '-' and '_'"
        )
    return f"{name}.zip"


def default_output(function: FunctionDir) -> Path:
    return function.root / BUILD_DIR / safe_zip_name(function.name)


def build_package(
    function: FunctionDir, out_path: Path | None = None, bytecode: bool = False
) -> PackageResult:
    """Zip src/ (its contents at the archive root) into out_path; return path, size and sha256."""
    safe_zip_name(function.name)
    out_path = Path(out_path) if out_path is not None else default_output(function)
    with tempfile.TemporaryDirectory(prefix="leanlambda-pkg-") as staging:
        stage, notes = stage_source_with_notes(function.src, Path(staging) / "src")
        if bytecode:
            compile_tree(stage, function.runtime.removeprefix("python"), FUNCTION_ROOT)
        size, digest = write_deterministic_zip(stage, out_path, include_dirs=False, keep_bytecode=bytecode)
    return PackageResult(path=out_path, size=size, sha256=digest, notes=tuple(notes))


def budget_kb(bytecode: bool) -> float:
    """The package budget: its own for a bytecode build, which ships every module twice."""
    return BYTECODE_BUDGET_KB if bytecode else PACKAGE_BUDGET_KB


def write_artifacts(function: FunctionDir, directory: Path, bytecode: bool = False) -> PackageResult:
    """Write exactly the files of the package zip into ``directory`` (new or empty), for a builder
    such as ``sam build`` that zips a folder itself; returns the zip's path, size and sha256.

    The zip is built first and then extracted, so the folder holds the zip's files byte for byte,
    and a failed build leaves the folder as it was.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(f"--artifacts-dir must be a new or empty folder: {directory}")
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="leanlambda-artifacts-", dir=directory.parent) as scratch:
        result = build_package(function, Path(scratch) / safe_zip_name(function.name), bytecode=bytecode)
        unpacked = Path(scratch) / "files"
        with zipfile.ZipFile(result.path) as archive:
            archive.extractall(unpacked)
        for entry in sorted(unpacked.iterdir()):
            entry.rename(directory / entry.name)
        return PackageResult(path=directory, size=result.size, sha256=result.sha256, notes=result.notes)
