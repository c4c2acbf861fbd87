"""Remove the files of options that were not selected, and name where the toolkit comes from.

One ``remove_<option>_files()`` per option, and ``write_toolkit_requirement()``, which completes
requirements-toolkit.txt with the template's folder or git URL (what `make venv` installs the
leanlambda toolkit from). No network, no git. Runs inside the generated function's folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

TOOLKIT_FILE = "requirements-toolkit.txt"
# Cookiecutter's built-in abbreviations of git hosts.
GIT_ABBREVIATIONS = {
    "gh:": "https://github.com/{}.git",
    "gl:": "https://gitlab.com/{}.git",
    "bb:": "https://bitbucket.org/{}",
}
GIT_URL = re.compile(r"^(git\+)?((https?|ssh|git|file)://|git@)")
UNKNOWN_TOOLKIT = "# (the template's location is unknown: put its folder or git+https:// URL on this line)"


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
    ]


def upbit_files(module_name: str) -> list[str]:
    return [
        f"src/{module_name}/upbit.py",
        "tests/test_upbit.py",
        "tests/recorded",
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
    return removed


def toolkit_requirement(template: str, checkout: str | None = None, cwd: str | None = None) -> str:
    """pip's requirement for the toolkit: ``git+URL[@checkout]`` for a git template, else its folder.

    Cookiecutter records a local template as typed (maybe relative to where it was run: ``cwd``), cruft
    as an absolute path or URL. A folder without the toolkit's pyproject.toml (the copy bundled in an
    installed wheel) gives "".
    """
    for prefix, url in GIT_ABBREVIATIONS.items():
        if template.startswith(prefix):
            template = url.format(template[len(prefix) :])
    if GIT_URL.match(template):
        return "git+" + template.removeprefix("git+") + (f"@{checkout}" if checkout else "")
    if not template:
        return ""
    folder = Path(template)
    if not folder.is_absolute():
        if not cwd:
            return ""
        folder = Path(cwd) / folder
    folder = Path(os.path.normpath(folder))
    return str(folder) if (folder / "pyproject.toml").is_file() else ""


def write_toolkit_requirement(root: Path, requirement: str) -> None:
    """Append the requirement (or a line saying it is unknown) to requirements-toolkit.txt."""
    path = root / TOOLKIT_FILE
    if path.is_file():
        with path.open("a", encoding="utf-8") as handle:
            handle.write((requirement or UNKNOWN_TOOLKIT) + "\n")


def main() -> int:
    # Single quotes are essential: tojson output starts and ends with '"' and escapes "'".
    # fmt: off
    module_name = json.loads(r'{{ cookiecutter.__module_name | tojson }}')
    use_postgres = json.loads(r'{{ cookiecutter.use_postgres | tojson }}')
    use_upbit = json.loads(r'{{ cookiecutter.use_upbit | tojson }}')
    template = json.loads(r'{{ cookiecutter.get("_template", "") | tojson }}')
    checkout = json.loads(r'{{ cookiecutter.get("_checkout") | tojson }}')
    # fmt: on
    remove_unselected(Path.cwd(), module_name, use_postgres, use_upbit)
    # A relative template path is relative to where cookiecutter ran: the shell's PWD (hooks run elsewhere).
    write_toolkit_requirement(Path.cwd(), toolkit_requirement(template, checkout, os.environ.get("PWD")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
