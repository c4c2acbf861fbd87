"""Shared fixtures: one default bake per session, and copies of it to modify.

`default_bake` is read-only (other tests reuse it); use `function_copy` to get a private copy, and
`apply_bad_fixture` to overlay one of tests/fixtures/bad/<check-id>/ on it. `session_postgres` /
`postgres_url`: one throwaway PostgreSQL server per session (tests/support/postgres.py), started only
when a test asks for it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BAD_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bad"
MODULE_PLACEHOLDER = "__module__"  # stands for the generated module's name in fixture paths
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "build", ".pytest_cache")


@pytest.fixture(scope="session")
def bake(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """bake(**answers) -> the generated function folder; each set of answers is baked once a session."""
    from cookiecutter.main import cookiecutter

    cache: dict[str, Path] = {}

    def _bake(**answers: object) -> Path:
        key = json.dumps(answers, sort_keys=True)
        if key not in cache:
            out = tmp_path_factory.mktemp("bake")
            cache[key] = Path(
                cookiecutter(str(REPO_ROOT), no_input=True, extra_context=answers, output_dir=str(out))
            )
        return cache[key]

    return _bake


@pytest.fixture(scope="session")
def default_bake(bake: Callable[..., Path]) -> Path:
    """The template baked with all defaults (`cookiecutter --no-input`). Do not modify it."""
    return bake()


@pytest.fixture
def function_copy(default_bake: Path, tmp_path: Path) -> Callable[[], Path]:
    """A private copy of the default bake, safe to modify."""

    def _copy() -> Path:
        target = tmp_path / default_bake.name
        shutil.copytree(default_bake, target, ignore=COPY_IGNORE)
        return target

    return _copy


def module_name(function_dir: Path) -> str:
    return json.loads((function_dir / ".cookiecutter.json").read_text())["__module_name"]


def apply_bad_fixture(function_dir: Path, fixture: Path) -> Path:
    """Overlay fixture/files/ (with __module__ renamed) and apply fixture/edits.json text replacements.

    Each edit's `find` must occur exactly once, so a template change that moves the text fails loudly
    here instead of silently producing a fixture that tests nothing.
    """
    module = module_name(function_dir)
    files = fixture / "files"
    if files.is_dir():
        for source in sorted(files.rglob("*")):
            if source.is_file():
                relative = Path(
                    *[
                        module if part == MODULE_PLACEHOLDER else part
                        for part in source.relative_to(files).parts
                    ]
                )
                target = function_dir / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)
    edits_file = fixture / "edits.json"
    if edits_file.is_file():
        for edit in json.loads(edits_file.read_text()):
            path = function_dir / edit["file"].replace(MODULE_PLACEHOLDER, module)
            text = path.read_text()
            found = text.count(edit["find"])
            assert found == 1, f"{fixture.name}: {edit['find']!r} occurs {found} times in {path.name}"
            path.write_text(text.replace(edit["find"], edit["replace"]))
    return function_dir


@pytest.fixture(scope="session")
def session_postgres():
    """The session's PostgreSQL server (DATABASE_URL when set); `.database(name)` gives a fresh database."""
    from tests.support.postgres import SessionPostgres

    server = SessionPostgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_url(session_postgres) -> str:
    return session_postgres.url
