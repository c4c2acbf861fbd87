"""Concurrent data-collector runs against one real PostgreSQL database (``make reliability``).

PROCESSES subprocesses (tests/support/load_driver.py), each a cold container: moto, the database's
secret, Upbit answered from the recorded candles. All of them import and set up first, then invoke
the collector's handler at the same moment for the same tickers (each in its own order), writing the
same rows of ``ohlcv`` / ``ohlcv_4h`` with ``INSERT ... ON CONFLICT DO UPDATE``. The schema is the
db-initializer's own (its handler run once by the driver).

Held: every run is ok and collects every ticker, no result or log mentions a deadlock and PostgreSQL
counted none, no (ticker, date) is stored twice, and the final tables equal those of a single run
(values compared at float4 precision: a run that finds another's rows recomputes the indicators of
its window from the stored, rounded, history).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.reliability

DRIVER = Path(__file__).resolve().parent / "support" / "load_driver.py"
PROCESSES = 8
TICKERS = ["KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-ADA", "KRW-DOGE"]
DAILY_FULL, FOUR_HOUR = 450, 200
READY_TIMEOUT_S = 600  # 8 interpreters importing pandas, moto and boto3 on a shared 2-core machine
RUN_TIMEOUT_S = 600
FLOAT4_REL = 1e-5


def _env() -> dict[str, str]:
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "PYTEST_")) and key != "DATABASE_URL"
    }


def _command(*args: str) -> list[str]:
    return [sys.executable, str(DRIVER), *args]


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, f"no result line in the driver's output: {stdout[-1500:]}"
    return json.loads(lines[-1][len("RESULT ") :])


def _run(*args: str) -> dict:
    done = subprocess.run(_command(*args), env=_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert done.returncode == 0, f"{args[0]}: {done.stdout[-1500:]}\n{done.stderr[-3000:]}"
    return _result(done.stdout)


class Driver:
    """One collector process, its output read by a thread so that none of them blocks on a full pipe."""

    def __init__(self, url: str, tickers: list[str]) -> None:
        self.process = subprocess.Popen(
            _command("collect", "--database-url", url, "--tickers", ",".join(tickers), "--wait-for-go"),
            env=_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.ready = threading.Event()
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            if line.strip() == "READY":
                self.ready.set()
        self.ready.set()  # the process ended (before or after READY)

    def go(self) -> None:
        self.process.stdin.write("go\n")
        self.process.stdin.close()

    def finish(self) -> tuple[int, str, str]:
        code = self.process.wait(timeout=RUN_TIMEOUT_S)
        for reader in self._readers:
            reader.join(timeout=30)
        return code, "".join(self.stdout), "".join(self.stderr)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def _rows(url: str, table: str) -> list[tuple]:
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM {table} ORDER BY ticker, date")
            return cursor.fetchall()
    finally:
        connection.close()


def _scalar(url: str, sql: str, params=()):
    import psycopg2

    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    finally:
        connection.close()


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=FLOAT4_REL, abs_tol=1e-9)
    return a == b


def _collected(result: dict) -> dict:
    return next(step for step in result["steps"] if step["name"] == "collect")["result"]


def test_concurrent_collector_runs_write_each_row_once_without_deadlock(session_postgres, record_property):
    suffix = f"{os.getpid()}_{time.monotonic_ns() % 10**6}"
    single_url = session_postgres.database(f"load_single_{suffix}")
    shared_url = session_postgres.database(f"load_shared_{suffix}")
    for url in (single_url, shared_url):
        created = _run("init", "--database-url", url)
        assert created["ok"] is True, json.dumps(created)[:1500]
    single = _run("collect", "--database-url", single_url, "--tickers", ",".join(TICKERS))
    assert _collected(single)["collected"] == len(TICKERS), json.dumps(single)[:1500]

    drivers: list[Driver] = []
    try:
        for index in range(PROCESSES):
            order = TICKERS[index % len(TICKERS) :] + TICKERS[: index % len(TICKERS)]
            drivers.append(Driver(shared_url, order if index % 2 == 0 else order[::-1]))
        give_up_at = time.monotonic() + READY_TIMEOUT_S
        for driver in drivers:
            assert driver.ready.wait(max(0.0, give_up_at - time.monotonic())), "a driver never got ready"
        assert all(driver.process.poll() is None for driver in drivers), "a driver ended before the start"
        for driver in drivers:
            driver.go()
        outcomes = [driver.finish() for driver in drivers]
    finally:
        for driver in drivers:
            driver.kill()

    full_loads = 0
    for code, stdout, stderr in outcomes:
        assert "deadlock" not in (stdout + stderr).lower(), stderr[-3000:]
        assert code == 0, f"{stdout[-1500:]}\n{stderr[-3000:]}"
        result = _result(stdout)
        found = _collected(result)
        assert result["ok"] is True and found["failed"] == [] and found["deferred"] == [], json.dumps(found)[
            :1500
        ]
        assert sorted(item["ticker"] for item in found["tickers"]) == sorted(TICKERS)
        full_loads += sum(1 for item in found["tickers"] if item["mode"] == "full")
    # Evidence of overlap, not asserted (timing): above len(TICKERS), runs loaded a ticker at the same time.
    record_property("full_loads", full_loads)
    print(f"{PROCESSES} runs x {len(TICKERS)} tickers: {full_loads} full loads (sequential: {len(TICKERS)})")
    (deadlocks,) = _scalar(
        shared_url, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    assert deadlocks == 0

    for table, per_ticker in (("ohlcv", DAILY_FULL), ("ohlcv_4h", FOUR_HOUR)):
        rows, distinct = _scalar(shared_url, f"SELECT count(*), count(DISTINCT (ticker, date)) FROM {table}")
        assert rows == distinct == per_ticker * len(TICKERS), (table, rows, distinct)
        expected, found = _rows(single_url, table), _rows(shared_url, table)
        assert [row[:2] for row in found] == [row[:2] for row in expected], f"{table}: other keys"
        differing = [
            (new[:2], old, new)
            for old, new in zip(expected, found, strict=True)
            if not all(_same(a, b) for a, b in zip(old, new, strict=True))
        ]
        assert not differing, (
            f"{table}: {len(differing)} rows differ from a single run's, e.g. {differing[:2]}"
        )
