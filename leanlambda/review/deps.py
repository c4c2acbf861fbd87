"""A function's dependencies as Lambda would have them: requirements.txt installed for its platform.

`sam build` installs the code folder's requirements.txt into the zip; the measured checks do the same
into a temporary site (`pip install --target`, the wheels `leanlambda layer` would pick for the runtime
and architecture, for the Python the measured runs use), so a dependency the function declares is found
and one it forgets is not. What cannot be installed is
named, and the measured check that needed it is skipped with that reason, never failed for it.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import tempfile
from pathlib import Path

from leanlambda.bytecode import FUNCTION_ROOT, compile_tree
from leanlambda.emulator.runtime_client import choose_interpreter
from leanlambda.errors import UsageError
from leanlambda.layer.target import ARCH_MACHINE, DEFAULT_ARCH, Target
from leanlambda.limits import DEFAULT_RUNTIME, RUNTIME_GLIBC, RUNTIME_SDK_DISTRIBUTIONS

REQUIREMENTS_FILE = "requirements.txt"
PIP_TIMEOUT_S = 300
SITE_CACHE = Path(tempfile.gettempdir()) / "leanlambda-review-sites"
SITE_LAYOUT = "bytecode-of-the-runner"
"""Part of a cached site's key: sites cached before bytecode came from the measured Python are not reused."""


def requirements_file(code_dir: Path, root: Path) -> Path | None:
    """The requirements.txt `sam build` reads: the code folder's (CodeUri), else the project's."""
    for folder in (code_dir, root):
        path = folder / REQUIREMENTS_FILE
        if path.is_file():
            return path
    return None


def _runner_python(runtime: str) -> str:
    """The Python version the measured runs use (the runtime's where it is here): wheels must match it."""
    return choose_interpreter(runtime).minor


def _target(runtime: str, architecture: str) -> Target:
    """The function's platform as the layer builder reads it; a runtime or architecture this toolkit does
    not build for (the review names it elsewhere) is read as the default one."""
    return Target(
        runtime if runtime in RUNTIME_GLIBC else DEFAULT_RUNTIME,
        architecture if architecture in ARCH_MACHINE else DEFAULT_ARCH,
    )


def _wanted(requirements: Path) -> list[str]:
    """Requirement lines minus the SDK the runtime provides (boto3 & co.) and pip options."""
    lines = []
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name = line.split(";")[0]
        for mark in ("[", "=", "<", ">", "!", "~", " "):
            name = name.split(mark)[0]
        if name.lower().replace("_", "-") in RUNTIME_SDK_DISTRIBUTIONS:
            continue
        lines.append(line)
    return lines


NOTHING_TO_INSTALL = "requirements.txt: nothing beyond the runtime's SDK"


def install_requirements(requirements: Path, architecture: str, runtime: str) -> tuple[Path | None, str]:
    """(site folder, note) or (None, why not); each distinct requirement set is installed once."""
    wanted = _wanted(requirements)
    if not wanted:
        return None, NOTHING_TO_INSTALL
    return _install(tuple(wanted), _target(runtime, architecture), _runner_python(runtime))


@functools.lru_cache(maxsize=16)
def _install(wanted: tuple[str, ...], target: Target, python: str) -> tuple[Path | None, str]:
    platform = target.describe()
    args = target.pip_target_args(python)
    key = hashlib.sha256("\n".join([SITE_LAYOUT, *args, *wanted]).encode()).hexdigest()[:16]
    site = SITE_CACHE / key
    done_marker = site / ".complete"
    if done_marker.is_file():
        return site, done_marker.read_text(encoding="utf-8").strip()
    site.mkdir(parents=True, exist_ok=True)
    # pip would compile with the toolkit's Python, whose bytecode the measured runs' Python ignores: the
    # site is compiled by that Python instead, as `sam build` ships it (the requirements go to /var/task).
    command = target.pip_install_command(site, wanted, python_version=python, extra=["--upgrade"])
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return None, f"installing {', '.join(wanted)} took over {PIP_TIMEOUT_S} s"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        return None, f"cannot install {', '.join(wanted)} for {platform}: {last}"
    note = f"requirements.txt installed for {platform}, Python {python}"
    try:
        compile_tree(site, python, FUNCTION_ROOT)
    except UsageError as error:  # a file that does not compile: its package still imports, from source
        note += f" (bytecode partly missing: {error})"
    done_marker.write_text(note + "\n", encoding="utf-8")
    return site, note
