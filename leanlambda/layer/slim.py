"""Remove what a layer cannot need at run time, without touching anything an import reads.

Each rule is a category of file that only serves building, testing or type checking: packages' own test
suites, bytecode (compiled by the build machine's Python, and regenerated in memory on Lambda anyway),
type stubs, C/Cython sources and headers, installer bookkeeping in .dist-info (METADATA, entry points and
licences stay: importlib.metadata and the licence terms need them), console scripts (their shebang points
at the build machine), and debug symbols of shared libraries. The import proof checks the result.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

TEST_DIRS = frozenset({"tests"})
BYTECODE_DIRS = frozenset({"__pycache__"})
BYTECODE_SUFFIXES = (".pyc", ".pyo")
STUB_SUFFIXES = (".pyi",)
SOURCE_SUFFIXES = (".pyx", ".pxd", ".pxi", ".c", ".cc", ".cpp", ".h", ".hpp")
DIST_INFO_NOISE = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
SCRIPTS_DIR = "bin"
ELF_MAGIC = b"\x7fELF"
STRIP_TIMEOUT_S = 120


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _remove(path: Path, category: str, saved: Counter) -> None:
    saved[category] += _tree_size(path)
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _file_category(path: Path) -> str | None:
    name = path.name
    if name.endswith(BYTECODE_SUFFIXES):
        return "bytecode"
    if name.endswith(STUB_SUFFIXES):
        return "type stubs"
    if name.endswith(SOURCE_SUFFIXES):
        return "C/Cython sources"
    if path.parent.name.endswith(".dist-info") and name in DIST_INFO_NOISE:
        return "install records"
    return None


def _is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == ELF_MAGIC


def strip_debug(path: Path, strip: str) -> int:
    """strip --strip-debug a copy; keep it only if smaller. Returns bytes saved (0 if strip failed)."""
    before = path.stat().st_size
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / path.name
        shutil.copy2(path, copy)
        try:
            done = subprocess.run([strip, "--strip-debug", str(copy)], capture_output=True,
                                  timeout=STRIP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return 0
        after = copy.stat().st_size
        if done.returncode != 0 or after >= before:
            return 0  # e.g. a foreign architecture the host's strip cannot read
        shutil.copyfile(copy, path)
    return before - after


def slim(site: Path, strip_symbols: bool = True) -> dict[str, int]:
    """Slim the layer's python/ directory in place; return bytes saved per category."""
    saved: Counter = Counter()
    scripts = site / SCRIPTS_DIR
    if scripts.is_dir() and not (scripts / "__init__.py").exists():
        _remove(scripts, "console scripts", saved)
    shared_objects = []
    for root, dirs, files in os.walk(site):
        root_path = Path(root)
        for name in list(dirs):
            if name in TEST_DIRS and root_path != site:
                _remove(root_path / name, "test suites", saved)
                dirs.remove(name)
            elif name in BYTECODE_DIRS:
                _remove(root_path / name, "bytecode", saved)
                dirs.remove(name)
        for name in files:
            path = root_path / name
            if path.is_symlink():
                continue
            category = _file_category(path)
            if category:
                _remove(path, category, saved)
            elif ".so" in name and _is_elf(path):
                shared_objects.append(path)
    strip = shutil.which("strip") if strip_symbols else None
    if strip:
        for path in sorted(shared_objects):
            saved["debug symbols"] += strip_debug(path, strip)
    return {category: size for category, size in sorted(saved.items()) if size}
