"""AWS faults injected into every call the integrated orchestrator makes (moto + botocore event hooks).

For each (phase, operation) of a normal 4-hourly cycle and each fault (throttling, 5xx, AccessDenied,
read timeout), the cycle is walked with moto up to that phase, the fault is injected on that operation
only, and the pass is invoked with a short Lambda deadline. Held: the handler returns (no exception)
a JSON result that is not ok and names what failed; an instance that was stopped before the pass is
not left running by it.

Faults are injected per client: the factory's ``get`` is wrapped so each client it creates gets a
``before-call`` handler (an error response: no retry, as botocore would see a final answer) or a
``before-send`` handler raising ReadTimeoutError (botocore's retries run, bounded by its config).
"""

from __future__ import annotations

import importlib
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "makenaide-integrated-orchestrator"
DB_ID = "makenaide-db"
REGION = "ap-northeast-2"


def _register_reliability_marker() -> None:
    # until pyproject's markers list `reliability` (asked of the lead), register it for --strict-markers
    config = getattr(pytest.mark, "_config", None)
    if config is not None and not any(line.startswith("reliability") for line in config.getini("markers")):
        config.addinivalue_line("markers", "reliability: fault, load and property suites (make reliability)")


_register_reliability_marker()
pytestmark = pytest.mark.reliability

FAULTS = {
    "throttling": (400, "ThrottlingException", "Rate exceeded"),
    "server-error": (500, "InternalFailure", "We encountered an internal error"),
    "access-denied": (403, "AccessDeniedException", "User is not authorized"),
    "read-timeout": None,
}
# phase -> the operations the pass makes in it
PHASES = {
    "cold-tick": [("rds", "DescribeDBInstances"), ("ec2", "DescribeInstances"), ("rds", "StartDBInstance")],
    "rds-available": [("ec2", "StartInstances"), ("ec2", "CreateTags")],
    "instance-running": [("ssm", "SendCommand")],
    "app-finished": [("rds", "StopDBInstance")],
}
CASES = [(phase, service, op, fault) for phase, ops in PHASES.items() for service, op in ops for fault in FAULTS]


class Context:
    function_name = "makenaide-integrated-orchestrator"
    aws_request_id = "fault"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:makenaide-integrated-orchestrator"

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def orchestrator(monkeypatch):
    src = str(EXAMPLE / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    handler = importlib.import_module("makenaide_integrated_orchestrator.handler")
    steps = importlib.import_module("makenaide_integrated_orchestrator.steps")
    clients = importlib.import_module("makenaide_integrated_orchestrator.clients")
    metrics = importlib.import_module("makenaide_integrated_orchestrator.metrics")
    monkeypatch.setattr(steps, "SEND_RETRY_INTERVAL_S", 0.01, raising=False)
    from moto import mock_aws

    with mock_aws():
        handler.reset()
        metrics.reset_cold_start()
        yield handler, steps, clients
        handler.reset()


class Account:
    def __init__(self, steps, monkeypatch) -> None:
        import boto3

        self.ec2, self.rds = boto3.client("ec2"), boto3.client("rds")
        secret = boto3.client("secretsmanager").create_secret(
            Name="makenaide/db", SecretString=json.dumps({"username": "makenaide", "password": "x"}))
        image = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        self.instance_id = self.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                                  InstanceType="t3.medium")["Instances"][0]["InstanceId"]
        self.ec2.stop_instances(InstanceIds=[self.instance_id])
        self.rds.create_db_instance(DBInstanceIdentifier=DB_ID, Engine="postgres", DBInstanceClass="db.t3.micro",
                                    MasterUsername="makenaide", MasterUserPassword="not-a-real-one",
                                    AllocatedStorage=20)
        self.rds.stop_db_instance(DBInstanceIdentifier=DB_ID)
        for key, value in {"INSTANCE_ID": self.instance_id, "DB_INSTANCE_IDENTIFIER": DB_ID,
                           "DB_SECRET_ARN": secret["ARN"], "APP_COMMAND": "/opt/makenaide/run.sh",
                           "EC2_HOURLY_PRICE_USD": "0.0832", "RDS_HOURLY_PRICE_USD": "0.036",
                           "MAX_RUN_MINUTES": "180"}.items():
            monkeypatch.setenv(key, value)
        self.now = datetime.now(timezone.utc).replace(microsecond=0)
        monkeypatch.setattr(steps, "utcnow", lambda: self.now)

    def at(self, minutes: int, start: datetime) -> None:
        self.now = start + timedelta(minutes=minutes)

    def instance_state(self) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]

    def tick(self) -> dict:
        return {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}

    def ec2_event(self, state: str) -> dict:
        return {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification",
                "detail": {"instance-id": self.instance_id, "state": state}}

    def rds_event(self) -> dict:
        return {"source": "aws.rds", "detail-type": "RDS DB Instance Event",
                "detail": {"SourceIdentifier": DB_ID, "EventID": "RDS-EVENT-0088"}}


class Injector:
    def __init__(self, service: str, operation: str, fault: str) -> None:
        self.service, self.operation, self.fault = service, operation, fault
        self.hits = 0
        self.armed = False

    def attach(self, client_service: str, client) -> None:
        if client_service != self.service:
            return
        if self.fault == "read-timeout":
            client.meta.events.register(f"before-send.{client.meta.service_model.service_id.hyphenize()}."
                                        f"{self.operation}", self._timeout)
        else:
            client.meta.events.register(f"before-call.{client.meta.service_model.service_id.hyphenize()}."
                                        f"{self.operation}", self._error)

    def _error(self, **kwargs):
        if not self.armed:
            return None
        self.hits += 1
        status, code, message = FAULTS[self.fault]

        class Http:
            status_code = status
            headers: dict = {}
            content = b""
            text = ""

        return Http(), {"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "fault"}}

    def _timeout(self, request, **kwargs):
        if not self.armed:
            return None
        from botocore.exceptions import ReadTimeoutError

        self.hits += 1
        raise ReadTimeoutError(endpoint_url=request.url)


def _walk_to(phase: str, account: Account, handler) -> tuple[dict, Context]:
    """Invoke the passes that lead to ``phase``; return the event of the phase's pass."""
    start = account.now
    walk = [("cold-tick", 0, account.tick()), ("rds-available", 6, account.rds_event()),
            ("instance-running", 7, account.ec2_event("running")), ("app-finished", 45, account.ec2_event("stopped"))]
    for name, minute, event in walk:
        account.at(minute, start)
        if name == "app-finished":
            account.ec2.stop_instances(InstanceIds=[account.instance_id])  # the app's own shutdown
        if name == phase:
            return event, Context(20_000)
        result = handler.lambda_handler(event, Context(60_000))
        assert result["ok"] is True, json.dumps(result)[:800]
    raise AssertionError(phase)


@pytest.mark.parametrize(("phase", "service", "operation", "fault"), CASES,
                         ids=[f"{p}-{o}-{f}" for p, _, o, f in CASES])
def test_aws_fault_is_reported_and_leaves_no_instance_running(phase, service, operation, fault, orchestrator,
                                                              monkeypatch):
    handler, steps, clients = orchestrator
    account = Account(steps, monkeypatch)
    injector = Injector(service, operation, fault)
    original_get = clients.AWSClientFactory.get

    def get(self, name, region=None):
        client = original_get(self, name, region)
        if not getattr(client, "_fault_attached", False):
            injector.attach(name, client)
            client._fault_attached = True
        return client

    monkeypatch.setattr(clients.AWSClientFactory, "get", get)
    event, context = _walk_to(phase, account, handler)
    before = account.instance_state()
    injector.armed = True

    result = handler.lambda_handler(event, context)

    injector.armed = False
    text = json.dumps(result)
    assert injector.hits >= 1, f"{operation} was not called in phase {phase}: {text[:600]}"
    assert result["ok"] is False, text[:1500]
    expected = "timeout" if fault == "read-timeout" else FAULTS[fault][1].lower()
    assert expected in text.lower(), f"the result does not name the failure: {text[:1500]}"
    after = account.instance_state()
    if before in ("stopped", "stopping"):
        assert after in ("stopped", "stopping"), f"instance left {after} by a failed pass ({text[:800]})"
