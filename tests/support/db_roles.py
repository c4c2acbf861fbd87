"""The Makenaide examples run as the database roles their db initializer grants (tests only).

``Makenaide`` puts the examples' src/ folders on sys.path, creates the schema by invoking the
db initializer's handler as the server's admin, and hands out login users that are members
of a function's role (the way an operator gives each function its own user), each with its
own Secrets Manager secret. moto must be active while it is used.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import secrets
import uuid
from urllib.parse import urlsplit, urlunsplit

from tests.support import makenaide as mk

PG_EXAMPLES = ("makenaide-db-initializer", "makenaide-scanner", "makenaide-data-collector")


class Context:
    """The attributes of Lambda's context object that the examples read."""

    memory_limit_in_mb = 256

    def __init__(self, function_name: str, remaining_ms: int = 600_000) -> None:
        import time

        self.function_name = function_name
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{mk.REGION}:123456789012:function:{function_name}"
        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(0, int((self._deadline - time.monotonic()) * 1000))


def module(example: str, name: str):
    return importlib.import_module(f"{example.replace('-', '_')}.{name}")


def new_container(example: str) -> None:
    """Forget the example's orchestrator, clients and connection, as a new container would."""
    module(example, "handler").reset()
    module(example, "metrics").reset_cold_start()
    module(example, "db").reset_database()


def invoke(example: str, event: dict) -> dict:
    return module(example, "handler").lambda_handler(event, Context(example))


def invoke_failing(example: str, event: dict) -> dict:
    """Invoke a run that must fail: it raises the handler's PipelineFailed, whose result is returned."""
    handler = module(example, "handler")
    try:
        result = handler.lambda_handler(event, Context(example))
    except handler.PipelineFailed as failed:
        return failed.result
    raise AssertionError(f"the run did not fail: {result}")


def admin(url: str, statement, params: tuple = ()) -> list[tuple]:
    """Run one statement as the admin (autocommit); its rows, if any."""
    import psycopg2

    connection = psycopg2.connect(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


class LoginUser:
    """A login user in ``group_role`` with a random password, and its secret."""

    def __init__(self, admin_url: str, group_role: str) -> None:
        from psycopg2 import sql

        self.admin_url = admin_url
        self.name = f"{group_role}_{secrets.token_hex(4)}"
        self.passwords = [secrets.token_hex(16)]
        admin(
            admin_url,
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s IN ROLE {}").format(
                sql.Identifier(self.name), sql.Identifier(group_role)
            ),
            (self.passwords[0],),
        )
        import boto3

        self._client = boto3.client("secretsmanager", region_name=mk.REGION)
        self.secret_arn = self._client.create_secret(
            Name=f"{self.name}/db", SecretString=json.dumps(self._secret())
        )["ARN"]

    @property
    def url(self) -> str:
        parts = urlsplit(self.admin_url)
        netloc = f"{self.name}:{self.passwords[-1]}@{parts.hostname}:{parts.port or 5432}"
        return urlunsplit(parts._replace(netloc=netloc))

    def _secret(self) -> dict:
        return mk.secret_for(self.url)

    def rotate(self) -> None:
        """What Secrets Manager's rotation does: a new password on the user, then in the secret."""
        from psycopg2 import sql

        self.passwords.append(secrets.token_hex(16))
        admin(
            self.admin_url,
            sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(self.name)),
            (self.passwords[-1],),
        )
        self._client.put_secret_value(SecretId=self.secret_arn, SecretString=json.dumps(self._secret()))

    def end_sessions(self) -> int:
        """The server ends the user's sessions (an idle timeout, a failover); how many it ended."""
        rows = admin(
            self.admin_url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
            (self.name,),
        )
        return len(rows)

    def drop(self) -> None:
        from psycopg2 import sql

        self.end_sessions()
        with contextlib.suppress(Exception):
            admin(self.admin_url, sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.name)))


def create_schema(admin_url: str, monkeypatch) -> dict:
    """Invoke the db initializer as the admin, as its deployment would; its result."""
    monkeypatch.setenv("DB_SECRET_ARN", mk.create_db_secret(admin_url, name=f"admin-{uuid.uuid4().hex[:8]}"))
    new_container("makenaide-db-initializer")
    try:
        result = invoke("makenaide-db-initializer", {})
    finally:
        new_container("makenaide-db-initializer")
    assert result["ok"] is True, result
    return result


def fake_aws_environment(monkeypatch) -> None:
    """Fake credentials and the examples' region: no test reaches a real account."""
    for name in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_FUNCTION_NAME",
        "DB_HOST",
        "DB_PORT",
        "DB_NAME",
        "DB_SECRET_MAX_AGE_S",
    ):
        monkeypatch.delenv(name, raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": mk.REGION,
        "AWS_REGION": mk.REGION,
    }.items():
        monkeypatch.setenv(key, value)
