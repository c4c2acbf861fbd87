"""Build a function's deployment zip: the contents of src/ alone, byte-for-byte reproducible.

The source is staged first so that tests, caches and editor litter that happen to sit under src/
never ship, whatever the deterministic zip writer itself skips.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from leanlambda.bytecode import FUNCTION_ROOT, compile_tree
from leanlambda.errors import UsageError
from leanlambda.function import FunctionDir
from leanlambda.minify import minify
from leanlambda.ziputil import write_deterministic_zip

PACKAGE_BUDGET_KB = 10  # the deployment zip of a lean function, source only
# With bytecode the zip holds each module twice (minified source for tracebacks, and its .pyc): the
# default bake is about 23 KB and the full-options bake about 33 KB, so 64 KB leaves room for steps.
BYTECODE_BUDGET_KB = 64
BUILD_DIR = "build"
EXCLUDED_DIRS = frozenset({"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".dist-info.tmp")
EXCLUDED_NAMES = frozenset({"conftest.py", ".DS_Store"})


@dataclass(frozen=True)
class PackageResult:
    path: Path
    size: int
    sha256: str

    @property
    def kb(self) -> float:
        return self.size / 1024


def _ignore(directory: str, names: list[str]) -> set[str]:
    ignored = set()
    for name in names:
        is_dir = (Path(directory) / name).is_dir()
        if (
            (is_dir and name in EXCLUDED_DIRS)
            or name in EXCLUDED_NAMES
            or name.endswith(EXCLUDED_SUFFIXES)
            or (not is_dir and name.startswith("test_") and name.endswith(".py"))
        ):
            ignored.add(name)
    return ignored


def stage_source(src: Path, dest: Path, strip_docs: bool = True) -> Path:
    """Copy what ships (src/ minus tests, caches and bytecode) to dest: the zip's contents.

    Docstrings, comments, (where nothing reads them) annotations, and the spaces and indent
    widths the parser ignores are stripped from the copies, line numbers kept: they serve readers
    of the repository, not the runtime, and are most of a lean function's bytes.
    """
    shutil.copytree(src, dest, ignore=_ignore, symlinks=False)
    if strip_docs:
        for module in sorted(dest.rglob("*.py")):
            source = module.read_text(encoding="utf-8")
            module.write_text(minify(source), encoding="utf-8")
    return dest


def default_output(function: FunctionDir) -> Path:
    return function.root / BUILD_DIR / f"{function.name}.zip"


def build_package(
    function: FunctionDir, out_path: Path | None = None, bytecode: bool = False
) -> PackageResult:
    """Zip src/ (its contents at the archive root) into out_path; return path, size and sha256."""
    out_path = Path(out_path) if out_path is not None else default_output(function)
    with tempfile.TemporaryDirectory(prefix="leanlambda-pkg-") as staging:
        stage = stage_source(function.src, Path(staging) / "src")
        if bytecode:
            compile_tree(stage, function.runtime.removeprefix("python"), FUNCTION_ROOT)
        size, digest = write_deterministic_zip(stage, out_path, include_dirs=False, keep_bytecode=bytecode)
    return PackageResult(path=out_path, size=size, sha256=digest)


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
        result = build_package(function, Path(scratch) / f"{function.name}.zip", bytecode=bytecode)
        unpacked = Path(scratch) / "files"
        with zipfile.ZipFile(result.path) as archive:
            archive.extractall(unpacked)
        for entry in sorted(unpacked.iterdir()):
            entry.rename(directory / entry.name)
        return PackageResult(path=directory, size=result.size, sha256=result.sha256)
