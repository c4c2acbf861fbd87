"""`leanlambda new --from EXAMPLE_DIR`: a new function made from an example, under a new name.

An example is a function generated from this template (its answers in ``.cookiecutter.json``)
and then given steps of its own. Copying its folder keeps the old module name everywhere;
re-answering the template alone loses the steps. So the copy is made in three bakes' worth of
work: the template is baked with the example's answers (the *base*) and with those answers
plus the overrides (the *new* bake). Every file of the example is then carried over with the
old function and module names replaced by the new ones, and merged three ways with the new
bake: what the example changed relative to the base is kept, what the overrides changed in
the template's output is taken. An example file the template does not make (an event, a
recorded reply, a module of its own) is carried over renamed. Edits that overlap a line the
overrides change are a conflict: the copy fails naming the file, and nothing is written.

The result is linked to the template for cruft (``.cruft.json`` at the template's current
commit), is a git repository with one commit, and ignores what tests and tools write, so
``cruft check`` and ``cruft update`` work in it at once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from leanlambda.errors import UsageError
from leanlambda.function import ANSWERS_FILE
from leanlambda.template_contract import JINJA_MARKERS

CRUFT_FILE = ".cruft.json"
GITIGNORE = "__pycache__/\n*.py[co]\n.pytest_cache/\n.ruff_cache/\n.mypy_cache/\n.venv/\n.aws-sam/\nbuild/\n"
"""What tests and tools write into a function folder: a clean tree for `cruft update` after `make test`."""
IGNORED_PARTS = frozenset(
    {
        ".git",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".mypy_cache",
        ".hypothesis",
        ".venv",
        ".aws-sam",
        "build",
        "dist",
    }
)
IGNORED_SUFFIXES = (".pyc", ".pyo")
COMMIT_IDENTITY = ("leanlambda", "leanlambda@localhost")
"""Author of the first commit when git has no user configured."""
GIT_TIMEOUT_S = 120


def copy_example(example: Path, overrides: dict[str, Any], output_dir: Path, template: Path) -> int:
    """Make OUTPUT_DIR/<function_name> from ``example``; print its path. Nothing is left on failure."""
    answers = recorded_answers(example)
    git = shutil.which("git")
    if git is None:
        raise UsageError("--from needs git (the copy is a git repository linked to the template)")
    if output_dir.exists() and not output_dir.is_dir():
        raise UsageError(f"not a folder: {output_dir}")
    created = _first_missing(output_dir.resolve())
    output_dir.mkdir(parents=True, exist_ok=True)
    try:
        target = _make(example, answers, overrides, output_dir, template, git)
    except BaseException:
        if created is not None and not any(path.is_file() for path in created.rglob("*")):
            shutil.rmtree(created, ignore_errors=True)
        raise
    print(target)
    print(f"next: cd {target} && make test lint review")
    return 0


def _first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet: what a failed copy removes."""
    missing = None
    while not path.exists():
        missing, path = path, path.parent
    return missing


def _make(
    example: Path,
    answers: dict[str, Any],
    overrides: dict[str, Any],
    output_dir: Path,
    template: Path,
    git: str,
) -> Path:
    """Bake, carry, link and commit in a staging folder; move it into place only when all went well."""
    with tempfile.TemporaryDirectory(prefix=".leanlambda-copy-", dir=output_dir) as tmp:
        work = Path(tmp)
        base = _bake(template, answers, work / "base")
        fresh = _bake(template, {**answers, **overrides}, work / "new")
        target = output_dir / fresh.name
        if target.exists():
            raise UsageError(f"already exists: {target}")
        renames = _renames(base, fresh)
        conflicts = _carry(example, base, fresh, renames, work)
        if conflicts:
            relative, problem = conflicts[0]
            more = f" (and {len(conflicts) - 1} more files)" if len(conflicts) > 1 else ""
            raise UsageError(f"cannot carry {relative} over{more}: {problem}")
        (fresh / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        if not _link(fresh, template):
            print(f"not linked for cruft: the template at {template} is not a git checkout")
        _first_commit(git, fresh, example)
        fresh.rename(target)
    return target


def recorded_answers(example: Path) -> dict[str, Any]:
    """The example's answers without cookiecutter's private ``_`` keys; refused if they hold Jinja."""
    path = example / ANSWERS_FILE
    if not example.is_dir():
        raise UsageError(f"--from: not a folder: {example}")
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--from: {example} holds no {ANSWERS_FILE} (not made from this template)") from None
    except (UnicodeDecodeError, ValueError):
        raise UsageError(f"--from: {path} is not JSON") from None
    if not isinstance(recorded, dict):
        raise UsageError(f"--from: {path} is not a JSON object")
    answers = {key: value for key, value in recorded.items() if not key.startswith("_")}
    for key, value in answers.items():
        text = value if isinstance(value, str) else json.dumps(value)  # lists and objects are rendered too
        if any(marker in text for marker in JINJA_MARKERS):
            raise UsageError(f"--from: {path}: answer {key!r} holds template syntax ({{{{, {{% or {{#)")
    return answers


def _bake(template: Path, answers: dict[str, Any], output_dir: Path) -> Path:
    import logging

    from cookiecutter.exceptions import CookiecutterException
    from cookiecutter.main import cookiecutter

    logging.getLogger("cookiecutter").setLevel(logging.CRITICAL)
    output_dir.mkdir()
    try:
        created = cookiecutter(
            str(template),
            no_input=True,
            extra_context=answers,
            output_dir=str(output_dir),
            accept_hooks=True,
            default_config={"replay_dir": str(output_dir.parent / "replay")},
        )
    except CookiecutterException as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"the template rejected the answers: {first}") from None
    return Path(created)


def _names(function_dir: Path) -> tuple[str, str]:
    answers = json.loads((function_dir / ANSWERS_FILE).read_text(encoding="utf-8"))
    return answers["function_name"], answers["__module_name"]


Renames = list[tuple[re.Pattern[str], str]]
"""Old name (a pattern matching it as a word) and the new name."""


def _renames(base: Path, fresh: Path) -> Renames:
    """Old function and module names to the new ones: whole words, or a name's start (``<name>-dlq``)."""
    pairs = [(old, new) for old, new in zip(_names(base), _names(fresh), strict=True) if old != new]
    return [(re.compile(rf"(?<![\w-]){re.escape(old)}(?!\w)"), new) for old, new in pairs]


def _rename(text: str, renames: Renames) -> str:
    for pattern, new in renames:
        text = pattern.sub(new.replace("\\", "\\\\"), text)  # a name holds no backslash; escaped anyway
    return text


def _files(root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted(root.rglob("*")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if path.is_symlink():
            raise UsageError(f"--from: {root / relative} is a symbolic link; copy only real files")
        if (
            path.is_file()
            and not (set(relative.parts) & IGNORED_PARTS)
            and not relative.name.endswith(IGNORED_SUFFIXES)
        ):
            found[str(relative)] = path
    return found


def _carry(example: Path, base: Path, fresh: Path, renames: Renames, work: Path) -> list[tuple[str, str]]:
    """Write each example file into ``fresh``, renamed and merged; the conflicts found (none: done)."""
    base_files, fresh_files = _files(base), _files(fresh)
    conflicts = []
    for relative, source in _files(example).items():
        if relative == ANSWERS_FILE:
            continue  # the new bake's answers are the copy's
        target = _rename(relative, renames)
        mine = source.read_bytes()
        old = base_files[relative].read_bytes() if relative in base_files else None
        new = fresh_files[target].read_bytes() if target in fresh_files else None
        if old is not None and mine == old:
            continue  # the template's file, unedited: the new bake's version (or none) stands
        try:
            merged = _merge(mine, old, new, renames, work)
        except _Conflict as conflict:
            conflicts.append((relative, str(conflict)))
            continue
        path = fresh / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(merged)
        shutil.copymode(source, path)
    return conflicts


class _Conflict(Exception):
    pass


def _merge(mine: bytes, old: bytes | None, new: bytes | None, renames: Renames, work: Path) -> bytes:
    """The example's file with the new names, and the overrides' changes to the template's lines."""
    try:
        text = _rename(mine.decode("utf-8"), renames)
    except UnicodeDecodeError:
        return mine  # data, not text: carried as it is
    if old is None or new is None:
        return text.encode("utf-8")
    base = _rename(old.decode("utf-8"), renames)
    other = new.decode("utf-8")
    if base == other:
        return text.encode("utf-8")
    paths = []
    for name, content in (("mine", text), ("base", base), ("new", other)):
        paths.append(work / f"merge-{name}")
        paths[-1].write_text(content, encoding="utf-8")
    result = subprocess.run(
        ["git", "merge-file", "-p", *map(str, paths)],
        capture_output=True,
        check=False,
        timeout=GIT_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise _Conflict(
            "its edits overlap lines that the new answers change in the template's version;"
            " copy without those --set answers, or edit the copy by hand"
        )
    return result.stdout


def _link(function_dir: Path, template: Path) -> bool:
    """Write .cruft.json for the template's current commit; False when the template is not in git."""
    result = subprocess.run(
        ["git", "-C", str(template), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        timeout=GIT_TIMEOUT_S,
    )
    if result.returncode != 0:
        return False
    commit = result.stdout.strip()
    context = json.loads((function_dir / ANSWERS_FILE).read_text(encoding="utf-8"))
    context["_template"] = str(template.resolve())
    context["_commit"] = commit
    state = {
        "template": str(template.resolve()),
        "commit": commit,
        "checkout": None,
        "context": {"cookiecutter": context},
        "directory": None,
    }
    (function_dir / CRUFT_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
    return True


def _first_commit(git: str, function_dir: Path, example: Path) -> None:
    def run(*arguments: str) -> None:
        result = subprocess.run(
            [git, *arguments],
            cwd=function_dir,
            capture_output=True,
            text=True,
            check=False,
            timeout=GIT_TIMEOUT_S,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
        if result.returncode != 0:
            message = (result.stderr.strip() or result.stdout.strip()).splitlines()
            command = next(word for word in arguments if not word.startswith("-") and "=" not in word)
            raise UsageError(f"git {command} failed: {message[0] if message else result.returncode}")

    identity: list[str] = []
    for key, value in zip(("user.name", "user.email"), COMMIT_IDENTITY, strict=True):
        configured = subprocess.run(
            [git, "config", "--get", key], capture_output=True, text=True, check=False, timeout=GIT_TIMEOUT_S
        )
        if not configured.stdout.strip():
            identity += ["-c", f"{key}={value}"]
    run("init", "-q")
    run("add", "-A")
    run(*identity, "commit", "-q", "--no-verify", "-m", f"Copied from the example {example.name}")
