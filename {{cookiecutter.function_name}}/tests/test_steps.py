"""Tests of the function's own steps: extend them as the steps grow."""

from __future__ import annotations

import json

import pytest

from {{ cookiecutter.__module_name }} import handler
{%- if "s3" in cookiecutter.__services.split(",") %}

BUCKET = "test-summaries"
{%- endif %}


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
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler(event, lambda_context)
    assert raised.value.result["ok"] is False
    assert message in raised.value.result["error"]
{%- if "s3" in cookiecutter.__services.split(",") %}


def test_the_summary_is_stored_when_a_bucket_is_set(aws, lambda_context, monkeypatch):
    import boto3

    s3 = boto3.client("s3")
    region = s3.meta.region_name
    location = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=BUCKET, **location)
    monkeypatch.setenv("DATA_BUCKET", BUCKET)
    result = handler.lambda_handler({"items": [4, 5]}, lambda_context)
    assert result["steps"][1]["status"] == "ok"
    body = s3.get_object(Bucket=BUCKET, Key="summaries/latest.json")["Body"]
    assert json.loads(body.read()) == {"count": 2, "total": 9.0}


def test_storing_is_skipped_without_a_bucket(lambda_context, monkeypatch):
    monkeypatch.delenv("DATA_BUCKET", raising=False)
    result = handler.lambda_handler({"items": []}, lambda_context)
    assert result["ok"] is True
    assert result["steps"][1] == {
        "name": "store_summary",
        "status": "skipped",
        "duration_ms": result["steps"][1]["duration_ms"],
        "error": "DATA_BUCKET is not set",
    }
{%- endif %}
