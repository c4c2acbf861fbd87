"""The world the measured functions run against: moto, PostgreSQL, the orchestrator's resources, tables.

One of each per run, started by benchmarks.run: one moto server on a free loopback port, one throwaway
PostgreSQL server (tests/support/postgres.py) started on first use, and, per example that needs them, the
resources its own tests build, reset before every sample so that every sample does the same work. The
Upbit replay server is benchmarks.upbit_replay.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
REGION = "ap-northeast-2"
"""The template's default region: the bucket and every example's resources are made there."""
BENCH_BUCKET = "leanlambda-bench"
UPBIT_URL_ENV = "LEANLAMBDA_BENCH_UPBIT_URL"
"""Read by benchmarks/_child.py: where `<package>.upbit.API_URL` points after init (the replay server)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Moto:
    """One moto server for the run, on a free loopback port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def __enter__(self) -> Moto:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def client(self, service: str, region: str) -> Any:
        import boto3

        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def aws_env(moto: Moto, region: str) -> dict[str, str]:
    """What a measured child needs to reach moto (boto3 reads AWS_ENDPOINT_URL) and the bench bucket."""
    return {
        "AWS_ENDPOINT_URL": moto.url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "DATA_BUCKET": BENCH_BUCKET,
    }


def ensure_bucket(moto: Moto, region: str) -> None:
    s3 = moto.client("s3", region)
    names = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    if BENCH_BUCKET not in names:
        location = {"LocationConstraint": region}
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": location}
        s3.create_bucket(Bucket=BENCH_BUCKET, **kwargs)


class Postgres:
    """One throwaway PostgreSQL server for the run (tests/support/postgres.py), started on first use."""

    def __init__(self) -> None:
        self._session: Any = None
        self.error = ""

    def database(self, name: str) -> str | None:
        """A fresh database's URL, or None (and ``error`` says why) when no server can be started."""
        if self.error:
            return None
        try:
            if self._session is None:
                sys.path.insert(0, str(ROOT))
                from tests.support.postgres import SessionPostgres

                self._session = SessionPostgres()
            return self._session.database(name)
        except Exception as error:  # no initdb on this machine, no permission, ...
            self.error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            return None

    def stop(self) -> None:
        if self._session is not None:
            self._session.stop()


def db_secret_env(moto: Moto, url: str, region: str, owner: str) -> dict[str, str]:
    """As the examples' conftest `db_secret` fixture: the database's credentials in a moto secret."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    secret = {
        "username": parts.username,
        "password": parts.password or "",
        "host": parts.hostname,
        "port": parts.port or 5432,
        "dbname": parts.path.lstrip("/") or "postgres",
    }
    client = moto.client("secretsmanager", region)
    name = f"{owner}/bench-db-{time.monotonic_ns()}"
    arn = client.create_secret(Name=name, SecretString=json.dumps(secret))["ARN"]
    return {"DB_SECRET_ARN": arn}


ORCHESTRATOR_DB_ID = "makenaide-bench-db"


class OrchestratorWorld:
    """What makenaide-integrated-orchestrator manages, in moto (as its tests build it): one EC2 instance,
    one RDS instance, one secret. ``reset()`` stops both before each sample, so every cold path takes the
    same step (start RDS) instead of whatever the previous sample left to do."""

    def __init__(self, moto: Moto, region: str) -> None:
        self.ec2 = moto.client("ec2", region)
        self.rds = moto.client("rds", region)
        secret = json.dumps({"username": "makenaide", "password": "bench-only"})
        secrets = moto.client("secretsmanager", region)
        arn = secrets.create_secret(Name=f"makenaide/bench-{time.monotonic_ns()}", SecretString=secret)["ARN"]
        image = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instance = self.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium")
        self.instance_id = instance["Instances"][0]["InstanceId"]
        self.rds.create_db_instance(
            DBInstanceIdentifier=ORCHESTRATOR_DB_ID,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="makenaide",
            MasterUserPassword="bench-only-password",  # moto only
            AllocatedStorage=20,
        )
        self.env = {
            "INSTANCE_ID": self.instance_id,
            "DB_INSTANCE_IDENTIFIER": ORCHESTRATOR_DB_ID,
            "DB_SECRET_ARN": arn,
            "APP_COMMAND": "/opt/makenaide/run.sh",
            "EC2_HOURLY_PRICE_USD": "0.0416",
            "RDS_HOURLY_PRICE_USD": "0.018",
            "MAX_RUN_MINUTES": "30",
        }
        self.reset()

    def reset(self) -> None:
        state = self.ec2.describe_instances(InstanceIds=[self.instance_id])
        if state["Reservations"][0]["Instances"][0]["State"]["Name"] != "stopped":
            self.ec2.stop_instances(InstanceIds=[self.instance_id])
        db = self.rds.describe_db_instances(DBInstanceIdentifier=ORCHESTRATOR_DB_ID)["DBInstances"][0]
        if db["DBInstanceStatus"] != "stopped":
            self.rds.stop_db_instance(DBInstanceIdentifier=ORCHESTRATOR_DB_ID)


SCHEMA_OWNER_SRC = EXAMPLES_DIR / "makenaide-db-initializer" / "src"
COLLECTOR_TICKERS = (("KRW-BTC", True), ("KRW-ETH", True), ("KRW-XRP", True), ("KRW-OLD", False))
"""As the data collector's tests seed `tickers`: three active tickers, one inactive (not collected)."""
SAMPLE_RESET_SQL = {
    "makenaide-scanner": ("DROP TABLE IF EXISTS scanner_state", "TRUNCATE tickers"),
    "makenaide-data-collector": ("TRUNCATE ohlcv, ohlcv_4h, tickers",),
}
"""Run before each sample: the scanner finds no tickers and no previous scan, the collector no candles."""


class MakenaideTables:
    """A Makenaide example's PostgreSQL database: the db initializer's schema, applied once, and
    ``reset()`` before each sample (SAMPLE_RESET_SQL), so that every sample does the same work."""

    def __init__(self, url: str, function_name: str) -> None:
        self.url = url
        self.statements = SAMPLE_RESET_SQL.get(function_name, ())
        self.seed = COLLECTOR_TICKERS if function_name == "makenaide-data-collector" else ()
        if str(SCHEMA_OWNER_SRC) not in sys.path:
            sys.path.insert(0, str(SCHEMA_OWNER_SRC))
        from makenaide_db_initializer.steps import apply_schema_in

        self._transaction(apply_schema_in)
        self.reset()

    def _transaction(self, work: Callable[[Any], None]) -> None:
        import psycopg2

        connection = psycopg2.connect(self.url)
        try:
            with connection, connection.cursor() as cursor:
                work(cursor)
        finally:
            connection.close()

    def reset(self) -> None:
        def run(cursor: Any) -> None:
            for statement in self.statements:
                cursor.execute(statement)
            for ticker, active in self.seed:
                cursor.execute("INSERT INTO tickers (ticker, is_active) VALUES (%s, %s)", (ticker, active))

        self._transaction(run)
