"""PostgreSQL access against a real server: cached secret, reused and re-opened connections."""

from __future__ import annotations

import logging

import psycopg2
import pytest

from makenaide_db_initializer.clients import AWSClientFactory
from makenaide_db_initializer.db import Database, DatabaseConfigError


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
