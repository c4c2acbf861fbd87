"""Naive `pip install -t` vs `leanlambda layer` for the Makenaide core layer, side by side, in one run.

    python benchmarks/layer_sizes.py [--layer-dir examples/makenaide-core-layer] [--markdown FILE]

Naive: what a hand-made layer usually is: pip install --target for cp311 manylinux2014_x86_64 with pip's
defaults (bytecode compiled, nothing excluded or slimmed), zipped with deflate. Slim: `leanlambda layer`
for the same requirements (python3.11, x86_64). Both need the package index (or pip's cache).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from leanlambda.layer import build_layer, load_settings
from leanlambda.layer.builder import MIB

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LAYER_DIR = ROOT / "examples" / "makenaide-core-layer"
NAIVE_PLATFORM = "manylinux2014_x86_64"
NAIVE_PYTHON = "3.11"
LARGEST_SHOWN = 6
WATCHED = ("numpy", "pandas")  # versions worth showing: resolution can differ between the two


def tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def by_top_level(root: Path) -> Counter:
    sizes: Counter = Counter()
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            sizes[path.relative_to(root).parts[0]] += path.stat().st_size
    return sizes


def versions(site: Path) -> dict[str, str]:
    found = {}
    for info in site.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found[name.lower().replace("_", "-")] = version
    return found


def naive_layer(requirements: Path, work: Path) -> tuple[Path, int, int]:
    site = work / "naive" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target",
         str(site), "--platform", NAIVE_PLATFORM, "--implementation", "cp", "--python-version", NAIVE_PYTHON,
         "--only-binary=:all:", "-r", str(requirements)],
        check=True,
    )
    archive = work / "naive.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for root, _dirs, files in os.walk(site.parent):
            for name in files:
                path = Path(root) / name
                out.write(path, path.relative_to(site.parent).as_posix())
    return site, tree_bytes(site.parent), archive.stat().st_size


def mb(size: int) -> str:
    return f"{size / MIB:.1f} MB"


def markdown(naive: tuple[Path, int, int], slim, slim_site: Path) -> str:
    naive_site, naive_unzipped, naive_zipped = naive
    naive_versions, slim_versions = versions(naive_site), versions(slim_site)

    def watched(found: dict[str, str]) -> str:
        return ", ".join(f"{name} {found[name]}" for name in WATCHED if name in found)

    ratio = slim.unzipped_bytes / naive_unzipped
    lines = [
        "| Makenaide core layer, python3.11 x86_64 | packages | unzipped | zipped (deflate) | vs naive |",
        "|---|---:|---:|---:|---:|",
        f"| naive `pip install -t` ({NAIVE_PLATFORM}; {watched(naive_versions)}) | {len(naive_versions)} "
        f"| {mb(naive_unzipped)} | {mb(naive_zipped)} | 100% |",
        f"| `leanlambda layer` ({watched(slim_versions)}) | {len(slim.packages)} | {mb(slim.unzipped_bytes)} "
        f"| {mb(slim.zipped_bytes)} | {ratio:.0%} |",
        "",
        f"Lambda limits: 250 MB unzipped (function + all layers), 50 MB zipped for direct upload. "
        f"Import proof of the slim layer: {slim.verification.summary()}.",
        "",
        "Slimming: " + ", ".join(f"{name} {mb(size)}" for name, size in slim.slimmed_bytes.items()) + ".",
        "",
        "| largest top-level entries | naive | slim |",
        "|---|---:|---:|",
    ]
    naive_sizes, slim_sizes = by_top_level(naive_site), by_top_level(slim_site)
    for name, size in naive_sizes.most_common(LARGEST_SHOWN):
        lines.append(f"| `{name}` | {mb(size)} | {mb(slim_sizes.get(name, 0))} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-dir", type=Path, default=DEFAULT_LAYER_DIR)
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="also write the Markdown table here")
    args = parser.parse_args(argv)
    settings = load_settings(args.layer_dir)
    with tempfile.TemporaryDirectory(prefix="leanlambda-bench-") as scratch:
        work = Path(scratch)
        print("benchmark: naive pip install -t ...", file=sys.stderr)
        naive = naive_layer(settings.requirements, work)
        print("benchmark: leanlambda layer ...", file=sys.stderr)
        slim = build_layer(settings, out_dir=work / "slim")
        table = markdown(naive, slim, work / "slim" / "layer" / "python")
    print(table, end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
