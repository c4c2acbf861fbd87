"""Which modules a Python file imports, read from its syntax tree as importlib would resolve them.

Three parts of the toolkit ask this: `package` (which test modules shipped code needs), `layer` (which
files of a package's test suite a runtime module imports) and `review` (what a name in the handler
refers to). They share one reading of module names and relative imports, so a relative import that
climbs above its top-level package means the same thing (an import that fails) everywhere.
"""

from __future__ import annotations

import ast
from pathlib import PurePath

PACKAGE_INIT = "__init__"
SOURCE_SUFFIX = ".py"
EXTENSION_SUFFIX = ".so"
NOT_MODULES = frozenset({"bin", "__pycache__"})  # pip's scripts folder under --target; bytecode caches


def module_name(relative: PurePath) -> str:
    """Dotted module name of a .py file or a package directory, given its path relative to the import root
    (a sys.path entry): `pkg/sub/mod.py` -> `pkg.sub.mod`, `pkg/__init__.py` and `pkg` -> `pkg`."""
    parts = list(relative.with_suffix("").parts if relative.suffix == SOURCE_SUFFIX else relative.parts)
    if parts and parts[-1] == PACKAGE_INIT:
        parts.pop()
    return ".".join(parts)


def top_level_module(entry: str, directory: bool) -> str | None:
    """The module a top-level entry of a sys.path directory offers: a package or namespace directory, a .py
    file or an extension module (`_cffi_backend.cpython-313-x86_64-linux-gnu.so`); None for anything
    else (`numpy.libs`, `six-1.17.0.dist-info`, `README.md`, `bin`)."""
    if directory:
        name = entry
    elif entry.endswith(SOURCE_SUFFIX):
        name = entry.removesuffix(SOURCE_SUFFIX)
    elif entry.endswith(EXTENSION_SUFFIX) or EXTENSION_SUFFIX + "." in entry:
        name = entry.split(".", 1)[0]
    else:
        return None
    return name if name.isidentifier() and name not in NOT_MODULES else None


def is_package(relative: PurePath) -> bool:
    """True for a package's __init__.py: its relative imports start from the package itself."""
    return relative.name == PACKAGE_INIT + SOURCE_SUFFIX


def is_importable(name: str) -> bool:
    """True when every part of a dotted name is an identifier (`my-dir.mod` cannot be imported)."""
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def resolve_relative(module: str, package: bool, level: int, target: str | None) -> str | None:
    """The absolute name `from <level dots><target> import ...` names inside `module` (itself a package's
    __init__ when `package`), or None where importlib raises: a top-level module has no parent package,
    and a level may not climb above the top-level package."""
    base = module if package else module.rpartition(".")[0]
    parts = base.split(".") if base else []
    if level > len(parts):
        return None
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, target] if target else parts)


def import_source(node: ast.ImportFrom, module: str, package: bool) -> str | None:
    """The absolute module a `from ... import` statement reads from (None: the import cannot resolve)."""
    if node.level:
        return resolve_relative(module, package, node.level, node.module)
    return node.module


def imported_modules(tree: ast.Module, module: str, package: bool) -> set[str]:
    """Absolute names of the modules a module's code imports, each with its parents (importing `a.b.c`
    imports `a` and `a.b`). `from a import b` gives `a.b` too, since b may be a submodule; relative
    imports are resolved, and those that cannot resolve are left out."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = import_source(node, module, package)
            if source:
                names.add(source)
                names.update(f"{source}.{alias.name}" for alias in node.names if alias.name != "*")
    split = [name.split(".") for name in names]
    return {".".join(parts[:depth]) for parts in split for depth in range(1, len(parts) + 1)}


def parse_imports(source: str | bytes, module: str, package: bool, filename: str = "<unknown>") -> set[str]:
    """imported_modules of a module's source; nothing for source that does not parse."""
    try:
        tree = ast.parse(source, filename=filename)
    except (SyntaxError, ValueError):
        return set()
    return imported_modules(tree, module, package)
