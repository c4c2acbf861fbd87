import json
import logging
import os

import boto3
import psycopg2

logger = logging.getLogger()
secrets = boto3.client("secretsmanager")
connection = None


def get_connection():
    """One connection per container, opened on first use and reused while it lives."""
    global connection
    if connection is None or connection.closed:
        secret = json.loads(secrets.get_secret_value(SecretId=os.environ["DB_SECRET_ARN"])["SecretString"])
        connection = psycopg2.connect(
            host=os.environ["DB_HOST"],
            user=secret["username"],
            password=secret["password"],
            dbname="orders",
            connect_timeout=5,
        )
    return connection


def handler(event, context):
    customer = event["customer_id"]
    conn = get_connection()
    with conn, conn.cursor() as cursor:
        cursor.execute("SELECT id, total FROM orders WHERE customer_id = %s ORDER BY id", (customer,))
        rows = cursor.fetchall()
    logger.info("customer %s has %d orders", customer, len(rows))
    return {"orders": [{"id": row[0], "total": float(row[1])} for row in rows]}
