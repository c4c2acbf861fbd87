"""Whether a layer leans on the build machine: the shared objects a proof process mapped, and the
DT_NEEDED names of the ones the layer ships, against what Lambda provides.

Allowed are the layer's own files, the runtime's Python (its install, and the libraries its standard
library's extension modules load: OpenSSL, libffi, sqlite, ...) and the system libraries of Lambda's image
(limits.RUNTIME_SYSTEM_LIBRARIES, the manylinux allow-list). A library is matched by the name it is
needed by (its DT_SONAME), so libstdc++.so.6.0.30 counts as libstdc++.so.6.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from leanlambda.layer.elf import dynamic_names, is_elf
from leanlambda.limits import RUNTIME_SYSTEM_LIBRARIES

BASELINE_TIMEOUT_S = 120
ISOLATED_FLAGS = ("-I", "-S", "-B")  # no env, no site, no user site, no bytecode written
MAPS_MARKER = "--leanlambda-maps--"
# Appended to a proof script: prints every mapped file whose name holds ".so", after the marker.
MAPS_SUFFIX = (
    "; print(" + repr(MAPS_MARKER) + "); import json; "
    "print(json.dumps(sorted({l.split(None, 5)[5].strip() for l in open('/proc/self/maps') "
    "if len(l.split(None, 5)) == 6 and '.so' in l.rsplit('/', 1)[-1]})))"
)
# What the runtime's Python loads by itself: every extension module of its standard library, except the
# test modules and the terminal and Tk bindings (Lambda's Python has no display or terminal to use).
_BASELINE_SCRIPT = (
    "import importlib, os, sys, sysconfig\n"
    "folder = sysconfig.get_path('platstdlib') + '/lib-dynload'\n"
    "for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:\n"
    "    if name.startswith(('_test', '_tkinter', '_curses', 'xx', '_ctypes_test')): continue\n"
    "    try: importlib.import_module(name.split('.')[0])\n"
    "    except BaseException: pass\n"
    "import ssl, ctypes, sqlite3, lzma, bz2, zlib, hashlib, decimal\n"
    "print(sys.base_prefix)"
    + MAPS_SUFFIX.replace("; print(", "\nprint(", 1).replace("; import json; ", "\nimport json\n", 1)
)


def mapped_libraries(stdout: str) -> list[str]:
    """The paths a script ending in MAPS_SUFFIX printed (none if it failed before printing them)."""
    _, marker, after = stdout.rpartition(MAPS_MARKER + "\n")
    if not marker:
        return []
    try:
        return list(json.loads(after.strip().splitlines()[0]))
    except (ValueError, IndexError):
        return []


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
        timeout=BASELINE_TIMEOUT_S,
        cwd=cwd,
        check=False,
    )
    prefix = done.stdout.splitlines()[0].strip() if done.stdout else str(Path(python).resolve().parent.parent)
    return RuntimePython(
        os.path.realpath(prefix), frozenset(os.path.realpath(p) for p in mapped_libraries(done.stdout))
    )


def _loaded_as(path: str) -> str:
    """The name a library is needed by (its DT_SONAME: libstdc++.so.6 for libstdc++.so.6.0.30)."""
    found = dynamic_names(Path(path)) if Path(path).is_file() else None
    return found.soname if found and found.soname else Path(path).name


def foreign_libraries(libraries: list[str], site: Path, allowed: RuntimePython) -> list[str]:
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
