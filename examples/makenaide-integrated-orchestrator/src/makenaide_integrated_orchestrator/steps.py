"""The function's own steps: replace these with your business logic.

``parse_event`` turns the raw event into a request (or raises InvalidEvent);
``build_steps`` lists the steps the executor runs for it. Heavy imports go inside
the step that needs them, never at module level.
"""

from __future__ import annotations

from .pipeline import Step

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from typing import Any

    from .pipeline import RunContext

MAX_ITEMS = 10_000
WORST_CASE_SECONDS = 15
"""The longest a run can take: the template's Timeout must cover it."""


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


def build_steps(request: Request) -> list[Step]:
    return [
        Step("summarise", summarise),
    ]
