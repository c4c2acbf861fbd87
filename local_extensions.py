"""Cookiecutter's local extensions for this template (listed under ``_extensions`` in cookiecutter.json).

Cookiecutter makes the output folder and the function's folder, parents included, before the
pre-generation hook runs; when the hook rejects an answer it removes only the function's folder (an
empty ``-o`` folder, or ``a/`` for ``function_name=a/b``, stays behind), and its command line prints
a traceback after the hook's line. So the template runs the hook's own validators earlier, while
cookiecutter renders its private variables, before any folder exists: ``lambda_function_name`` checks
the name as ``__module_name`` is derived from it, ``validate_answers`` checks every answer as
``__validated`` (the last variable) is rendered. A rejection looks like the hook's: one
``ERROR: <field>: ...`` line on stderr, then exit status 1 under cookiecutter's command line, or a
``FailedHookException`` for a caller of the library (``leanlambda new``, cruft). The hook still checks
everything itself: a replay or a recorded ``__validated`` skips this render.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import click
from cookiecutter.config import BUILTIN_ABBREVIATIONS
from cookiecutter.exceptions import FailedHookException
from cookiecutter.repository import expand_abbreviations, is_repo_url
from jinja2 import Environment
from jinja2.ext import Extension

TEMPLATE_ROOT = Path(__file__).resolve().parent
PRE_GEN_HOOK = TEMPLATE_ROOT / "hooks" / "pre_gen_project.py"
COOKIECUTTER_CLI = "cookiecutter.cli"
"""The module of cookiecutter's command-line entry point."""


@functools.cache
def _pre_gen_hook() -> ModuleType:
    """The hook script as a module, loaded once: its validators are plain functions, its answers are
    read in main().

    Not the toolkit's ``leanlambda.template_contract.pre_gen_hook``: plain ``cookiecutter`` and cruft run
    this file without the toolkit installed, and the hook to load is the one beside this copy of the
    template (a git checkout at another version than the installed toolkit's, for ``cruft update``).
    """
    spec = importlib.util.spec_from_file_location("_leanlambda_pre_gen_project", PRE_GEN_HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIELDS_FROM_PRIVATE = {
    "module_name": "__module_name",
    "stack_name": "__stack_name",
    "aws_services": "__services",
    "prewarm_services": "__prewarm",
}
"""Answers the hook judges in their derived form (as its main() reads them), by cookiecutter key."""


def _refuse(error: Any) -> NoReturn:
    """The hook's one line on stderr, then a failure without cookiecutter's own words.

    Cookiecutter's command line echoes the exception it stops on to stdout, a second line saying
    less than the first: under it, exit with status 1 as it would. A library caller gets the exception.
    """
    print(error.line(), file=sys.stderr)  # the hook's InvalidAnswer
    context = click.get_current_context(silent=True)
    if context is not None and getattr(context.command.callback, "__module__", "") == COOKIECUTTER_CLI:
        sys.exit(1)
    raise FailedHookException("an answer was rejected before any folder was made") from None


def lambda_function_name(value: object) -> object:
    """``value`` unchanged when the hook would accept it as a function name."""
    hook = _pre_gen_hook()
    try:
        hook.validate_function_name(value)
    except hook.InvalidAnswer as error:
        _refuse(error)
    return value


def validate_answers(context: Mapping[str, Any]) -> str:
    """An empty string when the hook accepts every answer rendered so far (``context``: ``cookiecutter``)."""
    hook = _pre_gen_hook()
    answers = {key: value for key, value in context.items() if not key.startswith("_")}
    answers.update({field: context[key] for field, key in FIELDS_FROM_PRIVATE.items() if key in context})
    try:
        hook.validate_answers(answers, hook.known_services())
    except hook.InvalidAnswer as error:
        _refuse(error)
    return ""


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
    """Adds the ``lambda_function_name``, ``validate_answers`` and ``toolkit_requirement`` filters.

    (Named for its first filter: cruft passes the recorded ``_extensions`` back, so the name stays.)
    """

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["lambda_function_name"] = lambda_function_name
        environment.filters["validate_answers"] = validate_answers
        environment.filters["toolkit_requirement"] = toolkit_requirement
