{%- set use_s3 = "s3" in cookiecutter.__services.split(",") -%}
"""The function's own steps: replace these with your business logic.

``parse_event`` turns the raw event into a request (or raises InvalidEvent);
``build_steps`` lists the steps the executor runs for it. Heavy imports go inside
the step that needs them, never at module level.

Retries: when a critical step fails, the invocation fails (PipelineFailed) and Lambda runs an
asynchronous event again, up to twice, from the first step. Every step must therefore be safe to
repeat with the same event, also after a failure half-way: write with upserts or conditional
writes (a key fixed or derived from the event), one transaction per unit of work, decide from the state
you read rather than from the event alone, and never send, count or charge twice for one event.
"""

from __future__ import annotations
{% if use_s3 %}
import json
import os
{% endif %}
from .pipeline import {% if use_s3 %}SkipStep, {% endif %}Step

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from typing import Any

    from .pipeline import RunContext

MAX_ITEMS = 10_000
{%- if use_s3 %}
SUMMARY_KEY = "summaries/latest.json"
{%- endif %}
WORST_CASE_SECONDS = 3
"""The longest a run can take (the steps' budgets and the runtime's safety margin): the
template's Timeout must cover it."""


class InvalidEvent(ValueError):
    """The event cannot be processed; the caller gets a clear error result."""


class Request:
    __slots__ = ("items",)

    def __init__(self, items: list[float]) -> None:
        self.items = items


def parse_event(event: dict[str, Any]) -> Request:
    items = event.get("items", [])
    if not isinstance(items, list):
        raise InvalidEvent("'items' must be a list of numbers")
    if len(items) > MAX_ITEMS:
        raise InvalidEvent(f"'items' holds {len(items)} entries, at most {MAX_ITEMS} are allowed")
    if not all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items):
        raise InvalidEvent("'items' must be a list of numbers")
    return Request(items=[float(item) for item in items])


def summarise(run: RunContext) -> dict[str, float]:
    items = run.request.items
    run.metrics.add("ItemsProcessed", len(items))
    return {"count": len(items), "total": sum(items)}
{%- if use_s3 %}


def store_summary(run: RunContext) -> dict[str, str]:
    """Write the summary to the bucket named by DATA_BUCKET, when one is set."""
    bucket = os.environ.get("DATA_BUCKET")
    if not bucket:
        raise SkipStep("DATA_BUCKET is not set")
    key = SUMMARY_KEY
    body = json.dumps(run.results["summarise"]).encode()
    run.clients.get("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return {"bucket": bucket, "key": key}
{%- endif %}


def build_steps(request: Request) -> list[Step]:
    return [
        Step("summarise", summarise, budget_ms=100),
{%- if use_s3 %}
        Step("store_summary", store_summary, critical=False, budget_ms=1_000),
{%- endif %}
    ]
