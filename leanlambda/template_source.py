"""Where the bundled Cookiecutter template lives: inside the wheel, or at the repository root.

A wheel carries it as `leanlambda/_template` (copied there by setup.py's build_py); an editable
install reads the repository root next to the package.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

from leanlambda.errors import UsageError

BUNDLED_DIR = "_template"
CONTEXT_FILE = "cookiecutter.json"


def template_dir() -> Path:
    bundled = importlib.resources.files("leanlambda") / BUNDLED_DIR
    if bundled.is_dir() and (bundled / CONTEXT_FILE).is_file():
        return Path(str(bundled))
    repo_root = Path(__file__).resolve().parent.parent
    if (repo_root / CONTEXT_FILE).is_file():
        return repo_root
    raise UsageError("the bundled template is missing (reinstall leanlambda)")


def template_context(directory: Path) -> dict[str, Any]:
    """cookiecutter.json: the prompts and their defaults."""
    context: dict[str, Any] = json.loads((directory / CONTEXT_FILE).read_text(encoding="utf-8"))
    return context
