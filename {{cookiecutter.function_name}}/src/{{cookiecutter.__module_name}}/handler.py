"""Lambda entry point of {{ cookiecutter.function_name }}.

{{ cookiecutter.description | wordwrap(100) }}

Module level imports only the standard library, so the init phase stays in
milliseconds; the orchestrator is built on first use and kept for warm invocations.
"""

from __future__ import annotations

import logging
import os

from .clients import AWSClientFactory
from .metrics import {% if cookiecutter.metrics_backend == "emf" %}EmfBackend, MetricsCollector{% else %}MetricsCollector, PutMetricDataBackend{% endif %}
from .pipeline import Deadline, PipelineExecutor, RunContext
from .steps import InvalidEvent, build_steps, parse_event

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from typing import Any

logger = logging.getLogger()
logger.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO")

FUNCTION_NAME = "{{ cookiecutter.function_name }}"
DEFAULT_METRICS_NAMESPACE = (
    "{{ cookiecutter.metrics_namespace }}"
)
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE", DEFAULT_METRICS_NAMESPACE)
MAX_ERROR_CHARS = 300
"""An error result quotes at most this much of the reason: events can be megabytes."""
{%- set prewarm = cookiecutter.__prewarm.split(",") | select | list %}
{%- if prewarm %}
PREWARM_SERVICES: tuple[str, ...] = ({{ prewarm | map("tojson") | join(", ") }}{% if prewarm | length == 1 %},{% endif %})
"""Clients every invocation needs, created during init where the CPU is not throttled."""
{%- endif %}


class OptimizedOrchestrator:
    """Turns an event into a pipeline run; built once per container."""

    def __init__(self, clients: AWSClientFactory) -> None:
        self.clients = clients
        self.executor = PipelineExecutor()

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        metrics = self._new_metrics(context)
        metrics.record_cold_start()
        try:
            try:
                if not isinstance(event, dict):
                    raise InvalidEvent(f"expected a JSON object, got {type(event).__name__}")
                request = parse_event(event)
            except InvalidEvent as error:
                metrics.add("InvalidEvent", 1)
                message = f"invalid event: {str(error)[:MAX_ERROR_CHARS]}"
                logger.warning(message)
                return {"ok": False, "error": message}
            deadline = Deadline.from_context(context)
            self.clients.deadline = deadline
            run = RunContext(request, self.clients, metrics, deadline)
            outcome = self.executor.run(build_steps(request), run)
            failed = sum(1 for step in outcome.steps if step.status == "failed")
            metrics.add("StepsFailed", failed)
            return outcome.to_dict()
        finally:
            metrics.flush()
            self.clients.deadline = None

    def _new_metrics(self, context: Any) -> MetricsCollector:
        name = getattr(context, "function_name", None) or FUNCTION_NAME
{%- if cookiecutter.metrics_backend == "emf" %}
        backend = EmfBackend()
{%- else %}
        backend = PutMetricDataBackend(lambda: self.clients.get("cloudwatch"))
{%- endif %}
        return MetricsCollector(METRICS_NAMESPACE, backend, {"FunctionName": name})


_orchestrator: OptimizedOrchestrator | None = None


def get_orchestrator() -> OptimizedOrchestrator:
    """The container's orchestrator, built on first use."""
    global _orchestrator
    if _orchestrator is None:
        _orchestrator = OptimizedOrchestrator(AWSClientFactory())
    return _orchestrator


def reset() -> None:
    """Forget the container's state, as a new container would (tests)."""
    global _orchestrator
    _orchestrator = None


def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return get_orchestrator().handle(event, context)

{%- if prewarm %}


get_orchestrator().clients.prewarm(*PREWARM_SERVICES)
{%- endif %}
