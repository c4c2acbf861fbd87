"""PipelineExecutor: named steps, each timed and bounded by the Lambda deadline.

A run never outlives the function's timeout: every step and every wait is checked
against ``context.get_remaining_time_in_millis()`` minus a safety margin, so the
function returns a result (and flushes its metrics) instead of being killed mid-write.
"""

from __future__ import annotations

import logging
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

logger = logging.getLogger(__name__)

SAFETY_MARGIN_MS = 2000
"""Time kept back from the deadline for flushing metrics and returning a result (a fifth of
the timeout, at most 2 s)."""

DEFAULT_STEP_BUDGET_MS = 1_000
"""A step's expected worst case when it declares none."""

NO_CONTEXT_TIMEOUT_MS = 60_000
"""Deadline used when there is no Lambda context (local runs, scripts)."""

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


class SkipStep(Exception):
    """Raised by a step that has nothing to do; the run records it as skipped."""


class DeadlineExceeded(Exception):
    """A wait would have outlived the Lambda deadline."""


class Deadline:
    """The time left in this invocation, minus a safety margin."""

    def __init__(self, remaining_ms: Callable[[], int], safety_margin_ms: int = SAFETY_MARGIN_MS) -> None:
        self._remaining_ms = remaining_ms
        self.safety_margin_ms = safety_margin_ms

    @classmethod
    def from_context(cls, context: Any, safety_margin_ms: int = SAFETY_MARGIN_MS) -> Deadline:
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            return cls(context.get_remaining_time_in_millis, safety_margin_ms)
        expires_at = time.monotonic() + NO_CONTEXT_TIMEOUT_MS / 1000
        return cls(lambda: int((expires_at - time.monotonic()) * 1000), safety_margin_ms)

    def remaining_ms(self) -> int:
        """Milliseconds this invocation may still spend on work."""
        return max(0, int(self._remaining_ms()) - self.safety_margin_ms)

    def sleep(self, seconds: float) -> None:
        """Sleep, but raise instead of sleeping past the deadline."""
        if seconds * 1000 > self.remaining_ms():
            raise DeadlineExceeded(f"waiting {seconds:.1f} s would outlive the deadline")
        time.sleep(seconds)

    def poll(self, probe: Callable[[], Any], interval_s: float, max_wait_s: float) -> Any:
        """Call ``probe`` until it returns a truthy value, within max_wait_s and the deadline."""
        give_up_at = time.monotonic() + max_wait_s
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() + interval_s > give_up_at:
                raise DeadlineExceeded(f"gave up after {max_wait_s:.1f} s")
            self.sleep(interval_s)


class Step:
    """One named unit of work.

    ``critical`` steps stop the pipeline when they fail; others are recorded and the
    run goes on. ``budget_ms`` is the step's expected worst case: a step is skipped
    when less time than that is left. ``compensate`` undoes the step's side effect
    (stop the instance it started) when a later critical step fails.
    """

    __slots__ = ("budget_ms", "compensate", "critical", "name", "run")

    def __init__(
        self,
        name: str,
        run: Callable[[RunContext], Any],
        critical: bool = True,
        budget_ms: int = DEFAULT_STEP_BUDGET_MS,
        compensate: Callable[[RunContext], None] | None = None,
    ) -> None:
        self.name = name
        self.run = run
        self.critical = critical
        self.budget_ms = budget_ms
        self.compensate = compensate


class StepResult:
    __slots__ = ("duration_ms", "error", "name", "result", "status")

    def __init__(
        self, name: str, status: str, duration_ms: float, error: str | None = None, result: Any = None
    ) -> None:
        self.name = name
        self.status = status
        self.duration_ms = duration_ms
        self.error = error
        self.result = result

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "status": self.status, "duration_ms": round(self.duration_ms, 2)}
        extras = {"error": self.error, "result": self.result}
        return data | {key: value for key, value in extras.items() if value is not None}


class RunContext:
    """What a step sees: the parsed request, earlier results and the shared resources."""

    __slots__ = ("clients", "deadline", "metrics", "request", "results")

    def __init__(self, request: Any, clients: Any, metrics: Any, deadline: Deadline) -> None:
        self.request = request
        self.clients = clients
        self.metrics = metrics
        self.deadline = deadline
        self.results: dict[str, Any] = {}


class PipelineResult:
    """The steps' outcomes. The run is ok unless a critical step failed: a failed non-critical
    step is in the result (and in StepsFailed) but does not fail the invocation."""

    __slots__ = ("compensated", "compensation_failed", "failed_step", "steps")

    def __init__(
        self,
        steps: list[StepResult],
        compensated: list[str] | None = None,
        compensation_failed: list[dict[str, str]] | None = None,
        failed_step: StepResult | None = None,
    ) -> None:
        self.steps = steps
        self.compensated = compensated or []
        self.compensation_failed = compensation_failed or []
        self.failed_step = failed_step
        """The critical step that failed and stopped the run; None when the run is ok."""

    @property
    def ok(self) -> bool:
        return self.failed_step is None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ok": self.ok}
        if self.failed_step is not None:
            # First, so that it survives when the result is cut to fit an error message.
            data["error"] = f"critical step {self.failed_step.name} failed: {self.failed_step.error}"
        data["steps"] = [step.to_dict() for step in self.steps]
        if self.compensated:
            data["compensated"] = self.compensated
        if self.compensation_failed:
            data["compensation_failed"] = self.compensation_failed
        return data


class PipelineExecutor:
    """Runs steps in order; records status, duration and error of each."""

    def run(self, steps: list[Step], run_context: RunContext) -> PipelineResult:
        results: list[StepResult] = []
        completed: list[Step] = []
        compensated: list[str] = []
        compensation_failed: list[dict[str, str]] = []
        stopped_by: StepResult | None = None
        for step in steps:
            if stopped_by is not None:
                reason = f"not run: critical step {stopped_by.name} failed"
                results.append(StepResult(step.name, SKIPPED, 0.0, reason))
                continue
            outcome = self._run_step(step, run_context)
            results.append(outcome)
            if outcome.status == OK:
                completed.append(step)
                run_context.results[step.name] = outcome.result
            elif outcome.status == FAILED and step.critical:
                stopped_by = outcome
                compensated, compensation_failed = self._compensate(completed, run_context)
        return PipelineResult(results, compensated, compensation_failed, stopped_by)

    def _run_step(self, step: Step, run_context: RunContext) -> StepResult:
        remaining = run_context.deadline.remaining_ms()
        if remaining < step.budget_ms:
            reason = f"needs {step.budget_ms} ms, {remaining} ms left before the deadline"
            logger.warning("step skipped", extra={"step": step.name, "reason": reason})
            status = FAILED if step.critical else SKIPPED
            return StepResult(step.name, status, 0.0, reason)
        started = time.perf_counter()
        try:
            value = step.run(run_context)
        except SkipStep as skip:
            return StepResult(step.name, SKIPPED, _elapsed_ms(started), str(skip) or None)
        except Exception as error:
            logger.exception("step failed", extra={"step": step.name})
            return StepResult(step.name, FAILED, _elapsed_ms(started), f"{type(error).__name__}: {error}")
        return StepResult(step.name, OK, _elapsed_ms(started), result=value)

    @staticmethod
    def _compensate(completed: list[Step], run_context: RunContext) -> tuple[list[str], list[dict[str, str]]]:
        """Undo completed steps, newest first: the names undone, and what could not be undone.

        A failed undo is in the result, not only in the log: it may have left a resource running.
        """
        undone, failed = [], []
        for step in reversed(completed):
            if step.compensate is None:
                continue
            try:
                step.compensate(run_context)
            except Exception as error:
                logger.exception("compensation failed", extra={"step": step.name})
                failed.append({"step": step.name, "error": f"{type(error).__name__}: {error}"})
            else:
                undone.append(step.name)
        return undone, failed


def _elapsed_ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
