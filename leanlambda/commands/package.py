"""`leanlambda package`: the function's deployment zip, reproducible and measured against its budget."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from leanlambda.bytecode import runtime_python, source_only_note
from leanlambda.errors import CheckFailed, UsageError
from leanlambda.function import load_function
from leanlambda.limits import python_of
from leanlambda.packaging import (
    BYTECODE_BUDGET_KB,
    PACKAGE_BUDGET_KB,
    budget_kb,
    build_package,
    safe_zip_name,
    write_artifacts,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "package",
        help="build the function's deterministic deployment zip",
        description=(
            "Zip the contents of FUNCTION_DIR/src (no tests, no caches; docstrings, comments, "
            "unread annotations and the spaces the parser ignores stripped, line numbers kept) with "
            "sorted entries, fixed timestamps and permissions, so the same source always gives the same "
            "bytes. When an interpreter of the runtime's exact Python is here (e.g. a pyenv 3.13 for "
            "python3.13), the zip also holds bytecode compiled by it, so Lambda skips compiling at every "
            "cold start; otherwise one line says which interpreter would enable it. Prints the path, size "
            "and sha256; exits 1 when the zip is larger than --max-kb."
        ),
    )
    parser.add_argument("function_dir", metavar="FUNCTION_DIR", help="a generated function's folder")
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--out", metavar="DIR", type=Path, help="folder for <function_name>.zip (default: FUNCTION_DIR/build)"
    )
    output.add_argument(
        "--artifacts-dir",
        metavar="DIR",
        type=Path,
        help=(
            "write the zip's files, unzipped, into DIR (new or empty) instead: what `sam build` "
            "(BuildMethod: makefile) passes as $(ARTIFACTS_DIR)"
        ),
    )
    parser.add_argument(
        "--max-kb",
        metavar="N",
        type=float,
        help=(
            f"size budget of the zip in KB (default: {PACKAGE_BUDGET_KB} for source only, "
            f"{BYTECODE_BUDGET_KB} with bytecode, which ships every module twice)"
        ),
    )
    parser.add_argument(
        "--bytecode",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=(
            "ship bytecode compiled by the runtime's Python (default: when that interpreter is here); "
            "--bytecode fails without it, --no-bytecode ships source only"
        ),
    )
    parser.set_defaults(func=run)


def _bytecode_wanted(requested: bool | None, runtime: str) -> tuple[bool, str]:
    """Whether to compile, and the line that says which Python did it (or would)."""
    if requested is False:
        return False, "bytecode: none (--no-bytecode)"
    try:
        python = runtime_python(runtime)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if python is not None:
        return True, f"bytecode: compiled by {python} for {runtime}"
    if requested:
        version = python_of(runtime)
        raise UsageError(f"--bytecode needs Python {version} (the {runtime} runtime's); none found here")
    return False, source_only_note(runtime)


def run(args: argparse.Namespace) -> int:
    if args.max_kb is not None and args.max_kb <= 0:
        raise UsageError("--max-kb must be positive")
    function = load_function(args.function_dir)
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"--out must be a folder: {args.out}")
    bytecode, note = _bytecode_wanted(args.bytecode, function.runtime)
    max_kb = args.max_kb if args.max_kb is not None else budget_kb(bytecode)
    if args.artifacts_dir is not None:
        result = write_artifacts(function, args.artifacts_dir, bytecode=bytecode)
    else:
        out = args.out / safe_zip_name(function.name) if args.out is not None else None
        result = build_package(function, out, bytecode=bytecode)
    for line in result.notes:
        print(line, file=sys.stderr)
    print(result.path)
    print(f"size: {result.size} bytes ({result.kb:.2f} KB, budget {max_kb:g} KB)")
    print(f"sha256: {result.sha256}")
    print(note)
    if result.kb > max_kb:
        raise CheckFailed(f"package is {result.kb:.2f} KB, over the {max_kb:g} KB budget")
    return 0
