"""The project's targets, read off the measured figures: a verdict per target, and why the misses miss.

Reported, never asserted by a test. A verdict is "n/a" only when a figure it needs was not measured:
comparisons are made without dividing (eager >= factor x own), so an overhead that came out zero or
negative on a loaded machine still gets a verdict, and the figures are printed as they came.
"""

from __future__ import annotations

from benchmarks.harness import LAMBDA_PRELOADED
from benchmarks.metric_calls import allowed_calls
from benchmarks.report import Report, fmt, fmt_difference, mib, para
from leanlambda.limits import FULL_VCPU_MEMORY_MB

TARGET_INIT_OVERHEAD_MS = 3.0
TARGET_EAGER_FACTOR = 20.0
TARGET_RSS_FACTOR = 1.3
NOISE_TOLERANCE = 0.03
"""Two variants doing the same work differ by about this much on this shared machine (paired ratios)."""


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def init_overhead_rows(rep: Report) -> list[str]:
    out = []
    lambda_floor = f"bare + `import {', '.join(LAMBDA_PRELOADED)}` before the handler"
    for name, what in (("init_ms", "wall"), ("init_cpu_ms", "CPU")):
        for key, floor in (("default", "the truly bare interpreter"), ("default_lambda", lambda_floor)):
            over = rep.overhead(key, name)
            out.append(
                f"| init overhead of the default handler <= {TARGET_INIT_OVERHEAD_MS:g} ms "
                f"over {floor} "
                f"({what}: import in the child minus the floor's) | {fmt(over, 2)} ms "
                f"| {verdict(None if over is None else over <= TARGET_INIT_OVERHEAD_MS)} |"
            )
    pyc = rep.overhead("default_pyc_lambda", "init_cpu_ms")
    if pyc is not None:
        out.append(
            f"| the same, Lambda-like floor, with the function's bytecode shipped (CPU; what "
            f"`leanlambda package --bytecode` builds) | {fmt_difference(pyc)} "
            f"| {verdict(pyc <= TARGET_INIT_OVERHEAD_MS)} |"
        )
    return out


def eager_factor(eager: float, own: float) -> str:
    """How many times the eager variant's overhead is the default's, or why there is no such factor."""
    if own > 0:
        return f"{eager / own:.1f}x"
    return "no factor: the default's overhead is not above zero"


def eager_rows(rep: Report) -> list[str]:
    out = []
    for name, what in (("init_ms", "wall"), ("init_cpu_ms", "CPU")):
        for key, floor in (("default", "the bare floor"), ("default_lambda", "the Lambda-like floor")):
            eager_key = rep.eager_for(key)
            if eager_key is None:
                continue
            own, eager = rep.overhead(key, name), rep.overhead(eager_key, name)
            if own is None or eager is None:
                measured, ok = f"{fmt(eager, 1)} ms / {fmt(own, 2)} ms", None
            else:
                measured = f"{eager:.1f} ms / {own:.2f} ms = {eager_factor(eager, own)}"
                ok = eager >= TARGET_EAGER_FACTOR * own
            out.append(
                f"| default init overhead >= {TARGET_EAGER_FACTOR:g}x less than its eager variant's "
                f"({what}, both over {floor}) | {measured} | {verdict(ok)} |"
            )
    return out


def rss_rows(rep: Report) -> list[str]:
    out = []
    pairs = (
        ("default", "floor", f"peak RSS after init <= {TARGET_RSS_FACTOR:g}x the bare interpreter's"),
        ("default_lambda", "floor_lambda", "the same against the Lambda-like floor"),
    )
    for key, floor, what in pairs:
        if key not in rep.samples:
            continue
        rss, floor_rss = rep.med(key, "rss_init_kib"), rep.med(floor, "rss_init_kib")
        factor = rss / floor_rss if rss is not None and floor_rss else None
        out.append(
            f"| {what} | {fmt(mib(rss))} MiB / {fmt(mib(floor_rss))} MiB = {fmt(factor, 2)}x "
            f"| {verdict(None if factor is None else factor <= TARGET_RSS_FACTOR)} |"
        )
    return out


def metric_row(metric_rows: list[dict]) -> str:
    worst = [row for row in metric_rows if row["calls"] > allowed_calls(row["n"], row["backend"])]
    summary = ", ".join(f"{row['n']}: {row['calls']}" for row in metric_rows if row["backend"] != "emf")
    emf_calls = sum(row["calls"] for row in metric_rows if row["backend"] == "emf")
    return (
        f"| PutMetricData calls <= ceil(n/1000); EMF none | PutMetricData {summary}; EMF {emf_calls} "
        f"| {verdict(not worst) if metric_rows else 'n/a'} |"
    )


def prewarm_rows(rep: Report, tolerance: float) -> list[str]:
    out = []
    for name, what in (("cold_ms", "wall"), ("cold_cpu_ms", "CPU")):
        prewarm, eager = rep.med("default_prewarm", name), rep.med("default_eager", name)
        paired = rep.paired_ratio("default_prewarm", "default_eager", name)
        if prewarm is None or eager is None or paired is None:
            continue
        control = rep.paired_ratio("default_eager_aa", "default_eager", name)
        noise = max(tolerance, abs(control - 1) if control is not None else 0.0)
        word = (
            "PASS"
            if paired <= 1
            else (f"PASS (within the {noise:.1%} noise)" if paired <= 1 + noise else "MISS")
        )
        aa = f"; A/A control (identical copies) {control:.3f}" if control is not None else ""
        out.append(
            f"| cold path with prewarm never slower than its eager variant's (default + prewarm s3 vs "
            f"default eager, {what}) | medians {prewarm:.1f} ms vs {eager:.1f} ms; median of the "
            f"per-round ratios {paired:.3f}{aa} | {word} |"
        )
    for key in rep.rows:
        if key.endswith("_prewarm") and key != "default_prewarm" and f"{key}_eager" in rep.samples:
            a, b = rep.med(key, "cold_ms"), rep.med(f"{key}_eager", "cold_ms")
            if a is not None and b is not None:
                out.append(
                    f"| {rep.s(key).variant.label}: cold path vs its eager variant | {a:.1f} ms vs "
                    f"{b:.1f} ms | {'PASS' if a <= b * (1 + tolerance) else 'MISS'} |"
                )
    return out


def target_rows(rep: Report, metric_rows: list[dict], tolerance: float = NOISE_TOLERANCE) -> list[str]:
    return [
        "| target | measured | verdict |",
        "|---|---|---|",
        *init_overhead_rows(rep),
        *eager_rows(rep),
        *rss_rows(rep),
        metric_row(metric_rows),
        *prewarm_rows(rep, tolerance),
    ]


def why_the_misses(rep: Report) -> list[str]:
    """Where a target is missed: the cause, read off the figures above, and what would close it."""
    bare, lambda_like = rep.overhead("default", "init_cpu_ms"), rep.overhead("default_lambda", "init_cpu_ms")
    pyc = rep.overhead("default_pyc_lambda", "init_cpu_ms")
    if bare is None or lambda_like is None or pyc is None:
        return []
    preloaded = ", ".join(LAMBDA_PRELOADED)
    pyc_bytes = rep.s("default_pyc_lambda").variant.package_bytes
    source_bytes = rep.s("default_lambda").variant.package_bytes
    budget = f"{TARGET_INIT_OVERHEAD_MS:g} ms"
    return [
        "### Why the misses, and what would close them",
        "",
        para(f"""- **Over the truly bare interpreter** (init {bare:.1f} ms, the eager ratio, RSS):
        {bare - lambda_like:.1f} ms of the default's {bare:.1f} ms is `import {preloaded}`, the difference
        between the two floors, and alone more than the {budget} budget. The design requires stdlib
        `logging`, and EMF is JSON; Lambda's Python runtime has imported both before it imports a handler,
        so on Lambda that cost is paid whatever the handler does, and the Lambda-like floor is the one that
        says what the handler adds. Deferring those imports would pass this local figure and change nothing
        on Lambda."""),
        para(f"""- **Over the Lambda-like floor** (init {lambda_like:.2f} ms CPU): the rest is compiling
        the function's modules at every cold start, because Lambda's /var/task is read-only and no
        `__pycache__` survives. With the bytecode shipped the same figure is {fmt_difference(pyc)},
        which meets the target: `leanlambda package --bytecode` builds that zip, {pyc_bytes} bytes
        against {source_bytes}, several times the few KB a lean function's zip takes, hence not the
        default. Shipping the runtime's bytecode once in the shared layer would meet both, but moves
        template-owned modules out of the function's `src/` (docs/design.md, Packaging). Deferring the
        runtime's imports to the first invocation would also pass here, but only by moving the compile
        into the invoke phase, which Lambda throttles to memory / {FULL_VCPU_MEMORY_MB} MB of a vCPU: a
        slower cold start on Lambda for a better local figure, so it was not done."""),
        "",
    ]
