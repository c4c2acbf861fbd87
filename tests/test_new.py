"""`leanlambda new`: cookiecutter on the bundled template, from the repository or an installed wheel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from leanlambda.cli import main
from tests.conftest import REPO_ROOT


def test_new_bakes_with_defaults_and_set_values(tmp_path, capsys):
    code = main(
        [
            "new",
            str(tmp_path),
            "--no-input",
            "--set",
            "function_name=orders-sync",
            "--set",
            "memory_size=512",
            "--set",
            "use_postgres=false",
        ]
    )
    assert code == 0
    created = tmp_path / "orders-sync"
    assert str(created) in capsys.readouterr().out
    answers = json.loads((created / ".cookiecutter.json").read_text())
    assert answers["function_name"] == "orders-sync" and answers["memory_size"] == "512"
    assert (created / "src" / "orders_sync" / "handler.py").is_file()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--set", "no_such_prompt=1"], "unknown prompt 'no_such_prompt'"),
        (["--set", "novalue"], "expects KEY=VALUE"),
        (["--set", "architecture=sparc"], "not one of"),
        (["--set", "use_postgres=maybe"], "true or false"),
    ],
)
def test_bad_set_values_are_usage_errors(argv, message, tmp_path, capsys):
    assert main(["new", str(tmp_path), "--no-input", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_hook_rejection_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert main(["new", str(tmp_path), "--no-input", "--set", "function_name=bad name!"]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("leanlambda new: the template rejected the answers")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["a/b", "../escape", "x/y/z"])
def test_a_name_with_a_path_leaves_no_folder_behind(name, tmp_path, capsys):
    """Plain cookiecutter leaves `a/` behind for `a/b`; `leanlambda new` checks the name first."""
    out = tmp_path / "fresh" / "out"
    assert main(["new", str(out), "--no-input", "--set", f"function_name={name}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("ERROR: function_name: ")
    assert err[-1].startswith("leanlambda new: the template rejected the answers")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_a_usage_error(tmp_path, capsys):
    assert main(["new", str(tmp_path), "--no-input"]) == 0
    capsys.readouterr()
    assert main(["new", str(tmp_path), "--no-input"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_new_works_from_a_built_package(tmp_path):
    """setup.py's build_py bundles the template as leanlambda/_template; `new` uses it there."""
    build_lib = tmp_path / "lib"
    source = tmp_path / "source"
    shutil.copytree(
        REPO_ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "*.egg-info", "__pycache__", "tests", "examples", "benchmarks"
        ),
    )
    subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(build_lib)],
        cwd=source,
        check=True,
        capture_output=True,
    )
    assert (build_lib / "leanlambda" / "_template" / "cookiecutter.json").is_file()
    shutil.rmtree(source)  # nothing may be read from a repository checkout
    out = tmp_path / "out"
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import leanlambda; from leanlambda.template_source import template_dir;"
        "assert leanlambda.__file__.startswith(sys.argv[1]), leanlambda.__file__;"
        "assert template_dir().name == '_template', template_dir();"
        "from leanlambda.cli import main; sys.exit(main(['new', sys.argv[2], '--no-input']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(build_lib), str(out)], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (out / "my-function" / "template.yaml").is_file()
