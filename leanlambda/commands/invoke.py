"""`leanlambda invoke`: run the function as Lambda would and print its REPORT lines, errors and cost."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leanlambda.emulator.report import cost_line, end_line, report_line, start_line
from leanlambda.emulator.runner import RunSpec
from leanlambda.emulator.runner import run as run_function
from leanlambda.errors import UsageError
from leanlambda.function import load_function
from leanlambda.limits import MEMORY_MAX_MB, MEMORY_MIN_MB, TIMEOUT_MAX_S

MAX_REPEAT = 1000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="run the function as Lambda would: AWS's runtime client, Lambda's CPU share, REPORT lines",
        description=(
            "Run FUNCTION_DIR's handler under awslambdaric (AWS's runtime client for Python) in a fresh "
            "process of the runtime's Python when it is on this machine (else the toolkit's; the run says "
            "which), talking to a Lambda Runtime API served on a loopback port. The path holds only src/, "
            "the given layers and the packages Lambda's Python runtime provides (boto3 and its "
            "dependencies). INIT runs on a full CPU; from the first event on, the process is held to "
            "memory / 1769 MB of one CPU through a cgroup quota where the machine allows it (root; else one "
            "line says 'CPU not throttled'). Several --event (or --repeat) run in the same process: one "
            "cold, then warm invocations. The timeout kills the process at the deadline; passing "
            "MemorySize ends it as out of memory. The function's logs, START/END/REPORT lines and an "
            "estimated cost go to stderr; each invocation's result, or Lambda's error document "
            "(errorMessage, errorType, requestId, stackTrace), to stdout, one line each. Exits 1 when the "
            "handler raised, timed out, ran out of memory or returned a result whose 'ok' is false; 0 "
            "otherwise; 2 on usage errors."
        ),
    )
    parser.add_argument("function_dir", metavar="FUNCTION_DIR", help="a generated function's folder")
    parser.add_argument(
        "--event",
        metavar="FILE",
        type=Path,
        action="append",
        default=[],
        help="JSON event (default: {}); repeat for several invocations in one process",
    )
    parser.add_argument(
        "--repeat",
        metavar="N",
        type=int,
        default=1,
        help="send the event(s) N times: the first invocation is cold, the rest warm (default: 1)",
    )
    parser.add_argument(
        "--layer",
        metavar="DIR_OR_ZIP",
        type=Path,
        action="append",
        default=[],
        help="a layer folder or zip whose python/ goes on the path (repeatable)",
    )
    parser.add_argument("--memory", metavar="MB", type=int, help="memory size (default: the template's)")
    parser.add_argument(
        "--timeout", metavar="S", type=float, help="timeout in seconds (default: the template's)"
    )
    parser.add_argument(
        "--env",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="extra environment variable for the function (repeatable)",
    )
    parser.add_argument(
        "--no-throttle",
        action="store_true",
        help="leave the invoke phase on a full CPU (the default holds it to Lambda's share of one CPU)",
    )
    parser.add_argument(
        "--moto",
        action="store_true",
        help="point boto3 at a throwaway moto server (fake credentials) for this run",
    )
    parser.set_defaults(func=run)


def parse_env(pairs: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not key.replace("_", "").isalnum():
            raise UsageError(f"--env expects KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def read_event(path: Path | None) -> Any:
    if path is None:
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no such event file: {path}") from None
    except (OSError, ValueError) as error:
        raise UsageError(f"event {path} is not JSON: {str(error).splitlines()[0]}") from None


def check_layers(layers: list[Path]) -> None:
    for layer in layers:
        if not layer.exists():
            raise UsageError(f"no such layer: {layer}")


def run(args: argparse.Namespace) -> int:
    if args.memory is not None and not MEMORY_MIN_MB <= args.memory <= MEMORY_MAX_MB:
        raise UsageError(f"--memory must be {MEMORY_MIN_MB}-{MEMORY_MAX_MB} MB")
    if args.timeout is not None and not 0 < args.timeout <= TIMEOUT_MAX_S:
        raise UsageError(f"--timeout must be more than 0 and at most {TIMEOUT_MAX_S} s")
    if not 1 <= args.repeat <= MAX_REPEAT:
        raise UsageError(f"--repeat must be 1-{MAX_REPEAT}")
    function = load_function(args.function_dir)
    events = [read_event(path) for path in args.event] or [{}]
    env = parse_env(args.env)
    check_layers(args.layer)
    spec = RunSpec(
        function=function,
        events=events * args.repeat,
        layers=args.layer,
        memory_mb=args.memory,
        timeout_s=args.timeout,
        env=env,
        throttle=not args.no_throttle,
    )
    with _moto(args.moto) as moto_env:
        spec.env = {**moto_env, **env}
        first = run_function(spec)
    err = sys.stderr
    err.write(f"{first.python}\nRuntime client: {first.client}\n{first.cpu}\n")
    failed = False
    for outcome in first.invocations:
        err.write(start_line(outcome) + "\n")
        if outcome.output:
            logs = outcome.output.replace("\r", "\n")  # awslambdaric's multi-line records
            err.write(logs if logs.endswith("\n") else logs + "\n")
        err.write(end_line(outcome) + "\n")
        err.write(report_line(outcome) + "\n")
        if outcome.ok:
            print(outcome.result_json, flush=True)
            failed = failed or outcome.answered_not_ok
        else:
            print(json.dumps(outcome.error), flush=True)
            failed = True
    err.write(cost_line(first, function.architecture) + "\n")
    return 1 if failed else 0


@contextlib.contextmanager
def _moto(enabled: bool) -> Iterator[dict[str, str]]:
    if not enabled:
        yield {}
        return
    from leanlambda.emulator.motoserver import moto_server

    with moto_server() as env:
        yield env
