"""`leanlambda review`: score a function against the optimization checklist (DESIGN section 4)."""

from __future__ import annotations

import argparse
from pathlib import Path

from leanlambda.errors import UsageError
from leanlambda.function import load_function
from leanlambda.review import CHECK_IDS, ReviewOptions, run_review
from leanlambda.review.render import RENDERERS

DEFAULT_COLD_START_RUNS = 7  # an odd count, so the median is one measured run


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "review",
        help="score a function against the optimization checklist",
        description=(
            "Score FUNCTION_DIR against the checklist: static checks of the code (AST) and template.yaml, "
            "cfn-lint with the serverless rules, a measured cold start (median of fresh-interpreter "
            "imports), Max Memory Used of an invoke against moto (with --event, else the first "
            "events/*.json) and the deterministic zip's size. Exits 0 when nothing fails, 1 when a check "
            f"fails, 2 on usage errors. Check ids: {', '.join(CHECK_IDS)}."
        ),
    )
    parser.add_argument("function_dir", metavar="FUNCTION_DIR", help="a generated function's folder")
    parser.add_argument(
        "--format",
        choices=sorted(RENDERERS),
        default="text",
        help="text (terminal), json (tools, CI) or markdown (PR comment); default text",
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
    function = load_function(args.function_dir)
    options = ReviewOptions(event=args.event, layers=args.layer, cold_start_runs=args.cold_start_runs)
    review = run_review(function, options, tuple(args.only) or None)
    print(RENDERERS[args.format](review))
    return 0 if review.passed else 1
