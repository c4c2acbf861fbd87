"""Lambda's own log lines (START/END/REPORT) and the cost estimate for an emulated run."""

from __future__ import annotations

from leanlambda.emulator.runner import STATUS_SUCCESS, Outcome
from leanlambda.limits import billed_ms, cost_per_million


def start_line(outcome: Outcome) -> str:
    return f"START RequestId: {outcome.request_id} Version: $LATEST"


def end_line(outcome: Outcome) -> str:
    return f"END RequestId: {outcome.request_id}"


def report_line(outcome: Outcome) -> str:
    """`REPORT RequestId: ...\tDuration: 12.34 ms\tBilled Duration: 13 ms ...`, as Lambda writes it."""
    duration = outcome.duration_ms or 0.0
    fields = [
        f"REPORT RequestId: {outcome.request_id}",
        f"Duration: {duration:.2f} ms",
        f"Billed Duration: {billed_ms(duration)} ms",
        f"Memory Size: {outcome.memory_mb} MB",
        f"Max Memory Used: {outcome.max_memory_mb} MB",
    ]
    if outcome.init_ms is not None:
        fields.append(f"Init Duration: {outcome.init_ms:.2f} ms")
    if outcome.status != STATUS_SUCCESS:
        fields.append(f"Status: {outcome.status}")
    if outcome.error and outcome.status != "timeout":
        fields.append(f"Error Type: {outcome.error.get('errorType', 'Unknown')}")
    return "\t".join(fields)


def cost_line(outcome: Outcome, architecture: str) -> str:
    """Estimated USD per million invocations, warm and if every one were a cold start."""
    duration = billed_ms(outcome.duration_ms or 0.0)
    warm = cost_per_million(duration, outcome.memory_mb, architecture)
    init = billed_ms(outcome.init_ms) if outcome.init_ms else 0
    cold = cost_per_million(duration + init, outcome.memory_mb, architecture)
    return (
        f"Estimated cost per 1M invocations ({architecture}, {outcome.memory_mb} MB): {warm:.4f} USD warm; "
        f"{cold:.4f} USD if all were cold starts (INIT is billed since 2025-08 for zip functions: "
        f"+{init} ms each). Prices: AWS Lambda pricing, us-east-1, first tier."
    )
