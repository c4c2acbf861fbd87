"""Remove the files of options that were not selected.

One ``remove_<option>_files()`` per option; nothing else happens here: no network,
no git, no writes. Runs inside the generated function's folder.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def _remove(root: Path, relative_paths: list[str]) -> list[str]:
    """Delete the given files or folders under ``root``; returns those that existed."""
    removed = []
    for relative in relative_paths:
        path = root / relative
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(relative)
    return removed


def postgres_files(module_name: str) -> list[str]:
    return [
        f"src/{module_name}/db.py",
        "tests/test_db.py",
        "tests/pg_server.py",
        "events/db_event.json",
    ]


def upbit_files(module_name: str) -> list[str]:
    return [
        f"src/{module_name}/upbit.py",
        "tests/test_upbit.py",
        "tests/recorded",
        "tests/cassettes",
        "tests/fixtures/upbit",
        "events/upbit_event.json",
    ]


def remove_postgres_files(root: Path, module_name: str) -> list[str]:
    return _remove(root, postgres_files(module_name))


def remove_upbit_files(root: Path, module_name: str) -> list[str]:
    return _remove(root, upbit_files(module_name))


def remove_unselected(root: Path, module_name: str, use_postgres: bool, use_upbit: bool) -> list[str]:
    removed = []
    if not use_postgres:
        removed += remove_postgres_files(root, module_name)
    if not use_upbit:
        removed += remove_upbit_files(root, module_name)
    fixtures = root / "tests" / "fixtures"
    if fixtures.is_dir() and not any(fixtures.iterdir()):
        fixtures.rmdir()
    return removed


def main() -> int:
    # Single quotes are essential: tojson output starts and ends with '"' and escapes "'".
    # fmt: off
    module_name = json.loads(r'{{ cookiecutter.__module_name | tojson }}')
    use_postgres = json.loads(r'{{ cookiecutter.use_postgres | tojson }}')
    use_upbit = json.loads(r'{{ cookiecutter.use_upbit | tojson }}')
    # fmt: on
    remove_unselected(Path.cwd(), module_name, use_postgres, use_upbit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
