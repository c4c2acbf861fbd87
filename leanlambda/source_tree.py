"""What of src/ ships, read safely: nothing outside src/, nothing a shipped module imports left out.

A function folder may come from anyone (a pull request, a template): a symbolic link in src/ to
``/etc/passwd`` or to ``~/.aws`` must not put that file in a zip that is then uploaded. Links are
followed only when they resolve inside src/; any other link, a dangling one, a link cycle or a
special file (a FIFO would block the build) is a one-line error naming the file.

Test code under src/ (``test_*.py``, ``conftest.py``, ``test``/``tests`` folders) is left out, except
a module that shipped code imports: leaving that out would fail only on Lambda.
"""

from __future__ import annotations

import os
import stat
import tokenize
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from leanlambda.errors import UsageError
from leanlambda.imports import is_importable, is_package, module_name, parse_imports

CACHE_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
TEST_DIRS = frozenset({"tests", "test"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".egg-info", ".dist-info.tmp")
EXCLUDED_NAMES = frozenset({".DS_Store"})
TEST_FILE_NAMES = frozenset({"conftest.py"})


@dataclass(frozen=True)
class SourceFile:
    relative: PurePosixPath  # its path in the zip
    path: Path  # where it is read from (a link's target, resolved inside src/)
    is_test: bool = False


@dataclass
class SourceTree:
    """The files that ship, and the test files left out (nothing shipped imports them)."""

    files: list[SourceFile] = field(default_factory=list)
    left_out: list[PurePosixPath] = field(default_factory=list)


def _is_test(relative: PurePosixPath) -> bool:
    name = relative.name
    in_test_dir = any(part in TEST_DIRS for part in relative.parts[:-1])
    return in_test_dir or name in TEST_FILE_NAMES or (name.startswith("test_") and name.endswith(".py"))


def _excluded(name: str) -> bool:
    return name in CACHE_DIRS or name in EXCLUDED_NAMES or name.endswith(EXCLUDED_SUFFIXES)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _walk(src: Path) -> list[SourceFile]:
    """Every regular file under src (links resolved inside it), or UsageError naming the culprit."""
    root = src.resolve(strict=True)
    found: list[SourceFile] = []
    pending: list[tuple[Path, PurePosixPath, frozenset[Path]]] = [(root, PurePosixPath(), frozenset({root}))]
    while pending:
        directory, relative_dir, ancestors = pending.pop()
        with os.scandir(directory) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            if _excluded(name):
                continue
            path = directory / name
            relative = relative_dir / name
            shown = f"src/{relative}"
            target = path
            if path.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    raise UsageError(f"{shown}: a symbolic link to a missing file") from None
                if not _inside(target, root):
                    raise UsageError(
                        f"{shown}: a symbolic link to {target}, outside src/; package reads only src/"
                    )
            mode = target.lstat().st_mode
            if stat.S_ISDIR(mode):
                if target in ancestors:
                    raise UsageError(f"{shown}: a symbolic link back to a folder above it (a cycle)")
                pending.append((target, relative, ancestors | {target}))
            elif stat.S_ISREG(mode):
                found.append(SourceFile(relative, target, _is_test(relative)))
            else:
                raise UsageError(f"{shown}: not a regular file or folder; only files and folders ship")
    return sorted(found, key=lambda item: item.relative)


def read_python(path: Path) -> tuple[str, str] | None:
    """(text, encoding) as Python itself would read the module (PEP 263 cookie or BOM), or None
    when it does not decode in that encoding (Python could not import it either)."""
    try:
        with path.open("rb") as handle:
            encoding, _ = tokenize.detect_encoding(handle.readline)
        return path.read_bytes().decode(encoding), encoding
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return None


def _module_name(relative: PurePosixPath) -> str | None:
    """The module a .py file under src/ is imported as, None for other files and unimportable paths."""
    if relative.suffix != ".py":
        return None
    name = module_name(relative)
    return name if is_importable(name) else None


def collect(src: Path) -> SourceTree:
    """The files of src/ that ship; test modules only when something shipped imports them."""
    everything = _walk(src)
    modules = {name: item for item in everything if (name := _module_name(item.relative)) is not None}
    shipped = {item.relative for item in everything if not item.is_test}
    changed = True
    while changed:  # a test helper imported by the handler may import another one
        changed = False
        for name, item in modules.items():
            if item.relative not in shipped:
                continue
            read = read_python(item.path)
            if read is None:
                continue
            for imported in parse_imports(read[0], name, is_package(item.relative), str(item.relative)):
                needed = modules.get(imported)
                if needed is not None and needed.relative not in shipped:
                    shipped.add(needed.relative)
                    changed = True
    tree = SourceTree()
    for item in everything:
        if item.relative in shipped:
            tree.files.append(item)
        else:
            tree.left_out.append(item.relative)
    return tree
