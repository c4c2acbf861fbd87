"""Checks that run or build the function: cold start, memory, package size."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from leanlambda.emulator.runner import MODE_INIT, RunSpec, run
from leanlambda.packaging import PACKAGE_BUDGET_KB, build_package
from leanlambda.review.model import FAIL, PASS, SKIP, CheckResult, ReviewContext

COLD_START_BUDGET_MS = 100.0  # DESIGN section 4; Lambda's own hello world inits in ~80 ms
MEMORY_BUDGET_FRACTION = 0.30  # of MemorySize: room for the data a real run holds
DEFAULT_LAYER_DIR = "layer"  # FUNCTION_DIR/layer, when --layer is not given
BUILT_LAYER = ("build", "layer")  # what `leanlambda layer LAYER_DIR` writes under LAYER_DIR
EVENTS_DIR = "events"


def function_layers(ctx: ReviewContext) -> tuple[list[Path], str]:
    """The layer to measure with: --layer, else FUNCTION_DIR/layer, else the built layer named in the
    answers (a sibling folder ``<layer_name>/build/layer``, as `leanlambda layer` writes it), else none
    (said in the detail)."""
    if ctx.options.layers:
        return list(ctx.options.layers), "with " + ", ".join(str(p) for p in ctx.options.layers)
    local = ctx.function.root / DEFAULT_LAYER_DIR
    if local.is_dir():
        return [local], f"with {local}"
    layer_name = ctx.function.answers.get("layer_name")
    if isinstance(layer_name, str) and layer_name:
        sibling = ctx.function.root.parent / layer_name / Path(*BUILT_LAYER)
        if sibling.is_dir():
            return [sibling], f"with the built {layer_name} ({sibling})"
    return [], "no layer found (none given with --layer): src/ and the runtime's boto3 only"


def _failure(outcome) -> str:
    error = outcome.error or {}
    return f"{error.get('errorType', 'error')}: {error.get('errorMessage', '')}".strip()


def cold_start(ctx: ReviewContext) -> CheckResult:
    layers, layer_note = function_layers(ctx)
    runs = max(1, ctx.options.cold_start_runs)
    budget = f"<= {COLD_START_BUDGET_MS:g} ms"
    samples = []
    for _ in range(runs):
        outcome = run(RunSpec(function=ctx.function, layers=layers, mode=MODE_INIT))
        if not outcome.ok or outcome.init_ms is None:
            return CheckResult(
                "cold-start",
                FAIL,
                "import failed",
                budget,
                f"importing {ctx.function.module} failed: {_failure(outcome)}; {layer_note}",
            )
        samples.append(outcome.import_ms if outcome.import_ms is not None else outcome.init_ms)
    median = statistics.median(samples)
    value = f"{median:.1f} ms"
    detail = (
        f"median import time of {ctx.function.module} over {runs} fresh interpreter(s) "
        f"(min {min(samples):.1f}, max {max(samples):.1f}); {layer_note}"
    )
    return CheckResult("cold-start", PASS if median <= COLD_START_BUDGET_MS else FAIL, value, budget, detail)


def default_event(ctx: ReviewContext) -> Path | None:
    if ctx.options.event is not None:
        return ctx.options.event
    events = sorted((ctx.function.root / EVENTS_DIR).glob("*.json"))
    return events[0] if events else None


def memory(ctx: ReviewContext) -> CheckResult:
    import json

    from leanlambda.emulator.motoserver import moto_server

    size = ctx.function.memory_mb
    limit = size * MEMORY_BUDGET_FRACTION
    budget = f"<= {limit:.0f} MB ({MEMORY_BUDGET_FRACTION:.0%} of {size} MB)"
    event_path = default_event(ctx)
    if event_path is None:
        return CheckResult(
            "memory",
            SKIP,
            "not measured",
            budget,
            "no event to invoke with: pass --event or add events/*.json",
        )
    try:
        event = json.loads(event_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return CheckResult("memory", FAIL, "not measured", budget, f"cannot read event {event_path}: {error}")
    layers, layer_note = function_layers(ctx)
    with moto_server() as env:
        outcome = run(RunSpec(function=ctx.function, event=event, layers=layers, env=env))
    value = f"{outcome.max_memory_mb} MB"
    where = f"invoke with {event_path.name} against moto; {layer_note}"
    if not outcome.ok:
        return CheckResult("memory", FAIL, value, budget, f"the invoke failed ({_failure(outcome)}); {where}")
    status = PASS if outcome.max_memory_mb <= limit else FAIL
    return CheckResult("memory", status, value, budget, f"Max Memory Used of one {where}")


def package_size(ctx: ReviewContext) -> CheckResult:
    with tempfile.TemporaryDirectory(prefix="leanlambda-review-") as tmp:
        result = build_package(ctx.function, Path(tmp) / f"{ctx.function.name}.zip")
    status = PASS if result.kb <= PACKAGE_BUDGET_KB else FAIL
    return CheckResult(
        "package-size",
        status,
        f"{result.kb:.2f} KB",
        f"<= {PACKAGE_BUDGET_KB} KB",
        f"deterministic zip of src/ ({result.size} bytes, sha256 {result.sha256[:12]})",
    )
