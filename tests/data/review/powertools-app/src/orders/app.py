import os

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
tracer = Tracer()
metrics = Metrics()
table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


@tracer.capture_method
def get_order(order_id: str) -> dict | None:
    return table.get_item(Key={"id": order_id}).get("Item")


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event, context):
    order_id = event["pathParameters"]["id"]
    order = get_order(order_id)
    metrics.add_metric(name="OrderLookups", unit=MetricUnit.Count, value=1)
    if order is None:
        logger.info("order not found", extra={"order_id": order_id})
        return {"statusCode": 404, "body": "{}"}
    return {"statusCode": 200, "body": str(order)}
