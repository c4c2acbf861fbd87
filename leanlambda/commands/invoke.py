"""`leanlambda invoke`: run the function once as Lambda would and print its REPORT line and cost."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from leanlambda.emulator.report import cost_line, end_line, report_line, start_line
from leanlambda.emulator.runner import RunSpec
from leanlambda.emulator.runner import run as run_function
from leanlambda.errors import UsageError
from leanlambda.function import load_function
from leanlambda.limits import MEMORY_MAX_MB, MEMORY_MIN_MB, TIMEOUT_MAX_S


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "invoke",
        help="run the function once in a fresh process, as Lambda would",
        description=(
            "Run FUNCTION_DIR's handler in a fresh interpreter whose path holds only src/, the given "
            "layers and the packages Lambda's Python runtime provides (boto3 and its dependencies). "
            "Times the init phase and the invocation, measures Max Memory Used, enforces the timeout and "
            "prints Lambda's REPORT line and an estimated cost. The function's logs and the REPORT line go "
            "to stderr, its JSON result to stdout. Exits 1 when the function fails or times out."
        ),
    )
    parser.add_argument("function_dir", metavar="FUNCTION_DIR", help="a generated function's folder")
    parser.add_argument("--event", metavar="FILE", type=Path, help="JSON event (default: {})")
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
    function = load_function(args.function_dir)
    event = read_event(args.event)
    env = parse_env(args.env)
    check_layers(args.layer)
    spec = RunSpec(
        function=function,
        event=event,
        layers=args.layer,
        memory_mb=args.memory,
        timeout_s=args.timeout,
        env=env,
    )
    with _moto(args.moto) as moto_env:
        spec.env = {**moto_env, **env}
        outcome = run_function(spec)
    err = sys.stderr
    err.write(start_line(outcome) + "\n")
    if outcome.output:
        err.write(outcome.output if outcome.output.endswith("\n") else outcome.output + "\n")
    err.write(end_line(outcome) + "\n")
    err.write(report_line(outcome) + "\n")
    err.write(cost_line(outcome, function.architecture) + "\n")
    if outcome.ok:
        print(outcome.result_json)
        return 0
    print(json.dumps({key: value for key, value in (outcome.error or {}).items() if key != "stackTrace"}))
    trace = (outcome.error or {}).get("stackTrace")
    if trace:
        error = outcome.error or {}
        err.write("Traceback (most recent call last):\n" + "".join(trace))
        err.write(f"{error.get('errorType')}: {error.get('errorMessage')}\n")
    return 1


@contextlib.contextmanager
def _moto(enabled: bool):
    if not enabled:
        yield {}
        return
    from leanlambda.emulator.motoserver import moto_server

    with moto_server() as env:
        yield env
