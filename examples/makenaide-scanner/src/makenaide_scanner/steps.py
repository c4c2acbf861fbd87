"""Keep ``tickers`` in step with Upbit's KRW markets.

Newly listed markets are inserted, listed ones (re)activated, delisted and
blacklisted ones deactivated (never deleted: trade_log and ohlcv rows refer to them).
A scan within the last 24 hours makes the run a no-op unless the event says
``{"force": true}``.

When the last scan happened is kept in a one-row ``scanner_state`` table (created by
makenaide-db-initializer, like every table: this function changes rows only), not derived
from ``max(tickers.updated_at)``: updated_at moves only when a ticker changes, so
after a quiet day every scheduled run would scan again, and a run that failed
before writing could not be told from one that found nothing to change.

Only requests is used (through UpbitClient.markets): pyupbit would bring pandas
and numpy into a function that needs neither.
"""

from __future__ import annotations

import logging
import os
import re

from .pipeline import SkipStep, Step

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from typing import Any

    from .pipeline import RunContext

logger = logging.getLogger(__name__)

BLACKLIST_ENV = "BLACKLIST"
DEFAULT_BLACKLIST = ("KRW-BTC", "KRW-ETH")
"""Markets the trading app never trades; they are kept in tickers, inactive."""
MARKET_PREFIX = "KRW-"
MARKET_PATTERN = re.compile(r"^KRW-[A-Z0-9]{1,15}$")
"""tickers.ticker is varchar(20)."""
MAX_BLACKLIST = 500
"""Entries a blacklist (the event's or BLACKLIST's) may hold, counted before anything else is done."""
SHOWN_CHARS = 60
"""A value from the event appears in an error as a repr of at most this length."""
MAX_SHOWN = 3
"""Bad entries named in an error; the rest are counted."""
REFRESH_INTERVAL_HOURS = 24
STATE_NAME = "krw-markets"
ADVISORY_LOCK_KEY = 0x5343414E  # "SCAN": two overlapping runs apply their changes one after the other

STATE_BUDGET_MS = 10_000
FETCH_BUDGET_MS = 45_000
"""UpbitClient: up to 4 attempts (10 s read timeout each), 3.5 s of backoff; waits stop at the deadline."""
SYNC_BUDGET_MS = 20_000
WORST_CASE_SECONDS = 90
"""State read + market list + one transaction; the template's Timeout (120 s) covers it."""


class InvalidEvent(ValueError):
    """The event cannot be processed; the caller gets a clear error result."""


def _shown(value: Any) -> str:
    """A short repr of a value from the event or BLACKLIST for an error (never the whole of a huge input)."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = SHOWN_CHARS
    return shortener.repr(value)


class Request:
    __slots__ = ("blacklist", "force")

    def __init__(self, force: bool, blacklist: tuple[str, ...]) -> None:
        self.force = force
        self.blacklist = blacklist


def parse_event(event: dict[str, Any]) -> Request:
    """{"force": bool, "blacklist": [...]}; other fields (a schedule's event) are ignored."""
    force = event.get("force", False)
    if not isinstance(force, bool):
        raise InvalidEvent(f"'force' must be true or false, not {_shown(force)}")
    if "blacklist" in event:
        field, blacklist = "'blacklist'", event["blacklist"]
        if not isinstance(blacklist, list):
            raise InvalidEvent(f'{field} must be a list of market codes such as "KRW-BTC"')
    else:
        configured = os.environ.get(BLACKLIST_ENV)
        field = BLACKLIST_ENV if configured is not None else "the default blacklist"
        blacklist = configured.split(",") if configured is not None else list(DEFAULT_BLACKLIST)
    if len(blacklist) > MAX_BLACKLIST:
        raise InvalidEvent(f"{field} holds {len(blacklist)} entries, at most {MAX_BLACKLIST} are allowed")
    if not all(isinstance(item, str) for item in blacklist):
        raise InvalidEvent(f'{field} must be a list of market codes such as "KRW-BTC"')
    blacklist = sorted({item.strip().upper() for item in blacklist if item.strip()})
    bad = [item for item in blacklist if not MARKET_PATTERN.match(item)]
    if bad:
        shown = ", ".join(_shown(item) for item in bad[:MAX_SHOWN])
        if len(bad) > MAX_SHOWN:
            shown += f" and {len(bad) - MAX_SHOWN} more"
        raise InvalidEvent(f"{field} holds entries that are not KRW market codes: {shown}")
    return Request(force=force, blacklist=tuple(blacklist))


# --- steps ---------------------------------------------------------------------------------------


def check_freshness(run: RunContext) -> dict[str, Any]:
    """When the last scan was, and whether this run should scan."""
    from .db import get_database

    def read(cursor: Any) -> Any:
        cursor.execute(
            "SELECT last_scan_at, extract(epoch FROM now() - last_scan_at) / 3600"
            " FROM scanner_state WHERE name = %s",
            (STATE_NAME,),
        )
        return cursor.fetchone()

    row = get_database(run.clients).run_transaction(read)
    last_scan_at, age_hours = (row[0].isoformat(), round(float(row[1]), 2)) if row else (None, None)
    due = age_hours is None or age_hours >= REFRESH_INTERVAL_HOURS
    return {
        "last_scan_at": last_scan_at,
        "age_hours": age_hours,
        "due": due or run.request.force,
        "forced": run.request.force and not due,
    }


def fetch_markets(run: RunContext) -> dict[str, Any]:
    """Upbit's KRW market codes (requests only; retried on 429, 5xx, timeouts, bad JSON)."""
    from .upbit import UpbitClient, UpbitError

    state = run.results["check_freshness"]
    if not state["due"]:
        raise SkipStep(
            f"refreshed {state['age_hours']} h ago (within {REFRESH_INTERVAL_HOURS} h);"
            ' send {"force": true} to scan anyway'
        )
    markets = UpbitClient(sleep=run.deadline.sleep).markets()
    codes = sorted(
        {
            market["market"]
            for market in markets
            if isinstance(market, dict)
            and isinstance(market.get("market"), str)
            and market["market"].startswith(MARKET_PREFIX)
        }
    )
    malformed = [code for code in codes if not MARKET_PATTERN.match(code)]
    if malformed:
        raise UpbitError(f"market list: unexpected market codes {', '.join(malformed[:5])}")
    if not codes:
        # An empty list would deactivate every ticker: treat it as a failed answer instead.
        raise UpbitError("market list: no KRW markets in Upbit's answer")
    run.metrics.add("KrwMarkets", len(codes))
    return {"count": len(codes), "markets": codes}


def sync_tickers(run: RunContext) -> dict[str, Any]:
    """Apply the market list to tickers in one transaction, and record the scan.

    The counts are of this run's changes: ``inserted`` (new markets, blacklisted ones
    inserted inactive), ``reactivated``, ``deactivated`` (delisted), ``blacklisted``
    (made or inserted inactive by the blacklist), and ``total_active`` afterwards.
    """
    from .db import get_database

    if "fetch_markets" not in run.results:
        raise SkipStep("no market list to apply")
    listed = run.results["fetch_markets"]["markets"]
    blacklist = list(run.request.blacklist)
    wanted = [code for code in listed if code not in run.request.blacklist]

    def apply(cursor: Any) -> dict[str, Any]:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
        cursor.execute(
            "INSERT INTO tickers (ticker, is_active)"
            " SELECT code, NOT (code = ANY(%(blacklist)s)) FROM unnest(%(listed)s::text[]) AS code"
            " ON CONFLICT (ticker) DO NOTHING RETURNING ticker",
            {"listed": listed, "blacklist": blacklist},
        )
        inserted = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "UPDATE tickers SET is_active = true, updated_at = now()"
            " WHERE ticker = ANY(%(wanted)s) AND is_active IS NOT TRUE RETURNING ticker",
            {"wanted": wanted},
        )
        reactivated = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "UPDATE tickers SET is_active = false, updated_at = now()"
            " WHERE ticker = ANY(%(blacklist)s) AND is_active IS NOT FALSE RETURNING ticker",
            {"blacklist": blacklist},
        )
        newly_hidden = [code for code in inserted if code in run.request.blacklist]
        blacklisted = sorted([row[0] for row in cursor.fetchall()] + newly_hidden)
        cursor.execute(
            "UPDATE tickers SET is_active = false, updated_at = now()"
            " WHERE NOT (ticker = ANY(%(listed)s)) AND is_active IS NOT FALSE RETURNING ticker",
            {"listed": listed},
        )
        deactivated = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "INSERT INTO scanner_state (name, last_scan_at) VALUES (%s, now())"
            " ON CONFLICT (name) DO UPDATE SET last_scan_at = EXCLUDED.last_scan_at",
            (STATE_NAME,),
        )
        cursor.execute("SELECT count(*) FROM tickers WHERE is_active")
        (total_active,) = cursor.fetchone()
        return {
            "inserted": len(inserted),
            "reactivated": len(reactivated),
            "deactivated": len(deactivated),
            "blacklisted": len(blacklisted),
            "total_active": total_active,
            "changes": {
                "inserted": inserted,
                "reactivated": reactivated,
                "deactivated": deactivated,
                "blacklisted": blacklisted,
            },
        }

    counts = get_database(run.clients).run_transaction(apply)
    for name, metric in (
        ("inserted", "TickersInserted"),
        ("reactivated", "TickersReactivated"),
        ("deactivated", "TickersDeactivated"),
        ("blacklisted", "TickersBlacklisted"),
        ("total_active", "ActiveTickers"),
    ):
        run.metrics.add(metric, counts[name])
    logger.info("tickers synchronised", extra={key: counts[key] for key in counts if key != "changes"})
    return counts


def build_steps(request: Request) -> list[Step]:
    return [
        Step("check_freshness", check_freshness, budget_ms=STATE_BUDGET_MS),
        Step("fetch_markets", fetch_markets, budget_ms=FETCH_BUDGET_MS),
        Step("sync_tickers", sync_tickers, budget_ms=SYNC_BUDGET_MS),
    ]
