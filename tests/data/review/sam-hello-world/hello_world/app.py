import json


def lambda_handler(event, context):
    """Answer GET /hello with a greeting."""
    return {
        "statusCode": 200,
        "body": json.dumps({"message": "hello world"}),
    }
