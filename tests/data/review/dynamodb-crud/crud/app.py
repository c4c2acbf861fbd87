import json
import logging
import os

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger()
table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def respond(status, body):
    return {"statusCode": status, "body": json.dumps(body)}


def lambda_handler(event, context):
    item_id = event["pathParameters"]["id"]
    method = event["httpMethod"]
    try:
        if method == "GET":
            item = table.get_item(Key={"id": item_id}).get("Item")
            return respond(200, item) if item else respond(404, {"error": "not found"})
        if method == "PUT":
            table.put_item(Item={"id": item_id, **json.loads(event["body"] or "{}")})
            return respond(200, {"id": item_id})
        if method == "DELETE":
            table.delete_item(Key={"id": item_id})
            return respond(204, {})
    except ClientError as error:
        logger.error("DynamoDB refused %s %s: %s", method, item_id, error)
        return respond(500, {"error": "storage error"})
    return respond(405, {"error": f"{method} not allowed"})
