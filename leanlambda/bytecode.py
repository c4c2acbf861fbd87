"""Compile a tree to bytecode for a Lambda runtime's Python, so cold starts skip compiling.

Lambda's /var/task and /opt are read-only: Python cannot cache what it compiles, so every cold
start compiles every imported source file again (for pandas, about 1.5 s of a 2.2 s import here).
The bytecode is unchecked-hash (used whatever the files' timestamps, which zips reset) and names
the paths the code will have on Lambda, so tracebacks read as they would there.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from leanlambda.errors import UsageError
from leanlambda.interpreters import find_interpreter
from leanlambda.limits import python_of

FUNCTION_ROOT = "/var/task"
LAYER_PYTHON_ROOT = "/opt/python"
COMPILE_TIMEOUT_S = 600


def compile_tree(tree: Path, python_version: str, lambda_root: str) -> None:
    """Write __pycache__ bytecode beside every module under ``tree`` with Python ``python_version``."""
    python = find_interpreter(python_version)
    if python is None:
        raise UsageError(
            f"bytecode must be compiled by Python {python_version} (the runtime's); none found here"
        )
    command = [python, "-I", "-m", "compileall", "-q", "-j", "0", "-d", lambda_root]
    command += ["--invalidation-mode", "unchecked-hash", str(tree)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=COMPILE_TIMEOUT_S)
    if result.returncode != 0:
        output = (result.stdout or result.stderr).strip().splitlines()
        raise UsageError(f"compiling for Python {python_version} failed: {output[-1] if output else '?'}")


def runtime_python(runtime: str) -> str | None:
    """The interpreter of ``runtime``'s exact Python here (e.g. a pyenv 3.13 for python3.13), or None."""
    return find_interpreter(python_of(runtime))


def source_only_note(runtime: str) -> str:
    """The one line a source-only build prints: which interpreter would give it bytecode."""
    version = python_of(runtime)
    return (
        f"bytecode: none (no Python {version} here, the {runtime} runtime's); install one "
        f"(e.g. `pyenv install {version}`) to ship bytecode and skip compiling at every cold start"
    )
