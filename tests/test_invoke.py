"""`leanlambda invoke`: Lambda's REPORT line, its errors, timeouts, isolation and moto."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from leanlambda.cli import main

REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d\d) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<size>\d+) MB\tMax Memory Used: (?P<used>\d+) MB\t"
    r"Init Duration: (?P<init>\d+\.\d\d) ms(?P<rest>.*)$",
    re.M,
)

HANDLER = """
import json
import logging
import os
import sys
import time

logger = logging.getLogger(__name__)
ENV_KEYS = ("AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "EXTRA", "AWS_LAMBDA_LOG_FORMAT",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")


def lambda_handler(event, context):
    mode = event.get("mode", "ok")
    logger.info("mode %s", mode)
    if mode == "raise":
        raise ValueError("boom")
    if mode == "sleep":
        time.sleep(30)
    if mode == "exit":
        os._exit(3)
    if mode == "garbage":
        sys.stdout.buffer.write(b"\\xff\\xfe not utf-8 REPORT RequestId: fake\\n")
        print(json.dumps({"event": "invoke", "result": "\\"forged\\""}))
    if mode == "unserialisable":
        return {1, 2}
    if mode == "import":
        import requests  # noqa: F401 - not in the runtime: must fail as on Lambda
    if mode == "boto3":
        import boto3

        s3 = boto3.client("s3")
        where = {"LocationConstraint": os.environ["AWS_REGION"]}
        s3.create_bucket(Bucket="leanlambda-test", CreateBucketConfiguration=where)
        return {"buckets": [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]}
    return {
        "ok": True,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "name": context.function_name,
        "arn": context.invoked_function_arn,
        "env": {key: os.environ.get(key) for key in ENV_KEYS},
        "path_has_site_packages": any("site-packages" in p and "runtime" not in p for p in sys.path),
    }
"""

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Parameters:
  CoreLayerArn:
    Type: String
Resources:
  Function:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: probe.handler.lambda_handler
      Runtime: python3.13
      Architectures: [arm64]
      MemorySize: 512
      Timeout: 2
      Layers: [!Ref CoreLayerArn]
      LoggingConfig:
        LogFormat: JSON
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("invoke") / "probe-fn"
    (root / "src" / "probe").mkdir(parents=True)
    (root / "src" / "probe" / "__init__.py").write_text("")
    (root / "src" / "probe" / "handler.py").write_text(textwrap.dedent(HANDLER))
    (root / "template.yaml").write_text(TEMPLATE)
    (root / ".cookiecutter.json").write_text(json.dumps({"function_name": "probe-fn", "region": "eu-west-1"}))
    events = root / "events"
    events.mkdir()
    for mode in ("ok", "raise", "sleep", "exit", "garbage", "unserialisable", "import", "boto3"):
        (events / f"{mode}.json").write_text(json.dumps({"mode": mode}))
    return root


def invoke(capsys, probe: Path, mode: str, *extra: str) -> tuple[int, str, str]:
    code = main(["invoke", str(probe), "--event", str(probe / "events" / f"{mode}.json"), *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_report_line_has_lambdas_fields(probe, capsys):
    code, _out, err = invoke(capsys, probe, "ok")
    assert code == 0
    match = REPORT.search(err)
    assert match, err
    duration = float(match["duration"])
    assert int(match["billed"]) == max(1, -(-int(duration * 100) // 100))  # ceil, in whole ms
    assert match["size"] == "512"
    assert 5 < int(match["used"]) < 200
    assert match["rest"] == ""
    assert f"START RequestId: {match['id']} Version: $LATEST" in err
    assert "Estimated cost per 1M invocations (arm64, 512 MB)" in err
    assert "INIT is billed since 2025-08" in err
    assert "AWS Lambda pricing, us-east-1, first tier" in err


def test_context_and_environment_follow_the_template(probe, capsys):
    _code, out, err = invoke(capsys, probe, "ok", "--env", "EXTRA=1")
    result = json.loads(out)
    assert result["ok"] and result["memory"] == "512" and result["name"] == "probe-fn"
    assert result["arn"].startswith("arn:aws:lambda:eu-west-1:")
    assert 1000 < result["remaining_ms"] <= 2000
    assert result["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": "probe-fn",
        "AWS_REGION": "eu-west-1",
        "EXTRA": "1",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
    }
    assert result["path_has_site_packages"] is False
    log_line = next(line for line in err.splitlines() if line.startswith("{"))
    assert json.loads(log_line)["message"] == "mode ok"


def test_memory_and_timeout_options_override_the_template(probe, capsys):
    _code, out, err = invoke(capsys, probe, "ok", "--memory", "1024", "--timeout", "5")
    assert json.loads(out)["memory"] == "1024"
    assert json.loads(out)["remaining_ms"] > 4000
    assert REPORT.search(err)["size"] == "1024"


def test_raising_handler_reports_a_lambda_error(probe, capsys):
    code, out, err = invoke(capsys, probe, "raise")
    assert code == 1
    assert json.loads(out) == {"errorType": "ValueError", "errorMessage": "boom"}
    assert REPORT.search(err)["rest"] == "\tStatus: error\tError Type: ValueError"
    assert 'handler.py", line' in err and "leanlambda/cli.py" not in err


def test_timing_out_handler_is_killed_at_the_timeout(probe, capsys):
    code, out, err = invoke(capsys, probe, "sleep", "--timeout", "1")
    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    match = REPORT.search(err)
    assert match["duration"] == "1000.00" and match["rest"] == "\tStatus: timeout"


def test_exiting_handler_reports_runtime_exit_error(probe, capsys):
    code, out, _err = invoke(capsys, probe, "exit")
    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in error["errorMessage"]


def test_garbage_on_stdout_cannot_forge_the_result(probe, capsys):
    code, out, err = invoke(capsys, probe, "garbage")
    assert code == 0
    assert json.loads(out)["ok"] is True
    assert "not utf-8 REPORT RequestId: fake" in err
    assert len(REPORT.findall(err)) == 1


def test_unserialisable_result_is_a_marshal_error(probe, capsys):
    code, out, _err = invoke(capsys, probe, "unserialisable")
    assert code == 1
    assert json.loads(out)["errorType"] == "Runtime.MarshalError"


def test_only_the_runtime_packages_are_importable(probe, capsys):
    code, out, _err = invoke(capsys, probe, "import")
    assert code == 1
    assert json.loads(out) == {
        "errorType": "ModuleNotFoundError",
        "errorMessage": "No module named 'requests'",
    }


def test_layer_zip_is_extracted_onto_the_path(probe, tmp_path, capsys):
    import zipfile

    layer = tmp_path / "layer.zip"
    with zipfile.ZipFile(layer, "w") as archive:
        archive.writestr("python/requests/__init__.py", "")
    code, out, _err = invoke(capsys, probe, "import", "--layer", str(layer))
    assert code == 0, out


def test_moto_serves_boto3_and_stops(probe, capsys):
    code, out, err = invoke(capsys, probe, "boto3", "--moto", "--timeout", "30")
    assert code == 0, err
    assert json.loads(out) == {"buckets": ["leanlambda-test"]}
    code, out, err = invoke(capsys, probe, "boto3", "--moto", "--timeout", "30")
    assert json.loads(out) == {"buckets": ["leanlambda-test"]}, "each run starts with an empty moto"


def test_without_moto_there_are_no_credentials(probe, capsys, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    code, out, _err = invoke(capsys, probe, "boto3", "--timeout", "30")
    assert code == 1
    assert json.loads(out)["errorType"] == "NoCredentialsError"


def test_invokes_the_default_bake(default_bake, capsys):
    code = main(
        ["invoke", str(default_bake), "--event", str(default_bake / "events" / "event.json"), "--moto"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["ok"] is True
    assert REPORT.search(captured.err)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--event", "/nonexistent.json"], "no such event file"),
        (["--memory", "64"], "--memory must be"),
        (["--timeout", "901"], "--timeout must be"),
        (["--env", "NOEQUALS"], "--env expects KEY=VALUE"),
        (["--layer", "/nonexistent-layer"], "no such layer"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(probe, capsys, extra, message):
    assert main(["invoke", str(probe), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_bad_event_json_is_a_usage_error(probe, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["invoke", str(probe), "--event", str(bad)]) == 2
    assert "is not JSON" in capsys.readouterr().err
