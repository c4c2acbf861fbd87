"""The Makenaide examples: template-owned files match a fresh bake, each example's own tests
and ruff pass, and every example template (and the whole stack) passes cfn-lint with the
serverless rules and the SAM translator."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO / "examples"
STACK_TEMPLATE = EXAMPLES_DIR / "template.yaml"
RUFF = Path(sys.executable).parent / "ruff"
REGION = "ap-northeast-2"


def _load_regenerate():
    spec = importlib.util.spec_from_file_location("examples_regenerate", EXAMPLES_DIR / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


regenerate = _load_regenerate()
EXAMPLES = regenerate.example_dirs(EXAMPLES_DIR)
IDS = [example.name for example in EXAMPLES]
TEMPLATES = [STACK_TEMPLATE] + [example / "template.yaml" for example in EXAMPLES]
TEMPLATE_IDS = ["stack", *IDS]


def _session_postgres(request):
    """tests/conftest.py's session server (``.database(name)``), whichever name it has."""
    for name in ("session_postgres", "postgres"):
        try:
            return request.getfixturevalue(name)
        except pytest.FixtureLookupError:
            continue
    raise pytest.UsageError("tests/conftest.py provides no session PostgreSQL fixture")


def _answers(example: Path) -> dict:
    return json.loads((example / ".cookiecutter.json").read_text())


def test_the_examples_are_there():
    assert EXAMPLES, "no example holds a .cookiecutter.json"
    assert (EXAMPLES_DIR / "makenaide-integrated-orchestrator") in EXAMPLES


# --- template-owned files are a fresh bake ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_template_owned_files_match_a_fresh_bake(example):
    found = regenerate.drift(example)
    assert not found, (
        "template-owned files differ from a fresh bake of the recorded answers "
        "(run `python examples/regenerate.py`, or list user-owned files under [tool.cruft] skip):\n"
        + "\n".join(found.lines())
    )


@pytest.mark.slow
def test_the_drift_check_reports_an_edited_template_owned_file(tmp_path):
    source = EXAMPLES_DIR / "makenaide-integrated-orchestrator"
    example = tmp_path / source.name
    shutil.copytree(source, example, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    regenerate.regenerate(example)  # start from no drift, whatever the template did meanwhile
    assert not regenerate.drift(example)
    module = _answers(example)["__module_name"]
    template_owned = f"src/{module}/handler.py"
    user_owned = f"src/{module}/steps.py"
    (example / template_owned).write_text((example / template_owned).read_text() + "# edited by hand\n")
    (example / user_owned).write_text((example / user_owned).read_text() + "# the user's own\n")
    (example / "events" / "mine.json").write_text("{}\n")
    (example / "tests" / "conftest.py").unlink()
    (example / "stray.py").write_text("\n")

    found = regenerate.drift(example)
    assert found.changed == [template_owned]
    assert found.missing == ["tests/conftest.py"]
    assert found.extra == ["stray.py"]

    regenerate.regenerate(example)  # and regenerating repairs exactly those, sparing the user's
    assert not regenerate.drift(example)
    assert (example / user_owned).read_text().endswith("# the user's own\n")
    assert (example / "events" / "mine.json").exists()
    assert not (example / "stray.py").exists()


@pytest.mark.parametrize(
    ("relative", "owned"),
    [
        ("src/m/steps.py", True),
        ("events/a.json", True),
        ("events/sub/b.json", True),
        ("eventsx/a.json", False),
        ("template.yaml", True),
        ("tests/test_steps.py", True),
        ("tests/test_runtime.py", False),
        ("tests/recorded/x.json", True),
        ("docs/notes.md", False),
    ],
)
def test_skip_entries_match_like_cruft(relative, owned):
    skip = ["src/m/steps.py", "tests/test_steps.py", "events/", "template.yaml", "tests/recorded/*"]
    assert regenerate.is_user_owned(relative, skip) is owned


# --- each example's own tests and linter ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_the_examples_own_tests_pass(example, request):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_", "DATABASE_URL"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # All examples share the session's one throwaway server, each in a fresh database of its own.
    env["DATABASE_URL"] = _session_postgres(request).database(_answers(example)["__module_name"])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=example,
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert " passed" in result.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_ruff_passes_on_each_example(example):
    result = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--config", "pyproject.toml", "."],
        cwd=example,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- templates: cfn-lint with the serverless rules, and the SAM translator ----------------------------


@pytest.mark.parametrize("template", TEMPLATES, ids=TEMPLATE_IDS)
def test_cfn_lint_with_serverless_rules_reports_nothing(template):
    from cfnlint.api import ManualArgs, lint_file

    config = ManualArgs(append_rules=["cfn_lint_serverless.rules"], regions=[REGION])
    matches = lint_file(template, config=config)
    assert matches == [], "\n".join(str(match) for match in matches)


class _NoManagedPolicies:
    """The translator's managed-policy loader; the templates name no managed policy."""

    def load(self) -> dict[str, str]:
        return {}


def _translate(template: Path, monkeypatch) -> dict:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    document = yaml_parse(template.read_text())
    for resource in document["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):  # what `sam package` puts there
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://bucket/{resource['Type'].rsplit('::', 1)[-1]}.zip"
    return transform(copy.deepcopy(document), {}, _NoManagedPolicies())


def _statements(role: dict) -> list[dict]:
    policies = role["Properties"].get("Policies", [])
    return [statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]]


@pytest.mark.parametrize("template", TEMPLATES, ids=TEMPLATE_IDS)
def test_sam_translator_accepts_the_template(template, monkeypatch):
    output = _translate(template, monkeypatch)
    resources = output["Resources"]
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    assert functions
    for name, function in functions.items():
        properties = function["Properties"]
        assert properties["LoggingConfig"]["LogFormat"] == "JSON", name
        assert properties["Handler"].endswith(".handler.lambda_handler"), name
        assert properties["Runtime"] == "python3.13", name
        assert properties["Layers"], name
    for name, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            for statement in _statements(resource):
                actions = statement["Action"]
                actions = actions if isinstance(actions, list) else [actions]
                assert not [a for a in actions if a == "*" or a.endswith(":*")], (name, actions)


def test_the_orchestrators_permissions_name_exact_actions_on_its_resources(monkeypatch):
    output = _translate(EXAMPLES_DIR / "makenaide-integrated-orchestrator" / "template.yaml", monkeypatch)
    statements = _statements(output["Resources"]["FunctionRole"])
    by_action = {}
    for statement in statements:
        for action in statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]:
            by_action[action] = json.dumps(statement["Resource"])
    for action in ("ec2:StartInstances", "ec2:StopInstances", "ec2:CreateTags", "ssm:SendCommand"):
        assert "instance/${InstanceId}" in by_action[action], action
    for action in ("rds:DescribeDBInstances", "rds:StartDBInstance", "rds:StopDBInstance"):
        assert "db:${DbInstanceIdentifier}" in by_action[action], action
    assert "document/AWS-RunShellScript" in by_action["ssm:SendCommand"]
    assert "ssm:GetCommandInvocation" not in by_action  # granted only if a step reads command output
    assert "secretsmanager:GetSecretValue" not in by_action  # the app reads the secret, not the orchestrator
    rules = [r for r in output["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    patterns = [json.dumps(r["Properties"].get("EventPattern")) for r in rules]
    assert any("EC2 Instance State-change Notification" in p and '"Ref": "InstanceId"' in p for p in patterns)
    assert any(r["Properties"].get("ScheduleExpression") == "rate(4 hours)" for r in rules)


def test_the_stack_holds_the_layer_the_four_functions_and_no_secret_value(monkeypatch):
    output = _translate(STACK_TEMPLATE, monkeypatch)
    resources = output["Resources"]
    assert [r for r in resources.values() if r["Type"] == "AWS::Lambda::LayerVersion"]
    functions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 4
    text = STACK_TEMPLATE.read_text()
    assert "DbSecretArn" in text
    assert "password" not in text.lower().replace("no password", "")


@pytest.mark.parametrize("template", TEMPLATES, ids=TEMPLATE_IDS)
def test_every_function_and_failure_queue_has_an_alarm(template, monkeypatch):
    """A failed run raises (Lambda's Errors) and a failed event ends in the queue: both are alarmed."""
    resources = _translate(template, monkeypatch)["Resources"]
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = {
        (alarm["Namespace"], alarm["MetricName"], json.dumps(dimension["Value"], sort_keys=True))
        for alarm in alarms
        for dimension in alarm["Dimensions"]
    }
    functions = [name for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"]
    queues = [name for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"]
    assert functions and queues
    for name in functions:
        assert ("AWS/Lambda", "Errors", json.dumps({"Ref": name})) in watched, name
    for name in queues:
        value = json.dumps({"Fn::GetAtt": [name, "QueueName"]}, sort_keys=True)
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", value) in watched, name
    for alarm in alarms:
        assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert "AlarmTopicArn" in json.dumps(alarm["AlarmActions"])  # notified when a topic is given
