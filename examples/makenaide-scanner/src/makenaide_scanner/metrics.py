"""MetricsCollector: buffer metrics during an invocation and send them once, at the end.

Two backends: EMF (the default) writes CloudWatch Embedded Metric Format lines to
stdout, which Lambda ships to CloudWatch Logs with no API call and no added latency;
PutMetricData sends batches through the API when logs are not an option.
"""

from __future__ import annotations

import json
import logging
import sys
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from typing import Any, Protocol, TextIO

    class MetricsBackend(Protocol):
        def send(self, namespace: str, metrics: list[Metric]) -> None: ...


logger = logging.getLogger(__name__)

EMF_MAX_METRICS_PER_BLOB = 100
EMF_MAX_VALUES_PER_METRIC = 100
MAX_DIMENSIONS = 30
_SIZES = [prefix + unit for unit in ("Bytes", "Bits") for prefix in ("", "Kilo", "Mega", "Giga", "Tera")]
VALID_UNITS = frozenset(
    ["Seconds", "Microseconds", "Milliseconds", "Percent", "Count", "Count/Second", "None"]
    + _SIZES
    + [size + "/Second" for size in _SIZES]
)

_cold_start = True


def reset_cold_start() -> None:
    """Make the next invocation count as a cold start again (tests)."""
    global _cold_start
    _cold_start = True


class Metric:
    __slots__ = ("dimensions", "name", "timestamp_ms", "unit", "value")

    def __init__(
        self, name: str, value: float, unit: str, dimensions: tuple[tuple[str, str], ...], timestamp_ms: int
    ) -> None:
        self.name = name
        self.value = value
        self.unit = unit
        self.dimensions = dimensions
        self.timestamp_ms = timestamp_ms


class EmfBackend:
    """Writes EMF JSON lines: at most 100 metrics per line, one line per dimension set."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, namespace: str, metrics: list[Metric]) -> None:
        stream = self._stream or sys.stdout
        for blob in emf_blobs(namespace, metrics):
            stream.write(json.dumps(blob, separators=(",", ":")) + "\n")
        stream.flush()


class MetricsCollector:
    """Buffers metrics; ``flush()`` sends them once, from the handler's ``finally``."""

    def __init__(
        self,
        namespace: str,
        backend: MetricsBackend,
        default_dimensions: dict[str, str] | None = None,
    ) -> None:
        self.namespace = namespace
        self._backend = backend
        self._default_dimensions = dict(default_dimensions or {})
        self._buffer: list[Metric] = []

    def add(
        self, name: str, value: float, unit: str = "Count", dimensions: dict[str, str] | None = None
    ) -> None:
        if unit not in VALID_UNITS:
            raise ValueError(f"metric {name!r}: unit {unit!r} is not a CloudWatch unit")
        merged = {**self._default_dimensions, **(dimensions or {})}
        if len(merged) > MAX_DIMENSIONS:
            raise ValueError(f"metric {name!r}: {len(merged)} dimensions, CloudWatch allows {MAX_DIMENSIONS}")
        self._buffer.append(
            Metric(name, float(value), unit, tuple(sorted(merged.items())), int(time.time() * 1000))
        )

    def record_cold_start(self) -> None:
        """Add a ColdStart metric on the first invocation of this container only."""
        global _cold_start
        if _cold_start:
            _cold_start = False
            self.add("ColdStart", 1)

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> None:
        """Send everything buffered; never raises, so it is safe in ``finally``."""
        metrics, self._buffer = self._buffer, []
        if not metrics:
            return
        try:
            self._backend.send(self.namespace, metrics)
        except Exception:
            logger.exception("metrics flush failed")


def emf_blobs(namespace: str, metrics: list[Metric]) -> list[dict[str, Any]]:
    """EMF documents for ``metrics``: one dimension set each, at most 100 metrics of 100 values.

    A name appears once per document, so a metric with more than 100 values continues in the
    next document rather than overwriting its own key.
    """
    by_dimensions: dict[tuple[tuple[str, str], ...], dict[str, list[Metric]]] = {}
    for metric in metrics:
        by_dimensions.setdefault(metric.dimensions, {}).setdefault(metric.name, []).append(metric)
    blobs = []
    for dimensions, by_name in by_dimensions.items():
        rounds: list[list[list[Metric]]] = []
        for same_name in by_name.values():
            for index, start in enumerate(range(0, len(same_name), EMF_MAX_VALUES_PER_METRIC)):
                if index == len(rounds):
                    rounds.append([])
                rounds[index].append(same_name[start : start + EMF_MAX_VALUES_PER_METRIC])
        for entries in rounds:
            for start in range(0, len(entries), EMF_MAX_METRICS_PER_BLOB):
                chunk = entries[start : start + EMF_MAX_METRICS_PER_BLOB]
                blobs.append(_emf_blob(namespace, dimensions, chunk))
    return blobs


def _emf_blob(namespace: str, dimensions: tuple[tuple[str, str], ...], entries: list[list[Metric]]) -> dict:
    blob: dict[str, Any] = {
        "_aws": {
            "Timestamp": min(values[0].timestamp_ms for values in entries),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [[key for key, _ in dimensions]],
                    "Metrics": [{"Name": values[0].name, "Unit": values[0].unit} for values in entries],
                }
            ],
        },
        **dict(dimensions),
    }
    for values in entries:
        blob[values[0].name] = values[0].value if len(values) == 1 else [metric.value for metric in values]
    return blob
