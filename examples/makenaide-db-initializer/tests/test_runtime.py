"""The runtime's contracts: lazy imports, cached clients, bounded metrics and deadlines."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from makenaide_db_initializer import handler, pipeline
from makenaide_db_initializer.clients import AWSClientFactory
from makenaide_db_initializer.metrics import (
    EMF_MAX_METRICS_PER_BLOB,
    EmfBackend,
    MetricsCollector,
)
from makenaide_db_initializer.pipeline import (
    Deadline,
    DeadlineExceeded,
    PipelineExecutor,
    RunContext,
    SkipStep,
    Step,
)

SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY_MODULES = ("boto3", "botocore", "psycopg2", "pyupbit", "pandas", "numpy", "requests")


def _modules_after_import() -> set[str]:
    """Modules loaded by importing the handler in a fresh interpreter, as Lambda's init does."""
    code = (
        "import importlib, json, sys; sys.path.insert(0, sys.argv[1]);"
        "importlib.import_module(sys.argv[2]); print(json.dumps(sorted(sys.modules)))"
    )
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "ap-northeast-2",
    }
    result = subprocess.run(
        [sys.executable, "-c", code, str(SRC), handler.__name__],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return set(json.loads(result.stdout))


def test_importing_the_handler_imports_no_heavy_module_unless_prewarming():
    loaded = _modules_after_import()
    if getattr(handler, "PREWARM_SERVICES", ()):
        assert "boto3" in loaded, "prewarmed clients are created during init"
        assert {"psycopg2", "pyupbit", "pandas", "requests"}.isdisjoint(loaded)
    else:
        assert set(HEAVY_MODULES).isdisjoint(loaded)


def test_a_client_is_created_once_and_reused(aws):
    factory = AWSClientFactory()
    first = factory.get("s3")
    assert factory.get("s3") is first
    assert factory.created == 1
    assert factory.get("sqs") is not first
    assert factory.created == 2


def test_clients_differ_by_region_and_reset_forgets_them(aws):
    factory = AWSClientFactory()
    home = factory.get("s3")
    other_region = "eu-west-1" if home.meta.region_name != "eu-west-1" else "us-east-1"
    other = factory.get("s3", region=other_region)
    assert home is not other
    assert other.meta.region_name == other_region
    factory.reset()
    assert factory.created == 0
    assert factory.get("s3") is not home


def test_prewarm_creates_clients_before_the_first_call(aws):
    factory = AWSClientFactory()
    factory.prewarm("s3", "sqs")
    assert factory.created == 2
    created = factory.get("s3")
    factory.prewarm("s3")
    assert factory.get("s3") is created
    assert factory.created == 2


def test_no_aws_attempt_starts_without_the_time_to_finish(aws, clock):
    from makenaide_db_initializer import clients

    factory = AWSClientFactory()
    s3 = factory.get("s3")
    attempts = []
    s3.meta.events.register("before-send", lambda **_: attempts.append(1))
    factory.deadline = Deadline.from_context(clock, safety_margin_ms=0)
    clock.remaining = clients.ATTEMPT_MS - 1
    with pytest.raises(DeadlineExceeded):
        s3.list_buckets()
    assert attempts == []
    clock.remaining = clients.ATTEMPT_MS
    s3.list_buckets()
    assert attempts == [1]
    factory.deadline = None
    clock.remaining = 0
    s3.list_buckets()


def test_a_failing_call_is_retried_within_the_deadline(aws, clock):
    from botocore.exceptions import ReadTimeoutError

    from makenaide_db_initializer import clients, pipeline

    factory = AWSClientFactory()
    s3 = factory.get("s3")
    attempts = []

    def timed_out(**_):
        attempts.append(clock.remaining)
        clock.remaining -= clients.ATTEMPT_MS  # each attempt costs its whole timeout
        raise ReadTimeoutError(endpoint_url="https://s3.example")

    s3.meta.events.register("before-send", timed_out)
    factory.deadline = Deadline.from_context(clock, safety_margin_ms=pipeline.SAFETY_MARGIN_MS)
    clock.remaining = 600_000
    with pytest.raises(ReadTimeoutError):
        s3.list_buckets()
    assert len(attempts) == clients.MAX_ATTEMPTS
    assert sum(clock.slept) * 1000 <= (clients.MAX_ATTEMPTS - 1) * clients.RETRY_PAUSE_MAX_MS
    assert clients.RETRY_PAUSE_MAX_MS <= pipeline.SAFETY_MARGIN_MS


def test_a_retry_without_the_time_to_finish_is_not_started(aws, clock):
    from botocore.exceptions import ReadTimeoutError

    from makenaide_db_initializer import clients

    factory = AWSClientFactory()
    s3 = factory.get("s3")
    attempts = []

    def timed_out(**_):
        attempts.append(1)
        clock.remaining -= clients.ATTEMPT_MS
        raise ReadTimeoutError(endpoint_url="https://s3.example")

    s3.meta.events.register("before-send", timed_out)
    factory.deadline = Deadline.from_context(clock, safety_margin_ms=0)
    clock.remaining = clients.ATTEMPT_MS + clients.ATTEMPT_MS // 2
    with pytest.raises((ReadTimeoutError, DeadlineExceeded)):
        s3.list_buckets()
    assert len(attempts) == 1


def test_clients_use_adaptive_retries_and_bounded_timeouts(aws):
    config = AWSClientFactory().get("s3").meta.config
    assert config.retries["mode"] == "adaptive"
    assert config.connect_timeout <= 5
    assert config.read_timeout <= 30


def _invoke_rejected(context) -> None:
    """One invocation with an event every function rejects (nothing runs, metrics are sent)."""
    with pytest.raises(handler.PipelineFailed):
        handler.lambda_handler(None, context)


def test_warm_invocations_reuse_the_container_orchestrator_and_clients(aws, lambda_context):
    _invoke_rejected(lambda_context)
    orchestrator = handler.get_orchestrator()
    s3 = orchestrator.clients.get("s3")
    created = orchestrator.clients.created
    _invoke_rejected(lambda_context)
    assert handler.get_orchestrator() is orchestrator
    assert orchestrator.clients.get("s3") is s3
    assert orchestrator.clients.created == created


@pytest.mark.parametrize("count", [1, 100, 101, 250])
def test_emf_puts_at_most_100_metrics_in_a_line(count, emf_lines):
    collector = MetricsCollector("Test", EmfBackend(), {"FunctionName": "f"})
    for index in range(count):
        collector.add(f"Metric{index}", index, "Milliseconds")
    collector.flush()
    blobs = emf_lines()
    assert len(blobs) == math.ceil(count / EMF_MAX_METRICS_PER_BLOB)
    names = []
    for blob in blobs:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        assert len(directive["Metrics"]) <= EMF_MAX_METRICS_PER_BLOB
        assert directive["Namespace"] == "Test"
        assert directive["Dimensions"] == [["FunctionName"]]
        names += [metric["Name"] for metric in directive["Metrics"]]
        assert all(blob[metric["Name"]] == float(metric["Name"][6:]) for metric in directive["Metrics"])
    assert sorted(names) == sorted(f"Metric{index}" for index in range(count))


def test_emf_spreads_more_than_100_values_of_one_metric_over_documents(emf_lines):
    collector = MetricsCollector("Test", EmfBackend())
    for index in range(250):
        collector.add("Latency", index, "Milliseconds")
    collector.add("Orders", 1)
    collector.flush()
    blobs = emf_lines()
    values = [blob["Latency"] for blob in blobs]
    assert [len(chunk) for chunk in values] == [100, 100, 50]
    assert [value for chunk in values for value in chunk] == [float(index) for index in range(250)]
    assert sum(1 for blob in blobs if "Orders" in blob) == 1


def test_emf_separates_dimension_sets(emf_lines):
    collector = MetricsCollector("Test", EmfBackend(), {"FunctionName": "f"})
    collector.add("Orders", 1)
    collector.add("Orders", 2, dimensions={"Market": "KRW"})
    collector.flush()
    directives = [blob["_aws"]["CloudWatchMetrics"][0] for blob in emf_lines()]
    dimension_sets = sorted(tuple(directive["Dimensions"][0]) for directive in directives)
    assert dimension_sets == [("FunctionName",), ("FunctionName", "Market")]


def test_metrics_reject_unknown_units_and_too_many_dimensions():
    collector = MetricsCollector("Test", EmfBackend())
    with pytest.raises(ValueError, match="unit"):
        collector.add("Latency", 1, "Hours")
    with pytest.raises(ValueError, match="30"):
        collector.add("Latency", 1, dimensions={f"D{index}": "x" for index in range(31)})


def _flushed_metric_names(capsys) -> list[str]:
    """Names of the metrics the handler has sent so far, through the function's backend."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    return [metric["Name"] for blob in lines for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]]


def test_cold_start_is_counted_once_per_container(lambda_context, capsys):
    _invoke_rejected(lambda_context)
    _invoke_rejected(lambda_context)
    assert _flushed_metric_names(capsys).count("ColdStart") == 1


class _Clock:
    """A Lambda context and a time.sleep that share a fake clock."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining = remaining_ms
        self.slept: list[float] = []

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.remaining -= int(seconds * 1000)


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock(remaining_ms=5_000)
    monkeypatch.setattr(pipeline.time, "sleep", fake.sleep)
    return fake


def _run(steps, context):
    run = RunContext(request=None, clients=None, metrics=None, deadline=Deadline.from_context(context, 1_000))
    return PipelineExecutor().run(steps, run), run


def test_a_step_whose_budget_exceeds_the_remaining_time_is_skipped(clock):
    ran = []
    steps = [
        Step("quick", lambda run: ran.append("quick"), budget_ms=100),
        Step("slow", lambda run: ran.append("slow"), critical=False, budget_ms=10_000),
        Step("after", lambda run: ran.append("after"), budget_ms=100),
    ]
    result, _ = _run(steps, clock)
    assert ran == ["quick", "after"]
    assert [step.status for step in result.steps] == ["ok", "skipped", "ok"]
    assert "ms left" in result.steps[1].error


def test_a_wait_never_goes_past_the_deadline(clock):
    deadline = Deadline.from_context(clock, safety_margin_ms=1_000)
    with pytest.raises(DeadlineExceeded):
        deadline.sleep(10)
    assert clock.slept == []
    with pytest.raises(DeadlineExceeded):
        deadline.poll(lambda: False, interval_s=1, max_wait_s=60)
    assert sum(clock.slept) * 1000 <= 5_000 - 1_000


def test_poll_returns_the_first_truthy_probe(clock):
    answers = iter([None, None, "ready"])
    deadline = Deadline.from_context(clock, safety_margin_ms=1_000)
    assert deadline.poll(lambda: next(answers), interval_s=0.5, max_wait_s=10) == "ready"
    assert clock.slept == [0.5, 0.5]


def test_a_failed_critical_step_stops_the_run_and_compensates(clock):
    undone = []

    def fail(run):
        raise RuntimeError("launch failed")

    steps = [
        Step("start", lambda run: "i-123", compensate=lambda run: undone.append(run.results["start"])),
        Step("optional", fail, critical=False),
        Step("launch", fail),
        Step("report", lambda run: "never"),
    ]
    result, _ = _run(steps, clock)
    assert [step.status for step in result.steps] == ["ok", "failed", "failed", "skipped"]
    assert result.steps[2].error == "RuntimeError: launch failed"
    assert undone == ["i-123"]
    assert result.compensated == ["start"]
    assert result.to_dict()["ok"] is False


def test_a_failed_undo_is_reported_in_the_result(clock):
    def fail(run):
        raise RuntimeError("launch failed")

    def cannot_stop(run):
        raise ConnectionError("stop refused")

    steps = [Step("start", lambda run: "i-123", compensate=cannot_stop), Step("launch", fail)]
    result, _ = _run(steps, clock)
    assert result.compensated == []
    failed = [{"step": "start", "error": "ConnectionError: stop refused"}]
    assert result.to_dict()["compensation_failed"] == failed


def test_a_step_may_skip_itself(clock):
    def nothing_to_do(run):
        raise SkipStep("no new candles")

    result, _ = _run([Step("collect", nothing_to_do)], clock)
    assert result.ok
    assert result.steps[0].to_dict()["error"] == "no new candles"


@pytest.mark.parametrize("event", [None, [], "text", 42])
def test_a_malformed_event_raises_with_the_error_result_after_flushing_metrics(event, lambda_context, capsys):
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler(event, lambda_context)
    expected = {"ok": False, "error": f"invalid event: expected a JSON object, got {type(event).__name__}"}
    assert raised.value.result == expected
    assert json.loads(str(raised.value)) == expected
    assert "InvalidEvent" in _flushed_metric_names(capsys)


def _fail(run):
    raise RuntimeError("the database is down")


def _run_steps(monkeypatch, *steps: Step) -> None:
    """The handler runs these steps for any event, instead of the function's own."""
    monkeypatch.setattr(handler, "parse_event", lambda event: None)
    monkeypatch.setattr(handler, "build_steps", lambda request: list(steps))


def test_a_failed_critical_step_raises_with_the_result_after_flushing_metrics(
    lambda_context, capsys, monkeypatch
):
    sent_before_raising = []
    real_flush = MetricsCollector.flush

    def flush(collector):
        real_flush(collector)
        sent_before_raising.extend(_flushed_metric_names(capsys))

    monkeypatch.setattr(MetricsCollector, "flush", flush)
    _run_steps(monkeypatch, Step("load", _fail), Step("report", lambda run: "never"))
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler({}, lambda_context)
    result = json.loads(str(raised.value))
    assert result == raised.value.result
    assert result["ok"] is False
    assert result["error"] == "critical step load failed: RuntimeError: the database is down"
    assert [step["status"] for step in result["steps"]] == ["failed", "skipped"]
    assert "StepsFailed" in sent_before_raising


def test_a_failed_non_critical_step_leaves_the_run_ok(lambda_context, monkeypatch):
    _run_steps(monkeypatch, Step("optional", _fail, critical=False), Step("main", lambda run: 42))
    result = handler.lambda_handler({}, lambda_context)
    assert result["ok"] is True
    assert [step["status"] for step in result["steps"]] == ["failed", "ok"]
    assert result["steps"][0]["error"] == "RuntimeError: the database is down"


def test_raise_on_failure_false_returns_the_failed_result(lambda_context, monkeypatch):
    monkeypatch.setenv(handler.RAISE_ON_FAILURE_ENV, "false")
    _run_steps(monkeypatch, Step("load", _fail))
    result = handler.lambda_handler({}, lambda_context)
    assert result["ok"] is False
    assert result["error"] == "critical step load failed: RuntimeError: the database is down"


def test_the_error_message_is_capped_and_keeps_the_failed_step_first(lambda_context, monkeypatch):
    def fail_loudly(run):
        raise RuntimeError("x" * (2 * handler.MAX_ERROR_MESSAGE_CHARS))

    _run_steps(monkeypatch, Step("big", lambda run: ["row"] * 5_000), Step("load", _fail))
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler({}, lambda_context)
    message = str(raised.value)
    assert len(message) <= handler.MAX_ERROR_MESSAGE_CHARS
    brief = json.loads(message)  # the steps' own results are dropped, the rest fits
    assert brief["truncated"] is True
    assert brief["error"] == "critical step load failed: RuntimeError: the database is down"
    assert "result" not in brief["steps"][0]
    assert len(raised.value.result["steps"][0]["result"]) == 5_000

    _run_steps(monkeypatch, Step("loud", fail_loudly))
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler({}, lambda_context)
    message = str(raised.value)
    assert len(message) == handler.MAX_ERROR_MESSAGE_CHARS
    assert message.startswith('{"ok": false, "error": "critical step loud failed: RuntimeError: xxx')
    assert message.endswith(handler.TRUNCATION_MARK)
