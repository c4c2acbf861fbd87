"""The Makenaide functions run as roles that may only read and write rows.

Against the session's real PostgreSQL: the db initializer (as the admin) creates the schema and
one role per function; each function then runs its happy path as a login user that is a member
of its role and nothing else, with the credentials in its own (moto) secret. The same users
cannot create or drop a table, nor touch a table their function does not use. The orchestrator
does not use the database.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import psycopg2
import pytest
import responses
from psycopg2 import errors

from tests.support import db_roles
from tests.support import makenaide as mk

pytestmark = pytest.mark.postgres


@pytest.fixture
def makenaide(session_postgres, monkeypatch):
    """A fresh database with the initializer's schema and roles; yields the admin URL."""
    from moto import mock_aws

    db_roles.fake_aws_environment(monkeypatch)
    for example in db_roles.PG_EXAMPLES:
        monkeypatch.syspath_prepend(str(mk.src(example)))
    url = session_postgres.database("least_privilege")
    with mock_aws():
        db_roles.create_schema(url, monkeypatch)
        users: list[db_roles.LoginUser] = []

        def login(role: str) -> db_roles.LoginUser:
            users.append(db_roles.LoginUser(url, role))
            return users[-1]

        yield url, login
        for example in db_roles.PG_EXAMPLES:
            db_roles.new_container(example)
        for user in users:
            user.drop()


def as_user(user: db_roles.LoginUser, statement: str):
    connection = psycopg2.connect(user.url)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


FORBIDDEN = [
    "CREATE TABLE scratch (id integer)",
    "CREATE TABLE IF NOT EXISTS scanner_state (name text PRIMARY KEY, last_scan_at timestamptz NOT NULL)",
    "DROP TABLE tickers",
    "ALTER TABLE tickers ADD COLUMN note text",
    "TRUNCATE ohlcv_4h",
    "SELECT * FROM trade_log",
    "DELETE FROM tickers",
]


def test_the_scanner_runs_as_its_role_and_can_change_rows_only(makenaide, monkeypatch):
    url, login = makenaide
    user = login("makenaide_scanner")
    monkeypatch.setenv("DB_SECRET_ARN", user.secret_arn)
    scanner = "makenaide-scanner"
    db_roles.new_container(scanner)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        markets = mk.MarketServer(mock, db_roles.module(scanner, "upbit").API_URL)
        result = db_roles.invoke(scanner, {})

    assert result["ok"] is True, result
    active = db_roles.admin(url, "SELECT count(*) FROM tickers WHERE is_active")[0][0]
    assert active == len(markets.krw) - len(["KRW-BTC", "KRW-ETH"])  # the default blacklist
    assert db_roles.admin(url, "SELECT count(*) FROM scanner_state")[0][0] == 1
    assert db_roles.admin(url, "SELECT usename FROM pg_stat_activity WHERE usename = %s", (user.name,))

    for statement in [*FORBIDDEN, "SELECT * FROM ohlcv"]:
        with pytest.raises(errors.InsufficientPrivilege):
            as_user(user, statement)


def test_the_collector_runs_as_its_role_and_can_change_rows_only(makenaide, monkeypatch):
    url, login = makenaide
    db_roles.admin(url, "INSERT INTO tickers (ticker) VALUES ('KRW-BTC'), ('KRW-ETH')")
    user = login("makenaide_data_collector")
    monkeypatch.setenv("DB_SECRET_ARN", user.secret_arn)
    collector = "makenaide-data-collector"
    db_roles.new_container(collector)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mk.CandleServer(mock, db_roles.module(collector, "upbit").API_URL)
        result = db_roles.invoke(collector, {})

    assert result["ok"] is True, result
    counts = dict(db_roles.admin(url, "SELECT ticker, count(*) FROM ohlcv_4h GROUP BY ticker"))
    assert counts == {"KRW-BTC": 200, "KRW-ETH": 200}
    daily = dict(db_roles.admin(url, "SELECT ticker, count(*) FROM ohlcv GROUP BY ticker"))
    assert daily == {"KRW-BTC": 450, "KRW-ETH": 450}

    for statement in [*FORBIDDEN, "UPDATE tickers SET is_active = false", "SELECT * FROM scanner_state"]:
        with pytest.raises(errors.InsufficientPrivilege):
            as_user(user, statement)


def test_a_user_outside_every_function_role_cannot_run_the_scanner(makenaide, monkeypatch):
    """The grants are what makes the happy path work: without the role, the same run is refused."""
    url, login = makenaide
    db_roles.admin(
        url,
        "DO $$ BEGIN CREATE ROLE no_grants_group NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$",
    )
    user = login("no_grants_group")
    monkeypatch.setenv("DB_SECRET_ARN", user.secret_arn)
    scanner = "makenaide-scanner"
    db_roles.new_container(scanner)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mk.MarketServer(mock, db_roles.module(scanner, "upbit").API_URL)
        result = db_roles.invoke_failing(scanner, {})

    assert result["ok"] is False
    assert "permission denied for table scanner_state" in str(result)


DDL = re.compile(
    r"\b(CREATE|ALTER|DROP)\s+(OR\s+REPLACE\s+|TEMP(ORARY)?\s+|UNLOGGED\s+|UNIQUE\s+)*"
    r"(TABLE|INDEX|SCHEMA|ROLE|USER|VIEW|SEQUENCE|TYPE|FUNCTION|EXTENSION|DATABASE|TRIGGER)\b"
    r"|\bTRUNCATE\s+\w|\b(GRANT|REVOKE)\s+[\w ,]+\s+ON\b",
    re.IGNORECASE,
)
"""SQL that changes the schema or privileges (prose such as "drop the connection" does not match)."""


def sql_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


@pytest.mark.parametrize("example", [e for e in db_roles.PG_EXAMPLES if e != "makenaide-db-initializer"])
def test_no_function_but_the_initializer_ships_ddl(example):
    """What the role test proves at run time, for every code path: no schema change in the shipped code."""
    found = [
        f"{path.relative_to(mk.src(example))}: {text.strip()[:60]}"
        for path in sorted(mk.src(example).rglob("*.py"))
        for text in sql_literals(path)
        if DDL.search(text)
    ]
    assert found == []
