"""`leanlambda review`: the default bake passes every check; each bad fixture fails exactly its own; a corpus
of functions written the way people write them gets the verdicts written down for it beforehand; SARIF
validates against the SARIF 2.1.0 schema; budgets need reasons; every bake option and example passes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from leanlambda.cli import main
from leanlambda.review import CHECK_IDS
from tests.conftest import BAD_FIXTURES, REPO_ROOT, apply_bad_fixture
from tests.test_bake import CASES as BAKE_CASES

EXAMPLES = sorted(path.parent for path in (REPO_ROOT / "examples").glob("*/.cookiecutter.json"))

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
    assert report["profile"] == "leanlambda"
    timed = [c for c in report["checks"] if c["id"] in TIMED]
    assert all(re.fullmatch(r"\d+\.\d ms", c["value"]) for c in timed), timed  # measured, whatever it came to
    assert report["passed"] is all(c["status"] == "pass" for c in report["checks"])
    assert (code == 0) is report["passed"]


def test_json_shape_is_exact(default_report):
    _, report = default_report
    assert set(report) == {"function", "profile", "passed", "checks"}
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
    assert "lacking the layer(s) !Ref CoreLayerArn" in checks["cold-start"]["detail"]


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
    # The template declares a layer the review was not given: skipped with the reason, never failed.
    assert report["checks"][0]["status"] == "skip"
    assert "No module named 'layer_marker'" in report["checks"][0]["detail"]
    assert "lacking the layer(s) !Ref CoreLayerArn" in report["checks"][0]["detail"]
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


# --- the corpus: functions in the styles people write, each with its expected verdicts -------------------

DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "review"
CORPUS_FUNCTIONS = sorted(path.name for path in CORPUS.iterdir() if (path / "expected.json").is_file())


def test_the_corpus_covers_the_styles():
    assert len(CORPUS_FUNCTIONS) >= 8
    for name in CORPUS_FUNCTIONS:
        expected = json.loads((CORPUS / name / "expected.json").read_text())
        assert list(expected) == list(CHECK_IDS), name


@pytest.mark.parametrize("name", CORPUS_FUNCTIONS)
def test_corpus_function_gets_its_expected_verdicts(name, tmp_path, capsys):
    function_dir = tmp_path / name
    shutil.copytree(CORPUS / name, function_dir)
    expected = json.loads((function_dir / "expected.json").read_text())
    code, report = review_json(capsys, function_dir)
    got = {check["id"]: check["status"] for check in report["checks"]}
    details = {
        check["id"]: check["detail"]
        for check in report["checks"]
        if got[check["id"]] != expected[check["id"]]
    }
    assert got == expected, json.dumps(details, indent=1)
    assert report["profile"] == "general"
    assert code == (1 if "fail" in expected.values() else 0)


def test_a_skipped_measurement_names_what_it_lacked(tmp_path, capsys):
    function_dir = tmp_path / "powertools-app"
    shutil.copytree(CORPUS / "powertools-app", function_dir)
    _, report = review_json(capsys, function_dir, "--only", "cold-start")
    detail = report["checks"][0]["detail"]
    assert "No module named 'aws_lambda_powertools'" in detail
    assert "AWSLambdaPowertoolsPythonV3" in detail


def test_general_fix_texts_never_name_the_template_classes(tmp_path, capsys):
    function_dir = tmp_path / "client-per-invocation"
    shutil.copytree(CORPUS / "client-per-invocation", function_dir)
    _, report = review_json(capsys, function_dir, "--only", "client-reuse", "--only", "metrics-batching")
    text = json.dumps(report)
    assert "AWSClientFactory" not in text and "MetricsCollector" not in text
    assert "reporter/app.py:9 boto3.client() in handler() runs on every invocation" in text


# --- SARIF ---------------------------------------------------------------------------------------------


def test_sarif_validates_against_the_2_1_0_schema_and_points_at_lines(tmp_path, capsys):
    import jsonschema

    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    function_dir = tmp_path / "managed-full-access"
    shutil.copytree(CORPUS / "managed-full-access", function_dir)
    argv = ["review", str(function_dir), "--format", "sarif", "--only", "error-handling"]
    assert main([*argv, "--only", "iam-least-privilege", "--only", "package-size"]) == 1
    log = json.loads(capsys.readouterr().out)
    jsonschema.validate(log, schema)
    results = {result["ruleId"]: result for result in log["runs"][0]["results"]}
    assert set(results) == {"error-handling", "iam-least-privilege"}  # passing checks give no result
    location = results["error-handling"]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "app/reports.py"
    assert location["region"]["startLine"] == 14
    iam = results["iam-least-privilege"]["locations"][0]["physicalLocation"]
    assert iam["artifactLocation"]["uri"] == "template.yaml" and iam["region"]["startLine"] == 21


# --- finding the function, budgets -----------------------------------------------------------------------


def test_several_functions_in_one_template_are_each_reviewed(tmp_path, capsys):
    project = tmp_path / "two"
    shutil.copytree(CORPUS / "sam-hello-world", project)
    template = project / "template.yaml"
    text = template.read_text()
    second = (
        text[text.index("  HelloWorldFunction:") : text.index("\nOutputs:")]
        .replace("HelloWorldFunction:", "GoodbyeFunction:")
        .replace("Path: /hello", "Path: /bye")
    )
    template.write_text(text.replace("\nOutputs:", "\n" + second + "\nOutputs:"))
    assert main(["review", str(project), "--format", "json", "--only", "lazy-imports"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [len(r["checks"]) for r in reports] == [1, 1]
    assert main(["review", str(project), "--function", "GoodbyeFunction", "--only", "lazy-imports"]) == 0
    assert "(GoodbyeFunction, profile general)" in capsys.readouterr().out
    assert main(["review", str(project), "--function", "Nope"]) == 2
    assert "no Python function 'Nope'" in capsys.readouterr().err


def test_a_budget_override_prints_its_reason(function_copy, capsys):
    function_dir = function_copy()
    (function_dir / "review.toml").write_text(
        '[package-size]\nmax-kb = 3\nreason = "a team rule: tiny zips only"\n'
    )
    code, report = review_json(capsys, function_dir, "--only", "package-size")
    check = report["checks"][0]
    assert (check["status"], check["budget"]) == ("fail", "<= 3 KB")
    assert "budget from review.toml: a team rule: tiny zips only" in check["detail"]
    assert code == 1


def test_a_budget_override_without_a_reason_is_refused(function_copy, capsys):
    function_dir = function_copy()
    (function_dir / "review.toml").write_text("[cold-start]\nmax-ms = 900\n")
    assert main(["review", str(function_dir), "--only", "cold-start"]) == 2
    err = capsys.readouterr().err
    assert "needs a reason" in err and len(err.strip().splitlines()) == 1


# --- every bake option and every example pass their own review ----------------------------------------------


MEASURED = ("cold-start", "memory")  # figures of a loaded machine: reported, never asserted here


def assert_passes_but_timings(report: dict) -> None:
    """Every check but the timed ones passes (or only warns); the timed ones were measured."""
    checks = {check["id"]: check for check in report["checks"]}
    failures = {i: c["detail"] for i, c in checks.items() if c["status"] == "fail" and i not in MEASURED}
    assert failures == {}
    assert re.fullmatch(r"\d+\.\d ms", checks["cold-start"]["value"]), checks["cold-start"]
    assert checks["memory"]["status"] == "skip" or re.fullmatch(r"\d+ MB", checks["memory"]["value"])


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BAKE_CASES))
def test_every_bake_option_combination_passes_review(case, bake, capsys):
    function_dir = bake(**BAKE_CASES[case])
    _, report = review_json(capsys, function_dir)
    assert_passes_but_timings(report)


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_passes_review_from_a_copy(example, tmp_path, capsys):
    copy = tmp_path / example.name
    shutil.copytree(example, copy, ignore=shutil.ignore_patterns("__pycache__", "build", ".pytest_cache"))
    _, report = review_json(capsys, copy)
    assert_passes_but_timings(report)


def test_an_environment_value_only_a_stack_knows_skips_the_measurement(tmp_path, capsys):
    function_dir = tmp_path / "module-client"
    shutil.copytree(CORPUS / "module-client", function_dir)
    template = function_dir / "template.yaml"
    template.write_text(
        template.read_text().replace("BUCKET: !Ref DataBucket", "BUCKET: !GetAtt DataBucket.Arn")
    )
    code, report = review_json(capsys, function_dir, "--only", "cold-start")
    check = report["checks"][0]
    assert check["status"] == "skip", check
    assert "'BUCKET'" in check["detail"]
    assert "environment BUCKET (!GetAtt is known only to a deployed stack)" in check["detail"]
    assert code == 0


def test_the_general_profile_accepts_a_generated_function(default_bake, capsys):
    code, report = review_json(capsys, default_bake, "--profile", "general", "--only", "client-reuse")
    assert report["profile"] == "general"
    assert report["checks"][0]["status"] == "pass", report["checks"][0]["detail"]
    assert code == 0


def test_a_layer_of_the_same_template_is_put_on_the_path(tmp_path, capsys):
    project = tmp_path / "with-layer"
    shutil.copytree(CORPUS / "sam-hello-world", project)
    (project / "greeting_layer" / "python").mkdir(parents=True)
    (project / "greeting_layer" / "python" / "greeting.py").write_text('TEXT = "hello from the layer"\n')
    app = project / "hello_world" / "app.py"
    app.write_text("from greeting import TEXT\n" + app.read_text().replace('"hello world"', "TEXT"))
    template = project / "template.yaml"
    template.write_text(
        template.read_text()
        .replace(
            "Resources:\n",
            "Resources:\n  GreetingLayer:\n    Type: AWS::Serverless::LayerVersion\n"
            "    Properties:\n      ContentUri: greeting_layer/\n\n",
        )
        .replace(
            "      Architectures:\n", "      Layers:\n        - !Ref GreetingLayer\n      Architectures:\n"
        )
    )
    code, report = review_json(capsys, project, "--only", "cold-start", "--only", "memory")
    statuses = {check["id"]: (check["status"], check["detail"]) for check in report["checks"]}
    assert statuses["cold-start"][0] == "pass", statuses
    assert statuses["memory"][0] == "pass", statuses
    assert "the template's layer GreetingLayer (greeting_layer/)" in statuses["cold-start"][1]
    assert code == 0


@pytest.mark.parametrize(("switch", "status"), [("false", "warn"), ("true", "pass")])
def test_a_generated_always_return_switch_warns_when_on(switch, status, function_copy, capsys):
    function_dir = function_copy()
    template = function_dir / "template.yaml"
    text = template.read_text()
    assert 'RAISE_ON_FAILURE: "true"' in text
    template.write_text(text.replace('RAISE_ON_FAILURE: "true"', f'RAISE_ON_FAILURE: "{switch}"'))
    code, report = review_json(capsys, function_dir, "--only", "error-handling")
    check = report["checks"][0]
    assert check["status"] == status, check
    if status == "warn":
        assert "RAISE_ON_FAILURE=false keeps it returning" in check["detail"]
    assert code == 0


def test_requirements_are_installed_for_the_lambda_platform_with_the_measured_pythons_bytecode(tmp_path):
    """What `sam build` would put in /var/task, compiled by the Python the measured runs use: bytecode of
    the toolkit's own Python would be ignored there, and every measured cold start would compile."""
    import subprocess

    from leanlambda.emulator.runtime_client import choose_interpreter
    from leanlambda.review.deps import install_requirements

    requirements = tmp_path / "requirements.txt"
    requirements.write_text("boto3\nattrs\n", encoding="utf-8")  # boto3: the runtime's, never installed
    site, note = install_requirements(requirements, "arm64", "python3.13")
    assert site is not None, note
    assert "python3.13 arm64" in note
    assert not (site / "boto3").exists() and (site / "attrs").is_dir()
    runner = choose_interpreter("python3.13")
    tag = "cpython-" + runner.minor.replace(".", "")
    assert list((site / "attrs" / "__pycache__").glob(f"__init__.{tag}.pyc"))
    imported = subprocess.run(
        [
            runner.executable,
            "-I",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import attrs",
            str(site),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr
