"""What is measured: the floors, the default bake and its twins, the examples, each a harness Variant.

Every function measured is read with the toolkit's own model of a function folder
(leanlambda.function.FunctionDir: handler module, memory, architecture, timeout, region, name), staged as
`leanlambda package` stages it, and given what its tests give it (benchmarks.fixtures). Its variants: the
function as generated (lazy), its eager twin (benchmarks.eager), and for the default bake the Lambda-like
floor twins, the A/A control, the shipped-bytecode copy, the Powertools twin and the client probe.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.eager import EagerResult, make_eager, services_of
from benchmarks.fixtures import (
    EXAMPLES_DIR,
    ROOT,
    UPBIT_URL_ENV,
    MakenaideTables,
    Moto,
    OrchestratorWorld,
    Postgres,
    aws_env,
    db_secret_env,
)
from benchmarks.harness import LAMBDA_PRELOADED, Variant, log
from benchmarks.upbit_replay import UpbitReplay
from leanlambda.function import FunctionDir, load_function

BENCH_DIR = Path(__file__).resolve().parent
POWERTOOLS_DIR = BENCH_DIR / "powertools_variant"
DEFAULT_EVENT = Path("events") / "event.json"
PROBE_SERVICES = ("s3", "ec2", "rds", "ssm")
BENCH_EVENTS = {
    "makenaide-scanner": (
        "events/force.json",
        "with events/event.json the warm invocation, 0 h after the first scan, would skip the scan as "
        "fresh; the schedule runs it once a day, when the last scan is always due, so both invocations "
        "scan",
    ),
}
"""An example event used instead of events/event.json, and why."""
EAGER_TWIN = {
    "default_prewarm": "default_eager",
    "default_eager_aa": "default_eager",
    "default_lambda": "default_eager_lambda",
    "default_eager_lambda": None,
    "default_pyc_lambda": None,
}
"""The eager variant each row is compared with (None: none), where it is not simply `<key>_eager`."""


@dataclass
class Subject:
    """A function folder measured (a bake or an example): the toolkit's view of it, plus what the run
    gives it (staged copies, environment, a reset before each sample) or why its cold path is not run."""

    key: str
    label: str
    function: FunctionDir
    staged_src: Path
    eager_src: Path | None = None
    eager_info: EagerResult | None = None
    cold_path: bool = True
    why_not_cold: str = ""
    env: dict[str, str] = field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    event: Path | None = None

    @property
    def answers(self) -> dict:
        return self.function.answers

    @property
    def event_file(self) -> Path:
        return self.event or self.function.root / DEFAULT_EVENT

    def no_cold_path(self, why: str) -> None:
        self.cold_path, self.why_not_cold = False, why


# ----------------------------------------------------------------------------------------------- sources
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
        path
        for path in EXAMPLES_DIR.iterdir()
        if (path / ".cookiecutter.json").is_file() and (path / "src").is_dir()
    )


def write_floor(work: Path) -> Path:
    """The floor: an empty module with a no-op handler, run by the same child (`python -c pass`)."""
    floor = work / "floor"
    floor.mkdir(parents=True, exist_ok=True)
    (floor / "bench_floor.py").write_text(
        '"""The floor: nothing to import, nothing to do."""\n\n\ndef lambda_handler(event, context):\n'
        '    return {"ok": True}\n',
        encoding="utf-8",
    )
    (floor / "event.json").write_text("{}", encoding="utf-8")
    return floor


def write_client_probe(work: Path, package: str) -> tuple[Path, Path]:
    """(folder, event): a module timing AWSClientFactory.get per service, in a fresh process (the first
    pays boto3)."""
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
        "    return out\n",
        encoding="utf-8",
    )
    event = probe / "event.json"
    event.write_text(json.dumps({"package": package, "services": list(PROBE_SERVICES)}), encoding="utf-8")
    return probe, event


# ----------------------------------------------------------------------------------------------- subjects
def subjects(work: Path, quick: bool) -> list[Subject]:
    """The default bake, its prewarm twin and (unless quick) every example, staged."""
    log("baking the default function and its prewarm twin")
    roots = [
        ("default", "default bake", bake(work / "bake-default")),
        ("default_prewarm", "default + prewarm s3", bake(work / "bake-prewarm", prewarm_services="s3")),
    ]
    found = []
    for key, label, root in roots:
        function = load_function(root)
        found.append(Subject(key, label, function, stage(function.src, work / key / "src")))
    if not quick:
        for root in discover_examples():
            function = load_function(root)
            key = function.package
            staged = stage(function.src, work / key / "src")
            found.append(Subject(key, f"example {root.name}", function, staged))
    return found


def equip(subject: Subject, work: Path, moto: Moto, pg: Postgres, upbit: UpbitReplay) -> list[str]:
    """Give a subject its eager twin and what its tests give it; notes for the report."""
    notes = []
    function, answers = subject.function, subject.answers
    subject.env = aws_env(moto, function.region)
    if subject.key != "default_prewarm":
        subject.eager_src = work / f"{subject.key}_eager" / "src"
        subject.eager_info = make_eager(subject.staged_src, subject.eager_src, services_of(answers))
    if function.name == "makenaide-integrated-orchestrator":
        try:
            world = OrchestratorWorld(moto, function.region)
        except Exception as error:  # moto cannot model it: measure init only
            subject.no_cold_path(f"its moto world could not be built ({type(error).__name__}: {error})")
        else:
            subject.env.update(world.env)
            subject.prepare = world.reset
    if function.name in BENCH_EVENTS:
        event, why = BENCH_EVENTS[function.name]
        subject.event = function.root / event
        notes.append(f"{subject.label}: event `{event}`, not `{DEFAULT_EVENT}`: {why}.")
    if answers.get("use_upbit"):
        subject.env[UPBIT_URL_ENV] = upbit.url
    if answers.get("use_postgres"):
        url = pg.database(f"bench_{function.package}"[:60])
        if url is None:
            subject.no_cold_path(f"needs PostgreSQL, which could not be started ({pg.error})")
        else:
            subject.env.update(db_secret_env(moto, url, function.region, function.name))
            if answers.get("use_upbit"):
                prepare_tables(subject, url)
    return notes


def prepare_tables(subject: Subject, url: str) -> None:
    """A Makenaide Upbit example's tables, reset before each of its samples (or why its cold path is not
    measured)."""
    try:
        subject.prepare = MakenaideTables(url, subject.function.name).reset
    except Exception as error:  # no schema owner example, a schema the server refuses, ...
        subject.no_cold_path(f"its tables could not be prepared ({type(error).__name__}: {error})")


# ----------------------------------------------------------------------------------------------- variants
def floors(work: Path) -> list[Variant]:
    floor = write_floor(work)
    return [
        Variant("floor", "floor (bare interpreter)", "bench_floor", (floor,), event=floor / "event.json"),
        Variant(
            "floor_lambda",
            f"floor (bare + {', '.join(LAMBDA_PRELOADED)})",
            "bench_floor",
            (floor,),
            preload=LAMBDA_PRELOADED,
            event=floor / "event.json",
        ),
    ]


def common_settings(subject: Subject) -> dict:
    """The Variant fields every variant of one function shares: how Lambda would run it."""
    function = subject.function
    return dict(
        paths=(subject.staged_src,),
        event=subject.event_file,
        env=subject.env,
        memory_mb=function.memory_mb,
        architecture=function.architecture,
        function_name=function.name,
        metrics_backend=str(subject.answers.get("metrics_backend") or "emf"),
        cold_path=subject.cold_path,
        note=subject.why_not_cold,
        timeout_s=function.timeout_s,
        prepare=subject.prepare,
    )


def default_twins(subject: Subject, work: Path, eager: Variant) -> list[Variant]:
    """The default bake's extra rows: the Lambda-like floor twins, the A/A control, shipped bytecode."""
    common, module = common_settings(subject), subject.function.module
    preloaded = ", ".join(LAMBDA_PRELOADED)
    control = work / "default_eager_copy" / "src"
    shutil.copytree(subject.eager_src, control)
    compiled = with_bytecode(subject.staged_src, work / "default_pyc" / "src")
    return [
        Variant(
            "default_eager_aa",
            "default bake, eager, identical copy (A/A control)",
            module,
            package_bytes=eager.package_bytes,
            **{**common, "paths": (control,)},
        ),
        Variant(
            "default_eager_lambda",
            f"default bake, eager (runtime preloads {preloaded})",
            module,
            preload=LAMBDA_PRELOADED,
            package_bytes=eager.package_bytes,
            eager_of="default_lambda",
            **{**common, "paths": eager.paths},
        ),
        Variant(
            "default_pyc_lambda",
            f"default bake, bytecode shipped (runtime preloads {preloaded})",
            module,
            preload=LAMBDA_PRELOADED,
            package_bytes=zip_bytes(compiled, work),
            **{**common, "paths": (compiled,)},
        ),
    ]


def default_extras(subject: Subject, work: Path) -> tuple[Variant, Variant]:
    """(Powertools twin, client probe): the default logic built the common way; client creation timed."""
    common = common_settings(subject)
    pt_src = stage(POWERTOOLS_DIR / "src", work / "powertools" / "src")
    powertools = Variant(
        "powertools",
        "default logic, Powertools Logger + Metrics, module-level boto3 client",
        "powertools_function.handler",
        package_bytes=package_bytes(pt_src, work),
        **{**common, "paths": (pt_src,), "event": POWERTOOLS_DIR / DEFAULT_EVENT},
    )
    probe, probe_event = write_client_probe(work, subject.function.package)
    client_probe = Variant(
        "client_probe",
        "client creation probe",
        "bench_client_probe",
        **{**common, "paths": (probe, subject.staged_src), "event": probe_event},
    )
    return powertools, client_probe


def eager_note(subject: Subject) -> str:
    info = subject.eager_info
    assert info is not None
    services = ",".join(services_of(subject.answers))
    prewarm = f"added for {services}" if info.prewarmed else "none (no services)"
    hoisted = "; ".join(f"{name}: {', '.join(stmts)}" for name, stmts in info.hoisted.items())
    kept = "; ".join(f"{name}: {', '.join(stmts)}" for name, stmts in info.kept.items())
    return (
        f"{subject.label}, eager: hoisted {hoisted or 'nothing'}"
        f"{'; left in place ' + kept if kept else ''}; prewarm call {prewarm}."
    )


def variants_of(subject: Subject, work: Path) -> tuple[list[Variant], list[str], list[str]]:
    """(variants, report rows in order, notes) for one subject."""
    common, module = common_settings(subject), subject.function.module
    preloaded = ", ".join(LAMBDA_PRELOADED)
    lazy = Variant(
        subject.key, subject.label, module, package_bytes=package_bytes(subject.staged_src, work), **common
    )
    variants, rows, notes = [lazy], [lazy.key], []
    if subject.key == "default":
        variants.append(
            Variant(
                "default_lambda",
                f"default bake (runtime preloads {preloaded})",
                module,
                preload=LAMBDA_PRELOADED,
                package_bytes=lazy.package_bytes,
                **common,
            )
        )
        rows.append("default_lambda")
    if subject.eager_src is not None:
        eager = Variant(
            f"{subject.key}_eager",
            f"{subject.label}, eager",
            module,
            package_bytes=package_bytes(subject.eager_src, work),
            eager_of=subject.key,
            **{**common, "paths": (subject.eager_src,)},
        )
        variants.append(eager)
        rows.append(eager.key)
        if subject.key == "default":
            twins = default_twins(subject, work, eager)
            variants += twins
            rows += [twin.key for twin in twins]
        notes.append(eager_note(subject))
    if subject.key == "default":
        powertools, probe = default_extras(subject, work)
        variants += [powertools, probe]
        rows.append(powertools.key)  # the probe has a table of its own
    return variants, rows, notes


def build_variants(
    work: Path, quick: bool, moto: Moto, pg: Postgres, upbit: UpbitReplay
) -> tuple[list[Variant], list[str], list[str]]:
    """(every variant, the report's rows in order, notes for the report)."""
    variants = floors(work)
    rows = [variant.key for variant in variants]
    notes: list[str] = []
    found = subjects(work, quick)
    for subject in found:
        notes += equip(subject, work, moto, pg, upbit)
    for subject in found:
        more, more_rows, more_notes = variants_of(subject, work)
        variants += more
        rows += more_rows
        notes += more_notes
    for subject in found:
        if not subject.cold_path:
            notes.append(
                f"{subject.label}: cold path not measured ({subject.why_not_cold}); init, RSS and "
                "package are."
            )
    return variants, rows, notes
