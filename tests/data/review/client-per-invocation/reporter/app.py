import logging

logger = logging.getLogger()


def handler(event, context):
    import boto3

    sqs = boto3.client("sqs")
    cloudwatch = boto3.client("cloudwatch")
    for url in event.get("queues", []):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        depth = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        cloudwatch.put_metric_data(
            Namespace="Jobs",
            MetricData=[{"MetricName": "QueueDepth", "Value": depth, "Unit": "Count"}],
        )
        logger.info("queue %s holds %d", url, depth)
    return {"queues": len(event.get("queues", []))}
