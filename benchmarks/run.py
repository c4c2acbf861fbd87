"""Side-by-side benchmarks of lean functions against their eager twins, Powertools and the bare interpreter.

    python -m benchmarks.run [--markdown docs/benchmarks.md] [--runs N] [--quick] [--skip-layer]

One run measures everything in fresh processes, interleaved (benchmarks.harness), against one moto server
on a free loopback port, one loopback Upbit replay server (benchmarks.upbit_replay) and, for the examples
that use PostgreSQL, one throwaway PostgreSQL server (benchmarks.fixtures). What is measured is
benchmarks.variants; the tables are benchmarks.report and benchmarks.targets; the document is
benchmarks.document. The document states the machine, the command, the method and every figure's median,
min and max.

A section of its own (a bench that is not a variant of the above) is a module with a function
``markdown(ctx: SectionContext) -> str`` returning Markdown from its own ``## `` heading on; listed in
EXTRA_SECTIONS, it is run after the measurements and printed after the layer section, in that order.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import cpu_share, sam_artifact
from benchmarks.document import Run, render
from benchmarks.fixtures import REGION, ROOT, Moto, Postgres, ensure_bucket
from benchmarks.harness import log, measure
from benchmarks.metric_calls import count_metric_calls
from benchmarks.report import Report
from benchmarks.upbit_replay import UpbitReplay
from benchmarks.variants import bake, build_variants, stage

RUNS = 20
"""Fresh processes per variant (the median of these is reported, with min and max)."""
QUICK_RUNS = 3
"""--quick: enough to see the shape in under a minute, not to quote."""
LAYER_SCRIPT = Path(__file__).resolve().parent / "layer_sizes.py"
LAYER_TIMEOUT_S = 1800
LAYER_SKIPPED = (
    "Layer bench skipped (`--skip-layer` or `--quick`): it downloads wheels and is slow. "
    "Run `python benchmarks/layer_sizes.py --markdown FILE`."
)


@dataclass
class SectionContext:
    """What a section of its own gets: the run's options, a scratch folder, the measured samples."""

    quick: bool
    runs: int
    work: Path  # removed after the run
    report: Report


EXTRA_SECTIONS: tuple[Callable[[SectionContext], str], ...] = (sam_artifact.markdown, cpu_share.markdown)
"""Sections of their own, printed after the layer section in this order (see the module's docstring)."""


def run_layer_bench(work: Path) -> tuple[str, str]:
    """(markdown, note): the layer table from benchmarks/layer_sizes.py, or why there is none."""
    if not LAYER_SCRIPT.is_file():
        return "", "benchmarks/layer_sizes.py is missing: no layer figures in this run."
    out = work / "layer.md"
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [sys.executable, str(LAYER_SCRIPT), "--markdown", str(out)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=LAYER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return "", f"benchmarks/layer_sizes.py did not finish within {LAYER_TIMEOUT_S} s: no layer figures."
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return "", f"benchmarks/layer_sizes.py failed (exit {proc.returncode}): `{tail[0][:300]}`"
    took = time.monotonic() - started
    return out.read_text(encoding="utf-8"), f"From `benchmarks/layer_sizes.py` (took {took:.0f} s)."


def layer_section(work: Path, skip: bool) -> str:
    if skip:
        markdown, note = "", LAYER_SKIPPED
    else:
        log("running benchmarks/layer_sizes.py")
        markdown, note = run_layer_bench(work)
    return f"## Layer\n\n{note}\n\n{markdown.strip()}"


def extra_sections(ctx: SectionContext) -> tuple[list[str], list[str]]:
    """(Markdown of each section, the failures): a failing section is reported in the document, not lost
    with the rest of the run."""
    texts, failures = [], []
    for section in EXTRA_SECTIONS:
        name = f"{section.__module__}.{section.__qualname__}"
        log(f"section {name}")
        try:
            texts.append(section(ctx))
        except Exception as error:
            failures.append(f"{name}: {type(error).__name__}: {error}")
            texts.append(f"## {name}\n\nNo figures: this section failed ({type(error).__name__}: {error}).")
    return texts, failures


def command_line(argv: list[str]) -> str:
    python = Path(sys.executable)
    try:
        python_text = str(python.relative_to(Path.cwd()))
    except ValueError:
        python_text = str(python)
    return " ".join([python_text, "-m", "benchmarks.run", *argv])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path, help="write the report here (default: print it)")
    parser.add_argument(
        "--runs", type=int, default=None, help=f"fresh processes per variant (default {RUNS})"
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_RUNS} runs, the default bake only, no layer bench"
    )
    parser.add_argument("--skip-layer", action="store_true", help="do not run benchmarks/layer_sizes.py")
    args = parser.parse_args(argv)
    args.runs = args.runs or (QUICK_RUNS if args.quick else RUNS)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    pg = Postgres()
    with (
        tempfile.TemporaryDirectory(prefix="leanlambda-bench-run-") as tmp,
        Moto() as moto,
        UpbitReplay() as upbit,
    ):
        work = Path(tmp)
        ensure_bucket(moto, REGION)
        try:
            variants, rows, notes = build_variants(work, args.quick, moto, pg, upbit)
            log(f"measuring {len(variants)} variants x {args.runs} fresh processes, interleaved")
            samples = measure(variants, args.runs, progress=log)
        finally:
            pg.stop()
        log("counting metrics API calls")
        pmd_root = bake(work / "bake-put-metric-data", metrics_backend="put_metric_data")
        metric_rows = count_metric_calls(
            {
                "emf": work / "default" / "src",
                "put_metric_data": stage(pmd_root / "src", work / "pmd" / "src"),
            },
            moto,
            REGION,
        )
        report = Report(samples, rows)
        sections = [layer_section(work, args.skip_layer or args.quick)]
        more, failures = extra_sections(SectionContext(args.quick, args.runs, work, report))
        sections += more
    text = render(
        Run(
            report=report,
            runs=args.runs,
            command=command_line(argv),
            duration_s=time.monotonic() - started,
            load=(load_before, os.getloadavg()[0]),
            notes=notes,
            metric_rows=metric_rows,
            sections=sections,
        )
    )
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
        log(f"wrote {args.markdown} in {time.monotonic() - started:.0f} s")
    else:
        sys.stdout.write(text)
    for failure in failures:
        print(f"benchmarks.run: section failed: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
