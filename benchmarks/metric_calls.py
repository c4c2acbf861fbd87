"""API calls and EMF lines per flush of n metrics, counted in process against moto, for each backend."""

from __future__ import annotations

import importlib.util
import io
import math
import time
from pathlib import Path
from types import ModuleType

from benchmarks.fixtures import Moto

METRIC_COUNTS = (1, 100, 1000, 5000)
PUT_METRIC_DATA_USD_PER_1000 = 0.01  # Amazon CloudWatch pricing: PutMetricData requests
PUT_METRIC_DATA_MAX_METRICS = 1000  # Amazon CloudWatch quota: metrics in one PutMetricData request


def allowed_calls(n: int, backend: str) -> int:
    """The fewest calls a flush of n metrics can take: none for EMF (log lines), ceil(n/1000) otherwise."""
    return 0 if backend == "emf" else math.ceil(n / PUT_METRIC_DATA_MAX_METRICS)


def load_metrics_module(src: Path, name: str) -> ModuleType:
    """A bake's generated metrics.py, loaded from its file under a name of its own."""
    path = next(src.glob("*/metrics.py"))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count_metric_calls(backend_srcs: dict[str, Path], moto: Moto, region: str) -> list[dict]:
    """API calls and EMF lines per flush of n metrics, for each backend, with the bake generated for it.

    ``backend_srcs``: {"emf": src of a bake with metrics_backend=emf, "put_metric_data": ...}. The template
    leaves the unselected backend out of a bake, so each backend is measured with its own bake's module.
    """
    client = moto.client("cloudwatch", region)
    calls = {"n": 0}

    def count(**_: object) -> None:
        calls["n"] += 1

    client.meta.events.register("provide-client-params.cloudwatch.PutMetricData", count)
    modules = {
        backend: load_metrics_module(src, f"bench_metrics_{backend}") for backend, src in backend_srcs.items()
    }
    rows = []
    for n in METRIC_COUNTS:
        for backend_name, metrics in modules.items():
            stream = io.StringIO()
            emf = metrics.EmfBackend(stream=stream)
            backend = emf if backend_name == "emf" else metrics.PutMetricDataBackend(lambda: client, emf)
            collector = metrics.MetricsCollector("LeanLambda/bench", backend, {"FunctionName": "bench"})
            for index in range(n):
                collector.add(f"Metric{index}", index, "Count")
            calls["n"] = 0
            started = time.perf_counter()
            collector.flush()
            elapsed = (time.perf_counter() - started) * 1000
            lines = [line for line in stream.getvalue().splitlines() if line.strip()]
            rows.append(
                {
                    "n": n,
                    "backend": backend_name,
                    "calls": calls["n"],
                    "emf_lines": len(lines),
                    "emf_bytes": sum(len(line) + 1 for line in lines),
                    "flush_ms": elapsed,
                }
            )
    return rows
