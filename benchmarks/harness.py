"""Runs the measuring child (benchmarks/_child.py) for many variants, interleaved, and summarises.

Every sample is a fresh process. Rounds are interleaved: each round runs every variant once, in a freshly
shuffled order (seeded, so a run is repeatable), so that the drift of a shared, noisy machine hits every
variant alike and no variant always follows the same neighbour; each figure is the median of the rounds,
with min and max.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CHILD = Path(__file__).resolve().parent / "_child.py"
CHILD_FLAGS = ("-S", "-s", "-B", "-P")
"""No site main() (the dev venv's .pth files would preload pathlib & co.), no user site, no bytecode
written, no script directory on sys.path: the child adds its source and site-packages itself."""
CHILD_TIMEOUT_S = 120
SHUFFLE_SEED = 20250806
SITE_PACKAGES = sysconfig.get_paths()["purelib"]
LAMBDA_PRELOADED = ("json", "logging")
"""What Lambda's Python runtime bootstrap has already imported before it imports the handler module."""
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
STRIPPED_ENV = (
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "VIRTUAL_ENV",
    "PYTHONINSPECT",
    "PYTHONPROFILEIMPORTTIME",
)


@dataclass
class Variant:
    """One thing measured: a handler module on a source path, or the bare floor."""

    key: str
    label: str
    module: str
    paths: tuple[Path, ...]
    attr: str = "lambda_handler"
    preload: tuple[str, ...] = ()
    event: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    memory_mb: int = 128
    architecture: str = "x86_64"
    function_name: str = "bench"
    metrics_backend: str = "emf"
    package_bytes: int | None = None
    eager_of: str | None = None  # key of the variant this is the eager copy of
    note: str = ""
    cold_path: bool = True  # False: init and RSS only (the invocation needs what the run cannot provide)
    timeout_s: int = 60  # the context's deadline (the function's Timeout)
    prepare: Callable[[], None] | None = None  # run before each sample, untimed (reset the world it changes)

    @property
    def invokes(self) -> bool:
        return self.cold_path and self.event is not None


def log(message: str) -> None:
    """One progress line on stderr (the report goes to stdout or a file)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in STRIPPED_ENV}
    env.update(FAKE_CREDENTIALS)
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env


def run_child(variant: Variant, work: Path, python: str = sys.executable) -> dict:
    """One fresh process: init (and the cold and warm invocations when the variant invokes)."""
    out = work / f"{variant.key}-{time.monotonic_ns()}.json"
    args = [
        python,
        *CHILD_FLAGS,
        str(CHILD),
        f"module={variant.module}",
        f"attr={variant.attr}",
        "paths=" + ":".join(str(path) for path in variant.paths),
        f"site={SITE_PACKAGES}",
        f"out={out}",
        "preload=" + ",".join(variant.preload),
        f"memory={variant.memory_mb}",
        f"function={variant.function_name}",
        f"timeout={variant.timeout_s}",
    ]
    if variant.invokes:
        args.append(f"event={variant.event}")
    env = child_env(variant.env)
    env["AWS_LAMBDA_FUNCTION_NAME"] = variant.function_name
    env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = str(variant.memory_mb)
    started = time.monotonic()
    proc = subprocess.run(args, env=env, cwd=work, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"{variant.key}: child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    result["startup_init_ms"] = (result.pop("init_done_mono") - started) * 1000
    if "first_done_mono" in result:
        result["startup_cold_ms"] = (result.pop("first_done_mono") - started) * 1000
    return result


@dataclass
class Stat:
    median: float
    low: float
    high: float
    n: int

    def fmt(self, digits: int = 1) -> str:
        return f"{self.median:.{digits}f} ({self.low:.{digits}f}-{self.high:.{digits}f})"


def stat(values: list[float]) -> Stat:
    return Stat(statistics.median(values), min(values), max(values), len(values))


@dataclass
class Samples:
    variant: Variant
    runs: list[dict] = field(default_factory=list)

    def values(self, name: str) -> list[float]:
        return [run[name] for run in self.runs if isinstance(run.get(name), (int, float))]

    def stat(self, name: str) -> Stat | None:
        values = self.values(name)
        return stat(values) if values else None

    def median(self, name: str) -> float | None:
        values = self.values(name)
        return statistics.median(values) if values else None

    @property
    def last_result(self):
        return self.runs[-1].get("first_result") if self.runs else None


def measure(
    variants: list[Variant], runs: int, progress: Callable[[str], None] | None = None
) -> dict[str, Samples]:
    """``runs`` rounds; each round runs every variant once, in a shuffled order."""
    samples = {variant.key: Samples(variant) for variant in variants}
    shuffler = random.Random(SHUFFLE_SEED)
    with tempfile.TemporaryDirectory(prefix="leanlambda-bench-") as tmp:
        work = Path(tmp)
        for round_no in range(runs):
            order = list(variants)
            shuffler.shuffle(order)
            for variant in order:
                if variant.prepare is not None:
                    variant.prepare()
                samples[variant.key].runs.append(run_child(variant, work))
            if progress:
                progress(f"round {round_no + 1}/{runs}")
    return samples
