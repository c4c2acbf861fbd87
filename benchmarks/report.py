"""The measured samples as Markdown tables: init, cold path, cost, metrics calls, client creation.

Every measured figure is printed as a number, whatever it came to: a difference of two medians (a
variant's init minus its floor's) may be zero or negative on a loaded machine, and is printed as such.
"n/a" stands only for a figure that was not measured. A ratio whose divisor is not above zero has no
meaning, so both of its figures are printed instead.
"""

from __future__ import annotations

import statistics

from benchmarks.harness import Samples, Variant, stat
from benchmarks.metric_calls import PUT_METRIC_DATA_USD_PER_1000, allowed_calls
from benchmarks.variants import EAGER_TWIN
from leanlambda.limits import billed_ms, cost_per_million, cpu_share

MIB = 1024
"""KiB per MiB: RSS is sampled in KiB."""
COLD_START_SHARE = 0.01
"""Share of invocations assumed to be cold starts in the cost estimate."""
SCALED_MEMORY_MB = (128, 256, 512, 1024)
MILLION = 1_000_000


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_difference(value: float | None, digits: int = 2) -> str:
    """A difference of two medians in ms, printed whatever its sign; below zero it says why."""
    if value is None:
        return "n/a"
    note = " (below zero: within the floor's noise)" if value < 0 else ""
    return f"{value:.{digits}f} ms{note}"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return "n/a"
    if b <= 0:
        return f"no ratio: {a:.2f} / {b:.2f}"
    return f"{a / b:.2f}x"


def mib(value: float | None) -> float | None:
    return None if value is None else value / MIB


def para(text: str) -> str:
    """One Markdown paragraph or list item from a wrapped triple-quoted string."""
    return " ".join(text.split())


class Report:
    """The samples of one run, by variant key, and the order of the tables' rows."""

    def __init__(self, samples: dict[str, Samples], rows: list[str]) -> None:
        self.samples = samples
        self.rows = rows

    def s(self, key: str) -> Samples:
        return self.samples[key]

    def med(self, key: str | None, name: str) -> float | None:
        return self.samples[key].median(name) if key in self.samples else None

    def span(self, key: str, name: str, scale: float = 1.0, digits: int = 1) -> str:
        values = self.samples[key].values(name)
        if not values:
            return "n/a"
        st = stat([value / scale for value in values])
        return f"{st.median:.{digits}f} ({st.low:.{digits}f}-{st.high:.{digits}f})"

    def eager_for(self, key: str) -> str | None:
        """The eager variant a row compares with: same code loaded eagerly, same floor."""
        candidate = EAGER_TWIN.get(key, f"{key}_eager")
        return candidate if candidate in self.samples and candidate != key else None

    def paired_ratio(self, key: str, other: str, name: str) -> float | None:
        """Median of a/b over the rounds (both ran in every round): the round's drift cancels out."""
        if key not in self.samples or other not in self.samples:
            return None
        rounds = zip(self.s(key).runs, self.s(other).runs, strict=True)
        pairs = [(a.get(name), b.get(name)) for a, b in rounds]
        numbers = (int, float)
        ratios = [a / b for a, b in pairs if isinstance(a, numbers) and isinstance(b, numbers) and b]
        return statistics.median(ratios) if ratios else None

    def floor_for(self, key: str) -> str:
        return "floor_lambda" if self.s(key).variant.preload else "floor"

    def overhead(self, key: str | None, name: str = "init_ms") -> float | None:
        """Init of the handler module minus the floor's (same child, same preloads); wall or CPU."""
        if key not in self.samples:
            return None
        own, floor = self.med(key, name), self.med(self.floor_for(key), name)
        return None if own is None or floor is None else own - floor


def init_table(rep: Report) -> list[str]:
    out = [
        "| variant | init ms (import) | over its floor, ms | start to init done, ms "
        "| x floor (start to init) | x eager (init over floor) | init CPU ms | CPU over its floor, ms "
        "| peak RSS after init, MiB | x floor (RSS) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in rep.rows:
        v = rep.s(key).variant
        floor = rep.floor_for(key)
        eager_key = rep.eager_for(key)
        over = rep.overhead(key)
        x_eager = ratio(over, rep.overhead(eager_key)) if eager_key else "-"
        out.append(
            f"| {v.label} | {rep.span(key, 'init_ms', digits=2)} | {fmt(over, 2)} "
            f"| {rep.span(key, 'startup_init_ms')} "
            f"| {ratio(rep.med(key, 'startup_init_ms'), rep.med(floor, 'startup_init_ms'))} "
            f"| {x_eager} | {rep.span(key, 'init_cpu_ms')} "
            f"| {fmt(rep.overhead(key, 'init_cpu_ms'), 2)} | {rep.span(key, 'rss_init_kib', MIB)} "
            f"| {ratio(rep.med(key, 'rss_init_kib'), rep.med(floor, 'rss_init_kib'))} |"
        )
    return out


def result_summary(result: object) -> str:
    if not isinstance(result, dict):
        return "no result"
    if "ok" in result:
        if result["ok"]:
            return "ok"
        failed = [step for step in result.get("steps", []) if step.get("status") == "failed"]
        error = result.get("error") or next(
            (f"{step.get('name')}: {step.get('error')}" for step in failed), "failed"
        )
        return f"failed: {str(error)[:80]}".replace("|", "/")
    return "returned"


def cold_table(rep: Report) -> list[str]:
    out = [
        "| variant | cold path ms (init + 1st invocation) | cold CPU ms | 1st invocation ms "
        "| warm invocation ms "
        "| x eager (cold) | peak RSS after 1st invocation, MiB | x floor (RSS) | package bytes | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in rep.rows:
        v = rep.s(key).variant
        floor = rep.floor_for(key)
        package = v.package_bytes if v.package_bytes is not None else "-"
        if not v.invokes:
            out.append(f"| {v.label} | not measured: {v.note} | | | | | | | {package} | |")
            continue
        eager_key = rep.eager_for(key)
        out.append(
            f"| {v.label} | {rep.span(key, 'cold_ms')} | {rep.span(key, 'cold_cpu_ms')} | "
            f"{rep.span(key, 'first_ms')} | {rep.span(key, 'warm_ms', digits=2)} "
            f"| {ratio(rep.med(key, 'cold_ms'), rep.med(eager_key, 'cold_ms')) if eager_key else '-'} "
            f"| {rep.span(key, 'rss_first_kib', MIB)} "
            f"| {ratio(rep.med(key, 'rss_first_kib'), rep.med(floor, 'rss_first_kib'))} "
            f"| {package} | {result_summary(rep.s(key).last_result)} |"
        )
    return out


def metric_calls_per_invocation(variant: Variant) -> int:
    return 1 if variant.metrics_backend == "put_metric_data" else 0


def invocation_cost(cold_ms: float, warm_ms: float, variant: Variant) -> float:
    """USD per million invocations, COLD_START_SHARE of them cold, with the toolkit's Lambda prices, plus
    the PutMetricData requests the function's metrics backend sends."""
    cold = cost_per_million(billed_ms(cold_ms), variant.memory_mb, variant.architecture)
    warm = cost_per_million(billed_ms(warm_ms), variant.memory_mb, variant.architecture)
    metrics = metric_calls_per_invocation(variant) * MILLION * PUT_METRIC_DATA_USD_PER_1000 / 1000
    return COLD_START_SHARE * cold + (1 - COLD_START_SHARE) * warm + metrics


def cost_table(rep: Report) -> list[str]:
    out = [
        f"| variant | memory MB | arch | cold billed ms | warm billed ms | PutMetricData calls / invocation "
        f"| USD per million invocations ({COLD_START_SHARE:.0%} cold) | x eager |",
        "|---|---|---|---|---|---|---|---|",
    ]
    costs: dict[str, float] = {}
    billed: dict[str, tuple[float, float]] = {}
    for key in rep.rows:
        v = rep.s(key).variant
        cold, warm = rep.med(key, "cold_ms"), rep.med(key, "warm_ms")
        if key.startswith("floor") or not v.invokes or cold is None or warm is None:
            continue
        billed[key] = (cold, warm)
        costs[key] = invocation_cost(cold, warm, v)
    for key, usd in costs.items():
        v = rep.s(key).variant
        eager_key = rep.eager_for(key)
        cold, warm = billed[key]
        out.append(
            f"| {v.label} | {v.memory_mb} | {v.architecture} | {billed_ms(cold)} | {billed_ms(warm)} "
            f"| {metric_calls_per_invocation(v)} | {usd:.4f} "
            f"| {ratio(usd, costs.get(eager_key)) if eager_key in costs and eager_key != key else '-'} |"
        )
    return out


def metrics_table(rows: list[dict]) -> list[str]:
    out = [
        "| metrics per invocation | backend | API calls | allowed (ceil(n/1000); EMF 0) | EMF lines "
        "| EMF bytes | flush ms | PutMetricData USD per million invocations | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        allowed = allowed_calls(row["n"], row["backend"])
        usd = row["calls"] * MILLION * PUT_METRIC_DATA_USD_PER_1000 / 1000
        lines = row["emf_lines"] if row["backend"] == "emf" else f"{row['emf_lines']} (fallback)"
        out.append(
            f"| {row['n']} | {row['backend']} | {row['calls']} | {allowed} | {lines} | "
            f"{row['emf_bytes']} | {row['flush_ms']:.1f} | {usd:.2f} | "
            f"{'PASS' if row['calls'] <= allowed else 'MISS'} |"
        )
    return out


def client_section(rep: Report) -> list[str]:
    """Client creation measured here, and scaled by Lambda's CPU share to estimate the invoke phase."""
    if "client_probe" not in rep.samples:
        return []
    runs = rep.s("client_probe").runs
    services = list(runs[0]["first_result"].keys()) if runs else []
    out = [
        "| client (AWSClientFactory.get, fresh process) | local CPU ms | local wall ms | "
        + " | ".join(f"est. invoke phase at {mb} MB, ms" for mb in SCALED_MEMORY_MB)
        + " |",
        "|---|---|---|" + "---|" * len(SCALED_MEMORY_MB),
    ]
    for index, service in enumerate(services):
        cpu = statistics.median(run["first_result"][service]["cpu_ms"] for run in runs)
        wall = statistics.median(run["first_result"][service]["wall_ms"] for run in runs)
        what = f"{service} (first: imports boto3, makes the session)" if index == 0 else f"{service} (next)"
        scaled = " | ".join(f"{cpu / cpu_share(mb):.0f}" for mb in SCALED_MEMORY_MB)
        out.append(f"| {what} | {cpu:.1f} | {wall:.1f} | {scaled} |")
    return out
