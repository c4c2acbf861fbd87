import logging
import os

import boto3

logger = logging.getLogger()
s3 = boto3.client("s3")


def handler(event, context):
    for record in event.get("Records", []):
        source = record["s3"]
        s3.copy_object(
            Bucket=os.environ["ARCHIVE_BUCKET"],
            Key=source["object"]["key"],
            CopySource={"Bucket": source["bucket"]["name"], "Key": source["object"]["key"]},
        )
        logger.info("archived %s", source["object"]["key"])
    return {"archived": len(event.get("Records", []))}
