"""The stand-in for the runtime's SDK in a proof: the boto3/botocore release limits.RUNTIME_SDK_VERSIONS
names for the runtime, installed once into a cache for the target's platform, never the build
environment's own copy (which only serves when that install fails, and the proof says so).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

from leanlambda.layer.target import Target
from leanlambda.limits import RUNTIME_PROVIDED_MODULES, RUNTIME_SDK_VERSIONS

SDK_INSTALL_TIMEOUT_S = 600
SDK_CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "leanlambda" / "runtime-sdk"


def _local_sdk_path(scratch: Path) -> Path:
    """Links to this environment's boto3 & co: the fallback stand-in when the pinned one cannot be had."""
    scratch.mkdir(parents=True, exist_ok=True)
    for module in RUNTIME_PROVIDED_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        source = origin.parent if spec.submodule_search_locations else origin
        link = scratch / source.name
        if not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return scratch


def runtime_sdk_path(target: Target, scratch: Path) -> tuple[Path, str]:
    """(directory, description) of the stand-in for the runtime's SDK: the pinned boto3/botocore for the
    runtime, installed once into a cache; this environment's copies only if that install fails."""
    pins = RUNTIME_SDK_VERSIONS.get(target.runtime)
    if pins:
        described = ", ".join(f"{name} {version}" for name, version in sorted(pins.items()))
        folder = SDK_CACHE / (
            f"{target.runtime}-{target.arch}-" + "-".join(f"{n}{v}" for n, v in sorted(pins.items()))
        )
        if (folder / ".complete").is_file():
            return folder, f"the runtime's SDK stand-in ({described})"
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        command = target.pip_install_command(
            partial, [f"{name}=={version}" for name, version in sorted(pins.items())]
        )
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=SDK_INSTALL_TIMEOUT_S, check=False
            )
            if done.returncode == 0:
                (partial / ".complete").write_text(described + "\n", encoding="utf-8")
                if not folder.exists():
                    partial.rename(folder)
                return folder, f"the runtime's SDK stand-in ({described})"
        except (subprocess.TimeoutExpired, OSError):
            pass
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return _local_sdk_path(scratch), "this environment's boto3 (the pinned stand-in could not be installed)"
