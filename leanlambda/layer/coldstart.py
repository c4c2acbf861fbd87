"""Measure what a layer costs at a cold start: the median import time of its top-level modules in fresh
processes, on a read-only copy, the way Lambda's /opt is; and the naive `pip install -t` layer to compare.

Lambda cannot write bytecode under /opt, so a layer shipped without it is compiled again at every cold
start. Each sample is a new `python -I -S -B` process (no site, no environment, no bytecode written) that
imports the modules from a copy whose files and folders are read-only.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from leanlambda.layer.target import Target

COLD_IMPORT_RUNS = 5
COLD_IMPORT_TIMEOUT_S = 300
NAIVE_TIMEOUT_S = 1800
_IMPORT = (
    "import sys; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2]); "
    "import importlib; [importlib.import_module(m) for m in sys.argv[3].split(',')]"
)


def read_only_copy(site: Path, destination: Path) -> Path:
    """Copy site to destination and make every file and folder read-only (as /opt is on Lambda)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(site, destination, symlinks=True)
    for root, dirs, files in os.walk(destination):
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                path.chmod(0o444)
        for name in dirs:
            (Path(root) / name).chmod(0o555)
    destination.chmod(0o555)
    return destination


def _make_writable(root: Path) -> None:
    for folder, dirs, _files in os.walk(root):
        Path(folder).chmod(0o755)
        for name in dirs:
            (Path(folder) / name).chmod(0o755)


def cold_import_seconds(
    site: Path, python: str, modules: list[str], runtime_sdk: Path | None = None, runs: int = COLD_IMPORT_RUNS
) -> float:
    """Median wall time of importing `modules` from a read-only copy of site, each run a fresh process."""
    return cold_import_medians({"layer": site}, python, modules, runtime_sdk, runs)["layer"]


def cold_import_medians(
    sites: dict[str, Path],
    python: str,
    modules: list[str],
    runtime_sdk: Path | None = None,
    runs: int = COLD_IMPORT_RUNS,
) -> dict[str, float]:
    """Median cold import per layer; the layers take turns, run by run, so that a machine whose load
    changes during the measurement weighs on all of them alike."""
    with tempfile.TemporaryDirectory(prefix="leanlambda-cold-") as scratch:
        copies = {
            label: read_only_copy(site, Path(scratch) / label / "python") for label, site in sites.items()
        }
        samples: dict[str, list[float]] = {label: [] for label in sites}
        try:
            for _ in range(runs):
                for label, copy in copies.items():
                    command = [
                        python,
                        "-I",
                        "-S",
                        "-B",
                        "-c",
                        _IMPORT,
                        str(copy),
                        str(runtime_sdk or scratch),
                        ",".join(modules),
                    ]
                    started = time.perf_counter()
                    subprocess.run(
                        command, check=True, capture_output=True, cwd=scratch, timeout=COLD_IMPORT_TIMEOUT_S
                    )
                    samples[label].append(time.perf_counter() - started)
        finally:
            _make_writable(Path(scratch))
    return {label: statistics.median(values) for label, values in samples.items()}


def naive_layer(pins: list[str], target: Target, python: str, destination: Path) -> Path:
    """`pip install -t` of exactly these name==version pins, with the target's options and otherwise pip's
    defaults (bytecode compiled by `python`, nothing left out or slimmed): what most layers are."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    frozen = destination.parent / f"{destination.name}-requirements.txt"
    frozen.write_text("\n".join(pins) + "\n", encoding="utf-8")
    try:
        command = target.pip_install_command(
            destination, ["-r", str(frozen)], python=python, compile_bytecode=True, extra=["--no-deps"]
        )
        subprocess.run(command, check=True, capture_output=True, timeout=NAIVE_TIMEOUT_S)
    finally:
        frozen.unlink(missing_ok=True)
    return destination


def compile_seconds(site: Path) -> tuple[int, float]:
    """(number of modules, seconds) to compile every Python source of the layer with this Python: what a
    layer without bytecode pays, at most, at each cold start for the modules it imports."""
    count, started = 0, time.perf_counter()
    for path in site.rglob("*.py"):
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            continue
        count += 1
    return count, time.perf_counter() - started
