"""Bake the template for a matrix of answers and check each generated function for real:
nothing left unrendered, ruff with the function's own settings, the function's own tests,
cfn-lint with the serverless rules, and the SAM translator. Hostile answers are refused by
the pre-generation hook with one line naming the field, and leave no folder behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from leanlambda.template_contract import user_owned_entries

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUFF = BIN / "ruff"

CASES: dict[str, dict] = {
    "defaults": {},
    "bare": {"function_name": "bare", "aws_services": "", "prewarm_services": ""},
    "everything": {
        "function_name": "everything_fn",
        "runtime": "python3.13",
        "architecture": "arm64",
        "memory_size": "1024",
        "timeout": "900",
        "region": "us-east-1",
        "aws_services": "s3, ssm,ec2,rds,dynamodb,sqs,sns,secretsmanager,lambda,events,kinesis,"
        "stepfunctions,cloudwatch,logs,athena",
        "prewarm_services": "s3,ssm",
        "use_postgres": True,
        "use_upbit": True,
        "metrics_backend": "put_metric_data",
        "metrics_namespace": "Everything/Fn",
        "schedule_expression": "cron(0 */4 * * ? *)",
    },
    "postgres": {"function_name": "pg-fn", "aws_services": "", "use_postgres": True},
    "upbit": {"function_name": "upbit-fn", "aws_services": "", "use_upbit": True},
    "put-metric-data": {"function_name": "pmd-fn", "metrics_backend": "put_metric_data"},
    "schedule": {"function_name": "sched-fn", "schedule_expression": "rate(1 hour)"},
    "prewarm": {"function_name": "warm-fn", "aws_services": "s3,ssm", "prewarm_services": "ssm"},
    "arm64-py312": {"function_name": "Arm_Fn", "architecture": "arm64", "runtime": "python3.12"},
    "long-values": {
        "function_name": "f" * 64,
        "description": "A description at the limit " + "x" * (256 - 27),
        "metrics_namespace": "N" * 255,
        "layer_name": "l" * 140,
    },
}

UNRENDERED = re.compile(r"\{\{|\{%|\{#|(?<![.\w])cookiecutter\.(?!json)")


def bake(output_dir: Path, extra: dict | None = None, **kwargs) -> Path:
    return Path(
        cookiecutter(
            str(REPO),
            no_input=True,
            extra_context=extra or {},
            output_dir=str(output_dir),
            default_config={"replay_dir": str(output_dir.parent / "replay")},
            **kwargs,
        )
    )


@pytest.fixture(scope="session")
def baked(tmp_path_factory):
    """Bake each case once per test process."""
    cache: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in cache:
            cache[case] = bake(tmp_path_factory.mktemp(f"bake-{case}") / "out", CASES[case])
        return cache[case]

    return get


def answers(project: Path) -> dict:
    return json.loads((project / ".cookiecutter.json").read_text())


@pytest.mark.parametrize("case", CASES)
def test_nothing_left_unrendered(baked, case):
    project = baked(case)
    for path in project.rglob("*"):
        relative = str(path.relative_to(project))
        assert "{{" not in relative and "cookiecutter" not in relative.replace(".cookiecutter.json", ""), (
            relative
        )
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            match = UNRENDERED.search(text)
            assert match is None, (
                f"{path.relative_to(project)}: {text[max(0, match.start() - 40) : match.end() + 40]!r}"
            )


@pytest.mark.parametrize("case", CASES)
def test_options_decide_the_files(baked, case):
    project = baked(case)
    recorded = answers(project)
    module = project / "src" / recorded["__module_name"]
    assert (module / "handler.py").is_file()
    assert (module / "db.py").exists() == recorded["use_postgres"]
    assert (module / "upbit.py").exists() == recorded["use_upbit"]
    assert (project / "tests" / "pg_server.py").exists() == recorded["use_postgres"]
    requirements = (project / "requirements.txt").read_text()
    assert ("psycopg2-binary" in requirements) == recorded["use_postgres"]
    assert ("pyupbit" in requirements) == recorded["use_upbit"]
    assert json.loads((project / "events" / "event.json").read_text()) == {"items": [1, 2, 3]}


@pytest.mark.parametrize("case", CASES)
def test_ruff_passes_with_the_functions_settings(baked, case):
    project = baked(case)
    result = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--config", "pyproject.toml", "."],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES)
def test_the_functions_own_tests_pass(baked, case, request):
    project = baked(case)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_", "DATABASE_URL"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if answers(project)["use_postgres"]:
        # A fresh database on the suite's server; without one, the generated conftest starts its own.
        with contextlib.suppress(pytest.FixtureLookupError):
            server = request.getfixturevalue("session_postgres")
            env["DATABASE_URL"] = server.database("bake_" + re.sub(r"\W", "_", case))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert " passed" in result.stdout


@pytest.mark.parametrize("case", CASES)
def test_cfn_lint_with_serverless_rules_reports_nothing(baked, case):
    from cfnlint.api import ManualArgs, lint_file

    project = baked(case)
    region = answers(project)["region"]
    config = ManualArgs(append_rules=["cfn_lint_serverless.rules"], regions=[region])
    matches = lint_file(project / "template.yaml", config=config)
    assert matches == [], "\n".join(str(match) for match in matches)


class _NoManagedPolicies:
    """The translator's managed-policy loader; the template names no managed policy."""

    def load(self) -> dict[str, str]:
        return {}


def _actions(policies: list[dict]) -> list[str]:
    found = []
    for policy in policies:
        for statement in policy["PolicyDocument"]["Statement"]:
            action = statement["Action"]
            found.extend([action] if isinstance(action, str) else action)
    return found


@pytest.mark.parametrize("case", CASES)
def test_sam_translator_accepts_the_template(baked, case, monkeypatch):
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    project = baked(case)
    recorded = answers(project)
    monkeypatch.setenv("AWS_DEFAULT_REGION", recorded["region"])
    template = yaml_parse((project / "template.yaml").read_text())
    function = template["Resources"]["Function"]["Properties"]
    assert function["CodeUri"] == "src/"
    function["CodeUri"] = "s3://bucket/function.zip"  # what `sam package` puts there
    output = transform(template, {}, _NoManagedPolicies())

    resources = output["Resources"]
    lambda_function = resources["Function"]["Properties"]
    assert lambda_function["Handler"] == f"{recorded['__module_name']}.handler.lambda_handler"
    assert lambda_function["FunctionName"] == recorded["function_name"]
    assert lambda_function["MemorySize"] == int(recorded["memory_size"])
    assert lambda_function["Timeout"] == int(recorded["timeout"])
    assert lambda_function["Architectures"] == [recorded["architecture"]]
    assert lambda_function["LoggingConfig"]["LogFormat"] == "JSON"
    assert resources["LogGroup"]["Properties"]["LogGroupName"] == f"/aws/lambda/{recorded['function_name']}"
    variables = lambda_function["Environment"]["Variables"]
    assert variables["METRICS_NAMESPACE"] == recorded["metrics_namespace"]
    assert ("DB_SECRET_ARN" in variables) == recorded["use_postgres"]
    assert ("FunctionSchedule" in resources) == bool(recorded["schedule_expression"])
    assert resources["FunctionEventInvokeConfig"]["Properties"]["DestinationConfig"]["OnFailure"]

    role = resources["FunctionRole"]["Properties"]
    actions = _actions(role["Policies"])
    assert actions, "no policy at all"
    assert not [a for a in actions if a == "*" or a.endswith(":*")], actions
    assert "sqs:SendMessage" in actions  # the on-failure destination
    services = [s for s in recorded["__services"].split(",") if s]
    put_metric_data = recorded["metrics_backend"] == "put_metric_data" or "cloudwatch" in services
    assert ("cloudwatch:PutMetricData" in actions) == put_metric_data
    assert ("secretsmanager:GetSecretValue" in actions) == (
        recorded["use_postgres"] or "secretsmanager" in services
    )
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Action"] == ["cloudwatch:PutMetricData"]:
                namespace = statement["Condition"]["StringEquals"]["cloudwatch:namespace"]
                assert namespace == recorded["metrics_namespace"]


def test_answers_file_is_stable_and_holds_no_paths(tmp_path):
    first = bake(tmp_path / "one", CASES["everything"])
    second = bake(tmp_path / "two" / "deeper", CASES["everything"])
    assert (first / ".cookiecutter.json").read_bytes() == (second / ".cookiecutter.json").read_bytes()
    recorded = answers(first)
    assert not [key for key in recorded if key.startswith("_") and not key.startswith("__")]
    assert str(tmp_path) not in (first / ".cookiecutter.json").read_text()
    assert (
        recorded["__services"] == "s3,ssm,ec2,rds,dynamodb,sqs,sns,secretsmanager,lambda,events,kinesis,"
        "stepfunctions,cloudwatch,logs,athena"
    )


def test_recorded_answers_rebake_identically(tmp_path):
    first = bake(tmp_path / "one", CASES["everything"])
    recorded = {key: value for key, value in answers(first).items() if not key.startswith("_")}
    second = bake(tmp_path / "two", recorded)
    files = sorted(str(p.relative_to(first)) for p in first.rglob("*") if p.is_file())
    assert files == sorted(str(p.relative_to(second)) for p in second.rglob("*") if p.is_file())
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative


def test_cruft_skip_lists_the_user_owned_files(baked):
    project = baked("defaults")
    skip = user_owned_entries(project)
    assert skip == [
        "src/my_function/steps.py",
        "tests/test_steps.py",
        "events/",
        "template.yaml",
        "review.toml",
        "requirements-toolkit.txt",
    ]
    for entry in skip:
        assert (project / entry).exists(), entry


def test_answers_cannot_inject_code(tmp_path):
    hostile = "Quotes ' and ''' and ); import os; os._exit(0) # stay text"
    project = bake(tmp_path / "out", {"description": hostile})
    assert answers(project)["description"] == hostile


HOSTILE = [
    ("function_name", {"function_name": 'a"b'}),
    ("function_name", {"function_name": "a'b"}),
    ("function_name", {"function_name": "my function"}),
    ("function_name", {"function_name": "함수-λ"}),
    ("function_name", {"function_name": "f" * 65}),
    ("function_name", {"function_name": "class"}),
    ("function_name", {"function_name": "json"}),
    ("function_name", {"function_name": "{{7*7}}"}),
    ("function_name", {"function_name": "two\nlines"}),
    ("description", {"description": "two\nlines"}),
    ("description", {"description": "d" * 257}),
    ("memory_size", {"memory_size": "64"}),
    ("memory_size", {"memory_size": "20000"}),
    ("timeout", {"timeout": "0"}),
    ("timeout", {"timeout": "901"}),
    ("region", {"region": "Seoul"}),
    ("schedule_expression", {"schedule_expression": "rate(5 minute)"}),
    ("schedule_expression", {"schedule_expression": "cron(bad)"}),
    ("aws_services", {"aws_services": "s4"}),
    ("aws_services", {"aws_services": "s3,s3"}),
    ("prewarm_services", {"aws_services": "s3", "prewarm_services": "ssm"}),
    ("metrics_namespace", {"metrics_namespace": "AWS/Lambda"}),
    ("layer_name", {"layer_name": "core layer"}),
]


@pytest.mark.parametrize(("field", "extra"), HOSTILE, ids=[f"{f}-{i}" for i, (f, _) in enumerate(HOSTILE)])
def test_hostile_answers_are_refused(tmp_path, capfd, field, extra):
    output = tmp_path / "out"
    output.mkdir()
    with pytest.raises(FailedHookException):
        bake(output, extra)
    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ERROR: {field}: "), lines[0]
    assert " is not valid: " in lines[0]
    assert list(output.iterdir()) == []


def test_a_refused_bake_keeps_a_folder_that_existed(tmp_path, capfd):
    output = tmp_path / "out"
    existing = output / "my-function"
    existing.mkdir(parents=True)
    (existing / "mine.txt").write_text("keep me")
    with pytest.raises(FailedHookException):
        bake(output, {"memory_size": "64"}, overwrite_if_exists=True)
    assert capfd.readouterr().err.startswith("ERROR: memory_size: '64' is not valid")
    assert (existing / "mine.txt").read_text() == "keep me"
