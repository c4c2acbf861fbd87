"""What the bundled template generates and promises, as the toolkit relies on it.

`leanlambda review` judges a generated function (its `leanlambda` profile) by the names below: a module
per runtime class, the steps' declared worst case, the handler's raise-or-return switch. `leanlambda new`
runs the template's own answer checks through ``pre_gen_hook()``. ``examples/regenerate.py`` and tests
tell user-owned from template-owned files with ``user_owned_entries()``. tests/test_template_contract.py
bakes the template and checks every fact here holds in the generated code, so renaming something in the
template without changing it here fails a test.
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.util
import sys
import tomllib
from pathlib import Path, PurePosixPath
from types import ModuleType

from leanlambda.errors import UsageError
from leanlambda.template_source import template_dir

# The generated runtime's classes, each in its own module of the function's package (docs/design.md).
FACTORY_MODULE, FACTORY_CLASS = "clients", "AWSClientFactory"
"""The cached boto3 client factory: the one place a generated function creates clients."""
PIPELINE_MODULE, PIPELINE_CLASS = "pipeline", "PipelineExecutor"
METRICS_MODULE, METRICS_CLASS = "metrics", "MetricsCollector"
"""The metrics collector: the one place a generated function sends metrics (EMF or PutMetricData)."""
RUNTIME_CLASSES = (
    (FACTORY_MODULE, FACTORY_CLASS),
    (PIPELINE_MODULE, PIPELINE_CLASS),
    (METRICS_MODULE, METRICS_CLASS),
)
WAIT_HELPERS_MODULE, WAIT_HELPERS_CLASS = PIPELINE_MODULE, "Deadline"
"""The deadline-bounded sleep and poll: waits inside it are bounded by the Lambda deadline."""

STEPS_MODULE = "steps"
"""The user's steps (user-owned)."""
WORST_CASE_NAME = "WORST_CASE_SECONDS"
"""The steps module's declared worst-case run time; the function's Timeout must cover it."""

HANDLER_MODULE, FAILED_RUN_CLASS = "handler", "PipelineFailed"
"""The handler raises this when a run fails, so Lambda retries it and counts it in Errors."""
ALWAYS_RETURN_ENV = "RAISE_ON_FAILURE"
"""The handler's switch (template.yaml's Environment): `false` makes a failed run return instead of raise."""

JINJA_MARKERS = ("{{", "{%", "{#")
"""Cookiecutter renders every answer given ahead of time (or recorded) as a Jinja template, unsandboxed:
an answer holding one of these would run as code at bake time (even one the hook then rejects)."""

HOOKS_DIR = "hooks"
PRE_GEN_HOOK = "pre_gen_project"
"""The hook whose FIELD_VALIDATORS, InvalidAnswer and validate_answers judge the answers."""

PROJECT_FILE = "pyproject.toml"
"""The generated function's project file: its ``[tool.cruft] skip`` lists the user-owned files."""


@functools.cache
def template_hook(name: str) -> ModuleType:
    """The template's hook ``name`` as a module, loaded once: unrendered, it runs nothing on import."""
    path = template_dir() / HOOKS_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"leanlambda_template_hook_{name}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise UsageError(f"the bundled template has no {HOOKS_DIR}/{name}.py (reinstall leanlambda)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so its classes and functions can be found by module name
    spec.loader.exec_module(module)
    return module


def pre_gen_hook() -> ModuleType:
    """The pre-generation hook: the template's answer validators."""
    return template_hook(PRE_GEN_HOOK)


def user_owned_entries(function_dir: Path) -> list[str]:
    """The function's ``[tool.cruft] skip`` entries: files `cruft update` leaves to the user.

    Paths are relative to the function folder; a trailing ``/`` names a folder, an entry with ``*`` is
    a glob. No project file, or no such table: [].
    """
    project = function_dir / PROJECT_FILE
    if not project.is_file():
        return []
    settings = tomllib.loads(project.read_text(encoding="utf-8"))
    skip = settings.get("tool", {}).get("cruft", {}).get("skip", [])
    return [str(entry) for entry in skip] if isinstance(skip, list) else []


def is_user_owned(relative: str, entries: list[str]) -> bool:
    """Whether ``relative`` (a POSIX path inside the function) is covered by the skip entries."""
    path = PurePosixPath(relative)
    candidates = [str(path)] + [str(parent) for parent in path.parents if str(parent) != "."]
    for entry in entries:
        if "*" in entry:  # cruft globs these from the function folder
            if any(fnmatch.fnmatchcase(candidate, entry) for candidate in candidates):
                return True
            continue
        target = entry.strip("/").removeprefix("./")
        if relative == target or relative.startswith(target + "/"):
            return True
    return False
