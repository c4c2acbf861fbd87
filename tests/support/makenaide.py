"""Shared by the reliability suites and tests/support/load_driver.py: where the Makenaide examples
live, their database secret, and Upbit's HTTP API answered from the examples' recorded responses.

Nothing here imports an example: callers put an example's src/ on sys.path themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
REGION = "ap-northeast-2"
COLLECTOR_RECORDED = EXAMPLES / "makenaide-data-collector" / "events" / "upbit"
SCANNER_RECORDED = EXAMPLES / "makenaide-scanner" / "events" / "upbit"
COLLECTOR_APPLICATION = "makenaide-data-collector"
"""The collector's sessions in pg_stat_activity (its db.APPLICATION_NAME)."""

FAULTS = ("429", "500", "503-html", "connect-timeout", "read-timeout", "malformed-json")
"""What Upbit (or the network to it) can answer instead of candles or markets."""


def src(example: str) -> Path:
    return EXAMPLES / example / "src"


def secret_for(url: str) -> dict:
    """The secret's JSON for a PostgreSQL URL, in the shape the examples' db.py reads."""
    parts = urlsplit(url)
    return {
        "username": parts.username,
        "password": parts.password or "",
        "host": parts.hostname,
        "port": parts.port or 5432,
        "dbname": parts.path.lstrip("/") or "postgres",
    }


def create_db_secret(url: str, name: str = "makenaide/db") -> str:
    """Put the database's credentials in a Secrets Manager secret (moto must be active); its ARN."""
    import boto3

    client = boto3.client("secretsmanager", region_name=REGION)
    return client.create_secret(Name=name, SecretString=json.dumps(secret_for(url)))["ARN"]


def fault_answer(kind: str):
    """A `responses` callback answer for fault ``kind``; the timeouts are raised, as requests would."""
    import requests

    if kind == "429":
        return 429, {"Retry-After": "1"}, "Too many API requests."
    if kind == "500":
        body = '{"error":{"name":"server_error","message":"injected"}}'
        return 500, {"Content-Type": "application/json"}, body
    if kind == "503-html":
        body = "<html><body>503 Service Temporarily Unavailable</body></html>"
        return 503, {"Content-Type": "text/html"}, body
    if kind == "connect-timeout":
        raise requests.exceptions.ConnectTimeout("injected: connect timeout")
    if kind == "read-timeout":
        raise requests.exceptions.ReadTimeout("injected: read timeout")
    if kind == "malformed-json":
        return 200, {"Content-Type": "application/json"}, '[{"market": "KRW-BTC", "candle_date_time_utc": "20'
    raise ValueError(kind)


class FaultPlan:
    """Which requests fail: ``fail(key, kind, times)`` (None: every time); keys are markets or paths."""

    def __init__(self) -> None:
        self._left: dict[str, tuple[str, int | None]] = {}

    def fail(self, key: str, kind: str, times: int | None = None) -> None:
        self._left[key] = (kind, times)

    def clear(self) -> None:
        self._left.clear()

    def take(self, key: str) -> str | None:
        planned = self._left.get(key)
        if planned is None:
            return None
        kind, times = planned
        if times is not None:
            if times <= 0:
                return None
            self._left[key] = (kind, times - 1)
        return kind


class CandleServer:
    """Upbit's candle endpoints over the recorded KRW-BTC series, served under any market's code.

    Answers like Upbit (``count``, an exclusive ``to`` in UTC, newest first), so pyupbit pages
    through them for real: a full load of 450 days is 3 requests. ``plan`` injects faults per
    market; ``before_answer(query)`` runs before each answer (to kill a database session, say).
    Every request is recorded with its outcome and the timeout requests was given.
    """

    def __init__(self, mock, api_url: str) -> None:
        """``api_url``: the example's ``upbit.API_URL`` (answered by `responses`: nothing leaves)."""
        import responses

        self.days = json.loads((COLLECTOR_RECORDED / "candles_days_KRW-BTC.json").read_text())
        self.four_hours = json.loads((COLLECTOR_RECORDED / "candles_minutes_240_KRW-BTC.json").read_text())
        self.plan = FaultPlan()
        self.requests: list[dict] = []
        self.before_answer = None
        for path, candles in (("/candles/days", self.days), ("/candles/minutes/240", self.four_hours)):
            mock.add_callback(
                responses.GET, api_url + path, callback=lambda r, candles=candles: self._answer(r, candles)
            )

    def _answer(self, request, candles):
        query = {key: values[0] for key, values in parse_qs(urlsplit(request.url).query).items()}
        query["path"] = urlsplit(request.url).path
        query["timeout"] = getattr(request, "req_kwargs", {}).get("timeout")
        self.requests.append(query)
        if self.before_answer is not None:
            self.before_answer(query)
        market = query["market"]
        kind = self.plan.take(market)
        if kind is not None:
            query["outcome"] = kind
            return fault_answer(kind)
        query["outcome"] = "ok"
        to = query.get("to", "9999-12-31 00:00:00").replace(" ", "T")
        older = [dict(c, market=market) for c in candles if c["candle_date_time_utc"] < to]
        headers = {"Remaining-Req": "group=candles; min=599; sec=9", "Content-Type": "application/json"}
        return 200, headers, json.dumps(older[: int(query["count"])])

    def calls(self, market: str, path_end: str = "", outcome: str | None = None) -> int:
        return sum(
            1
            for q in self.requests
            if q["market"] == market and q["path"].endswith(path_end) and outcome in (None, q["outcome"])
        )


class MarketServer:
    """Upbit's /market/all from the scanner's recorded answer, with the same fault plan (key "markets")."""

    def __init__(self, mock, api_url: str) -> None:
        import responses

        self.markets = json.loads((SCANNER_RECORDED / "market_all.json").read_text(encoding="utf-8"))
        self.plan = FaultPlan()
        self.requests: list[dict] = []
        mock.add_callback(responses.GET, api_url + "/market/all", callback=self._answer)

    @property
    def krw(self) -> list[str]:
        return sorted(m["market"] for m in self.markets if m["market"].startswith("KRW-"))

    def _answer(self, request):
        record = {"timeout": getattr(request, "req_kwargs", {}).get("timeout")}
        self.requests.append(record)
        kind = self.plan.take("markets")
        record["outcome"] = kind or "ok"
        if kind is not None:
            return fault_answer(kind)
        return 200, {"Content-Type": "application/json"}, json.dumps(self.markets)
