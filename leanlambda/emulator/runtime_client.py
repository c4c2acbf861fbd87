"""Which Python runs the function, and with which runtime client: AWS's awslambdaric where possible.

The interpreter is the runtime's own Python (python3.13 -> a Python 3.13 found on this machine), else
the toolkit's. awslambdaric is a C extension, so it must be built for that interpreter: the toolkit's
own copy serves the toolkit's Python; for another Python, pip fetches the matching wheel once into
~/.cache/leanlambda/awslambdaric/<version>. Where neither works, leanlambda's stand-in bootstrap (the
same Runtime API protocol, standard library only) runs the function, and the run says so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from leanlambda.interpreters import find_interpreter
from leanlambda.limits import python_of

RIC = "awslambdaric"
RIC_MODULES = (RIC, "runtime_client", "simplejson", "snapshot_restore_py")  # what its wheel brings
CACHE_ENV = "XDG_CACHE_HOME"
CACHE_DIR = Path("leanlambda") / RIC
PIP_TIMEOUT_S = 300
VERSION_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
STAND_IN = Path(__file__).with_name("bootstrap.py")
TIMED_INIT = Path(__file__).with_name("timed_init.py")


@dataclass
class Interpreter:
    """The Python a run uses, and a line saying why it is that one."""

    executable: str
    version: str  # '3.13.0'
    note: str

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


@dataclass
class Client:
    """The runtime client: the command that starts it and the folder that holds it (None: stand-in)."""

    path: Path | None
    note: str

    def command(self, python: str, handler: str, time_import: bool = False) -> list[str]:
        """`python -m awslambdaric HANDLER`; with time_import, the same bootstrap with its import timed."""
        if self.path is None:
            return [python, "-S", "-B", "-u", str(STAND_IN), handler]
        if time_import:
            return [python, "-S", "-B", "-u", str(TIMED_INIT), handler]
        return [python, "-S", "-B", "-u", "-m", RIC, handler]


def choose_interpreter(runtime: str) -> Interpreter:
    """The runtime's Python when it is here, else the toolkit's (said in the note)."""
    try:
        wanted = python_of(runtime)
    except ValueError as error:
        return _toolkit(f"{error}; measured with the toolkit's Python")
    found = find_interpreter(wanted)
    if found is None:
        return _toolkit(f"no Python {wanted} here for {runtime}; measured with the toolkit's Python")
    version = _full_version(found) or wanted
    return Interpreter(found, version, f"the runtime's Python ({runtime})")


def _toolkit(note: str) -> Interpreter:
    return Interpreter(sys.executable, platform.python_version(), note)


def _full_version(python: str) -> str | None:
    if python == sys.executable:
        return platform.python_version()
    try:
        done = subprocess.run(
            [python, "-I", "-S", "-c", VERSION_PROBE], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def runtime_client(interpreter: Interpreter, workdir: Path) -> Client:
    """awslambdaric for this interpreter, or the stand-in bootstrap with the reason."""
    if interpreter.minor == ".".join(platform.python_version_tuple()[:2]):
        local = _link_own_copy(workdir / "ric")
        if local is not None:
            return Client(local, f"{RIC} {_ric_version()}")
    cached = _cached_copy(interpreter.minor)
    if cached is not None:
        return Client(cached, f"{RIC} {_ric_version(cached)} for Python {interpreter.minor} ({cached})")
    reason = f"{RIC} for Python {interpreter.minor} could not be installed"
    return Client(None, f"{reason}: ran with leanlambda's stand-in bootstrap instead")


def _ric_version(folder: Path | None = None) -> str:
    try:
        if folder is None:
            return metadata.version(RIC)
        found = list(metadata.distributions(name=RIC, path=[str(folder)]))
        return found[0].version if found else "?"
    except metadata.PackageNotFoundError:
        return "?"


def _link_own_copy(target: Path) -> Path | None:
    """The toolkit's awslambdaric and its dependencies, alone in a folder of symlinks."""
    if importlib.util.find_spec(RIC) is None:
        return None
    target.mkdir(parents=True, exist_ok=True)
    for name in RIC_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            source = Path(next(iter(spec.submodule_search_locations)))
        elif spec.origin:
            source = Path(spec.origin)
        else:
            continue
        link = target / source.name
        if not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return target


def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache")
    return Path(base) / CACHE_DIR


def _cached_copy(minor: str) -> Path | None:
    """~/.cache/leanlambda/awslambdaric/<minor>, installed by pip on first use (atomically)."""
    folder = cache_root() / minor
    if (folder / RIC).is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{minor}-", dir=folder.parent))
    try:
        pin = f"{RIC}=={metadata.version(RIC)}"
    except metadata.PackageNotFoundError:
        pin = RIC
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"]
    command += [str(staging), "--only-binary=:all:", "--python-version", minor, pin]
    try:
        done = subprocess.run(command, capture_output=True, timeout=PIP_TIMEOUT_S, check=False)
        if done.returncode != 0 or not (staging / RIC).is_dir():
            return None
        with contextlib.suppress(OSError):  # another run installed it meanwhile
            staging.rename(folder)
        return folder if (folder / RIC).is_dir() else None
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
