"""Collect daily and 4-hour Upbit candles into ``ohlcv`` / ``ohlcv_4h``, with indicators.

Per ticker: read what the table already holds, fetch candles framed as pyupbit frames them (the
original's counts: a full load of 450 days when the ticker has none, else
min(days since the latest + 5, 30); 200 four-hour candles), compute the indicator
columns, and upsert everything in one transaction of its own. A failed ticker is
reported and loses only its own batch, which the next run fetches again; when the
deadline is near, the remaining tickers are reported as deferred. Tickers are taken
stalest first, so deferred ones lead the next run. Every ticker of the run is in the
result, collected, failed or deferred, even when all of them failed (``check_progress``
then fails the run).

Candles the exchange should never have sent are dropped before anything is computed or
written, as the original collector did: a missing price or volume, a price of zero or
less, high below low, open or close outside [low, high], a date before 2001. The
ticker's result (and the step's) counts them by reason.

``ohlcv_4h`` keeps the newest FOUR_HOUR_RETENTION rows per ticker (default and floor:
the 200 that the longest indicator window, ma_200, reads); older ones are deleted in
the transaction that writes the new candles, so a reader never sees a table without them.

pandas (and with it numpy) is imported inside the collect step only.
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import re

from .pipeline import Step

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from typing import Any

    from .db import Database
    from .pipeline import RunContext
    from .upbit import UpbitClient

logger = logging.getLogger(__name__)

KST = datetime.timezone(datetime.timedelta(hours=9), "KST")
"""Upbit's daily candles start at 09:00 KST; pyupbit indexes candles by their KST time."""
DAILY_FULL_LOAD = 450
DAILY_INCREMENTAL_OVERLAP_DAYS = 5
DAILY_INCREMENTAL_MAX = 30
FOUR_HOUR_COUNT = 200
LONGEST_INDICATOR_WINDOW = 200
"""ma_200: the most rows any indicator of with_indicators reads for its latest value."""
FOUR_HOUR_RETENTION_ENV = "FOUR_HOUR_RETENTION"
DEFAULT_FOUR_HOUR_RETENTION = LONGEST_INDICATOR_WINDOW
MAX_FOUR_HOUR_RETENTION = 100_000
"""Four-hour rows kept per ticker: at least what the indicators read, at most about 45 years."""
EARLIEST_CANDLE = datetime.datetime(2001, 1, 1)
"""Candles dated before this (KST) are bogus: the original collector dropped them too."""
DROP_REASONS = ("null", "non_positive_price", "high_below_low", "outside_range", "before_2001")
"""Why a candle is dropped; each dropped candle is counted under the first reason that applies."""
HISTORY_ROWS = 260
"""Stored daily rows read back so ma_200 and RSI of new rows see the ticker's history."""
MAX_TICKERS = 1_000
"""Entries the event's 'tickers' may hold, counted before anything else is done."""
SHOWN_CHARS = 60
"""A value from the event appears in an error as a repr of at most this length."""
MAX_SHOWN = 3
"""Bad entries named in an error; the rest are counted."""
TICKER_PATTERN = re.compile(r"^[A-Z]{2,5}-[A-Z0-9]{1,15}$")

SELECT_BUDGET_MS = 10_000
TICKER_RESERVE_MS = 30_000
"""A ticker's worst case (4 requests, retried, and its transaction): no ticker is started with less left."""
WORST_CASE_SECONDS = 600
"""collect uses the time the deadline leaves and takes no ticker within TICKER_RESERVE_MS of it,
so a run ends inside the Timeout; a full load of ~230 KRW tickers takes about 3 minutes."""

DAILY_COLUMNS = (
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
)
FOUR_HOUR_COLUMNS = ("ticker", "date", "open", "high", "low", "close", "volume")

UPSERT_DAILY = (
    "INSERT INTO ohlcv (ticker, date, open, high, low, close, volume, ma_20, ma_50, ma_200, rsi_14,"
    " bb_upper, bb_lower, volume_20ma) VALUES %s ON CONFLICT (ticker, date) DO UPDATE SET"
    " open = EXCLUDED.open, high = EXCLUDED.high, low = EXCLUDED.low, close = EXCLUDED.close,"
    " volume = EXCLUDED.volume, ma_20 = EXCLUDED.ma_20, ma_50 = EXCLUDED.ma_50, ma_200 = EXCLUDED.ma_200,"
    " rsi_14 = EXCLUDED.rsi_14, bb_upper = EXCLUDED.bb_upper, bb_lower = EXCLUDED.bb_lower,"
    " volume_20ma = EXCLUDED.volume_20ma"
)
UPSERT_FOUR_HOUR = (
    "INSERT INTO ohlcv_4h (ticker, date, open, high, low, close, volume) VALUES %s"
    " ON CONFLICT (ticker, date) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high,"
    " low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume"
)
DELETE_OLD_FOUR_HOUR = (
    "DELETE FROM ohlcv_4h WHERE ticker = %(ticker)s AND date <= ("
    "SELECT date FROM ohlcv_4h WHERE ticker = %(ticker)s ORDER BY date DESC OFFSET %(keep)s LIMIT 1)"
)
"""Everything older than the newest ``keep`` rows of one ticker (nothing when it has fewer)."""
PAGE_SIZE = 500


class InvalidEvent(ValueError):
    """The event cannot be processed; the caller gets a clear error result."""


class InvalidSetting(ValueError):
    """An environment setting of the function is out of range; the run fails before any request."""


def four_hour_retention() -> int:
    """FOUR_HOUR_RETENTION, or the default; never fewer rows than the indicators read."""
    configured = os.environ.get(FOUR_HOUR_RETENTION_ENV, "").strip()
    if not configured:
        return DEFAULT_FOUR_HOUR_RETENTION
    if not configured.isdigit() or not (
        LONGEST_INDICATOR_WINDOW <= int(configured) <= MAX_FOUR_HOUR_RETENTION
    ):
        raise InvalidSetting(
            f"{FOUR_HOUR_RETENTION_ENV} must be a whole number from {LONGEST_INDICATOR_WINDOW}"
            f" (the rows ma_200 reads) to {MAX_FOUR_HOUR_RETENTION}, not {_shown(configured)}"
        )
    return int(configured)


def _shown(value: Any) -> str:
    """A short repr of a value from the event, for an error message (never the whole of a huge input)."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = SHOWN_CHARS
    return shortener.repr(value)


class Request:
    __slots__ = ("tickers",)

    def __init__(self, tickers: tuple[str, ...] | None) -> None:
        self.tickers = tickers


def parse_event(event: dict[str, Any]) -> Request:
    """{"tickers": ["KRW-BTC", ...]} or no tickers (active ones); a schedule's fields are ignored."""
    if "tickers" not in event:
        return Request(tickers=None)
    tickers = event["tickers"]
    if isinstance(tickers, list) and len(tickers) > MAX_TICKERS:
        raise InvalidEvent(f"'tickers' holds {len(tickers)} entries, at most {MAX_TICKERS} are allowed")
    if not isinstance(tickers, list) or not tickers or not all(isinstance(t, str) for t in tickers):
        raise InvalidEvent("'tickers' must be a non-empty list of market codes such as \"KRW-BTC\"")
    bad = [t for t in tickers if not TICKER_PATTERN.match(t)]
    if bad:
        shown = ", ".join(_shown(t) for t in bad[:MAX_SHOWN])
        if len(bad) > MAX_SHOWN:
            shown += f" and {len(bad) - MAX_SHOWN} more"
        raise InvalidEvent(f"'tickers' holds entries that are not market codes: {shown}")
    return Request(tickers=tuple(dict.fromkeys(tickers)))


# --- counts and indicators (pure functions) ------------------------------------------------------


def daily_count(latest: datetime.date | None, today: datetime.date) -> int:
    """How many daily candles to ask for: the original's full load or incremental window."""
    if latest is None:
        return DAILY_FULL_LOAD
    return max(1, min((today - latest).days + DAILY_INCREMENTAL_OVERLAP_DAYS, DAILY_INCREMENTAL_MAX))


def wilder_rsi(closes: list[float], period: int = 14) -> list[float]:
    """RSI with Wilder's smoothing: the first average is a plain mean of ``period`` changes."""
    rsi = [math.nan] * len(closes)
    if len(closes) <= period:
        return rsi
    from itertools import pairwise

    changes = [b - a for a, b in pairwise(closes)]
    gain = sum(max(c, 0.0) for c in changes[:period]) / period
    loss = sum(max(-c, 0.0) for c in changes[:period]) / period
    rsi[period] = _rsi(gain, loss)
    for index in range(period + 1, len(closes)):
        change = changes[index - 1]
        gain = (gain * (period - 1) + max(change, 0.0)) / period
        loss = (loss * (period - 1) + max(-change, 0.0)) / period
        rsi[index] = _rsi(gain, loss)
    return rsi


def _rsi(gain: float, loss: float) -> float:
    if loss == 0:
        return 50.0 if gain == 0 else 100.0
    return 100.0 - 100.0 / (1.0 + gain / loss)


def with_indicators(frame: Any) -> Any:
    """Adds ma_20, ma_50, ma_200, rsi_14 (Wilder), volume_20ma and bb_upper/bb_lower.

    Bollinger bands: the 20-day mean plus and minus 2 population standard deviations
    (Bollinger's definition, as TA-Lib computes it).
    """
    close, volume = frame["close"].astype(float), frame["volume"].astype(float)
    frame = frame.copy()
    for window in (20, 50, 200):
        frame[f"ma_{window}"] = close.rolling(window).mean()
    frame["rsi_14"] = wilder_rsi(close.tolist())
    deviation = close.rolling(20).std(ddof=0)
    frame["bb_upper"] = frame["ma_20"] + 2 * deviation
    frame["bb_lower"] = frame["ma_20"] - 2 * deviation
    frame["volume_20ma"] = volume.rolling(20).mean()
    return frame


def valid_candles(candles: Any) -> tuple[Any, dict[str, int]]:
    """The candles that can be true, and how many were dropped per DROP_REASONS entry."""
    import pandas as pd

    columns = ["open", "high", "low", "close", "volume"]
    numbers = candles[columns].apply(pd.to_numeric, errors="coerce")  # a string price counts as null
    left = pd.Series(True, index=candles.index)
    low, high = numbers["low"], numbers["high"]
    tests = {
        "null": numbers.isna().any(axis=1),
        "non_positive_price": (numbers[["open", "high", "low", "close"]] <= 0).any(axis=1),
        "high_below_low": high < low,
        "outside_range": (
            numbers[["open", "close"]].lt(low, axis=0) | numbers[["open", "close"]].gt(high, axis=0)
        ).any(axis=1),
        "before_2001": pd.Series(candles.index < EARLIEST_CANDLE, index=candles.index),
    }
    dropped = {}
    for reason in DROP_REASONS:
        bad = left & tests[reason]
        dropped[reason] = int(bad.sum())
        left &= ~bad
    kept = candles[left].copy()
    kept[columns] = numbers[left]
    return kept, dropped


def _value(value: Any) -> float | None:
    """A float for PostgreSQL's real; NaN (an indicator without enough history) becomes NULL."""
    number = float(value)
    return None if math.isnan(number) else number


# --- one ticker ----------------------------------------------------------------------------------


def read_history(cursor: Any, ticker: str) -> tuple[datetime.date | None, list[tuple]]:
    cursor.execute(
        "SELECT date, close, volume FROM ohlcv WHERE ticker = %s ORDER BY date DESC LIMIT %s",
        (ticker, HISTORY_ROWS),
    )
    rows = cursor.fetchall()
    return (rows[0][0] if rows else None), rows[::-1]


def daily_rows(ticker: str, candles: Any, history: list[tuple]) -> list[tuple]:
    """Rows for the fetched days, indicators computed over the stored history plus the new candles."""
    import pandas as pd

    fetched = candles.copy()
    fetched.index = [timestamp.date() for timestamp in fetched.index]
    fetched = fetched[~fetched.index.duplicated(keep="last")]
    stored = pd.DataFrame(
        [(close, volume) for _, close, volume in history],
        index=[day for day, _, _ in history],
        columns=["close", "volume"],
        dtype=float,
    )
    stored = stored[~stored.index.isin(fetched.index)]
    series = pd.concat([stored, fetched[["close", "volume"]]]).sort_index()
    indicators = with_indicators(series).loc[fetched.index]
    rows = []
    for day, candle in fetched.iterrows():
        computed = indicators.loc[day]
        rows.append(
            (
                ticker,
                day,
                *(_value(candle[name]) for name in ("open", "high", "low", "close", "volume")),
                *(_value(computed[name]) for name in DAILY_COLUMNS[7:]),
            )
        )
    return rows


def four_hour_rows(ticker: str, candles: Any) -> list[tuple]:
    candles = candles[~candles.index.duplicated(keep="last")]
    return [
        (
            ticker,
            timestamp.to_pydatetime(),
            *(_value(candle[name]) for name in ("open", "high", "low", "close", "volume")),
        )
        for timestamp, candle in candles.iterrows()
    ]


def collect_ticker(
    ticker: str,
    client: UpbitClient,
    database: Database,
    today: datetime.date,
    retention: int = DEFAULT_FOUR_HOUR_RETENTION,
) -> dict[str, Any]:
    """Fetch, check, compute and write one ticker; raises on any failure, having written nothing."""
    latest, history = database.run_transaction(lambda cursor: read_history(cursor, ticker))
    count = daily_count(latest, today)
    daily, daily_dropped = valid_candles(client.ohlcv(ticker, interval="day", count=count))
    four_hour, four_hour_dropped = valid_candles(
        client.ohlcv(ticker, interval="minute240", count=FOUR_HOUR_COUNT)
    )
    dropped = {reason: daily_dropped[reason] + four_hour_dropped[reason] for reason in DROP_REASONS}
    if any(dropped.values()):
        logger.warning("invalid candles dropped", extra={"ticker": ticker, "dropped": dropped})
    daily_batch = daily_rows(ticker, daily, history) if len(daily) else []
    four_hour_batch = four_hour_rows(ticker, four_hour)

    def write(cursor: Any) -> int:
        from psycopg2.extras import execute_values

        execute_values(cursor, UPSERT_DAILY, daily_batch, page_size=PAGE_SIZE)
        execute_values(cursor, UPSERT_FOUR_HOUR, four_hour_batch, page_size=PAGE_SIZE)
        cursor.execute(DELETE_OLD_FOUR_HOUR, {"ticker": ticker, "keep": retention})
        return cursor.rowcount

    four_hour_deleted = database.run_transaction(write)
    return {
        "ticker": ticker,
        "mode": "full" if latest is None else "incremental",
        "daily_requested": count,
        "daily_rows": len(daily_batch),
        "four_hour_rows": len(four_hour_batch),
        "four_hour_deleted": four_hour_deleted,
        "dropped": dropped,
    }


# --- steps ---------------------------------------------------------------------------------------


def select_tickers(run: RunContext) -> dict[str, Any]:
    """The event's tickers, else the active ones, stalest first (never collected ones lead)."""
    from .db import get_database

    if run.request.tickers is not None:
        return {"source": "event", "tickers": list(run.request.tickers)}

    def read(cursor: Any) -> list[str]:
        cursor.execute(
            "SELECT t.ticker FROM tickers t"
            " LEFT JOIN (SELECT ticker, max(date) AS latest FROM ohlcv GROUP BY ticker) o"
            " ON o.ticker = t.ticker"
            " WHERE t.is_active ORDER BY o.latest NULLS FIRST, t.ticker"
        )
        return [row[0] for row in cursor.fetchall()]

    tickers = get_database(run.clients).run_transaction(read)
    return {"source": "tickers", "tickers": tickers}


def collect(run: RunContext) -> dict[str, Any]:
    from .db import get_database
    from .pipeline import DeadlineExceeded, SkipStep
    from .upbit import UpbitClient

    tickers = run.results["select_tickers"]["tickers"]
    if not tickers:
        raise SkipStep("no active tickers")
    retention = four_hour_retention()
    client = UpbitClient(sleep=run.deadline.sleep)
    database = get_database(run.clients)
    today = datetime.datetime.now(KST).date()
    collected: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    deferred: list[str] = []
    for position, ticker in enumerate(tickers):
        if run.deadline.remaining_ms() < TICKER_RESERVE_MS:
            deferred = tickers[position:]
            break
        try:
            collected.append(collect_ticker(ticker, client, database, today, retention))
        except DeadlineExceeded:
            deferred = tickers[position:]
            break
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"
            logger.warning("ticker failed", extra={"ticker": ticker, "reason": reason})
            failed.append({"ticker": ticker, "reason": reason})
    if deferred:
        logger.warning("deadline near, tickers deferred to the next run", extra={"deferred": len(deferred)})
    daily_written = sum(item["daily_rows"] for item in collected)
    four_hour_written = sum(item["four_hour_rows"] for item in collected)
    four_hour_deleted = sum(item["four_hour_deleted"] for item in collected)
    dropped = {reason: sum(item["dropped"][reason] for item in collected) for reason in DROP_REASONS}
    run.metrics.add("TickersCollected", len(collected))
    run.metrics.add("FailedTickers", len(failed))
    run.metrics.add("DeferredTickers", len(deferred))
    run.metrics.add("DailyRowsWritten", daily_written)
    run.metrics.add("FourHourRowsWritten", four_hour_written)
    run.metrics.add("FourHourRowsDeleted", four_hour_deleted)
    run.metrics.add("CandlesDropped", sum(dropped.values()))
    return {
        "collected": len(collected),
        "daily_rows": daily_written,
        "four_hour_rows": four_hour_written,
        "four_hour_deleted": four_hour_deleted,
        "four_hour_retention": retention,
        "candles_dropped": sum(dropped.values()),
        "dropped": dropped,
        "failed": failed,
        "deferred": deferred,
        "tickers": collected,
    }


def check_progress(run: RunContext) -> dict[str, int]:
    """Fail the run when every ticker failed; collect's result still lists each of them."""
    from .pipeline import SkipStep

    found = run.results.get("collect")
    if found is None:
        raise SkipStep("nothing was collected")
    failed = found["failed"]
    if failed and not found["collected"] and not found["deferred"]:
        first = failed[0]
        raise RuntimeError(
            f"all {len(failed)} tickers failed (listed in collect's result);"
            f" first: {first['ticker']}: {first['reason']}"
        )
    return {"collected": found["collected"], "failed": len(failed), "deferred": len(found["deferred"])}


def build_steps(request: Request) -> list[Step]:
    return [
        Step("select_tickers", select_tickers, budget_ms=SELECT_BUDGET_MS),
        Step("collect", collect, budget_ms=TICKER_RESERVE_MS),
        # Critical: a run where every ticker failed fails the invocation, so Lambda retries it.
        Step("check_progress", check_progress, budget_ms=0),
    ]
