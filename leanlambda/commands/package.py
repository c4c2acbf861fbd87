"""`leanlambda package`: the function's deployment zip, reproducible and measured against its budget."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leanlambda.errors import CheckFailed, UsageError
from leanlambda.function import load_function
from leanlambda.packaging import PACKAGE_BUDGET_KB, build_package


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "package",
        help="build the function's deterministic deployment zip",
        description=(
            "Zip the contents of FUNCTION_DIR/src (no tests, no bytecode; docstrings, comments, "
            "unread annotations and the spaces the parser ignores stripped, line numbers kept) with "
            "sorted entries, fixed timestamps and permissions, so the "
            "same source always gives the same bytes. Prints the path, size and sha256; exits 1 when the "
            "zip is larger than --max-kb."
        ),
    )
    parser.add_argument("function_dir", metavar="FUNCTION_DIR", help="a generated function's folder")
    parser.add_argument(
        "--out", metavar="DIR", type=Path, help="folder for <function_name>.zip (default: FUNCTION_DIR/build)"
    )
    parser.add_argument(
        "--max-kb",
        metavar="N",
        type=float,
        default=PACKAGE_BUDGET_KB,
        help=f"size budget in KB (default: {PACKAGE_BUDGET_KB})",
    )
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help=(
            "also ship bytecode compiled by the function's runtime Python (needs that interpreter here): "
            "Lambda then skips compiling the source at every cold start, for a zip about 4x larger"
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.max_kb <= 0:
        raise UsageError("--max-kb must be positive")
    function = load_function(args.function_dir)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out must be a folder: {args.out}")
    out = args.out / f"{function.name}.zip" if args.out is not None else None
    result = build_package(function, out, bytecode=args.bytecode)
    for note in result.notes:
        print(note, file=sys.stderr)
    print(result.path)
    print(f"size: {result.size} bytes ({result.kb:.2f} KB, budget {args.max_kb:g} KB)")
    print(f"sha256: {result.sha256}")
    if result.kb > args.max_kb:
        raise CheckFailed(f"package is {result.kb:.2f} KB, over the {args.max_kb:g} KB budget")
    return 0
