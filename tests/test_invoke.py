"""`leanlambda invoke` under awslambdaric and the Runtime API: REPORT lines, error documents, timeouts,
memory, warm invocations, isolation and moto."""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest

from leanlambda.cli import main
from leanlambda.emulator.cpu_quota import CpuQuota
from leanlambda.emulator.runner import MODE_INIT, RunSpec, run
from leanlambda.emulator.runtime import FAKE_ACCOUNT_ID
from leanlambda.function import load_function
from leanlambda.interpreters import find_interpreter
from leanlambda.limits import FULL_VCPU_MEMORY_MB, SYNC_RESPONSE_LIMIT_BYTES

REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d\d) ms\t"
    r"Billed Duration: (?P<billed>\d+) ms\tMemory Size: (?P<size>\d+) MB\tMax Memory Used: (?P<used>\d+) MB\t"
    r"Init Duration: (?P<init>\d+\.\d\d) ms(?P<rest>.*)$",
    re.M,
)
ANY_REPORT = re.compile(r"^REPORT RequestId: .*$", re.M)

HANDLER = """
import json
import logging
import os
import sys
import time

logger = logging.getLogger(__name__)
ENV_KEYS = ("AWS_LAMBDA_FUNCTION_NAME", "AWS_REGION", "EXTRA", "AWS_LAMBDA_LOG_FORMAT",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
CALLS = []


def cpu_cgroup():
    \"\"\"(this process's cpu cgroup folder, its quota, its period), from the kernel's own files.\"\"\"
    for line in open("/proc/self/cgroup"):
        _, names, path = line.strip().split(":", 2)
        if "cpu" in names.split(","):
            folder = "/sys/fs/cgroup/cpu" + path
            read = lambda name: open(os.path.join(folder, name)).read().strip()
            return folder, read("cpu.cfs_quota_us"), read("cpu.cfs_period_us")
    for line in open("/proc/self/cgroup"):
        _, names, path = line.strip().split(":", 2)
        if not names:
            for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
                limit = os.path.join(root + path, "cpu.max")
                if os.path.exists(limit):
                    quota, period = open(limit).read().split()
                    return root + path, "-1" if quota == "max" else quota, period
    return None, None, None


INIT_CGROUP = cpu_cgroup()
INIT_CPUS = len(os.sched_getaffinity(0))
print("init cgroup", INIT_CGROUP[0], flush=True)
if os.environ.get("FAIL_INIT"):
    raise RuntimeError("no database at init")


class PipelineFailed(Exception):
    \"\"\"What a generated handler raises when its run is not ok.\"\"\"


def lambda_handler(event, context):
    CALLS.append(context.aws_request_id)
    mode = event.get("mode", "ok")
    logger.info("mode %s", mode)
    if mode == "raise":
        raise ValueError("boom")
    if mode == "pipeline":
        raise PipelineFailed(json.dumps({"ok": False, "failed": "fetch"}))
    if mode == "notok":
        return {"ok": False, "failed": "fetch"}
    if mode == "sleep":
        time.sleep(30)
    if mode == "exit":
        os._exit(3)
    if mode == "hog":
        hog = bytearray(300 * 1024 * 1024)
        time.sleep(5)
        return len(hog)
    if mode == "garbage":
        sys.stdout.buffer.write(b"\\xff\\xfe not utf-8 REPORT RequestId: fake\\n")
        print(json.dumps({"event": "invoke", "result": "\\"forged\\""}))
    if mode == "unserialisable":
        return {1, 2}
    if mode == "big":
        return "x" * int(event["size"])
    if mode == "import":
        import requests  # noqa: F401 - not in the runtime: must fail as on Lambda
    if mode == "cgroup":
        cpus = [INIT_CPUS, len(os.sched_getaffinity(0))]
        return {"init": INIT_CGROUP, "invoke": cpu_cgroup(), "cpus": cpus}
    if mode == "boto3":
        import boto3

        s3 = boto3.client("s3")
        where = {"LocationConstraint": os.environ["AWS_REGION"]}
        s3.create_bucket(Bucket="leanlambda-test", CreateBucketConfiguration=where)
        return {"buckets": [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]}
    before = context.get_remaining_time_in_millis()
    time.sleep(0.05)
    return {
        "ok": True,
        "pid": os.getpid(),
        "calls": list(CALLS),
        "request_id": context.aws_request_id,
        "remaining_ms": [before, context.get_remaining_time_in_millis()],
        "memory": context.memory_limit_in_mb,
        "name": context.function_name,
        "arn": context.invoked_function_arn,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "client_context": context.client_context and context.client_context.custom,
        "python": "%d.%d" % sys.version_info[:2],
        "env": {key: os.environ.get(key) for key in ENV_KEYS},
        "path_has_site_packages": any("site-packages" in p for p in sys.path),
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
      Timeout: 30
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
    modes = ("ok", "raise", "pipeline", "notok", "sleep", "exit", "hog", "garbage", "unserialisable")
    for mode in (*modes, "import", "boto3", "cgroup"):
        (events / f"{mode}.json").write_text(json.dumps({"mode": mode}))
    for name, size in (("big", SYNC_RESPONSE_LIMIT_BYTES), ("almost", SYNC_RESPONSE_LIMIT_BYTES - 100)):
        (events / f"{name}.json").write_text(json.dumps({"mode": "big", "size": size}))
    return root


def invoke(capsys, probe: Path, mode: str, *extra: str) -> tuple[int, str, str]:
    """`leanlambda invoke` with events/<mode>.json: (exit code, stdout, stderr)."""
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


def test_says_which_python_and_runtime_client_it_measured_with(probe, capsys):
    _code, out, err = invoke(capsys, probe, "ok")
    python = find_interpreter("3.13")
    line = next(line for line in err.splitlines() if line.startswith("Python "))
    client = next(line for line in err.splitlines() if line.startswith("Runtime client: "))
    if python is None:
        assert "no Python 3.13 here for python3.13" in line
    else:
        assert line.startswith("Python 3.13.") and "the runtime's Python (python3.13)" in line
        assert json.loads(out)["python"] == "3.13"
    if "stand-in" in client:  # offline, without awslambdaric for this Python: said, with the reason
        assert "awslambdaric for Python" in client and "could not be installed" in client
    else:
        assert client.startswith("Runtime client: awslambdaric ")


def test_context_and_environment_follow_the_template(probe, capsys):
    _code, out, err = invoke(capsys, probe, "ok", "--env", "EXTRA=1")
    result = json.loads(out)
    assert result["ok"] and result["memory"] == "512" and result["name"] == "probe-fn"
    assert result["arn"] == f"arn:aws:lambda:eu-west-1:{FAKE_ACCOUNT_ID}:function:probe-fn"
    assert result["request_id"] == REPORT.search(err)["id"]
    assert result["trace"].startswith("Root=1-")
    before, after = result["remaining_ms"]
    assert 0 < after < before <= 30_000
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


def test_client_context_reaches_the_handler(probe):
    function = load_function(probe)
    outcome = run(RunSpec(function=function, event={}, client_context={"custom": {"tenant": "t1"}}))
    assert outcome.ok, outcome.error
    assert json.loads(outcome.result_json)["client_context"] == {"tenant": "t1"}


def test_memory_and_timeout_options_override_the_template(probe, capsys):
    _code, out, err = invoke(capsys, probe, "ok", "--memory", "1024", "--timeout", "5")
    assert json.loads(out)["memory"] == "1024"
    assert json.loads(out)["remaining_ms"][0] > 4000
    assert REPORT.search(err)["size"] == "1024"


def test_several_events_run_warm_in_one_process(probe, capsys):
    ok = str(probe / "events" / "ok.json")
    code = main(["invoke", str(probe), "--event", ok, "--event", ok, "--repeat", "2"])
    captured = capsys.readouterr()
    assert code == 0
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert len(results) == 4
    assert len({result["pid"] for result in results}) == 1, "one execution environment"
    ids = [result["request_id"] for result in results]
    assert len(set(ids)) == 4 and results[-1]["calls"] == ids, "module state survives between invocations"
    reports = ANY_REPORT.findall(captured.err)
    assert len(reports) == 4
    assert "Init Duration" in reports[0] and not any("Init Duration" in line for line in reports[1:])


def test_raising_handler_reports_lambdas_error_document(probe, capsys):
    code, out, err = invoke(capsys, probe, "raise")
    assert code == 1
    error = json.loads(out)
    match = REPORT.search(err)
    assert {key: error[key] for key in ("errorType", "errorMessage", "requestId")} == {
        "errorType": "ValueError",
        "errorMessage": "boom",
        "requestId": match["id"],
    }
    assert len(error["stackTrace"]) == 1 and 'handler.py", line' in error["stackTrace"][0]
    assert str(probe / "src") in error["stackTrace"][0], "the trace names the developer's file"
    assert match["rest"] == "\tStatus: error\tError Type: ValueError"
    logged = [json.loads(line) for line in err.splitlines() if line.startswith('{"timestamp"')]
    assert any(entry["level"] == "ERROR" and entry["errorType"] == "ValueError" for entry in logged)


def test_pipeline_failed_is_an_invocation_error(probe, capsys):
    code, out, err = invoke(capsys, probe, "pipeline")
    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "PipelineFailed"
    assert json.loads(error["errorMessage"]) == {"ok": False, "failed": "fetch"}
    assert error["requestId"] == REPORT.search(err)["id"] and error["stackTrace"]


def test_a_result_that_is_not_ok_exits_1(probe, capsys):
    code, out, err = invoke(capsys, probe, "notok")
    assert code == 1
    assert json.loads(out) == {"ok": False, "failed": "fetch"}
    assert REPORT.search(err)["rest"] == "", "for Lambda it is a success"


def test_init_exception_is_an_init_error(probe, capsys):
    code, out, err = invoke(capsys, probe, "ok", "--env", "FAIL_INIT=1")
    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "RuntimeError" and error["errorMessage"] == "no database at init"
    assert 'handler.py", line' in "".join(error["stackTrace"])
    assert REPORT.search(err)["rest"] == "\tStatus: error\tError Type: RuntimeError"


def test_timing_out_handler_is_killed_at_the_timeout(probe, capsys):
    code, out, err = invoke(capsys, probe, "sleep", "--timeout", "1")
    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]
    match = REPORT.search(err)
    assert match["duration"] == "1000.00" and match["rest"] == "\tStatus: timeout"


def test_a_timeout_ends_the_environment_and_the_next_event_starts_cold(probe, capsys):
    sleep, ok = str(probe / "events" / "sleep.json"), str(probe / "events" / "ok.json")
    code = main(["invoke", str(probe), "--event", sleep, "--event", ok, "--timeout", "1"])
    captured = capsys.readouterr()
    assert code == 1
    reports = ANY_REPORT.findall(captured.err)
    assert len(reports) == 2 and all("Init Duration" in line for line in reports)
    assert json.loads(captured.out.splitlines()[1])["ok"] is True


def test_exceeding_memory_size_is_out_of_memory(probe, capsys):
    code, out, err = invoke(capsys, probe, "hog", "--memory", "128", "--timeout", "20")
    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "Runtime.OutOfMemory"
    assert "signal: killed" in error["errorMessage"]
    match = REPORT.search(err)
    assert match["used"] == "128" and match["rest"] == "\tStatus: error\tError Type: Runtime.OutOfMemory"


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
    error = json.loads(out)
    assert error["errorType"] == "Runtime.MarshalError"
    assert error["errorMessage"].startswith("Unable to marshal response")


def test_a_response_over_6_mb_fails_and_one_under_passes(probe, capsys):
    code, out, _err = invoke(capsys, probe, "big")
    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "Function.ResponseSizeTooLarge"
    assert f"({SYNC_RESPONSE_LIMIT_BYTES} bytes)" in error["errorMessage"]
    code, out, _err = invoke(capsys, probe, "almost")
    assert code == 0 and len(out.strip()) == SYNC_RESPONSE_LIMIT_BYTES - 98  # the string and its quotes


def test_only_the_runtime_packages_are_importable(probe, capsys):
    code, out, _err = invoke(capsys, probe, "import")
    assert code == 1
    error = json.loads(out)
    assert (error["errorType"], error["errorMessage"]) == (
        "ModuleNotFoundError",
        "No module named 'requests'",
    )


def test_stand_in_bootstrap_where_awslambdaric_is_missing(probe, capsys, monkeypatch):
    from leanlambda.emulator import runner
    from leanlambda.emulator.runtime_client import Client

    monkeypatch.setattr(runner, "runtime_client", lambda interpreter, workdir: Client(None, "stand-in"))
    code, out, err = invoke(capsys, probe, "ok")
    assert code == 0 and json.loads(out)["ok"] is True
    assert "Runtime client: stand-in" in err
    code, out, _err = invoke(capsys, probe, "raise")
    assert code == 1
    assert {key: json.loads(out)[key] for key in ("errorType", "errorMessage")} == {
        "errorType": "ValueError",
        "errorMessage": "boom",
    }


@pytest.fixture
def cgroup_quota():
    """Skip where this machine gives no CPU quota (not root, no cpu controller), with the reason."""
    quota, why = CpuQuota.create()
    if quota is None:
        pytest.skip(f"no CPU quota possible here: {why}")
    quota.close()


def test_cpu_quota_is_lambdas_share_from_the_first_event_on(probe, cgroup_quota):
    outcome = run(RunSpec(function=load_function(probe), event={"mode": "cgroup"}))
    assert outcome.ok, outcome.error
    result = json.loads(outcome.result_json)
    init_folder, init_quota, _ = result["init"]
    folder, quota, period = result["invoke"]
    assert folder == init_folder and "/leanlambda-" in folder, "the runtime process is in the run's cgroup"
    assert init_quota == "-1", "INIT runs unthrottled"
    assert int(quota) == round(int(period) * 512 / FULL_VCPU_MEMORY_MB)
    assert outcome.cpu.startswith("CPU quota 28.9% of one CPU after INIT")
    assert result["cpus"] == [os.cpu_count(), 1], "INIT may use every CPU, the invoke phase one"
    assert not Path(folder).exists(), "the cgroup is removed after the run"


def test_no_throttle_leaves_the_invoke_phase_unlimited(probe, capsys):
    code, out, err = invoke(capsys, probe, "cgroup", "--no-throttle")
    assert code == 0
    assert json.loads(out)["invoke"][1] in ("-1", None)
    assert "CPU not throttled: not asked to throttle" in err.splitlines()


@pytest.mark.parametrize(
    "event, extra",
    [({"mode": "exit"}, {}), ({"mode": "sleep"}, {"timeout_s": 1}), ({"mode": "hog"}, {"memory_mb": 128})],
    ids=["crash", "timeout", "out-of-memory"],
)
def test_the_cgroup_is_removed_when_the_function_dies(probe, cgroup_quota, event, extra):
    outcome = run(RunSpec(function=load_function(probe), event=event, **extra))
    assert not outcome.ok
    folder = re.search(r"init cgroup (\S+)", outcome.output)[1]
    assert "/leanlambda-" in folder and not Path(folder).exists()


def test_without_a_cpu_controller_the_run_says_so(tmp_path):
    quota, why = CpuQuota.create(root=tmp_path)
    assert quota is None and why


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
        (["--repeat", "0"], "--repeat must be"),
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


def test_init_only_run_times_the_handler_import_within_init(probe):
    outcome = run(RunSpec(function=load_function(probe), mode=MODE_INIT))
    assert outcome.ok and outcome.init_ms is not None and outcome.import_ms is not None
    assert 0 < outcome.import_ms < outcome.init_ms
    assert "leanlambda-import-ms" not in outcome.output and "init cgroup" in outcome.output


def test_without_an_awslambdaric_wheel_the_stand_in_is_named_and_nothing_is_left(tmp_path, monkeypatch):
    from leanlambda.emulator.runtime_client import Interpreter, runtime_client

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    client = runtime_client(Interpreter("/no/python2.7", "2.7.18", "old"), tmp_path / "work")
    assert client.path is None
    assert client.note == (
        "awslambdaric for Python 2.7 could not be installed: ran with leanlambda's stand-in bootstrap instead"
    )
    assert list((tmp_path / "leanlambda" / "awslambdaric").iterdir()) == [], "no half-installed copy"


def test_a_group_left_by_a_killed_toolkit_is_removed_by_the_next_run(cgroup_quota):
    quota, _why = CpuQuota.create()
    assert quota is not None
    quota.close()
    dead_pid = 4_194_304 + 1  # above Linux's highest pid: never a live process
    orphan = quota.path.parent / f"leanlambda-{dead_pid}-0000"
    orphan.mkdir()
    fresh, _why = CpuQuota.create()
    assert fresh is not None
    fresh.close()
    assert not orphan.exists() and not fresh.path.exists()
