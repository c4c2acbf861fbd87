import json
import logging
import os

import boto3
import psycopg2

logger = logging.getLogger()
secrets = boto3.client("secretsmanager")


def handler(event, context):
    secret = json.loads(secrets.get_secret_value(SecretId=os.environ["DB_SECRET_ARN"])["SecretString"])
    with psycopg2.connect(
        host=os.environ["DB_HOST"], user=secret["username"], password=secret["password"], dbname="orders"
    ) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT id, total FROM orders WHERE customer_id = '{event['customer_id']}'")
        rows = cursor.fetchall()
    return {"orders": [{"id": row[0], "total": float(row[1])} for row in rows]}
