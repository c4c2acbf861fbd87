"""Hostile and invalid template answers, each run through a real cookiecutter bake.

The corpus is tests/data/hostile_answers.json: one entry per answer set, with the field that must be
named in the rejection and the stage that rejects it:

- ``hook``: hooks/pre_gen_project.py exits 1 (FailedHookException) after printing exactly one line
  ``ERROR: <field>: ...`` on stderr;
- ``cookiecutter``: cookiecutter itself refuses the answer before the hook runs (a choice or boolean
  prompt given something else), with an exception that names the field.

In every case nothing may be left in the output folder or next to it. Cookiecutter creates the output
folder and the function's (``a/b`` would be nested folders) before the pre-generation hook runs, and
removes only the innermost when the hook fails, so the template runs the hook's checks earlier, while
cookiecutter renders its private variables (``local_extensions.py``), and reports them the way the hook
does: under cookiecutter's command line, one line and no traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = json.loads((Path(__file__).parent / "data" / "hostile_answers.json").read_text(encoding="utf-8"))
HOOK_LINE = re.compile(r"^ERROR: ([a-z_]+): ")
STAGES = {"hook", "cookiecutter"}

# Cases re-run through the command lines (argv-safe values only), to check the exit status and stderr
# a user actually sees.
CLI_CASES = [
    "name-jinja-expression",
    "name-path-traversal",
    "name-subfolder",
    'memory-"64"',
    'timeout-"901"',
    "schedule-cron(0 * * * *)",
    "services-unknown-s4",
    "prewarm-not-subset",
    "namespace-aws-reserved",
]


def _by_id(case_id: str) -> dict:
    return next(case for case in CORPUS if case["id"] == case_id)


def _leftovers(root: Path, out: Path) -> list[str]:
    """Everything under root except the (empty) output folder and its parent."""
    expected = {out, out.parent}
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path not in expected)


def test_corpus_is_large_and_well_formed():
    ids = [case["id"] for case in CORPUS]
    assert len(ids) >= 40
    assert len(ids) == len(set(ids)), "duplicate case ids"
    for case in CORPUS:
        assert case["stage"] in STAGES, case["id"]
        assert case["answers"], case["id"]
    fields = {case["field"] for case in CORPUS}
    # every prompt of cookiecutter.json is attacked at least once
    prompts = {
        key for key in json.loads((REPO_ROOT / "cookiecutter.json").read_text()) if not key.startswith("_")
    }
    assert prompts <= fields, sorted(prompts - fields)


@pytest.mark.parametrize("case", CORPUS, ids=[case["id"] for case in CORPUS])
def test_hostile_answer_is_rejected_and_nothing_is_written(case, tmp_path, capfd):
    from cookiecutter.exceptions import CookiecutterException, FailedHookException
    from cookiecutter.main import cookiecutter

    out = tmp_path / "parent" / "out"
    out.mkdir(parents=True)
    error: BaseException | None = None
    try:
        created = cookiecutter(
            str(REPO_ROOT), no_input=True, extra_context=case["answers"], output_dir=str(out)
        )
    except (CookiecutterException, ValueError, OSError) as caught:  # what a bake can raise
        error = caught
    else:
        pytest.fail(f"ACCEPTED: {case['answers']!r} baked {created}")
    stderr = capfd.readouterr().err
    hook_lines = [line for line in stderr.splitlines() if HOOK_LINE.match(line)]

    if case["stage"] == "hook":
        assert isinstance(error, FailedHookException), f"{type(error).__name__}: {error}"
        assert len(hook_lines) == 1, stderr
        assert HOOK_LINE.match(hook_lines[0]).group(1) == case["field"], hook_lines[0]
        assert "\x00" not in hook_lines[0]
    else:
        assert not isinstance(error, FailedHookException)
        assert case["field"] in str(error), str(error)
        assert hook_lines == []

    leftovers = _leftovers(tmp_path, out)
    assert leftovers == [], f"left behind: {leftovers}"


def _cli_args(case: dict) -> list[str]:
    return [f"{key}={value}" for key, value in case["answers"].items()]


@pytest.mark.parametrize("case_id", CLI_CASES)
def test_cookiecutter_cli_exits_non_zero_with_one_line_naming_the_field(case_id, tmp_path):
    case = _by_id(case_id)
    out = tmp_path / "out"
    out.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "-o",
            str(out),
            str(REPO_ROOT),
            *_cli_args(case),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert result.returncode != 0
    hook_lines = [line for line in result.stderr.splitlines() if HOOK_LINE.match(line)]
    assert len(hook_lines) == 1, result.stderr
    assert HOOK_LINE.match(hook_lines[0]).group(1) == case["field"]
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


COOKIECUTTER = Path(sys.executable).parent / "cookiecutter"
"""The command line a user runs: the one installed beside the Python running the tests."""
BAD_CLI_ANSWERS = [
    ("memory_size", "5"),
    ("timeout", "901"),
    ("region", "zz-nowhere-9"),
    ("schedule_expression", "rate(5 minute)"),
    ("description", "tab\there"),
    ("aws_services", "s4"),
    ("function_name", "a/b"),
]


def _plain_cookiecutter(tmp_path: Path, *answers: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "made" / "out"  # neither exists: cookiecutter would make both
    result = subprocess.run(
        [str(COOKIECUTTER), str(REPO_ROOT), "--no-input", "-o", str(out), *answers],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    return result, out


@pytest.mark.parametrize(("field", "value"), BAD_CLI_ANSWERS, ids=[field for field, _ in BAD_CLI_ANSWERS])
def test_plain_cookiecutter_prints_one_line_no_traceback_and_makes_no_folder(field, value, tmp_path):
    result, _ = _plain_cookiecutter(tmp_path, f"{field}={value}")
    assert result.returncode != 0
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert HOOK_LINE.match(result.stderr).group(1) == field, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == [], "the -o folder or its parent was made"


def test_plain_cookiecutter_ignores_an_unknown_key(tmp_path):
    """What README.md says of cookiecutter itself: a key the template does not have is dropped silently."""
    result, out = _plain_cookiecutter(tmp_path, "nosuch=1")
    assert result.returncode == 0, result.stderr
    assert "nosuch" not in (out / "my-function" / ".cookiecutter.json").read_text()


@pytest.mark.parametrize("answer", ["use_postgres=maybe", "runtime=python3.11"])
def test_plain_cookiecutter_refuses_a_non_choice_itself_with_its_own_value_error(answer, tmp_path):
    """What README.md says of cookiecutter itself: it raises before the template's code runs."""
    result, _ = _plain_cookiecutter(tmp_path, answer)
    assert result.returncode != 0
    assert "ValueError: " in result.stderr and answer.partition("=")[0] in result.stderr
    assert [line for line in result.stderr.splitlines() if HOOK_LINE.match(line)] == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case_id", ["name-stdlib-json", "schedule-rate(5 minute)", "layer-path"])
def test_leanlambda_new_exits_non_zero_with_one_line_naming_the_field(case_id, tmp_path):
    case = _by_id(case_id)
    out = tmp_path / "out"
    sets = [arg for pair in _cli_args(case) for arg in ("--set", pair)]
    result = subprocess.run(
        [sys.executable, "-m", "leanlambda", "new", str(out), "--no-input", *sets],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert result.returncode != 0
    hook_lines = [line for line in result.stderr.splitlines() if HOOK_LINE.match(line)]
    assert len(hook_lines) == 1, result.stderr
    assert HOOK_LINE.match(hook_lines[0]).group(1) == case["field"]
    assert not out.exists() or list(out.iterdir()) == []


# --------------------------------------------- Jinja in an answer given to `leanlambda new` (issue 14)
PAYLOAD = "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}"
JINJA_ANSWERS = [
    ("description", f"Hi {PAYLOAD}"),
    ("function_name", PAYLOAD),
    ("metrics_namespace", "{% set x = cycler.__init__.__globals__.os.system('touch PWNED') %}ns"),
    ("region", "{# comment #}ap-northeast-2"),
    ("description", "{{7*7}}"),
    ("description", "{{ undefined_name }}"),
]


@pytest.mark.parametrize(("field", "value"), JINJA_ANSWERS, ids=[value for _, value in JINJA_ANSWERS])
def test_leanlambda_new_refuses_jinja_before_cookiecutter_renders_it(field, value, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "leanlambda", "new", str(out), "--no-input", "--set", f"{field}={value}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode != 0
    assert not (tmp_path / "PWNED").exists() and not (out / "PWNED").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Jinja" in lines[0], result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_leanlambda_new_refuses_jinja_in_the_users_cookiecutter_defaults(tmp_path):
    config = tmp_path / "cookiecutterrc.yaml"
    config.write_text(f'default_context:\n  description: "{PAYLOAD}"\n')
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "leanlambda", "new", str(out), "--no-input"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "COOKIECUTTER_CONFIG": str(config)},
    )
    assert result.returncode != 0
    assert not (tmp_path / "PWNED").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "default_context description" in lines[0], result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cookiecutterrc.yaml"]
