"""Cookiecutter's local extensions for this template (listed under ``_extensions`` in cookiecutter.json).

Cookiecutter makes the function's folder, parents included, before the pre-generation hook runs, and
when the hook rejects an answer it removes only that folder: ``function_name=a/b`` would leave an empty
``a/`` behind. The ``lambda_function_name`` filter runs the hook's own check of the name while
cookiecutter derives ``__module_name`` from it, which is before any folder exists. The failure looks
like the hook's: one ``ERROR: function_name: ...`` line on stderr and a ``FailedHookException``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from cookiecutter.config import BUILTIN_ABBREVIATIONS
from cookiecutter.exceptions import FailedHookException
from cookiecutter.repository import expand_abbreviations, is_repo_url
from jinja2 import Environment
from jinja2.ext import Extension

TEMPLATE_ROOT = Path(__file__).resolve().parent
PRE_GEN_HOOK = TEMPLATE_ROOT / "hooks" / "pre_gen_project.py"


def _pre_gen_hook() -> ModuleType:
    """The hook script as a module: its validators are plain functions, its answers are read in main()."""
    spec = importlib.util.spec_from_file_location("_leanlambda_pre_gen_project", PRE_GEN_HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def lambda_function_name(value: object) -> object:
    """``value`` unchanged when the hook would accept it as a function name."""
    hook = _pre_gen_hook()
    try:
        hook.validate_function_name(value)
    except hook.InvalidAnswer as error:
        print(error.line(), file=sys.stderr)
        raise FailedHookException("function_name rejected before any folder was made") from None
    return value


def toolkit_requirement(template: object, checkout: object = None) -> str:
    """What pip installs the leanlambda toolkit from: the template this function is baked from.

    A git template (``gh:owner/repo``, a URL) gives ``git+URL[@checkout]``; a local one its folder, made
    absolute here (cookiecutter records the path as typed, cruft an absolute one). A template without
    the toolkit's project files beside it (the copy inside an installed wheel) gives "".
    """
    text = str(template or "")
    url = expand_abbreviations(text, BUILTIN_ABBREVIATIONS)
    if is_repo_url(url):
        return f"git+{url.removeprefix('git+')}" + (f"@{checkout}" if checkout else "")
    folder = Path(text) if text and Path(text).is_absolute() else TEMPLATE_ROOT
    return str(folder) if (folder / "pyproject.toml").is_file() else ""


class FunctionNameExtension(Extension):
    """Adds the ``lambda_function_name`` and ``toolkit_requirement`` filters."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["lambda_function_name"] = lambda_function_name
        environment.filters["toolkit_requirement"] = toolkit_requirement
