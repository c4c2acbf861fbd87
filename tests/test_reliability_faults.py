"""Faults injected into the Makenaide examples' real handlers (``make reliability``).

1. AWS, integrated orchestrator: for each (phase, operation) of a normal 4-hourly cycle walked with
   moto, and each fault (throttling, 5xx, AccessDenied, read timeout), the fault is injected on that
   operation only and the pass is invoked with a 20 s deadline. Held: the invocation fails as Lambda
   sees it (the handler raises PipelineFailed, whose message is the result's JSON and names the fault),
   and an instance stopped before the pass is not left running.
2. AWS, StopInstances itself: the overrun stop, the undo of a start whose CreateTags failed, and the
   undo (compensation) of a failed launch, each with the four faults; then a pass without faults must
   bring the instance back under control.
3. No wait outlives the deadline: every test runs on a virtual clock. ``time.sleep`` (botocore's
   backoff, pyupbit's paging pause) and the examples' ``Deadline.sleep`` advance it instead of sleeping,
   and the fake Lambda context's remaining time shrinks by real time plus every wait. Each wait is
   checked against the time remaining when it began, and the sum against the invocation's time.
4. PostgreSQL, data collector: the function's session is killed with ``pg_terminate_backend`` from
   another session while a ticker's transaction is open (between its two batches, or between two pages
   of a batch) or while it idles between transactions; killed once (the transaction is retried) or
   twice (the ticker fails, its rows are rolled back). A re-run completes with exact row counts and no
   duplicate. The schema is the db-initializer's own, created by invoking its handler.
5. Upbit, data collector and scanner: 429, 500, 503 with an HTML body, connect and read timeouts
   (raised from a `responses` callback, as requests would) and malformed JSON; transient (one attempt
   short of the limit) and persistent. Held: calls are counted and bounded by MAX_ATTEMPTS, and every
   requested ticker is collected or listed as failed or deferred.

Faults are injected per client: the factory's ``get`` is wrapped so each client it creates gets a
``before-call`` handler (an error response: no retry, as botocore would see a final answer) or a
``before-send`` handler raising ReadTimeoutError (botocore's retries run, bounded by its config).
A run that is not ok must raise PipelineFailed (``failed_run``): Lambda then counts the error, retries
an asynchronous event and sends it to the failure destination; a normal return of ``ok: false`` fails
the test. Tests marked ``xfail(strict=True)`` are defects of template-owned files, kept here so they flip to
failures (to be unmarked) once the template is fixed; docs/reliability.md lists them.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import json
import logging
import os
import random
import time
import types
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.support import makenaide as mk

pytestmark = pytest.mark.reliability

REAL_MONOTONIC = time.monotonic
DB_ID = "makenaide-db"
MOTO_AMI = "ami-12c6146b"  # one of moto's built-in images (describing them all takes seconds)
MAX_RUN = 180
EXAMPLE_NAMES = (
    "makenaide-db-initializer",
    "makenaide-scanner",
    "makenaide-data-collector",
    "makenaide-integrated-orchestrator",
)
_databases = itertools.count()


# --- the virtual clock ---------------------------------------------------------------------------


class VirtualClock:
    """Lambda's remaining time, shrinking with real time and with every wait (which takes no real time)."""

    function_name = "reliability-faults"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:ap-northeast-2:123456789012:function:reliability-faults"

    def __init__(self, remaining_ms: int) -> None:
        self.initial_s = remaining_ms / 1000
        self.started = REAL_MONOTONIC()
        self.waited = 0.0
        self.waits: list[tuple[str, float, float]] = []  # (kind, seconds, remaining when it began)

    def restart(self, remaining_ms: int) -> VirtualClock:
        """A new invocation: a fresh deadline, the waits of earlier ones forgotten."""
        self.__init__(remaining_ms)
        return self

    def elapsed(self) -> float:
        return REAL_MONOTONIC() - self.started + self.waited

    def remaining_s(self) -> float:
        return self.initial_s - self.elapsed()

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.remaining_s() * 1000))

    def wait(self, seconds: float, kind: str = "sleep") -> None:
        self.waits.append((kind, float(seconds), self.remaining_s()))
        self.waited += max(0.0, float(seconds))

    def sleep(self, seconds: float) -> None:
        self.wait(seconds)

    def monotonic(self) -> float:
        return REAL_MONOTONIC() + self.waited

    def slept(self) -> float:
        return sum(seconds for kind, seconds, _ in self.waits if kind == "sleep")

    def assert_no_wait_outlived_the_deadline(self) -> None:
        outlived = [(kind, round(s, 3), round(left, 3)) for kind, s, left in self.waits if s > left]
        assert not outlived, f"waits longer than the time left (kind, seconds, left): {outlived[:5]}"
        total = sum(seconds for _, seconds, _ in self.waits)
        assert total <= self.initial_s, f"{total:.1f} s of waits in a {self.initial_s:.1f} s invocation"
        assert self.elapsed() <= self.initial_s, f"returned {self.elapsed() - self.initial_s:.1f} s late"


@pytest.fixture
def examples_on_path(monkeypatch):
    """Each example's src/ on sys.path (their packages have distinct names)."""
    for name in EXAMPLE_NAMES:
        monkeypatch.syspath_prepend(str(mk.src(name)))


def _module(example: str, name: str):
    return importlib.import_module(f"{example.replace('-', '_')}.{name}")


def failed_run(handler, event, context) -> tuple[dict, str]:
    """Invoke a run that must fail as Lambda sees it: the handler raises PipelineFailed.

    Returns the whole result (the exception's) and the error message Lambda reports: the result's
    JSON within MAX_ERROR_MESSAGE_CHARS, the failed critical step and its error first.
    """
    with pytest.raises(handler.PipelineFailed) as raised:
        handler.lambda_handler(event, context)
    message = str(raised.value)
    assert len(message) <= handler.MAX_ERROR_MESSAGE_CHARS, len(message)
    assert message.startswith('{"ok": false, "error": "critical step '), message[:300]
    assert raised.value.result["ok"] is False
    return raised.value.result, message


@pytest.fixture
def clock(monkeypatch, examples_on_path):
    """The virtual clock: time.sleep everywhere, and the time the examples' pipeline/upbit modules read."""
    virtual = VirtualClock(600_000)
    proxy = types.SimpleNamespace(
        sleep=virtual.sleep, monotonic=virtual.monotonic, perf_counter=time.perf_counter, time=time.time
    )
    for example in EXAMPLE_NAMES:
        for name in ("pipeline", "upbit"):
            with contextlib.suppress(ModuleNotFoundError):
                monkeypatch.setattr(_module(example, name), "time", proxy)
    monkeypatch.setattr(time, "sleep", virtual.sleep)
    random.seed(20250110)  # botocore's backoff jitter, reproducible
    return virtual


def _aws_environment(monkeypatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": mk.REGION,
        "AWS_REGION": mk.REGION,
    }.items():
        monkeypatch.setenv(key, value)


def _reset(example: str) -> None:
    """A new container: no orchestrator, no clients, no connection, a cold start."""
    _module(example, "handler").reset()
    _module(example, "metrics").reset_cold_start()
    with contextlib.suppress(ModuleNotFoundError):
        _module(example, "db").reset_database()


# --- 1-3. AWS faults, integrated orchestrator ----------------------------------------------------

ORCHESTRATOR = "makenaide-integrated-orchestrator"
AWS_FAULTS = {
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
CASES = [
    (phase, service, op, fault)
    for phase, ops in PHASES.items()
    for service, op in ops
    for fault in AWS_FAULTS
]
# StopInstances in each place it is called: the pass's phase, and the fault that makes it needed
STOP_PLACES = {
    "overrun": ("overrun", {}),
    "undo-start": ("rds-available", {("ec2", "CreateTags"): "access-denied"}),
    "undo-launch": ("instance-running", {("ssm", "SendCommand"): "access-denied"}),
}
STOP_CASES = [(place, fault) for place in STOP_PLACES for fault in AWS_FAULTS]


@pytest.fixture
def orchestrator(monkeypatch, clock):
    _aws_environment(monkeypatch)
    from moto import mock_aws

    with mock_aws():
        _reset(ORCHESTRATOR)
        yield types.SimpleNamespace(
            handler=_module(ORCHESTRATOR, "handler"),
            steps=_module(ORCHESTRATOR, "steps"),
            clients=_module(ORCHESTRATOR, "clients"),
        )
        _reset(ORCHESTRATOR)


class Account:
    """The account the orchestrator manages, on a simulated wall clock (``steps.utcnow``)."""

    def __init__(self, steps, monkeypatch) -> None:
        import boto3

        self.ec2, self.rds, self.ssm = boto3.client("ec2"), boto3.client("rds"), boto3.client("ssm")
        secret = boto3.client("secretsmanager").create_secret(
            Name="makenaide/db", SecretString=json.dumps({"username": "makenaide", "password": "x"})
        )
        self.instance_id = self.ec2.run_instances(
            ImageId=MOTO_AMI, MinCount=1, MaxCount=1, InstanceType="t3.medium"
        )["Instances"][0]["InstanceId"]
        self.ec2.stop_instances(InstanceIds=[self.instance_id])
        self.rds.create_db_instance(
            DBInstanceIdentifier=DB_ID,
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="makenaide",
            MasterUserPassword=os.urandom(12).hex(),
            AllocatedStorage=20,
        )
        self.rds.stop_db_instance(DBInstanceIdentifier=DB_ID)
        for key, value in {
            "INSTANCE_ID": self.instance_id,
            "DB_INSTANCE_IDENTIFIER": DB_ID,
            "DB_SECRET_ARN": secret["ARN"],
            "APP_COMMAND": "/opt/makenaide/run.sh",
            "EC2_HOURLY_PRICE_USD": "0.0832",
            "RDS_HOURLY_PRICE_USD": "0.036",
            "MAX_RUN_MINUTES": str(MAX_RUN),
        }.items():
            monkeypatch.setenv(key, value)
        self.start = self.now = datetime.now(UTC).replace(microsecond=0)
        monkeypatch.setattr(steps, "utcnow", lambda: self.now)

    def at(self, minutes: int) -> None:
        self.now = self.start + timedelta(minutes=minutes)

    def instance_state(self) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[self.instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]

    def commands(self) -> list[dict]:
        return self.ssm.list_commands(InstanceId=self.instance_id)["Commands"]

    def tick(self) -> dict:
        return {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}

    def ec2_event(self, state: str) -> dict:
        return {
            "source": "aws.ec2",
            "detail-type": "EC2 Instance State-change Notification",
            "detail": {"instance-id": self.instance_id, "state": state},
        }

    def rds_event(self) -> dict:
        return {
            "source": "aws.rds",
            "detail-type": "RDS DB Instance Event",
            "detail": {"SourceIdentifier": DB_ID, "EventID": "RDS-EVENT-0088"},
        }


class Injector:
    """Faults per (service, operation), attached to every client the orchestrator's factory creates.

    An error fault answers at ``before-call`` (a final answer: botocore does not retry it); a read
    timeout is raised at ``before-send`` (botocore retries it, its backoff on the virtual clock), and
    costs ``timeout_cost_s`` of virtual time per attempt (0: the suite's default, an instant timeout).
    """

    def __init__(self, faults: dict[tuple[str, str], str], clock: VirtualClock, timeout_cost_s: float = 0.0):
        self.faults = faults
        self.clock = clock
        self.timeout_cost_s = timeout_cost_s
        self.hits: Counter[str] = Counter()
        self.armed = False

    def install(self, clients_module, monkeypatch) -> None:
        original_get = clients_module.AWSClientFactory.get
        injector = self

        def get(self, name, region=None):
            client = original_get(self, name, region)
            if not getattr(client, "_faults_attached", False):
                injector.attach(name, client)
                client._faults_attached = True
            return client

        monkeypatch.setattr(clients_module.AWSClientFactory, "get", get)

    def attach(self, service: str, client) -> None:
        service_id = client.meta.service_model.service_id.hyphenize()
        for (fault_service, operation), fault in self.faults.items():
            if fault_service != service:
                continue
            if fault == "read-timeout":
                # After the factory's deadline check (which is first), before anything answers the request.
                timeout, name = self._timeout(operation), f"before-send.{service_id}.{operation}"

                def on_send(event_name="", _name=name, _timeout=timeout, **kw):
                    return _timeout(event_name=event_name, **kw) if event_name == _name else None

                client.meta.events.register_first("before-send", on_send)
            else:
                client.meta.events.register(
                    f"before-call.{service_id}.{operation}", self._error(operation, fault)
                )

    def _error(self, operation: str, fault: str):
        def answer(**kwargs):
            if not self.armed:
                return None
            self.hits[operation] += 1
            status, code, message = AWS_FAULTS[fault]

            class Http:
                status_code = status
                headers: dict = {}
                content = b""
                text = ""

            return Http(), {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "fault"},
            }

        return answer

    def _timeout(self, operation: str):
        def raise_timeout(request, **kwargs):
            if not self.armed:
                return None
            from botocore.exceptions import ReadTimeoutError

            self.hits[operation] += 1
            if self.timeout_cost_s:
                self.clock.wait(self.timeout_cost_s, kind="read-timeout")
            raise ReadTimeoutError(endpoint_url=request.url)

        return raise_timeout


def _walk_to(phase: str, account: Account, handler, clock: VirtualClock) -> dict:
    """Invoke the passes that lead to ``phase``; return the event of the phase's own pass."""
    walk = [
        ("cold-tick", 0, account.tick()),
        ("rds-available", 6, account.rds_event()),
        ("instance-running", 7, account.ec2_event("running")),
        ("overrun", 7 + MAX_RUN + 2, {}),
        ("app-finished", 45, account.ec2_event("stopped")),
    ]
    for name, minute, event in walk:
        if name == "app-finished" and phase == "overrun":
            continue
        if name == "overrun" and phase != "overrun":
            continue
        account.at(minute)
        if name == "app-finished":
            account.ec2.stop_instances(InstanceIds=[account.instance_id])  # the app's own shutdown
        if name == phase:
            return event
        result = handler.lambda_handler(event, clock.restart(60_000))
        assert result["ok"] is True, json.dumps(result)[:800]
    raise AssertionError(phase)


def _names(fault: str) -> str:
    return "timeout" if fault == "read-timeout" else AWS_FAULTS[fault][1].lower()


def _check_retries_bounded(injector: Injector, clients_module, fault: str) -> None:
    for operation, hits in injector.hits.items():
        limit = clients_module.MAX_ATTEMPTS if fault == "read-timeout" else 1
        assert hits <= limit * 2, f"{operation} tried {hits} times"  # at most two calls of it in a pass


@pytest.mark.parametrize(
    ("phase", "service", "operation", "fault"), CASES, ids=[f"{p}-{o}-{f}" for p, _, o, f in CASES]
)
def test_aws_fault_is_reported_and_leaves_no_instance_running(
    phase, service, operation, fault, orchestrator, clock, monkeypatch
):
    o = orchestrator
    account = Account(o.steps, monkeypatch)
    injector = Injector({(service, operation): fault}, clock)
    injector.install(o.clients, monkeypatch)
    event = _walk_to(phase, account, o.handler, clock)
    before = account.instance_state()
    injector.armed = True

    result, message = failed_run(o.handler, event, clock.restart(20_000))

    injector.armed = False
    text = json.dumps(result)
    assert injector.hits[operation] >= 1, f"{operation} was not called in phase {phase}: {text[:600]}"
    assert _names(fault) in message.lower(), f"the error message does not name the failure: {message}"
    assert "AttributeError" not in text, text[:1500]
    after = account.instance_state()
    if before in ("stopped", "stopping"):
        assert after in ("stopped", "stopping"), f"instance left {after} by a failed pass ({text[:800]})"
    _check_retries_bounded(injector, o.clients, fault)
    clock.assert_no_wait_outlived_the_deadline()


@pytest.mark.parametrize(
    ("place", "fault"), STOP_CASES, ids=[f"{p}-StopInstances-{f}" for p, f in STOP_CASES]
)
def test_a_failed_stop_is_reported_and_a_later_pass_regains_control(
    place, fault, orchestrator, clock, monkeypatch, caplog
):
    o = orchestrator
    phase, other_faults = STOP_PLACES[place]
    account = Account(o.steps, monkeypatch)
    injector = Injector({**other_faults, ("ec2", "StopInstances"): fault}, clock)
    injector.install(o.clients, monkeypatch)
    event = _walk_to(phase, account, o.handler, clock)
    injector.armed = True

    with caplog.at_level(logging.ERROR):
        result, message = failed_run(o.handler, event, clock.restart(20_000))

    injector.armed = False
    text = json.dumps(result)
    assert injector.hits["StopInstances"] >= 1, f"StopInstances was not called: {text[:800]}"
    failing = {
        "overrun": "stop_overrun_instance",
        "undo-start": "start_instance",
        "undo-launch": "launch_app",
    }
    assert f"critical step {failing[place]} failed: " in message, message[:300]
    assert account.instance_state() == "running"  # the stop failed: nothing else could be done now
    clock.assert_no_wait_outlived_the_deadline()
    _check_retries_bounded(injector, o.clients, fault)
    steps = {step["name"]: step for step in result["steps"]}
    if place == "overrun":
        assert _names(fault) in steps["stop_overrun_instance"]["error"].lower()
        account.at(7 + MAX_RUN + 3)
        later = o.handler.lambda_handler({}, clock.restart(20_000))
    elif place == "undo-start":
        error = steps["start_instance"]["error"]
        assert "accessdeniedexception" in error.lower() and _names(fault) in error.lower(), error
        assert "stopping the instance again failed too" in error
        account.at(7)  # its "running" event: the run goes on with the instance it started
        later = o.handler.lambda_handler(account.ec2_event("running"), clock.restart(20_000))
        assert later["ok"] is True and len(account.commands()) == 1, json.dumps(later)[:800]
        return
    else:
        assert "AccessDeniedException" in steps["launch_app"]["error"]
        assert "compensated" not in result  # the compensation failed: nothing was undone
        assert [entry["step"] for entry in result["compensation_failed"]] == ["claim_launch"]
        logged = "\n".join(record.getMessage() + str(record.exc_info) for record in caplog.records)
        assert "compensation failed" in logged and _names(fault) in logged.lower()
        account.at(7 + o.steps.STALE_CLAIM_MINUTES + 1)  # the abandoned claim is noticed
        later = o.handler.lambda_handler({}, clock.restart(20_000))
    later_text = json.dumps(later)
    assert later["ok"] is True, later_text[:800]
    assert {s["name"]: s for s in later["steps"]}["stop_overrun_instance"]["status"] == "ok", later_text[:800]
    assert account.instance_state() in ("stopping", "stopped")


@pytest.mark.parametrize("send_retry_s", [None, 600.0], ids=["SEND_RETRY_S-default", "SEND_RETRY_S-600"])
@pytest.mark.parametrize("remaining_ms", [20_000, 60_000])
def test_no_wait_outlives_the_deadline_while_the_ssm_agent_never_registers(
    remaining_ms, send_retry_s, orchestrator, clock, monkeypatch
):
    """SendCommand answers InvalidInstanceId forever: the poll's sleeps stop at the deadline."""
    o = orchestrator
    if send_retry_s is not None:
        monkeypatch.setattr(o.steps, "SEND_RETRY_S", send_retry_s)
    account = Account(o.steps, monkeypatch)
    injector = Injector({}, clock)
    injector.install(o.clients, monkeypatch)
    event = _walk_to("instance-running", account, o.handler, clock)
    from botocore.exceptions import ClientError

    calls = []

    def not_registered(**kwargs):
        calls.append(1)
        raise ClientError(
            {"Error": {"Code": "InvalidInstanceId", "Message": "not registered"}}, "SendCommand"
        )

    o.handler.get_orchestrator().clients.get("ssm").meta.events.register(
        "before-call.ssm.SendCommand", not_registered
    )

    result, message = failed_run(o.handler, event, clock.restart(remaining_ms))

    assert "critical step launch_app failed: DeadlineExceeded" in message, message[:300]
    launch = {s["name"]: s for s in result["steps"]}["launch_app"]
    assert launch["status"] == "failed" and launch["error"].startswith("DeadlineExceeded: "), launch
    assert result["compensated"] == ["claim_launch"]
    assert account.instance_state() in ("stopping", "stopped")
    assert len(calls) >= 2 and clock.slept() > 0
    clock.assert_no_wait_outlived_the_deadline()
    margin_s = _module(ORCHESTRATOR, "pipeline").SAFETY_MARGIN_MS / 1000
    assert clock.slept() <= clock.initial_s - margin_s


def test_aws_endpoints_that_never_answer_do_not_hold_the_pass_past_its_timeout(
    orchestrator, clock, monkeypatch
):
    """Every SendCommand and StopInstances attempt times out after READ_TIMEOUT_S (a network partition)."""
    o = orchestrator
    account = Account(o.steps, monkeypatch)
    faults = {("ssm", "SendCommand"): "read-timeout", ("ec2", "StopInstances"): "read-timeout"}
    injector = Injector(faults, clock, timeout_cost_s=o.clients.READ_TIMEOUT_S)
    injector.install(o.clients, monkeypatch)
    event = _walk_to("instance-running", account, o.handler, clock)
    injector.armed = True

    _, message = failed_run(o.handler, event, clock.restart(60_000))  # the function's Timeout

    assert "timeout" in message.lower(), message[:300]
    assert account.instance_state() == "running"  # the stop timed out too: nothing else was changed
    clock.assert_no_wait_outlived_the_deadline()


# --- 4-5. PostgreSQL and Upbit faults, data collector and scanner ---------------------------------

COLLECTOR, SCANNER, INITIALIZER = "makenaide-data-collector", "makenaide-scanner", "makenaide-db-initializer"
ACTIVE = ("KRW-BTC", "KRW-ETH", "KRW-XRP")
DAILY_FULL, FOUR_HOUR = 450, 200


@pytest.fixture
def makenaide_db(session_postgres, monkeypatch, clock):
    """A fresh database with the db-initializer's schema (its handler run once), its secret in moto."""
    import psycopg2

    _aws_environment(monkeypatch)
    url = session_postgres.database(f"faults_{os.getpid()}_{next(_databases)}")
    from moto import mock_aws

    with mock_aws():
        monkeypatch.setenv("DB_SECRET_ARN", mk.create_db_secret(url))
        _reset(INITIALIZER)
        created = _module(INITIALIZER, "handler").lambda_handler({}, clock.restart(120_000))
        assert created["ok"] is True, json.dumps(created)[:800]
        _reset(INITIALIZER)
        admin = psycopg2.connect(url)
        admin.autocommit = True
        try:
            yield types.SimpleNamespace(url=url, admin=admin)
        finally:
            admin.close()


def query(connection, sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@pytest.fixture
def collector(makenaide_db, monkeypatch, clock):
    import responses

    query(
        makenaide_db.admin,
        "INSERT INTO tickers (ticker, is_active) VALUES (%s, true), (%s, true),"
        " (%s, true), ('KRW-OLD', false) RETURNING ticker",
        ACTIVE,
    )
    _reset(COLLECTOR)
    upbit = _module(COLLECTOR, "upbit")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield types.SimpleNamespace(
            db=makenaide_db,
            handler=_module(COLLECTOR, "handler"),
            steps=_module(COLLECTOR, "steps"),
            upbit=upbit,
            server=mk.CandleServer(mock, upbit.API_URL),
        )
    _reset(COLLECTOR)


def row_counts(connection) -> dict:
    daily = dict(query(connection, "SELECT ticker, count(*) FROM ohlcv GROUP BY ticker"))
    four_hour = dict(query(connection, "SELECT ticker, count(*) FROM ohlcv_4h GROUP BY ticker"))
    return {"daily": daily, "four_hour": four_hour}


def full(tickers=ACTIVE) -> dict:
    return {"daily": dict.fromkeys(tickers, DAILY_FULL), "four_hour": dict.fromkeys(tickers, FOUR_HOUR)}


def assert_no_duplicate(connection) -> None:
    for table in ("ohlcv", "ohlcv_4h"):
        ((rows, distinct),) = query(
            connection, f"SELECT count(*), count(DISTINCT (ticker, date)) FROM {table}"
        )
        assert rows == distinct, f"{table}: {rows} rows, {distinct} distinct (ticker, date)"


def collected(result: dict) -> dict:
    return next(s for s in result["steps"] if s["name"] == "collect")["result"]


def assert_every_ticker_accounted_for(result: dict, requested) -> None:
    """Each requested ticker is collected, failed or deferred, exactly once: none is lost silently."""
    found = collected(result)
    names = (
        [item["ticker"] for item in found["tickers"]]
        + [item["ticker"] for item in found["failed"]]
        + list(found["deferred"])
    )
    assert sorted(names) == sorted(requested), json.dumps(found)[:1500]


def run_collector(c, clock: VirtualClock, event=None, remaining_ms: int = 600_000, fails=False) -> dict:
    """The collector's result; ``fails``: the run must fail the invocation (PipelineFailed)."""
    event = {} if event is None else event
    if fails:
        result, _ = failed_run(c.handler, event, clock.restart(remaining_ms))
    else:
        result = c.handler.lambda_handler(event, clock.restart(remaining_ms))
    json.dumps(result)
    clock.assert_no_wait_outlived_the_deadline()
    return result


@pytest.mark.parametrize("mode", ["transient", "persistent"])
@pytest.mark.parametrize("kind", mk.FAULTS)
def test_upbit_faults_are_retried_within_bounds_and_no_ticker_is_lost(kind, mode, collector, clock):
    c = collector
    attempts = c.upbit.MAX_ATTEMPTS
    c.server.plan.fail("KRW-ETH", kind, times=attempts - 1 if mode == "transient" else None)

    result = run_collector(c, clock)

    backoffs = sorted(seconds for kind_, seconds, _ in clock.waits if kind_ == "sleep" and seconds >= 0.5)
    if kind == "429":  # Upbit's answer says when to come back: Retry-After wins over the backoff
        assert backoffs == [1.0] * (attempts - 1), clock.waits
    else:
        assert backoffs == [c.upbit.BACKOFF_BASE_S * 2**n for n in range(attempts - 1)], clock.waits
    assert_every_ticker_accounted_for(result, ACTIVE)
    assert result["ok"] is True, json.dumps(result)[:1500]
    failures = c.server.calls("KRW-ETH", outcome=kind)
    if mode == "transient":
        assert failures == attempts - 1
        assert c.server.calls("KRW-ETH", "/days") == attempts - 1 + 3  # then the 3 pages of a full load
        assert collected(result)["failed"] == []
        assert row_counts(c.db.admin) == full()
    else:
        assert failures == c.server.calls("KRW-ETH") == attempts  # the first page, MAX_ATTEMPTS times
        assert c.server.calls("KRW-ETH", "/240") == 0
        (failed,) = collected(result)["failed"]
        assert failed["ticker"] == "KRW-ETH"
        assert failed["reason"].startswith("UpbitError: GET /candles/days: ")
        assert failed["reason"].endswith(f" after {attempts} attempts")
        assert row_counts(c.db.admin) == full(("KRW-BTC", "KRW-XRP"))
        c.server.plan.clear()
        again = run_collector(c, clock)
        assert collected(again)["tickers"][0]["ticker"] == "KRW-ETH"  # stalest first
        assert row_counts(c.db.admin) == full()
    assert_no_duplicate(c.db.admin)


@pytest.mark.parametrize("kind", ["500", "connect-timeout"])
def test_every_ticker_failing_fails_the_run_and_lists_each_ticker(kind, collector, clock):
    c = collector
    for ticker in ACTIVE:
        c.server.plan.fail(ticker, kind)

    result = run_collector(c, clock, fails=True)

    assert_every_ticker_accounted_for(result, ACTIVE)
    check = next(s for s in result["steps"] if s["name"] == "check_progress")
    assert check["status"] == "failed" and "all 3 tickers failed" in check["error"]
    assert all(c.server.calls(ticker) == c.upbit.MAX_ATTEMPTS for ticker in ACTIVE)
    assert row_counts(c.db.admin) == {"daily": {}, "four_hour": {}}


def test_no_wait_outlives_the_deadline_when_upbit_fails_every_request(collector, clock, monkeypatch):
    """Backoffs of 8, 16 and 20 s against 40 s left: Deadline.sleep refuses the one that would outlive it."""
    c = collector
    monkeypatch.setattr(c.upbit, "BACKOFF_BASE_S", 8.0)
    monkeypatch.setattr(c.upbit, "BACKOFF_MAX_S", 20.0)
    for ticker in ACTIVE:
        c.server.plan.fail(ticker, "500")

    result = run_collector(c, clock, remaining_ms=40_000)

    assert_every_ticker_accounted_for(result, ACTIVE)
    found = collected(result)
    assert found["deferred"], json.dumps(found)[:800]
    assert c.server.calls("KRW-BTC") <= c.upbit.MAX_ATTEMPTS
    assert clock.slept() >= 8
    assert row_counts(c.db.admin) == {"daily": {}, "four_hour": {}}


def test_every_upbit_request_of_the_collector_has_a_timeout(collector, clock):
    run_collector(collector, clock, event={"tickers": ["KRW-BTC"]})
    assert collector.server.requests
    assert all(q["timeout"] is not None for q in collector.server.requests), collector.server.requests[0]


# PostgreSQL: the function's session killed from another session


def _terminate(url: str, pid: int | None = None) -> list[int]:
    """pg_terminate_backend on ``pid``, or on every session of the collector; waits until they are gone."""
    import psycopg2

    admin = psycopg2.connect(url)
    admin.autocommit = True
    try:
        if pid is not None:
            sql, params = "SELECT %s::int WHERE pg_terminate_backend(%s, 5000)", (pid, pid)
        else:
            # pids first (a materialized CTE): PostgreSQL may evaluate WHERE conditions in any order
            sql = (
                "WITH victims AS MATERIALIZED (SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s AND pid <> pg_backend_pid())"
                " SELECT pid FROM victims WHERE pg_terminate_backend(pid, 5000)"
            )
            params = (mk.COLLECTOR_APPLICATION,)
        return [row[0] for row in query(admin, sql, params)]
    finally:
        admin.close()


class PageKiller:
    """The collector's cursor, except that the session is killed before page ``after + 1`` of a batch."""

    def __init__(self, cursor, after: int, kill) -> None:
        self._cursor, self._after, self._kill, self.pages = cursor, after, kill, 0

    def __getattr__(self, name):
        return getattr(self._cursor, name)

    def execute(self, sql, *args):
        if self.pages == self._after:
            self._kill()
        self.pages += 1
        return self._cursor.execute(sql, *args)


def _kill_inside_transactions(monkeypatch, c, ticker: str, where: str, times: int) -> list[int]:
    """Kill the session while ``ticker``'s write transaction is open, ``times`` times (one per attempt)."""
    import psycopg2.extras

    real = psycopg2.extras.execute_values
    killed: list[int] = []
    monkeypatch.setattr(c.steps, "PAGE_SIZE", 100)  # 450 daily rows: 5 pages

    def kill(cursor) -> None:
        killed.extend(_terminate(c.db.url, cursor.connection.get_backend_pid()))

    def execute_values(cursor, sql, rows, *args, **kwargs):
        if not rows or rows[0][0] != ticker or len(killed) >= times:
            return real(cursor, sql, rows, *args, **kwargs)
        daily = sql.startswith("INSERT INTO ohlcv ")
        if where == "between-batches" and not daily:  # the daily batch is in, the 4-hour one not yet
            kill(cursor)
        elif where == "mid-batch" and daily:  # 2 of the 5 daily pages are in
            return real(PageKiller(cursor, 2, lambda: kill(cursor)), sql, rows, *args, **kwargs)
        return real(cursor, sql, rows, *args, **kwargs)

    monkeypatch.setattr(psycopg2.extras, "execute_values", execute_values)
    return killed


@pytest.mark.parametrize("times", [1, 2], ids=["killed-once", "killed-twice"])
@pytest.mark.parametrize("where", ["between-batches", "mid-batch"])
def test_a_session_killed_inside_a_transaction_rolls_back_and_a_rerun_completes(
    where, times, collector, clock, monkeypatch
):
    c = collector
    killed = _kill_inside_transactions(monkeypatch, c, "KRW-ETH", where, times)

    result = run_collector(c, clock)

    assert len(killed) == times, killed
    assert_every_ticker_accounted_for(result, ACTIVE)
    if times == 1:  # the transaction was run again on a new connection
        assert result["ok"] is True and collected(result)["failed"] == [], json.dumps(result)[:1500]
        assert row_counts(c.db.admin) == full()
    else:  # both attempts lost: the ticker fails, and its rows written before the kill are gone
        failed = collected(result)["failed"]
        assert [item["ticker"] for item in failed] == ["KRW-ETH"]
        assert failed[0]["reason"].split(":")[0] in ("OperationalError", "InterfaceError"), failed
        assert row_counts(c.db.admin) == full(("KRW-BTC", "KRW-XRP"))
    assert_no_duplicate(c.db.admin)

    again = run_collector(c, clock)

    assert again["ok"] is True, json.dumps(again)[:1500]
    assert row_counts(c.db.admin) == full()
    assert_no_duplicate(c.db.admin)


def test_a_session_killed_while_it_idles_between_transactions_is_reopened(collector, clock):
    """Killed while Upbit answers KRW-ETH's candles: the next transaction reconnects and is retried."""
    c = collector
    killed: list[int] = []

    def kill_once(request_query) -> None:
        if request_query["market"] == "KRW-ETH" and not killed:
            killed.extend(_terminate(c.db.url))

    c.server.before_answer = kill_once

    result = run_collector(c, clock)

    assert len(killed) == 1, killed
    assert result["ok"] is True and collected(result)["failed"] == [], json.dumps(result)[:1500]
    assert row_counts(c.db.admin) == full()
    run_collector(c, clock)
    assert row_counts(c.db.admin) == full()
    assert_no_duplicate(c.db.admin)


# Upbit, scanner: the market list


@pytest.fixture
def scanner(makenaide_db, clock):
    import responses

    _reset(SCANNER)
    upbit = _module(SCANNER, "upbit")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield types.SimpleNamespace(
            db=makenaide_db,
            handler=_module(SCANNER, "handler"),
            upbit=upbit,
            server=mk.MarketServer(mock, upbit.API_URL),
        )
    _reset(SCANNER)


@pytest.mark.parametrize("mode", ["transient", "persistent"])
@pytest.mark.parametrize("kind", mk.FAULTS)
def test_scanner_upbit_faults_are_retried_within_bounds(kind, mode, scanner, clock):
    s = scanner
    attempts = s.upbit.MAX_ATTEMPTS
    s.server.plan.fail("markets", kind, times=attempts - 1 if mode == "transient" else None)

    if mode == "transient":
        result = s.handler.lambda_handler({}, clock.restart(120_000))
    else:
        result, message = failed_run(s.handler, {}, clock.restart(120_000))
        assert "critical step fetch_markets failed: UpbitError: GET /market/all: " in message, message

    clock.assert_no_wait_outlived_the_deadline()
    assert all(q["timeout"] is not None for q in s.server.requests)
    active = [row[0] for row in query(s.db.admin, "SELECT ticker FROM tickers WHERE is_active ORDER BY 1")]
    steps = {step["name"]: step for step in result["steps"]}
    if mode == "transient":
        assert len(s.server.requests) == attempts
        assert result["ok"] is True, json.dumps(result)[:1500]
        assert active == [code for code in s.server.krw if code not in ("KRW-BTC", "KRW-ETH")]
        return
    assert len(s.server.requests) == attempts
    assert steps["fetch_markets"]["error"].startswith("UpbitError: GET /market/all: "), steps["fetch_markets"]
    assert f"after {attempts} attempts" in steps["fetch_markets"]["error"]
    assert steps["sync_tickers"]["status"] == "skipped"
    assert active == []  # nothing written
    assert query(s.db.admin, "SELECT count(*) FROM scanner_state") == [(0,)]  # so the next run scans
    s.server.plan.clear()
    _reset(SCANNER)
    again = s.handler.lambda_handler({}, clock.restart(120_000))
    assert again["ok"] is True, json.dumps(again)[:1500]
    assert len(s.server.requests) == attempts + 1
