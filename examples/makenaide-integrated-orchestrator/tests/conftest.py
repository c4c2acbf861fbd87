"""Shared fixtures: moto behind the real boto3 clients, a Lambda context, fresh state."""

from __future__ import annotations

import io
import json
import uuid

import pytest

from makenaide_integrated_orchestrator import handler, metrics

REGION = "ap-northeast-2"
DEFAULT_TIMEOUT_MS = 60000


class LambdaContext:
    """The attributes of Lambda's context object that functions use."""

    def __init__(self, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> None:
        import time

        self._deadline = time.monotonic() + timeout_ms / 1000
        self.function_name = "makenaide-integrated-orchestrator"
        self.memory_limit_in_mb = 128
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(0, int((self._deadline - time.monotonic()) * 1000))


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch):
    """Fake credentials and the function's region; no test can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)


@pytest.fixture(autouse=True)
def aws():
    """moto's in-process AWS, behind the real boto3 clients: no test reaches a real account."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture(autouse=True)
def fresh_container():
    """Each test starts as a new container: no orchestrator, no clients, a cold start."""
    handler.reset()
    metrics.reset_cold_start()
    yield
    handler.reset()


@pytest.fixture
def lambda_context():
    return LambdaContext()


@pytest.fixture
def emf_lines(capsys):
    """A function returning the EMF documents printed so far."""

    def read() -> list[dict]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in io.StringIO(out) if line.startswith('{"_aws"')]

    return read
