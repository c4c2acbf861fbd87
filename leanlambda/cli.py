"""The `leanlambda` command: one sub-command per module in leanlambda.commands."""

from __future__ import annotations

import argparse
import sys

from leanlambda import __version__
from leanlambda.commands import invoke, layer, new, package, review
from leanlambda.errors import CheckFailed, UsageError

COMMANDS = (new, package, layer, invoke, review)
"""Each registers its sub-command; imported here (not by name at run time) so the dependency shows.
Every command's parser is built for any call, so importing them all up front costs nothing extra."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors on one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="leanlambda",
        description="Generate, package, invoke and review lean AWS Lambda functions in Python.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, CheckFailed) as error:
        sys.stderr.write(f"leanlambda {args.command}: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("leanlambda: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
