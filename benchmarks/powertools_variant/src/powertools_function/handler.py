"""The default skeleton's logic, the common Powertools way: everything created at import."""

import json
import os

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

MAX_ITEMS = 10_000
SUMMARY_KEY = "summaries/latest.json"

logger = Logger(service="my-function")
metrics = Metrics(namespace="LeanLambda/my-function", service="my-function")
s3 = boto3.client("s3")


def summarise(items):
    metrics.add_metric(name="ItemsProcessed", unit=MetricUnit.Count, value=len(items))
    return {"count": len(items), "total": sum(items)}


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event, context):
    items = event.get("items", []) if isinstance(event, dict) else None
    valid = isinstance(items, list) and len(items) <= MAX_ITEMS and all(
        isinstance(item, (int, float)) and not isinstance(item, bool) for item in items
    )
    if not valid:
        metrics.add_metric(name="InvalidEvent", unit=MetricUnit.Count, value=1)
        logger.warning("invalid event")
        return {"ok": False, "error": "invalid event: 'items' must be a list of numbers"}
    summary = summarise([float(item) for item in items])
    bucket = os.environ.get("DATA_BUCKET")
    if bucket:
        s3.put_object(Bucket=bucket, Key=SUMMARY_KEY, Body=json.dumps(summary).encode())
    metrics.add_metric(name="StepsFailed", unit=MetricUnit.Count, value=0)
    return {"ok": True, "results": {"summarise": summary}}
