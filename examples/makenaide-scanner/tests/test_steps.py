"""The scanner against a real PostgreSQL, with Upbit answered by `responses`.

The market list is in Upbit's JSON format (events/upbit/market_all.json); the real
UpbitClient/requests code parses it. The tickers and scanner_state tables are created
here with the db-initializer's DDL (it owns the schema in production: the scanner runs
no DDL, so it can run as a role that may only read and write rows).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
import responses

from makenaide_scanner import handler, upbit


def failed_run(event, context) -> dict:
    """A run that fails the invocation: the handler raises PipelineFailed, as Lambda would see it."""
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler(event, context)
    assert str(raised.value).startswith('{"ok": false, "error": ')
    return raised.value.result


ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
MARKETS_URL = upbit.API_URL + "/market/all"
RECORDED_MARKETS = json.loads((EVENTS / "upbit" / "market_all.json").read_text(encoding="utf-8"))
KRW = sorted(m["market"] for m in RECORDED_MARKETS if m["market"].startswith("KRW-"))
TICKERS_DDL = (
    "CREATE TABLE tickers (ticker varchar(20) PRIMARY KEY, created_at timestamp DEFAULT now(),"
    " updated_at timestamp DEFAULT now(), is_active boolean DEFAULT true)"
)
STATE_DDL = "CREATE TABLE scanner_state (name text PRIMARY KEY, last_scan_at timestamptz NOT NULL)"


@pytest.fixture
def database(db_secret, database_url):
    """The session's database with an empty tickers table and no scanner state."""
    connection = psycopg2.connect(database_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS tickers, scanner_state")
        cursor.execute(TICKERS_DDL)
        cursor.execute(STATE_DDL)
    yield connection
    connection.close()


@pytest.fixture
def upbit_api(monkeypatch):
    """Upbit's HTTP API, answered by `responses`; backoff shortened so retries take milliseconds."""
    monkeypatch.setattr(upbit, "BACKOFF_BASE_S", 0.01)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def answer_markets(mock, markets=None, status=200, body=None, headers=None):
    if body is None:
        body = json.dumps(RECORDED_MARKETS if markets is None else markets)
    mock.add(
        responses.GET, MARKETS_URL, body=body, status=status, headers=headers, content_type="application/json"
    )


def rows(connection) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT ticker, is_active, created_at, updated_at FROM tickers ORDER BY ticker")
        return cursor.fetchall()


def active(connection) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT ticker FROM tickers WHERE is_active ORDER BY ticker")
        return [row[0] for row in cursor.fetchall()]


def step(result: dict, name: str) -> dict:
    return next(s for s in result["steps"] if s["name"] == name)


def counts(result: dict) -> dict:
    found = step(result, "sync_tickers")["result"]
    return {key: value for key, value in found.items() if key != "changes"}


def test_the_first_run_inserts_every_krw_market(database, upbit_api, lambda_context, emf_lines):
    answer_markets(upbit_api)

    result = handler.lambda_handler({}, lambda_context)

    assert result["ok"] is True, result
    assert step(result, "fetch_markets")["result"] == {"count": len(KRW), "markets": KRW}
    assert counts(result) == {
        "inserted": 11,
        "reactivated": 0,
        "deactivated": 0,
        "blacklisted": 2,
        "total_active": 9,
    }
    assert [row[0] for row in rows(database)] == KRW  # BTC- and USDT- markets are left out
    assert active(database) == [code for code in KRW if code not in ("KRW-BTC", "KRW-ETH")]
    assert upbit_api.calls[0].request.params == {"isDetails": "false"}
    metrics = {k: v for doc in emf_lines() for k, v in doc.items() if not k.startswith("_")}
    assert metrics["TickersInserted"] == 11
    assert metrics["ActiveTickers"] == 9


def test_a_second_run_changes_nothing(database, upbit_api, lambda_context):
    answer_markets(upbit_api)
    handler.lambda_handler({}, lambda_context)
    before = rows(database)

    result = handler.lambda_handler({"force": True}, lambda_context)

    assert result["ok"] is True, result
    assert counts(result) == {
        "inserted": 0,
        "reactivated": 0,
        "deactivated": 0,
        "blacklisted": 0,
        "total_active": 9,
    }
    assert rows(database) == before  # not even updated_at moved


def test_delisted_markets_are_deactivated_and_relisted_ones_reactivated(database, upbit_api, lambda_context):
    answer_markets(upbit_api)
    handler.lambda_handler({}, lambda_context)
    created = {row[0]: row[2] for row in rows(database)}

    without_doge = [m for m in RECORDED_MARKETS if m["market"] != "KRW-DOGE"]
    upbit_api.replace(responses.GET, MARKETS_URL, json=without_doge)
    delisted = handler.lambda_handler({"force": True}, lambda_context)

    assert counts(delisted)["deactivated"] == 1
    assert step(delisted, "sync_tickers")["result"]["changes"]["deactivated"] == ["KRW-DOGE"]
    assert "KRW-DOGE" not in active(database)
    assert "KRW-DOGE" in [row[0] for row in rows(database)]  # kept, inactive

    upbit_api.replace(responses.GET, MARKETS_URL, json=RECORDED_MARKETS)
    relisted = handler.lambda_handler({"force": True}, lambda_context)

    assert counts(relisted) == {
        "inserted": 0,
        "reactivated": 1,
        "deactivated": 0,
        "blacklisted": 0,
        "total_active": 9,
    }
    assert step(relisted, "sync_tickers")["result"]["changes"]["reactivated"] == ["KRW-DOGE"]
    doge = next(row for row in rows(database) if row[0] == "KRW-DOGE")
    assert doge[1] is True
    assert doge[2] == created["KRW-DOGE"]  # the same row, not a new one
    assert doge[3] > doge[2]


def test_the_blacklist_deactivates_without_deleting(database, upbit_api, lambda_context):
    answer_markets(upbit_api)
    handler.lambda_handler({"blacklist": []}, lambda_context)
    assert len(active(database)) == 11

    result = handler.lambda_handler({"force": True, "blacklist": ["krw-shib", "KRW-BTC "]}, lambda_context)

    assert counts(result) == {
        "inserted": 0,
        "reactivated": 0,
        "deactivated": 0,
        "blacklisted": 2,
        "total_active": 9,
    }
    assert step(result, "sync_tickers")["result"]["changes"]["blacklisted"] == ["KRW-BTC", "KRW-SHIB"]
    assert len(rows(database)) == 11  # kept, inactive

    default = handler.lambda_handler({"force": True}, lambda_context)  # KRW-BTC, KRW-ETH

    changes = step(default, "sync_tickers")["result"]["changes"]
    assert changes["blacklisted"] == ["KRW-ETH"]
    assert changes["reactivated"] == ["KRW-SHIB"]
    assert "KRW-BTC" not in active(database)


def test_the_blacklist_comes_from_the_environment_when_the_event_has_none(
    database, upbit_api, lambda_context, monkeypatch
):
    monkeypatch.setenv("BLACKLIST", "KRW-XRP, KRW-SOL")
    answer_markets(upbit_api)

    result = handler.lambda_handler({}, lambda_context)

    assert step(result, "sync_tickers")["result"]["changes"]["blacklisted"] == ["KRW-SOL", "KRW-XRP"]
    assert "KRW-BTC" in active(database)


def test_a_scan_within_24_hours_is_skipped_unless_forced(database, upbit_api, lambda_context):
    answer_markets(upbit_api)
    handler.lambda_handler({}, lambda_context)
    calls = len(upbit_api.calls)

    skipped = handler.lambda_handler({}, lambda_context)

    assert skipped["ok"] is True
    assert step(skipped, "check_freshness")["result"]["due"] is False
    assert step(skipped, "fetch_markets")["status"] == "skipped"
    assert "within 24 h" in step(skipped, "fetch_markets")["error"]
    assert step(skipped, "sync_tickers")["status"] == "skipped"
    assert len(upbit_api.calls) == calls  # Upbit was not asked

    forced = handler.lambda_handler({"force": True}, lambda_context)
    assert step(forced, "check_freshness")["result"]["forced"] is True
    assert step(forced, "sync_tickers")["status"] == "ok"
    assert len(upbit_api.calls) == calls + 1


def test_a_scan_older_than_24_hours_runs_again(database, upbit_api, lambda_context):
    answer_markets(upbit_api)
    handler.lambda_handler({}, lambda_context)
    with database.cursor() as cursor:
        cursor.execute("UPDATE scanner_state SET last_scan_at = now() - interval '25 hours'")

    result = handler.lambda_handler({}, lambda_context)

    assert step(result, "check_freshness")["result"]["due"] is True
    assert step(result, "sync_tickers")["status"] == "ok"


def test_429_is_retried_then_the_answer_is_used(database, upbit_api, lambda_context):
    answer_markets(upbit_api, status=429, body="Too many API requests.", headers={"Retry-After": "0.05"})
    answer_markets(upbit_api)

    result = handler.lambda_handler({}, lambda_context)

    assert result["ok"] is True, result
    assert [call.response.status_code for call in upbit_api.calls] == [429, 200]
    assert counts(result)["inserted"] == 11


def test_5xx_to_the_last_attempt_fails_clearly_and_writes_nothing(database, upbit_api, lambda_context):
    for _ in range(upbit.MAX_ATTEMPTS):
        answer_markets(upbit_api, status=503, body="<html>Service Unavailable</html>")

    result = failed_run({}, lambda_context)

    assert result["ok"] is False
    fetch = step(result, "fetch_markets")
    assert fetch["status"] == "failed"
    assert fetch["error"] == f"UpbitError: GET /market/all: HTTP 503 after {upbit.MAX_ATTEMPTS} attempts"
    assert step(result, "sync_tickers")["status"] == "skipped"
    assert len(upbit_api.calls) == upbit.MAX_ATTEMPTS
    assert rows(database) == []
    with database.cursor() as cursor:  # no scan recorded: the next scheduled run tries again
        cursor.execute("SELECT count(*) FROM scanner_state")
        assert cursor.fetchone() == (0,)


def test_malformed_json_is_retried(database, upbit_api, lambda_context):
    answer_markets(upbit_api, body='[{"market": "KRW-BTC", "korean')
    answer_markets(upbit_api)

    result = handler.lambda_handler({}, lambda_context)

    assert result["ok"] is True, result
    assert len(upbit_api.calls) == 2


def test_malformed_json_to_the_last_attempt_fails(database, upbit_api, lambda_context):
    for _ in range(upbit.MAX_ATTEMPTS):
        answer_markets(upbit_api, body="<html>maintenance</html>")

    result = failed_run({}, lambda_context)

    assert "malformed JSON" in step(result, "fetch_markets")["error"]
    assert rows(database) == []


def test_an_answer_without_krw_markets_deactivates_nothing(database, upbit_api, lambda_context):
    answer_markets(upbit_api)
    handler.lambda_handler({}, lambda_context)
    before = rows(database)
    upbit_api.replace(responses.GET, MARKETS_URL, json=[{"market": "BTC-ETH"}, {"error": "x"}])

    result = failed_run({"force": True}, lambda_context)

    error = step(result, "fetch_markets")["error"]
    assert error == "UpbitError: market list: no KRW markets in Upbit's answer"
    assert rows(database) == before


def test_the_sample_events_are_accepted(database, upbit_api, lambda_context):
    answer_markets(upbit_api)
    for path in sorted(EVENTS.glob("*.json")):
        result = handler.lambda_handler(json.loads(path.read_text()), lambda_context)
        assert result["ok"] is True, (path.name, result)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"force": "yes"}, "'force' must be true or false"),
        ({"blacklist": "KRW-BTC"}, "'blacklist' must be a list"),
        ({"blacklist": ["BTC-ETH"]}, "'blacklist' holds entries that are not KRW market codes: 'BTC-ETH'"),
        ({"blacklist": ["KRW-X'; DROP TABLE tickers; --"]}, "not KRW market codes"),
        ({"blacklist": [1, 2]}, "'blacklist' must be a list of market codes"),
        ({"blacklist": ["KRW-" + "Z" * 1_000_000]}, "not KRW market codes: 'KRW-ZZZZZZZZZZ"),
        ({"blacklist": ["a", "b", "c", "d"]}, "codes: 'A', 'B', 'C' and 1 more"),
        ({"blacklist": ["KRW-BTC"] * 100_000}, "'blacklist' holds 100000 entries, at most 500 are allowed"),
    ],
)
def test_bad_events_are_rejected(event, message, lambda_context):
    result = failed_run(event, lambda_context)
    assert result["ok"] is False
    assert message in result["error"]
    assert len(result["error"]) < 250  # a huge value is shown as a short repr


SUBPROCESS_SCRIPT = """
import json, os, sys
import boto3, responses
from moto import mock_aws

with mock_aws(), responses.RequestsMock() as mock:
    mock.add(responses.GET, sys.argv[1], body=open(sys.argv[2], encoding="utf-8").read())
    client = boto3.client("secretsmanager", region_name="ap-northeast-2")
    os.environ["DB_SECRET_ARN"] = client.create_secret(Name="db", SecretString=os.environ["SECRET"])["ARN"]
    heavy_before = [name for name in ("pandas", "numpy", "pyupbit") if name in sys.modules]
    from makenaide_scanner import handler

    class Context:
        function_name = "makenaide-scanner"

        @staticmethod
        def get_remaining_time_in_millis():
            return 120_000

    result = handler.lambda_handler({"force": True}, Context())
heavy = [name for name in ("pandas", "numpy", "pyupbit") if name in sys.modules]
print(json.dumps({"result": result, "heavy_before": heavy_before, "heavy": heavy}))
"""


def test_an_invocation_imports_neither_pandas_nor_pyupbit(database, db_secret):
    env = dict(os.environ, SECRET=json.dumps(db_secret), PYTHONPATH=str(ROOT / "src"))
    completed = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_SCRIPT, MARKETS_URL, str(EVENTS / "upbit" / "market_all.json")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["result"]["ok"] is True, report["result"]
    assert report["heavy_before"] == []
    assert report["heavy"] == []
