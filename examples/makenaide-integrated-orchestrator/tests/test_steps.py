"""The orchestrator's reconcile pass, against moto behind the real boto3 clients.

The orchestrator's clock (``steps.utcnow``) is replaced by a simulated one so a whole day of
schedule ticks and state-change events can be walked in a second; the instance "shuts itself
down" when the test stops it, as the SSM script's trap does on the real instance.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import LambdaContext

from makenaide_integrated_orchestrator import handler, steps
from makenaide_integrated_orchestrator.clients import ATTEMPT_MS

EVENTS = Path(__file__).resolve().parents[1] / "events"
DB_ID = "makenaide-db"
DB_PASSWORD = "Sup3r-S3cret-Passw0rd"  # noqa: S105 - the value the SSM command must never carry
EC2_PRICE, RDS_PRICE = 0.0832, 0.036
MAX_RUN = 180
MOTO_AMI = "ami-12c6146b"  # one of moto's built-in images (describing them all takes seconds)
APP_COMMAND = "cd /home/ec2-user/makenaide && python3 makenaide.py"


class SimClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.start = self.now

    def at(self, minutes: float) -> datetime:
        """Move to ``minutes`` after the start of the day walk (never backwards)."""
        moment = self.start + timedelta(minutes=minutes)
        assert moment >= self.now, "the clock only moves forward"
        self.now = moment
        return moment


@pytest.fixture
def clock(monkeypatch):
    sim = SimClock()
    monkeypatch.setattr(steps, "utcnow", lambda: sim.now)
    return sim


class Makenaide:
    """The account the orchestrator manages: one instance, one database, one secret."""

    def __init__(self, monkeypatch) -> None:
        import boto3

        self.ec2 = boto3.client("ec2")
        self.rds = boto3.client("rds")
        self.ssm = boto3.client("ssm")
        secrets = boto3.client("secretsmanager")
        secret = json.dumps({"username": "makenaide", "password": DB_PASSWORD})
        self.secret_arn = secrets.create_secret(Name="makenaide/db-credentials", SecretString=secret)["ARN"]
        instance = self.ec2.run_instances(ImageId=MOTO_AMI, MinCount=1, MaxCount=1, InstanceType="t3.medium")
        self.instance_id = instance["Instances"][0]["InstanceId"]
        self.ec2.stop_instances(InstanceIds=[self.instance_id])
        self.rds.create_db_instance(
            DBInstanceIdentifier=DB_ID,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="makenaide",
            MasterUserPassword=DB_PASSWORD,
            AllocatedStorage=20,
        )
        self.rds.stop_db_instance(DBInstanceIdentifier=DB_ID)
        env = {
            "INSTANCE_ID": self.instance_id,
            "DB_INSTANCE_IDENTIFIER": DB_ID,
            "DB_SECRET_ARN": self.secret_arn,
            "APP_COMMAND": APP_COMMAND,
            "EC2_HOURLY_PRICE_USD": str(EC2_PRICE),
            "RDS_HOURLY_PRICE_USD": str(RDS_PRICE),
            "MAX_RUN_MINUTES": str(MAX_RUN),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    def states(self) -> tuple[str, str]:
        rds = self.rds.describe_db_instances(DBInstanceIdentifier=DB_ID)["DBInstances"][0]["DBInstanceStatus"]
        instance = self.ec2.describe_instances(InstanceIds=[self.instance_id])
        return rds, instance["Reservations"][0]["Instances"][0]["State"]["Name"]

    def tags(self) -> dict[str, str]:
        reservations = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"]
        return {tag["Key"]: tag["Value"] for tag in reservations[0]["Instances"][0].get("Tags", [])}

    def commands(self) -> list[dict]:
        return self.ssm.list_commands(InstanceId=self.instance_id)["Commands"]

    def shut_down(self) -> None:
        """What the SSM script's trap does when the app exits."""
        self.ec2.stop_instances(InstanceIds=[self.instance_id])

    # --- events, as EventBridge delivers them ---
    def tick(self, clock: SimClock) -> dict:
        return {"source": "aws.events", "detail-type": "Scheduled Event", "time": _z(clock.now), "detail": {}}

    def ec2_event(self, state: str) -> dict:
        return {
            "source": "aws.ec2",
            "detail-type": "EC2 Instance State-change Notification",
            "detail": {"instance-id": self.instance_id, "state": state},
        }

    def rds_event(self, event_id: str) -> dict:
        return {
            "source": "aws.rds",
            "detail-type": "RDS DB Instance Event",
            "detail": {"SourceIdentifier": DB_ID, "EventID": event_id},
        }


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def account(aws, monkeypatch):
    return Makenaide(monkeypatch)


def invoke(event: dict, timeout_ms: int = 60_000) -> dict:
    result = handler.lambda_handler(event, LambdaContext(timeout_ms))
    assert json.loads(json.dumps(result)) == result
    return result


def failed_invoke(event: dict, timeout_ms: int = 60_000) -> dict:
    """A pass that fails the invocation: the handler raises PipelineFailed, as Lambda would see it."""
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler(event, LambdaContext(timeout_ms))
    assert str(raised.value).startswith('{"ok": false, "error": ')
    return raised.value.result


def step(result: dict, name: str) -> dict:
    return next(s for s in result["steps"] if s["name"] == name)


def action(result: dict) -> str:
    return step(result, "observe")["result"]["action"]


# --- configuration and events -------------------------------------------------------------------


VALID_ENV = {
    "INSTANCE_ID": "i-0123456789abcdef0",
    "DB_INSTANCE_IDENTIFIER": DB_ID,
    "DB_SECRET_ARN": "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:makenaide/db-AbCdEf",
    "APP_COMMAND": APP_COMMAND,
    "EC2_HOURLY_PRICE_USD": "0.0832",
    "RDS_HOURLY_PRICE_USD": "0",
    "MAX_RUN_MINUTES": "180",
}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("INSTANCE_ID", None, "INSTANCE_ID is not set"),
        ("INSTANCE_ID", "web-1", "is not an EC2 instance id"),
        ("DB_INSTANCE_IDENTIFIER", "1db", "is not an RDS DB identifier"),
        ("DB_INSTANCE_IDENTIFIER", "db--x", "is not an RDS DB identifier"),
        ("DB_INSTANCE_IDENTIFIER", "db-", "is not an RDS DB identifier"),
        ("EC2_HOURLY_PRICE_USD", "cheap", "is not a number"),
        ("RDS_HOURLY_PRICE_USD", "-1", "must be a finite price >= 0"),
        ("RDS_HOURLY_PRICE_USD", "nan", "must be a finite price >= 0"),
        ("MAX_RUN_MINUTES", "0", "between 1 and 1440"),
        ("MAX_RUN_MINUTES", "2h", "between 1 and 1440"),
        ("RUN_INTERVAL_MINUTES", "-5", "between 1 and 1440"),
        ("APP_COMMAND", "  ", "APP_COMMAND is not set"),
        ("DB_SECRET_ARN", "my-password", "is not a Secrets Manager secret ARN"),
    ],
)
def test_configuration_is_validated_with_a_clear_error(name, value, message):
    environ = {k: v for k, v in VALID_ENV.items() if k != name}
    if value is not None:
        environ[name] = value
    with pytest.raises(steps.InvalidEvent, match=message) as raised:
        steps.load_config(environ)
    assert "my-password" not in str(raised.value)  # a misplaced secret is not echoed


def test_a_huge_configuration_value_is_not_echoed():
    with pytest.raises(steps.InvalidEvent) as raised:
        steps.load_config({**VALID_ENV, "INSTANCE_ID": "i-" + "z" * 1_000_000})
    assert len(str(raised.value)) < 200
    assert "INSTANCE_ID='i-zzz" in str(raised.value)


def test_a_valid_configuration_is_read():
    config = steps.load_config(VALID_ENV)
    assert (config.instance_id, config.db_identifier) == (VALID_ENV["INSTANCE_ID"], DB_ID)
    assert config.max_run_minutes == 180
    assert (config.ec2_price, config.rds_price, config.run_interval_minutes) == (0.0832, 0.0, 240)


def test_a_misconfigured_function_answers_with_the_error_and_touches_nothing(account, monkeypatch):
    monkeypatch.setenv("INSTANCE_ID", "web-1")
    result = failed_invoke({})
    assert result == {
        "ok": False,
        "error": "invalid event: INSTANCE_ID='web-1' is not an EC2 instance id (i-0123456789abcdef0)",
    }
    assert account.states() == ("stopped", "stopped")


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"items": [1]}, "expected a schedule event"),
        ({"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}, "needs a 'detail'"),
        ({"source": "aws.ec2", "detail": {"instance-id": 5}}, "detail.instance-id"),
        ({"source": "aws.ec2", "detail-type": "X" * 100_000}, "X...X"),
    ],
)
def test_malformed_events_are_rejected(monkeypatch, event, message):
    for name, value in VALID_ENV.items():
        monkeypatch.setenv(name, value)
    result = failed_invoke(event)
    assert result["ok"] is False
    assert message in result["error"]
    assert len(result["error"]) < 200  # a huge value is shown as a short repr


@pytest.mark.parametrize("path", sorted(EVENTS.glob("*.json")), ids=lambda p: p.name)
def test_the_sample_events_parse(path):
    request = steps.parse_event(json.loads(path.read_text()), VALID_ENV)
    assert request.trigger in {"schedule", "ec2-state-change", "rds-event"}


# --- the decision table (pure) ------------------------------------------------------------------

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
CONFIG = steps.Config(
    instance_id="i-0123456789abcdef0",
    db_identifier=DB_ID,
    ec2_price=EC2_PRICE,
    rds_price=RDS_PRICE,
    max_run_minutes=MAX_RUN,
    run_interval_minutes=240,
    app_command=APP_COMMAND,
    db_secret_arn=VALID_ENV["DB_SECRET_ARN"],
)


def _ago(minutes: float) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat()


IN_A_RUN = {steps.TAG_CYCLE: _ago(10)}
RUN_DONE = {steps.TAG_CYCLE: _ago(60), steps.TAG_LAUNCHED: _ago(50), steps.TAG_STARTED: _ago(52)}


@pytest.mark.parametrize(
    ("rds", "instance", "booted_min_ago", "tags", "expected"),
    [
        ("stopped", "stopped", None, {}, steps.START_RDS),
        ("starting", "stopped", None, IN_A_RUN, steps.WAIT),
        ("stopping", "stopped", None, IN_A_RUN, steps.WAIT),
        ("backing-up", "stopped", None, IN_A_RUN, steps.WAIT),
        ("available", "stopped", None, IN_A_RUN, steps.START_INSTANCE),
        ("available", "pending", 1, IN_A_RUN, steps.WAIT),
        ("available", "running", 1, IN_A_RUN, steps.LAUNCH),
        ("available", "running", 52, RUN_DONE, steps.NONE),
        (
            "available",
            "running",
            MAX_RUN + 1,
            {steps.TAG_CYCLE: _ago(200), steps.TAG_LAUNCHED: _ago(180)},
            steps.STOP_INSTANCE,
        ),
        ("stopped", "running", MAX_RUN + 1, {}, steps.STOP_INSTANCE),
        ("stopped", "running", 2, IN_A_RUN, steps.START_RDS),
        ("available", "stopping", 40, RUN_DONE, steps.WAIT),
        ("available", "stopped", None, RUN_DONE, steps.STOP_RDS),
        ("stopping", "stopped", None, RUN_DONE, steps.NONE),
        ("stopped", "stopped", None, RUN_DONE, steps.NONE),
        ("available", "running", 5, RUN_DONE | {steps.TAG_STARTED: _ago(5)}, steps.NONE),  # manual start
        ("stopped", "stopped", None, {**RUN_DONE, steps.TAG_CYCLE: _ago(215)}, steps.START_RDS),  # next cycle
        ("available", "terminated", None, IN_A_RUN, steps.NONE),
        # a launch claimed but never sent (its pass failed and could not stop the instance)
        (
            "available",
            "running",
            20,
            {steps.TAG_CYCLE: _ago(25), steps.TAG_LAUNCHED: _ago(19), steps.TAG_LAUNCH_STATUS: "claimed"},
            steps.STOP_INSTANCE,
        ),
        (
            "available",
            "running",
            2,
            {steps.TAG_CYCLE: _ago(6), steps.TAG_LAUNCHED: _ago(1), steps.TAG_LAUNCH_STATUS: "claimed"},
            steps.NONE,
        ),  # being sent
        (
            "available",
            "running",
            20,
            {steps.TAG_CYCLE: _ago(25), steps.TAG_LAUNCHED: _ago(19), steps.TAG_LAUNCH_STATUS: "sent"},
            steps.NONE,
        ),
    ],
)
def test_decide(rds, instance, booted_min_ago, tags, expected):
    launch_time = None if booted_min_ago is None else NOW - timedelta(minutes=booted_min_ago)
    decision = steps.decide(steps.Observed(rds, instance, launch_time, dict(tags)), NOW, CONFIG)
    assert decision.action == expected, decision.reason


# --- one run, event by event --------------------------------------------------------------------


def test_one_run_event_by_event(account, clock, emf_lines):
    walk = [
        # minute, event, next step taken, (RDS, instance) observed afterwards
        (0, account.tick(clock), steps.START_RDS, ("available", "stopped")),
        (6, account.rds_event("RDS-EVENT-0088"), steps.START_INSTANCE, ("available", "running")),
        (7, account.ec2_event("running"), steps.LAUNCH, ("available", "running")),
        (7, account.ec2_event("running"), steps.NONE, ("available", "running")),  # duplicate
        (8, account.tick(clock), steps.NONE, ("available", "running")),  # the 0:00 tick, retried late
        (8, account.ec2_event("pending"), steps.NONE, ("available", "running")),  # out of order
    ]
    for minute, event, expected, states in walk:
        clock.at(minute)
        result = invoke(event)
        assert result["ok"] is True, result
        assert action(result) == expected, (minute, result)
        assert account.states() == states, (minute, expected)
    assert len(account.commands()) == 1
    tags = account.tags()
    assert tags[steps.TAG_LAUNCH_STATUS] == "sent"
    assert tags[steps.TAG_COMMAND] == account.commands()[0]["CommandId"]

    clock.at(45)
    account.shut_down()
    for minute, event, expected, states in [
        (45, account.ec2_event("stopped"), steps.STOP_RDS, ("stopped", "stopped")),
        (46, account.ec2_event("stopped"), steps.NONE, ("stopped", "stopped")),
        (52, account.rds_event("RDS-EVENT-0089"), steps.NONE, ("stopped", "stopped")),
        (53, account.ec2_event("running"), steps.NONE, ("stopped", "stopped")),  # stale
    ]:
        clock.at(minute)
        result = invoke(event)
        assert result["ok"] is True, result
        assert action(result) == expected, (minute, result)
        assert account.states() == states
    assert len(account.commands()) == 1
    names = {m for line in emf_lines() for m in line if not m.startswith("_") and m != "FunctionName"}
    assert {"PipelineExecutionTime", "ErrorCount"} <= names
    assert all(
        line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Makenaide/IntegratedOrchestrator"
        for line in emf_lines()
    )


def test_a_whole_day_of_events_out_of_order_and_duplicated(account, clock, emf_lines):
    rng = random.Random(20250101)  # noqa: S311 - a reproducible shuffle, not cryptography
    stale: list[dict] = []
    savings: list[float] = []
    for cycle in range(6):  # the six 4-hourly ticks of a day
        base = cycle * 240
        clock.at(base)
        before = [account.tick(clock)] * 2 + [account.rds_event("RDS-EVENT-0088")] * 2
        before += [account.ec2_event("pending"), account.ec2_event("running"), account.ec2_event("running")]
        before += stale
        rng.shuffle(before)
        for offset, event in enumerate(before):
            clock.at(base + offset + 1)
            result = invoke(event)
            assert result["ok"] is True, result
            rds, instance = account.states()
            assert instance != "running" or rds == "available", "the app never runs without its database"
            assert len(account.commands()) <= cycle + 1, "at most one launch per run"
            report = step(result, "report")["result"]
            if "DailyCostSavings" in json.dumps(emf_lines()):
                savings.append(report["cost_savings_usd"])
            elif report["cost_savings_usd"] == 0:
                assert report["cost_savings_reason"]
        assert len(account.commands()) == cycle + 1, f"run {cycle + 1} launched exactly once"
        assert account.states() == ("available", "running")

        clock.at(base + 40)
        account.shut_down()
        after = [account.ec2_event("stopping"), account.ec2_event("stopped"), account.ec2_event("stopped")]
        after += [account.rds_event("RDS-EVENT-0089")] * 2 + [account.ec2_event("running")]
        rng.shuffle(after)
        for offset, event in enumerate(after):
            clock.at(base + 41 + offset)
            result = invoke(event)
            assert result["ok"] is True, result
            assert account.states()[1] == "stopped"
        assert account.states() == ("stopped", "stopped"), f"run {cycle + 1} left something running"
        stale = [account.ec2_event("stopped"), account.rds_event("RDS-EVENT-0089")]

    assert len(account.commands()) == 6
    assert account.states() == ("stopped", "stopped")
    # Savings were counted for the runs after the first (whose stops the orchestrator had observed).
    assert len(savings) >= 5
    assert all(0 < amount < 4 * (EC2_PRICE + RDS_PRICE) for amount in savings)


# --- cost savings ---------------------------------------------------------------------------------


def test_savings_are_counted_only_from_observed_stops(account, clock, emf_lines):
    clock.at(0)
    first = invoke(account.tick(clock))  # RDS was stopped before anyone observed it
    report = step(first, "report")["result"]
    assert report["cost_savings_usd"] == 0
    assert "first observed in this pass" in report["cost_savings_reason"]
    assert "DailyCostSavings" not in json.dumps(emf_lines())
    for minute, event in [(5, {}), (6, {})]:  # start the instance, launch
        clock.at(minute)
        invoke(event)
    clock.at(40)
    account.shut_down()
    clock.at(41)
    invoke(account.ec2_event("stopped"))  # instance observed stopped at 41; RDS stop requested
    clock.at(50)
    done = invoke(account.rds_event("RDS-EVENT-0089"))  # RDS observed stopped at 50
    assert step(done, "report")["result"]["cost_savings_reason"]
    emf_lines()

    clock.at(240)
    result = invoke(account.tick(clock))
    assert action(result) == steps.START_RDS
    saved = step(result, "report")["result"]
    assert saved["savings"] == [
        {
            "resource": "rds",
            "stopped_at": saved["savings"][0]["stopped_at"],
            "stopped_minutes": 190.0,
            "usd": round(190 / 60 * RDS_PRICE, 4),
        }
    ]
    metric = [line["DailyCostSavings"] for line in emf_lines() if "DailyCostSavings" in line]
    assert metric == [round(190 / 60 * RDS_PRICE, 4)]
    clock.at(246)
    result = invoke(account.rds_event("RDS-EVENT-0088"))
    assert action(result) == steps.START_INSTANCE
    assert step(result, "report")["result"]["savings"][0]["stopped_minutes"] == 246 - 41


# --- faults ---------------------------------------------------------------------------------------


def _fail(service: str, operation: str, code: str, times: int | None = None):
    """Make the orchestrator's cached ``service`` client fail ``operation`` with ``code``."""
    from botocore.exceptions import ClientError

    calls = {"n": 0}

    def fail(**_kwargs):
        calls["n"] += 1
        if times is None or calls["n"] <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    client = handler.get_orchestrator().clients.get(service)
    client.meta.events.register(f"before-call.{service}.{operation}", fail)
    return calls


def _fail_ssm(code: str, times: int | None = None):
    """Make the orchestrator's cached SSM client fail SendCommand with ``code``."""
    from botocore.exceptions import ClientError

    calls = {"n": 0}

    def fail(**_kwargs):
        calls["n"] += 1
        if times is None or calls["n"] <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "SendCommand")

    handler.get_orchestrator().clients.get("ssm").meta.events.register("before-call.ssm.SendCommand", fail)
    return calls


def _to_running_unlaunched(account, clock) -> None:
    for minute in (0, 5):
        clock.at(minute)
        invoke(account.tick(clock))
    assert account.states() == ("available", "running")
    assert not account.commands()


def test_a_failed_launch_stops_the_instance_it_started(account, clock, emf_lines):
    _to_running_unlaunched(account, clock)
    clock.at(6)
    _fail_ssm("AccessDeniedException")
    result = failed_invoke(account.ec2_event("running"))
    assert result["ok"] is False
    assert step(result, "launch_app")["status"] == "failed"
    assert "AccessDeniedException" in step(result, "launch_app")["error"]
    assert result["compensated"] == ["claim_launch"]
    assert account.states() == ("available", "stopped")
    assert account.tags()[steps.TAG_LAUNCH_STATUS] == "failed"
    errors = [line["ErrorCount"] for line in emf_lines() if "ErrorCount" in line]
    assert errors[-1] == 1
    # The stop's event ends the run: RDS is stopped too, nothing relaunches until the next tick.
    clock.at(7)
    assert action(invoke(account.ec2_event("stopped"))) == steps.STOP_RDS
    assert account.states() == ("stopped", "stopped")
    clock.at(240)
    assert action(invoke(account.tick(clock))) == steps.START_RDS


def test_a_start_that_cannot_be_recorded_is_stopped_again(account, clock, emf_lines):
    clock.at(0)
    invoke(account.tick(clock))  # RDS started
    clock.at(5)
    emf_lines()
    tags = _fail("ec2", "CreateTags", "ThrottlingException", times=1)
    result = failed_invoke({})

    assert action(result) == steps.START_INSTANCE
    failed = step(result, "start_instance")
    assert failed["status"] == "failed"
    assert failed["error"].startswith("StartUndone: recording the start failed (ClientError: ")
    assert "ThrottlingException" in failed["error"] and "the instance was stopped again" in failed["error"]
    assert tags["n"] == 1
    assert account.states() == ("available", "stopped")
    assert steps.TAG_STARTED not in account.tags()
    assert "DailyCostSavings" not in json.dumps(emf_lines())  # an undone start saves nothing
    # The next pass starts it again, records the start and the run goes on.
    clock.at(6)
    again = invoke(account.ec2_event("stopped"))
    assert again["ok"] is True, again
    assert action(again) == steps.START_INSTANCE
    assert account.states() == ("available", "running")
    assert steps.TAG_STARTED in account.tags()


def test_a_database_start_that_cannot_be_recorded_counts_no_savings_later(account, clock, emf_lines):
    from botocore.exceptions import ClientError

    def fail_clearing_the_rds_stop(params, **_kwargs):
        if any(tag["Key"] == steps.TAG_RDS_STOPPED and not tag["Value"] for tag in params["Tags"]):
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "CreateTags")

    an_hour_ago = (clock.now - timedelta(minutes=60)).isoformat()
    account.ec2.create_tags(  # RDS was observed stopped an hour ago
        Resources=[account.instance_id], Tags=[{"Key": steps.TAG_RDS_STOPPED, "Value": an_hour_ago}]
    )
    ec2 = handler.get_orchestrator().clients.get("ec2")
    ec2.meta.events.register("before-parameter-build.ec2.CreateTags", fail_clearing_the_rds_stop)
    clock.at(0)
    emf_lines()
    result = failed_invoke(account.tick(clock))  # starts RDS; clearing its stop record fails
    assert action(result) == steps.START_RDS
    assert step(result, "start_rds")["status"] == "failed"
    assert step(result, "report")["status"] == "skipped"  # the pass failed: it reports no savings
    assert "DailyCostSavings" not in json.dumps(emf_lines())
    assert account.tags()[steps.TAG_RDS_STOPPED] == an_hour_ago  # left behind
    ec2.meta.events.unregister("before-parameter-build.ec2.CreateTags", fail_clearing_the_rds_stop)

    clock.at(6)
    result = invoke(account.rds_event("RDS-EVENT-0088"))  # RDS seen available: the stale record goes
    assert step(result, "record")["result"] == {steps.TAG_RDS_STOPPED: ""}
    assert account.tags()[steps.TAG_RDS_STOPPED] == ""
    assert action(result) == steps.START_INSTANCE


def test_a_start_whose_undo_fails_too_names_both_and_a_later_pass_launches(account, clock):
    clock.at(0)
    invoke(account.tick(clock))
    clock.at(5)
    _fail("ec2", "CreateTags", "AccessDeniedException", times=1)
    _fail("ec2", "StopInstances", "InternalFailure", times=1)
    result = failed_invoke({})

    error = step(result, "start_instance")["error"]
    assert "AccessDeniedException" in error and "stopping the instance again failed too" in error
    assert "InternalFailure" in error
    assert account.states() == ("available", "running")
    clock.at(6)  # the instance's "running" event: the run goes on with it
    assert action(invoke(account.ec2_event("running"))) == steps.LAUNCH
    assert len(account.commands()) == 1


def test_a_send_command_timeout_is_reported_as_a_timeout(account, clock):
    from botocore.exceptions import ReadTimeoutError

    _to_running_unlaunched(account, clock)
    clock.at(6)

    def timeout(request, **_kwargs):
        raise ReadTimeoutError(endpoint_url=request.url)

    ssm = handler.get_orchestrator().clients.get("ssm")
    ssm.meta.events.register("before-send.ssm.SendCommand", timeout)
    result = failed_invoke(account.ec2_event("running"))

    error = step(result, "launch_app")["error"]
    assert error.startswith("ReadTimeoutError: Read timeout on endpoint URL"), error
    assert "AttributeError" not in json.dumps(result)
    assert result["compensated"] == ["claim_launch"]
    assert account.states() == ("available", "stopped")


def test_error_code_reads_client_errors_and_tolerates_responseless_errors():
    from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

    assert steps._error_code(ClientError({"Error": {"Code": "InvalidInstanceId"}}, "SendCommand")) == (
        "InvalidInstanceId"
    )
    assert steps._error_code(ReadTimeoutError(endpoint_url="https://ssm")) == ""
    assert steps._error_code(ConnectTimeoutError(endpoint_url="https://ssm")) == ""
    assert steps._error_code(ValueError("x")) == ""


def test_a_launch_whose_undo_failed_is_stopped_once_the_claim_is_stale(account, clock):
    _to_running_unlaunched(account, clock)
    clock.at(6)
    _fail_ssm("AccessDeniedException")
    _fail("ec2", "StopInstances", "ThrottlingException", times=1)
    result = failed_invoke(account.ec2_event("running"))
    assert step(result, "launch_app")["status"] == "failed"
    assert "compensated" not in result  # the stop failed: nothing was undone
    assert account.states() == ("available", "running")
    assert account.tags()[steps.TAG_LAUNCH_STATUS] == "claimed"

    clock.at(6 + steps.STALE_CLAIM_MINUTES - 1)
    assert action(invoke({})) == steps.NONE  # perhaps still being sent
    clock.at(6 + steps.STALE_CLAIM_MINUTES + 1)
    result = invoke({})
    assert action(result) == steps.STOP_INSTANCE
    assert "never sent" in step(result, "stop_overrun_instance")["result"]["reason"]
    assert account.states() == ("available", "stopped")
    assert not account.commands()


def test_send_command_is_retried_while_the_ssm_agent_registers(account, clock, monkeypatch):
    monkeypatch.setattr(steps, "SEND_RETRY_INTERVAL_S", 0.05)
    _to_running_unlaunched(account, clock)
    calls = _fail_ssm("InvalidInstanceId", times=2)
    clock.at(6)
    result = invoke(account.ec2_event("running"))
    assert result["ok"] is True, result
    assert calls["n"] == 3
    assert len(account.commands()) == 1


def test_the_ssm_command_carries_the_secret_arn_and_never_a_password(account, clock):
    _to_running_unlaunched(account, clock)
    clock.at(6)
    invoke(account.ec2_event("running"))
    (command,) = account.commands()
    assert command["DocumentName"] == "AWS-RunShellScript"
    parameters = json.dumps(command["Parameters"])
    assert DB_PASSWORD not in parameters
    assert "password" not in parameters.lower()
    assert "SecretString" not in parameters
    lines = command["Parameters"]["commands"]
    assert f"export DB_SECRET_ARN={account.secret_arn}" in lines
    assert lines[-1] == APP_COMMAND
    assert command["Parameters"]["executionTimeout"] == [str(MAX_RUN * 60)]


def test_an_instance_past_its_max_run_time_is_stopped(account, clock):
    _to_running_unlaunched(account, clock)
    clock.at(6)
    invoke(account.ec2_event("running"))
    clock.at(5 + MAX_RUN - 1)
    assert action(invoke({})) == steps.NONE
    clock.at(5 + MAX_RUN + 1)
    result = invoke({})
    assert action(result) == steps.STOP_INSTANCE
    assert "over MAX_RUN_MINUTES" in step(result, "stop_overrun_instance")["result"]["reason"]
    assert account.states() == ("available", "stopped")
    clock.at(5 + MAX_RUN + 2)
    assert action(invoke(account.ec2_event("stopped"))) == steps.STOP_RDS
    assert account.states() == ("stopped", "stopped")


def test_an_exhausted_deadline_changes_nothing(account, clock):
    clock.at(0)
    result = failed_invoke(account.tick(clock), timeout_ms=1_000)
    assert result["ok"] is False
    assert "ms left before the deadline" in step(result, "observe")["error"]
    assert account.states() == ("stopped", "stopped")
    assert not any(key.startswith("makenaide:") for key in account.tags())


def test_little_time_left_starts_no_instance(account, clock):
    clock.at(0)
    invoke(account.tick(clock))
    clock.at(5)
    # Enough for the observing calls (one AWS attempt's bound), not for a start and its record.
    result = invoke({}, timeout_ms=2_000 + ATTEMPT_MS + 500)
    assert action(result) == steps.START_INSTANCE
    assert step(result, "start_instance")["status"] == "skipped"
    assert "ms left before the deadline" in step(result, "start_instance")["error"]
    assert account.states() == ("available", "stopped")


def test_little_time_left_claims_no_launch_it_cannot_send(account, clock):
    _to_running_unlaunched(account, clock)
    clock.at(6)
    result = invoke(account.ec2_event("running"), timeout_ms=2_000 + steps.CLAIM_BUDGET_MS - 500)
    assert action(result) == steps.LAUNCH
    assert step(result, "claim_launch")["status"] == "skipped"
    assert step(result, "launch_app")["status"] == "skipped"
    assert not account.commands()
    assert steps.TAG_LAUNCHED not in account.tags()
    assert account.states() == ("available", "running")
    clock.at(7)  # the next pass, with its full time, launches
    assert action(invoke({})) == steps.LAUNCH
    assert len(account.commands()) == 1


def test_the_worst_case_fits_the_timeout():
    budgets = steps.OBSERVE_BUDGET_MS + steps.RECORD_BUDGET_MS + steps.CLAIM_BUDGET_MS
    budgets += steps.REPORT_BUDGET_MS
    assert budgets / 1000 <= steps.WORST_CASE_SECONDS <= 60 - 2
    assert steps.SEND_BUDGET_MS <= steps.CLAIM_BUDGET_MS - 1_000
    assert steps.SEND_RETRY_S * 1000 < steps.SEND_BUDGET_MS
