"""Checks that run or build the function: cold start, memory, package size.

Every run goes through `_run` (the emulator's `run(RunSpec) -> Outcome`), with the function's
dependencies as Lambda would have them: its layers (given with --layer, or found built next to it) and
its requirements.txt installed for Lambda's platform. What the review cannot provide (a layer it was not
given, a requirement it cannot install, an environment value only a deployed stack knows) is named; a
run that fails for want of it is skipped with that reason, never failed.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from leanlambda.emulator.runner import MODE_INIT, MODE_INVOKE, Outcome, RunSpec, run
from leanlambda.packaging import build_package
from leanlambda.review.budgets import MEASURE_COLD_PATH
from leanlambda.review.deps import NOTHING_TO_INSTALL, install_requirements, requirements_file
from leanlambda.review.locate import mapping
from leanlambda.review.model import FAIL, PASS, SKIP, CheckResult, ReviewContext

DEFAULT_LAYER_DIR = "layer"  # FUNCTION_DIR/layer, when --layer is not given
BUILT_LAYER = ("build", "layer")  # what `leanlambda layer LAYER_DIR` writes under LAYER_DIR
EVENTS_DIR = "events"
MISSING_MODULE_ERRORS = ("ModuleNotFoundError", "ImportError", "Runtime.ImportModuleError")


@dataclass
class Setup:
    """What a measured run is given, and what it lacks (each lack named)."""

    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lacks: list[str] = field(default_factory=list)

    def note(self) -> str:
        return "; ".join(self.notes + [f"lacking {lack}" for lack in self.lacks])


def _layers(ctx: ReviewContext, setup: Setup) -> None:
    if ctx.options.layers:
        setup.paths += list(ctx.options.layers)
        setup.notes.append("with " + ", ".join(str(p) for p in ctx.options.layers))
        return
    local = ctx.function.root / DEFAULT_LAYER_DIR
    if local.is_dir():
        setup.paths.append(local)
        setup.notes.append(f"with {local}")
        return
    layer_name = ctx.function.answers.get("layer_name")
    if isinstance(layer_name, str) and layer_name:
        sibling = ctx.function.root.parent / layer_name / Path(*BUILT_LAYER)
        if sibling.is_dir():
            setup.paths.append(sibling)
            setup.notes.append(f"with the built {layer_name} ({sibling})")
            return
    declared = ctx.function.layers
    missing = [layer for layer in declared if not _template_layer(ctx, layer, setup)]
    if missing:
        names = ", ".join(_layer_name(layer) for layer in missing)
        setup.lacks.append(f"the layer(s) {names} (give them with --layer)")
    elif not declared:
        setup.notes.append("no layer")


LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")


def _template_layer(ctx: ReviewContext, layer: object, setup: Setup) -> bool:
    """A layer of the same template, built from a local ContentUri: its zip or folder if built, else its
    requirements.txt installed as `sam build` would. False when it is not such a layer."""
    if not (isinstance(layer, dict) and set(layer) == {"Ref"}):
        return False
    resources = ctx.function.template.get("Resources")
    resource = resources.get(layer["Ref"]) if isinstance(resources, dict) else None
    if not isinstance(resource, dict) or resource.get("Type") not in LAYER_TYPES:
        return False
    props = mapping(resource.get("Properties"))
    content = props.get("ContentUri", props.get("Content"))
    if not isinstance(content, str):
        return False
    base = ctx.function.template_path.parent
    path = base / content
    if path.exists() and path.resolve().is_relative_to(base.resolve()):
        setup.paths.append(path)
        setup.notes.append(f"with the template's layer {layer['Ref']} ({content})")
        return True
    folder = base / content.split("/", 1)[0]  # the layer's project folder, e.g. core-layer/
    requirements = folder / "requirements.txt"
    if not requirements.is_file() or not ctx.options.install_requirements:
        return False
    site, note = install_requirements(requirements, ctx.function.architecture, ctx.function.runtime)
    if site is None:
        setup.lacks.append(f"the layer {layer['Ref']}: {note}")
        return True
    setup.paths.append(site)
    setup.notes.append(f"the template's layer {layer['Ref']} from {requirements.relative_to(base)} ({note})")
    return True


def _layer_name(layer: object) -> str:
    if isinstance(layer, str):
        return layer.rsplit(":", 2)[-2] if layer.count(":") >= 7 else layer
    if isinstance(layer, dict) and len(layer) == 1:
        key, value = next(iter(layer.items()))
        return f"!{key.replace('Fn::', '')} {value}"
    return str(layer)


def setup_for(ctx: ReviewContext) -> Setup:
    setup = Setup()
    _layers(ctx, setup)
    requirements = requirements_file(ctx.function.src, ctx.function.root)
    if requirements is not None and ctx.options.install_requirements:
        site, note = install_requirements(requirements, ctx.function.architecture, ctx.function.runtime)
        if site is not None:
            setup.paths.append(site)
        (setup.notes if site is not None or note == NOTHING_TO_INSTALL else setup.lacks).append(note)
    ctx.function.environment()  # resolves what it can, names the rest
    for name, why in ctx.function.unresolved_env.items():
        setup.lacks.append(f"environment {name} ({why})")
    return setup


def _failure(outcome: Outcome) -> str:
    error = outcome.error or {}
    return f"{error.get('errorType', 'error')}: {error.get('errorMessage', '')}".strip()


def _lacking_result(check_id: str, budget: str, outcome: Outcome, setup: Setup) -> CheckResult | None:
    """A failed run is skipped, not failed, when the review lacked something the function is given."""
    if not setup.lacks:
        return None
    return CheckResult(
        check_id,
        SKIP,
        "not measured",
        budget,
        f"the run failed ({_failure(outcome)[:200]}) without what only Lambda would give it: {setup.note()}",
    )


def _run(
    ctx: ReviewContext, setup: Setup, mode: str, event: object = None, env: dict[str, str] | None = None
) -> Outcome:
    """The one call of the emulator."""
    return run(
        RunSpec(function=ctx.function, event=event, layers=list(setup.paths), env=env or {}, mode=mode)
    )


def _moto() -> contextlib.AbstractContextManager[dict[str, str]]:
    """A throwaway moto server (imported late: moto is heavy and only invokes need it)."""
    from leanlambda.emulator.motoserver import moto_server

    return moto_server()


def default_event(ctx: ReviewContext) -> Path | None:
    if ctx.options.event is not None:
        return ctx.options.event
    code = ctx.function.src
    for folder in (ctx.function.root / EVENTS_DIR, code / EVENTS_DIR, code.parent / EVENTS_DIR):
        events = sorted(folder.glob("*.json"))
        if events:
            return events[0]
    return None


def _read_event(path: Path) -> tuple[object, str]:
    try:
        return json.loads(path.read_text(encoding="utf-8")), ""
    except (OSError, ValueError) as error:
        return None, f"cannot read event {path}: {error}"


def cold_start(ctx: ReviewContext) -> CheckResult:
    budget_spec = ctx.budgets.cold_start
    cold_path = budget_spec.measure == MEASURE_COLD_PATH
    what = "init + first invocation" if cold_path else "init"
    budget = f"<= {budget_spec.limit:g} ms ({what})"
    setup = setup_for(ctx)
    runs = max(1, ctx.options.cold_start_runs)
    event = None
    if cold_path:
        event_path = default_event(ctx)
        if event_path is None:
            return CheckResult(
                "cold-start", SKIP, "not measured", budget, "the cold path needs an event: --event"
            )
        event, problem = _read_event(event_path)
        if problem:
            return CheckResult("cold-start", FAIL, "not measured", budget, problem)
    samples = []
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(_moto()) if cold_path else {}
        for _ in range(runs):
            outcome = _run(ctx, setup, MODE_INVOKE if cold_path else MODE_INIT, event, env)
            if not outcome.ok or outcome.init_ms is None:
                skipped = _lacking_result("cold-start", budget, outcome, setup)
                return skipped or CheckResult(
                    "cold-start",
                    FAIL,
                    "run failed",
                    budget,
                    f"{ctx.function.handler} failed: {_failure(outcome)[:300]}; {setup.note()}",
                )
            if cold_path:
                samples.append(outcome.init_ms + (outcome.duration_ms or 0.0))
            else:  # the handler's import alone: Init Duration also holds the runtime client's start
                samples.append(outcome.import_ms if outcome.import_ms is not None else outcome.init_ms)
    median = statistics.median(samples)
    detail = (
        f"median {what} of {ctx.function.module} over {runs} fresh interpreter(s) "
        f"(min {min(samples):.1f}, max {max(samples):.1f}); measured with {outcome.python}; "
        f"{setup.note()}{budget_spec.note()}"
    )
    status = PASS if median <= budget_spec.limit else FAIL
    return CheckResult("cold-start", status, f"{median:.1f} ms", budget, detail)


def memory(ctx: ReviewContext) -> CheckResult:
    size = ctx.function.memory_mb
    fraction = ctx.budgets.memory.limit
    limit = size * fraction
    budget = f"<= {limit:.0f} MB ({fraction:.0%} of {size} MB)"
    event_path = default_event(ctx)
    if event_path is None:
        return CheckResult(
            "memory",
            SKIP,
            "not measured",
            budget,
            "no event to invoke with: pass --event or add events/*.json",
        )
    event, problem = _read_event(event_path)
    if problem:
        return CheckResult("memory", FAIL, "not measured", budget, problem)
    setup = setup_for(ctx)
    with _moto() as env:
        outcome = _run(ctx, setup, MODE_INVOKE, event, env)
    value = f"{outcome.max_memory_mb} MB"
    where = f"invoke with {event_path.name} against moto; {setup.note()}{ctx.budgets.memory.note()}"
    if not outcome.ok:
        skipped = _lacking_result("memory", budget, outcome, setup)
        return skipped or CheckResult(
            "memory", FAIL, value, budget, f"the invoke failed ({_failure(outcome)[:300]}); {where}"
        )
    status = PASS if outcome.max_memory_mb <= limit else FAIL
    return CheckResult("memory", status, value, budget, f"Max Memory Used of one {where}")


def package_size(ctx: ReviewContext) -> CheckResult:
    spec = ctx.budgets.package_size
    with tempfile.TemporaryDirectory(prefix="leanlambda-review-") as tmp:
        result = build_package(ctx.function, Path(tmp) / f"{ctx.function.name}.zip")
    status = PASS if result.kb <= spec.limit else FAIL
    code = ctx.function.src.relative_to(ctx.function.root).as_posix()
    return CheckResult(
        "package-size",
        status,
        f"{result.kb:.2f} KB",
        f"<= {spec.limit:g} KB",
        f"deterministic zip of the function's own code in {code}/ ({result.size} bytes, sha256 "
        f"{result.sha256[:12]}){spec.note()}",
    )
