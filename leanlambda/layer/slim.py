"""Remove what a layer cannot need at run time, without touching anything an import reads.

Each rule is a category of file that only serves building, testing or type checking: packages' own test
suites, bytecode (compiled by the build machine's Python, and regenerated in memory on Lambda anyway),
type stubs, C/Cython sources and headers, installer bookkeeping in .dist-info (METADATA, WHEEL, entry
points and licences stay: importlib.metadata and the licence terms need them), console scripts (their
shebang points at the build machine), the symbol tables of shared libraries, and a short list of known
test-only or build-only parts of packages (numpy's _simd test bindings alone are 3 MB). The import proof
and the layer's smoke statements check the result.

A test package is not removed whole when a runtime module imports from it: numpy.testing imports
numpy._core.tests._natype, so that module (and the package __init__ files above it) stays, and with it
`import numpy.testing` and `from numpy import *` (numpy's __all__ names "testing").

Stripping (`strip --strip-unneeded`: .symtab, .strtab and debug sections, which the dynamic loader never
reads; .dynsym stays) is only kept when the loader would see exactly the same thing: the same program
headers and, byte for byte, the same contents of every loaded segment. auditwheel rewrites vendored
libraries with patchelf, and `strip` re-lays such a file (it truncates segments no section maps to), so
that the loader refuses it ("ELF load command address/offset not page-aligned"), which is what happened
to numpy's OpenBLAS; such files keep the bytes the wheel shipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

from leanlambda.imports import is_package, module_name, parse_imports
from leanlambda.layer.elf import is_elf, loaded_image
from leanlambda.minify import empty_docstrings

TEST_DIRS = frozenset({"tests"})  # anywhere, top level too: pyupbit ships a top-level `tests` package
BYTECODE_DIRS = frozenset({"__pycache__"})
BYTECODE_SUFFIXES = (".pyc", ".pyo")
STUB_SUFFIXES = (".pyi",)
STUB_PACKAGE_SUFFIX = "-stubs"  # PEP 561 stub-only packages: never importable
SOURCE_SUFFIXES = (".pyx", ".pxd", ".pxi", ".c", ".cc", ".cpp", ".h", ".hpp")
DIST_INFO_NOISE = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
ARCHIVE_SUFFIXES = (".a",)  # static libraries: only a C build links them
BUILD_ONLY_FILES = frozenset({"conftest.py"})  # pytest configuration
SCRIPTS_DIR = "bin"
# Parts of packages that only their own test suites or C builds use; no runtime module imports them.
# Deliberately absent: numpy/f2py and numpy/testing (numpy's __all__ names both, so `from numpy import *`
# imports them) and numpy/typing (pandas imports it at run time).
KNOWN_TEST_ONLY = (
    "numpy/_core/_simd.*.so",
    "numpy/_core/_multiarray_tests.*.so",
    "numpy/_core/_umath_tests.*.so",
    "numpy/_core/_rational_tests.*.so",
    "numpy/_core/_struct_ufunc_tests.*.so",
    "numpy/_core/_operand_flag_tests.*.so",
    "numpy/_pyinstaller",  # PyInstaller's hook, found through an entry point by PyInstaller only
    "numpy/distutils",  # deprecated build tooling, not in numpy's __all__, gone for Python 3.12+
    "numpy/random/_examples",
)
STRIP_ARGS = ("--strip-unneeded",)
STRIP_TIMEOUT_S = 120


def _tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _remove(path: Path, category: str, saved: Counter[str]) -> None:
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
    if name.endswith(SOURCE_SUFFIXES) or name.endswith(ARCHIVE_SUFFIXES):
        return "C/Cython sources"
    if name in BUILD_ONLY_FILES:
        return "test suites"
    if path.parent.name.endswith(".dist-info") and name in DIST_INFO_NOISE:
        return "install records"
    return None


def strip_symbol_tables(path: Path, strip: str) -> int:
    """strip --strip-unneeded a copy; keep it only if smaller and the loader would see exactly the same
    image (loaded_image). Returns bytes saved (0 if kept as shipped)."""
    before = path.stat().st_size
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / path.name
        shutil.copy2(path, copy)
        try:
            done = subprocess.run(
                [strip, *STRIP_ARGS, str(copy)], capture_output=True, timeout=STRIP_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return 0
        after = copy.stat().st_size
        if done.returncode != 0 or after >= before:
            return 0  # e.g. a foreign architecture the host's strip cannot read, or nothing to strip
        original = loaded_image(path)
        if original is None or loaded_image(copy) != original:
            return 0  # strip re-laid what the loader maps: keep the library as the wheel shipped it
        shutil.copyfile(copy, path)
    return before - after


def _test_modules_in_use(site: Path, test_dirs: list[Path]) -> set[Path]:
    """Files inside test packages that runtime modules import (and the __init__.py files on their way),
    found by reading the import statements of every .py file that stays."""
    if not test_dirs:
        return set()
    by_name = {module_name(directory.relative_to(site)): directory for directory in test_dirs}
    tokens = {name.rpartition(".")[2] for name in by_name}  # cheap text filter before parsing
    inside = tuple(str(directory) + os.sep for directory in test_dirs)
    queue = [
        path
        for path in site.rglob("*.py")
        if not str(path).startswith(inside) and path.name not in BUILD_ONLY_FILES
    ]
    keep: set[Path] = set()
    seen: set[Path] = set()
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        in_test_dir = str(path).startswith(inside)  # a kept test module: relative imports name no test dir
        if not in_test_dir and not any(token.encode() in path.read_bytes() for token in tokens):
            continue
        relative = path.relative_to(site)
        imported = parse_imports(path.read_bytes(), module_name(relative), is_package(relative), str(path))
        for name in imported:
            for test_name, directory in by_name.items():
                if name != test_name and not name.startswith(test_name + "."):
                    continue
                inside_test = name[len(test_name) :].lstrip(".").split(".") if name != test_name else []
                current = directory
                wanted = [current / "__init__.py"]
                for part in inside_test:
                    current = current / part
                    wanted.append(current / "__init__.py")
                wanted.append(current.with_suffix(".py"))
                for candidate in wanted:
                    if candidate.is_file() and candidate not in keep:
                        keep.add(candidate)
                        queue.append(candidate)  # what a kept test module imports stays too
    return keep


def _remove_test_dir(directory: Path, keep: set[Path], saved: Counter[str]) -> None:
    """Remove a test package, except the files in `keep` that runtime modules import."""
    kept_here = {path for path in keep if directory in path.parents}
    if not kept_here:
        _remove(directory, "test suites", saved)
        return
    for root, dirs, files in os.walk(directory, topdown=False):
        root_path = Path(root)
        for name in files:
            path = root_path / name
            if path not in kept_here:
                _remove(path, "test suites", saved)
        for name in dirs:
            child = root_path / name
            if child.is_dir() and not any(child.iterdir()):
                child.rmdir()


def empty_docstrings_in(site: Path, keep: tuple[str, ...] = ()) -> int:
    """Empty the docstrings of every module under site except the packages in keep; bytes saved."""
    saved = 0
    for path in sorted(site.rglob("*.py")):
        if path.relative_to(site).parts[0].removesuffix(".py") in keep or path.is_symlink():
            continue
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        emptied = empty_docstrings(source)
        if emptied != source:
            path.write_text(emptied, encoding="utf-8")
            saved += len(source.encode("utf-8")) - len(emptied.encode("utf-8"))
    return saved


def slim(
    site: Path,
    strip_symbols: bool = True,
    strip_docstrings: bool = False,
    keep_docstrings: tuple[str, ...] = (),
) -> dict[str, int]:
    """Slim the layer's python/ directory in place; return bytes saved per category."""
    saved: Counter[str] = Counter()
    scripts = site / SCRIPTS_DIR
    if scripts.is_dir() and not (scripts / "__init__.py").exists():
        _remove(scripts, "console scripts", saved)
    for pattern in KNOWN_TEST_ONLY:
        for path in sorted(site.glob(pattern)):
            _remove(path, "test-only modules", saved)
    test_dirs = []
    for root, dirs, _files in os.walk(site):
        for name in list(dirs):
            if name in TEST_DIRS:
                test_dirs.append(Path(root) / name)
                dirs.remove(name)
    keep = _test_modules_in_use(site, test_dirs)
    for directory in test_dirs:
        _remove_test_dir(directory, keep, saved)
    shared_objects = []
    for root, dirs, files in os.walk(site):
        root_path = Path(root)
        for name in list(dirs):
            if name in BYTECODE_DIRS:
                _remove(root_path / name, "bytecode", saved)
                dirs.remove(name)
            elif name.endswith(STUB_PACKAGE_SUFFIX) and root_path == site:
                _remove(root_path / name, "type stubs", saved)
                dirs.remove(name)
        for name in files:
            path = root_path / name
            if path.is_symlink():
                continue
            category = None if path in keep else _file_category(path)
            if category:
                _remove(path, category, saved)
            elif ".so" in name and is_elf(path):
                shared_objects.append(path)
    if strip_docstrings:
        saved["docstrings"] += empty_docstrings_in(site, keep_docstrings)
    strip = shutil.which("strip") if strip_symbols else None
    if strip:
        for path in sorted(shared_objects):
            saved["symbol tables"] += strip_symbol_tables(path, strip)
    _remove_empty_dirs(site)
    return {category: size for category, size in sorted(saved.items()) if size}


def _remove_empty_dirs(site: Path) -> None:
    for root, _dirs, _files in os.walk(site, topdown=False):
        path = Path(root)
        if path != site and not any(path.iterdir()):
            path.rmdir()
