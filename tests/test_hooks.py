"""Unit tests of the template's hooks, imported from their unrendered source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leanlambda.template_contract import HOOKS_DIR, pre_gen_hook, template_hook
from leanlambda.template_source import template_context, template_dir

HOOKS = template_dir() / HOOKS_DIR
FUNCTION_FOLDER = template_dir() / "{{cookiecutter.function_name}}"
pre = pre_gen_hook()
post = template_hook("post_gen_project")
KNOWN = frozenset({"s3", "ssm", "ec2", "rds", "cloudwatch", "dynamodb", "secretsmanager"})

GOOD_ANSWERS = {
    "function_name": "my-function",
    "module_name": "my_function",
    "description": "A lean AWS Lambda function",
    "runtime": "python3.12",
    "architecture": "arm64",
    "memory_size": "256",
    "timeout": "60",
    "region": "ap-northeast-2",
    "aws_services": "s3,ssm",
    "prewarm_services": "ssm",
    "use_postgres": True,
    "use_upbit": False,
    "metrics_namespace": "LeanLambda/my-function",
    "metrics_backend": "emf",
    "layer_name": "core-layer",
    "schedule_expression": "rate(4 hours)",
}


def rejected(call, *args) -> pre.InvalidAnswer:
    with pytest.raises(pre.InvalidAnswer) as info:
        call(*args)
    return info.value


def test_unrendered_hooks_import_without_running():
    assert callable(pre.main)
    assert callable(post.main)


def test_valid_answers_pass_and_are_normalised():
    result = pre.validate_answers(GOOD_ANSWERS, KNOWN)
    assert result["memory_size"] == 256
    assert result["timeout"] == 60
    assert result["aws_services"] == ["s3", "ssm"]
    assert result["prewarm_services"] == ["ssm"]


@pytest.mark.parametrize("name", ["f", "my-function", "My_Function-2", "a" * 64, "x1"])
def test_function_name_accepts(name):
    assert pre.validate_function_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "a" * 65, "my function", 'a"b', "a'b", "fünf", "함수", "a.b", "a/b", "a\nb", "fn\n", 7]
)
def test_function_name_rejects(name):
    assert rejected(pre.validate_function_name, name).field == "function_name"


@pytest.mark.parametrize("module", ["my_function", "_private", "scanner", "makenaide_scanner"])
def test_module_name_accepts(module):
    assert pre.validate_module_name(module) == module


@pytest.mark.parametrize(
    ("module", "reason"),
    [
        ("class", "keyword"),
        ("match", "keyword"),
        ("json", "standard-library"),
        ("logging", "standard-library"),
        ("boto3", "layer"),
        ("psycopg2", "layer"),
        ("pyupbit", "layer"),
        ("requests", "layer"),
        ("pandas", "layer"),
        ("1fn", "identifier"),
        ("my-fn", "identifier"),
        ("", "identifier"),
    ],
)
def test_module_name_rejects(module, reason):
    error = rejected(pre.validate_module_name, module)
    assert reason in error.allowed


def test_module_name_error_names_the_function_name_field():
    error = rejected(pre.validate_module_name, "json", "json")
    assert error.line().startswith("ERROR: function_name: 'json' is not valid: its module name 'json'")


@pytest.mark.parametrize("text", ["x", "Scans Upbit's KRW markets", "d" * 256, "한국어 설명", "a'b", "49"])
def test_description_accepts(text):
    assert pre.validate_description(text) == text


@pytest.mark.parametrize(
    "text", ["", "d" * 257, "two\nlines", "tab\there", "cr\r", 'a"b', "back\\slash", " padded", "padded "]
)
def test_description_rejects(text):
    assert rejected(pre.validate_description, text).field == "description"


@pytest.mark.parametrize(
    ("call", "good", "bad"),
    [
        (pre.validate_runtime, ["python3.13", "python3.14", "python3.12"], ["python3.9", "python", ""]),
        (pre.validate_architecture, ["x86_64", "arm64"], ["amd64", "ARM64"]),
        (pre.validate_metrics_backend, ["emf", "put_metric_data"], ["statsd", "EMF"]),
    ],
)
def test_choices(call, good, bad):
    for value in good:
        assert call(value) == value
    for value in bad:
        assert "one of" in rejected(call, value).allowed


@pytest.mark.parametrize("runtime", ["python3.11", "python3.10", "python3.9"])
def test_a_deprecated_runtime_is_refused_naming_what_to_choose(runtime):
    line = rejected(pre.validate_runtime, runtime).line()
    assert "deprecated on Lambda" in line and "python3.13, python3.14, python3.12" in line
    assert "\n" not in line


def test_the_hooks_runtimes_are_the_toolkits():
    from leanlambda import limits

    assert tuple(limits.RUNTIME_PYTHONS) == pre.RUNTIMES
    assert pre.RUNTIMES[0] == limits.DEFAULT_RUNTIME
    assert pre.DEPRECATED_RUNTIMES == limits.DEPRECATED_RUNTIMES


@pytest.mark.parametrize(("value", "expected"), [("128", 128), ("10240", 10240), (512, 512), ("1769", 1769)])
def test_memory_accepts(value, expected):
    assert pre.validate_memory_size(value) == expected


@pytest.mark.parametrize(
    "value", ["64", "127", "10241", "20000", "0", "-256", "256.0", "0256", " 256", "", True, None]
)
def test_memory_rejects(value):
    assert rejected(pre.validate_memory_size, value).field == "memory_size"


@pytest.mark.parametrize(("value", "expected"), [("3", 3), ("900", 900), (60, 60)])
def test_timeout_accepts(value, expected):
    assert pre.validate_timeout(value) == expected


@pytest.mark.parametrize("value", ["0", "1", "2", "901", "-1", "1e3", "sixty", False])
def test_timeout_rejects(value):
    assert rejected(pre.validate_timeout, value).field == "timeout"


@pytest.mark.parametrize(
    "region", ["ap-northeast-2", "us-east-1", "us-gov-west-1", "eu-central-2", "cn-north-1"]
)
def test_region_accepts(region):
    assert pre.validate_region(region) == region


@pytest.mark.parametrize(
    "region", ["", "seoul", "AP-NORTHEAST-2", "ap-northeast", "ap-northeast-2\n", "us-east-12"]
)
def test_region_rejects(region):
    assert rejected(pre.validate_region, region).field == "region"


@pytest.mark.parametrize(
    "schedule",
    [
        "",
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 hour)",
        "rate(4 hours)",
        "rate(1 day)",
        "rate(7 days)",
        "cron(0 */4 * * ? *)",
        "cron(0 12 ? * MON-FRI *)",
        "cron(15 10 L * ? 2030)",
        "cron(0 8 ? * 6#3 *)",
    ],
)
def test_schedule_accepts(schedule):
    assert pre.validate_schedule(schedule) == schedule


@pytest.mark.parametrize(
    "schedule",
    [
        "rate(5 minute)",
        "rate(1 minutes)",
        "rate(0 minutes)",
        "rate(05 minutes)",
        "rate(5 weeks)",
        "rate( 5 minutes)",
        "rate(5  minutes)",
        "cron(bad)",
        "cron(0 12 * * *)",
        "cron(0 12 * * * * *)",
        "cron(0 12 * * * *)",
        "cron(0 12 ? * ? *)",
        "cron(0 12 ? * MON;rm *)",
        "0 12 * * ?",
        "rate(5 minutes)\n",
    ],
)
def test_schedule_rejects(schedule):
    assert rejected(pre.validate_schedule, schedule).field == "schedule_expression"


def test_services():
    assert pre.validate_services("", KNOWN) == []
    assert pre.validate_services("s3,ssm,ec2", KNOWN) == ["s3", "ssm", "ec2"]
    for bad in ["s4", "s3,s3", "s3,", ",s3", "s3,,ssm", "S3", "s3 ssm", "s3;ssm"]:
        assert rejected(pre.validate_services, bad, KNOWN).field == "aws_services"
    assert "not a botocore service" in rejected(pre.validate_services, "s4", KNOWN).allowed
    assert "listed twice" in rejected(pre.validate_services, "s3,ssm,s3", KNOWN).allowed


def test_services_without_botocore_check_the_shape_only():
    assert pre.validate_services("anything-1,s4", None) == ["anything-1", "s4"]
    rejected(pre.validate_services, "Bad_Name", None)


def test_known_services_come_from_botocore():
    known = pre.known_services()
    assert known is not None
    assert {"s3", "ssm", "ec2", "rds", "stepfunctions"} <= known
    assert "s4" not in known


def test_prewarm_must_be_a_subset():
    assert pre.validate_prewarm("", ["s3"], KNOWN) == []
    assert pre.validate_prewarm("s3", ["s3", "ssm"], KNOWN) == ["s3"]
    error = rejected(pre.validate_prewarm, "ssm", ["s3"], KNOWN)
    assert error.field == "prewarm_services"
    assert "subset" in error.allowed
    rejected(pre.validate_prewarm, "s3", [], KNOWN)
    rejected(pre.validate_prewarm, "s3,s3", ["s3"], KNOWN)


@pytest.mark.parametrize("value", [True, False])
def test_flags_accept_booleans(value):
    assert pre.validate_flag("use_postgres", value) is value


@pytest.mark.parametrize("value", ["yes", "true", 1, None])
def test_flags_reject_non_booleans(value):
    rejected(pre.validate_flag, "use_postgres", value)


@pytest.mark.parametrize(
    "namespace",
    ["LeanLambda/my-function", "Makenaide/IntegratedOrchestrator", "a", "x" * 255, "A.b_c/d#e:f-g"],
)
def test_namespace_accepts(namespace):
    assert pre.validate_metrics_namespace(namespace) == namespace


@pytest.mark.parametrize("namespace", ["", ":x", "AWS/Lambda", "x" * 256, "has space", "quote'", "a\nb", "é"])
def test_namespace_rejects(namespace):
    assert rejected(pre.validate_metrics_namespace, namespace).field == "metrics_namespace"


@pytest.mark.parametrize("name", ["core-layer", "makenaide_core_layer", "L" * 140])
def test_layer_name_accepts(name):
    assert pre.validate_layer_name(name) == name


@pytest.mark.parametrize("name", ["", "L" * 141, "core layer", "core:layer", "arn:aws:lambda"])
def test_layer_name_rejects(name):
    assert rejected(pre.validate_layer_name, name).field == "layer_name"


def test_error_line_is_one_truncated_line():
    error = pre.InvalidAnswer("description", "x\n" * 100, "one line")
    line = error.line()
    assert "\n" not in line
    assert line.startswith("ERROR: description: 'x\\nx")
    assert line.endswith("... is not valid: one line")
    assert len(line) < 120


def test_answers_are_checked_in_prompt_order():
    answers = dict(GOOD_ANSWERS, memory_size="64", timeout="0")
    assert rejected(pre.validate_answers, answers, KNOWN).field == "memory_size"


def test_every_prompt_has_its_validator_in_prompt_order():
    """A new prompt without a validator, or one checked out of order, fails here."""
    prompts = [key for key in template_context(template_dir()) if not key.startswith("_")]
    derived = [field for field in pre.ANSWER_ORDER if field not in prompts]
    assert [field for field in pre.ANSWER_ORDER if field in prompts] == prompts
    assert derived == ["module_name", "stack_name"]
    tabled = [field for field in pre.ANSWER_ORDER if field in pre.FIELD_VALIDATORS]
    assert tabled == list(pre.FIELD_VALIDATORS)
    assert set(prompts) - set(pre.FIELD_VALIDATORS) == {"aws_services", "prewarm_services"}


@pytest.mark.parametrize("field", list(pre.FIELD_VALIDATORS))
def test_validate_answers_reports_each_tabled_field(field):
    answers = dict(GOOD_ANSWERS, **{field: "\n"})  # a line break: no field accepts it
    assert rejected(pre.validate_answers, answers, KNOWN).field == field


def test_tojson_reading_survives_hostile_strings():
    """The rendered hook reads answers as json.loads(r'<tojson>'): quotes cannot break out."""
    from jinja2 import Environment

    source = "value = json.loads(r'{{ x | tojson }}')"
    for hostile in ["a'b", 'a"b', "a\\b", "x'); import os; ('", "line\nbreak", "'''", '"""', "\\"]:
        rendered = Environment().from_string(source).render(x=hostile)
        namespace: dict = {"json": json}
        exec(compile(rendered, "<hook>", "exec"), namespace)
        assert namespace["value"] == hostile


def _populate(root: Path, module: str) -> None:
    for relative in [
        f"src/{module}/handler.py",
        f"src/{module}/db.py",
        f"src/{module}/upbit.py",
        "tests/test_db.py",
        "tests/pg_server.py",
        "tests/test_upbit.py",
        "tests/test_runtime.py",
        "tests/recorded/market_all.json",
        "events/event.json",
    ]:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text("x")


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def test_post_hook_keeps_selected_options(tmp_path):
    _populate(tmp_path, "fn")
    before = _files(tmp_path)
    assert post.remove_unselected(tmp_path, "fn", use_postgres=True, use_upbit=True) == []
    assert _files(tmp_path) == before


def test_post_hook_removes_unselected_options(tmp_path):
    _populate(tmp_path, "fn")
    removed = post.remove_unselected(tmp_path, "fn", use_postgres=False, use_upbit=False)
    assert set(removed) == {
        "src/fn/db.py",
        "tests/test_db.py",
        "tests/pg_server.py",
        "src/fn/upbit.py",
        "tests/test_upbit.py",
        "tests/recorded",
    }
    assert _files(tmp_path) == {"src/fn/handler.py", "tests/test_runtime.py", "events/event.json"}


def test_post_hook_removes_each_option_alone(tmp_path):
    _populate(tmp_path, "fn")
    post.remove_postgres_files(tmp_path, "fn")
    files = _files(tmp_path)
    assert "src/fn/db.py" not in files
    assert "src/fn/upbit.py" in files
    post.remove_upbit_files(tmp_path, "fn")
    assert "src/fn/upbit.py" not in _files(tmp_path)
    assert post.remove_upbit_files(tmp_path, "fn") == []


@pytest.mark.parametrize("option", ["postgres", "upbit"])
def test_post_hook_names_only_files_the_template_has(option):
    """A path the template never had would be a dead end: removing nothing, kept for nothing."""
    files = getattr(post, f"{option}_files")("{{cookiecutter.__module_name}}")
    missing = [relative for relative in files if not (FUNCTION_FOLDER / relative).exists()]
    assert missing == []


def test_hooks_read_answers_through_single_quoted_raw_strings():
    """tojson output is double-quoted JSON with "'" escaped: only r'...' can hold every answer."""
    for hook in ("pre_gen_project.py", "post_gen_project.py"):
        text = (HOOKS / hook).read_text()
        assert "| tojson }}" in text
        assert 'json.loads(r"' not in text
        for line in text.splitlines():
            if "| tojson }}" in line:
                assert "json.loads(r'{{ cookiecutter." in line, line


# ------------------------------------------------ values that would fail only at deploy time (issue 14)
@pytest.mark.parametrize(
    "schedule",
    [
        "cron(99 99 ? * * *)",
        "cron(x x ? x x x)",
        "cron(60 0 ? * * *)",
        "cron(0 24 ? * * *)",
        "cron(0 0 32 * ? *)",
        "cron(0 0 0 * ? *)",
        "cron(0 0 ? 13 * *)",
        "cron(0 0 ? * 8 *)",
        "cron(0 0 ? * * 1969)",
        "cron(0 0 ? * * 2200)",
        "cron(0 0 ? * MON#6 *)",
        "cron(0 0 ? * FOO *)",
        "cron(0/0 * ? * * *)",
        "cron(0 0 W * ? *)",
        "cron(0,,5 * ? * * *)",
        "cron(0 0 1-40 * ? *)",
        "cron(0 0 ? * L# *)",
        "rate(99999999999999999999 minutes)",
        "rate(525601 minutes)",
        "rate(366 days)",
        "rate(8761 hours)",
    ],
)
def test_schedule_rejects_out_of_range_fields_and_rates(schedule):
    assert rejected(pre.validate_schedule, schedule).field == "schedule_expression"


@pytest.mark.parametrize(
    "schedule",
    [
        "cron(0/15 * ? * * *)",
        "cron(0 8 ? JAN,JUL MON-FRI 2026-2030)",
        "cron(0 0 LW * ? *)",
        "cron(0 0 15W * ? *)",
        "cron(0 0 ? * 6L *)",
        "cron(0 0 ? * L *)",
        "cron(59 23 31 12 ? 2199)",
        "rate(365 days)",
        "rate(525600 minutes)",
    ],
)
def test_schedule_accepts_eventbridge_forms(schedule):
    assert pre.validate_schedule(schedule) == schedule


@pytest.mark.parametrize("region", ["zz-nowhere-9", "us-nowhere-1", "ap-northeast-9", "eu-west-99"])
def test_region_must_be_in_botocores_partition_data(region):
    assert rejected(pre.validate_region, region).field == "region"


def test_regions_come_from_botocores_endpoints_data():
    known = pre.known_regions()
    assert {"ap-northeast-2", "us-east-1", "us-gov-west-1", "cn-north-1"} <= known


def test_without_botocore_the_region_is_checked_for_a_partitions_shape(monkeypatch):
    monkeypatch.setattr(pre, "known_regions", lambda: None)
    assert pre.validate_region("us-nowhere-1") == "us-nowhere-1"
    assert rejected(pre.validate_region, "zz-nowhere-9").field == "region"


@pytest.mark.parametrize(
    "char",
    [
        "\u2028",
        "\u2029",
        "\u0085",
        "\x80",
        "\x9f",
        "\x1b",
        "\x7f",
        "\u202e",
        "\u202d",
        "\u2066",
        "\u2069",
        "\u200f",
        "\u061c",
    ],
)
def test_description_rejects_line_breaks_controls_and_bidi_characters(char):
    assert rejected(pre.validate_description, f"safe {char} text").field == "description"


def test_description_keeps_ordinary_unicode():
    assert pre.validate_description("업비트 시세 수집 — café ✓") == "업비트 시세 수집 — café ✓"


@pytest.mark.parametrize("name", ["-x", "1abc", "_private", "a" * 129])
def test_stack_name_rule_is_cloudformations(name):
    assert rejected(pre.validate_stack_name, name).field == "function_name"


@pytest.mark.parametrize(
    ("function_name", "stack_name"),
    [("my_function", "my-function"), ("_job", "fn--job"), ("-job", "fn--job"), ("Orders", "Orders")],
)
def test_the_derived_stack_name_is_valid_and_named_in_the_makefile(function_name, stack_name, tmp_path):
    from cookiecutter.main import cookiecutter

    created = Path(
        cookiecutter(
            str(HOOKS.parent),
            no_input=True,
            output_dir=str(tmp_path),
            extra_context={"function_name": function_name},
        )
    )
    assert pre.validate_stack_name(stack_name) == stack_name
    assert f"STACK_NAME ?= {stack_name}\n" in (created / "Makefile").read_text()


def test_every_region_botocore_knows_has_the_fallback_shape():
    """Without botocore the hook checks the shape only: it must never refuse a real region."""
    assert all(pre.REGION_RE.fullmatch(region) for region in pre.known_regions())


def test_the_toolkit_comes_from_where_the_template_came_from(tmp_path):
    repo = tmp_path / "leanlambda"
    repo.mkdir()
    (repo / "pyproject.toml").write_text("[project]\nname = 'leanlambda'\n")
    assert (
        post.toolkit_requirement("gh:someone/leanlambda") == "git+https://github.com/someone/leanlambda.git"
    )
    assert post.toolkit_requirement("https://example.org/x/leanlambda.git", "v1") == (
        "git+https://example.org/x/leanlambda.git@v1"
    )
    assert post.toolkit_requirement(str(repo)) == str(repo)
    assert post.toolkit_requirement("leanlambda", None, str(tmp_path)) == str(
        repo
    )  # `cookiecutter leanlambda`
    assert post.toolkit_requirement("../leanlambda", None, str(tmp_path / "elsewhere")) == str(repo)
    assert post.toolkit_requirement("leanlambda", None, None) == ""  # relative, and no idea to what
    bundled = tmp_path / "site-packages" / "leanlambda" / "_template"
    bundled.mkdir(parents=True)
    assert post.toolkit_requirement(str(bundled)) == ""  # a wheel's copy of the template is not installable


def test_the_post_hook_completes_requirements_toolkit(tmp_path):
    (tmp_path / post.TOOLKIT_FILE).write_text("# header\n")
    post.write_toolkit_requirement(tmp_path, "/src/leanlambda")
    assert (tmp_path / post.TOOLKIT_FILE).read_text() == "# header\n/src/leanlambda\n"
    (tmp_path / post.TOOLKIT_FILE).write_text("# header\n")
    post.write_toolkit_requirement(tmp_path, "")
    assert (tmp_path / post.TOOLKIT_FILE).read_text().splitlines()[1].startswith("# (the template's location")
