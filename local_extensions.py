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

from cookiecutter.exceptions import FailedHookException
from jinja2 import Environment
from jinja2.ext import Extension

PRE_GEN_HOOK = Path(__file__).resolve().parent / "hooks" / "pre_gen_project.py"


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


class FunctionNameExtension(Extension):
    """Adds the ``lambda_function_name`` filter."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["lambda_function_name"] = lambda_function_name
