"""Naive `pip install -t` vs `leanlambda layer` for the Makenaide core layer, side by side, in one run.

    python benchmarks/layer_sizes.py [--layer-dir examples/makenaide-core-layer] [--markdown FILE]

Both rows hold the same packages in the same versions, built for the same target, so that only what
`leanlambda layer` leaves out and slims differs:

- slim: `leanlambda layer LAYER_DIR` (python3.11, x86_64 from layer.toml), which resolves the requirements
  for the runtime's platform tags and freezes the result in requirements.lock;
- naive: that requirements.lock (including anything left out as runtime-provided) installed with
  `pip install --target DIR --no-deps` and exactly the same target options (`--only-binary=:all:
  --implementation cp --python-version 3.11` and every manylinux tag the builder offers pip), otherwise
  pip's defaults (bytecode compiled, nothing excluded or slimmed), zipped with deflate at zip's default
  level. The versions of the two trees are compared package by package; a mismatch aborts the run.

A third row builds the same layer with `bytecode = true`, and every row shows how long `import pyupbit`
(pandas, numpy, requests) takes from it: the median of IMPORT_RUNS fresh `python -I -S -B` processes on
this machine, where nothing can write bytecode, as on Lambda's read-only /opt. Size and cold start pull
against each other; the table shows by how much.

Both need the package index (or pip's cache).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from leanlambda.layer import build_layer, load_settings
from leanlambda.layer.builder import LOCK_FILE
from leanlambda.layer.builder import mb as size_text
from leanlambda.layer.install import canonical
from leanlambda.layer.target import Target
from leanlambda.limits import MIB

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LAYER_DIR = ROOT / "examples" / "makenaide-core-layer"
LARGEST_SHOWN = 8
WATCHED = ("numpy", "pandas")  # shown in the table's rows
NAIVE_ZIP_LEVEL = 6  # zip(1)'s and zipfile's default; leanlambda writes level 9
LEFT_OUT_PREFIX = "#   "  # how requirements.lock lists what was left out as runtime-provided
IMPORT_RUNS = 7
IMPORT_PROBE = "pyupbit"  # what the data collector imports: pandas, numpy, requests


def import_seconds(site: Path, python_version: str) -> float:
    """Median wall time of importing IMPORT_PROBE from ``site`` in fresh interpreters that cannot cache."""
    from leanlambda.layer.verify import find_interpreter

    python = find_interpreter(python_version) or sys.executable
    code = f"import sys; sys.path[:0] = [sys.argv[1]]; import {IMPORT_PROBE}"
    samples = []
    for _ in range(IMPORT_RUNS):
        started = time.perf_counter()
        subprocess.run([python, "-I", "-S", "-B", "-c", code, str(site)], check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


@dataclass
class Naive:
    site: Path
    unzipped: int
    zipped: int
    bytecode: int
    pins: list[str]


def tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def by_top_level(root: Path) -> Counter:
    sizes: Counter = Counter()
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            sizes[path.relative_to(root).parts[0]] += path.stat().st_size
    return sizes


def by_kind(root: Path) -> Counter:
    """Bytes of compiled code (shared libraries), Python source, bytecode and everything else."""
    sizes: Counter = Counter()
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        name = path.name
        if name.endswith(".so") or ".so." in name:
            kind = "compiled code (.so)"
        elif name.endswith(".py"):
            kind = "Python source (.py)"
        elif name.endswith(".pyc"):
            kind = "bytecode (.pyc)"
        else:
            kind = "data, metadata, licences"
        sizes[kind] += path.stat().st_size
    return sizes


def versions(site: Path) -> dict[str, str]:
    """canonical name -> version, from the .dist-info directories pip wrote."""
    found = {}
    for info in site.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found[canonical(name)] = version
    return found


def lock_pins(lock: Path) -> list[str]:
    """Every name==version the build resolved: what the layer holds and what it left out."""
    pins = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        text = line[len(LEFT_OUT_PREFIX) :] if line.startswith(LEFT_OUT_PREFIX) else line
        if text and not text.startswith("#") and "==" in text:
            pins.append(text.strip())
    return pins


def naive_layer(lock: Path, target: Target, work: Path) -> Naive:
    pins = lock_pins(lock)
    frozen = work / "naive-requirements.txt"
    frozen.write_text("\n".join(pins) + "\n", encoding="utf-8")
    site = work / "naive" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(site),
            "--no-deps",
            *target.pip_target_args(),
            "-r",
            str(frozen),
        ],
        check=True,
    )
    archive = work / "naive.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=NAIVE_ZIP_LEVEL) as out:
        for root, _dirs, files in os.walk(site.parent):
            for name in sorted(files):
                path = Path(root) / name
                out.write(path, path.relative_to(site.parent).as_posix())
    return Naive(
        site, tree_bytes(site.parent), archive.stat().st_size, by_kind(site)["bytecode (.pyc)"], pins
    )


def same_versions(naive: Naive, slim) -> dict[str, str]:
    """The versions both trees hold; exit if they differ (the comparison would not be like for like)."""
    expected = dict(pin.split("==", 1) for pin in slim.packages + slim.left_out)
    found = versions(naive.site)
    if found != expected:
        differ = sorted(set(found.items()) ^ set(expected.items()))
        raise SystemExit(f"benchmark: the naive and slim layers resolved different versions: {differ}")
    return expected


def mb(size: int) -> str:
    return f"{size / MIB:.1f} MB"


def markdown(naive: Naive, slim, slim_site: Path, target: Target, compiled, imports: dict[str, float]) -> str:
    held = same_versions(naive, slim)
    watched = ", ".join(f"{name} {held[name]}" for name in WATCHED if name in held)
    ratio = slim.unzipped_bytes / naive.unzipped
    zipped_ratio = slim.zipped_bytes / naive.zipped
    tags = target.platform_tags()
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    lines = [
        f"| Makenaide core layer, {target.runtime} {target.arch}; {watched} in both | packages | unzipped "
        f"| zipped (deflate) | unzipped vs naive | zipped vs naive | `import {IMPORT_PROBE}`, s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| naive `pip install -t --no-deps` of the same `requirements.lock`, same tags | {len(held)} "
        f"| {mb(naive.unzipped)} | {mb(naive.zipped)} | 100% | 100% | {imports['naive']:.2f} |",
        f"| `leanlambda layer` | {len(slim.packages)} | {mb(slim.unzipped_bytes)} | {mb(slim.zipped_bytes)} "
        f"| {ratio:.1%} | {zipped_ratio:.1%} | {imports['slim']:.2f} |",
        f"| `leanlambda layer` with `bytecode = true` | {len(compiled.packages)} "
        f"| {mb(compiled.unzipped_bytes)} | {mb(compiled.zipped_bytes)} "
        f"| {compiled.unzipped_bytes / naive.unzipped:.1%} | {compiled.zipped_bytes / naive.zipped:.1%} "
        f"| {imports['compiled']:.2f} |",
        "",
        f"`import {IMPORT_PROBE}`: median of {IMPORT_RUNS} fresh `python{target.python_version} -I -S -B` "
        "processes on this machine, with only that layer on the path; nothing can write bytecode, as on "
        "Lambda's read-only /opt, so a layer without bytecode is compiled again at every cold start.",
        "",
        f"Same resolved versions in both rows: the naive row installs the slim build's `{LOCK_FILE}` "
        f"({', '.join(naive.pins)}) with `--no-deps` and the same target options as the builder "
        f"(`--only-binary=:all: --implementation cp --python-version {target.python_version}` and "
        f"`--platform` {tags[0]} ... {tags[-1]}, {len(tags)} tags); the versions were compared "
        "package by package. Only exclusion and slimming differ.",
        "",
        f"The naive row keeps pip's defaults: bytecode compiled by Python {python} "
        f"({mb(naive.bytecode)} of its {mb(naive.unzipped)}), zip at deflate level {NAIVE_ZIP_LEVEL} "
        "(`leanlambda layer` writes level 9). Half of the naive size would be "
        f"{mb(naive.unzipped // 2)} unzipped.",
        "",
        f"Lambda limits: 250 MB unzipped (function + all layers), 50 MB zipped for direct upload. "
        f"Proof of the slim layer: {slim.verification.summary()}.",
        "",
        "Left out and slimmed: "
        + (", ".join(slim.left_out) + " (runtime-provided); " if slim.left_out else "")
        + ", ".join(f"{name} {size_text(size)}" for name, size in slim.slimmed_bytes.items())
        + ".",
        "",
        "| largest top-level entries | naive | slim |",
        "|---|---:|---:|",
    ]
    naive_sizes, slim_sizes = by_top_level(naive.site), by_top_level(slim_site)
    for name, size in naive_sizes.most_common(LARGEST_SHOWN):
        lines.append(f"| `{name}` | {mb(size)} | {mb(slim_sizes.get(name, 0))} |")
    lines += ["", "| by kind | naive | slim |", "|---|---:|---:|"]
    naive_kinds, slim_kinds = by_kind(naive.site), by_kind(slim_site)
    for kind, size in naive_kinds.most_common():
        lines.append(f"| {kind} | {mb(size)} | {mb(slim_kinds.get(kind, 0))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-dir", type=Path, default=DEFAULT_LAYER_DIR)
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the Markdown table here")
    args = parser.parse_args(argv)
    settings = load_settings(args.layer_dir)
    with tempfile.TemporaryDirectory(prefix="leanlambda-bench-") as scratch:
        work = Path(scratch)
        print("benchmark: leanlambda layer ...", file=sys.stderr)
        slim = build_layer(replace(settings, bytecode=False), out_dir=work / "slim")
        print("benchmark: leanlambda layer with bytecode ...", file=sys.stderr)
        compiled = build_layer(replace(settings, bytecode=True), out_dir=work / "compiled")
        print("benchmark: naive pip install -t of the same requirements.lock ...", file=sys.stderr)
        naive = naive_layer(work / "slim" / "layer" / LOCK_FILE, settings.target, work)
        print(f"benchmark: timing import {IMPORT_PROBE} from each ...", file=sys.stderr)
        version = settings.target.python_version
        imports = {
            "naive": import_seconds(naive.site, version),
            "slim": import_seconds(work / "slim" / "layer" / "python", version),
            "compiled": import_seconds(work / "compiled" / "layer" / "python", version),
        }
        table = markdown(naive, slim, work / "slim" / "layer" / "python", settings.target, compiled, imports)
    print(table, end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
