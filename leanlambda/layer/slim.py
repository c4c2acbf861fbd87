"""Remove what a layer cannot need at run time, without touching anything an import reads.

Each rule is a category of file that only serves building, testing or type checking: packages' own test
suites, bytecode (compiled by the build machine's Python, and regenerated in memory on Lambda anyway),
type stubs, C/Cython sources and headers, installer bookkeeping in .dist-info (METADATA, entry points and
licences stay: importlib.metadata and the licence terms need them), console scripts (their shebang points
at the build machine), debug symbols of shared libraries, and a short list of known test-only or
build-only parts of packages (numpy's _simd test bindings alone are 3 MB). The import proof checks the
result.

Stripping is only kept when the library's loadable segments are unchanged: auditwheel rewrites vendored
libraries with patchelf, and `strip` can re-lay such a file so that the dynamic loader refuses it
("ELF load command address/offset not page-aligned"), which is what happened to numpy's OpenBLAS.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

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
KNOWN_TEST_ONLY = (
    "numpy/_core/_simd.*.so",
    "numpy/_core/_multiarray_tests.*.so",
    "numpy/_core/_umath_tests.*.so",
    "numpy/_core/_rational_tests.*.so",
    "numpy/_core/_struct_ufunc_tests.*.so",
    "numpy/_core/_operand_flag_tests.*.so",
    "numpy/_pyinstaller",
    "numpy/distutils",  # deprecated build tooling, gone from numpy for Python 3.12+
    "numpy/random/_examples",
)
ELF_MAGIC = b"\x7fELF"
PT_LOAD = 1
# (e_phoff, e_phentsize, e_phnum) header formats and the program header layout, per ELF class.
_ELF_HEADER = {1: ("I", 28, 42), 2: ("Q", 32, 54)}
_PHDR = {1: "IIIIIIII", 2: "IIQQQQQQ"}
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
    if name.endswith(SOURCE_SUFFIXES) or name.endswith(ARCHIVE_SUFFIXES):
        return "C/Cython sources"
    if name in BUILD_ONLY_FILES:
        return "test suites"
    if path.parent.name.endswith(".dist-info") and name in DIST_INFO_NOISE:
        return "install records"
    return None


def _is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == ELF_MAGIC


def load_segments(path: Path) -> list[tuple[int, ...]] | None:
    """(offset, vaddr, filesz, memsz, align) of each PT_LOAD segment, or None if not a readable ELF."""
    data = path.read_bytes()
    if len(data) < 64 or data[:4] != ELF_MAGIC or data[4] not in _ELF_HEADER or data[5] not in (1, 2):
        return None
    elf_class, order = data[4], "<" if data[5] == 1 else ">"
    offset_format, offset_at, entsize_at = _ELF_HEADER[elf_class]
    (phoff,) = struct.unpack_from(order + offset_format, data, offset_at)
    phentsize, phnum = struct.unpack_from(order + "HH", data, entsize_at)
    segments = []
    for index in range(phnum):
        start = phoff + index * phentsize
        if start + struct.calcsize(order + _PHDR[elf_class]) > len(data):
            return None
        fields = struct.unpack_from(order + _PHDR[elf_class], data, start)
        if elf_class == 2:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, p_align = fields
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _flags, p_align = fields
        if p_type == PT_LOAD:
            segments.append((p_offset, p_vaddr, p_filesz, p_memsz, p_align))
    return segments


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
        original = load_segments(path)
        if original is None or load_segments(copy) != original:
            return 0  # strip moved what the loader maps: keep the library as the wheel shipped it
        shutil.copyfile(copy, path)
    return before - after


def slim(site: Path, strip_symbols: bool = True) -> dict[str, int]:
    """Slim the layer's python/ directory in place; return bytes saved per category."""
    saved: Counter = Counter()
    scripts = site / SCRIPTS_DIR
    if scripts.is_dir() and not (scripts / "__init__.py").exists():
        _remove(scripts, "console scripts", saved)
    for pattern in KNOWN_TEST_ONLY:
        for path in sorted(site.glob(pattern)):
            _remove(path, "test-only modules", saved)
    shared_objects = []
    for root, dirs, files in os.walk(site):
        root_path = Path(root)
        for name in list(dirs):
            if name in TEST_DIRS:
                _remove(root_path / name, "test suites", saved)
                dirs.remove(name)
            elif name in BYTECODE_DIRS:
                _remove(root_path / name, "bytecode", saved)
                dirs.remove(name)
            elif name.endswith(STUB_PACKAGE_SUFFIX) and root_path == site:
                _remove(root_path / name, "type stubs", saved)
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
    _remove_empty_dirs(site)
    return {category: size for category, size in sorted(saved.items()) if size}


def _remove_empty_dirs(site: Path) -> None:
    for root, _dirs, _files in os.walk(site, topdown=False):
        path = Path(root)
        if path != site and not any(path.iterdir()):
            path.rmdir()
