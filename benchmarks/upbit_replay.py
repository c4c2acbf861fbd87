"""A loopback stand-in for Upbit's quotation API that answers from the recordings in the repository.

The Makenaide examples reach Upbit only through ``<module>.upbit.API_URL``. The measuring child points
that constant at this server (``LEANLAMBDA_BENCH_UPBIT_URL``), so a cold path runs the real requests code,
sockets included, and does not include the exchange's latency (this machine has no network anyway). It
answers as Upbit does:

- ``/v1/market/all``: the recorded market list, with its recorded status and headers;
- ``/v1/candles/days`` and ``/v1/candles/minutes/240``: the recorded KRW-BTC series, served under whatever
  ``market`` is asked for (as the data collector's own tests do). A page holds the ``count`` newest
  candles (at most 200) strictly before ``to`` (UTC), newest first, so the examples' UpbitClient, which
  pages as pyupbit does, walks the series.

Plain HTTP, HTTP/1.1 keep-alive: the function's requests.Session reuses one connection, as it would with
Upbit. TLS is not modelled (the moto endpoint is plain HTTP too).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
COLLECTOR_DIR = EXAMPLES_DIR / "makenaide-data-collector"
MARKETS_RECORDING = EXAMPLES_DIR / "makenaide-scanner" / "tests" / "recorded" / "market_all.json"
CANDLES_RECORDING = COLLECTOR_DIR / "tests" / "recorded" / "candles_days_krw_btc.json"
"""A recorded candle answer: its status and headers are reused for every candle page."""
CANDLE_SERIES = {
    "/v1/candles/days": COLLECTOR_DIR / "events" / "upbit" / "candles_days_KRW-BTC.json",
    "/v1/candles/minutes/240": COLLECTOR_DIR / "events" / "upbit" / "candles_minutes_240_KRW-BTC.json",
}
"""The long series (460 days, 210 four-hour candles) the collector's tests page through for a full load."""
API_PREFIX = "/v1"
MAX_CANDLES_PER_REQUEST = 200
"""Upbit answers at most 200 candles a request."""
LATEST = "9999-12-31T00:00:00"
"""No ``to``: the newest candles."""
HOST = "127.0.0.1"

Answer = tuple[int, dict[str, str], Any]


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _error(status: int, name: str, message: str) -> Answer:
    """An error in Upbit's shape."""
    return (
        status,
        {"Content-Type": "application/json; charset=utf-8"},
        {"error": {"name": name, "message": message}},
    )


class Recordings:
    """The answers: ``answer(path, query)`` -> (status, headers, JSON body)."""

    def __init__(self) -> None:
        markets = _load(MARKETS_RECORDING)
        candles = _load(CANDLES_RECORDING)
        self.markets: Answer = (markets["status"], markets["headers"], markets["body"])
        self.candle_status, self.candle_headers = candles["status"], candles["headers"]
        self.series = {
            path: sorted(_load(file), key=lambda c: c["candle_date_time_utc"], reverse=True)
            for path, file in CANDLE_SERIES.items()
        }

    def answer(self, path: str, query: dict[str, str]) -> Answer:
        if path == f"{API_PREFIX}/market/all":
            return self.markets
        if path not in self.series:
            return _error(404, "not_found", f"no recording for {path}")
        market = query.get("market", "")
        try:
            count = min(int(query.get("count", "1")), MAX_CANDLES_PER_REQUEST)
        except ValueError:
            return _error(400, "invalid_parameter", "count must be a number")
        if not market or count < 1:
            return _error(400, "invalid_parameter", "market and a positive count are required")
        to = (query.get("to") or LATEST).replace(" ", "T").removesuffix("Z")
        older = [candle for candle in self.series[path] if candle["candle_date_time_utc"] < to]
        return self.candle_status, self.candle_headers, [dict(c, market=market) for c in older[:count]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Upbit: the function's Session reuses its connection
    recordings: Recordings  # set on the subclass UpbitReplay makes

    def do_GET(self) -> None:  # http.server's name
        url = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        status, headers, body = self.recordings.answer(url.path, query)
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log per request."""


class _Server(ThreadingHTTPServer):
    block_on_close = False  # a client's idle keep-alive connection must not hold up the end of the run


class UpbitReplay:
    """The replay server on a free loopback port, for one run: ``with UpbitReplay() as upbit: upbit.url``."""

    def __init__(self) -> None:
        handler = type("RecordedUpbit", (_Handler,), {"recordings": Recordings()})
        self._server = _Server((HOST, 0), handler)
        self.url = f"http://{HOST}:{self._server.server_port}{API_PREFIX}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="upbit-replay", daemon=True)

    def __enter__(self) -> UpbitReplay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
