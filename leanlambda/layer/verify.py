"""Prove a layer: import each of its top-level modules in a clean interpreter of the target's Python.

The original Makenaide layer held pyupbit without pandas and nothing noticed until Lambda failed to
import it. Here every top-level module is imported in its own `python -I -S` process whose path holds the
layer, the standard library, and (after the layer, as in /var/runtime on Lambda) the packages the runtime
provides, taken from this build environment. Nothing else from the build machine is visible, and -B keeps
the proof from writing bytecode into the layer it is proving.

An import only proves what runs at import time. The layer's smoke statements (layer.toml `smoke`) go
deeper, e.g. a rolling mean through pandas' compiled window code or a norm through numpy's BLAS: each
runs, the same way, in its own clean interpreter, and one that raises fails the proof.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from leanlambda.interpreters import find_interpreter
from leanlambda.layer.target import Target, host_arch

RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
IMPORT_TIMEOUT_S = 120
MAX_WORKERS = 8
NOT_MODULES = frozenset({"bin", "__pycache__"})
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning): \S")
ISOLATED_FLAGS = ("-I", "-S", "-B")  # no env, no site, no user site, no bytecode written
_IMPORT_SCRIPT = (
    "import importlib, sys; "
    "sys.path[:0] = [sys.argv[2]]; sys.path.append(sys.argv[3]); "
    "importlib.import_module(sys.argv[1])"
)
_SMOKE_SCRIPT = (
    "import sys; "
    "sys.path[:0] = [sys.argv[2]]; sys.path.append(sys.argv[3]); "
    "exec(compile(sys.argv[1], '<smoke>', 'exec'), {'__name__': '__main__'})"
)


@dataclass
class Verification:
    status: str  # "verified", "failed" or "unverified"
    reason: str = ""
    interpreter: str = ""
    modules: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # module -> error
    smoke: list[str] = field(default_factory=list)  # statements run besides the imports
    smoke_failures: dict[str, str] = field(default_factory=dict)  # statement -> error

    def summary(self) -> str:
        if self.status == "verified":
            checks = (f" and all {len(self.smoke)} smoke statements run" if self.smoke else "")
            return (f"verified: all {len(self.modules)} top-level modules import{checks} "
                    f"under {self.interpreter}")
        if self.status == "failed":
            parts = []
            if self.failures:
                listed = "; ".join(f"{name} ({error})" for name, error in sorted(self.failures.items()))
                parts.append(f"{len(self.failures)} of {len(self.modules)} modules do not import: {listed}")
            if self.smoke_failures:
                listed = "; ".join(f"`{statement}` ({error})"
                                   for statement, error in self.smoke_failures.items())
                parts.append(f"{len(self.smoke_failures)} of {len(self.smoke)} smoke statements fail: "
                             f"{listed}")
            return "FAILED: " + "; ".join(parts)
        return f"built but not verified: {self.reason}"


def top_level_modules(site: Path) -> list[str]:
    """Importable top-level names in the layer: packages, namespace dirs, .py files, extension modules."""
    names = set()
    for entry in site.iterdir():
        if entry.is_dir():
            name = entry.name
        elif entry.suffix == ".py":
            name = entry.stem
        elif entry.suffix == ".so" or ".so." in entry.name or entry.name.endswith(".so"):
            name = entry.name.split(".", 1)[0]
        else:
            continue
        if name.isidentifier() and name not in NOT_MODULES:
            names.add(name)
    return sorted(names)


def runtime_provided_path(scratch: Path) -> Path:
    """A directory of links to this environment's boto3 & co: what /var/runtime offers on Lambda."""
    scratch.mkdir(parents=True, exist_ok=True)
    for module in RUNTIME_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        source = origin.parent if spec.submodule_search_locations else origin
        link = scratch / source.name
        if not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return scratch


def _run_clean(python: str, script: str, argument: str, site: Path, runtime: Path, cwd: str) -> str | None:
    """Run script (module name or smoke statement as argv[1]) in a clean interpreter; None or the error."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": cwd}
    try:
        command = [python, *ISOLATED_FLAGS, "-c", script, argument, str(site), str(runtime)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S, cwd=cwd,
                              env=env, check=False)
    except subprocess.TimeoutExpired:
        return f"took longer than {IMPORT_TIMEOUT_S} s"
    if done.returncode == 0:
        return None
    return _error_summary(done.stderr) or f"exit code {done.returncode}"


def _error_summary(stderr: str) -> str:
    """The final exception line, and the first one (the root cause) when the error was chained."""
    raised = [line.strip() for line in stderr.splitlines() if _EXCEPTION_LINE.match(line)]
    if not raised:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""
    if len(raised) > 1 and raised[0] != raised[-1]:
        return f"{raised[-1]} (caused by {raised[0]})"
    return raised[-1]


def verify_layer(site: Path, target: Target, skip: tuple[str, ...] = (), python: str | None = None,
                 smoke: tuple[str, ...] = ()) -> Verification:
    """Import every top-level module of the layer at `site` (its python/ dir) as Lambda would, and run
    each smoke statement the same way (each in its own process, in parallel)."""
    modules = [name for name in top_level_modules(site) if name not in skip]
    statements = list(smoke)
    if host_arch() != target.arch:
        return Verification("unverified", f"{target.arch} layer on a {host_arch()} machine", modules=modules,
                            smoke=statements)
    python = python or find_interpreter(target.python_version)
    if python is None:
        return Verification("unverified", f"no Python {target.python_version} interpreter found "
                            f"(looked for python{target.python_version} on PATH and under ~/.pyenv)",
                            modules=modules, smoke=statements)
    jobs = [(_IMPORT_SCRIPT, name) for name in modules] + [(_SMOKE_SCRIPT, text) for text in statements]
    with tempfile.TemporaryDirectory(prefix="leanlambda-verify-") as scratch:
        runtime = runtime_provided_path(Path(scratch) / "runtime")
        workdir = Path(scratch) / "cwd"
        workdir.mkdir()
        with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
            errors = list(pool.map(
                lambda job: _run_clean(python, job[0], job[1], site.resolve(), runtime, str(workdir)), jobs))
    failures = {name: error for name, error in zip(modules, errors[:len(modules)], strict=True) if error}
    smoke_failures = {text: error for text, error in zip(statements, errors[len(modules):], strict=True)
                      if error}
    return Verification("failed" if failures or smoke_failures else "verified", modules=modules,
                        interpreter=f"Python {target.python_version} ({python})", failures=failures,
                        smoke=statements, smoke_failures=smoke_failures)
