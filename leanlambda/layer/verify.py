"""Prove a layer: import each of its top-level modules in a clean interpreter of the target's Python, and
show that nothing it loads comes from the build machine.

The original Makenaide layer held pyupbit without pandas and nothing noticed until Lambda failed to
import it. Here every top-level module is imported in its own `python -I -S -B` process whose path holds
the layer, the standard library and, after the layer as /var/runtime is on Lambda, a stand-in for the
runtime's SDK: the boto3/botocore release that limits.RUNTIME_SDK_VERSIONS names for the runtime,
installed once into a cache, never the build environment's own copy.

An import that succeeds can still lean on this machine: psycopg 3 without its [binary] extra imports
here through the host's libpq (found by ctypes), and Lambda's image has no libpq. So after the imports
and the smoke statements, each process lists the shared objects mapped into it (/proc/self/maps), and
the proof fails, naming the module, when one comes from anywhere but the layer, the runtime's Python
(its install and the libraries its own extension modules load) or the system libraries Lambda's image
provides (limits.RUNTIME_SYSTEM_LIBRARIES). Each shipped .so's DT_NEEDED is checked against the same
rule without running anything, which also covers a layer for another architecture.

Companion distributions whose import needs their parent first (psycopg_binary needs psycopg) are proved
through the parent: a module that fails alone is imported again after the modules of the distributions
that depend on it.

The layer's smoke statements (layer.toml `smoke`) go deeper than imports, e.g. a rolling mean through
pandas' compiled window code: each runs, the same way, in its own clean interpreter.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from leanlambda.imports import top_level_module
from leanlambda.interpreters import find_interpreter
from leanlambda.layer.isolation import (
    ISOLATED_FLAGS,
    MAPS_SUFFIX,
    RuntimePython,
    foreign_libraries,
    mapped_libraries,
    runtime_python,
    unmet_needed,
)
from leanlambda.layer.runtime_sdk import runtime_sdk_path
from leanlambda.layer.target import Target, host_arch

SKIPPED_REASON_PREFIX = "verification skipped"
IMPORT_TIMEOUT_S = 120
MAX_WORKERS = 8
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning): \S")

_PRELUDE = "import sys; sys.path[:0] = [sys.argv[2]]; sys.path.append(sys.argv[3]); "
_IMPORT_SCRIPT = (
    _PRELUDE + "import importlib; [importlib.import_module(m) for m in sys.argv[1].split(',')]" + MAPS_SUFFIX
)
_SMOKE_SCRIPT = (
    _PRELUDE + "exec(compile(sys.argv[1], '<smoke>', 'exec'), {'__name__': '__main__'})" + MAPS_SUFFIX
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
    companions: dict[str, str] = field(default_factory=dict)  # module -> the parent it was proved through
    foreign_libraries: dict[str, list[str]] = field(default_factory=dict)  # module/statement -> host paths
    unmet_needed: dict[str, list[str]] = field(default_factory=dict)  # shipped .so -> DT_NEEDED not provided
    runtime_sdk: str = ""  # what stood in for the runtime's boto3/botocore

    def summary(self) -> str:
        if self.status == "verified":
            checks = f" and all {len(self.smoke)} smoke statements run" if self.smoke else ""
            through = (
                " (" + ", ".join(f"{m} through {p}" for m, p in sorted(self.companions.items())) + ")"
                if self.companions
                else ""
            )
            return (
                f"verified: all {len(self.modules)} top-level modules import{through}{checks}, loading "
                f"nothing from this machine, under {self.interpreter} with {self.runtime_sdk}"
            )
        if self.status == "failed":
            return "FAILED: " + "; ".join(self._problems())
        problems = self._problems()
        lead = f"built but not verified: {self.reason}"
        if problems:
            return lead + " (" + "; ".join(problems) + ")"
        checked = not self.reason.startswith(SKIPPED_REASON_PREFIX)
        return lead + (
            "; every shipped .so's DT_NEEDED is provided by the layer or Lambda's image" if checked else ""
        )

    def _problems(self) -> list[str]:
        parts = []
        if self.failures:
            listed = "; ".join(f"{name} ({error})" for name, error in sorted(self.failures.items()))
            parts.append(f"{len(self.failures)} of {len(self.modules)} modules do not import: {listed}")
        if self.smoke_failures:
            listed = "; ".join(f"`{statement}` ({error})" for statement, error in self.smoke_failures.items())
            parts.append(f"{len(self.smoke_failures)} of {len(self.smoke)} smoke statements fail: {listed}")
        for name, paths in sorted(self.foreign_libraries.items()):
            parts.append(
                f"{name} loads {', '.join(paths)} from this machine, not from the layer (Lambda "
                "has no such library)"
            )
        for library, needed in sorted(self.unmet_needed.items()):
            parts.append(
                f"{library} needs {', '.join(needed)}, which neither the layer nor Lambda's image provides"
            )
        return parts


def top_level_modules(site: Path) -> list[str]:
    """Importable top-level names in the layer: packages, namespace dirs, .py files, extension modules."""
    found = (top_level_module(entry.name, entry.is_dir()) for entry in site.iterdir())
    return sorted({name for name in found if name is not None})


@dataclass
class _Run:
    error: str | None
    libraries: list[str]


def _run_clean(python: str, script: str, argument: str, site: Path, runtime: Path, cwd: str) -> _Run:
    """Run script (modules or smoke statement as argv[1]) in a clean interpreter: its error, if any, and
    the shared objects mapped into it."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": cwd}
    try:
        command = [python, *ISOLATED_FLAGS, "-c", script, argument, str(site), str(runtime)]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S, cwd=cwd, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return _Run(f"took longer than {IMPORT_TIMEOUT_S} s", [])
    libraries = mapped_libraries(done.stdout)
    if done.returncode == 0:
        return _Run(None, libraries)
    return _Run(_error_summary(done.stderr) or f"exit code {done.returncode}", libraries)


def _error_summary(stderr: str) -> str:
    """The final exception line, and the first one (the root cause) when the error was chained."""
    raised = [line.strip() for line in stderr.splitlines() if _EXCEPTION_LINE.match(line)]
    if not raised:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""
    if len(raised) > 1 and raised[0] != raised[-1]:
        return f"{raised[-1]} (caused by {raised[0]})"
    return raised[-1]


def verify_layer(
    site: Path,
    target: Target,
    skip: tuple[str, ...] = (),
    python: str | None = None,
    smoke: tuple[str, ...] = (),
    parents: dict[str, list[str]] | None = None,
) -> Verification:
    """Import every top-level module of the layer at `site` (its python/ dir) as Lambda would, run each
    smoke statement the same way (each in its own process, in parallel), and check what they load.

    parents maps a module to the modules of the distributions that depend on it: a module that fails
    alone is tried again after them (a companion such as psycopg_binary)."""
    modules = [name for name in top_level_modules(site) if name not in skip]
    statements = list(smoke)
    python = python or find_interpreter(target.python_version)
    with tempfile.TemporaryDirectory(prefix="leanlambda-verify-") as scratch:
        workdir = Path(scratch) / "cwd"
        workdir.mkdir()
        baseline = (
            runtime_python(python, str(workdir)) if python else RuntimePython("/nonexistent", frozenset())
        )
        unmet = unmet_needed(site, target.python_version, baseline.names)
        if host_arch() != target.arch or python is None:
            reason = (
                f"{target.arch} layer on a {host_arch()} machine"
                if host_arch() != target.arch
                else f"no Python {target.python_version} interpreter found (looked for "
                f"python{target.python_version} on PATH and under ~/.pyenv)"
            )
            return Verification(
                "failed" if unmet else "unverified",
                reason,
                modules=modules,
                smoke=statements,
                unmet_needed=unmet,
            )
        runtime, sdk = runtime_sdk_path(target, Path(scratch) / "runtime")
        resolved = site.resolve()

        def run(job: tuple[str, str]) -> _Run:
            return _run_clean(python, job[0], job[1], resolved, runtime, str(workdir))

        jobs = [(_IMPORT_SCRIPT, name) for name in modules] + [(_SMOKE_SCRIPT, text) for text in statements]
        with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
            runs = list(pool.map(run, jobs))
        companions: dict[str, str] = {}
        for index, name in enumerate(modules):
            if runs[index].error is None:
                continue
            for parent in (parents or {}).get(name, []):
                retry = run((_IMPORT_SCRIPT, f"{parent},{name}"))
                if retry.error is None:
                    runs[index], companions[name] = retry, parent
                    break
    failures = {name: r.error for name, r in zip(modules, runs[: len(modules)], strict=True) if r.error}
    smoke_failures = {
        text: r.error for text, r in zip(statements, runs[len(modules) :], strict=True) if r.error
    }
    foreign = {}
    for label, result in zip([*modules, *(f"`{text}`" for text in statements)], runs, strict=True):
        outside = foreign_libraries(result.libraries, site, baseline)
        if outside:
            foreign[label] = outside
    failed = bool(failures or smoke_failures or foreign or unmet)
    return Verification(
        "failed" if failed else "verified",
        modules=modules,
        interpreter=f"Python {target.python_version} ({python})",
        failures=failures,
        smoke=statements,
        smoke_failures=smoke_failures,
        companions=companions,
        foreign_libraries=foreign,
        unmet_needed=unmet,
        runtime_sdk=sdk,
    )
