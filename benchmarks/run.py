"""Side-by-side benchmarks of lean functions against their eager twins, Powertools and the bare interpreter.

    python -m benchmarks.run [--markdown docs/benchmarks.md] [--runs N] [--quick] [--skip-layer]

One run measures everything in fresh processes, interleaved (see benchmarks.harness), against one moto
server on a free loopback port, one loopback Upbit replay server (benchmarks.upbit_replay) and, for the
examples that use PostgreSQL, one throwaway PostgreSQL server.
The document it writes states the machine, the command, the method and every figure's median, min and max.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from benchmarks import sam_artifact
from benchmarks.eager import make_eager, services_of
from benchmarks.harness import LAMBDA_PRELOADED, Samples, Variant, measure, stat
from benchmarks.upbit_replay import UpbitReplay

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "examples"
POWERTOOLS_DIR = BENCH_DIR / "powertools_variant"
LAYER_SCRIPT = BENCH_DIR / "layer_sizes.py"

RUNS = 20
"""Fresh processes per variant (the median of these is reported, with min and max)."""
QUICK_RUNS = 3
"""--quick: enough to see the shape in under a minute, not to quote."""
METRIC_COUNTS = (1, 100, 1000, 5000)
COLD_START_SHARE = 0.01
"""Share of invocations assumed to be cold starts in the cost estimate."""
PUT_METRIC_DATA_USD_PER_1000 = 0.01  # Amazon CloudWatch pricing: PutMetricData requests
PUT_METRIC_DATA_MAX_METRICS = 1000
LAMBDA_MB_PER_VCPU = 1769
"""Lambda allocates CPU in proportion to memory: 1769 MB is one full vCPU."""
INIT_FULL_CPU_S = 10
SCALED_MEMORY_MB = (128, 256, 512, 1024)
DESIGN_CLIENT_MS = {128: 640, 1024: 74}  # DESIGN section 7: prewarmed vs lazy client, measured on Lambda
LAYER_TIMEOUT_S = 1800
BENCH_BUCKET = "leanlambda-bench"
PACKAGES = ("boto3", "botocore", "moto", "aws-lambda-powertools", "cookiecutter", "psycopg2-binary",
            "pyupbit")
TARGET_INIT_OVERHEAD_MS = 3.0
TARGET_EAGER_FACTOR = 20.0
TARGET_RSS_FACTOR = 1.3
MIB = 1024

try:  # the toolkit's own prices when present
    from leanlambda.pricing import PRICE_PER_GB_SECOND_USD, PRICE_PER_MILLION_REQUESTS_USD
except ImportError:  # AWS Lambda pricing, us-east-1, first tier
    PRICE_PER_GB_SECOND_USD = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
    PRICE_PER_MILLION_REQUESTS_USD = 0.20


# ----------------------------------------------------------------------------------------------- setup
@dataclass
class Function:
    """A function folder measured: a bake or an example."""

    key: str
    label: str
    root: Path
    answers: dict
    staged_src: Path
    eager_src: Path | None = None
    eager_info: object = None
    cold_path: bool = True
    why_not_cold: str = ""
    env: dict[str, str] = field(default_factory=dict)
    prepare: object = None
    event: Path | None = None  # None: the function's events/event.json

    @property
    def module(self) -> str:
        return f"{self.answers['__module_name']}.handler"

    @property
    def memory_mb(self) -> int:
        return int(self.answers.get("memory_size") or 128)

    @property
    def architecture(self) -> str:
        return str(self.answers.get("architecture") or "x86_64")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bake(out: Path, **answers: str) -> Path:
    from cookiecutter.main import cookiecutter

    out.mkdir(parents=True, exist_ok=True)
    return Path(cookiecutter(str(ROOT), no_input=True, extra_context=answers, output_dir=str(out)))


def stage(src: Path, dest: Path) -> Path:
    """What ships (leanlambda's staging: no tests, caches or bytecode), where the child can't write."""
    from leanlambda.packaging import stage_source

    if dest.exists():
        shutil.rmtree(dest)
    return stage_source(src, dest)


def package_bytes(src: Path, work: Path) -> int:
    """The deterministic zip `leanlambda package` builds from this source (src/ alone)."""
    from leanlambda.ziputil import write_deterministic_zip

    staged = stage(src, work / f"pkg-{time.monotonic_ns()}")
    size, _ = write_deterministic_zip(staged, work / f"{staged.name}.zip", include_dirs=False)  # as `package`
    return size


def with_bytecode(src: Path, dest: Path) -> Path:
    """A copy of the staged source with __pycache__ compiled by this interpreter (what shipping .pyc for
    the runtime's Python would give: no compile at cold start)."""
    import compileall

    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    if not compileall.compile_dir(str(dest), quiet=1):
        raise RuntimeError(f"cannot compile {dest}")
    return dest


def zip_bytes(tree: Path, work: Path) -> int:
    """Bytes of a deterministic deflate zip of ``tree`` exactly as it is, bytecode included."""
    import zipfile

    out = work / f"tree-{time.monotonic_ns()}.zip"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in tree.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(tree)), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return out.stat().st_size


def discover_examples() -> list[Path]:
    if not EXAMPLES_DIR.is_dir():
        return []
    return sorted(
        path for path in EXAMPLES_DIR.iterdir()
        if (path / ".cookiecutter.json").is_file() and (path / "src").is_dir()
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Moto:
    """One moto server for the run, on a free loopback port."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def __enter__(self) -> Moto:
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log per request
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def client(self, service: str, region: str):
        import boto3

        return boto3.client(service, region_name=region, endpoint_url=self.url, aws_access_key_id="testing",
                            aws_secret_access_key="testing")


def aws_env(moto: Moto, region: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": moto.url, "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
            "DATA_BUCKET": BENCH_BUCKET}


def ensure_bucket(moto: Moto, region: str) -> None:
    s3 = moto.client("s3", region)
    names = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    if BENCH_BUCKET not in names:
        location = {"LocationConstraint": region}
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": location}
        s3.create_bucket(Bucket=BENCH_BUCKET, **kwargs)


class Postgres:
    """One throwaway PostgreSQL server for the run (tests/support/postgres.py), started on first use."""

    def __init__(self) -> None:
        self._session = None
        self.error = ""

    def database(self, name: str) -> str | None:
        if self.error:
            return None
        try:
            if self._session is None:
                sys.path.insert(0, str(ROOT))
                from tests.support.postgres import SessionPostgres

                self._session = SessionPostgres()
            return self._session.database(name)
        except Exception as error:  # no initdb on this machine, no permission, ...
            self.error = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            return None

    def stop(self) -> None:
        if self._session is not None:
            self._session.stop()


def db_secret_env(moto: Moto, url: str, function: Function) -> dict[str, str]:
    """As the examples' conftest `db_secret` fixture: the database's credentials in a moto secret."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    secret = {"username": parts.username, "password": parts.password or "", "host": parts.hostname,
              "port": parts.port or 5432, "dbname": parts.path.lstrip("/") or "postgres"}
    region = function.answers.get("region") or "ap-northeast-2"
    client = moto.client("secretsmanager", region)
    name = f"{function.answers['function_name']}/bench-db-{time.monotonic_ns()}"
    arn = client.create_secret(Name=name, SecretString=json.dumps(secret))["ARN"]
    return {"DB_SECRET_ARN": arn}


ORCHESTRATOR_DB_ID = "makenaide-bench-db"


class OrchestratorWorld:
    """What makenaide-integrated-orchestrator manages, in moto (as its tests build it): one EC2 instance,
    one RDS instance, one secret. ``reset()`` stops both before each sample, so every cold path takes the
    same step (start RDS) instead of whatever the previous sample left to do."""

    def __init__(self, moto: Moto, region: str) -> None:
        self.ec2 = moto.client("ec2", region)
        self.rds = moto.client("rds", region)
        secret = json.dumps({"username": "makenaide", "password": "bench-only"})
        secrets = moto.client("secretsmanager", region)
        arn = secrets.create_secret(Name=f"makenaide/bench-{time.monotonic_ns()}", SecretString=secret)["ARN"]
        image = self.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instance = self.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.medium")
        self.instance_id = instance["Instances"][0]["InstanceId"]
        self.rds.create_db_instance(
            DBInstanceIdentifier=ORCHESTRATOR_DB_ID, Engine="postgres", DBInstanceClass="db.t3.micro",
            MasterUsername="makenaide", MasterUserPassword="bench-only-password",  # moto only
            AllocatedStorage=20)
        self.env = {"INSTANCE_ID": self.instance_id, "DB_INSTANCE_IDENTIFIER": ORCHESTRATOR_DB_ID,
                    "DB_SECRET_ARN": arn, "APP_COMMAND": "/opt/makenaide/run.sh",
                    "EC2_HOURLY_PRICE_USD": "0.0416", "RDS_HOURLY_PRICE_USD": "0.018",
                    "MAX_RUN_MINUTES": "30"}
        self.reset()

    def reset(self) -> None:
        state = self.ec2.describe_instances(InstanceIds=[self.instance_id])
        if state["Reservations"][0]["Instances"][0]["State"]["Name"] != "stopped":
            self.ec2.stop_instances(InstanceIds=[self.instance_id])
        db = self.rds.describe_db_instances(DBInstanceIdentifier=ORCHESTRATOR_DB_ID)["DBInstances"][0]
        if db["DBInstanceStatus"] != "stopped":
            self.rds.stop_db_instance(DBInstanceIdentifier=ORCHESTRATOR_DB_ID)


UPBIT_URL_ENV = "LEANLAMBDA_BENCH_UPBIT_URL"
"""Read by benchmarks/_child.py: where `<package>.upbit.API_URL` points after init (the replay server)."""
SCHEMA_OWNER_SRC = EXAMPLES_DIR / "makenaide-db-initializer" / "src"
COLLECTOR_TICKERS = (("KRW-BTC", True), ("KRW-ETH", True), ("KRW-XRP", True), ("KRW-OLD", False))
"""As the data collector's tests seed `tickers`: three active tickers, one inactive (not collected)."""
SAMPLE_RESET_SQL = {
    "makenaide-scanner": ("DROP TABLE IF EXISTS scanner_state", "TRUNCATE tickers"),
    "makenaide-data-collector": ("TRUNCATE ohlcv, ohlcv_4h, tickers",),
}
"""Run before each sample: the scanner finds no tickers and no previous scan, the collector no candles."""
BENCH_EVENTS = {
    "makenaide-scanner": (
        "events/force.json",
        "with events/event.json the warm invocation, 0 h after the first scan, would skip the scan as "
        "fresh; the schedule runs it once a day, when the last scan is always due, so both invocations "
        "scan"),
}
"""An example event used instead of events/event.json, and why."""


class MakenaideTables:
    """A Makenaide example's PostgreSQL database: the db initializer's schema, applied once, and
    ``reset()`` before each sample (SAMPLE_RESET_SQL), so that every sample does the same work."""

    def __init__(self, url: str, function_name: str) -> None:
        self.url = url
        self.statements = SAMPLE_RESET_SQL.get(function_name, ())
        self.seed = COLLECTOR_TICKERS if function_name == "makenaide-data-collector" else ()
        if str(SCHEMA_OWNER_SRC) not in sys.path:
            sys.path.insert(0, str(SCHEMA_OWNER_SRC))
        from makenaide_db_initializer.steps import apply_schema_in

        self._transaction(apply_schema_in)
        self.reset()

    def _transaction(self, work) -> None:
        import psycopg2

        connection = psycopg2.connect(self.url)
        try:
            with connection, connection.cursor() as cursor:
                work(cursor)
        finally:
            connection.close()

    def reset(self) -> None:
        def run(cursor) -> None:
            for statement in self.statements:
                cursor.execute(statement)
            for ticker, active in self.seed:
                cursor.execute("INSERT INTO tickers (ticker, is_active) VALUES (%s, %s)", (ticker, active))

        self._transaction(run)


def write_floor(work: Path) -> Path:
    """The floor: an empty module with a no-op handler, run by the same child (`python -c pass`)."""
    floor = work / "floor"
    floor.mkdir(parents=True, exist_ok=True)
    (floor / "bench_floor.py").write_text(
        '"""The floor: nothing to import, nothing to do."""\n\n\ndef lambda_handler(event, context):\n'
        '    return {"ok": True}\n', encoding="utf-8")
    return floor


def write_client_probe(work: Path) -> Path:
    """A module timing AWSClientFactory.get per service, in a fresh process (the first pays boto3)."""
    probe = work / "probe"
    probe.mkdir(parents=True, exist_ok=True)
    (probe / "bench_client_probe.py").write_text(
        "import importlib\nimport os\nimport time\n\n\n"
        "def lambda_handler(event, context):\n"
        "    clients = importlib.import_module(event['package'] + '.clients')\n"
        "    factory = clients.AWSClientFactory()\n"
        "    out = {}\n"
        "    for service in event['services']:\n"
        "        wall, cpu = time.perf_counter(), time.process_time()\n"
        "        factory.get(service)\n"
        "        out[service] = {'cpu_ms': (time.process_time() - cpu) * 1000,\n"
        "                        'wall_ms': (time.perf_counter() - wall) * 1000}\n"
        "    return out\n", encoding="utf-8")
    return probe


# ----------------------------------------------------------------------------------------------- metrics
def load_metrics_module(src: Path, name: str):
    """A bake's generated metrics.py, loaded from its file under a name of its own."""
    import importlib.util

    path = next(src.glob("*/metrics.py"))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def count_metric_calls(backend_srcs: dict[str, Path], moto: Moto, region: str) -> list[dict]:
    """API calls and EMF lines per flush of n metrics, for each backend, with the bake generated for it.

    ``backend_srcs``: {"emf": src of a bake with metrics_backend=emf, "put_metric_data": ...}. The template
    leaves the unselected backend out of a bake, so each backend is measured with its own bake's module.
    """
    import io

    client = moto.client("cloudwatch", region)
    calls = {"n": 0}

    def count(**_: object) -> None:
        calls["n"] += 1

    client.meta.events.register("provide-client-params.cloudwatch.PutMetricData", count)
    modules = {backend: load_metrics_module(src, f"bench_metrics_{backend}")
               for backend, src in backend_srcs.items()}
    rows = []
    for n in METRIC_COUNTS:
        for backend_name, metrics in modules.items():
            stream = io.StringIO()
            emf = metrics.EmfBackend(stream=stream)
            backend = emf if backend_name == "emf" else metrics.PutMetricDataBackend(lambda: client, emf)
            collector = metrics.MetricsCollector("LeanLambda/bench", backend, {"FunctionName": "bench"})
            for index in range(n):
                collector.add(f"Metric{index}", index, "Count")
            calls["n"] = 0
            started = time.perf_counter()
            collector.flush()
            elapsed = (time.perf_counter() - started) * 1000
            lines = [line for line in stream.getvalue().splitlines() if line.strip()]
            rows.append({"n": n, "backend": backend_name, "calls": calls["n"], "emf_lines": len(lines),
                         "emf_bytes": sum(len(line) + 1 for line in lines), "flush_ms": elapsed})
    return rows


# ----------------------------------------------------------------------------------------------- cost
def cost_per_million(cold_ms: float, warm_ms: float, memory_mb: int, architecture: str,
                     metric_calls_per_invocation: float) -> float:
    price = PRICE_PER_GB_SECOND_USD.get(architecture, PRICE_PER_GB_SECOND_USD["x86_64"])
    gb = memory_mb / 1024
    cold = math.ceil(cold_ms) / 1000 * gb * price
    warm = math.ceil(warm_ms) / 1000 * gb * price
    duration = (COLD_START_SHARE * cold + (1 - COLD_START_SHARE) * warm) * 1_000_000
    metrics = metric_calls_per_invocation * 1_000_000 * PUT_METRIC_DATA_USD_PER_1000 / 1000
    return duration + PRICE_PER_MILLION_REQUESTS_USD + metrics


# ----------------------------------------------------------------------------------------------- layer
def run_layer_bench(work: Path) -> tuple[str, str]:
    """(markdown, note): the layer table from benchmarks/layer_sizes.py, or why there is none."""
    if not LAYER_SCRIPT.is_file():
        return "", "benchmarks/layer_sizes.py is missing: no layer figures in this run."
    out = work / "layer.md"
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, str(LAYER_SCRIPT), "--markdown", str(out)], cwd=ROOT,
                              capture_output=True, text=True, timeout=LAYER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return "", f"benchmarks/layer_sizes.py did not finish within {LAYER_TIMEOUT_S} s: no layer figures."
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return "", f"benchmarks/layer_sizes.py failed (exit {proc.returncode}): `{tail[0][:300]}`"
    took = time.monotonic() - started
    return out.read_text(encoding="utf-8"), f"From `benchmarks/layer_sizes.py` (took {took:.0f} s)."


# ----------------------------------------------------------------------------------------------- report
def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"cpu": model, "cores": str(os.cpu_count()), "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions,
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_over_floor(value: float | None, digits: int = 2) -> str:
    """A difference of two medians; below zero it only says the two are within each other's noise."""
    if value is None or value >= 0:
        return fmt(value, digits)
    return f"{0:.{digits}f} (medians differ by {value:.{digits}f}: within the floor's noise)"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b <= 0:
        return "n/a"
    return f"{a / b:.2f}x"


def mib(value: float | None) -> float | None:
    return None if value is None else value / MIB


class Report:
    def __init__(self, samples: dict[str, Samples], rows: list[str]) -> None:
        self.samples = samples
        self.rows = rows

    def s(self, key: str) -> Samples:
        return self.samples[key]

    def med(self, key: str, name: str) -> float | None:
        return self.samples[key].median(name) if key in self.samples else None

    def span(self, key: str, name: str, scale: float = 1.0, digits: int = 1) -> str:
        values = self.samples[key].values(name)
        if not values:
            return "n/a"
        st = stat([value / scale for value in values])
        return f"{st.median:.{digits}f} ({st.low:.{digits}f}-{st.high:.{digits}f})"

    def eager_for(self, key: str) -> str | None:
        """The eager variant a row compares with: same code loaded eagerly, same floor."""
        candidate = EAGER_TWIN.get(key, f"{key}_eager")
        return candidate if candidate in self.samples and candidate != key else None

    def paired_ratio(self, key: str, other: str, name: str) -> float | None:
        """Median of a/b over the rounds (both ran in every round): the round's drift cancels out."""
        if key not in self.samples or other not in self.samples:
            return None
        rounds = zip(self.s(key).runs, self.s(other).runs, strict=True)
        pairs = [(a.get(name), b.get(name)) for a, b in rounds]
        numbers = (int, float)
        ratios = [a / b for a, b in pairs if isinstance(a, numbers) and isinstance(b, numbers) and b]
        return statistics.median(ratios) if ratios else None

    def floor_for(self, key: str) -> str:
        return "floor_lambda" if self.s(key).variant.preload else "floor"

    def overhead(self, key: str, name: str = "init_ms") -> float | None:
        """Init of the handler module minus the floor's (same child, same preloads); wall or CPU."""
        if key not in self.samples:
            return None
        own, floor = self.med(key, name), self.med(self.floor_for(key), name)
        return None if own is None or floor is None else own - floor


def init_table(rep: Report) -> list[str]:
    out = [
        "| variant | init ms (import) | over its floor, ms | start to init done, ms "
        "| x floor (start to init) | x eager (init over floor) | init CPU ms | CPU over its floor, ms "
        "| peak RSS after init, MiB | x floor (RSS) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in rep.rows:
        v = rep.s(key).variant
        floor = rep.floor_for(key)
        eager_key = rep.eager_for(key)
        over = rep.overhead(key)
        eager_over = rep.overhead(eager_key) if eager_key else None
        out.append(
            f"| {v.label} | {rep.span(key, 'init_ms', digits=2)} | {fmt(over, 2)} "
            f"| {rep.span(key, 'startup_init_ms')} "
            f"| {ratio(rep.med(key, 'startup_init_ms'), rep.med(floor, 'startup_init_ms'))} "
            f"| {ratio(over, eager_over) if eager_key else '-'} | {rep.span(key, 'init_cpu_ms')} "
            f"| {fmt(rep.overhead(key, 'init_cpu_ms'), 2)} | {rep.span(key, 'rss_init_kib', MIB)} "
            f"| {ratio(rep.med(key, 'rss_init_kib'), rep.med(floor, 'rss_init_kib'))} |"
        )
    return out


def result_summary(result: object) -> str:
    if not isinstance(result, dict):
        return "no result"
    if "ok" in result:
        if result["ok"]:
            return "ok"
        failed = [step for step in result.get("steps", []) if step.get("status") == "failed"]
        error = result.get("error") or next(
            (f"{step.get('name')}: {step.get('error')}" for step in failed), "failed")
        return f"failed: {str(error)[:80]}".replace("|", "/")
    return "returned"


def cold_table(rep: Report) -> list[str]:
    out = [
        "| variant | cold path ms (init + 1st invocation) | cold CPU ms | 1st invocation ms "
        "| warm invocation ms "
        "| x eager (cold) | peak RSS after 1st invocation, MiB | x floor (RSS) | package bytes | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in rep.rows:
        v = rep.s(key).variant
        floor = rep.floor_for(key)
        if not v.invokes:
            out.append(f"| {v.label} | not measured: {v.note} | | | | | | | "
                       f"{v.package_bytes if v.package_bytes is not None else '-'} | |")
            continue
        eager_key = rep.eager_for(key)
        out.append(
            f"| {v.label} | {rep.span(key, 'cold_ms')} | {rep.span(key, 'cold_cpu_ms')} | "
            f"{rep.span(key, 'first_ms')} | {rep.span(key, 'warm_ms', digits=2)} "
            f"| {ratio(rep.med(key, 'cold_ms'), rep.med(eager_key, 'cold_ms')) if eager_key else '-'} "
            f"| {rep.span(key, 'rss_first_kib', MIB)} "
            f"| {ratio(rep.med(key, 'rss_first_kib'), rep.med(floor, 'rss_first_kib'))} "
            f"| {v.package_bytes if v.package_bytes is not None else '-'} "
            f"| {result_summary(rep.s(key).last_result)} |"
        )
    return out


def metric_calls_per_invocation(variant: Variant) -> int:
    return 1 if variant.metrics_backend == "put_metric_data" else 0


def cost_table(rep: Report) -> list[str]:
    out = [
        f"| variant | memory MB | arch | cold billed ms | warm billed ms | PutMetricData calls / invocation "
        f"| USD per million invocations ({COLD_START_SHARE:.0%} cold) | x eager |",
        "|---|---|---|---|---|---|---|---|",
    ]
    costs: dict[str, float] = {}
    for key in rep.rows:
        v = rep.s(key).variant
        if key.startswith("floor") or not v.invokes:
            continue
        cold, warm = rep.med(key, "cold_ms"), rep.med(key, "warm_ms")
        costs[key] = cost_per_million(cold, warm, v.memory_mb, v.architecture, metric_calls_per_invocation(v))
    for key, usd in costs.items():
        v = rep.s(key).variant
        eager_key = rep.eager_for(key)
        out.append(
            f"| {v.label} | {v.memory_mb} | {v.architecture} | {math.ceil(rep.med(key, 'cold_ms'))} "
            f"| {math.ceil(rep.med(key, 'warm_ms'))} | {metric_calls_per_invocation(v)} | {usd:.4f} "
            f"| {ratio(usd, costs.get(eager_key)) if eager_key in costs and eager_key != key else '-'} |"
        )
    return out


def metrics_table(rows: list[dict]) -> list[str]:
    out = ["| metrics per invocation | backend | API calls | allowed (ceil(n/1000); EMF 0) | EMF lines "
           "| EMF bytes | flush ms | PutMetricData USD per million invocations | target |",
           "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        allowed = 0 if row["backend"] == "emf" else math.ceil(row["n"] / PUT_METRIC_DATA_MAX_METRICS)
        usd = row["calls"] * 1_000_000 * PUT_METRIC_DATA_USD_PER_1000 / 1000
        lines = row["emf_lines"] if row["backend"] == "emf" else f"{row['emf_lines']} (fallback)"
        out.append(f"| {row['n']} | {row['backend']} | {row['calls']} | {allowed} | {lines} | "
                   f"{row['emf_bytes']} | {row['flush_ms']:.1f} | {usd:.2f} | "
                   f"{'PASS' if row['calls'] <= allowed else 'MISS'} |")
    return out


def client_section(rep: Report) -> list[str]:
    if "client_probe" not in rep.samples:
        return []
    runs = rep.s("client_probe").runs
    services = list(runs[0]["first_result"].keys()) if runs else []
    out = ["| client (AWSClientFactory.get, fresh process) | local CPU ms | local wall ms | "
           + " | ".join(f"est. invoke phase at {mb} MB, ms" for mb in SCALED_MEMORY_MB) + " |",
           "|---|---|---|" + "---|" * len(SCALED_MEMORY_MB)]
    for index, service in enumerate(services):
        cpu = statistics.median(run["first_result"][service]["cpu_ms"] for run in runs)
        wall = statistics.median(run["first_result"][service]["wall_ms"] for run in runs)
        what = f"{service} (first: imports boto3, makes the session)" if index == 0 else f"{service} (next)"
        scaled = " | ".join(f"{cpu / min(1.0, mb / LAMBDA_MB_PER_VCPU):.0f}" for mb in SCALED_MEMORY_MB)
        out.append(f"| {what} | {cpu:.1f} | {wall:.1f} | {scaled} |")
    return out


def why_the_misses(rep: Report) -> list[str]:
    """Where a target is missed: the cause, read off the figures above, and what would close it."""
    bare, lambda_like = rep.overhead("default", "init_cpu_ms"), rep.overhead("default_lambda", "init_cpu_ms")
    pyc = rep.overhead("default_pyc_lambda", "init_cpu_ms")
    if bare is None or lambda_like is None or pyc is None:
        return []
    preloaded = ", ".join(LAMBDA_PRELOADED)
    pyc_bytes = rep.s("default_pyc_lambda").variant.package_bytes
    source_bytes = rep.s("default_lambda").variant.package_bytes
    budget = f"{TARGET_INIT_OVERHEAD_MS:g} ms"
    return [
        "### Why the misses, and what would close them",
        "",
        para(f"""- **Over the truly bare interpreter** (init {bare:.1f} ms, the eager ratio, RSS):
        {bare - lambda_like:.1f} ms of the default's {bare:.1f} ms is `import {preloaded}`, the difference
        between the two floors, and alone more than the {budget} budget. The design requires stdlib
        `logging`, and EMF is JSON; Lambda's Python runtime has imported both before it imports a handler,
        so on Lambda that cost is paid whatever the handler does, and the Lambda-like floor is the one that
        says what the handler adds. Deferring those imports would pass this local figure and change nothing
        on Lambda."""),
        para(f"""- **Over the Lambda-like floor** (init {lambda_like:.2f} ms CPU): the rest is compiling
        the function's modules at every cold start, because Lambda's /var/task is read-only and no
        `__pycache__` survives. With the bytecode shipped the same figure is {fmt_over_floor(pyc)} ms,
        which meets the target: `leanlambda package --bytecode` builds that zip, {pyc_bytes} bytes
        against {source_bytes}, over the template issue's 6 KB budget, hence not the default. Shipping
        the runtime's bytecode once in the shared layer would meet both, but moves template-owned
        modules out of the function's `src/` (docs/design.md, Packaging). Deferring the runtime's
        imports to the first invocation would also pass here, but only by moving the compile into the
        invoke phase, which Lambda throttles to memory / {LAMBDA_MB_PER_VCPU} MB of a vCPU: a slower
        cold start on Lambda for a better local figure, so it was not done."""),
        "",
    ]


def target_rows(rep: Report, metric_rows: list[dict], tolerance: float) -> list[str]:
    out = ["| target | measured | verdict |", "|---|---|---|"]

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "MISS")

    lambda_floor = f"bare + `import {', '.join(LAMBDA_PRELOADED)}` before the handler"
    for name, what in (("init_ms", "wall"), ("init_cpu_ms", "CPU")):
        for key, floor in (("default", "the truly bare interpreter"), ("default_lambda", lambda_floor)):
            over = rep.overhead(key, name)
            out.append(f"| init overhead of the default handler <= {TARGET_INIT_OVERHEAD_MS:g} ms "
                       f"over {floor} "
                       f"({what}: import in the child minus the floor's) | {fmt(over, 2)} ms "
                       f"| {verdict(None if over is None else over <= TARGET_INIT_OVERHEAD_MS)} |")
    pyc = rep.overhead("default_pyc_lambda", "init_cpu_ms")
    if pyc is not None:
        out.append(f"| the same, Lambda-like floor, with the function's bytecode shipped (CPU; what "
                   f"`leanlambda package --bytecode` builds) | {fmt_over_floor(pyc)} ms "
                   f"| {verdict(pyc <= TARGET_INIT_OVERHEAD_MS)} |")
    for name, what in (("init_ms", "wall"), ("init_cpu_ms", "CPU")):
        for key, floor in (("default", "the bare floor"), ("default_lambda", "the Lambda-like floor")):
            eager_key = rep.eager_for(key)
            if eager_key is None:
                continue
            own, eager = rep.overhead(key, name), rep.overhead(eager_key, name)
            factor = eager / own if own and eager and own > 0 else None
            out.append(f"| default init overhead >= {TARGET_EAGER_FACTOR:g}x less than its eager variant's "
                       f"({what}, both over {floor}) | {fmt(eager, 1)} ms / {fmt(own, 2)} ms "
                       f"= {fmt(factor, 1)}x "
                       f"| {verdict(None if factor is None else factor >= TARGET_EAGER_FACTOR)} |")
    rss, floor_rss = rep.med("default", "rss_init_kib"), rep.med("floor", "rss_init_kib")
    rss_factor = rss / floor_rss if rss and floor_rss else None
    out.append(f"| peak RSS after init <= {TARGET_RSS_FACTOR:g}x the bare interpreter's "
               f"| {fmt(mib(rss))} MiB / {fmt(mib(floor_rss))} MiB = {fmt(rss_factor, 2)}x "
               f"| {verdict(None if rss_factor is None else rss_factor <= TARGET_RSS_FACTOR)} |")
    if "default_lambda" in rep.samples:
        rss_l, floor_l = rep.med("default_lambda", "rss_init_kib"), rep.med("floor_lambda", "rss_init_kib")
        out.append(f"| the same against the Lambda-like floor | {fmt(mib(rss_l))} MiB / "
                   f"{fmt(mib(floor_l))} MiB "
                   f"= {fmt(rss_l / floor_l, 2)}x | {verdict(rss_l / floor_l <= TARGET_RSS_FACTOR)} |")
    worst = [row for row in metric_rows if row["calls"] > (
        0 if row["backend"] == "emf" else math.ceil(row["n"] / PUT_METRIC_DATA_MAX_METRICS))]
    summary = ", ".join(f"{row['n']}: {row['calls']}" for row in metric_rows if row["backend"] != "emf")
    emf_calls = sum(row["calls"] for row in metric_rows if row["backend"] == "emf")
    out.append(f"| PutMetricData calls <= ceil(n/1000); EMF none | PutMetricData {summary}; EMF {emf_calls} "
               f"| {verdict(not worst) if metric_rows else 'n/a'} |")
    for name, what in (("cold_ms", "wall"), ("cold_cpu_ms", "CPU")):
        prewarm, eager = rep.med("default_prewarm", name), rep.med("default_eager", name)
        paired = rep.paired_ratio("default_prewarm", "default_eager", name)
        if prewarm is None or eager is None or paired is None:
            continue
        control = rep.paired_ratio("default_eager_aa", "default_eager", name)
        noise = max(tolerance, abs(control - 1) if control is not None else 0.0)
        word = "PASS" if paired <= 1 else (
            f"PASS (within the {noise:.1%} noise)" if paired <= 1 + noise else "MISS")
        aa = f"; A/A control (identical copies) {control:.3f}" if control is not None else ""
        out.append(f"| cold path with prewarm never slower than its eager variant's (default + prewarm s3 vs "
                   f"default eager, {what}) | medians {prewarm:.1f} ms vs {eager:.1f} ms; median of the "
                   f"per-round ratios {paired:.3f}{aa} | {word} |")
    for key in rep.rows:
        if key.endswith("_prewarm") and key != "default_prewarm" and f"{key}_eager" in rep.samples:
            a, b = rep.med(key, "cold_ms"), rep.med(f"{key}_eager", "cold_ms")
            if a is not None and b is not None:
                out.append(f"| {rep.s(key).variant.label}: cold path vs its eager variant | {a:.1f} ms vs "
                           f"{b:.1f} ms | {'PASS' if a <= b * (1 + tolerance) else 'MISS'} |")
    return out


def para(text: str) -> str:
    """One Markdown paragraph or list item from a wrapped triple-quoted string."""
    return " ".join(text.split())


def render(ctx: dict) -> str:
    rep: Report = ctx["report"]
    m = ctx["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in m["versions"].items())
    preloaded = ", ".join(LAMBDA_PRELOADED)
    pricing_source = "; constants from `leanlambda.pricing`" if ctx["pricing_module"] else ""
    prices = PRICE_PER_GB_SECOND_USD
    lines = [
        "# Benchmarks",
        "",
        para(f"""Generated by `benchmarks/run.py` (`make bench`); do not edit by hand. Every figure is the
        median of {ctx['runs']} fresh processes per variant, with (min-max), all measured side by side in one
        run, interleaved: each round runs every variant once in a freshly shuffled order, so that the drift of
        a shared machine hits every variant alike."""),
        "",
        "## Machine and command",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores ({m['platform']})",
        f"- Python {m['python']}; {versions}",
        para(f"""- Date: {m['date']}; whole run {ctx['duration_s']:.0f} s; 1-minute load average
        {ctx['load'][0]:.1f} at the start, {ctx['load'][1]:.1f} at the end (a load above the core count means
        wall times are inflated by waiting for a CPU: the CPU columns are the steadier figures)"""),
        f"- Command: `{ctx['command']}`",
        "",
        "## Method",
        "",
        para("""- **Child**: `benchmarks/_child.py` runs as `python -S -s -B -P` with
        `PYTHONDONTWRITEBYTECODE=1`: it imports `site` (what a normal start imports) without running it, so
        the development venv's `.pth` files (an editable install that preloads pathlib, urllib and more) do
        not hide import costs; then it puts the function's staged source and site-packages on `sys.path`.
        The staged source is what `leanlambda package` ships (its own staging step: no tests, caches or
        bytecode, and whatever else it does to the files), so, as on Lambda's read-only /var/task, there is
        no `__pycache__` and every module of the function is compiled at each cold start."""),
        para("""- **init**: `time.perf_counter()` and `time.process_time()` (user + system CPU, what
        `resource.getrusage` reports) around `importlib.import_module(<module>.handler)`. **Over its floor**:
        minus the same figure for the floor (an empty module with a no-op handler) in the same child.
        **Start to init done**: from the parent's `Popen` to the end of the import (`time.monotonic()`, one
        clock for both): interpreter start included."""),
        para(f"""- **Floors**: *floor (bare interpreter)* is the truly bare interpreter; *floor (bare +
        {preloaded})* imports those before the clock starts, as Lambda's runtime bootstrap has done before it
        imports the handler module. *default bake (runtime preloads {preloaded})* is the default handler
        measured on that Lambda-like floor, beside its eager twin on the same floor. *default bake, bytecode
        shipped* is the same source with `__pycache__` compiled in advance by this interpreter: what
        `leanlambda package --bytecode` ships for a function whose runtime is this Python (no compile at
        cold start), for a zip about 4 times larger."""),
        para(f"""- **Cold path**: init plus the first invocation with the function's `events/event.json`
        against one moto server (loopback, free port, started once per run; `AWS_ENDPOINT_URL` set for the
        child, fake credentials; `DATA_BUCKET={BENCH_BUCKET}` exists in moto, so the default's
        `store_summary` step really calls S3). Examples get what their tests give them: PostgreSQL from
        `tests/support/postgres.py` with its credentials in a moto secret (`DB_SECRET_ARN`), and for the
        orchestrator an EC2 instance, an RDS instance and a secret in moto, both stopped again before each
        sample so that every sample takes the same step. **Warm**: the second invocation in the same
        process."""),
        para(f"""- **Upbit** (makenaide-scanner, makenaide-data-collector): their Upbit HTTP is answered by a
        loopback replay server (`benchmarks/upbit_replay.py`, the standard library's `http.server`, free
        port, started once per run) from the recorded responses in the repository: the market list of
        `examples/makenaide-scanner/tests/recorded/market_all.json`, and the KRW-BTC daily and 4-hour series
        of `examples/makenaide-data-collector/events/upbit/` under whatever market is asked for, paged by
        `count` (at most 200) and `to` as Upbit pages, with the recorded headers. The child points
        `<module>.upbit.API_URL` at it (`{UPBIT_URL_ENV}`) after init is timed; a lazy function imports
        `upbit.py` during its first invocation, and a one-shot import hook sets the URL then, so that import
        stays in the cold path. So the function's real `requests` code path, sockets included, is measured,
        and the exchange's latency is not (nor TLS: the server, like moto, speaks plain HTTP). The
        function's own pacing is measured: `UpbitClient` sends at most Upbit's 10 requests in any second
        (a run of up to 10 goes at once, the next waits for the oldest to be a second old), and those
        waits are in the wall figures (Lambda bills them), not in the CPU ones."""),
        para(f"""- **Their PostgreSQL tables** are the db initializer's schema, applied once, and are reset
        before each sample, so that every sample does the same work. The scanner starts with an empty
        `tickers` and no `scanner_state`: its first invocation is a first-ever scan that inserts every
        recorded KRW market (those on its default blacklist inactive), its warm one a rescan that changes
        nothing. The collector starts with no candles and the tickers its tests seed
        ({sum(active for _, active in COLLECTOR_TICKERS)} active,
        {sum(not active for _, active in COLLECTOR_TICKERS)} inactive): its first invocation is a full load
        of each active ticker (450 daily and 200 4-hour candles, 4 requests), its warm one the incremental
        load that follows (the last 30 days and 200 4-hour candles, 2 requests)."""),
        para("""- **Peak RSS**: VmHWM from /proc/self/status after init and after the first invocation.
        (`ru_maxrss` survives `exec` on Linux, so a child spawned by this ~100 MB parent would report the
        parent's peak.)"""),
        para("""- **Eager variant**: `benchmarks/eager.py` copies the staged source, moves every
        function-level import to module level, and appends to `handler.py`
        `get_orchestrator().clients.prewarm(<the function's services from .cookiecutter.json>)`: the same
        code, loaded eagerly."""),
        para("""- **Powertools variant** (`benchmarks/powertools_variant/`): the default skeleton built the
        common way (`Logger`, `Metrics`, a module-level `boto3.client("s3")`, the same steps); Powertools
        itself would come from a layer, so its package is the handler alone."""),
        "- **Package bytes**: the deterministic zip of the staged source, as `leanlambda package` builds it.",
        "",
        "## Init",
        "",
        *init_table(rep),
        "",
        "## Cold path, warm invocation, memory, package",
        "",
        *cold_table(rep),
        "",
        *[f"- {note}" for note in ctx["notes"]],
        "",
        "## Metrics: API calls per invocation",
        "",
        para("""The generated metrics module (of the default bake for EMF, of a bake with
        `metrics_backend=put_metric_data` for PutMetricData; a bake holds only its selected backend), flushed
        once with n distinct metrics (one dimension set). EMF lines are counted; PutMetricData calls are
        counted against moto with a botocore hook on `provide-client-params.cloudwatch.PutMetricData`."""),
        "",
        *metrics_table(ctx["metric_rows"]),
        "",
        "## Cost per million invocations (estimate)",
        "",
        para(f"""Model: billed duration is init + first invocation (each rounded up to the ms) for a cold
        start and the warm invocation for the others, with {COLD_START_SHARE:.0%} of invocations cold (INIT
        is billed since 2025-08); GB-seconds at the memory size from the function's `.cookiecutter.json` times
        the architecture's price (x86_64 {prices['x86_64']} USD/GB-s, arm64 {prices['arm64']}), plus
        {PRICE_PER_MILLION_REQUESTS_USD:.2f} USD per million requests (AWS Lambda pricing, us-east-1, first
        tier{pricing_source}), plus PutMetricData at {PUT_METRIC_DATA_USD_PER_1000} USD per 1000 requests.
        Durations are this machine's wall times, not Lambda's: at 128-1024 MB Lambda's CPU is a fraction of
        one vCPU (next section), so real durations are longer; the ratios between rows are the point."""),
        "",
        *cost_table(rep),
        "",
        "## What a local figure says about Lambda, and what it does not",
        "",
        para(f"""- Lambda's CPU scales with memory: {LAMBDA_MB_PER_VCPU} MB is one vCPU, so at 128 MB a
        function gets about 1/{LAMBDA_MB_PER_VCPU / 128:.0f} of a vCPU and CPU-bound work in the invoke phase
        runs ~10x slower than here. Importing modules and creating clients are CPU-bound."""),
        para(f"""- INIT runs at full CPU for up to {INIT_FULL_CPU_S} s whatever the memory size. So a client
        every invocation needs is cheaper created during init (prewarm) than lazily in a 128-512 MB invoke:
        DESIGN section 7 measured {DESIGN_CLIENT_MS[128]} ms at 128 MB against {DESIGN_CLIENT_MS[1024]} ms at
        1024 MB. A client only some invocations need stays lazy: then most cold starts never pay for it.
        INIT is billed since 2025-08, so init time is money either way; at full CPU there is less of it."""),
        para("""- Here nothing is throttled, so the lazy default and its prewarm twin take about the same cold
        path; the difference only shows on Lambda, which the estimate below puts in numbers."""),
        para("""- Not modelled: Lambda's own runtime start (~77-84 ms p50 for a Python zip hello world, DESIGN
        section 7), network latency to real AWS endpoints (moto is on loopback), a different CPU model, and
        file-system speed of /var/task and /opt."""),
        "",
        para(f"""**Estimate** (not a measurement): the CPU ms of client creation measured here (median of
        fresh processes, `AWSClientFactory.get` of the default bake), divided by the CPU share Lambda gives
        in the invoke phase (memory / {LAMBDA_MB_PER_VCPU} MB, at most 1). Created during init instead
        (prewarm), the same work costs about the local CPU ms, at any memory size."""),
        "",
        *client_section(rep),
        "",
        "## Targets",
        "",
        para(f"""Reported, not enforced by tests (timings on a shared machine are not a test). The prewarm
        target compares two variants doing the same work (the same imports and the same client, made during
        init): it uses the median of the per-round ratios, since both ran in every round, and counts a
        difference as noise when it is within what two identical copies of the eager variant differ by in
        the same run (the A/A control), or within {NOISE_TOLERANCE:.0%}."""),
        "",
        *target_rows(rep, ctx["metric_rows"], ctx["tolerance"]),
        "",
        *why_the_misses(rep),
        "## Layer",
        "",
        ctx["layer_note"],
        "",
        ctx["layer_md"].strip(),
        "",
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------------------------- main
LAYER_SKIPPED = ("Layer bench skipped (`--skip-layer` or `--quick`): it downloads wheels and is slow. "
                 "Run `python benchmarks/layer_sizes.py --markdown FILE`.")
EAGER_TWIN = {"default_prewarm": "default_eager", "default_eager_aa": "default_eager",
              "default_lambda": "default_eager_lambda", "default_eager_lambda": None,
              "default_pyc_lambda": None}
"""The eager variant each row is compared with (None: none), where it is not simply `<key>_eager`."""
NOISE_TOLERANCE = 0.03
"""Two variants doing the same work differ by about this much on this shared machine (paired ratios)."""


def build_variants(args: argparse.Namespace, work: Path, moto: Moto, pg: Postgres, upbit: UpbitReplay
                   ) -> tuple[list[Variant], list[str], list[str]]:
    notes: list[str] = []
    floor = write_floor(work)
    variants = [
        Variant("floor", "floor (bare interpreter)", "bench_floor", (floor,)),
        Variant("floor_lambda", f"floor (bare + {', '.join(LAMBDA_PRELOADED)})", "bench_floor", (floor,),
                preload=LAMBDA_PRELOADED),
    ]
    for variant in variants:
        variant.event = floor / "event.json"
    (floor / "event.json").write_text("{}", encoding="utf-8")

    log("baking the default function and its prewarm twin")
    default_root = bake(work / "bake-default")
    prewarm_root = bake(work / "bake-prewarm", prewarm_services="s3")
    functions = [
        Function("default", "default bake", default_root, load_answers(default_root),
                 stage(default_root / "src", work / "default" / "src")),
        Function("default_prewarm", "default + prewarm s3", prewarm_root, load_answers(prewarm_root),
                 stage(prewarm_root / "src", work / "default_prewarm" / "src")),
    ]
    if not args.quick:
        for root in discover_examples():
            answers = load_answers(root)
            key = answers["__module_name"]
            functions.append(Function(key, f"example {root.name}", root, answers,
                                      stage(root / "src", work / key / "src")))

    for function in functions:
        region = function.answers.get("region") or "ap-northeast-2"
        function.env = aws_env(moto, region)
        if function.key != "default_prewarm":
            function.eager_src = work / f"{function.key}_eager" / "src"
            function.eager_info = make_eager(function.staged_src, function.eager_src,
                                             services_of(function.answers))
        if function.answers.get("function_name") == "makenaide-integrated-orchestrator":
            try:
                world = OrchestratorWorld(moto, region)
            except Exception as error:  # moto cannot model it: measure init only
                function.cold_path = False
                function.why_not_cold = f"its moto world could not be built ({type(error).__name__}: {error})"
            else:
                function.env.update(world.env)
                function.prepare = world.reset
        name = function.answers.get("function_name")
        if name in BENCH_EVENTS:
            event, why = BENCH_EVENTS[name]
            function.event = function.root / event
            notes.append(f"{function.label}: event `{event}`, not `events/event.json`: {why}.")
        if function.answers.get("use_upbit"):
            function.env[UPBIT_URL_ENV] = upbit.url
        if function.answers.get("use_postgres"):
            url = pg.database(f"bench_{function.answers['__module_name']}"[:60])
            if url is None:
                function.cold_path = False
                function.why_not_cold = f"needs PostgreSQL, which could not be started ({pg.error})"
            else:
                function.env.update(db_secret_env(moto, url, function))
                if function.answers.get("use_upbit"):
                    prepare_tables(function, url)

    rows = ["floor", "floor_lambda"]
    preloaded = ", ".join(LAMBDA_PRELOADED)
    for function in functions:
        common = dict(
            paths=(function.staged_src,), event=function.event or function.root / "events" / "event.json",
            env=function.env, memory_mb=function.memory_mb, architecture=function.architecture,
            function_name=str(function.answers.get("function_name") or function.key),
            metrics_backend=str(function.answers.get("metrics_backend") or "emf"),
            cold_path=function.cold_path, note=function.why_not_cold,
            timeout_s=int(function.answers.get("timeout") or 60), prepare=function.prepare,
        )
        lazy = Variant(function.key, function.label, function.module,
                       package_bytes=package_bytes(function.staged_src, work), **common)
        variants.append(lazy)
        rows.append(function.key)
        if function.key == "default":
            label = f"default bake (runtime preloads {preloaded})"
            lambda_like = Variant("default_lambda", label,
                                  function.module, preload=LAMBDA_PRELOADED,
                                  package_bytes=lazy.package_bytes, **common)
            variants.append(lambda_like)
            rows.append("default_lambda")
        if function.eager_src is not None:
            eager_common = {**common, "paths": (function.eager_src,)}
            variants.append(Variant(f"{function.key}_eager", f"{function.label}, eager", function.module,
                                    package_bytes=package_bytes(function.eager_src, work),
                                    eager_of=function.key, **eager_common))
            rows.append(f"{function.key}_eager")
            if function.key == "default":
                control = work / "default_eager_copy" / "src"
                shutil.copytree(function.eager_src, control)
                variants.append(Variant(
                    "default_eager_aa", "default bake, eager, identical copy (A/A control)", function.module,
                    package_bytes=variants[-1].package_bytes, **{**common, "paths": (control,)}))
                rows.append("default_eager_aa")
                variants.append(Variant(
                    "default_eager_lambda", f"default bake, eager (runtime preloads {preloaded})",
                    function.module, preload=LAMBDA_PRELOADED, package_bytes=variants[-1].package_bytes,
                    eager_of="default_lambda", **eager_common))
                rows.append("default_eager_lambda")
                compiled = with_bytecode(function.staged_src, work / "default_pyc" / "src")
                variants.append(Variant(
                    "default_pyc_lambda", f"default bake, bytecode shipped (runtime preloads {preloaded})",
                    function.module, preload=LAMBDA_PRELOADED, package_bytes=zip_bytes(compiled, work),
                    **{**common, "paths": (compiled,)}))
                rows.append("default_pyc_lambda")
            info = function.eager_info
            services = ",".join(services_of(function.answers))
            prewarm_note = f"added for {services}" if info.prewarmed else "none (no services)"
            hoisted = "; ".join(f"{name}: {', '.join(stmts)}" for name, stmts in info.hoisted.items())
            kept = "; ".join(f"{name}: {', '.join(stmts)}" for name, stmts in info.kept.items())
            notes.append(f"{function.label}, eager: hoisted {hoisted or 'nothing'}"
                         f"{'; left in place ' + kept if kept else ''}; prewarm call "
                         f"{prewarm_note}.")
        if function.key == "default":
            pt_src = stage(POWERTOOLS_DIR / "src", work / "powertools" / "src")
            variants.append(Variant(
                "powertools", "default logic, Powertools Logger + Metrics, module-level boto3 client",
                "powertools_function.handler", **{**common, "paths": (pt_src,),
                                                 "event": POWERTOOLS_DIR / "events" / "event.json"},
                package_bytes=package_bytes(pt_src, work)))
            rows.append("powertools")
            probe = write_client_probe(work)
            probe_event = probe / "event.json"
            probe_event.write_text(json.dumps({"package": function.answers["__module_name"],
                                               "services": ["s3", "ec2", "rds", "ssm"]}), encoding="utf-8")
            variants.append(Variant("client_probe", "client creation probe", "bench_client_probe",
                                    **{**common, "paths": (probe, function.staged_src),
                                       "event": probe_event}))
    for function in functions:
        if not function.cold_path:
            notes.append(f"{function.label}: cold path not measured ({function.why_not_cold}); init, RSS and "
                         "package are.")
    return variants, rows, notes


def prepare_tables(function: Function, url: str) -> None:
    """A Makenaide Upbit example's tables, reset before each of its samples (or why its cold path is not
    measured)."""
    try:
        function.prepare = MakenaideTables(url, function.answers["function_name"]).reset
    except Exception as error:  # no schema owner example, a schema the server refuses, ...
        function.cold_path = False
        function.why_not_cold = f"its tables could not be prepared ({type(error).__name__}: {error})"


def load_answers(root: Path) -> dict:
    return json.loads((root / ".cookiecutter.json").read_text(encoding="utf-8"))


def command_line(argv: list[str]) -> str:
    python = Path(sys.executable)
    try:
        python_text = str(python.relative_to(Path.cwd()))
    except ValueError:
        python_text = str(python)
    return " ".join([python_text, "-m", "benchmarks.run", *argv])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path, help="write the report here (default: print it)")
    parser.add_argument("--runs", type=int, default=None,
                        help=f"fresh processes per variant (default {RUNS})")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_RUNS} runs, the default bake only, no layer bench")
    parser.add_argument("--skip-layer", action="store_true", help="do not run benchmarks/layer_sizes.py")
    args = parser.parse_args(argv)
    runs = args.runs or (QUICK_RUNS if args.quick else RUNS)
    if runs < 1:
        parser.error("--runs must be at least 1")
    started = time.monotonic()
    load_before = os.getloadavg()
    pricing_module = "leanlambda.pricing" in sys.modules
    pg = Postgres()
    with (tempfile.TemporaryDirectory(prefix="leanlambda-bench-run-") as tmp, Moto() as moto,
          UpbitReplay() as upbit):
        work = Path(tmp)
        region = "ap-northeast-2"
        ensure_bucket(moto, region)
        try:
            variants, rows, notes = build_variants(args, work, moto, pg, upbit)
            log(f"measuring {len(variants)} variants x {runs} fresh processes, interleaved")
            samples = measure(variants, runs, progress=log)
        finally:
            pg.stop()
        log("counting metrics API calls")
        pmd_root = bake(work / "bake-put-metric-data", metrics_backend="put_metric_data")
        metric_rows = count_metric_calls(
            {"emf": work / "default" / "src",
             "put_metric_data": stage(pmd_root / "src", work / "pmd" / "src")},
            moto, region)
        if args.skip_layer or args.quick:
            layer_md, layer_note = "", LAYER_SKIPPED
        else:
            log("running benchmarks/layer_sizes.py")
            layer_md, layer_note = run_layer_bench(work)
    report = Report(samples, rows)
    text = render({
        "report": report, "machine": machine(), "runs": runs, "duration_s": time.monotonic() - started,
        "command": command_line(argv), "notes": notes, "metric_rows": metric_rows, "layer_md": layer_md,
        "layer_note": layer_note, "tolerance": NOISE_TOLERANCE, "pricing_module": pricing_module,
        "load": (load_before[0], os.getloadavg()[0]),
    })
    text += "\n" + sam_artifact.section(runs)  # the artifact `sam build` deploys, under the runtime's Python
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
        log(f"wrote {args.markdown} in {time.monotonic() - started:.0f} s")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
