"""Build a function's deployment zip: the contents of src/ alone, byte-for-byte reproducible.

The source is staged first so that tests, caches and editor litter that happen to sit under src/
never ship, whatever the deterministic zip writer itself skips.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from leanlambda.bytecode import FUNCTION_ROOT, compile_tree
from leanlambda.function import FunctionDir
from leanlambda.minify import minify
from leanlambda.ziputil import write_deterministic_zip

PACKAGE_BUDGET_KB = 10  # DESIGN section 4: the deployment zip of a lean function
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
