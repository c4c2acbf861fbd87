"""`leanlambda review`: the default bake passes every check; each bad fixture fails exactly its own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from leanlambda.cli import main
from leanlambda.review import CHECK_IDS
from tests.conftest import BAD_FIXTURES, apply_bad_fixture

FAST = ["--cold-start-runs", "1"]
TIMED = {"cold-start"}
"""Checks whose verdict is a time against a budget: it depends on the machine's speed and load, so a test
checks that the time was measured, never whether it met the budget."""
FIXTURES = sorted(path.name for path in BAD_FIXTURES.iterdir() if path.is_dir())


def review_json(capsys, function_dir: Path, *extra: str) -> tuple[int, dict]:
    code = main(["review", str(function_dir), "--format", "json", *FAST, *extra])
    return code, json.loads(capsys.readouterr().out)


def failed(report: dict) -> set[str]:
    return {check["id"] for check in report["checks"] if check["status"] == "fail"}


@pytest.fixture(scope="module")
def default_report(default_bake: Path) -> tuple[int, dict]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["review", str(default_bake), "--format", "json", "--cold-start-runs", "3"])
    return code, json.loads(out.getvalue())


def test_every_check_id_has_a_bad_fixture():
    covered = {name.split("--")[0] for name in FIXTURES}
    assert covered == set(CHECK_IDS)


def test_default_bake_passes_every_check(default_report):
    code, report = default_report
    bad = {c["id"]: c["detail"] for c in report["checks"] if c["status"] != "pass" and c["id"] not in TIMED}
    assert bad == {}
    timed = [c for c in report["checks"] if c["id"] in TIMED]
    assert all(re.fullmatch(r"\d+\.\d ms", c["value"]) for c in timed), timed  # measured, whatever it came to
    assert report["passed"] is all(c["status"] == "pass" for c in report["checks"])
    assert (code == 0) is report["passed"]


def test_json_shape_is_exact(default_report):
    _, report = default_report
    assert set(report) == {"function", "passed", "checks"}
    assert [check["id"] for check in report["checks"]] == list(CHECK_IDS)
    for check in report["checks"]:
        assert set(check) == {"id", "status", "value", "budget", "detail"}
        assert check["status"] in {"pass", "fail", "warn", "skip"}
        assert check["value"] and check["budget"] and check["detail"]


def test_measured_figures_are_figures(default_report):
    checks = {check["id"]: check for check in default_report[1]["checks"]}
    assert re.fullmatch(r"\d+\.\d ms", checks["cold-start"]["value"])
    assert re.fullmatch(r"\d+ MB", checks["memory"]["value"])
    assert re.fullmatch(r"\d+\.\d\d KB", checks["package-size"]["value"])
    assert "no layer found" in checks["cold-start"]["detail"]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_bad_fixture_fails_exactly_its_check(fixture, function_copy, capsys):
    function_dir = apply_bad_fixture(function_copy(), BAD_FIXTURES / fixture)
    code, report = review_json(capsys, function_dir)
    expected = fixture.split("--")[0]
    assert failed(report) == {expected}, json.dumps(report["checks"], indent=1)
    assert code == 1
    assert report["passed"] is False


def test_text_and_markdown_formats(default_bake, capsys):
    assert main(["review", str(default_bake), "--only", "lazy-imports", "--only", "package-size"]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^lazy-imports\s+pass\s+0\s+0\s+", text, re.M)
    assert text.strip().splitlines()[-1].startswith("2 checks: 2 pass, 0 fail")
    assert main(["review", str(default_bake), "--format", "markdown", "--only", "package-size"]) == 0
    markdown = capsys.readouterr().out
    assert "| ✅ | `package-size` |" in markdown
    assert "| | Check | Value | Budget | Detail |" in markdown


def test_markdown_marks_failures(function_copy, capsys):
    function_dir = apply_bad_fixture(function_copy(), BAD_FIXTURES / "secrets")
    assert main(["review", str(function_dir), "--format", "markdown", "--only", "secrets"]) == 1
    out = capsys.readouterr().out
    assert "| ❌ | `secrets` |" in out and "❌ failed" in out


def test_memory_is_skipped_without_an_event(function_copy, capsys):
    function_dir = function_copy()
    for event in (function_dir / "events").glob("*.json"):
        event.unlink()
    code, report = review_json(capsys, function_dir, "--only", "memory")
    assert report["checks"][0]["status"] == "skip"
    assert "no event" in report["checks"][0]["detail"]
    assert code == 0


def test_layer_contents_are_put_on_the_path(function_copy, tmp_path, capsys):
    function_dir = function_copy()
    layer = tmp_path / "layer" / "python" / "layer_marker"
    layer.mkdir(parents=True)
    (layer / "__init__.py").write_text("VALUE = 1\n")
    handler = next((function_dir / "src").glob("*/handler.py"))
    handler.write_text(
        handler.read_text().replace("import os\n", "import os\n\nimport layer_marker  # noqa\n", 1)
    )
    _, report = review_json(capsys, function_dir, "--only", "cold-start")
    assert report["checks"][0]["status"] == "fail"
    assert "No module named 'layer_marker'" in report["checks"][0]["detail"]
    _code, report = review_json(
        capsys, function_dir, "--only", "cold-start", "--layer", str(tmp_path / "layer")
    )
    check = report["checks"][0]
    assert re.fullmatch(r"\d+\.\d ms", check["value"]) and "No module named" not in check["detail"], report


@pytest.mark.parametrize(
    "argv, message",
    [
        (["review", "/nonexistent/function"], "no such folder"),
        (["review", "{tmp}"], "not a function folder"),
        (["review", "{bake}", "--only", "nope"], "unknown check id"),
        (["review", "{bake}", "--cold-start-runs", "0"], "at least 1"),
        (["review", "{bake}", "--event", "/nonexistent.json"], "no such event file"),
    ],
)
def test_usage_errors_exit_2_with_one_line(argv, message, default_bake, tmp_path, capsys):
    argv = [arg.format(tmp=tmp_path, bake=default_bake) for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_format_is_a_usage_error(default_bake, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["review", str(default_bake), "--format", "yaml"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
