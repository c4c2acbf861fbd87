"""A layer directory: requirements.txt plus optional layer.toml defaults, overridable on the command line.

layer.toml (all keys optional):

    [layer]
    name = "makenaide-core-layer"   # zip name; default: the directory's name
    runtime = "python3.13"
    architecture = "x86_64"          # or "arm64"
    skip_imports = []                # top-level modules the import proof must not try
    strip_docstrings = false         # empty the docstrings of the layer's Python (lines kept)
    keep_docstrings = []             # top-level packages that read docstrings at run time
    bytecode = true                  # bytecode compiled by the runtime's Python; default: yes when
                                     # that Python is on this machine (see below), else no, said once
    allow_pure_sdist = ["docopt"]    # packages with only an sdist: build them into wheels here, and
                                     # fail if the result is not pure Python
    smoke = [                        # Python statements the proof also runs, each in its own
        "import pandas; pandas.DataFrame({'a': [1, 2]}).rolling(2).mean()",  # clean interpreter
    ]

A smoke statement fails the build when it raises (an `assert` in it counts), exactly like a module that
does not import. skip_imports is for a module that cannot be imported outside Lambda at all; a companion
distribution whose import needs its parent first (psycopg_binary) needs no entry, it is proved through
its parent.

strip_docstrings is opt-in because some libraries read docstrings at run time (numpy.ma rewrites numpy's
at import; PLY takes grammar rules from them): list those in keep_docstrings, and let the import proof
and the smoke statements show that nothing else does. bytecode trades size for cold-start time: /opt is
read-only on Lambda, so without it every cold start compiles what it imports (measured in the README of
examples/makenaide-core-layer). Left unset, it is on whenever the runtime's exact Python is found here
(leanlambda.interpreters), and off otherwise, with one line saying what that costs and how to get the
interpreter; `bytecode = true` without that Python is an error.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from leanlambda.errors import UsageError
from leanlambda.layer.target import DEFAULT_ARCH, DEFAULT_RUNTIME, Target

REQUIREMENTS_FILE = "requirements.txt"
SETTINGS_FILE = "layer.toml"
KNOWN_KEYS = frozenset(
    {
        "name",
        "runtime",
        "architecture",
        "skip_imports",
        "smoke",
        "strip_docstrings",
        "keep_docstrings",
        "bytecode",
        "allow_pure_sdist",
    }
)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,139}$")


@dataclass(frozen=True)
class LayerSettings:
    name: str
    source_dir: Path
    requirements: Path
    target: Target
    skip_imports: tuple[str, ...] = ()
    smoke: tuple[str, ...] = ()
    strip_docstrings: bool = False
    keep_docstrings: tuple[str, ...] = ()
    bytecode: bool | None = None  # None: whenever the runtime's Python is here
    allow_pure_sdist: tuple[str, ...] = ()


def _read_toml(path: Path) -> dict[str, object]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path}: not valid TOML ({error})") from None
    table = data.get("layer", {})
    if not isinstance(table, dict) or set(data) - {"layer"}:
        raise UsageError(f"{path}: expected a single [layer] table")
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        known = ", ".join(sorted(KNOWN_KEYS))
        raise UsageError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {known}")
    return table


def load_settings(layer_dir: Path, runtime: str | None = None, arch: str | None = None) -> LayerSettings:
    """Read LAYER_DIR; command-line runtime/arch win over layer.toml, which wins over the defaults."""
    layer_dir = Path(layer_dir)
    if not layer_dir.is_dir():
        raise UsageError(f"{layer_dir}: no such directory")
    requirements = layer_dir / REQUIREMENTS_FILE
    if not requirements.is_file():
        raise UsageError(f"{layer_dir}: no {REQUIREMENTS_FILE} (the layer's requirements)")
    toml_path = layer_dir / SETTINGS_FILE
    table = _read_toml(toml_path) if toml_path.is_file() else {}
    name = table.get("name", layer_dir.resolve().name)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise UsageError(f"{toml_path}: name must be letters, digits, '-', '_' or '.' (got {name!r})")
    skip = table.get("skip_imports", [])
    if not isinstance(skip, list) or not all(isinstance(item, str) for item in skip):
        raise UsageError(f"{toml_path}: skip_imports must be a list of module names")
    smoke = _smoke_statements(table.get("smoke", []), toml_path)
    strip_docstrings, bytecode = table.get("strip_docstrings", False), table.get("bytecode")
    if not isinstance(strip_docstrings, bool) or not isinstance(bytecode, bool | None):
        raise UsageError(f"{toml_path}: strip_docstrings and bytecode must be true or false")
    keep_docstrings = table.get("keep_docstrings", [])
    if not isinstance(keep_docstrings, list) or not all(isinstance(item, str) for item in keep_docstrings):
        raise UsageError(f"{toml_path}: keep_docstrings must be a list of top-level package names")
    pure = table.get("allow_pure_sdist", [])
    if not isinstance(pure, list) or not all(isinstance(item, str) and item for item in pure):
        raise UsageError(f"{toml_path}: allow_pure_sdist must be a list of package names")
    target = Target.parse(
        runtime or str(table.get("runtime", DEFAULT_RUNTIME)),
        arch or str(table.get("architecture", DEFAULT_ARCH)),
    )
    return LayerSettings(
        name,
        layer_dir,
        requirements,
        target,
        tuple(skip),
        smoke,
        strip_docstrings,
        tuple(keep_docstrings),
        bytecode,
        tuple(pure),
    )


def _smoke_statements(value: object, toml_path: Path) -> tuple[str, ...]:
    """layer.toml's smoke list: non-empty Python statements that compile."""
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise UsageError(f"{toml_path}: smoke must be a list of Python statements (non-empty strings)")
    for statement in value:
        try:
            compile(statement, "<smoke>", "exec")
        except (SyntaxError, ValueError) as error:
            reason = error.msg if isinstance(error, SyntaxError) else str(error)
            raise UsageError(
                f"{toml_path}: smoke statement {statement!r} is not valid Python ({reason})"
            ) from None
    return tuple(value)
