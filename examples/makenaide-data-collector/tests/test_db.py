"""PostgreSQL access against a real server: cached secret, reused and re-opened connections,
a rotated password fetched again once, and secrets that are not settings refused clearly."""

from __future__ import annotations

import json
import logging
import secrets

import boto3
import psycopg2
import pytest
from psycopg2 import sql

from makenaide_data_collector.clients import AWSClientFactory
from makenaide_data_collector.db import SECRET_MAX_AGE_ENV, Database, DatabaseConfigError


@pytest.fixture
def database(db_secret):
    database = Database(AWSClientFactory())
    with database.transaction() as cursor:
        cursor.execute("DROP TABLE IF EXISTS runtime_probe")
        cursor.execute("CREATE TABLE runtime_probe (id integer PRIMARY KEY, note text)")
    yield database
    database.discard()


def _count_secret_fetches(database: Database) -> list[str]:
    calls: list[str] = []
    client = database._clients.get("secretsmanager")
    client.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue",
        lambda params, **_: calls.append(params["SecretId"]),
    )
    return calls


def _terminate(database_url: str, pid: int) -> None:
    """Kill a backend from another session, as a failover or an idle timeout would."""
    with psycopg2.connect(database_url) as admin, admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()


def test_the_secret_is_fetched_once_and_the_connection_reused(db_secret):
    database = Database(AWSClientFactory())
    fetches = _count_secret_fetches(database)
    with database.transaction() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (first_pid,) = cursor.fetchone()
    with database.transaction() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (second_pid,) = cursor.fetchone()
    assert first_pid == second_pid
    assert len(fetches) == 1
    database.discard()


def test_a_failed_transaction_is_rolled_back(database):
    with pytest.raises(ZeroDivisionError), database.transaction() as cursor:
        cursor.execute("INSERT INTO runtime_probe VALUES (1, 'lost')")
        _ = 1 / 0
    with database.transaction() as cursor:
        cursor.execute("SELECT count(*) FROM runtime_probe")
        assert cursor.fetchone() == (0,)


def test_a_dropped_connection_is_opened_again(db_secret, database_url):
    database = Database(AWSClientFactory(), ping_after_idle_s=0)
    with database.transaction() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    _terminate(database_url, pid)
    with database.transaction() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (new_pid,) = cursor.fetchone()
    assert new_pid != pid


def test_a_transaction_cut_off_mid_write_runs_again_and_loses_nothing(database, database_url):
    attempts = []

    def write(cursor):
        attempts.append(1)
        cursor.execute("INSERT INTO runtime_probe VALUES (1, 'first'), (2, 'second')")
        if len(attempts) == 1:
            cursor.execute("SELECT pg_backend_pid()")
            _terminate(database_url, cursor.fetchone()[0])
        cursor.execute("INSERT INTO runtime_probe VALUES (3, 'third')")

    database.run_transaction(write)
    assert len(attempts) == 2
    with database.transaction() as cursor:
        cursor.execute("SELECT id FROM runtime_probe ORDER BY id")
        assert cursor.fetchall() == [(1,), (2,), (3,)]


def test_credentials_never_reach_the_log(db_secret, caplog):
    caplog.set_level(logging.DEBUG)
    database = Database(AWSClientFactory())
    with database.transaction() as cursor:
        cursor.execute("SELECT 1")
    database.discard()
    assert db_secret["password"] not in caplog.text
    assert "connecting to PostgreSQL" in caplog.text


def test_a_missing_secret_setting_is_a_clear_error(aws, monkeypatch):
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    with pytest.raises(DatabaseConfigError, match="DB_SECRET_ARN is not set"):
        Database(AWSClientFactory()).connection()


# --- secret rotation: a password changed under a warm container ------------------------------------


class RotatingRole:
    """A login role of its own in the test server, its secret, and a way to rotate both."""

    def __init__(self, database_url: str, db_secret: dict) -> None:
        self.admin_url = database_url
        self.name = f"rotation_{secrets.token_hex(4)}"
        self.passwords = [secrets.token_hex(16)]
        self.settings = dict(db_secret, username=self.name, password=self.passwords[0])
        self._admin(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s"), self.passwords[0])
        self.client = boto3.client("secretsmanager")
        self.arn = self.client.create_secret(Name=f"{self.name}/db", SecretString=json.dumps(self.settings))[
            "ARN"
        ]

    def _admin(self, statement: sql.Composable, *params: str) -> None:
        with psycopg2.connect(self.admin_url) as admin, admin.cursor() as cursor:
            cursor.execute(statement.format(sql.Identifier(self.name)), params)
        admin.close()

    def change_password(self, update_secret: bool = True) -> None:
        """What a rotation does: a new password on the role, then (normally) in the secret."""
        self.passwords.append(secrets.token_hex(16))
        self._admin(sql.SQL("ALTER ROLE {} PASSWORD %s"), self.passwords[-1])
        if update_secret:
            self.settings["password"] = self.passwords[-1]
            self.client.put_secret_value(SecretId=self.arn, SecretString=json.dumps(self.settings))

    def end_sessions(self) -> None:
        """The server drops the role's sessions (an idle timeout, a failover), so the next use connects."""
        with psycopg2.connect(self.admin_url) as admin, admin.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (self.name,)
            )
        admin.close()

    def drop(self) -> None:
        self.end_sessions()
        self._admin(sql.SQL("DROP ROLE IF EXISTS {}"))


@pytest.fixture
def rotating_role(db_secret, database_url):
    role = RotatingRole(database_url, db_secret)
    yield role
    role.drop()


def _current_user(database: Database) -> str:
    with database.transaction() as cursor:
        cursor.execute("SELECT current_user")
        return cursor.fetchone()[0]


def test_a_rotated_password_is_fetched_again_once_and_never_logged(rotating_role, caplog):
    caplog.set_level(logging.DEBUG)
    database = Database(AWSClientFactory(), secret_arn=rotating_role.arn, ping_after_idle_s=0)
    fetches = _count_secret_fetches(database)
    assert _current_user(database) == rotating_role.name

    rotating_role.change_password()
    rotating_role.end_sessions()

    assert _current_user(database) == rotating_role.name  # connected again, with the new password
    assert len(fetches) == 2  # the first connect, and exactly one fetch after the refusal
    assert "fetching the secret again" in caplog.text
    for password in rotating_role.passwords:
        assert password not in caplog.text
    database.discard()


def test_a_password_still_wrong_after_one_fetch_fails_without_fetching_again(rotating_role, caplog):
    caplog.set_level(logging.DEBUG)
    database = Database(AWSClientFactory(), secret_arn=rotating_role.arn, ping_after_idle_s=0)
    fetches = _count_secret_fetches(database)
    _current_user(database)

    rotating_role.change_password(update_secret=False)  # the secret was not updated (a failed rotation)
    rotating_role.end_sessions()

    with pytest.raises(psycopg2.OperationalError):
        database.connection()
    assert len(fetches) == 2
    with pytest.raises(psycopg2.OperationalError):  # the next invocation tries once more, no loop
        database.connection()
    assert len(fetches) == 3
    for password in rotating_role.passwords:
        assert password not in caplog.text


def test_credentials_older_than_the_max_age_are_fetched_before_connecting(rotating_role, monkeypatch):
    monkeypatch.setenv(SECRET_MAX_AGE_ENV, "0")
    database = Database(AWSClientFactory(), secret_arn=rotating_role.arn, ping_after_idle_s=0)
    fetches = _count_secret_fetches(database)
    _current_user(database)
    _current_user(database)
    assert len(fetches) == 1  # a live connection needs no credentials

    rotating_role.change_password()
    rotating_role.end_sessions()
    assert _current_user(database) == rotating_role.name
    assert len(fetches) == 2  # fetched because it was too old, not after a refusal
    database.discard()


@pytest.mark.parametrize("value", ["-1", "soon", "nan"])
def test_a_bad_max_age_is_a_clear_error(db_secret, monkeypatch, value):
    monkeypatch.setenv(SECRET_MAX_AGE_ENV, value)
    with pytest.raises(DatabaseConfigError, match=SECRET_MAX_AGE_ENV):
        Database(AWSClientFactory())


@pytest.mark.parametrize(
    "payload", ["null", '"host=db.internal dbname=app"', '["a", "b"]', "42", "true", "{"]
)
def test_a_secret_that_is_not_a_json_object_is_a_config_error(aws, monkeypatch, payload):
    """An attacker (or a mistake) stores valid JSON that is not an object: a clear error, no TypeError."""
    client = boto3.client("secretsmanager")
    arn = client.create_secret(Name=f"not-settings-{secrets.token_hex(4)}", SecretString=payload)["ARN"]
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    with pytest.raises(DatabaseConfigError, match="not a JSON object"):
        Database(AWSClientFactory()).connection()


def test_a_port_that_is_not_a_number_is_a_config_error(db_secret, monkeypatch):
    monkeypatch.setenv("DB_PORT", "fivefour")
    with pytest.raises(DatabaseConfigError, match="port"):
        Database(AWSClientFactory()).connection()
