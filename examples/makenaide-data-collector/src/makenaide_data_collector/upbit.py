"""Lazy Upbit access: bounded retries with backoff, within Upbit's request rate.

requests and pandas come from the layer and are imported on first use; pandas only
for candles, so only the steps that need candles as a DataFrame pay for it. Every
request has a timeout: pyupbit's own requests have none, so candles are fetched here
and framed exactly as ``pyupbit.get_ohlcv`` frames them (a test compares the two). A
timeout bounds each socket read, not a request, so every request also has a total deadline
(web.fetch): the attempt's own cap, or less when the invocation has less time left.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from . import web
from .pipeline import DeadlineExceeded

logger = logging.getLogger(__name__)

API_URL = "https://api.upbit.com/v1"
MAX_REQUESTS_PER_SECOND = 10
"""Upbit's quotation API allows 10 requests a second per IP address."""
RATE_WINDOW_S = 1.0
MAX_ATTEMPTS = 4
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 3, 10
REQUEST_TOTAL_S = CONNECT_TIMEOUT_S + READ_TIMEOUT_S
"""The longest one attempt may take, body included, however slowly the server sends it."""
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
CANDLES_PER_REQUEST = 200
CANDLE_PATHS = {"day": "/candles/days", "week": "/candles/weeks", "month": "/candles/months"}
"""Plus ``minuteN`` -> /candles/minutes/N, as pyupbit names intervals."""
UPBIT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .pipeline import Deadline


class UpbitError(RuntimeError):
    """Upbit did not answer usefully within the allowed attempts."""


class UpbitClient:
    """Calls Upbit's public API; every wait goes through ``sleep`` (a Deadline's, in a step), and
    every request ends within the time ``deadline`` has left (a Deadline's sleep brings its own)."""

    def __init__(
        self, sleep: Callable[[float], None] | None = None, deadline: Deadline | None = None
    ) -> None:
        owner = getattr(sleep, "__self__", None)
        self._deadline = deadline or (owner if hasattr(owner, "remaining_ms") else None)
        self._sleep = sleep or (self._deadline.sleep if self._deadline is not None else time.sleep)
        self._session: Any = None
        self._sent_at: deque[float] = deque(maxlen=MAX_REQUESTS_PER_SECOND)

    def markets(self) -> list[dict[str, Any]]:
        """Every market Upbit lists, e.g. {"market": "KRW-BTC", "korean_name": ..., ...}."""
        markets = self.get_json("/market/all", {"isDetails": "false"})
        if not isinstance(markets, list):
            raise UpbitError("market list: expected a JSON array")
        return markets

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET a quotation endpoint, retrying 429, 5xx, timeouts and malformed JSON."""
        import requests

        if self._session is None:
            self._session = requests.Session()
        last_problem = ""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            self._throttle()
            total_s = web.budget_s(self._deadline, REQUEST_TOTAL_S)
            if total_s <= 0:
                raise DeadlineExceeded(f"GET {path}: no time left before the deadline")
            try:
                response = web.fetch(
                    self._session,
                    "GET",
                    API_URL + path,
                    total_s,
                    CONNECT_TIMEOUT_S,
                    READ_TIMEOUT_S,
                    params=params,
                )
            except (requests.ConnectionError, requests.Timeout, web.RequestTimedOut) as error:
                last_problem = type(error).__name__
            else:
                self._note_remaining(response.headers.get("Remaining-Req"))
                if response.status_code not in RETRY_STATUSES:
                    if response.status_code >= 400:
                        raise UpbitError(f"GET {path}: HTTP {response.status_code}")
                    try:
                        return response.json()
                    except ValueError:
                        last_problem = "malformed JSON"
                else:
                    last_problem = f"HTTP {response.status_code}"
                    retry_after = _retry_after_s(response.headers.get("Retry-After"))
                    if retry_after is not None and attempt < MAX_ATTEMPTS:
                        self._sleep(min(retry_after, BACKOFF_MAX_S))
                        continue
            if attempt < MAX_ATTEMPTS:
                self._backoff(attempt, path, last_problem)
        raise UpbitError(f"GET {path}: {last_problem} after {MAX_ATTEMPTS} attempts")

    def ohlcv(self, ticker: str, interval: str = "day", count: int = 200, to: Any = None) -> Any:
        """The last ``count`` candles before ``to`` (naive UTC; default now), oldest first.

        A DataFrame indexed by KST time with open, high, low, close, volume and value, as
        pyupbit.get_ohlcv returns it; pages of 200, each through get_json.
        """
        from datetime import UTC, datetime

        import pandas as pd

        end = to or datetime.now(UTC).replace(tzinfo=None)
        rows: list[dict[str, Any]] = []
        for remaining in range(max(count, 1), 0, -CANDLES_PER_REQUEST):
            params = {"market": ticker, "count": min(CANDLES_PER_REQUEST, remaining)}
            page = self.get_json(_candle_path(interval), params | {"to": end.strftime("%Y-%m-%d %H:%M:%S")})
            if not isinstance(page, list):
                raise UpbitError(f"{ticker} {interval}: expected a JSON array of candles")
            if not page:
                break
            rows += page
            end = _parse_time(page[-1], "candle_date_time_utc")
        if not rows:
            raise UpbitError(f"{ticker} {interval}: no candles")
        fields = (
            "opening_price",
            "high_price",
            "low_price",
            "trade_price",
            "candle_acc_trade_volume",
            "candle_acc_trade_price",
        )
        try:
            values = [[row[field] for field in fields] for row in rows]
        except (KeyError, TypeError):
            raise UpbitError(f"{ticker} {interval}: a candle lacks a price or volume") from None
        index = [_parse_time(row, "candle_date_time_kst") for row in rows]
        frame = pd.DataFrame(values, columns=["open", "high", "low", "close", "volume", "value"], index=index)
        return frame.sort_index()

    def _throttle(self) -> None:
        """At most MAX_REQUESTS_PER_SECOND in any second: a short run of requests goes at once,
        and a request beyond it waits until the oldest of the window is a second old."""
        if len(self._sent_at) == self._sent_at.maxlen:
            wait = self._sent_at[0] + RATE_WINDOW_S - time.monotonic()
            if wait > 0:
                self._sleep(wait)
        self._sent_at.append(time.monotonic())

    def _note_remaining(self, header: str | None) -> None:
        """Upbit's ``Remaining-Req: group=...; min=...; sec=N``: at ``sec=0`` others on this IP
        have used the second, so count the window as full."""
        pairs = (part.strip().partition("=") for part in (header or "").split(";"))
        remaining = {name: value for name, _, value in pairs}
        if remaining.get("sec") == "0":
            self._sent_at.extend([time.monotonic()] * MAX_REQUESTS_PER_SECOND)

    def _backoff(self, attempt: int, what: str, problem: str) -> None:
        delay = min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S)
        logger.warning("upbit retry", extra={"target": what, "problem": problem, "delay_s": delay})
        self._sleep(delay)


def _candle_path(interval: str) -> str:
    if interval in CANDLE_PATHS:
        return CANDLE_PATHS[interval]
    minutes = interval.removeprefix("minute")
    if interval.startswith("minute") and minutes.isdigit():
        return f"/candles/minutes/{minutes}"
    raise ValueError(f"unknown candle interval {interval!r}")


def _parse_time(candle: Any, field: str) -> Any:
    from datetime import datetime

    try:
        return datetime.strptime(candle[field], UPBIT_TIME_FORMAT)
    except (KeyError, TypeError, ValueError):
        raise UpbitError(f"a candle has no valid {field}") from None


def _retry_after_s(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
