"""The schema steps against a real PostgreSQL: each test gets its own empty database.

The function connects as in production: credentials from a (moto) Secrets Manager
secret, the database name overridden by DB_NAME to point at the test's database.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from makenaide_db_initializer import handler, steps

EVENTS = Path(__file__).resolve().parent.parent / "events"
TABLES = [
    "tickers",
    "ohlcv",
    "ohlcv_4h",
    "static_indicators",
    "trade_log",
    "performance_summary",
    "scanner_state",
    "schema_version",
]
INDICATORS = ["ma_20", "ma_50", "ma_200", "rsi_14", "bb_upper", "bb_lower", "volume_20ma"]
OLD_OHLCV = (
    "CREATE TABLE ohlcv (ticker text, date date, open real, high real, low real, close real,"
    " volume real, PRIMARY KEY (ticker, date))"
)


def failed_run(event, context) -> dict:
    """A run that fails the invocation: the handler raises PipelineFailed, as Lambda would see it."""
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler(event, context)
    assert str(raised.value).startswith('{"ok": false, "error": ')
    return raised.value.result


@pytest.fixture
def empty_db(db_secret, database_url, monkeypatch):
    """A new, empty database; yields a function that opens a connection to it."""
    name = f"init_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    monkeypatch.setenv("DB_NAME", name)
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    opened = []

    def connect():
        connection = psycopg2.connect(url)
        connection.autocommit = True
        opened.append(connection)
        return connection

    yield connect
    for connection in opened:
        connection.close()
    from makenaide_db_initializer import db

    db.reset_database()
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def snapshot(connection) -> dict:
    """Tables, columns (with types, defaults, nullability), constraints, indexes and version rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type, column_default, is_nullable, character_maximum_length"
            " FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2"
        )
        columns = cursor.fetchall()
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        )
        constraints = cursor.fetchall()
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT oid::regclass::text, relkind FROM pg_class"
            " WHERE relnamespace = 'public'::regnamespace ORDER BY 1"
        )
        relations = cursor.fetchall()
        versions = None
        cursor.execute("SELECT to_regclass('public.schema_version') IS NOT NULL")
        if cursor.fetchone()[0]:
            cursor.execute("SELECT version, applied_at FROM schema_version ORDER BY version")
            versions = cursor.fetchall()
    return {
        "columns": columns,
        "constraints": constraints,
        "indexes": indexes,
        "relations": relations,
        "versions": versions,
    }


def tables(connection) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        return [row[0] for row in cursor.fetchall()]


def step(result: dict, name: str) -> dict:
    return next(s for s in result["steps"] if s["name"] == name)


def test_first_run_creates_the_whole_schema(empty_db, lambda_context, emf_lines):
    result = handler.lambda_handler({}, lambda_context)

    assert result["ok"] is True, result
    applied = step(result, "apply_schema")["result"]
    assert applied["created_tables"] == TABLES
    assert applied["added_columns"] == []
    assert sorted(applied["created_indexes"]) == sorted(index.name for index in steps.INDEXES)
    assert applied["version_recorded"] is True
    report = step(result, "validate_schema")["result"]
    assert report["valid"] is True
    assert report["schema_version"] == steps.SCHEMA_VERSION
    assert sorted(tables(empty_db())) == sorted(TABLES)
    metrics = {name: value for doc in emf_lines() for name, value in doc.items() if not name.startswith("_")}
    assert metrics["TablesCreated"] == len(TABLES)
    assert metrics["SchemaValid"] == 1


def test_the_tables_have_the_original_columns_types_and_keys(empty_db, lambda_context):
    handler.lambda_handler({}, lambda_context)
    with empty_db().cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type, character_maximum_length, column_default"
            " FROM information_schema.columns WHERE table_name = 'tickers' ORDER BY ordinal_position"
        )
        assert cursor.fetchall() == [
            ("ticker", "character varying", 20, None),
            ("created_at", "timestamp without time zone", None, "now()"),
            ("updated_at", "timestamp without time zone", None, "now()"),
            ("is_active", "boolean", None, "true"),
        ]
        cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'ohlcv'"
            " ORDER BY ordinal_position"
        )
        assert [row[0] for row in cursor.fetchall()] == [
            "ticker",
            "date",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "ma_20",
            "ma_50",
            "ma_200",
            "rsi_14",
            "bb_upper",
            "bb_lower",
            "volume_20ma",
        ]
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'ohlcv_4h'::regclass"
        )
        assert cursor.fetchall() == [("PRIMARY KEY (ticker, date)",)]
        # The trading app's writes work as before.
        cursor.execute("INSERT INTO tickers (ticker) VALUES (%s)", ("KRW-BTC",))
        cursor.execute(
            "INSERT INTO trade_log (ticker, action, qty, price) VALUES (%s, %s, %s, %s) RETURNING id",
            ("KRW-BTC", "BUY", 0.01, 95_000_000),
        )
        assert cursor.fetchone() == (1,)
        cursor.execute("SELECT is_active FROM tickers")
        assert cursor.fetchone() == (True,)


def test_a_second_run_changes_nothing(empty_db, lambda_context):
    handler.lambda_handler({}, lambda_context)
    before = snapshot(empty_db())

    result = handler.lambda_handler({}, lambda_context)

    assert result["ok"] is True, result
    applied = step(result, "apply_schema")["result"]
    assert applied == {
        "created_tables": [],
        "added_columns": [],
        "created_indexes": [],
        "schema_version": steps.SCHEMA_VERSION,
        "version_recorded": False,
        "created_roles": [],
    }
    after = snapshot(empty_db())
    assert after == before
    assert len(after["versions"]) == 1


def test_validate_only_on_an_empty_database_reports_everything_and_creates_nothing(empty_db, lambda_context):
    before = snapshot(empty_db())

    result = handler.lambda_handler({"validate_only": True}, lambda_context)

    assert result["ok"] is True, result
    assert step(result, "apply_schema")["status"] == "skipped"
    report = step(result, "validate_schema")["result"]
    assert report["valid"] is False
    assert report["missing_tables"] == TABLES
    assert report["missing_indexes"] == [index.name for index in steps.INDEXES]
    assert report["schema_version"] is None
    assert snapshot(empty_db()) == before
    assert tables(empty_db()) == []


def test_validate_only_reports_missing_columns_of_an_old_table(empty_db, lambda_context):
    with empty_db().cursor() as cursor:
        cursor.execute(OLD_OHLCV)
    result = handler.lambda_handler({"validate_only": True}, lambda_context)
    report = step(result, "validate_schema")["result"]
    assert "ohlcv" not in report["missing_tables"]
    assert report["missing_columns"] == {"ohlcv": INDICATORS}
    with empty_db().cursor() as cursor:
        cursor.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = 'ohlcv'")
        assert cursor.fetchone() == (7,)


def test_a_partially_created_schema_is_completed(empty_db, lambda_context):
    with empty_db().cursor() as cursor:
        cursor.execute(
            "CREATE TABLE tickers (ticker varchar(20) PRIMARY KEY, created_at timestamp DEFAULT now(),"
            " updated_at timestamp DEFAULT now(), is_active boolean DEFAULT true)"
        )
        cursor.execute("INSERT INTO tickers (ticker) VALUES ('KRW-XRP')")
        cursor.execute(OLD_OHLCV)
        cursor.execute("INSERT INTO ohlcv VALUES ('KRW-XRP', '2024-01-02', 1, 2, 0.5, 1.5, 100)")

    result = handler.lambda_handler({}, lambda_context)

    assert result["ok"] is True, result
    applied = step(result, "apply_schema")["result"]
    assert applied["created_tables"] == [t for t in TABLES if t not in ("tickers", "ohlcv")]
    assert applied["added_columns"] == [f"ohlcv.{name}" for name in INDICATORS]
    assert step(result, "validate_schema")["result"]["valid"] is True
    with empty_db().cursor() as cursor:  # existing rows are kept
        cursor.execute("SELECT ticker, close, ma_20 FROM ohlcv")
        assert cursor.fetchall() == [("KRW-XRP", 1.5, None)]
        cursor.execute("SELECT ticker FROM tickers")
        assert cursor.fetchall() == [("KRW-XRP",)]


def test_a_failure_part_way_rolls_back_the_whole_transaction(empty_db, lambda_context):
    # A type named like a later table: CREATE TABLE trade_log fails after four tables were created.
    with empty_db().cursor() as cursor:
        cursor.execute("CREATE TYPE trade_log AS ENUM ('BUY', 'SELL')")
    before = snapshot(empty_db())

    result = failed_run({}, lambda_context)

    assert result["ok"] is False
    failed = step(result, "apply_schema")
    assert failed["status"] == "failed"
    assert "trade_log" in failed["error"]
    assert step(result, "validate_schema")["status"] == "skipped"
    assert tables(empty_db()) == []
    assert snapshot(empty_db()) == before


def test_a_column_of_the_wrong_type_fails_the_run_with_a_clear_report(empty_db, lambda_context):
    with empty_db().cursor() as cursor:
        cursor.execute("CREATE TABLE static_indicators (ticker text PRIMARY KEY, price text)")

    result = failed_run({}, lambda_context)

    assert result["ok"] is False
    failed = step(result, "validate_schema")
    assert failed["status"] == "failed"
    assert failed["error"] == "SchemaInvalid: static_indicators.price is text, expected real"


def test_the_sample_events_are_accepted(empty_db, lambda_context):
    for path in sorted(EVENTS.glob("*.json")):
        result = handler.lambda_handler(json.loads(path.read_text()), lambda_context)
        assert result["ok"] is True, (path.name, result)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"validate_only": "yes"}, "'validate_only' must be true or false"),
        ({"validate": True}, "unknown field(s) 'validate'; only 'validate_only' is accepted"),
        ({"validate_only": "Y" * 1_000_000}, "'validate_only' must be true or false, not 'YYYY"),
        ({"X" * 1_000_000: 1}, "unknown field(s) 'XXXXXXXXXXXXXXXXXXXXXXXXXXX...XX"),
        ({f"k{n}": 1 for n in range(10)}, "unknown field(s) 'k0', 'k1', 'k2', 'k3', 'k4' and 5 more;"),
    ],
)
def test_bad_events_are_rejected(event, message, lambda_context):
    result = failed_run(event, lambda_context)
    assert result["ok"] is False
    assert result["error"].startswith(f"invalid event: {message}")
    assert len(result["error"]) < 250  # a huge value is shown as a short repr


def table_grants(connection, role: str) -> dict[str, set[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = %s AND table_schema = 'public'",
            (role,),
        )
        found: dict[str, set[str]] = {}
        for table, privilege in cursor.fetchall():
            found.setdefault(table, set()).add(privilege)
        return found


def test_each_function_role_gets_exactly_the_grants_its_steps_use(empty_db, lambda_context):
    result = handler.lambda_handler({}, lambda_context)

    assert result["ok"] is True, result
    for role, grants in steps.FUNCTION_ROLES.items():
        assert table_grants(empty_db(), role) == {table: set(p) for table, p in grants.items()}, role
        with empty_db().cursor() as cursor:
            cursor.execute(
                "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s",
                (role,),
            )
            assert cursor.fetchone() == (False, False, False, False)


def test_a_grant_added_by_hand_is_taken_back_on_the_next_run(empty_db, lambda_context):
    handler.lambda_handler({}, lambda_context)
    with empty_db().cursor() as cursor:
        cursor.execute("GRANT DELETE, TRUNCATE ON tickers, trade_log TO makenaide_scanner")

    result = handler.lambda_handler({}, lambda_context)

    assert result["ok"] is True, result
    assert table_grants(empty_db(), "makenaide_scanner") == {
        table: set(p) for table, p in steps.FUNCTION_ROLES["makenaide_scanner"].items()
    }


def test_two_initializers_of_one_server_creating_a_role_at_once_both_succeed(
    empty_db, database_url, monkeypatch
):
    """Roles are server-wide: an initializer of another database may create the same role meanwhile."""
    import threading

    other = f"init_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(database_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{other}"')
    role = f"race_{uuid.uuid4().hex[:8]}"
    second_url = urlunsplit(urlsplit(database_url)._replace(path=f"/{other}"))
    first, second = empty_db(), psycopg2.connect(second_url)
    try:
        monkeypatch.setattr(steps, "FUNCTION_ROLES", {})
        for connection in (first, second):
            with connection, connection.cursor() as cursor:
                steps.apply_schema_in(cursor)
        monkeypatch.setattr(steps, "FUNCTION_ROLES", {role: {"tickers": ("SELECT",)}})
        first.autocommit = False
        with first.cursor() as cursor:
            assert steps.apply_roles_in(cursor) == [role]  # created, not yet committed
        outcome = {}

        def run_second():
            with second, second.cursor() as cursor:  # waits on the role's name until the first commits
                outcome["created"] = steps.apply_roles_in(cursor)

        thread = threading.Thread(target=run_second)
        thread.start()
        thread.join(timeout=1)  # it is waiting for the first transaction
        first.commit()
        thread.join(timeout=60)
        assert outcome == {"created": []}
        for connection in (first, second):
            assert table_grants(connection, role) == {"tickers": {"SELECT"}}
    finally:
        first.close()
        second.close()
        with empty_db().cursor() as cursor:
            cursor.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM "{role}"')
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{other}" WITH (FORCE)')
            cursor.execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()
