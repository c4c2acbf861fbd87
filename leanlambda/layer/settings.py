"""A layer directory: requirements.txt plus optional layer.toml defaults, overridable on the command line.

layer.toml (all keys optional):

    [layer]
    name = "makenaide-core-layer"   # zip name; default: the directory's name
    runtime = "python3.11"
    architecture = "x86_64"          # or "arm64"
    skip_imports = []                # top-level modules the import proof must not try
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
KNOWN_KEYS = frozenset({"name", "runtime", "architecture", "skip_imports"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,139}$")


@dataclass(frozen=True)
class LayerSettings:
    name: str
    source_dir: Path
    requirements: Path
    target: Target
    skip_imports: tuple[str, ...] = ()


def _read_toml(path: Path) -> dict:
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
    target = Target.parse(
        runtime or str(table.get("runtime", DEFAULT_RUNTIME)),
        arch or str(table.get("architecture", DEFAULT_ARCH)),
    )
    return LayerSettings(name, layer_dir, requirements, target, tuple(skip))
