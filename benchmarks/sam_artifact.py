"""Init of what `sam build` deploys: the default bake's .aws-sam/build/Function/, under the runtime's Python.

    python -m benchmarks.sam_artifact [--runs N]      # prints the Markdown section

The default bake is built by the real SAM CLI (its `Metadata: BuildMethod: makefile` runs `leanlambda
package` into the build folder: minified source plus bytecode compiled by the runtime's Python when that
Python is here). The measuring child (benchmarks/_child.py) then imports the handler module from that
folder with the runtime's own interpreter, on the Lambda-like floor (json and logging imported before
the clock, as Lambda's bootstrap has), interleaved with the floor itself and with the same folder
without its bytecode (what Lambda compiles at every cold start when none is shipped).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import LAMBDA_PRELOADED, Samples, Variant, run_child

ROOT = Path(__file__).resolve().parent.parent
RUNS = 20
SHUFFLE_SEED = 20251111
TARGET_OVER_FLOOR_MS = 3.0
SAM_TIMEOUT_S = 900
BUILT_FUNCTION = Path(".aws-sam") / "build" / "Function"


def _bake(out: Path) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(out)))


def _sam_build(function_dir: Path) -> Path:
    """`sam build` of the bake, with this venv first on PATH (make runs its leanlambda)."""
    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
    }
    done = subprocess.run(
        [str(venv_bin / "sam"), "build", "--template-file", "template.yaml"],
        cwd=function_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=SAM_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return function_dir / BUILT_FUNCTION


def _floor(work: Path, version: str) -> Path:
    """An empty handler module with its bytecode, like the artifact's: the floor compiles nothing either."""
    from leanlambda.bytecode import FUNCTION_ROOT, compile_tree

    folder = work / "floor"
    folder.mkdir()
    (folder / "bench_floor.py").write_text("def lambda_handler(event, context):\n    return {}\n")
    compile_tree(folder, version, FUNCTION_ROOT)
    return folder


def _measure(variants: list[Variant], python: str, runs: int, work: Path, site: Path) -> dict[str, Samples]:
    """``runs`` interleaved rounds under ``python``, the child's site-packages pointed at ``site``: the
    harness's default is this venv's, built for another Python."""
    import benchmarks.harness as harness

    samples = {variant.key: Samples(variant) for variant in variants}
    shuffler = random.Random(SHUFFLE_SEED)
    saved, harness.SITE_PACKAGES = harness.SITE_PACKAGES, str(site)
    try:
        for _ in range(runs):
            order = list(variants)
            shuffler.shuffle(order)
            for variant in order:
                samples[variant.key].runs.append(run_child(variant, work, python=python))
    finally:
        harness.SITE_PACKAGES = saved
    return samples


def _row(label: str, samples: Samples, floor: Samples | None) -> str:
    wall, cpu = samples.stat("init_ms"), samples.stat("init_cpu_ms")
    if floor is None:
        return f"| {label} | {wall.fmt(2)} | | {cpu.fmt(2)} | |"
    over = wall.median - floor.median("init_ms")
    over_cpu = cpu.median - floor.median("init_cpu_ms")
    return f"| {label} | {wall.fmt(2)} | {over:.2f} | {cpu.fmt(2)} | {over_cpu:.2f} |"


def section(runs: int = RUNS) -> str:
    """The Markdown section: the deployed artifact's init against the floor, or why it was not measured."""
    from leanlambda.interpreters import find_interpreter
    from leanlambda.limits import DEFAULT_RUNTIME, python_of

    heading = ["## The deployed artifact (`sam build`)", ""]
    version = python_of(DEFAULT_RUNTIME)
    python = find_interpreter(version)
    if python is None or not (Path(sys.executable).parent / "sam").is_file():
        missing = f"no Python {version} here" if python is None else "no SAM CLI in this venv"
        return "\n".join([*heading, f"Not measured: {missing}.", ""])
    with tempfile.TemporaryDirectory(prefix="leanlambda-sam-bench-") as tmp:
        work = Path(tmp)
        function_dir = _bake(work / "bake")
        built = _sam_build(function_dir)
        answers = json.loads((function_dir / ".cookiecutter.json").read_text())
        module = f"{answers['__module_name']}.handler"
        files = sorted(p for p in built.rglob("*") if p.is_file())
        pycs = [p for p in files if p.suffix == ".pyc"]
        source_only = work / "source-only"
        shutil.copytree(built, source_only, ignore=shutil.ignore_patterns("__pycache__"))
        empty_site = work / "site"  # the handler's init imports only the standard library
        empty_site.mkdir()
        common = {"preload": LAMBDA_PRELOADED, "env": {"AWS_DEFAULT_REGION": answers["region"]}}
        variants = [
            Variant("floor", "floor", "bench_floor", (_floor(work, version),), **common),
            Variant("artifact", "artifact", module, (built,), **common),
            Variant("source", "source only", module, (source_only,), **common),
        ]
        started = time.monotonic()
        samples = _measure(variants, python, runs, work, empty_site)
        duration = time.monotonic() - started
    floor = samples["floor"]
    over = samples["artifact"].median("init_ms") - floor.median("init_ms")
    verdict = "met" if over <= TARGET_OVER_FLOOR_MS else "missed"
    return "\n".join(
        [
            *heading,
            "Generated by `benchmarks/sam_artifact.py` (run by `make bench`). "
            f"The default bake ({DEFAULT_RUNTIME}, "
            f"{answers['memory_size']} MB) built by the real SAM CLI: `.aws-sam/build/Function/` holds "
            f"{len(files)} files ({len(pycs)} of them bytecode for Python {version}), exactly the files of "
            "`leanlambda package`. Each figure is the median of "
            f"{runs} fresh `{Path(python).name}` processes ({python}), min-max in brackets, interleaved with "
            "the floor (an empty handler module, with its bytecode) on the Lambda-like preloads "
            f"({', '.join(LAMBDA_PRELOADED)} "
            f"imported before the clock). Whole run {duration:.0f} s.",
            "",
            "| variant | init ms | over the floor, ms | init CPU ms | CPU over the floor, ms |",
            "|---|---|---|---|---|",
            _row("floor (empty module, with its bytecode)", floor, None),
            _row("deployed artifact (with its bytecode)", samples["artifact"], floor),
            _row("same files without bytecode (compiled at each start)", samples["source"], floor),
            "",
            f"Target: the deployed artifact's init at most {TARGET_OVER_FLOOR_MS:g} ms over the floor: "
            f"{verdict} ({over:.2f} ms).",
            "",
        ]
    )


def markdown(ctx) -> str:
    """The section as `benchmarks.run` lists it in EXTRA_SECTIONS (ctx: its SectionContext)."""
    return section(ctx.runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--runs", type=int, default=RUNS, help=f"fresh processes per variant (default {RUNS})"
    )
    args = parser.parse_args(argv)
    sys.stdout.write(section(args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
