"""Malformed events against every Makenaide example's real handler.

For each example and each malformed event: the handler raises ``PipelineFailed`` (so Lambda counts
the error and sends the event to the failure destination) whose message is the result's JSON,
``{"ok": false, "error": "invalid event: ..."}``, having flushed its metrics first (one EMF line on
stdout with ``InvalidEvent`` = 1), and touches nothing: creating an AWS client, opening a PostgreSQL
connection or sending an HTTP request fails the test (they are replaced by tripwires), so "nothing
written" holds by construction.

The four packages have distinct names (makenaide_scanner, ...), so all four are imported in this
process with each example's src/ on sys.path (a fixture); container state is reset before every case.
Held besides: the error result and every log line stay short (a huge value is shown as a short repr),
and nothing of a huge event reaches stdout.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = [
    "makenaide-db-initializer",
    "makenaide-scanner",
    "makenaide-data-collector",
    "makenaide-integrated-orchestrator",
]
HUGE_STRING = "X" * (5 * 1024 * 1024)
HUGE_LIST = ["KRW-BTC"] * 100_000
MAX_ERROR_CHARS = 400
"""An error (and its log line) names the field and shows a short repr: "invalid event: " and a few values."""
ORCHESTRATOR_ENV = {
    "INSTANCE_ID": "i-0123456789abcdef0",
    "DB_INSTANCE_IDENTIFIER": "makenaide-db",
    "DB_SECRET_ARN": "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:makenaide/db-AbCdEf",
    "APP_COMMAND": "/opt/makenaide/run.sh",
    "EC2_HOURLY_PRICE_USD": "0.0416",
    "RDS_HOURLY_PRICE_USD": "0.018",
    "MAX_RUN_MINUTES": "30",
}

NON_DICT = [
    ("list", []),
    ("string", "run"),
    ("number", 42),
    ("null", None),
    ("huge-string", HUGE_STRING),
    ("huge-list", HUGE_LIST),
    ("bytes-like-list", [1, 2, 3]),
]
PER_EXAMPLE = {
    "makenaide-db-initializer": [
        ("unknown-key", {"drop_everything": True}),
        ("unknown-action", {"action": "drop"}),
        ("validate-only-string", {"validate_only": "yes"}),
        ("validate-only-number", {"validate_only": 1}),
        ("validate-only-null", {"validate_only": None}),
        ("huge-key", {HUGE_STRING: 1}),
        ("huge-value", {"validate_only": HUGE_STRING}),
        ("many-unknown-keys", {f"key{n}": n for n in range(100_000)}),
    ],
    "makenaide-scanner": [
        ("force-string", {"force": "true"}),
        ("force-null", {"force": None}),
        ("blacklist-string", {"blacklist": "KRW-BTC"}),
        ("blacklist-numbers", {"blacklist": [1, 2]}),
        ("blacklist-not-krw", {"blacklist": ["BTC-ETH"]}),
        ("blacklist-injection", {"blacklist": ["KRW-BTC'; DROP TABLE tickers; --"]}),
        ("blacklist-huge-list", {"blacklist": [f"KRW-A{i}" for i in range(100_000)]}),
        ("blacklist-huge-string", {"blacklist": [HUGE_STRING]}),
        ("blacklist-huge-market", {"blacklist": ["KRW-" + HUGE_STRING]}),
        ("blacklist-many-bad", {"blacklist": [f"x{n}" for n in range(400)]}),
        ("force-huge", {"force": HUGE_STRING}),
    ],
    "makenaide-data-collector": [
        ("tickers-string", {"tickers": "KRW-BTC"}),
        ("tickers-empty", {"tickers": []}),
        ("tickers-null", {"tickers": None}),
        ("tickers-numbers", {"tickers": [1, 2]}),
        ("tickers-nested", {"tickers": [["KRW-BTC"]]}),
        ("tickers-lower-case", {"tickers": ["krw-btc"]}),
        ("tickers-injection", {"tickers": ["KRW-BTC'); DELETE FROM ohlcv; --"]}),
        ("tickers-path", {"tickers": ["../../etc/passwd"]}),
        ("tickers-huge-list", {"tickers": HUGE_LIST}),
        ("tickers-huge-string", {"tickers": [HUGE_STRING]}),
        ("tickers-huge-market", {"tickers": ["KRW-" + HUGE_STRING]}),
        ("tickers-huge-list-of-numbers", {"tickers": list(range(100_000))}),
        ("tickers-many-bad", {"tickers": [f"x{n}" for n in range(900)]}),
    ],
    "makenaide-integrated-orchestrator": [
        ("unknown-source", {"source": "aws.s3", "detail-type": "Object Created", "detail": {}}),
        ("unknown-action", {"action": "start"}),
        (
            "ec2-without-detail",
            {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"},
        ),
        ("ec2-detail-list", {"source": "aws.ec2", "detail": ["running"]}),
        (
            "ec2-state-number",
            {"source": "aws.ec2", "detail": {"instance-id": "i-0123456789abcdef0", "state": 16}},
        ),
        ("ec2-instance-missing", {"source": "aws.ec2", "detail": {"state": "running"}}),
        ("rds-detail-string", {"source": "aws.rds", "detail": "available"}),
        ("huge-unknown", {"source": HUGE_STRING}),
        ("ec2-huge-detail-type", {"source": "aws.ec2", "detail-type": HUGE_STRING}),
        ("rds-huge-detail-type", {"source": "aws.rds", "detail-type": HUGE_STRING, "detail": 1}),
    ],
}
CASES = [(name, case_id, event) for name in NAMES for case_id, event in NON_DICT + PER_EXAMPLE[name]]


class Context:
    function_name = "reliability-events"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:ap-northeast-2:123456789012:function:reliability-events"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _package(name: str) -> str:
    return name.replace("-", "_")


@pytest.fixture
def examples_on_path(monkeypatch):
    for name in NAMES:
        monkeypatch.syspath_prepend(str(EXAMPLES / name / "src"))


def load(name: str):
    return importlib.import_module(f"{_package(name)}.handler")


class Tripwire(AssertionError):
    pass


def _trip(what: str):
    def fail(*args, **kwargs):
        raise Tripwire(f"{what} was reached on an invalid event")

    return fail


@pytest.fixture
def tripwires(monkeypatch, examples_on_path):
    import psycopg2
    import requests

    monkeypatch.setattr(psycopg2, "connect", _trip("psycopg2.connect"))
    monkeypatch.setattr(requests.Session, "request", _trip("an HTTP request"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    for key, value in ORCHESTRATOR_ENV.items():
        monkeypatch.setenv(key, value)


def emf_blobs(stdout: str) -> list[dict]:
    blobs = []
    for line in stdout.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" in blob:
            blobs.append(blob)
    return blobs


def test_every_example_is_covered():
    present = sorted(path.parent.name for path in EXAMPLES.glob("*/src"))
    assert sorted(NAMES) == present
    assert len(CASES) >= 40


@pytest.mark.parametrize(("name", "case_id", "event"), CASES, ids=[f"{n}-{c}" for n, c, _ in CASES])
def test_malformed_event_gets_a_clear_error_flushes_metrics_and_writes_nothing(
    name, case_id, event, tripwires, monkeypatch, capsys, caplog
):
    handler = load(name)
    clients = importlib.import_module(f"{_package(name)}.clients")
    metrics = importlib.import_module(f"{_package(name)}.metrics")
    monkeypatch.setattr(clients.AWSClientFactory, "get", _trip("AWSClientFactory.get"))
    handler.reset()
    metrics.reset_cold_start()
    capsys.readouterr()

    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler(event, Context())

    out = capsys.readouterr().out
    result = raised.value.result
    shown = repr(result)[:300]
    assert json.loads(str(raised.value)) == result, "the error message is the result's JSON"
    assert result["ok"] is False, shown
    assert result["error"].startswith("invalid event: "), shown
    error_chars = len(result["error"])
    assert error_chars <= MAX_ERROR_CHARS, f"the error echoes the input: {error_chars} chars: {shown}"
    log_chars = max((len(record.getMessage()) for record in caplog.records), default=0)
    assert log_chars <= MAX_ERROR_CHARS, f"a log line of {log_chars} chars"
    json.dumps(result)  # JSON-serialisable
    blobs = emf_blobs(out)
    assert blobs, f"no EMF line on stdout: {out[:300]!r}"
    assert any(blob.get("InvalidEvent") == 1 for blob in blobs), repr(blobs)[:300]
    names = {
        metric["Name"]
        for blob in blobs
        for directive in blob["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    assert "InvalidEvent" in names
    assert len(out) < 100_000, f"the huge event reached stdout: {len(out)} chars"
