"""Retries are safe: every Makenaide example, delivered the same event twice, or once more after a
failure half-way, ends in the state a single clean delivery leaves.

A run that is not ok raises PipelineFailed, so Lambda retries an asynchronous event (twice) and then
sends it to the failure destination: a step runs again with the same event, after a run that may
have written part of its work. Each test here compares the final state of one world (the event
delivered twice, or failed half-way and delivered again, as Lambda's retry does) with the state of
another world where the same event was delivered once, cleanly:

- PostgreSQL (a real throwaway server, tests/support/postgres.py; one fresh database per world): the
  schema (tables, columns, types, defaults, indexes) and every row, leaving out the columns a write
  stamps with the wall clock (``now()``). Real values are compared at float4 precision: a second
  collector run recomputes the indicators of its window from the stored, float4, history.
- AWS (moto behind the real boto3 clients; one ``mock_aws`` per world): the instance's state, the
  database's status, the SSM commands sent and the orchestrator's tags on the instance (their
  timestamps only as set or cleared: a duplicate event lets the reconcile take its next step sooner),
  after a last pass that observes the end of the cycle.

The failures half-way are real PostgreSQL errors raised by a trigger (an event trigger for the
initializer's DDL) in the middle of the run's transaction, and a throttled StartInstances for the
orchestrator. Each of them must raise PipelineFailed whose message is the result's JSON naming the
failed step and the error, and leave the state as it was before the failed delivery.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import math
import os
import types
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support import makenaide as mk

pytestmark = pytest.mark.postgres

INITIALIZER, SCANNER = "makenaide-db-initializer", "makenaide-scanner"
COLLECTOR, ORCHESTRATOR = "makenaide-data-collector", "makenaide-integrated-orchestrator"
EXAMPLES = (INITIALIZER, SCANNER, COLLECTOR, ORCHESTRATOR)
WALL_CLOCK_COLUMNS = frozenset({"created_at", "updated_at", "applied_at", "last_scan_at", "executed_at"})
"""Columns a write fills with now(): two worlds cannot agree on them."""
FLOAT4_REL = 1e-5
SCHEDULED = {
    "version": "0",
    "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-01-10T00:00:00Z",
    "region": mk.REGION,
    "resources": ["arn:aws:events:ap-northeast-2:123456789012:rule/makenaide"],
    "detail": {},
}
"""What an EventBridge schedule delivers (and Lambda delivers again on a retry)."""
INJECTED = "injected: the database failed half-way"
_databases = itertools.count()


class Context:
    """The attributes of Lambda's context object that the examples use."""

    function_name = "idempotency"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:ap-northeast-2:123456789012:function:idempotency"

    def __init__(self, remaining_ms: int = 600_000) -> None:
        import time

        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _module(example: str, name: str):
    return importlib.import_module(f"{example.replace('-', '_')}.{name}")


def _reset(example: str) -> None:
    """A new container: no orchestrator, no clients, no connection."""
    _module(example, "handler").reset()
    _module(example, "metrics").reset_cold_start()
    with contextlib.suppress(ModuleNotFoundError):
        _module(example, "db").reset_database()


def deliver(example: str, event: dict, remaining_ms: int = 600_000) -> dict:
    """One invocation that must succeed: its result."""
    result = _module(example, "handler").lambda_handler(event, Context(remaining_ms))
    assert result["ok"] is True, json.dumps(result)[:1500]
    return result


def deliver_failing(example: str, event: dict) -> tuple[dict, str]:
    """One invocation that must fail as Lambda sees it: the result and the error message Lambda reports."""
    handler = _module(example, "handler")
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler(event, Context())
    message = str(raised.value)
    assert len(message) <= handler.MAX_ERROR_MESSAGE_CHARS
    assert message.startswith('{"ok": false, "error": "critical step '), message[:300]
    return raised.value.result, message


@pytest.fixture
def environment(monkeypatch):
    """Every example's src/ on sys.path, fake AWS credentials, and fresh containers before and after."""
    for example in EXAMPLES:
        monkeypatch.syspath_prepend(str(mk.src(example)))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": mk.REGION,
        "AWS_REGION": mk.REGION,
    }.items():
        monkeypatch.setenv(key, value)
    for example in EXAMPLES:
        _reset(example)
    yield monkeypatch
    for example in EXAMPLES:
        _reset(example)


# --- PostgreSQL worlds ---------------------------------------------------------------------------


class Database:
    """One world's database: fresh, with the initializer's schema, its secret in moto, connected."""

    def __init__(self, session_postgres, monkeypatch, label: str) -> None:
        import psycopg2

        self.url = session_postgres.database(f"idem_{label}_{os.getpid()}_{next(_databases)}")
        secret = mk.create_db_secret(self.url, name=f"makenaide/db-{uuid.uuid4().hex[:8]}")
        monkeypatch.setenv("DB_SECRET_ARN", secret)
        for example in EXAMPLES:
            _reset(example)
        self.admin = psycopg2.connect(self.url)
        self.admin.autocommit = True

    def execute(self, sql: str, params=()) -> list[tuple]:
        with self.admin.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def state(self) -> dict:
        """The schema and every row, without the wall-clock columns."""
        from psycopg2 import sql

        columns = self.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " ORDER BY table_name, ordinal_position"
        )
        indexes = self.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"
        )
        rows = {}
        for table in sorted({row[0] for row in columns}):
            names = [row[1] for row in columns if row[0] == table and row[1] not in WALL_CLOCK_COLUMNS]
            listed = sql.SQL(", ").join(map(sql.Identifier, names))
            query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(listed, sql.Identifier(table), listed)
            rows[table] = self.execute(query.as_string(self.admin))
        return {"columns": columns, "indexes": indexes, "rows": rows}

    def stamps(self, table: str, column: str) -> list:
        """A wall-clock column's values, to show that a second delivery rewrote nothing."""
        return [row[0] for row in self.execute(f"SELECT {column} FROM {table} ORDER BY 1")]

    def fail_half_way(self, table: str, when: str) -> None:
        """A trigger that raises in the middle of the run's transaction (``when``: BEFORE UPDATE...)."""
        self.execute(
            "CREATE FUNCTION fail_half_way() RETURNS trigger LANGUAGE plpgsql AS"
            f" $$ BEGIN RAISE EXCEPTION '{INJECTED}'; END $$"
        )
        self.execute(
            f"CREATE TRIGGER fail_half_way {when} ON {table} FOR EACH STATEMENT"
            " EXECUTE FUNCTION fail_half_way()"
        )

    def heal(self, table: str) -> None:
        self.execute(f"DROP TRIGGER fail_half_way ON {table}")
        self.execute("DROP FUNCTION fail_half_way()")

    def close(self) -> None:
        self.admin.close()


def _same_value(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=FLOAT4_REL, abs_tol=1e-9)
    return a == b


def assert_same_state(found: dict, expected: dict) -> None:
    assert found["columns"] == expected["columns"], "the schemas differ"
    assert found["indexes"] == expected["indexes"], "the indexes differ"
    assert found["rows"].keys() == expected["rows"].keys()
    for table, rows in expected["rows"].items():
        got = found["rows"][table]
        assert len(got) == len(rows), f"{table}: {len(got)} rows, a single delivery leaves {len(rows)}"
        differing = [
            (old, new)
            for old, new in zip(rows, got, strict=True)
            if not all(_same_value(a, b) for a, b in zip(old, new, strict=True))
        ]
        assert not differing, f"{table}: {len(differing)} rows differ, e.g. {differing[:2]}"


def assert_unchanged(after: dict, before: dict) -> None:
    """No row written or lost; a table the run created on its own (IF NOT EXISTS) holds nothing."""
    for table, rows in after["rows"].items():
        assert rows == before["rows"].get(table, []), f"{table} changed"
    assert set(before["rows"]) <= set(after["rows"]), "a table was lost"


@pytest.fixture
def worlds(environment, session_postgres):
    """new(label) -> a Database for one world; all of them run under one moto (for their secrets)."""
    from moto import mock_aws

    opened: list[Database] = []

    def new(label: str) -> Database:
        database = Database(session_postgres, environment, label)
        opened.append(database)
        deliver(INITIALIZER, {})
        _reset(INITIALIZER)
        return database

    with mock_aws():
        yield types.SimpleNamespace(new=new, monkeypatch=environment)
        for database in opened:
            database.close()


# --- db-initializer --------------------------------------------------------------------------------


@pytest.fixture
def empty_worlds(environment, session_postgres):
    """Databases without the schema: the initializer itself is under test."""
    from moto import mock_aws

    opened: list[Database] = []

    def new(label: str) -> Database:
        database = Database(session_postgres, environment, label)
        opened.append(database)
        return database

    with mock_aws():
        yield new
        for database in opened:
            database.close()


def test_db_initializer_delivered_twice_leaves_the_schema_of_one_delivery(empty_worlds):
    once = empty_worlds("init_once")
    deliver(INITIALIZER, {})
    expected = once.state()

    twice = empty_worlds("init_twice")
    deliver(INITIALIZER, {})
    _reset(INITIALIZER)
    again = deliver(INITIALIZER, {})

    applied = next(step for step in again["steps"] if step["name"] == "apply_schema")["result"]
    assert applied["created_tables"] == [] and applied["created_indexes"] == [], applied
    assert applied["version_recorded"] is False
    assert_same_state(twice.state(), expected)


def test_db_initializer_failing_half_way_raises_changes_nothing_and_a_retry_completes(empty_worlds):
    once = empty_worlds("init_clean")
    deliver(INITIALIZER, {})
    expected = once.state()

    world = empty_worlds("init_retried")
    before = world.state()
    world.execute(  # DDL fails at the first CREATE INDEX, after the tables were created
        "CREATE FUNCTION fail_ddl_half_way() RETURNS event_trigger LANGUAGE plpgsql AS"
        f" $$ BEGIN RAISE EXCEPTION '{INJECTED}'; END $$"
    )
    world.execute(
        "CREATE EVENT TRIGGER fail_ddl_half_way ON ddl_command_end WHEN TAG IN ('CREATE INDEX')"
        " EXECUTE FUNCTION fail_ddl_half_way()"
    )

    result, message = deliver_failing(INITIALIZER, {})

    assert message.startswith('{"ok": false, "error": "critical step apply_schema failed: RaiseException: ')
    assert INJECTED in message
    assert json.loads(message) == result
    assert world.state() == before  # one transaction: the tables created before the failure are gone
    world.execute("DROP EVENT TRIGGER fail_ddl_half_way")
    world.execute("DROP FUNCTION fail_ddl_half_way()")

    deliver(INITIALIZER, {})  # Lambda's retry: the same event

    assert_same_state(world.state(), expected)


# --- scanner -----------------------------------------------------------------------------------------

EXISTING_TICKERS = (("KRW-OLD", True), ("KRW-BTC", True), ("KRW-XRP", False))
"""Before the scan: a delisted market still active, a blacklisted one active, a listed one inactive."""


@pytest.fixture
def upbit_markets(environment):
    import responses

    upbit = _module(SCANNER, "upbit")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mk.MarketServer(mock, upbit.API_URL)


def _scanner_world(worlds, label: str) -> Database:
    database = worlds.new(label)
    for ticker, active in EXISTING_TICKERS:
        database.execute("INSERT INTO tickers (ticker, is_active) VALUES (%s, %s)", (ticker, active))
    return database


@pytest.mark.parametrize("event", [SCHEDULED, {"force": True}], ids=["schedule", "force"])
def test_scanner_delivered_twice_leaves_the_tickers_of_one_delivery(event, worlds, upbit_markets):
    once = _scanner_world(worlds, "scan_once")
    deliver(SCANNER, event)
    expected = once.state()

    twice = _scanner_world(worlds, "scan_twice")
    deliver(SCANNER, event)
    stamps = twice.stamps("tickers", "updated_at")
    again = deliver(SCANNER, event)

    assert_same_state(twice.state(), expected)
    assert twice.stamps("tickers", "updated_at") == stamps  # the second delivery rewrote no ticker
    sync = next(step for step in again["steps"] if step["name"] == "sync_tickers")
    if event.get("force"):  # scanned again, and found nothing to change
        counts = {
            key: sync["result"][key] for key in ("inserted", "reactivated", "deactivated", "blacklisted")
        }
        assert counts == dict.fromkeys(counts, 0), sync
    else:  # within the refresh interval: the retry is a no-op
        assert sync["status"] == "skipped", sync


def test_scanner_failing_half_way_raises_changes_nothing_and_a_retry_completes(worlds, upbit_markets):
    once = _scanner_world(worlds, "scan_clean")
    deliver(SCANNER, SCHEDULED)
    expected = once.state()

    world = _scanner_world(worlds, "scan_retried")
    before = world.state()
    world.fail_half_way("tickers", "BEFORE UPDATE")  # the new markets are inserted, the first update fails

    result, message = deliver_failing(SCANNER, SCHEDULED)

    assert message.startswith('{"ok": false, "error": "critical step sync_tickers failed: RaiseException: ')
    assert INJECTED in message
    assert result["steps"][-1]["name"] == "sync_tickers" and result["steps"][-1]["status"] == "failed"
    assert_unchanged(world.state(), before)  # the inserts were rolled back, and no scan was recorded
    world.heal("tickers")

    deliver(SCANNER, SCHEDULED)  # Lambda's retry: the same event

    assert_same_state(world.state(), expected)


# --- data collector ------------------------------------------------------------------------------

TICKERS = ("KRW-BTC", "KRW-ETH", "KRW-XRP")


@pytest.fixture
def upbit_candles(environment):
    import responses

    upbit = _module(COLLECTOR, "upbit")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mk.CandleServer(mock, upbit.API_URL)


def _collector_world(worlds, label: str) -> Database:
    database = worlds.new(label)
    for ticker in TICKERS:
        database.execute("INSERT INTO tickers (ticker, is_active) VALUES (%s, true)", (ticker,))
    return database


def test_data_collector_delivered_twice_leaves_the_candles_of_one_delivery(worlds, upbit_candles):
    once = _collector_world(worlds, "collect_once")
    deliver(COLLECTOR, SCHEDULED)
    expected = once.state()
    assert all(expected["rows"][table] for table in ("ohlcv", "ohlcv_4h"))

    twice = _collector_world(worlds, "collect_twice")
    deliver(COLLECTOR, SCHEDULED)
    again = deliver(COLLECTOR, SCHEDULED)

    collect = next(step for step in again["steps"] if step["name"] == "collect")["result"]
    assert collect["collected"] == len(TICKERS) and collect["failed"] == [], collect
    assert_same_state(twice.state(), expected)


def test_data_collector_failing_half_way_raises_changes_nothing_and_a_retry_completes(worlds, upbit_candles):
    once = _collector_world(worlds, "collect_clean")
    deliver(COLLECTOR, SCHEDULED)
    expected = once.state()

    world = _collector_world(worlds, "collect_retried")
    before = world.state()
    # Each ticker's transaction fails after its daily batch, at its four-hour batch: every ticker fails.
    world.fail_half_way("ohlcv_4h", "BEFORE INSERT")

    result, message = deliver_failing(COLLECTOR, SCHEDULED)

    assert message.startswith(
        '{"ok": false, "error": "critical step check_progress failed: RuntimeError: all 3 tickers failed'
    ), message[:300]
    assert INJECTED in message
    collect = next(step for step in result["steps"] if step["name"] == "collect")["result"]
    assert [item["ticker"] for item in collect["failed"]] == list(TICKERS)
    assert_unchanged(world.state(), before)  # each ticker's daily batch was rolled back with it
    world.heal("ohlcv_4h")

    deliver(COLLECTOR, SCHEDULED)  # Lambda's retry: the same event

    assert_same_state(world.state(), expected)


def test_data_collector_killed_half_way_and_delivered_again_leaves_the_candles_of_one_delivery(
    worlds, upbit_candles, monkeypatch
):
    """The invocation dies (a crash or a timeout: Lambda retries those too) inside KRW-ETH's
    transaction, after KRW-BTC was committed; the retry runs in a new container."""
    import psycopg2.extras

    once = _collector_world(worlds, "collect_whole")
    deliver(COLLECTOR, SCHEDULED)
    expected = once.state()

    world = _collector_world(worlds, "collect_killed")

    class Killed(BaseException):
        """What no step catches: the process is gone."""

    real = psycopg2.extras.execute_values

    def execute_values(cursor, sql, rows, *args, **kwargs):
        if rows and rows[0][0] == "KRW-ETH" and sql.startswith("INSERT INTO ohlcv_4h"):
            raise Killed  # KRW-ETH's daily batch is in its open transaction
        return real(cursor, sql, rows, *args, **kwargs)

    monkeypatch.setattr(psycopg2.extras, "execute_values", execute_values)
    with pytest.raises(Killed):
        _module(COLLECTOR, "handler").lambda_handler(SCHEDULED, Context())
    monkeypatch.setattr(psycopg2.extras, "execute_values", real)
    world.execute(  # the dead process's session ends, and PostgreSQL rolls its transaction back
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    _reset(COLLECTOR)
    assert {row[0] for row in world.execute("SELECT DISTINCT ticker FROM ohlcv")} <= {"KRW-BTC"}

    deliver(COLLECTOR, SCHEDULED)  # Lambda's retry, in a new container

    assert_same_state(world.state(), expected)


# --- integrated orchestrator (moto) ----------------------------------------------------------------

MOTO_AMI = "ami-12c6146b"
DB_ID = "makenaide-db"
MAX_RUN = 180


class Account:
    """The account the orchestrator manages (one moto world), on a simulated wall clock."""

    def __init__(self, monkeypatch) -> None:
        import boto3

        steps = _module(ORCHESTRATOR, "steps")
        self.ec2, self.rds, self.ssm = boto3.client("ec2"), boto3.client("rds"), boto3.client("ssm")
        secret = boto3.client("secretsmanager").create_secret(
            Name="makenaide/db", SecretString=json.dumps({"username": "makenaide", "password": "x"})
        )
        self.instance_id = self.ec2.run_instances(
            ImageId=MOTO_AMI, MinCount=1, MaxCount=1, InstanceType="t3.medium"
        )["Instances"][0]["InstanceId"]
        self.ec2.stop_instances(InstanceIds=[self.instance_id])
        self.rds.create_db_instance(
            DBInstanceIdentifier=DB_ID,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="makenaide",
            MasterUserPassword=os.urandom(12).hex(),
            AllocatedStorage=20,
        )
        self.rds.stop_db_instance(DBInstanceIdentifier=DB_ID)
        for key, value in {
            "INSTANCE_ID": self.instance_id,
            "DB_INSTANCE_IDENTIFIER": DB_ID,
            "DB_SECRET_ARN": secret["ARN"],
            "APP_COMMAND": "/opt/makenaide/run.sh",
            "EC2_HOURLY_PRICE_USD": "0.0832",
            "RDS_HOURLY_PRICE_USD": "0.036",
            "MAX_RUN_MINUTES": str(MAX_RUN),
        }.items():
            monkeypatch.setenv(key, value)
        self.start = self.now = datetime.now(UTC).replace(microsecond=0)
        monkeypatch.setattr(steps, "utcnow", lambda: self.now)

    def at(self, minutes: int) -> None:
        self.now = self.start + timedelta(minutes=minutes)

    def cycle(self) -> list[tuple[int, dict]]:
        """A 4-hourly run's events: the schedule, RDS started, the instance running, then stopped."""
        return [
            (0, SCHEDULED),
            (
                6,
                {
                    "source": "aws.rds",
                    "detail-type": "RDS DB Instance Event",
                    "detail": {"SourceIdentifier": DB_ID, "EventID": "RDS-EVENT-0088"},
                },
            ),
            (7, self._ec2_event("running")),
            (45, self._ec2_event("stopped")),
        ]

    def _ec2_event(self, state: str) -> dict:
        return {
            "source": "aws.ec2",
            "detail-type": "EC2 Instance State-change Notification",
            "detail": {"instance-id": self.instance_id, "state": state},
        }

    def app_finishes(self) -> None:
        """The app's own shutdown, before the instance's "stopped" event."""
        self.ec2.stop_instances(InstanceIds=[self.instance_id])

    def state(self) -> dict:
        (reservation,) = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"]
        instance = reservation["Instances"][0]
        tags = {
            tag["Key"]: tag["Value"] if tag["Key"] == "makenaide:launch-status" else bool(tag["Value"])
            for tag in instance.get("Tags", [])
            if tag["Key"].startswith("makenaide:")
        }
        (database,) = self.rds.describe_db_instances(DBInstanceIdentifier=DB_ID)["DBInstances"]
        commands = self.ssm.list_commands(InstanceId=self.instance_id)["Commands"]
        return {
            "instance": instance["State"]["Name"],
            "rds": database["DBInstanceStatus"],
            "commands": len(commands),
            "tags": tags,
        }


def _run_cycle(account: Account, deliveries: int, fail_at: int | None = None) -> list[str]:
    """Deliver the cycle's events ``deliveries`` times each; ``fail_at``: the event whose first
    delivery meets a throttled StartInstances (raised, then retried). Returns the error messages."""
    messages = []
    for index, (minute, event) in enumerate(account.cycle()):
        account.at(minute)
        if minute == 45:
            account.app_finishes()
        if index == fail_at:
            before = account.state()
            with _throttled("ec2", "StartInstances"):
                _, message = deliver_failing(ORCHESTRATOR, event)
            messages.append(message)
            assert account.state() == before, "the failed pass changed the account"
        for _ in range(deliveries):
            deliver(ORCHESTRATOR, event, remaining_ms=60_000)
    # One more pass observes the end of the cycle: a duplicate "stopped" event only observes it sooner.
    account.at(50)
    deliver(ORCHESTRATOR, {}, remaining_ms=60_000)
    return messages


@contextlib.contextmanager
def _throttled(service: str, operation: str):
    """The orchestrator's client answers ``operation`` with ThrottlingException (a final answer)."""
    client = _module(ORCHESTRATOR, "handler").get_orchestrator().clients.get(service)

    class Http:
        status_code = 400
        headers: dict = {}
        content = b""
        text = ""

    def answer(**_):
        error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        return Http(), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400, "RequestId": "fault"}}

    event_name = f"before-call.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    client.meta.events.register(event_name, answer)
    try:
        yield
    finally:
        client.meta.events.unregister(event_name, answer)


def _orchestrator_world(monkeypatch, deliveries: int, fail_at: int | None = None) -> tuple[dict, list[str]]:
    from moto import mock_aws

    with mock_aws():
        _reset(ORCHESTRATOR)
        account = Account(monkeypatch)
        messages = _run_cycle(account, deliveries, fail_at)
        state = account.state()
    _reset(ORCHESTRATOR)
    return state, messages


def test_orchestrator_cycle_with_every_event_delivered_twice_ends_as_with_each_once(environment):
    expected, _ = _orchestrator_world(environment, deliveries=1)
    assert expected["commands"] == 1 and expected["instance"] == "stopped" and expected["rds"] == "stopped"

    found, _ = _orchestrator_world(environment, deliveries=2)

    assert found == expected  # the app was launched once, both resources stopped, the same records


def test_orchestrator_pass_failing_half_way_raises_changes_nothing_and_a_retry_completes(environment):
    expected, _ = _orchestrator_world(environment, deliveries=1)

    found, messages = _orchestrator_world(environment, deliveries=1, fail_at=1)  # RDS up, the start throttled

    (message,) = messages
    assert message.startswith('{"ok": false, "error": "critical step start_instance failed: ClientError: ')
    assert "ThrottlingException" in message and "StartInstances" in message
    assert found == expected
