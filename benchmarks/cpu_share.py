"""Lambda's CPU share per memory size, measured with leanlambda's runner (awslambdaric, cgroup quota).

    python -m benchmarks.cpu_share [--quick]

Three tables, one Markdown section (benchmarks/run.py appends it to docs/benchmarks.md):
- calibration: creating a boto3 S3 client in the invoke phase at 128/256/512/1024 MB, as ratios to
  1024 MB, next to tecracer's published figures measured on Lambda;
- a Python hello world's Init Duration and Max Memory Used next to maxday/lambda-perf's published p50;
- prewarm: the default bake with and without prewarm_services=s3 (a client created in INIT, on the full
  CPU, instead of in the first invocation, on the memory's share), cold path, billed duration and cost
  per million invocations at 1% cold starts, per memory size.
No figure here is asserted anywhere: a shared machine's figures are reported, not tested.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanlambda.emulator.cpu_quota import PERIOD_US, CpuQuota
from leanlambda.emulator.motoserver import moto_server
from leanlambda.emulator.runner import Outcome, RunSpec, run
from leanlambda.function import load_function
from leanlambda.limits import FULL_VCPU_MEMORY_MB, billed_ms, cost_per_million

ROOT = Path(__file__).resolve().parent.parent
# tecracer, "Lambda: boto3 client creation at different memory sizes" (creating one client inside the
# handler, on Lambda): ms per memory size.
PUBLISHED_CLIENT_MS = {128: 640, 256: 299, 512: 141, 1024: 74}
REFERENCE_MB = 1024
RATIO_TOLERANCE = 0.25  # how close to the published shape a ratio should be
# maxday/lambda-perf (daily cold starts of a zip hello world), python3.13 x86_64, p50.
PUBLISHED_HELLO_INIT_MS = 83.5
PUBLISHED_HELLO_MEMORY_MB = 35
PREWARM_MEMORY_MB = (128, 256, 512, 1024, FULL_VCPU_MEMORY_MB)
COLD_SHARE = 0.01  # 1% of invocations are cold starts
WARM_EVENTS = 2  # warm invocations after the cold one, per environment
RUNS, QUICK_RUNS = 5, 1
BUCKET = "my-function-bench"
TIMEOUT_S = 60
CPU_LOOP = 3_000_000  # about 50 ms on one full CPU

CLIENT_HANDLER = '''"""Creates an S3 client in the handler: the invoke phase pays for it."""

import time

import boto3


def lambda_handler(event, context):
    started = time.perf_counter()
    if event.get("loop"):
        sum(range(event["loop"]))
    else:
        boto3.client("s3", region_name="us-east-1")
    return {"client_ms": (time.perf_counter() - started) * 1000}
'''
HELLO_HANDLER = """def lambda_handler(event, context):
    return {"statusCode": 200, "body": "hello world"}
"""
TEMPLATE = """Transform: AWS::Serverless-2016-10-31
Resources:
  Function:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: {handler}
      Runtime: python3.13
      MemorySize: 128
      Timeout: {timeout}
"""


def log(message: str) -> None:
    print(f"[cpu_share] {message}", file=sys.stderr, flush=True)


def probe_function(root: Path, name: str, source: str) -> Path:
    """A one-file function folder: src/<name>.py and a template naming its handler."""
    (root / "src").mkdir(parents=True)
    (root / "src" / f"{name}.py").write_text(source, encoding="utf-8")
    template = TEMPLATE.format(handler=f"{name}.lambda_handler", timeout=TIMEOUT_S)
    (root / "template.yaml").write_text(template, encoding="utf-8")
    return root


def bake(out: Path, **answers: str) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(cookiecutter(str(ROOT), no_input=True, extra_context=answers, output_dir=str(out)))


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float]) -> str:
    if not values:
        return "not measured"
    return f"{median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def checked(outcome: Outcome) -> Outcome:
    for invocation in outcome.invocations:
        if not invocation.ok:
            raise RuntimeError(f"benchmark run failed: {invocation.error}")
    return outcome


def calibration(work: Path, runs: int) -> tuple[list[str], Outcome]:
    function = load_function(probe_function(work / "client", "client_probe", CLIENT_HANDLER))
    samples: dict[int, list[float]] = {memory: [] for memory in PUBLISHED_CLIENT_MS}
    last = None
    for _ in range(runs):
        for memory in PUBLISHED_CLIENT_MS:  # interleaved: a load change hits every size alike
            last = checked(run(RunSpec(function=function, event={}, memory_mb=memory)))
            samples[memory].append(json.loads(last.result_json or "{}")["client_ms"])
    reference = median(samples[REFERENCE_MB])
    lines = [
        "| Memory | S3 client in the invoke phase, ms (median, min-max) | ratio to 1024 MB | "
        "published ms | published ratio | within 25% |",
        "|---|---|---|---|---|---|",
    ]
    for memory, published in PUBLISHED_CLIENT_MS.items():
        ratio = median(samples[memory]) / reference
        expected = published / PUBLISHED_CLIENT_MS[REFERENCE_MB]
        close = abs(ratio - expected) <= RATIO_TOLERANCE * expected
        lines.append(
            f"| {memory} MB | {spread(samples[memory])} | {ratio:.1f}x | {published} | {expected:.1f}x | "
            f"{'yes' if close else 'no'} |"
        )
    assert last is not None
    lines += ["", *cpu_bound(function, runs)]
    return lines, last


def cpu_bound(function, runs: int) -> list[str]:
    """A pure-CPU loop at 128 MB and at 1769 MB: the quota's own ratio, expected 1769 / 128."""
    samples: dict[int, list[float]] = {128: [], FULL_VCPU_MEMORY_MB: []}
    for _ in range(runs):
        for memory in samples:
            outcome = checked(run(RunSpec(function=function, event={"loop": CPU_LOOP}, memory_mb=memory)))
            samples[memory].append(json.loads(outcome.result_json or "{}")["client_ms"])
    ratio = median(samples[128]) / median(samples[FULL_VCPU_MEMORY_MB])
    return [
        f"| CPU-bound loop (sum of range({CPU_LOOP:,})) | ms (median, min-max) |",
        "|---|---|",
        *(f"| {memory} MB | {spread(values)} |" for memory, values in samples.items()),
        f"| ratio 128 MB / {FULL_VCPU_MEMORY_MB} MB | {ratio:.1f}x (Lambda's share: "
        f"{FULL_VCPU_MEMORY_MB / 128:.1f}x) |",
        "",
        "A ratio below Lambda's means the 1769 MB runs got less than a full CPU from this shared machine "
        "(its other work still takes some, despite the group's CPU weight), so they ran slower than on "
        "Lambda; a ratio above it, the reverse.",
    ]


def hello_world(work: Path, runs: int) -> list[str]:
    function = load_function(probe_function(work / "hello", "hello", HELLO_HANDLER))
    inits, memories = [], []
    for _ in range(max(runs, 3)):
        outcome = checked(run(RunSpec(function=function, event={}, memory_mb=128)))
        inits.append(outcome.init_ms or 0.0)
        memories.append(float(outcome.max_memory_mb))
    return [
        "| Python zip hello world, python3.13 x86_64 | Init Duration, ms | Max Memory Used, MB |",
        "|---|---|---|",
        f"| this runner (median, min-max) | {spread(inits)} | {spread(memories)} |",
        f"| maxday/lambda-perf, on Lambda (p50) | about {PUBLISHED_HELLO_INIT_MS} | "
        f"about {PUBLISHED_HELLO_MEMORY_MB} |",
    ]


@dataclass
class Cell:
    """One (variant, memory) cell of the prewarm table."""

    cold: list[float]
    billed_cold: list[int]
    billed_warm: list[int]

    def cost(self, memory: int, architecture: str, billed_warm: float) -> float:
        cold = cost_per_million(round(median(self.billed_cold)), memory, architecture)
        warm = cost_per_million(round(billed_warm), memory, architecture)
        return COLD_SHARE * cold + (1 - COLD_SHARE) * warm


def prewarm(work: Path, runs: int) -> list[str]:
    variants = {
        "default bake (lazy client)": load_function(bake(work / "lazy")),
        "default + prewarm_services=s3": load_function(bake(work / "prewarm", prewarm_services="s3")),
    }
    cells: dict[tuple[str, int], Cell] = {
        (name, memory): Cell([], [], []) for name in variants for memory in PREWARM_MEMORY_MB
    }
    event = json.loads((next(iter(variants.values())).root / "events" / "event.json").read_text())
    with moto_server() as aws:
        region = next(iter(variants.values())).region
        _create_bucket(aws, region)
        env = {**aws, "DATA_BUCKET": BUCKET}
        for _ in range(runs):
            for memory in PREWARM_MEMORY_MB:
                for name, function in variants.items():
                    spec = RunSpec(
                        function=function, events=[event] * (1 + WARM_EVENTS), memory_mb=memory, env=env
                    )
                    first = checked(run(spec))
                    cell = cells[(name, memory)]
                    cell.cold.append((first.init_ms or 0.0) + (first.duration_ms or 0.0))
                    cell.billed_cold.append(
                        billed_ms(first.init_ms or 0.0) + billed_ms(first.duration_ms or 0.0)
                    )
                    cell.billed_warm += [billed_ms(warm.duration_ms or 0.0) for warm in first.invocations[1:]]
    architecture = next(iter(variants.values())).architecture
    lines = [
        "| Memory | variant | cold path (init + first invocation), ms | billed cold, ms | billed warm, ms | "
        f"USD per 1M at {COLD_SHARE:.0%} cold ({architecture}) |",
        "|---|---|---|---|---|---|",
    ]
    cheaper = []
    for memory in PREWARM_MEMORY_MB:
        # A warm invocation runs the same code in both variants (the client exists by then): one pooled
        # median, so that the cost difference is the cold path's and not the warm figures' noise.
        warm = median([ms for name in variants for ms in cells[(name, memory)].billed_warm])
        costs = {}
        for name in variants:
            cell = cells[(name, memory)]
            costs[name] = cell.cost(memory, architecture, warm)
            lines.append(
                f"| {memory} MB | {name} | {spread(cell.cold)} | {median(cell.billed_cold):.0f} | "
                f"{median(cell.billed_warm):.0f} | {costs[name]:.4f} |"
            )
        lazy, eager = (cells[(name, memory)] for name in variants)
        lazy_cost, eager_cost = costs.values()
        if max(eager.cold) < min(lazy.cold) and eager_cost < lazy_cost:
            cheaper.append(memory)  # cheaper, and the cold paths' ranges do not overlap
    lines.append("")
    lines.append(verdict(cheaper))
    return lines


def verdict(cheaper: list[int]) -> str:
    """Where prewarm pays: the sizes, from the smallest up, where it was cheaper with a cold path whose
    range lies wholly below the lazy one's; the first size where it was not is the threshold."""
    threshold = next((memory for memory in PREWARM_MEMORY_MB if memory not in cheaper), None)
    if threshold is None:
        return "**Measured: prewarm was cheaper at every memory size measured.**"
    below = [memory for memory in cheaper if memory < threshold]
    again = [memory for memory in cheaper if memory > threshold]
    if not below:
        text = f"**Measured: prewarm was not clearly cheaper at {threshold} MB, the smallest size measured"
    else:
        sizes = ", ".join(f"{memory} MB" for memory in below)
        text = f"**Measured: prewarm was cheaper at {sizes}: below {threshold} MB prewarm pays"
    if again:
        sizes = ", ".join(f"{memory} MB" for memory in again)
        text += (
            f" (at {sizes} it measured cheaper again, by less than the lazy client's cost at {threshold} MB)"
        )
    return text + ".**"


def _create_bucket(aws: dict[str, str], region: str) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        region_name=region,
        endpoint_url=aws["AWS_ENDPOINT_URL"],
        aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=aws["AWS_SESSION_TOKEN"],
    )
    where: Any = {"LocationConstraint": region}
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration=where)


def section(quick: bool = False) -> str:
    """The Markdown section: calibration, hello world and prewarm tables, or why they are missing."""
    runs = QUICK_RUNS if quick else RUNS
    quota, why = CpuQuota.create()
    if quota is None:
        return (
            f"\n## CPU share per memory size\n\nCPU not throttled ({why}): these tables need a CPU quota.\n"
        )
    quota.close()
    started, load_before = dt.datetime.now(dt.UTC), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="leanlambda-cpu-share-") as tmp:
        work = Path(tmp)
        log(f"calibration: S3 client at {', '.join(map(str, PUBLISHED_CLIENT_MS))} MB x {runs}")
        calibration_lines, sample = calibration(work, runs)
        log("hello world init and memory")
        hello_lines = hello_world(work, runs)
        log(f"prewarm: 2 variants x {len(PREWARM_MEMORY_MB)} memory sizes x {runs}")
        prewarm_lines = prewarm(work, runs)
    parts = [
        "",
        "## CPU share per memory size",
        "",
        "Unlike the sections above (benchmarks.harness, on an unthrottled CPU), this one runs Lambda's CPU "
        f"model. Measured with `leanlambda invoke`'s runner: {sample.python}; "
        f"runtime client {sample.client}; "
        f"{why}: the INIT phase runs on a full CPU, from the first `GET /next` on the process is held to "
        f"memory / {FULL_VCPU_MEMORY_MB} of one CPU (cgroup CPU quota per {PERIOD_US // 1000} ms period, on "
        f"one CPU). {runs} run(s) per cell, interleaved, each a fresh process (a cold start); "
        "medians with min-max. "
        f"`python -m benchmarks.cpu_share{' --quick' if quick else ''}` (also the end of `make bench`), "
        f"{started:%Y-%m-%d %H:%M} UTC, 1-minute load average {load_before:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} CPUs.",
        "",
        "### Calibration against Lambda",
        "",
        *calibration_lines,
        "",
        *hello_lines,
        "",
        HELLO_NOTE,
        "",
        "### Lazy or prewarm, per memory size",
        "",
        "The default bake writes its summary to S3 (DATA_BUCKET set, moto on loopback); the lazy default "
        "creates the S3 client in its first invocation, on the memory's CPU share; prewarm creates it "
        "during INIT, on the full CPU, and INIT is billed. Cold path = Init Duration + first Duration; "
        f"billed cold = both rounded up to the ms; billed warm = the next {WARM_EVENTS} invocations in the "
        "same process (the same code in both variants: the cost uses their pooled median, so the "
        "difference is the cold path's); cost per million with AWS Lambda's us-east-1 prices "
        f"(leanlambda/limits.py), {COLD_SHARE:.0%} of invocations cold. Prewarm counts as cheaper at a "
        "size only where its cold-path range lies wholly below the lazy one's.",
        "",
        *prewarm_lines,
        "",
    ]
    return "\n".join(parts)


HELLO_NOTE = (
    "Why the hello world differs from Lambda's: Init Duration here runs from the start of the runtime's "
    "Python process to its first `GET /next`: interpreter start-up, awslambdaric's import and the "
    "handler's import, on this machine's CPU, shared with other work. On Lambda it also covers the "
    "managed runtime's own bootstrap in a Firecracker microVM (the function's code read from its "
    "storage, the runtime started by Lambda's init process); the published p50 is a daily median over "
    "many cold starts on AWS's CPUs. Max Memory Used here is the runtime process's peak RSS (VmHWM); "
    "Lambda reports the memory of the whole execution environment, which also holds what runs beside "
    "the runtime process, so its figure for the same code is higher."
)


def markdown(ctx) -> str:
    """The section as `benchmarks.run` lists it in EXTRA_SECTIONS (ctx: its SectionContext)."""
    return section(ctx.quick)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cpu_share", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} run per cell instead of {RUNS}")
    args = parser.parse_args(argv)
    sys.stdout.write(section(args.quick))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
