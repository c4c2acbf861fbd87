"""What a module costs to import, measured: `python -X importtime` in a fresh interpreter."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

IMPORT_TIMEOUT_S = 60
US_PER_MS = 1000


def import_cost(module: str, code_dir: Path) -> str:
    """`142 ms` (cumulative, cold, no bytecode written), or why it was not measured."""
    return _measure(module, str(code_dir))


@functools.lru_cache(maxsize=64)
def _measure(module: str, code_dir: str) -> str:
    env = {**os.environ, "PYTHONPATH": code_dir, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            env=env,
            timeout=IMPORT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"over {IMPORT_TIMEOUT_S} s"
    if done.returncode != 0:
        return "cost not measured: not installed here"
    for line in done.stderr.splitlines():
        # import time: self [us] | cumulative | imported package
        parts = [part.strip() for part in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == module and parts[1].isdigit():
            return f"{int(parts[1]) / US_PER_MS:.0f} ms"
    return "cost not measured"
