import logging
import os

import boto3

logger = logging.getLogger()
logger.setLevel("INFO")
s3 = boto3.client("s3")
BUCKET = os.environ["BUCKET"]


def handler(event, context):
    key = event["key"]
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    logger.info("read %s (%d bytes)", key, len(body))
    return {"key": key, "size": len(body)}
