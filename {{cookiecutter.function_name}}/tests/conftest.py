"""Shared fixtures: moto behind the real boto3 clients, a Lambda context, fresh state.
{%- if cookiecutter.use_postgres %}

PostgreSQL tests use the server at DATABASE_URL when it is set, else a throwaway
server started for the session (tests/pg_server.py). They are never skipped.
"""
{%- else %}"""
{%- endif %}

from __future__ import annotations

import io
import json
{%- if cookiecutter.use_postgres %}
import os
{%- endif %}
import uuid
{%- if cookiecutter.use_postgres %}
from urllib.parse import urlsplit
{%- endif %}

import pytest

from {{ cookiecutter.__module_name }} import {% if cookiecutter.use_postgres %}db, {% endif %}handler, metrics

REGION = "{{ cookiecutter.region }}"
DEFAULT_TIMEOUT_MS = {{ cookiecutter.timeout | int * 1000 }}


class LambdaContext:
    """The attributes of Lambda's context object that functions use."""

    def __init__(self, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        import time

        self._deadline = time.monotonic() + timeout_ms / 1000
        self.function_name = "{{ cookiecutter.function_name }}"
        self.memory_limit_in_mb = {{ cookiecutter.memory_size | int }}
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(0, int((self._deadline - time.monotonic()) * 1000))


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch):
    """Fake credentials and the function's region; no test can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture(autouse=True)
def aws():
    """moto's in-process AWS, behind the real boto3 clients: no test reaches a real account."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture(autouse=True)
def fresh_container():
    """Each test starts as a new container: no orchestrator, no clients, a cold start."""
    handler.reset()
    metrics.reset_cold_start()
    yield
    handler.reset()
{%- if cookiecutter.use_postgres %}
    db.reset_database()
{%- endif %}


@pytest.fixture
def lambda_context():
    return LambdaContext()


@pytest.fixture
def emf_lines(capsys):
    """A function returning the EMF documents printed so far."""

    def read() -> list[dict]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in io.StringIO(out) if line.startswith('{"_aws"')]

    return read
{%- if cookiecutter.use_postgres %}


@pytest.fixture(scope="session")
def database_url():
    """DATABASE_URL when set, else a throwaway server for the whole session."""
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    from pg_server import PostgresServer

    server = PostgresServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def db_secret(aws, database_url, monkeypatch):
    """The database's credentials in a (moto) Secrets Manager secret, as in production."""
    import boto3

    parts = urlsplit(database_url)
    secret = {
        "username": parts.username,
        "password": parts.password or "",
        "host": parts.hostname,
        "port": parts.port or 5432,
        "dbname": parts.path.lstrip("/") or "postgres",
    }
    client = boto3.client("secretsmanager", region_name=REGION)
    name = "{{ cookiecutter.function_name }}/db"
    arn = client.create_secret(Name=name, SecretString=json.dumps(secret))["ARN"]
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    return secret
{%- endif %}
