"""Billed Lambda time of the Makenaide orchestrator per trading run, ours against the original.

    .venv/bin/python benchmarks/orchestrator_billing.py [--runs 6]

Walks ``--runs`` 4-hourly runs of examples/makenaide-integrated-orchestrator against moto
(in process, behind the real boto3 clients), with the events a run really produces: the
schedule tick (starts RDS), the RDS "started" event (starts the instance), the EC2 "running"
event (launches the app), the EC2 "stopped" event (stops RDS), the RDS "stopped" event
(records the stop). Each invocation is timed around ``lambda_handler`` and rounded up to the
millisecond, as Lambda bills. Two bounds: *warm* (one container for the whole day) and
*cold* (a new container for every invocation: fresh clients, plus the handler's measured
init, which Lambda bills too). moto answers in-process, so its own work is inside the timings:
an upper bound for the API calls. Printed as a Markdown table (examples/README.md quotes it).

The original did the whole run in one invocation of about 664 s at 512 MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from leanlambda.limits import (
    MB_PER_GB,
    MILLION,
    PRICE_PER_GB_SECOND_USD,
    PRICE_PER_MILLION_REQUESTS_USD,
    billed_ms,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "makenaide-integrated-orchestrator"
SRC = EXAMPLE / "src"
MEMORY_MB = 128
ORIGINAL_SECONDS, ORIGINAL_MEMORY_MB = 664, 512
PRICE_PER_GB_S = PRICE_PER_GB_SECOND_USD["x86_64"]
PRICE_PER_REQUEST = PRICE_PER_MILLION_REQUESTS_USD / MILLION
RUNS_PER_MONTH = 6 * 30
INIT_SAMPLES = 5
DB_ID = "makenaide-db"


class Context:
    function_name = "makenaide-integrated-orchestrator"
    memory_limit_in_mb = MEMORY_MB

    def __init__(self) -> None:
        self._deadline = time.monotonic() + 60

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def measure_init_ms() -> float:
    """Median init of the handler module in a fresh interpreter (what a cold start runs)."""
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter();"
        "import makenaide_integrated_orchestrator.handler; print((time.perf_counter() - t) * 1000)"
    )
    samples = []
    for _ in range(INIT_SAMPLES):
        command = [sys.executable, "-c", code, str(SRC)]
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        samples.append(float(out.stdout))
    return statistics.median(samples)


def walk(runs: int, cold: bool) -> list[list[float]]:
    """Durations (ms) of every invocation, per run."""
    import boto3
    from moto import mock_aws

    sys.path.insert(0, str(SRC))
    from makenaide_integrated_orchestrator import handler, steps

    clock = {"now": datetime.now(UTC).replace(microsecond=0)}
    start = clock["now"]
    steps.utcnow = lambda: clock["now"]
    durations: list[list[float]] = []
    with mock_aws():
        ec2, rds = boto3.client("ec2"), boto3.client("rds")
        secret = boto3.client("secretsmanager").create_secret(Name="makenaide/db", SecretString="{}")["ARN"]
        launched = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)
        instance_id = launched["Instances"][0]["InstanceId"]
        ec2.stop_instances(InstanceIds=[instance_id])
        rds.create_db_instance(
            DBInstanceIdentifier="makenaide-db",
            Engine="postgres",
            DBInstanceClass="db.t3.micro",
            MasterUsername="makenaide",
            MasterUserPassword="not-a-real-one",
            AllocatedStorage=20,
        )
        rds.stop_db_instance(DBInstanceIdentifier="makenaide-db")
        os.environ.update(
            INSTANCE_ID=instance_id,
            DB_INSTANCE_IDENTIFIER="makenaide-db",
            DB_SECRET_ARN=secret,
            APP_COMMAND="python3 makenaide.py",
            EC2_HOURLY_PRICE_USD="0.052",
            RDS_HOURLY_PRICE_USD="0.026",
            MAX_RUN_MINUTES="180",
        )
        ec2_event = {"source": "aws.ec2", "detail-type": "EC2 Instance State-change Notification"}
        rds_event = {"source": "aws.rds", "detail-type": "RDS DB Instance Event"}
        handler.reset()
        handler.lambda_handler({}, Context())  # warm the interpreter's imports (cold adds init separately)
        for run in range(runs):
            base = start + timedelta(hours=4 * run)
            script = [
                (0, {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
                (6, {**rds_event, "detail": {"SourceIdentifier": DB_ID, "EventID": "RDS-EVENT-0088"}}),
                (7, {**ec2_event, "detail": {"instance-id": instance_id, "state": "running"}}),
                (45, {**ec2_event, "detail": {"instance-id": instance_id, "state": "stopped"}}),
                (52, {**rds_event, "detail": {"SourceIdentifier": DB_ID, "EventID": "RDS-EVENT-0089"}}),
            ]
            timings = []
            for minute, event in script:
                clock["now"] = base + timedelta(minutes=minute)
                if minute == 45:
                    ec2.stop_instances(InstanceIds=[instance_id])  # the app's instance shuts itself down
                if cold:
                    handler.reset()
                began = time.perf_counter()
                result = handler.lambda_handler(event, Context())
                timings.append((time.perf_counter() - began) * 1000)
                if not result.get("ok"):
                    raise SystemExit(f"run {run + 1}, minute {minute}: {result}")
            durations.append(timings)
        if rds.describe_db_instances()["DBInstances"][0]["DBInstanceStatus"] != "stopped":
            raise SystemExit("RDS left running")
    sys.stdout.flush()
    return durations


def table(runs: int) -> str:
    import io
    from contextlib import redirect_stdout

    init_ms = measure_init_ms()
    rows = []
    for label, cold in (("ours, warm container", False), ("ours, cold every invocation", True)):
        with redirect_stdout(io.StringIO()):  # the EMF lines
            durations = walk(runs, cold)
        billed = [sum(billed_ms(ms + (init_ms if cold else 0)) for ms in run) for run in durations]
        per_run = statistics.median(billed)
        invocations = len(durations[0])
        gb_s = per_run / 1000 * MEMORY_MB / MB_PER_GB
        rows.append((label, invocations, per_run, MEMORY_MB, gb_s, invocations))
    original_gb_s = ORIGINAL_SECONDS * ORIGINAL_MEMORY_MB / MB_PER_GB
    rows.append(
        (
            "original (one invocation sleeping)",
            1,
            ORIGINAL_SECONDS * 1000,
            ORIGINAL_MEMORY_MB,
            original_gb_s,
            1,
        )
    )
    lines = [
        f"Median over {runs} runs; handler init {init_ms:.1f} ms "
        f"(median of {INIT_SAMPLES} fresh interpreters).",
        "",
        "| design | invocations per run | billed ms per run | memory | GB-s per run "
        "| USD per month (180 runs) | vs original |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, invocations, ms, memory, gb_s, requests in rows:
        usd = (gb_s * PRICE_PER_GB_S + requests * PRICE_PER_REQUEST) * RUNS_PER_MONTH
        lines.append(
            f"| {label} | {invocations} | {ms:,.0f} | {memory} MB | {gb_s:.4f} | {usd:.4f} "
            f"| {original_gb_s / gb_s:,.0f}x less |"
            if gb_s != original_gb_s
            else f"| {label} | {invocations} | {ms:,.0f} | {memory} MB | {gb_s:.1f} | {usd:.4f} | 1x |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6, help="4-hourly runs to walk (default: a day)")
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="ap-northeast-2",
        AWS_REGION="ap-northeast-2",
    )
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(name, None)
    sys.stdout.write(table(args.runs) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
