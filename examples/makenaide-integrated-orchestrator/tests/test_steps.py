"""Tests of the function's own steps: extend them as the steps grow."""

from __future__ import annotations

import json

import pytest

from makenaide_integrated_orchestrator import handler


def test_items_are_summarised(lambda_context):
    result = handler.lambda_handler({"items": [1, 2, 3.5]}, lambda_context)
    assert result["ok"] is True
    assert result["steps"][0] == {
        "name": "summarise",
        "status": "ok",
        "duration_ms": result["steps"][0]["duration_ms"],
        "result": {"count": 3, "total": 6.5},
    }
    assert json.loads(json.dumps(result)) == result


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"items": "1,2"}, "'items' must be a list of numbers"),
        ({"items": [1, "2"]}, "'items' must be a list of numbers"),
        ({"items": [True]}, "'items' must be a list of numbers"),
        ({"items": list(range(10_001))}, "at most 10000"),
    ],
)
def test_bad_items_are_rejected(event, message, lambda_context):
    result = handler.lambda_handler(event, lambda_context)
    assert result["ok"] is False
    assert message in result["error"]
