"""Errors the CLI turns into a one-line message and an exit code."""


class UsageError(Exception):
    """Bad arguments or input the user can fix: one line on stderr, exit 2."""

    exit_code = 2


class CheckFailed(Exception):
    """The command ran but its result is over a limit: one line on stderr, exit 1."""

    exit_code = 1
