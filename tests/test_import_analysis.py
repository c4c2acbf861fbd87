"""leanlambda.imports: module names and relative imports resolved as importlib resolves them.

Each case is checked against CPython itself where it can be: the same files are written to disk and
imported, so the expected names are what Python does, not what we believe it does.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from leanlambda.imports import (
    imported_modules,
    is_importable,
    is_package,
    module_name,
    parse_imports,
    resolve_relative,
    top_level_module,
)


@pytest.mark.parametrize(
    ("relative", "name", "package"),
    [
        ("pkg/sub/mod.py", "pkg.sub.mod", False),
        ("pkg/__init__.py", "pkg", True),
        ("pkg/sub", "pkg.sub", False),  # a package directory
        ("handler.py", "handler", False),
    ],
)
def test_module_name_and_package(relative, name, package):
    assert module_name(PurePosixPath(relative)) == name
    assert is_package(PurePosixPath(relative)) is package


def test_a_path_with_a_dash_is_not_importable():
    assert is_importable("pkg.mod")
    assert not is_importable("my-dir.mod")
    assert not is_importable("")


@pytest.mark.parametrize(
    ("module", "package", "level", "target", "expected"),
    [
        ("pkg.sub.mod", False, 1, "helpers", "pkg.sub.helpers"),  # from .helpers import x, in a module
        ("pkg.sub", True, 1, "helpers", "pkg.sub.helpers"),  # the same line in pkg/sub/__init__.py
        ("pkg.sub.mod", False, 2, None, "pkg"),  # from .. import x
        ("pkg.sub.mod", False, 1, None, "pkg.sub"),  # from . import x
        ("pkg", True, 1, None, "pkg"),  # from . import x in pkg/__init__.py
        ("pkg.mod", False, 2, None, None),  # above the top-level package
        ("pkg", True, 2, "x", None),  # above it from a package's __init__ too
        ("handler", False, 1, "helpers", None),  # a top-level module has no parent package
    ],
)
def test_resolve_relative(module, package, level, target, expected):
    assert resolve_relative(module, package, level, target) == expected


SOURCE = """
import json, os.path as osp
from .helpers import clean
from . import steps
from .. import outside
from .tests import *
"""


def test_imported_modules_of_a_module_in_a_package():
    names = imported_modules(ast.parse(SOURCE), "pkg.handler", package=False)
    # `from . import steps` names the package and, maybe, its submodule; `from .. import` climbs above pkg
    # and is left out; `import *` names no submodule; every name comes with its parents
    assert names == {
        "json",
        "os",
        "os.path",
        "pkg",
        "pkg.helpers",
        "pkg.helpers.clean",
        "pkg.steps",
        "pkg.tests",
    }


def test_the_same_lines_in_a_packages_init_resolve_from_the_package_itself():
    names = imported_modules(ast.parse(SOURCE), "pkg.sub", package=True)
    assert {"pkg.sub.helpers", "pkg.sub.steps", "pkg.outside", "pkg.sub.tests"} <= names


def test_source_that_does_not_parse_imports_nothing():
    assert parse_imports("def broken(:\n", "pkg.mod", package=False) == set()
    assert parse_imports(b"\x00", "pkg.mod", package=False) == set()


@pytest.mark.parametrize(
    ("entry", "directory", "expected"),
    [
        ("numpy", True, "numpy"),
        ("six.py", False, "six"),
        ("_cffi_backend.cpython-313-x86_64-linux-gnu.so", False, "_cffi_backend"),
        ("numpy.libs", True, None),
        ("six-1.17.0.dist-info", True, None),
        ("README.md", False, None),
        ("bin", True, None),
        ("__pycache__", True, None),
    ],
)
def test_top_level_module(entry, directory, expected):
    assert top_level_module(entry, directory) == expected


def test_resolution_agrees_with_python(tmp_path: Path):
    """The modules we say a package's relative imports load are the ones CPython loads, and a level
    above the top-level package, which we resolve to nothing, fails in CPython too."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "helpers.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .. import helpers\n")
    (pkg / "sub" / "mod.py").write_text("from . import leaf\nfrom ..helpers import *\n")
    (pkg / "sub" / "leaf.py").write_text("")
    climb = "from ... import anything\n"
    (pkg / "sub" / "climb.py").write_text(climb)
    probe = "import sys, pkg.sub.mod; print(','.join(m for m in sys.modules if m.startswith('pkg')))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    ours = {"pkg.sub.mod"}
    for path in (pkg / "sub" / "__init__.py", pkg / "sub" / "mod.py"):
        relative = path.relative_to(tmp_path)
        ours |= parse_imports(path.read_text(), module_name(relative), is_package(relative))
    assert ours == set(done.stdout.strip().split(","))

    climbed = subprocess.run(
        [sys.executable, "-c", "import pkg.sub.climb"], cwd=tmp_path, capture_output=True, text=True
    )
    assert "beyond top-level package" in climbed.stderr
    assert parse_imports(climb, "pkg.sub.climb", package=False) == set()
