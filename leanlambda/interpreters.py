"""Find a Python interpreter of a given minor version: Lambda's runtime is one exact Python."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

PYENV_GLOB = "~/.pyenv/versions/{version}*/bin/python{version}"
PROBE_TIMEOUT_S = 20


def _version_of(python: str) -> str | None:
    try:
        done = subprocess.run(
            [python, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find_interpreter(version: str) -> str | None:
    """An interpreter of Python `version` ('3.11'): this one, pythonX.Y on PATH, or a pyenv install.

    Each candidate is asked its version: a pyenv shim on PATH may stand for a version not installed.
    """
    candidates = [sys.executable, shutil.which(f"python{version}")]
    candidates += sorted(glob.glob(os.path.expanduser(PYENV_GLOB.format(version=version))))
    for candidate in candidates:
        if candidate and _version_of(candidate) == version:
            return candidate
    return None
