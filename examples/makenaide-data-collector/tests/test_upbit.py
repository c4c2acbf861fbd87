"""Upbit access through the real requests and pyupbit code, HTTP answered from recordings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses

from makenaide_data_collector import upbit

RECORDED = Path(__file__).parent / "recorded"
MARKETS_URL = upbit.API_URL + "/market/all"
DAY_CANDLES_URL = upbit.API_URL + "/candles/days"


def _recorded(name: str):
    """The body of a recorded response."""
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))["body"]


def _replay(url: str, name: str) -> None:
    """Answer the next GET of ``url`` with a recorded response, headers included."""
    recording = json.loads((RECORDED / name).read_text(encoding="utf-8"))
    responses.get(url, status=recording["status"], headers=recording["headers"], json=recording["body"])


class FakeClock:
    """Stands in for time.monotonic and a Deadline's sleep: waits are recorded, not slept."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(upbit.time, "monotonic", fake.monotonic)
    return fake


@pytest.fixture
def client(clock):
    return upbit.UpbitClient(sleep=clock.sleep)


@responses.activate
def test_markets_are_read_from_upbit(client):
    _replay(MARKETS_URL, "market_all.json")
    markets = client.markets()
    assert [market["market"] for market in markets][:2] == ["KRW-BTC", "KRW-ETH"]
    assert responses.calls[0].request.params == {"isDetails": "false"}


@responses.activate
@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_throttled_or_failing_request_is_retried_with_backoff(client, clock, status):
    responses.get(MARKETS_URL, status=status, json={"error": {"name": "too_many_requests"}})
    _replay(MARKETS_URL, "market_all.json")
    assert len(client.markets()) == len(_recorded("market_all.json"))
    assert len(responses.calls) == 2
    assert upbit.BACKOFF_BASE_S in clock.slept


@responses.activate
def test_retry_after_is_honoured(client, clock):
    responses.get(MARKETS_URL, status=429, headers={"Retry-After": "2"})
    responses.get(MARKETS_URL, json=[])
    assert client.markets() == []
    assert 2.0 in clock.slept


@responses.activate
def test_malformed_json_is_retried(client):
    responses.get(MARKETS_URL, body="<html>bad gateway</html>", status=200)
    _replay(MARKETS_URL, "market_all.json")
    assert client.markets()[0]["market"] == "KRW-BTC"


@responses.activate
def test_retries_are_bounded_and_end_in_a_clear_error(client, clock):
    responses.get(MARKETS_URL, status=502)
    with pytest.raises(upbit.UpbitError, match=f"HTTP 502 after {upbit.MAX_ATTEMPTS} attempts"):
        client.markets()
    assert len(responses.calls) == upbit.MAX_ATTEMPTS
    assert all(delay <= upbit.BACKOFF_MAX_S for delay in clock.slept)


@responses.activate
def test_a_client_error_is_not_retried(client):
    responses.get(MARKETS_URL, status=404, json={"error": {"name": "not_found"}})
    with pytest.raises(upbit.UpbitError, match="HTTP 404"):
        client.markets()
    assert len(responses.calls) == 1


@responses.activate
def test_no_second_holds_more_requests_than_upbit_allows(client, clock):
    sent_at = []

    def answer(request):
        sent_at.append(clock.now)
        return 200, {}, "[]"

    responses.add_callback(responses.GET, MARKETS_URL, callback=answer)
    for _ in range(25):
        client.markets()
    limit = upbit.MAX_REQUESTS_PER_SECOND
    assert sent_at[:limit] == [sent_at[0]] * limit, "a short run of requests should not wait"
    window_later = zip(sent_at, sent_at[limit:], strict=False)
    assert all(later - earlier >= upbit.RATE_WINDOW_S for earlier, later in window_later)
    assert clock.slept == [pytest.approx(upbit.RATE_WINDOW_S)] * 2


@responses.activate
def test_a_second_upbit_reports_used_up_is_waited_out(client, clock):
    responses.get(MARKETS_URL, json=[], headers={"Remaining-Req": "group=market; min=599; sec=0"})
    responses.get(MARKETS_URL, json=[], headers={"Remaining-Req": "group=market; min=598; sec=9"})
    client.markets()
    assert clock.slept == []
    client.markets()
    assert clock.slept == [pytest.approx(upbit.RATE_WINDOW_S)]


@responses.activate
def test_candles_are_framed_as_pyupbit_frames_them(client):
    import pandas as pd
    import pyupbit

    _replay(DAY_CANDLES_URL, "candles_days_krw_btc.json")
    _replay(DAY_CANDLES_URL, "candles_days_krw_btc.json")
    frame = client.ohlcv("KRW-BTC", interval="day", count=3)
    pd.testing.assert_frame_equal(frame, pyupbit.get_ohlcv("KRW-BTC", interval="day", count=3))
    assert list(frame.columns) == ["open", "high", "low", "close", "volume", "value"]
    assert frame.index.is_monotonic_increasing
    assert frame.iloc[-1]["close"] == _recorded("candles_days_krw_btc.json")[0]["trade_price"]


@responses.activate
def test_every_candle_request_has_a_timeout(client):
    _replay(DAY_CANDLES_URL, "candles_days_krw_btc.json")
    client.ohlcv("KRW-BTC", count=3)
    (call,) = responses.calls
    assert call.request.req_kwargs["timeout"] == (upbit.CONNECT_TIMEOUT_S, upbit.READ_TIMEOUT_S)
    assert call.request.params == {"market": "KRW-BTC", "count": "3", "to": call.request.params["to"]}


@responses.activate
def test_a_throttled_candle_request_is_retried(client, clock):
    responses.get(DAY_CANDLES_URL, status=429, json={"error": {"name": "too_many_requests"}})
    _replay(DAY_CANDLES_URL, "candles_days_krw_btc.json")
    frame = client.ohlcv("KRW-BTC", interval="day", count=3)
    assert len(frame) == 3
    assert len(responses.calls) == 2


@responses.activate
def test_candles_give_up_after_bounded_attempts(client):
    responses.get(DAY_CANDLES_URL, status=500)
    with pytest.raises(upbit.UpbitError, match="HTTP 500 after"):
        client.ohlcv("KRW-BTC", count=3)
    assert len(responses.calls) == upbit.MAX_ATTEMPTS


@responses.activate
def test_a_malformed_candle_is_a_clear_error(client):
    responses.get(DAY_CANDLES_URL, json=[{"market": "KRW-BTC"}])
    with pytest.raises(upbit.UpbitError, match="candle"):
        client.ohlcv("KRW-BTC", count=3)
