"""Lambda entry point of makenaide-scanner.

Keeps the Makenaide ticker list in step with Upbit's KRW markets

Module level imports only the standard library, so the init phase stays in
milliseconds; the orchestrator is built on first use and kept for warm invocations.

A run that is not ok (a critical step failed, or the event is invalid) ends in error: the
handler raises PipelineFailed once the metrics are flushed and the logs written, so Lambda
counts it in its Errors metric, retries an asynchronous event and finally sends it to the
failure destination. RAISE_ON_FAILURE=false (template.yaml) makes it return the result instead.
"""

from __future__ import annotations

import json
import logging
import os

from .clients import AWSClientFactory
from .metrics import EmfBackend, MetricsCollector
from .pipeline import Deadline, PipelineExecutor, RunContext
from .steps import InvalidEvent, build_steps, parse_event

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from typing import Any

logger = logging.getLogger()
logger.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO")

FUNCTION_NAME = "makenaide-scanner"
DEFAULT_METRICS_NAMESPACE = "Makenaide/Scanner"
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE", DEFAULT_METRICS_NAMESPACE)
MAX_ERROR_CHARS = 300
"""An error result quotes at most this much of the reason: events can be megabytes."""
RAISE_ON_FAILURE_ENV = "RAISE_ON_FAILURE"
"""Set to "false" for a function that must always return its result, failed or not (an API behind
a proxy that maps ``{"ok": false}`` to an answer itself); anything else, or unset, raises."""
MAX_ERROR_MESSAGE_CHARS = 4_096
"""PipelineFailed's message (the result's JSON) is cut to this length. Lambda passes the message on
in the Invoke API's error, the log's error record and the failure destination's record, which holds
the event as well in one queue message; consoles and notifications show only its beginning. 4 KB
keeps the failed step and its error whole everywhere; the whole result is in the log."""
TRUNCATION_MARK = "...[cut; the whole result is in the log]"


class PipelineFailed(Exception):
    """A run that is not ok; ``result`` is the whole result, the message its JSON (capped)."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        super().__init__(error_message(result))


def error_message(result: dict[str, Any]) -> str:
    """The result's JSON in at most MAX_ERROR_MESSAGE_CHARS: whole when it fits, else without the
    steps' own results (marked ``"truncated": true``), else cut. "ok" and "error" come first."""
    text = json.dumps(result, default=str)
    if len(text) <= MAX_ERROR_MESSAGE_CHARS:
        return text
    brief = dict(result, truncated=True)
    if isinstance(result.get("steps"), list):
        brief["steps"] = [
            {key: value for key, value in step.items() if key != "result"} if isinstance(step, dict) else step
            for step in result["steps"]
        ]
    text = json.dumps(brief, default=str)
    if len(text) <= MAX_ERROR_MESSAGE_CHARS:
        return text
    return text[: MAX_ERROR_MESSAGE_CHARS - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def raise_on_failure() -> bool:
    """Whether a failed run raises (the default) or returns its result (RAISE_ON_FAILURE=false)."""
    return os.environ.get(RAISE_ON_FAILURE_ENV, "true").strip().lower() != "false"


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
            result = outcome.to_dict()
            if not outcome.ok:
                logger.error("run failed", extra={"result": result})
            return result
        finally:
            metrics.flush()
            self.clients.deadline = None

    def _new_metrics(self, context: Any) -> MetricsCollector:
        name = getattr(context, "function_name", None) or FUNCTION_NAME
        backend = EmfBackend()
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
    """The run's result; a run that is not ok raises PipelineFailed (after its metrics are sent)."""
    result = get_orchestrator().handle(event, context)
    if not result["ok"] and raise_on_failure():
        raise PipelineFailed(result)
    return result
