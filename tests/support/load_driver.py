"""One Lambda invocation of a Makenaide example in a process of its own (tests/test_reliability_load.py).

    python tests/support/load_driver.py init --database-url URL
        the db-initializer's handler, once: the example's own schema in that database
    python tests/support/load_driver.py collect --database-url URL --tickers KRW-BTC,KRW-ETH [--wait-for-go]
        the data collector's handler for those tickers, Upbit answered from the recorded candles

Each run starts moto (``mock_aws``), puts the database's credentials in a Secrets Manager secret
(DB_SECRET_ARN, as in production), and prints the handler's result as the last line of stdout,
``RESULT <json>`` (the EMF metric lines come before it; a failed run's result is taken from the
PipelineFailed it raises, and the driver exits 1). ``--wait-for-go`` prints ``READY`` once
everything is imported and set up, then waits for a line on stdin, so that several processes
invoke their handlers at the same moment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support import makenaide as mk  # noqa: E402 - after the repository is on sys.path

TIMEOUTS_MS = {"init": 120_000, "collect": 600_000}  # the examples' Timeout


class Context:
    """The attributes of Lambda's context object that the examples use."""

    def __init__(self, function_name: str, timeout_ms: int) -> None:
        self.function_name = function_name
        self.aws_request_id = f"load-{os.getpid()}"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:{mk.REGION}:123456789012:function:{function_name}"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _environment() -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_LAMBDA_FUNCTION_NAME"):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=mk.REGION,
        AWS_REGION=mk.REGION,
    )


def invoke(handler, event: dict, context: Context) -> dict:
    """The handler's result; a failed run raises PipelineFailed, whose result is printed the same way."""
    try:
        return handler.lambda_handler(event, context)
    except handler.PipelineFailed as failed:
        return failed.result


def init(url: str) -> dict:
    sys.path.insert(0, str(mk.src("makenaide-db-initializer")))
    from makenaide_db_initializer import handler

    return invoke(handler, {}, Context("makenaide-db-initializer", TIMEOUTS_MS["init"]))


def collect(url: str, tickers: list[str], wait_for_go: bool) -> dict:
    import responses

    sys.path.insert(0, str(mk.src("makenaide-data-collector")))
    import pyupbit  # noqa: F401 - imported before the start signal, so the handlers start writing together
    from makenaide_data_collector import handler, upbit

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mk.CandleServer(mock, upbit.API_URL)
        if wait_for_go:
            print("READY", flush=True)
            sys.stdin.readline()
        context = Context("makenaide-data-collector", TIMEOUTS_MS["collect"])
        return invoke(handler, {"tickers": tickers}, context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["init", "collect"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--tickers", default="")
    parser.add_argument("--wait-for-go", action="store_true")
    args = parser.parse_args(argv)
    _environment()
    from moto import mock_aws

    with mock_aws():
        os.environ["DB_SECRET_ARN"] = mk.create_db_secret(args.database_url)
        if args.command == "init":
            result = init(args.database_url)
        else:
            tickers = [ticker for ticker in args.tickers.split(",") if ticker]
            result = collect(args.database_url, tickers, args.wait_for_go)
    print("RESULT " + json.dumps(result), flush=True)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
