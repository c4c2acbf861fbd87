"""Every toolkit module imports on its own, first, in a fresh interpreter: no import-order cycles."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import leanlambda

SKIPPED = ("leanlambda.__main__", "leanlambda._template")  # runs the CLI; the bundled template
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(leanlambda.__path__, "leanlambda.")
    if not info.name.startswith(SKIPPED)
)


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_first_in_a_fresh_interpreter(module):
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
