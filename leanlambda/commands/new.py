"""`leanlambda new`: generate a function folder from the bundled Cookiecutter template."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from leanlambda.errors import UsageError
from leanlambda.function import ANSWERS_FILE
from leanlambda.template_contract import JINJA_MARKERS, pre_gen_hook
from leanlambda.template_source import template_context, template_dir


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "new",
        help="generate a new function from the bundled template",
        description=(
            "Run the bundled Cookiecutter template: answer its prompts (or take the defaults with "
            "--no-input) and write the function folder under OUTPUT_DIR. --set KEY=VALUE answers a prompt "
            "ahead of time, e.g. --set function_name=orders-sync --set use_postgres=true."
        ),
    )
    parser.add_argument(
        "output_dir",
        metavar="OUTPUT_DIR",
        nargs="?",
        default=".",
        type=Path,
        help="where the function folder is written (default: the current folder)",
    )
    parser.add_argument(
        "--no-input", action="store_true", help="do not prompt; use defaults and --set values"
    )
    parser.add_argument(
        "--from",
        metavar="EXAMPLE_DIR",
        dest="from_example",
        type=Path,
        help="copy a function made from this template (e.g. examples/makenaide-scanner) under the"
        " --set answers: its answers plus yours, its own files renamed; a git repository linked for cruft",
    )
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        dest="values",
        help="answer a prompt (repeatable)",
    )
    parser.set_defaults(func=run)


def _coerce(default: Any, value: str) -> Any:
    """Cookiecutter keeps a boolean prompt boolean only when the answer is a bool."""
    if isinstance(default, bool):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "y", "on"):
            return True
        if lowered in ("0", "false", "no", "n", "off"):
            return False
        raise UsageError(f"--set expects true or false for this prompt, got {value!r}")
    return value


def refuse_jinja(where: str, value: str) -> None:
    """One line, before cookiecutter sees the answer, when it holds Jinja syntax."""
    marker = next((marker for marker in JINJA_MARKERS if marker in value), None)
    if marker is not None:
        raise UsageError(
            f"{where}: {marker!r} is Jinja syntax, which cookiecutter would run as a template; "
            "answers may not contain {{, {% or {#"
        )


def check_user_defaults() -> None:
    """The ``default_context`` of the user's cookiecutter config is rendered the same way."""
    from cookiecutter.config import get_user_config
    from cookiecutter.exceptions import CookiecutterException

    try:
        defaults = get_user_config().get("default_context") or {}
    except (CookiecutterException, OSError, ValueError):
        return  # cookiecutter itself reports an unreadable config
    for key, value in defaults.items():
        if isinstance(value, str):
            refuse_jinja(f"cookiecutter config default_context {key}", value)


def parse_values(pairs: list[str], context: dict[str, Any]) -> dict[str, Any]:
    known = {key for key in context if not key.startswith("_")}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE, got {pair!r}")
        if key not in known:
            raise UsageError(f"--set: unknown prompt {key!r} (known: {', '.join(sorted(known))})")
        refuse_jinja(f"--set {key}", value)
        default = context[key]
        if isinstance(default, list) and value not in [str(choice) for choice in default]:
            choices = ", ".join(str(choice) for choice in default)
            raise UsageError(f"--set {key}: {value!r} is not one of {choices}")
        values[key] = _coerce(default, value)
    return values


REJECTED = "the template rejected the answers (see the message above); nothing written"


def check_answers(values: dict[str, Any]) -> None:
    """Run the template's own validators on --set answers first (those its FIELD_VALIDATORS judge alone).

    Cookiecutter creates the output folder (and a name's parent folders, for an answer like
    ``a/b``) before its hook runs, and removes only the last: checking here leaves nothing behind.
    """
    hook = pre_gen_hook()
    for field, validator in hook.FIELD_VALIDATORS.items():
        if field in values:
            try:
                validator(values[field])
            except hook.InvalidAnswer as error:
                sys.stderr.write(error.line() + "\n")  # the hook's own words, as a bake would print them
                raise UsageError(REJECTED) from None


def run(args: argparse.Namespace) -> int:
    from cookiecutter.main import cookiecutter

    source = template_dir()
    context = template_context(source)
    values = parse_values(args.values, context)
    check_answers(values)
    check_user_defaults()
    if args.from_example is not None:
        from leanlambda.example_copy import copy_example

        return copy_example(args.from_example, values, args.output_dir, source)
    output_dir: Path = args.output_dir
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"not a folder: {output_dir}")
    first_made = _first_missing(output_dir.resolve())
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _generate(cookiecutter, source, args.no_input, values, output_dir)
    except UsageError:
        if first_made is not None and not any(path.is_file() for path in first_made.rglob("*")):
            shutil.rmtree(first_made, ignore_errors=True)
        raise


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet: what a failed run must remove."""
    missing = None
    while not path.exists():
        missing, path = path, path.parent
    return missing


def _generate(
    cookiecutter: Any, source: Path, no_input: bool, values: dict[str, Any], output_dir: Path
) -> int:
    import logging

    # Cookiecutter logs a traceback for a rejected answer; the hook has already said why.
    logging.getLogger("cookiecutter").setLevel(logging.CRITICAL)
    from cookiecutter.exceptions import CookiecutterException, FailedHookException, OutputDirExistsException

    try:
        created = cookiecutter(
            str(source),
            no_input=no_input,
            extra_context=values,
            output_dir=str(output_dir),
            accept_hooks=True,
        )
    except FailedHookException:
        raise UsageError(REJECTED) from None
    except OutputDirExistsException as error:
        raise UsageError(f"already exists: {str(error).splitlines()[0]}") from None
    except CookiecutterException as error:
        raise UsageError(str(error).splitlines()[0] if str(error) else type(error).__name__) from None
    print(created)
    answers = Path(created) / ANSWERS_FILE
    if answers.is_file():
        name = json.loads(answers.read_text(encoding="utf-8")).get("function_name", Path(created).name)
        print(f"next: leanlambda review {created}   (function {name})")
    return 0
