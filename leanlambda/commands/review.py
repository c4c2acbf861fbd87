"""`leanlambda review`: score a function against the optimization checklist (docs/checklist.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from leanlambda.errors import UsageError
from leanlambda.review import CHECK_IDS, PROFILES, ReviewOptions, find_functions, run_review
from leanlambda.review.render import FORMATS, render

DEFAULT_COLD_START_RUNS = 7  # an odd count, so the median is one measured run


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "review",
        help="score a function against the optimization checklist",
        description=(
            "Score the Python Lambda function(s) in FUNCTION_DIR against the checklist: static checks of "
            "the code (AST) and the SAM template, cfn-lint with the serverless rules, a measured cold start, "
            "Max Memory Used of an invoke against moto (with --event, else the first events/*.json) and the "
            "deterministic zip's size, against the function's budgets (pyproject.toml "
            "[tool.leanlambda.review], review.toml). Finds functions by template.yaml (CodeUri, Handler, "
            "Globals) or a single app.py/lambda_function.py. Profile: leanlambda for a folder generated "
            "by this template (.cookiecutter.json), else general. Exits 0 when nothing fails, 1 when a "
            f"check fails, 2 on usage errors. Check ids: {', '.join(CHECK_IDS)}."
        ),
    )
    parser.add_argument("function_dir", metavar="FUNCTION_DIR", help="a function's (or SAM project's) folder")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="text (terminal), json (tools), markdown (PR comment) or sarif (code scanning); default text",
    )
    parser.add_argument("--function", metavar="LOGICAL_ID", help="review only this function of the template")
    parser.add_argument(
        "--profile", choices=PROFILES, help="general or leanlambda (default: leanlambda if generated here)"
    )
    parser.add_argument(
        "--event",
        metavar="FILE",
        type=Path,
        help="event for the memory check (default: the first FUNCTION_DIR/events/*.json)",
    )
    parser.add_argument(
        "--layer",
        metavar="DIR_OR_ZIP",
        type=Path,
        action="append",
        default=[],
        help="the function's layer, put on the path for cold-start and memory (repeatable)",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not install requirements.txt for the measured checks (skipped if they need it)",
    )
    parser.add_argument(
        "--cold-start-runs",
        metavar="N",
        type=int,
        default=DEFAULT_COLD_START_RUNS,
        help=f"fresh interpreters to time for cold-start (default {DEFAULT_COLD_START_RUNS})",
    )
    parser.add_argument(
        "--only", metavar="ID", action="append", default=[], help="run only these check ids (repeatable)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.cold_start_runs < 1:
        raise UsageError("--cold-start-runs must be at least 1")
    unknown = [check_id for check_id in args.only if check_id not in CHECK_IDS]
    if unknown:
        raise UsageError(f"--only: unknown check id {unknown[0]!r}")
    if args.event is not None and not args.event.is_file():
        raise UsageError(f"no such event file: {args.event}")
    for layer in args.layer:
        if not layer.exists():
            raise UsageError(f"no such layer: {layer}")
    functions = find_functions(args.function_dir, args.function, args.profile)
    options = ReviewOptions(
        event=args.event,
        layers=args.layer,
        cold_start_runs=args.cold_start_runs,
        install_requirements=not args.no_install,
    )
    reviews = [run_review(function, options, tuple(args.only) or None) for function in functions]
    print(render(reviews, args.format))
    return 0 if all(review.passed for review in reviews) else 1
