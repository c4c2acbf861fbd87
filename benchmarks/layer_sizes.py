"""Naive `pip install -t` vs `leanlambda layer` for the Makenaide core layer: size and cold import, one run.

    python benchmarks/layer_sizes.py [--layer-dir examples/makenaide-core-layer] [--markdown FILE]

All rows hold the same packages in the same versions, built for the same target (layer.toml: python3.13,
x86_64), so that only what `leanlambda layer` leaves out, slims and compiles differs:

- default: `leanlambda layer LAYER_DIR` as a user runs it: bytecode compiled by the runtime's exact
  Python (found here), requirements resolved for the runtime's platform tags and frozen in
  requirements.lock;
- no bytecode: the same build with `bytecode = false`;
- naive: that requirements.lock (including anything left out as runtime-provided) installed by the
  runtime's Python with `pip install --target DIR --no-deps` and exactly the same target options
  (`--only-binary=:all: --implementation cp --python-version 3.13` and every manylinux tag the builder
  offers pip), otherwise pip's defaults (bytecode compiled, nothing excluded or slimmed), zipped with
  deflate at zip's default level. The versions of the trees are compared package by package; a mismatch
  aborts the run.

Cold import: the median of IMPORT_RUNS fresh `python3.13 -I -S -B` processes that import every top-level
module the proof imported (companions through their parent), each from a read-only copy of the layer with
the runtime's SDK stand-in after it, as on Lambda's read-only /opt (leanlambda.layer.coldstart). The
three layers take turns run by run, so a change in this machine's load weighs on all three alike.

Needs the package index (or pip's cache) and the runtime's Python.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from leanlambda.interpreters import find_interpreter
from leanlambda.layer import build_layer, load_settings
from leanlambda.layer.builder import LOCK_FILE
from leanlambda.layer.builder import mb as size_text
from leanlambda.layer.coldstart import cold_import_medians
from leanlambda.layer.coldstart import naive_layer as pip_install_naive
from leanlambda.layer.install import canonical
from leanlambda.layer.runtime_sdk import runtime_sdk_path
from leanlambda.layer.target import Target
from leanlambda.limits import MIB

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LAYER_DIR = ROOT / "examples" / "makenaide-core-layer"
LARGEST_SHOWN = 8
WATCHED = ("numpy", "pandas")  # shown in the table's rows
NAIVE_ZIP_LEVEL = 6  # zip(1)'s and zipfile's default; leanlambda writes level 9
LEFT_OUT_PREFIX = "#   "  # how requirements.lock lists what was left out as runtime-provided
IMPORT_RUNS = 7


def runtime_python(target: Target) -> str:
    python = find_interpreter(target.python_version)
    if python is None:
        raise SystemExit(f"benchmark: needs Python {target.python_version} (the runtime's) on this machine")
    return python


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


def naive_layer(lock: Path, target: Target, work: Path, python: str) -> Naive:
    pins = lock_pins(lock)
    site = work / "naive" / "python"
    try:
        pip_install_naive(pins, target, python, site)
    except subprocess.CalledProcessError as error:
        tail = (error.stderr or b"").decode(errors="replace").strip().splitlines()[-1:]
        raise SystemExit(f"benchmark: the naive pip install failed: {' '.join(tail) or error}") from None
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


def markdown(
    naive: Naive, slim, slim_site: Path, target: Target, plain, imports: dict[str, float], modules: list[str]
) -> str:
    """slim: the default build (bytecode); plain: the same with bytecode = false."""
    held = same_versions(naive, slim)
    watched = ", ".join(f"{name} {held[name]}" for name in WATCHED if name in held)
    tags = target.platform_tags()

    def row(label: str, count: int, unzipped: int, zipped: int, seconds: float) -> str:
        return (
            f"| {label} | {count} | {mb(unzipped)} | {mb(zipped)} | {unzipped / naive.unzipped:.1%} "
            f"| {zipped / naive.zipped:.1%} | {seconds:.2f} |"
        )

    lines = [
        f"| Makenaide core layer, {target.runtime} {target.arch}; {watched} in all | packages | unzipped "
        "| zipped (deflate) | unzipped vs naive | zipped vs naive | cold import, s |",
        "|---|---:|---:|---:|---:|---:|---:|",
        row(
            "naive `pip install -t --no-deps` of the same `requirements.lock`, same tags",
            len(held),
            naive.unzipped,
            naive.zipped,
            imports["naive"],
        ),
        row(
            f"`leanlambda layer` (default: bytecode {'yes' if slim.bytecode else 'no'})",
            len(slim.packages),
            slim.unzipped_bytes,
            slim.zipped_bytes,
            imports["default"],
        ),
        row(
            "`leanlambda layer` with `bytecode = false`",
            len(plain.packages),
            plain.unzipped_bytes,
            plain.zipped_bytes,
            imports["plain"],
        ),
        "",
        f"Cold import: median of {IMPORT_RUNS} fresh `python{target.python_version} -I -S -B` processes "
        f"(Python {target.python_version} is the runtime's), each importing the layer's top-level modules "
        f"({', '.join(modules)}) from a read-only copy of that layer with the runtime's SDK stand-in after "
        "it; nothing can write bytecode, as on Lambda's read-only /opt, so a layer without bytecode is "
        "compiled again at every cold start.",
        "",
        f"Same resolved versions in every row: the naive row installs the default build's `{LOCK_FILE}` "
        f"({', '.join(naive.pins)}) with `--no-deps` and the same target options as the builder "
        f"(`--only-binary=:all: --implementation cp --python-version {target.python_version}` and "
        f"`--platform` {tags[0]} ... {tags[-1]}, {len(tags)} tags); the versions were compared "
        "package by package.",
        "",
        f"The naive row keeps pip's defaults: bytecode compiled by pip under Python {target.python_version} "
        f"({mb(naive.bytecode)} of its {mb(naive.unzipped)}), zip at deflate level {NAIVE_ZIP_LEVEL} "
        "(`leanlambda layer` writes level 9).",
        "",
        f"Lambda limits: 250 MB unzipped (function + all layers), 50 MB zipped for direct upload. "
        f"Proof of the default layer: {slim.verification.summary()}.",
        "",
        "Left out and slimmed: "
        + (", ".join(slim.left_out) + " (runtime-provided); " if slim.left_out else "")
        + ", ".join(f"{name} {size_text(size)}" for name, size in slim.slimmed_bytes.items())
        + ".",
        "",
        "| largest top-level entries | naive | default |",
        "|---|---:|---:|",
    ]
    naive_sizes, slim_sizes = by_top_level(naive.site), by_top_level(slim_site)
    for name, size in naive_sizes.most_common(LARGEST_SHOWN):
        lines.append(f"| `{name}` | {mb(size)} | {mb(slim_sizes.get(name, 0))} |")
    lines += ["", "| by kind | naive | default |", "|---|---:|---:|"]
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
    python = runtime_python(settings.target)
    with tempfile.TemporaryDirectory(prefix="leanlambda-bench-") as scratch:
        work = Path(scratch)
        print("benchmark: leanlambda layer (default) ...", file=sys.stderr)
        slim = build_layer(settings, out_dir=work / "default", measure=False)
        print("benchmark: leanlambda layer with bytecode = false ...", file=sys.stderr)
        plain = build_layer(replace(settings, bytecode=False), out_dir=work / "plain", measure=False)
        print("benchmark: naive pip install -t of the same requirements.lock ...", file=sys.stderr)
        naive = naive_layer(work / "default" / "layer" / LOCK_FILE, settings.target, work, python)
        verification = slim.verification
        modules = [name for name in verification.modules if name not in verification.companions]
        print(f"benchmark: timing cold imports of {', '.join(modules)} from each ...", file=sys.stderr)
        runtime, _ = runtime_sdk_path(settings.target, work / "runtime-fallback")
        imports = cold_import_medians(
            {
                "naive": naive.site,
                "default": work / "default" / "layer" / "python",
                "plain": work / "plain" / "layer" / "python",
            },
            python,
            modules,
            runtime,
            IMPORT_RUNS,
        )
        table = markdown(
            naive, slim, work / "default" / "layer" / "python", settings.target, plain, imports, modules
        )
    print(table, end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
