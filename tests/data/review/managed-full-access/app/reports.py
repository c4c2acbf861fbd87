import logging
import os

import boto3

logger = logging.getLogger()
s3 = boto3.client("s3")


def list_reports(prefix):
    try:
        listing = s3.list_objects_v2(Bucket=os.environ["REPORTS_BUCKET"], Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]
    except Exception:
        logger.exception("listing %s failed", prefix)
        return []


def lambda_handler(event, context):
    reports = list_reports(event.get("prefix", "daily/"))
    return {"count": len(reports), "reports": reports}
