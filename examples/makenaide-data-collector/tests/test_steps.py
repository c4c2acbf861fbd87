"""The collector against a real PostgreSQL, with Upbit's candle API answered by `responses`.

events/upbit/ holds candles in Upbit's JSON format (newest first, as Upbit answers);
a callback serves them the way Upbit does (``count``, exclusive ``to`` in UTC), so the
real pyupbit code pages through them: a full load of 450 days is 3 requests.
Every ticker is served the KRW-BTC series under its own market code.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import statistics
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg2
import psycopg2.extras
import pytest
import responses

from makenaide_data_collector import handler, steps, upbit


def failed_run(event, context) -> dict:
    """A run that fails the invocation: the handler raises PipelineFailed, as Lambda would see it."""
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler(event, context)
    assert str(raised.value).startswith('{"ok": false, "error": ')
    return raised.value.result


ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
DAYS = json.loads((EVENTS / "upbit" / "candles_days_KRW-BTC.json").read_text())
FOUR_HOURS = json.loads((EVENTS / "upbit" / "candles_minutes_240_KRW-BTC.json").read_text())
DAYS_URL = upbit.API_URL + "/candles/days"
FOUR_HOURS_URL = upbit.API_URL + "/candles/minutes/240"

DDL = (
    "CREATE TABLE tickers (ticker varchar(20) PRIMARY KEY, created_at timestamp DEFAULT now(),"
    " updated_at timestamp DEFAULT now(), is_active boolean DEFAULT true)",
    "CREATE TABLE ohlcv (ticker text, date date, open real, high real, low real, close real, volume real,"
    " ma_20 real, ma_50 real, ma_200 real, rsi_14 real, bb_upper real, bb_lower real, volume_20ma real,"
    " PRIMARY KEY (ticker, date))",
    "CREATE TABLE ohlcv_4h (ticker text, date timestamp, open real, high real, low real, close real,"
    " volume real, PRIMARY KEY (ticker, date))",
)


class Context:
    """A Lambda context whose remaining time a test can change."""

    function_name = "makenaide-data-collector"

    def __init__(self, remaining_ms: int = 600_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class FakeUpbit:
    """Serves the recorded candles like Upbit; ``failing`` markets get the given status."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.failing: dict[str, int] = {}
        self.requests: list[dict[str, str]] = []
        self.after_request = None
        self.days, self.four_hours = DAYS, FOUR_HOURS
        self.hide_newest = 0
        """Candles of each series not yet formed: the exchange as it was that many periods ago."""
        mock.add_callback(responses.GET, DAYS_URL, callback=lambda r: self.answer(r, self.days))
        mock.add_callback(responses.GET, FOUR_HOURS_URL, callback=lambda r: self.answer(r, self.four_hours))

    def answer(self, request, candles):
        query = {key: values[0] for key, values in parse_qs(urlsplit(request.url).query).items()}
        query["path"] = urlsplit(request.url).path
        self.requests.append(query)
        if self.after_request is not None:
            self.after_request(self)
        market = query["market"]
        if market in self.failing:
            return self.failing[market], {}, "Too many API requests."
        to = query.get("to", "9999-12-31 00:00:00").replace(" ", "T")
        candles = candles[self.hide_newest :]
        older = [dict(c, market=market) for c in candles if c["candle_date_time_utc"] < to]
        headers = {"Remaining-Req": "group=candles; min=599; sec=9"}
        return 200, headers, json.dumps(older[: int(query["count"])])

    def counts(self, market: str, path: str) -> list[int]:
        return [int(q["count"]) for q in self.requests if q["market"] == market and q["path"].endswith(path)]


@pytest.fixture
def database(db_secret, database_url):
    connection = psycopg2.connect(database_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS tickers, ohlcv, ohlcv_4h")
        for statement in DDL:
            cursor.execute(statement)
        psycopg2.extras.execute_values(
            cursor,
            "INSERT INTO tickers (ticker, is_active) VALUES %s",
            [("KRW-BTC", True), ("KRW-ETH", True), ("KRW-XRP", True), ("KRW-OLD", False)],
        )
    yield connection
    connection.close()


@pytest.fixture
def fake_upbit(monkeypatch):
    monkeypatch.setattr(upbit, "BACKOFF_BASE_S", 0.01)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeUpbit(mock)


def query(connection, sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def row_counts(connection) -> dict:
    daily = dict(query(connection, "SELECT ticker, count(*) FROM ohlcv GROUP BY ticker"))
    four_hour = dict(query(connection, "SELECT ticker, count(*) FROM ohlcv_4h GROUP BY ticker"))
    return {"daily": daily, "four_hour": four_hour}


def table(connection) -> list[tuple]:
    return query(connection, "SELECT * FROM ohlcv ORDER BY ticker, date") + query(
        connection, "SELECT * FROM ohlcv_4h ORDER BY ticker, date"
    )


def collect_result(result: dict) -> dict:
    return next(s for s in result["steps"] if s["name"] == "collect")["result"]


def test_a_full_load_writes_450_days_and_200_four_hour_candles_per_active_ticker(
    database, fake_upbit, emf_lines
):
    result = handler.lambda_handler({}, Context())

    assert result["ok"] is True, result
    found = collect_result(result)
    assert found["collected"] == 3
    assert found["failed"] == []
    assert found["deferred"] == []
    assert row_counts(database) == {
        "daily": {"KRW-BTC": 450, "KRW-ETH": 450, "KRW-XRP": 450},
        "four_hour": {"KRW-BTC": 200, "KRW-ETH": 200, "KRW-XRP": 200},
    }
    assert fake_upbit.counts("KRW-BTC", "/days") == [200, 200, 50]  # pyupbit pages 200 at a time
    assert fake_upbit.counts("KRW-BTC", "/240") == [200]
    assert "KRW-OLD" not in {q["market"] for q in fake_upbit.requests}  # inactive
    newest = DAYS[0]
    assert query(database, "SELECT max(date), min(date) FROM ohlcv WHERE ticker = 'KRW-BTC'") == [
        (datetime.date(2025, 1, 10), datetime.date(2025, 1, 10) - datetime.timedelta(days=449))
    ]
    newest_eth = "SELECT open, close FROM ohlcv WHERE ticker = 'KRW-ETH' AND date = '2025-01-10'"
    assert query(database, newest_eth) == [
        (pytest.approx(newest["opening_price"], rel=1e-6), pytest.approx(newest["trade_price"], rel=1e-6))
    ]
    # 4-hour candles are stored at their KST start, as pyupbit indexes them.
    assert query(database, "SELECT max(date) FROM ohlcv_4h") == [(datetime.datetime(2025, 1, 11, 5, 0),)]
    metrics = {k: v for doc in emf_lines() for k, v in doc.items() if not k.startswith("_")}
    assert metrics["DailyRowsWritten"] == 1350
    assert metrics["FailedTickers"] == 0


def test_the_indicators_match_hand_computed_values(database, fake_upbit):
    handler.lambda_handler({"tickers": ["KRW-BTC"]}, Context())

    loaded = list(reversed(DAYS))[-450:]  # oldest first, as stored
    closes = [c["trade_price"] for c in loaded]
    volumes = [c["candle_acc_trade_volume"] for c in loaded]
    stored = query(
        database,
        "SELECT date, ma_20, ma_50, ma_200, rsi_14, bb_upper, bb_lower, volume_20ma"
        " FROM ohlcv WHERE ticker = 'KRW-BTC' ORDER BY date",
    )
    last = stored[-1]
    mean20, sd20 = statistics.fmean(closes[-20:]), statistics.pstdev(closes[-20:])
    assert last[1] == pytest.approx(mean20, rel=1e-6)
    assert last[2] == pytest.approx(statistics.fmean(closes[-50:]), rel=1e-6)
    assert last[3] == pytest.approx(statistics.fmean(closes[-200:]), rel=1e-6)
    assert last[5] == pytest.approx(mean20 + 2 * sd20, rel=1e-6)
    assert last[6] == pytest.approx(mean20 - 2 * sd20, rel=1e-6)
    assert last[7] == pytest.approx(statistics.fmean(volumes[-20:]), rel=1e-6)
    # Wilder's RSI, by hand: mean of the first 14 gains/losses, then (prev * 13 + now) / 14.
    changes = [b - a for a, b in itertools.pairwise(closes)]
    gain = sum(max(c, 0) for c in changes[:14]) / 14
    loss = sum(max(-c, 0) for c in changes[:14]) / 14
    for change in changes[14:]:
        gain, loss = (gain * 13 + max(change, 0)) / 14, (loss * 13 + max(-change, 0)) / 14
    assert last[4] == pytest.approx(100 - 100 / (1 + gain / loss), rel=1e-5)
    # Not enough history: NULL, never NaN.
    assert stored[18][1] is None and stored[19][1] is not None
    assert stored[198][3] is None and stored[199][3] is not None
    assert stored[13][4] is None and stored[14][4] is not None
    assert not any(isinstance(v, float) and math.isnan(v) for row in stored for v in row[1:])


def test_indicators_of_a_known_series():
    import pandas as pd

    frame = pd.DataFrame({"close": [float(n) for n in range(1, 31)], "volume": [10.0] * 30})
    computed = steps.with_indicators(frame)
    assert computed["ma_20"].iloc[-1] == 20.5  # mean of 11..30
    assert math.isnan(computed["ma_20"].iloc[18])
    assert computed["rsi_14"].iloc[-1] == 100.0  # only gains
    assert computed["bb_upper"].iloc[-1] == pytest.approx(20.5 + 2 * statistics.pstdev(range(11, 31)))
    assert computed["volume_20ma"].iloc[-1] == 10.0
    assert steps.wilder_rsi([1.0, 2.0, 1.0] * 6, period=2)[2] == 50.0


@pytest.mark.parametrize(
    ("days_ago", "expected"),
    [(None, 450), (0, 5), (1, 6), (3, 8), (25, 30), (200, 30)],
)
def test_the_daily_count_follows_the_original(days_ago, expected):
    today = datetime.date(2025, 1, 10)
    latest = None if days_ago is None else today - datetime.timedelta(days=days_ago)
    assert steps.daily_count(latest, today) == expected


def test_an_incremental_run_asks_for_days_since_the_latest_plus_5(database, fake_upbit):
    today = datetime.datetime.now(steps.KST).date()
    with database.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ohlcv (ticker, date, close, volume) VALUES (%s, %s, 1, 1), (%s, %s, 1, 1)",
            ("KRW-BTC", today - datetime.timedelta(days=3), "KRW-ETH", today - datetime.timedelta(days=90)),
        )

    result = handler.lambda_handler({"tickers": ["KRW-BTC", "KRW-ETH"]}, Context())

    assert fake_upbit.counts("KRW-BTC", "/days") == [8]
    assert fake_upbit.counts("KRW-ETH", "/days") == [30]
    collected = collect_result(result)["tickers"]
    modes = {item["ticker"]: (item["mode"], item["daily_requested"]) for item in collected}
    assert modes == {"KRW-BTC": ("incremental", 8), "KRW-ETH": ("incremental", 30)}


def test_a_rerun_writes_no_duplicate_and_leaves_the_table_as_it_was(database, fake_upbit):
    handler.lambda_handler({}, Context())
    before = table(database)

    result = handler.lambda_handler({}, Context())

    assert result["ok"] is True, result
    assert fake_upbit.counts("KRW-BTC", "/days")[-1] == 30  # incremental: the latest is far behind "today"
    after = table(database)
    assert len(after) == len(before) == 3 * (450 + 200)
    for old, new in zip(before, after, strict=True):
        assert old[:2] == new[:2]
        # Indicators of the re-fetched days see stored history through real (float4) columns.
        assert [v is None for v in new] == [v is None for v in old]
        assert [v for v in new[2:] if v is not None] == pytest.approx(
            [v for v in old[2:] if v is not None], rel=1e-5
        )


def test_a_ticker_throttled_to_the_last_attempt_fails_alone(database, fake_upbit, emf_lines):
    fake_upbit.failing["KRW-ETH"] = 429

    result = handler.lambda_handler({}, Context())

    assert result["ok"] is True, result
    found = collect_result(result)
    reason = f"UpbitError: GET /candles/days: HTTP 429 after {upbit.MAX_ATTEMPTS} attempts"
    assert found["failed"] == [{"ticker": "KRW-ETH", "reason": reason}]
    assert found["collected"] == 2
    assert len(fake_upbit.counts("KRW-ETH", "/days")) == upbit.MAX_ATTEMPTS
    assert row_counts(database) == {
        "daily": {"KRW-BTC": 450, "KRW-XRP": 450},
        "four_hour": {"KRW-BTC": 200, "KRW-XRP": 200},
    }
    metrics = {k: v for doc in emf_lines() for k, v in doc.items() if not k.startswith("_")}
    assert metrics["FailedTickers"] == 1

    del fake_upbit.failing["KRW-ETH"]
    again = handler.lambda_handler({}, Context())
    assert collect_result(again)["tickers"][0]["ticker"] == "KRW-ETH"  # stalest first
    assert row_counts(database)["daily"] == {"KRW-BTC": 450, "KRW-ETH": 450, "KRW-XRP": 450}


def test_every_ticker_failing_fails_the_step(database, fake_upbit):
    fake_upbit.failing.update({"KRW-BTC": 500, "KRW-ETH": 500, "KRW-XRP": 500})

    result = failed_run({}, Context())

    assert result["ok"] is False
    check = next(s for s in result["steps"] if s["name"] == "check_progress")
    assert check["status"] == "failed"
    assert check["error"].startswith(
        "RuntimeError: all 3 tickers failed (listed in collect's result); first: KRW-BTC: UpbitError"
    )
    found = collect_result(result)  # no ticker is lost: each is listed with its reason
    assert [item["ticker"] for item in found["failed"]] == ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
    assert all(item["reason"].startswith("UpbitError: ") for item in found["failed"])
    assert found["collected"] == 0 and found["deferred"] == []


def _terminate_during_writes(monkeypatch, database_url, ticker, times):
    """Kill the function's backend while ``ticker``'s transaction is open (before its first batch)."""
    real = psycopg2.extras.execute_values
    killed = []

    def execute_values(cursor, sql, rows, *args, **kwargs):
        if rows and rows[0][0] == ticker and len(killed) < times and sql.startswith("INSERT INTO ohlcv "):
            pid = cursor.connection.get_backend_pid()
            with psycopg2.connect(database_url) as admin, admin.cursor() as admin_cursor:
                admin_cursor.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits for it
            admin.close()
            killed.append(pid)
        return real(cursor, sql, rows, *args, **kwargs)

    monkeypatch.setattr(psycopg2.extras, "execute_values", execute_values)
    return killed


def test_a_connection_dropped_mid_write_is_retried_and_nothing_is_lost(
    database, database_url, fake_upbit, monkeypatch
):
    killed = _terminate_during_writes(monkeypatch, database_url, "KRW-ETH", times=1)

    result = handler.lambda_handler({}, Context())

    assert len(killed) == 1
    assert result["ok"] is True, result
    assert collect_result(result)["failed"] == []
    assert row_counts(database) == {
        "daily": {"KRW-BTC": 450, "KRW-ETH": 450, "KRW-XRP": 450},
        "four_hour": {"KRW-BTC": 200, "KRW-ETH": 200, "KRW-XRP": 200},
    }


def test_a_connection_lost_twice_fails_that_ticker_and_the_rerun_completes_it(
    database, database_url, fake_upbit, monkeypatch
):
    killed = _terminate_during_writes(monkeypatch, database_url, "KRW-ETH", times=2)

    result = handler.lambda_handler({}, Context())

    assert len(killed) == 2
    failed = collect_result(result)["failed"]
    assert [item["ticker"] for item in failed] == ["KRW-ETH"]
    assert failed[0]["reason"].split(":")[0] in ("OperationalError", "InterfaceError")  # the connection died
    # KRW-ETH's batch is all or nothing: neither table holds a row of it.
    assert row_counts(database) == {
        "daily": {"KRW-BTC": 450, "KRW-XRP": 450},
        "four_hour": {"KRW-BTC": 200, "KRW-XRP": 200},
    }

    handler.lambda_handler({}, Context())

    assert row_counts(database) == {
        "daily": {"KRW-BTC": 450, "KRW-ETH": 450, "KRW-XRP": 450},
        "four_hour": {"KRW-BTC": 200, "KRW-ETH": 200, "KRW-XRP": 200},
    }


def test_tickers_are_deferred_when_the_deadline_is_near(database, fake_upbit, emf_lines):
    context = Context()

    def near_deadline_after_first_ticker(fake):
        if len(fake.requests) == 4:  # KRW-BTC: 3 daily pages and 1 four-hour request
            context.remaining_ms = steps.TICKER_RESERVE_MS  # minus the safety margin: below the reserve

    fake_upbit.after_request = near_deadline_after_first_ticker

    result = handler.lambda_handler({}, context)

    assert result["ok"] is True, result
    found = collect_result(result)
    assert found["collected"] == 1
    assert found["deferred"] == ["KRW-ETH", "KRW-XRP"]
    assert found["failed"] == []
    assert row_counts(database)["daily"] == {"KRW-BTC": 450}
    metrics = {k: v for doc in emf_lines() for k, v in doc.items() if not k.startswith("_")}
    assert metrics["DeferredTickers"] == 2

    again = handler.lambda_handler({}, Context())
    assert [item["ticker"] for item in collect_result(again)["tickers"]][:2] == ["KRW-ETH", "KRW-XRP"]
    assert row_counts(database)["daily"] == {"KRW-BTC": 450, "KRW-ETH": 450, "KRW-XRP": 450}


def test_the_sample_events_are_accepted(database, fake_upbit):
    for path in sorted(EVENTS.glob("*.json")):
        result = handler.lambda_handler(json.loads(path.read_text()), Context())
        assert result["ok"] is True, (path.name, result)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"tickers": "KRW-BTC"}, "'tickers' must be a non-empty list"),
        ({"tickers": []}, "'tickers' must be a non-empty list"),
        ({"tickers": ["KRW-BTC", "krw btc"]}, "'tickers' holds entries that are not market codes: 'krw btc'"),
        ({"tickers": ["KRW-" + "Z" * 1_000_000]}, "not market codes: 'KRW-ZZZZZZZZZZZZZZZZZZZZZZZ...ZZZZ"),
        ({"tickers": ["a", "b", "c", "d", "e"]}, "market codes: 'a', 'b', 'c' and 2 more"),
        ({"tickers": ["KRW-BTC"] * 100_000}, "'tickers' holds 100000 entries, at most 1000 are allowed"),
        ({"tickers": [1] * 100_000}, "'tickers' holds 100000 entries"),
    ],
)
def test_bad_events_are_rejected(event, message, lambda_context):
    result = failed_run(event, lambda_context)
    assert result["ok"] is False
    assert message in result["error"]
    assert len(result["error"]) < 250  # a huge value is shown as a short repr


# --- candles the exchange should never have sent --------------------------------------------------


def with_bad_candles(candles: list[dict], fetched: int) -> tuple[list[dict], list[str]]:
    """The recorded reply with one candle of each bad kind among the ``fetched`` newest (two outside
    [low, high]); returns the reply and the KST times of the bad candles."""
    bad = [dict(candle) for candle in candles]
    bad[1]["trade_price"] = None  # null
    bad[2]["opening_price"] = 0.0  # zero price
    high, low = bad[3]["high_price"], bad[3]["low_price"]
    bad[3]["high_price"], bad[3]["low_price"] = low - 1, high + 1  # high < low
    bad[4]["trade_price"] = bad[4]["high_price"] * 1.5  # close above high
    bad[5]["opening_price"] = bad[5]["low_price"] * 0.5  # open below low
    times = [bad[i]["candle_date_time_kst"] for i in (1, 2, 3, 4, 5)]
    bad[fetched - 1]["candle_date_time_kst"] = "1999-12-31T09:00:00"  # before 2001 (its UTC time pages on)
    return bad, [*times, "1999-12-31T09:00:00"]


EACH_KIND_ONCE = {
    "null": 1,
    "non_positive_price": 1,
    "high_below_low": 1,
    "outside_range": 2,
    "before_2001": 1,
}


def test_bad_candles_are_dropped_before_writing_and_counted(database, fake_upbit, emf_lines):
    fake_upbit.days, bad_days = with_bad_candles(DAYS, fetched=steps.DAILY_FULL_LOAD)
    fake_upbit.four_hours, bad_four_hours = with_bad_candles(FOUR_HOURS, fetched=steps.FOUR_HOUR_COUNT)

    result = handler.lambda_handler({"tickers": ["KRW-BTC"]}, Context())

    assert result["ok"] is True, result
    found = collect_result(result)
    assert found["tickers"][0]["dropped"] == {reason: 2 * n for reason, n in EACH_KIND_ONCE.items()}
    assert found["dropped"] == found["tickers"][0]["dropped"]
    assert found["candles_dropped"] == 12
    assert row_counts(database) == {"daily": {"KRW-BTC": 450 - 6}, "four_hour": {"KRW-BTC": 200 - 6}}
    days = {row[0] for row in query(database, "SELECT date FROM ohlcv")}
    assert not days & {datetime.date.fromisoformat(t[:10]) for t in bad_days}
    hours = {row[0] for row in query(database, "SELECT date FROM ohlcv_4h")}
    assert not hours & {datetime.datetime.fromisoformat(t) for t in bad_four_hours}
    prices = query(
        database,
        "SELECT min(least(open, high, low, close)), bool_and(low <= high)"
        " FROM (SELECT open, high, low, close FROM ohlcv UNION ALL"
        " SELECT open, high, low, close FROM ohlcv_4h) AS candles",
    )
    assert prices[0][0] > 0 and prices[0][1] is True
    metrics = {k: v for doc in emf_lines() for k, v in doc.items() if not k.startswith("_")}
    assert metrics["CandlesDropped"] == 12


def test_edge_values_are_kept_and_a_string_price_counts_as_null():
    import pandas as pd

    frame = pd.DataFrame(
        {
            "open": [1.0, "x", 5.0, 2.0],
            "high": [2.0, 2.0, 4.0, 2.0],
            "low": [1.0, 1.0, 3.0, 1.0],
            "close": [2.0, 1.5, 3.5, 1.0],
            "volume": [1.0, 1.0, 1.0, -0.0],
        },
        index=[datetime.datetime(2024, 1, day) for day in (1, 2, 3)] + [datetime.datetime(2000, 12, 31, 23)],
    )
    kept, dropped = steps.valid_candles(frame)
    # open == low and close == high are true candles; a string price counts as null.
    assert list(kept.index) == [datetime.datetime(2024, 1, 1)]
    assert dropped == {
        "null": 1,
        "non_positive_price": 0,
        "high_below_low": 0,
        "outside_range": 1,
        "before_2001": 1,
    }
    assert kept["open"].dtype == float


# --- ohlcv_4h retention ---------------------------------------------------------------------------


def latest_four_hour_indicators(connection, ticker: str) -> dict:
    import pandas as pd

    rows = query(
        connection, "SELECT date, close, volume FROM ohlcv_4h WHERE ticker = %s ORDER BY date", (ticker,)
    )
    frame = pd.DataFrame(
        [(close, volume) for _, close, volume in rows], columns=["close", "volume"], dtype=float
    )
    last = steps.with_indicators(frame).iloc[-1]
    return {name: float(last[name]) for name in steps.DAILY_COLUMNS[7:]}


def test_four_hour_rows_beyond_the_retention_are_deleted_per_ticker(database, fake_upbit):
    tickers = ["KRW-BTC", "KRW-ETH"]
    deleted = []
    for hidden in (10, 5, 0):  # three loads, 5 new candles each time after the first
        fake_upbit.hide_newest = hidden
        result = handler.lambda_handler({"tickers": tickers}, Context())
        assert result["ok"] is True, result
        deleted.append(collect_result(result)["four_hour_deleted"])
        assert row_counts(database)["four_hour"] == {
            ticker: steps.DEFAULT_FOUR_HOUR_RETENTION for ticker in tickers
        }
    assert deleted == [0, 10, 10]
    newest = sorted(datetime.datetime.fromisoformat(c["candle_date_time_kst"]) for c in FOUR_HOURS[:200])
    for ticker in tickers:  # the rows kept are the newest ones
        kept = [
            row[0]
            for row in query(database, "SELECT date FROM ohlcv_4h WHERE ticker = %s ORDER BY date", (ticker,))
        ]
        assert kept == newest


def test_indicators_over_the_kept_rows_agree_with_those_over_every_row(database, fake_upbit, monkeypatch):
    monkeypatch.setenv(steps.FOUR_HOUR_RETENTION_ENV, "1000")
    for hidden in (10, 0):
        fake_upbit.hide_newest = hidden
        handler.lambda_handler({"tickers": ["KRW-BTC"]}, Context())
    assert row_counts(database)["four_hour"] == {"KRW-BTC": 210}
    before = latest_four_hour_indicators(database, "KRW-BTC")

    monkeypatch.delenv(steps.FOUR_HOUR_RETENTION_ENV)
    result = handler.lambda_handler({"tickers": ["KRW-BTC"]}, Context())

    assert collect_result(result)["four_hour_deleted"] == 10
    assert row_counts(database)["four_hour"] == {"KRW-BTC": 200}
    after = latest_four_hour_indicators(database, "KRW-BTC")
    assert not any(math.isnan(value) for value in after.values())
    rolling = {name: value for name, value in before.items() if name != "rsi_14"}
    assert {name: after[name] for name in rolling} == pytest.approx(rolling, rel=1e-9)
    # Wilder's RSI carries all of its history with weight (13/14)^n: 186 periods on, it agrees.
    assert after["rsi_14"] == pytest.approx(before["rsi_14"], abs=1e-3)


@pytest.mark.parametrize("value", ["199", "0", "-5", "lots", "1e9", "100001"])
def test_a_retention_below_what_the_indicators_read_fails_the_run_before_any_request(
    database, fake_upbit, monkeypatch, value
):
    monkeypatch.setenv(steps.FOUR_HOUR_RETENTION_ENV, value)

    result = failed_run({"tickers": ["KRW-BTC"]}, Context())

    assert result["ok"] is False
    failed = next(s for s in result["steps"] if s["name"] == "collect")
    assert failed["error"].startswith("InvalidSetting: FOUR_HOUR_RETENTION must be a whole number from 200")
    assert fake_upbit.requests == []
    assert row_counts(database) == {"daily": {}, "four_hour": {}}
