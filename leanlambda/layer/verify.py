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

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from leanlambda.interpreters import find_interpreter
from leanlambda.layer.elf import dynamic_names, is_elf
from leanlambda.layer.target import Target, host_arch
from leanlambda.limits import (
    RUNTIME_PROVIDED_MODULES,
    RUNTIME_SDK_VERSIONS,
    RUNTIME_SYSTEM_LIBRARIES,
)

SKIPPED_REASON_PREFIX = "verification skipped"
IMPORT_TIMEOUT_S = 120
SDK_INSTALL_TIMEOUT_S = 600
MAX_WORKERS = 8
NOT_MODULES = frozenset({"bin", "__pycache__"})
SDK_CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "leanlambda" / "runtime-sdk"
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning): \S")
ISOLATED_FLAGS = ("-I", "-S", "-B")  # no env, no site, no user site, no bytecode written
MAPS_MARKER = "--leanlambda-maps--"
_PRELUDE = "import sys; sys.path[:0] = [sys.argv[2]]; sys.path.append(sys.argv[3]); "
_MAPS = (
    "; print(" + repr(MAPS_MARKER) + "); import json; "
    "print(json.dumps(sorted({l.split(None, 5)[5].strip() for l in open('/proc/self/maps') "
    "if len(l.split(None, 5)) == 6 and '.so' in l.rsplit('/', 1)[-1]})))"
)
_IMPORT_SCRIPT = (
    _PRELUDE + "import importlib; [importlib.import_module(m) for m in sys.argv[1].split(',')]" + _MAPS
)
_SMOKE_SCRIPT = _PRELUDE + "exec(compile(sys.argv[1], '<smoke>', 'exec'), {'__name__': '__main__'})" + _MAPS
_BASELINE_SCRIPT = (
    "import importlib, os, sys, sysconfig\n"
    "folder = sysconfig.get_path('platstdlib') + '/lib-dynload'\n"
    "for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:\n"
    "    if name.startswith(('_test', '_tkinter', '_curses', 'xx', '_ctypes_test')): continue\n"
    "    try: importlib.import_module(name.split('.')[0])\n"
    "    except BaseException: pass\n"
    "import ssl, ctypes, sqlite3, lzma, bz2, zlib, hashlib, decimal\n"
    "print(sys.base_prefix)"
    + _MAPS.replace("; print(", "\nprint(", 1).replace("; import json; ", "\nimport json\n", 1)
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


def _local_sdk_path(scratch: Path) -> Path:
    """Links to this environment's boto3 & co: the fallback stand-in when the pinned one cannot be had."""
    import importlib.util

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
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--no-compile",
            "--target",
            str(partial),
            *target.pip_target_args(),
            *(f"{name}=={version}" for name, version in sorted(pins.items())),
        ]
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
    libraries = _mapped(done.stdout)
    if done.returncode == 0:
        return _Run(None, libraries)
    return _Run(_error_summary(done.stderr) or f"exit code {done.returncode}", libraries)


def _mapped(stdout: str) -> list[str]:
    _, marker, after = stdout.rpartition(MAPS_MARKER + "\n")
    if not marker:
        return []
    try:
        return list(json.loads(after.strip().splitlines()[0]))
    except (ValueError, IndexError):
        return []


def _error_summary(stderr: str) -> str:
    """The final exception line, and the first one (the root cause) when the error was chained."""
    raised = [line.strip() for line in stderr.splitlines() if _EXCEPTION_LINE.match(line)]
    if not raised:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        return lines[-1] if lines else ""
    if len(raised) > 1 and raised[0] != raised[-1]:
        return f"{raised[-1]} (caused by {raised[0]})"
    return raised[-1]


@dataclass(frozen=True)
class RuntimePython:
    """What the runtime's own Python is allowed to load: its install and what its stdlib maps."""

    prefix: str
    libraries: frozenset[str]  # real paths

    @property
    def names(self) -> frozenset[str]:
        """The names other libraries need these by (their DT_SONAME, else the file name)."""
        names = set()
        for path in self.libraries:
            found = dynamic_names(Path(path)) if Path(path).is_file() else None
            names.add(found.soname if found and found.soname else Path(path).name)
        return frozenset(names)


def runtime_python(python: str, cwd: str) -> RuntimePython:
    """Import every extension module of the interpreter's standard library and read what it maps."""
    done = subprocess.run(
        [python, *ISOLATED_FLAGS, "-c", _BASELINE_SCRIPT],
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_S,
        cwd=cwd,
        check=False,
    )
    prefix = done.stdout.splitlines()[0].strip() if done.stdout else str(Path(python).resolve().parent.parent)
    return RuntimePython(
        os.path.realpath(prefix), frozenset(os.path.realpath(p) for p in _mapped(done.stdout))
    )


def _loaded_as(path: str) -> str:
    """The name a library is needed by (its DT_SONAME: libstdc++.so.6 for libstdc++.so.6.0.30)."""
    found = dynamic_names(Path(path)) if Path(path).is_file() else None
    return found.soname if found and found.soname else Path(path).name


def _foreign(libraries: list[str], site: Path, allowed: RuntimePython) -> list[str]:
    """The mapped shared objects that come from neither the layer, the runtime's Python nor the image:
    the ones something loaded directly, by the name it was asked for (libpq.so.5), with a count of what
    they pulled in with them."""
    layer = str(site.resolve()) + os.sep
    outside = []
    for path in libraries:
        real = os.path.realpath(path)
        if real.startswith(layer) or path.startswith(layer) or real.startswith(allowed.prefix + os.sep):
            continue
        if real in allowed.libraries or _loaded_as(path) in RUNTIME_SYSTEM_LIBRARIES:
            continue
        outside.append(path)
    found = {path: dynamic_names(Path(path)) for path in sorted(set(outside)) if Path(path).is_file()}
    needed = {name for names in found.values() if names for name in names.needed}
    named = {
        path: (names.soname if names and names.soname else Path(path).name) for path, names in found.items()
    }
    roots = [path for path in found if named[path] not in needed] or list(found)
    shown = [str(Path(path).parent / named[path]) for path in roots]
    if len(found) > len(roots):
        shown[-1] += f" (and {len(found) - len(roots)} libraries it needs)"
    return shown


def unmet_needed(
    site: Path, python_version: str, runtime_names: frozenset[str] = frozenset()
) -> dict[str, list[str]]:
    """Each shipped shared object's DT_NEEDED names that neither the layer, the runtime's Python nor the
    image provides (read from the files: works for any architecture)."""
    shared = [
        path
        for path in sorted(site.rglob("*"))
        if path.is_file() and ".so" in path.name and not path.is_symlink() and is_elf(path)
    ]
    names = {path.name for path in shared} | {path.name for path in site.rglob("*.so*") if path.is_symlink()}
    dynamic = {path: dynamic_names(path) for path in shared}
    names |= {found.soname for found in dynamic.values() if found and found.soname}
    provided = names | RUNTIME_SYSTEM_LIBRARIES | runtime_names | {f"libpython{python_version}.so.1.0"}
    unmet = {}
    for path, found in dynamic.items():
        missing = [name for name in (found.needed if found else ()) if name not in provided]
        if missing:
            unmet[path.relative_to(site).as_posix()] = missing
    return unmet


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
        outside = _foreign(result.libraries, site, baseline)
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
