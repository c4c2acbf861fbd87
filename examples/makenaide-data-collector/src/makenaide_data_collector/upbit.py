"""Lazy Upbit access: bounded retries with backoff, within Upbit's request rate.

requests and pyupbit come from the layer and are imported on first use; pyupbit
brings pandas, so only the steps that need candles as a DataFrame should use it.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)

API_URL = "https://api.upbit.com/v1"
MAX_REQUESTS_PER_SECOND = 10
"""Upbit's quotation API allows 10 requests a second per IP address."""
MAX_ATTEMPTS = 4
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 8.0
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 3, 10
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


class UpbitError(RuntimeError):
    """Upbit did not answer usefully within the allowed attempts."""


class UpbitClient:
    """Calls Upbit's public API; every wait goes through ``sleep`` (a Deadline's, in a step)."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self._session: Any = None
        self._next_request_at = 0.0

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
            try:
                response = self._session.get(
                    API_URL + path, params=params, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                last_problem = type(error).__name__
            else:
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
        """Candles as pyupbit's DataFrame (open, high, low, close, volume, value).

        pyupbit returns None for any failure (429, 5xx, bad JSON), so None is retried.
        """
        import pyupbit

        for attempt in range(1, MAX_ATTEMPTS + 1):
            self._throttle()
            frame = pyupbit.get_ohlcv(ticker, interval=interval, count=count, to=to, period=self._period())
            if frame is not None:
                return frame
            if attempt < MAX_ATTEMPTS:
                self._backoff(attempt, ticker, "no candles")
        raise UpbitError(f"{ticker} {interval}: no candles after {MAX_ATTEMPTS} attempts")

    def _throttle(self) -> None:
        """Space requests so this client stays under Upbit's rate."""
        now = time.monotonic()
        if now < self._next_request_at:
            self._sleep(self._next_request_at - now)
        self._next_request_at = max(now, self._next_request_at) + self._period()

    @staticmethod
    def _period() -> float:
        return 1.0 / MAX_REQUESTS_PER_SECOND

    def _backoff(self, attempt: int, what: str, problem: str) -> None:
        delay = min(BACKOFF_BASE_S * 2 ** (attempt - 1), BACKOFF_MAX_S)
        logger.warning("upbit retry", extra={"target": what, "problem": problem, "delay_s": delay})
        self._sleep(delay)


def _retry_after_s(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
