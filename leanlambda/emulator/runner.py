"""Start the emulated runtime, enforce Lambda's limits and collect what happened.

The child reports over a private pipe (JSON lines); its stdout and stderr go to a file the caller
prints as the function's logs. Max Memory Used is the child's own peak RSS (VmHWM), reported by the
child and polled from /proc while it runs. wait4's ru_maxrss is only the fallback: on Linux a child
made by fork/vfork carries the parent's peak RSS across exec, so a 200 MB toolkit process would make
every function look 200 MB big.
"""

from __future__ import annotations

import json
import math
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanlambda.emulator.runtime import FAKE_ACCOUNT_ID, build_runtime_dir, lambda_environment, layer_paths
from leanlambda.function import FunctionDir
from leanlambda.packaging import stage_source

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
INIT_LIMIT_S = 10.0  # Lambda gives the init phase of an on-demand function 10 s
POLL_S = 0.05
PIPE_CHUNK = 65536
KB_PER_MB = 1024
MODE_INVOKE = "invoke"
MODE_INIT = "init"

STATUS_SUCCESS = "success"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"


@dataclass
class Outcome:
    """One emulated run: timings in ms, peak memory in MB, the result or a Lambda-shaped error."""

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
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_SUCCESS and self.error is None


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


def _config(spec: RunSpec, workdir: Path, task_root: Path, report_fd: int, request_id: str) -> dict[str, Any]:
    function = spec.function
    region = function.region
    memory = spec.memory_mb or function.memory_mb
    runtime_dir = build_runtime_dir(workdir / "runtime")
    event_file = workdir / "event.json"
    event_file.write_text(json.dumps(spec.event if spec.event is not None else {}), encoding="utf-8")
    return {
        "mode": spec.mode,
        "module": function.module,
        "handler_attr": function.handler_attr,
        "path_before": [str(task_root), *layer_paths(spec.layers, workdir / "layers")],
        "path_after": [str(runtime_dir)],
        "report_fd": report_fd,
        "event_file": str(event_file),
        "function_name": function.name,
        "function_arn": f"arn:aws:lambda:{region}:{FAKE_ACCOUNT_ID}:function:{function.name}",
        "memory_mb": memory,
        "timeout_s": float(spec.timeout_s or function.timeout_s),
        "request_id": request_id,
        "log_group_name": f"/aws/lambda/{function.name}",
        "log_stream_name": "2025/01/01/[$LATEST]leanlambda",
        "log_format": function.log_format,
    }


def _read_messages(buffer: bytearray) -> list[dict[str, Any]]:
    messages = []
    while b"\n" in buffer:
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            messages.append(message)
    return messages


def _point_at_source(outcome: Outcome, task_root: Path, src: Path) -> None:
    """Tracebacks name the staged copy; show the developer's own files instead."""
    staged, real = str(task_root), str(src.resolve())
    outcome.output = outcome.output.replace(staged, real)
    if outcome.error and isinstance(outcome.error.get("stackTrace"), list):
        outcome.error["stackTrace"] = [line.replace(staged, real) for line in outcome.error["stackTrace"]]


def _polled_peak_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _apply(outcome: Outcome, message: dict[str, Any]) -> None:
    peak = message.get("peak_rss_kb")
    if isinstance(peak, int):
        outcome.extra["peak_kb"] = max(outcome.extra.get("peak_kb", 0), peak)
    if message.get("event") == MODE_INIT:
        outcome.init_ms = float(message.get("duration_ms") or 0.0)
    else:
        outcome.duration_ms = float(message.get("duration_ms") or 0.0)
        outcome.result_json = message.get("result")
    if message.get("error"):
        outcome.error = message["error"]
        outcome.status = STATUS_ERROR


def run(spec: RunSpec) -> Outcome:
    """Run the function once in a fresh process and return its Outcome (never raises for its faults)."""
    function = spec.function
    request_id = str(uuid.uuid4())
    memory = spec.memory_mb or function.memory_mb
    timeout_s = float(spec.timeout_s or function.timeout_s)
    outcome = Outcome(request_id=request_id, memory_mb=memory)
    with tempfile.TemporaryDirectory(prefix="leanlambda-run-") as tmp:
        workdir = Path(tmp)
        read_fd, write_fd = os.pipe()
        # What ships, as Lambda extracts it to /var/task: no __pycache__, so the init phase compiles the
        # function's modules as it does on Lambda (-B: and writes no bytecode back).
        task_root = stage_source(function.src, workdir / "task")
        try:
            config = _config(spec, workdir, task_root, write_fd, request_id)
            config_file = workdir / "config.json"
            config_file.write_text(json.dumps(config), encoding="utf-8")
            env = lambda_environment(
                function.name,
                memory,
                function.region,
                function.runtime,
                function.log_format,
                task_root,
                workdir,
            )
            env.update(function.environment())
            env.update(spec.env)
            output_path = workdir / "output.log"
            with output_path.open("wb") as output:
                process = subprocess.Popen(
                    [sys.executable, "-I", "-S", "-B", "-u", str(BOOTSTRAP), str(config_file)],
                    cwd=task_root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    pass_fds=(write_fd,),
                    start_new_session=True,
                )
            os.close(write_fd)
            write_fd = -1
            _supervise(process, read_fd, outcome, spec.mode, timeout_s)
            outcome.output = output_path.read_bytes().decode("utf-8", errors="replace")
            _point_at_source(outcome, task_root, function.src)
        finally:
            os.close(read_fd)
            if write_fd >= 0:
                os.close(write_fd)
    return outcome


def _supervise(
    process: subprocess.Popen, read_fd: int, outcome: Outcome, mode: str, timeout_s: float
) -> None:
    """Read the child's report until it exits; kill it when init or the invoke outlives its limit."""
    buffer = bytearray()
    started = time.monotonic()
    deadline = started + INIT_LIMIT_S
    invoking = eof = False
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:  # the child is gone: take what it wrote before it went
            _drain(read_fd, buffer, outcome)
            break
        outcome.extra["peak_kb"] = max(outcome.extra.get("peak_kb", 0), _polled_peak_kb(process.pid))
        if eof:
            time.sleep(POLL_S / 5)
        elif select.select([read_fd], [], [], POLL_S)[0]:
            chunk = os.read(read_fd, PIPE_CHUNK)
            buffer.extend(chunk)
            eof = not chunk
            for message in _read_messages(buffer):
                _apply(outcome, message)
                if message.get("event") == MODE_INIT and not message.get("error") and mode == MODE_INVOKE:
                    invoking = True
                    deadline = time.monotonic() + timeout_s
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            _, status, usage = os.wait4(process.pid, 0)
            _timed_out(outcome, invoking, timeout_s, started)
            break
    process.returncode = os.waitstatus_to_exitcode(status)
    outcome.exit_status = process.returncode
    peak_kb = outcome.extra.get("peak_kb") or usage.ru_maxrss  # ru_maxrss: KB on Linux
    outcome.max_memory_mb = math.ceil(peak_kb / KB_PER_MB)
    _check_exit(outcome, mode)


def _drain(read_fd: int, buffer: bytearray, outcome: Outcome) -> None:
    while select.select([read_fd], [], [], 0)[0]:
        chunk = os.read(read_fd, PIPE_CHUNK)
        if not chunk:
            break
        buffer.extend(chunk)
    for message in _read_messages(buffer):
        _apply(outcome, message)


def _timed_out(outcome: Outcome, invoking: bool, timeout_s: float, started: float) -> None:
    outcome.status = STATUS_TIMEOUT
    if invoking:
        outcome.duration_ms = timeout_s * 1000
        message = f"RequestId: {outcome.request_id} Error: Task timed out after {timeout_s:.2f} seconds"
        outcome.error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
    else:
        outcome.init_ms = (time.monotonic() - started) * 1000
        message = f"Init phase timed out after {INIT_LIMIT_S:.2f} seconds"
        outcome.error = {"errorType": "Runtime.InitTimeout", "errorMessage": message}


def _check_exit(outcome: Outcome, mode: str) -> None:
    """A child that died without reporting (os._exit, a signal, a crash) gets Lambda's exit error."""
    if outcome.status == STATUS_TIMEOUT or outcome.error is not None:
        return
    finished = outcome.duration_ms is not None if mode == MODE_INVOKE else outcome.init_ms is not None
    if finished:
        return
    outcome.status = STATUS_ERROR
    code = outcome.exit_status
    what = f"signal: {-code}" if code is not None and code < 0 else f"exit status {code}"
    outcome.error = {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {outcome.request_id} Error: Runtime exited with error: {what}",
    }
