"""Makenaide integrated orchestrator: one reconcile pass per invocation.

Every 4 hours the Makenaide trading app must run once on its EC2 instance, with its
PostgreSQL database on RDS available; afterwards both must be stopped. The original
function did all of it inside one invocation, sleeping up to 11 minutes (120+300+60+600 s
against a 900 s timeout). This one never waits for AWS: each invocation observes RDS
(DescribeDBInstances) and EC2 (DescribeInstances), takes the one next step, and returns.

Triggers: the schedule (every 4 hours), the instance's "EC2 Instance State-change
Notification" and the database's "RDS DB Instance Event" (started / stopped). An event is a
hint, never the truth: whatever it says, the pass re-observes, so an event delivered twice,
late or out of order does no harm.

The decision (``decide``), for the observed (RDS status, instance state):

=====================  ==================================  ===================================
instance               RDS                                 next step
=====================  ==================================  ===================================
running, over          any                                 stop the instance (MaxRunMinutes)
MaxRunMinutes
running, launch        any                                 stop the instance (the launch failed
claimed but not sent                                       and so did its compensation)
STALE_CLAIM_MINUTES
running, launched      any                                 nothing: the app is running
for this boot
running, not launched  available / stopped / other         launch the app (SSM) / start RDS /
(a run is wanted)                                          wait for the RDS event
pending, stopping      any                                 wait for the next state-change event
stopped, run wanted    available / stopped / other         start the instance / start RDS / wait
stopped, run done      available / other                   stop RDS / nothing
=====================  ==================================  ===================================

A run is *wanted* while the current cycle has not launched the app yet, or when a new cycle
is due (the last one began at least ``RUN_INTERVAL_MINUTES - DUE_SLACK_MINUTES`` ago).

Idempotency, and where the state lives: the orchestrator keeps its few facts as tags on the
EC2 instance it manages (``makenaide:*``, written with ec2:CreateTags scoped to that instance
and to those keys), so the facts live with the resource and need no table:

- ``makenaide:cycle-at``: when the current 4-hour cycle began;
- ``makenaide:started-at``: when the orchestrator last started the instance;
- ``makenaide:launched-at`` / ``makenaide:run-id`` / ``makenaide:command-id`` /
  ``makenaide:launch-status``: the app launch of the current boot. The tag is written
  *before* SendCommand (a claim); a pass launches only when the claim is older than the
  instance's current boot, so a duplicate "running" event never launches twice;
- ``makenaide:ec2-stopped-at`` / ``makenaide:rds-stopped-at``: when a pass first *observed*
  the resource stopped. Cost savings are counted from these only (see ``DailyCostSavings``).

Two passes never interleave: the function runs with ReservedConcurrentExecutions 1, so
EventBridge's asynchronous invocations queue up (Lambda retries throttled ones) instead of
racing between the read of the claim tag and its write.

Safety: a launch that fails stops the instance it was meant for (the claim step's
compensation), and so does a start whose record (CreateTags) fails; a launch claimed but
never sent (its pass failed, and so did the stop) is stopped by a later pass once the claim
is STALE_CLAIM_MINUTES old; an instance running longer than MAX_RUN_MINUTES is stopped; every step
declares its budget, and the executor skips a step when the Lambda deadline cannot cover it,
so a pass never starts what it cannot finish. The DB password never leaves Secrets Manager:
the SSM script passes the app the secret's ARN only, and the app reads the secret itself.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import time
from datetime import UTC, datetime, timedelta

from .clients import ATTEMPT_MS
from .pipeline import SkipStep, Step

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    from .pipeline import RunContext

WORST_CASE_SECONDS = 20
"""The longest a pass can take: observe + record + its one action (at most claim + launch) + report,
18 s of budgets; the other steps skip at once. Timeout 60 covers it with room for a slow API."""

OBSERVE_BUDGET_MS = 2_500
RECORD_BUDGET_MS = 1_000
ACTION_BUDGET_MS = 3_000
START_INSTANCE_BUDGET_MS = ATTEMPT_MS + 1_000
"""Starting is one StartInstances attempt (the client bounds it by ATTEMPT_MS) and a tag: an
instance is never started that the pass could not also record."""
SEND_RETRY_S = 10.0
"""How long SendCommand is retried while the instance's SSM agent is still registering."""
SEND_RETRY_INTERVAL_S = 2.0
SEND_BUDGET_MS = int(SEND_RETRY_S * 1000) + 3_000
CLAIM_BUDGET_MS = 1_000 + SEND_BUDGET_MS
"""A launch is claimed only when the send (SEND_BUDGET_MS) can follow in this same invocation."""
LAUNCH_STEP_BUDGET_MS = 1_000
"""launch_app's own entry check: its time was reserved by the claim, and it is critical, so a
larger budget would fail the pass (instead of skipping) when no launch was claimed."""
REPORT_BUDGET_MS = 100

STALE_CLAIM_MINUTES = 5
"""A claim still not "sent" after this long was abandoned: no pass takes more than the Timeout (60 s)."""
DUE_SLACK_MINUTES = 30
"""A schedule tick a little early still starts the next cycle."""
DEFAULT_RUN_INTERVAL_MINUTES = 240
MAX_RUN_MINUTES_LIMIT = 24 * 60
SHUTDOWN_DELAY_MINUTES = 1
"""The SSM script shuts the instance down this long after the app exits (SSM reports first)."""

ENV_INSTANCE_ID = "INSTANCE_ID"
ENV_DB_IDENTIFIER = "DB_INSTANCE_IDENTIFIER"
ENV_EC2_PRICE = "EC2_HOURLY_PRICE_USD"
ENV_RDS_PRICE = "RDS_HOURLY_PRICE_USD"
ENV_MAX_RUN = "MAX_RUN_MINUTES"
ENV_RUN_INTERVAL = "RUN_INTERVAL_MINUTES"
ENV_APP_COMMAND = "APP_COMMAND"
ENV_DB_SECRET_ARN = "DB_SECRET_ARN"  # noqa: S105 - the name of a variable holding an ARN

INSTANCE_ID_RE = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
DB_IDENTIFIER_RE = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)")
SECRET_ARN_RE = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+")
APP_COMMAND_MAX = 4_096
SHOWN_CHARS = 60
"""Values from an event or the environment appear in an error as a repr of at most this length."""

TAG_PREFIX = "makenaide:"
TAG_CYCLE = "makenaide:cycle-at"
TAG_STARTED = "makenaide:started-at"
TAG_LAUNCHED = "makenaide:launched-at"
TAG_RUN_ID = "makenaide:run-id"
TAG_COMMAND = "makenaide:command-id"
TAG_LAUNCH_STATUS = "makenaide:launch-status"
TAG_EC2_STOPPED = "makenaide:ec2-stopped-at"
TAG_RDS_STOPPED = "makenaide:rds-stopped-at"

NONE, WAIT = "none", "wait"
START_RDS, STOP_RDS = "start-rds", "stop-rds"
START_INSTANCE, STOP_INSTANCE, LAUNCH = "start-instance", "stop-instance", "launch"

SSM_DOCUMENT = "AWS-RunShellScript"
EC2_EVENT = "EC2 Instance State-change Notification"
RDS_EVENT = "RDS DB Instance Event"


class InvalidEvent(ValueError):
    """The event or the function's configuration cannot be processed; the caller gets a clear error."""


class StartUndone(RuntimeError):
    """The instance was started but its start could not be recorded, so it was stopped again."""


def _shown(value: Any) -> str:
    """A short repr of an outside value for an error message (never the whole of a huge input)."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = SHOWN_CHARS
    return shortener.repr(value)


def utcnow() -> datetime:
    """The orchestrator's clock (tests replace it to walk through a day)."""
    return datetime.now(UTC)


# --- configuration and events -------------------------------------------------------------------


class Config:
    __slots__ = (
        "app_command",
        "db_identifier",
        "db_secret_arn",
        "ec2_price",
        "instance_id",
        "max_run_minutes",
        "rds_price",
        "run_interval_minutes",
    )

    def __init__(self, **values: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, values[name])


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise InvalidEvent(f"environment variable {name} is not set")
    return value


def _price(environ: Mapping[str, str], name: str) -> float:
    raw = _required(environ, name)
    try:
        value = float(raw)
    except ValueError:
        raise InvalidEvent(f"{name}={_shown(raw)} is not a number (USD per hour)") from None
    if not math.isfinite(value) or value < 0:
        raise InvalidEvent(f"{name}={_shown(raw)} must be a finite price >= 0 (USD per hour)")
    return value


def _minutes(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    raw = environ.get(name, "").strip()
    if not raw and default is not None:
        return default
    raw = _required(environ, name)
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_RUN_MINUTES_LIMIT:
        raise InvalidEvent(
            f"{name}={_shown(raw)} must be whole minutes between 1 and {MAX_RUN_MINUTES_LIMIT}"
        )
    return int(raw)


def load_config(environ: Mapping[str, str]) -> Config:
    """The function's settings from its environment (set from the template's Parameters)."""
    instance_id = _required(environ, ENV_INSTANCE_ID)
    if not INSTANCE_ID_RE.fullmatch(instance_id):
        raise InvalidEvent(
            f"{ENV_INSTANCE_ID}={_shown(instance_id)} is not an EC2 instance id (i-0123456789abcdef0)"
        )
    db_identifier = _required(environ, ENV_DB_IDENTIFIER)
    if not DB_IDENTIFIER_RE.fullmatch(db_identifier):
        raise InvalidEvent(
            f"{ENV_DB_IDENTIFIER}={_shown(db_identifier)} is not an RDS DB identifier "
            "(a letter, then up to 62 letters, digits or single hyphens)"
        )
    app_command = _required(environ, ENV_APP_COMMAND)
    if len(app_command) > APP_COMMAND_MAX:
        raise InvalidEvent(f"{ENV_APP_COMMAND} is {len(app_command)} characters, at most {APP_COMMAND_MAX}")
    secret_arn = _required(environ, ENV_DB_SECRET_ARN)
    if not SECRET_ARN_RE.fullmatch(secret_arn):
        raise InvalidEvent(f"{ENV_DB_SECRET_ARN} is not a Secrets Manager secret ARN")
    return Config(
        instance_id=instance_id,
        db_identifier=db_identifier,
        ec2_price=_price(environ, ENV_EC2_PRICE),
        rds_price=_price(environ, ENV_RDS_PRICE),
        max_run_minutes=_minutes(environ, ENV_MAX_RUN),
        run_interval_minutes=_minutes(environ, ENV_RUN_INTERVAL, DEFAULT_RUN_INTERVAL_MINUTES),
        app_command=app_command,
        db_secret_arn=secret_arn,
    )


class Request:
    """One reconcile pass: the settings, what triggered it, and what the steps found and did."""

    __slots__ = (
        "config",
        "decision",
        "emitted",
        "errors",
        "hint",
        "now",
        "observed",
        "savings",
        "started",
        "trigger",
    )

    def __init__(self, config: Config, trigger: str, hint: dict[str, Any], now: datetime) -> None:
        self.config = config
        self.trigger = trigger
        self.hint = hint
        self.now = now
        self.started = time.perf_counter()
        self.observed: Observed | None = None
        self.decision: Decision | None = None
        self.savings: list[dict[str, Any]] = []
        self.errors = 0
        self.emitted = False


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidEvent(f"a {_shown(event.get('detail-type'))} event needs a 'detail' object")
    return detail


def parse_event(event: dict[str, Any], environ: Mapping[str, str] | None = None) -> Request:
    """The pass's request; the event only says why the pass runs (a hint, never the truth)."""
    config = load_config(os.environ if environ is None else environ)
    detail_type = event.get("detail-type")
    source = event.get("source")
    if source == "aws.ec2" or detail_type == EC2_EVENT:
        detail = _detail(event)
        instance_id, state = detail.get("instance-id"), detail.get("state")
        if not isinstance(instance_id, str) or not isinstance(state, str):
            raise InvalidEvent("an EC2 state-change event needs detail.instance-id and detail.state strings")
        trigger, hint = "ec2-state-change", {"instance-id": instance_id, "state": state}
    elif source == "aws.rds" or detail_type == RDS_EVENT:
        detail = _detail(event)
        trigger = "rds-event"
        hint = {key: detail.get(key) for key in ("SourceIdentifier", "EventID") if key in detail}
    elif source == "aws.events" or detail_type == "Scheduled Event":
        trigger, hint = "schedule", {}
    elif not event:
        trigger, hint = "manual", {}
    else:
        raise InvalidEvent(
            "expected a schedule event, an EC2 state-change event, an RDS DB instance event or {}"
        )
    if isinstance(event.get("time"), str):
        hint["time"] = event["time"]
    return Request(config, trigger, hint, utcnow())


# --- observation and decision -------------------------------------------------------------------


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class Observed:
    """What DescribeDBInstances and DescribeInstances said, and the orchestrator's tags."""

    __slots__ = ("instance_state", "launch_time", "rds_status", "tags")

    def __init__(
        self, rds_status: str, instance_state: str, launch_time: datetime | None, tags: dict[str, str]
    ) -> None:
        self.rds_status = rds_status
        self.instance_state = instance_state
        self.launch_time = launch_time
        self.tags = tags

    def tag_time(self, key: str) -> datetime | None:
        return _parse_time(self.tags.get(key))

    @property
    def running_since(self) -> datetime | None:
        """The start of the current boot: EC2's LaunchTime, or our own start record when later."""
        candidates = [t for t in (self.launch_time, self.tag_time(TAG_STARTED)) if t is not None]
        return max(candidates) if candidates else None

    def launched_this_boot(self) -> bool:
        launched, since = self.tag_time(TAG_LAUNCHED), self.running_since
        return launched is not None and (since is None or launched >= since)

    def to_dict(self) -> dict[str, Any]:
        return {"rds": self.rds_status, "instance": self.instance_state}


class Decision:
    __slots__ = ("action", "begin_cycle", "reason")

    def __init__(self, action: str, reason: str, begin_cycle: bool = False) -> None:
        self.action = action
        self.reason = reason
        self.begin_cycle = begin_cycle

    def to_dict(self) -> dict[str, Any]:
        data = {"action": self.action, "reason": self.reason}
        if self.begin_cycle:
            data["begin_cycle"] = True
        return data


def decide(observed: Observed, now: datetime, config: Config) -> Decision:
    """The one next step for what was observed (pure: no AWS call, no clock)."""
    cycle_at, launched_at = observed.tag_time(TAG_CYCLE), observed.tag_time(TAG_LAUNCHED)
    pending = cycle_at is not None and (launched_at is None or launched_at < cycle_at)
    due_after = timedelta(minutes=config.run_interval_minutes - DUE_SLACK_MINUTES)
    due = cycle_at is None or now - cycle_at >= due_after
    begin = due and not pending
    wanted = pending or due
    state, rds = observed.instance_state, observed.rds_status

    if state == "running":
        since = observed.running_since
        if since is not None and now - since > timedelta(minutes=config.max_run_minutes):
            minutes = int((now - since).total_seconds() // 60)
            reason = f"running {minutes} min, over MAX_RUN_MINUTES={config.max_run_minutes}"
            return Decision(STOP_INSTANCE, reason)
        if observed.launched_this_boot():
            launched_at = observed.tag_time(TAG_LAUNCHED)
            abandoned = now - launched_at > timedelta(minutes=STALE_CLAIM_MINUTES)
            if observed.tags.get(TAG_LAUNCH_STATUS) == "claimed" and abandoned:
                reason = f"the launch claimed at {_iso(launched_at)} was never sent (its pass failed)"
                return Decision(STOP_INSTANCE, reason)
            return Decision(NONE, "the app is running (launched for this boot)")
        if not wanted:
            return Decision(NONE, "instance running outside a run: left alone (the max-run guard applies)")
        if rds == "available":
            return Decision(LAUNCH, "instance running, database available, app not launched", begin)
        if rds == "stopped":
            return Decision(START_RDS, "instance running but the database is stopped", begin)
        return Decision(WAIT, f"database is {rds}: the RDS event will resume the run", begin)
    if state in ("pending", "stopping", "shutting-down"):
        return Decision(WAIT, f"instance is {state}: its state-change event will resume the run")
    if state != "stopped":
        return Decision(NONE, f"instance is {state}: nothing the orchestrator can do")
    if wanted:
        if rds == "available":
            return Decision(START_INSTANCE, "database available, a run is wanted", begin)
        if rds == "stopped":
            return Decision(START_RDS, "a run is wanted: database first", begin)
        return Decision(WAIT, f"database is {rds}: the RDS event will resume the run", begin)
    if rds == "available":
        return Decision(STOP_RDS, "run finished and the instance stopped")
    return Decision(NONE, f"run finished; database {rds}, instance stopped")


def observe(run: RunContext) -> dict[str, Any]:
    """Describe both resources; the decision is made from these answers alone."""
    config: Config = run.request.config
    db = run.clients.get("rds").describe_db_instances(DBInstanceIdentifier=config.db_identifier)
    rds_status = db["DBInstances"][0]["DBInstanceStatus"]
    reservations = run.clients.get("ec2").describe_instances(InstanceIds=[config.instance_id])["Reservations"]
    instance = reservations[0]["Instances"][0]
    tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", []) if tag["Key"].startswith(TAG_PREFIX)}
    launch_time = instance.get("LaunchTime")
    if isinstance(launch_time, str):
        launch_time = _parse_time(launch_time)
    observed = Observed(rds_status, instance["State"]["Name"], launch_time, tags)
    run.request.observed = observed
    run.request.decision = decide(observed, run.request.now, config)
    return {**observed.to_dict(), **run.request.decision.to_dict()}


# --- steps ---------------------------------------------------------------------------------------


def _tag(run: RunContext, tags: dict[str, str]) -> None:
    run.clients.get("ec2").create_tags(
        Resources=[run.request.config.instance_id],
        Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
    )


def record(run: RunContext) -> dict[str, str]:
    """Write what this pass observed first: a resource seen stopped, a cycle that begins.

    A stop record of a resource seen running again is cleared: its start was not recorded (the
    start's CreateTags failed), and savings must not be counted later from that old stop.
    """
    request: Request = run.request
    observed, now = request.observed, _iso(request.now)
    tags: dict[str, str] = {}
    for tag, stopped in (
        (TAG_EC2_STOPPED, observed.instance_state == "stopped"),
        (TAG_RDS_STOPPED, observed.rds_status == "stopped"),
    ):
        if stopped and not observed.tags.get(tag):
            tags[tag] = now
        elif not stopped and observed.tags.get(tag):
            tags[tag] = ""
    if request.decision.begin_cycle:
        tags[TAG_CYCLE] = now
    if not tags:
        raise SkipStep("nothing new observed")
    _tag(run, tags)
    observed.tags.update(tags)
    return tags


def _count_savings(request: Request, resource: str, tag: str, hourly_usd: float) -> None:
    """Savings of the stop that ends now: from its first observation, never from a formula."""
    stopped_at = request.observed.tag_time(tag)
    if stopped_at is None or stopped_at > request.now:
        return
    minutes = (request.now - stopped_at).total_seconds() / 60
    request.savings.append(
        {
            "resource": resource,
            "stopped_at": _iso(stopped_at),
            "stopped_minutes": round(minutes, 1),
            "usd": round(minutes / 60 * hourly_usd, 4),
        }
    )


def _only(action: str) -> Callable[[RunContext], None]:
    def check(run: RunContext) -> None:
        decision = run.request.decision
        if decision.action != action:
            raise SkipStep(f"next step is {decision.action}")

    return check


def stop_overrun_instance(run: RunContext) -> dict[str, str]:
    _only(STOP_INSTANCE)(run)
    instance_id = run.request.config.instance_id
    run.clients.get("ec2").stop_instances(InstanceIds=[instance_id])
    return {"stopped": instance_id, "reason": run.request.decision.reason}


def start_rds(run: RunContext) -> dict[str, str]:
    _only(START_RDS)(run)
    request: Request = run.request
    run.clients.get("rds").start_db_instance(DBInstanceIdentifier=request.config.db_identifier)
    _tag(run, {TAG_RDS_STOPPED: ""})
    _count_savings(request, "rds", TAG_RDS_STOPPED, request.config.rds_price)
    return {"started": request.config.db_identifier}


def stop_rds(run: RunContext) -> dict[str, str]:
    _only(STOP_RDS)(run)
    identifier = run.request.config.db_identifier
    run.clients.get("rds").stop_db_instance(DBInstanceIdentifier=identifier)
    return {"stopped": identifier}


def start_instance(run: RunContext) -> dict[str, str]:
    """Start the instance and record the start; a start that cannot be recorded is undone.

    Without ``makenaide:started-at`` a later pass could not tell this boot from a manual one,
    and nothing in this pass would launch the app on it: so when CreateTags fails, the
    instance is stopped again and the step fails naming both (the next pass starts afresh).
    Savings are counted only once the start is recorded, so an undone start counts none.
    """
    _only(START_INSTANCE)(run)
    request: Request = run.request
    ec2 = run.clients.get("ec2")
    ec2.start_instances(InstanceIds=[request.config.instance_id])
    try:
        _tag(run, {TAG_STARTED: _iso(request.now), TAG_EC2_STOPPED: ""})
    except Exception as error:
        problem = f"recording the start failed ({_describe(error)})"
        try:
            ec2.stop_instances(InstanceIds=[request.config.instance_id])
        except Exception as stop_error:
            problem += f", and stopping the instance again failed too ({_describe(stop_error)})"
            raise StartUndone(problem) from error
        raise StartUndone(f"{problem}; the instance was stopped again") from error
    _count_savings(request, "ec2", TAG_EC2_STOPPED, request.config.ec2_price)
    return {"started": request.config.instance_id}


def claim_launch(run: RunContext) -> dict[str, str]:
    """Mark this boot as launched *before* sending, so no later pass launches it again."""
    _only(LAUNCH)(run)
    run_id = f"{run.request.now:%Y%m%dT%H%M%SZ}-{os.urandom(4).hex()}"
    _tag(run, {TAG_LAUNCHED: _iso(run.request.now), TAG_RUN_ID: run_id, TAG_LAUNCH_STATUS: "claimed"})
    return {"run_id": run_id}


def abort_launch(run: RunContext) -> None:
    """Compensation of a failed launch: stop the instance that was started for it."""
    run.clients.get("ec2").stop_instances(InstanceIds=[run.request.config.instance_id])
    _tag(run, {TAG_LAUNCH_STATUS: "failed"})


def ssm_commands(config: Config, run_id: str, region: str) -> list[str]:
    """The AWS-RunShellScript lines: the app gets the secret's ARN, never a secret value.

    The instance shuts itself down after the app exits (whatever its status), and that
    "stopped" state-change event lets the orchestrator stop RDS.
    """
    return [
        "set -u",
        f"trap 'shutdown -h +{SHUTDOWN_DELAY_MINUTES}' EXIT",
        f"export MAKENAIDE_RUN_ID={shlex.quote(run_id)}",
        f"export DB_SECRET_ARN={shlex.quote(config.db_secret_arn)}",
        f"export AWS_REGION={shlex.quote(region)} AWS_DEFAULT_REGION={shlex.quote(region)}",
        config.app_command,
    ]


def _error_code(error: Exception) -> str:
    """The AWS error code of a ClientError; "" for any other error (botocore's timeouts carry
    ``response = None``)."""
    response = getattr(error, "response", None) or {}
    return (response.get("Error") or {}).get("Code", "") if isinstance(response, dict) else ""


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def launch_app(run: RunContext) -> dict[str, str]:
    if "claim_launch" not in run.results:
        raise SkipStep("no launch claimed in this pass")
    request: Request = run.request
    config, run_id = request.config, run.results["claim_launch"]["run_id"]
    ssm = run.clients.get("ssm")
    parameters = {
        "commands": ssm_commands(config, run_id, ssm.meta.region_name),
        "executionTimeout": [str(config.max_run_minutes * 60)],
    }

    def send() -> dict[str, Any] | None:
        try:
            return ssm.send_command(
                InstanceIds=[config.instance_id],
                DocumentName=SSM_DOCUMENT,
                Comment=f"makenaide run {run_id}"[:100],
                Parameters=parameters,
            )
        except Exception as error:
            if _error_code(error) == "InvalidInstanceId":  # the agent has not registered yet
                return None
            raise

    # The retries leave one AWS attempt's worth of time, so that a failed launch can still be undone.
    undo_reserve_s = ATTEMPT_MS / 1000
    max_wait_s = max(0.0, min(SEND_RETRY_S, run.deadline.remaining_ms() / 1000 - undo_reserve_s))
    response = run.deadline.poll(send, interval_s=SEND_RETRY_INTERVAL_S, max_wait_s=max_wait_s)
    command_id = response["Command"]["CommandId"]
    _tag(run, {TAG_COMMAND: command_id, TAG_LAUNCH_STATUS: "sent"})
    return {"run_id": run_id, "command_id": command_id}


def _emit(run: RunContext) -> None:
    """PipelineExecutionTime, ErrorCount and (only for real stops) DailyCostSavings; once per pass."""
    request: Request = run.request
    if request.emitted:
        return
    request.emitted = True
    run.metrics.add("PipelineExecutionTime", (time.perf_counter() - request.started) * 1000, "Milliseconds")
    run.metrics.add("ErrorCount", request.errors)
    total = sum(item["usd"] for item in request.savings)
    if total > 0:
        run.metrics.add("DailyCostSavings", round(total, 4), "None")


def report(run: RunContext) -> dict[str, Any]:
    request: Request = run.request
    _emit(run)
    total = round(sum(item["usd"] for item in request.savings), 4)
    result: dict[str, Any] = {"trigger": request.trigger, "cost_savings_usd": total}
    if request.decision is not None:
        result["action"] = request.decision.action
    if request.savings:
        result["savings"] = request.savings
    if total <= 0:
        result["cost_savings_reason"] = (
            "nothing that had been observed stopped was restarted in this pass"
            if not request.savings
            else "the stop was first observed in this pass: no stopped time to count yet"
        )
    return result


def _guarded(step: Callable[[RunContext], Any], critical: bool) -> Callable[[RunContext], Any]:
    """Count a step's error; a failing critical step emits the metrics (report will not run)."""

    def run_step(run: RunContext) -> Any:
        try:
            return step(run)
        except SkipStep:
            raise
        except Exception:
            run.request.errors += 1
            if critical:
                _emit(run)
            raise

    return run_step


def _action(action: str, fn: Callable[[RunContext], Any], budget_ms: int) -> Callable[[RunContext], Any]:
    """An action step runs only when it is the pass's decision and its budget fits the time left.

    Actions are critical, so that a failed one fails the invocation and Lambda retries the pass;
    they check their budget themselves, after the decision, so that a pass short of time skips
    its action (the next event resumes) instead of failing for an action it would not take.
    """

    def run_step(run: RunContext) -> Any:
        _only(action)(run)
        left = run.deadline.remaining_ms()
        if left < budget_ms:
            raise SkipStep(f"needs {budget_ms} ms, {left} ms left before the deadline")
        return fn(run)

    return run_step


def build_steps(request: Request) -> list[Step]:
    def step(
        name: str, fn: Callable[[RunContext], Any], budget_ms: int, critical: bool = False, **kw: Any
    ) -> Step:
        return Step(name, _guarded(fn, critical), critical=critical, budget_ms=budget_ms, **kw)

    def action(name: str, decision: str, fn: Callable[[RunContext], Any], budget_ms: int, **kw: Any) -> Step:
        return step(name, _action(decision, fn, budget_ms), 0, critical=True, **kw)

    return [
        step("observe", observe, OBSERVE_BUDGET_MS, critical=True),
        step("record", record, RECORD_BUDGET_MS),
        action("stop_overrun_instance", STOP_INSTANCE, stop_overrun_instance, ACTION_BUDGET_MS),
        action("start_rds", START_RDS, start_rds, ACTION_BUDGET_MS),
        action("stop_rds", STOP_RDS, stop_rds, ACTION_BUDGET_MS),
        action("start_instance", START_INSTANCE, start_instance, START_INSTANCE_BUDGET_MS),
        action("claim_launch", LAUNCH, claim_launch, CLAIM_BUDGET_MS, compensate=abort_launch),
        step("launch_app", launch_app, LAUNCH_STEP_BUDGET_MS, critical=True),
        step("report", report, REPORT_BUDGET_MS),
    ]
