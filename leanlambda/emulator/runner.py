"""Run a function as Lambda does: AWS's runtime client in a fresh process of the runtime's Python,
a Runtime API on loopback, INIT on a full CPU and the invoke phase held to memory / 1769 of one CPU.

Several events run in one process (one cold, then warm invocations), as in one execution environment;
a process that crashes, times out or runs out of memory is replaced by a fresh one (a new cold start)
for the events still to come. Max Memory Used is the runtime process's peak RSS (VmHWM), polled from
/proc while it runs and read again whenever it answers.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from leanlambda.emulator.cpu_quota import CpuQuota
from leanlambda.emulator.runtime import (
    FAKE_ACCOUNT_ID,
    build_runtime_dir,
    lambda_environment,
    layer_paths,
)
from leanlambda.emulator.runtime_api import Invocation, RuntimeApi, peak_rss_kb
from leanlambda.emulator.runtime_client import Client, Interpreter, choose_interpreter, runtime_client
from leanlambda.function import FunctionDir
from leanlambda.limits import FULL_VCPU_MEMORY_MB, INIT_BURST_MAX_S, cpu_share
from leanlambda.packaging import stage_source

INIT_LIMIT_S = float(INIT_BURST_MAX_S)  # Lambda gives the init phase of an on-demand function 10 s
POLL_S = 0.02
KB_PER_MB = 1024
MODE_INVOKE = "invoke"
MODE_INIT = "init"

STATUS_SUCCESS = "success"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"
OUT_OF_MEMORY = "Runtime.OutOfMemory"
IMPORT_MARKER = "leanlambda-import-ms:"  # written by timed_init.py


@dataclass
class Outcome:
    """One invocation: timings in ms, peak memory in MB, the result or Lambda's error document.

    The Outcome `run` returns is the first invocation's; `invocations` holds every one, itself first.
    `init_ms` is set on a cold invocation only.
    """

    request_id: str
    memory_mb: int
    status: str = STATUS_SUCCESS
    init_ms: float | None = None
    duration_ms: float | None = None
    max_memory_mb: int = 0
    result_json: str | None = None
    error: dict[str, Any] | None = None
    output: str = ""
    exit_status: int | None = None
    log_end: int | None = None  # the runtime's log size when it answered: where this invocation's output ends
    invocations: list[Outcome] = field(default_factory=list)
    import_ms: float | None = None  # MODE_INIT only: the handler module's own import, within init_ms
    python: str = ""  # 'Python 3.13.0 (/path): why this one'
    client: str = ""  # the runtime client that ran it
    cpu: str = ""  # the CPU quota, or why the CPU was not throttled

    @property
    def ok(self) -> bool:
        return self.status == STATUS_SUCCESS and self.error is None

    @property
    def answered_not_ok(self) -> bool:
        """The function returned normally with a result whose `ok` is false (its own failure report)."""
        try:
            result = json.loads(self.result_json or "null")
        except ValueError:
            return False
        return isinstance(result, dict) and result.get("ok") is False


@dataclass
class RunSpec:
    """What to run and with which settings (defaults come from the function's template/answers)."""

    function: FunctionDir
    event: Any = None
    layers: list[Path] = field(default_factory=list)
    memory_mb: int | None = None
    timeout_s: float | None = None
    env: dict[str, str] = field(default_factory=dict)
    mode: str = MODE_INVOKE
    events: list[Any] | None = None  # several events, one process: one cold then warm invocations
    throttle: bool = True  # hold the invoke phase to Lambda's CPU share, where the machine allows it
    client_context: dict[str, Any] | None = None
    cognito_identity: dict[str, Any] | None = None


@dataclass
class _Run:
    """What every execution environment of one run shares."""

    spec: RunSpec
    memory_mb: int
    timeout_s: float
    interpreter: Interpreter
    client: Client
    task_root: Path
    env: dict[str, str]
    workdir: Path
    cpu_notes: list[str] = field(default_factory=list)


def run(spec: RunSpec) -> Outcome:
    """Run the function (init, then each event) and return the first invocation's Outcome."""
    function = spec.function
    memory = spec.memory_mb or function.memory_mb
    timeout_s = float(spec.timeout_s or function.timeout_s)
    events = list(spec.events) if spec.events is not None else [spec.event if spec.event is not None else {}]
    with tempfile.TemporaryDirectory(prefix="leanlambda-run-") as tmp:
        workdir = Path(tmp)
        # What ships, as Lambda extracts it to /var/task: no __pycache__, so INIT compiles the function's
        # modules as it does on Lambda (-B: and writes no bytecode back).
        task_root = stage_source(function.src, workdir / "task")
        interpreter = choose_interpreter(function.runtime)
        client = runtime_client(interpreter, workdir)
        python_path = [
            str(task_root),
            *layer_paths(spec.layers, workdir / "layers", interpreter.minor),
            str(build_runtime_dir(workdir / "runtime")),
        ]
        if client.path is not None:
            python_path.append(str(client.path))
        env = lambda_environment(
            function.name, memory, function.region, function.runtime, function.log_format, task_root, workdir
        )
        env.update(function.environment())
        env.update(spec.env)
        env["PYTHONPATH"] = os.pathsep.join(python_path)
        env["_HANDLER"] = function.handler
        ctx = _Run(spec, memory, timeout_s, interpreter, client, task_root, env, workdir)
        outcomes: list[Outcome] = []
        environment = 0
        while True:
            environment += 1
            taken = _environment(ctx, events[len(outcomes) :], environment, outcomes)
            if spec.mode == MODE_INIT or len(outcomes) >= len(events) or not taken:
                break
    first = outcomes[0]
    first.invocations = outcomes
    for outcome in outcomes:
        outcome.python = f"Python {interpreter.version} ({interpreter.executable}): {interpreter.note}"
        outcome.client = client.note
        outcome.cpu = "; ".join(dict.fromkeys(ctx.cpu_notes))
        _point_at_source(outcome, task_root, function.src)
    return first


def _environment(ctx: _Run, events: list[Any], number: int, outcomes: list[Outcome]) -> int:
    """One execution environment: a fresh runtime process for as many events as it survives."""
    function = ctx.spec.function
    arn = f"arn:aws:lambda:{function.region}:{FAKE_ACCOUNT_ID}:function:{function.name}"
    quota, why = CpuQuota.create() if ctx.spec.throttle else (None, "not asked to throttle")
    throttle = None
    if quota is not None:

        def throttle() -> None:
            quota.throttle(ctx.memory_mb)

    log_path = ctx.workdir / f"env{number}.log"
    taken = 0
    try:
        with RuntimeApi(arn, on_init_done=throttle) as api, log_path.open("wb") as log:
            env = {**ctx.env, "AWS_LAMBDA_RUNTIME_API": api.address}
            started = time.monotonic()
            command = ctx.client.command(
                ctx.interpreter.executable, function.handler, ctx.spec.mode == MODE_INIT
            )
            process = subprocess.Popen(
                command,
                cwd=ctx.task_root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            ctx.cpu_notes.append(_join(quota, why, process.pid, ctx.memory_mb))
            api.pid = process.pid
            api.log_size = lambda: _size(log_path)
            watch = _Watch(process, api, ctx.memory_mb)
            try:
                taken = _serve(ctx, api, watch, events, started, log, log_path, outcomes)
            finally:
                watch.stop()
                api.withdraw()
    finally:
        if quota is not None:
            quota.close()
    return taken


def _join(quota: CpuQuota | None, why: str, pid: int, memory_mb: int) -> str:
    """Put the runtime process in the run's cgroup; the one line that says what the CPU will be."""
    if quota is None:
        return f"CPU not throttled: {why}"
    try:
        quota.add(pid)
    except OSError as error:
        return f"CPU not throttled: cannot join the cgroup ({error.strerror})"
    share = cpu_share(memory_mb)
    return f"CPU quota {share:.1%} of one CPU after INIT ({why}, memory / {FULL_VCPU_MEMORY_MB} MB)"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _Watch:
    """Follows the runtime process: alive or not, its peak memory, and whether it outgrew MemorySize."""

    def __init__(self, process: subprocess.Popen[bytes], api: RuntimeApi, memory_mb: int) -> None:
        self.process = process
        self.api = api
        self.limit_kb = memory_mb * KB_PER_MB
        self.peak_kb = 0
        self.out_of_memory = False
        self.exit_status: int | None = None

    def poll(self) -> bool:
        """True while the process runs; kills it when its peak RSS passes MemorySize."""
        if self.exit_status is not None:
            return False
        self.peak_kb = max(self.peak_kb, peak_rss_kb(self.process.pid))
        if self.peak_kb > self.limit_kb and not self.out_of_memory:
            self.out_of_memory = True
            self.kill()
            return False
        code = self.process.poll()
        if code is not None:
            self.exit_status = code
            return False
        return True

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.exit_status = self.process.wait()

    def stop(self) -> None:
        if self.exit_status is None:
            self.kill()

    @property
    def max_memory_mb(self) -> int:
        return math.ceil(self.peak_kb / KB_PER_MB)


def _serve(
    ctx: _Run,
    api: RuntimeApi,
    watch: _Watch,
    events: list[Any],
    started: float,
    log: BinaryIO,
    log_path: Path,
    outcomes: list[Outcome],
) -> int:
    """INIT, then the events in turn; returns how many events this environment answered (or failed)."""
    init_deadline = started + INIT_LIMIT_S
    while api.init_done_at is None and api.init_error is None and watch.poll():
        if time.monotonic() > init_deadline:
            watch.kill()
            break
        api.changed.wait(POLL_S)
        api.changed.clear()
    init_ms = ((api.init_done_at or time.monotonic()) - started) * 1000
    if api.init_done_at is None:  # INIT failed: the first event gets the init error, as on Lambda
        watch.stop()
        outcome = Outcome(request_id=Invocation(b"", ctx.timeout_s).request_id, memory_mb=ctx.memory_mb)
        outcome.init_ms = init_ms
        outcome.status = STATUS_ERROR
        outcome.exit_status = watch.exit_status
        outcome.error = api.init_error or _init_failure(watch, init_ms)
        if watch.out_of_memory:
            outcome.error = _out_of_memory(outcome.request_id)
        elif api.init_error is None and init_ms >= INIT_LIMIT_S * 1000:
            outcome.status = STATUS_TIMEOUT
        outcome.max_memory_mb = watch.max_memory_mb
        outcome.output = _read(log_path, 0, None)
        outcomes.append(outcome)
        return 1
    if ctx.spec.mode == MODE_INIT:
        watch.peak_kb = max(watch.peak_kb, peak_rss_kb(watch.process.pid))
        outcome = Outcome(request_id="", memory_mb=ctx.memory_mb, init_ms=init_ms)
        outcome.max_memory_mb = watch.max_memory_mb
        outcome.output, outcome.import_ms = _import_times(_read(log_path, 0, None))
        outcomes.append(outcome)
        return 1
    taken = 0
    for index, event in enumerate(events):
        invocation = Invocation(
            json.dumps(event).encode(),
            ctx.timeout_s,
            client_context=ctx.spec.client_context,
            cognito_identity=ctx.spec.cognito_identity,
        )
        api.submit(invocation)
        outcome = _await(ctx, api, watch, invocation)
        outcome.init_ms = init_ms if index == 0 else None
        log.flush()
        start = 0 if index == 0 else invocation.log_start
        outcome.output = _read(log_path, start, outcome.log_end)
        outcomes.append(outcome)
        taken += 1
        if not watch.poll():  # the environment is gone; the next event starts a new one
            break
    return taken


def _await(ctx: _Run, api: RuntimeApi, watch: _Watch, invocation: Invocation) -> Outcome:
    outcome = Outcome(request_id=invocation.request_id, memory_mb=ctx.memory_mb)
    timed_out = False
    while not invocation.done.is_set():
        if not watch.poll():
            break
        if invocation.started is not None and time.monotonic() > invocation.started + ctx.timeout_s:
            watch.kill()
            timed_out = True
            break
        invocation.done.wait(POLL_S)
    if invocation.done.is_set():
        watch.peak_kb = max(watch.peak_kb, invocation.peak_kb)
        outcome.duration_ms = invocation.duration_ms
        outcome.result_json = invocation.response.decode("utf-8") if invocation.response is not None else None
        if invocation.error is not None:
            outcome.error = invocation.error
            outcome.status = STATUS_ERROR
        outcome.log_end = invocation.log_end
    elif timed_out:
        outcome.status = STATUS_TIMEOUT
        outcome.duration_ms = ctx.timeout_s * 1000
        message = (
            f"RequestId: {invocation.request_id} Error: Task timed out after {ctx.timeout_s:.2f} seconds"
        )
        outcome.error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
    else:
        outcome.status = STATUS_ERROR
        ended = time.monotonic()
        begun = invocation.started if invocation.started is not None else ended
        outcome.duration_ms = (ended - begun) * 1000
        if watch.out_of_memory:
            outcome.error = _out_of_memory(invocation.request_id)
        else:
            outcome.error = _exit_error(invocation.request_id, watch.exit_status)
    outcome.exit_status = watch.exit_status
    outcome.max_memory_mb = (
        min(watch.max_memory_mb, ctx.memory_mb) if watch.out_of_memory else watch.max_memory_mb
    )
    return outcome


def _exit_error(request_id: str, code: int | None) -> dict[str, Any]:
    what = f"signal: {-code}" if code is not None and code < 0 else f"exit status {code}"
    return {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: {what}",
    }


def _out_of_memory(request_id: str) -> dict[str, Any]:
    return {
        "errorType": OUT_OF_MEMORY,
        "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
    }


def _init_failure(watch: _Watch, init_ms: float) -> dict[str, Any]:
    if watch.exit_status is None or init_ms >= INIT_LIMIT_S * 1000:
        return {
            "errorType": "Runtime.InitTimeout",
            "errorMessage": f"Init phase timed out after {INIT_LIMIT_S:.2f} seconds",
        }
    code = watch.exit_status
    what = f"signal: {-code}" if code < 0 else f"exit status {code}"
    return {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited during init: {what}"}


def _import_times(output: str) -> tuple[str, float | None]:
    """(the output without timed_init's line, the handler module's import in ms, None when not timed)."""
    kept, found = [], None
    for line in output.splitlines(keepends=True):
        if line.startswith(IMPORT_MARKER):
            found = float(line[len(IMPORT_MARKER) :])
        else:
            kept.append(line)
    return "".join(kept), found


def _read(path: Path, start: int, end: int | None) -> str:
    with path.open("rb") as handle:
        handle.seek(start)
        data = handle.read() if end is None else handle.read(max(0, end - start))
    return data.decode("utf-8", errors="replace")


def _point_at_source(outcome: Outcome, task_root: Path, src: Path) -> None:
    """Tracebacks name the staged copy; show the developer's own files instead."""
    staged, real = str(task_root), str(src.resolve())
    outcome.output = outcome.output.replace(staged, real)
    if outcome.error and isinstance(outcome.error.get("stackTrace"), list):
        outcome.error["stackTrace"] = [line.replace(staged, real) for line in outcome.error["stackTrace"]]
