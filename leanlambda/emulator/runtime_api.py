"""Lambda's Runtime API on a loopback port: the interface a runtime client (awslambdaric) polls.

`GET /2018-06-01/runtime/invocation/next` hands out one queued event with every header Lambda sends;
`.../{id}/response`, `.../{id}/error` and `/runtime/init/error` take the outcome back. The first `next`
marks the end of INIT, as on Lambda, and calls `on_init_done` (where the CPU quota starts).
"""

from __future__ import annotations

import json
import queue
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from leanlambda.limits import SYNC_RESPONSE_LIMIT_BYTES

LOOPBACK = "127.0.0.1"
PREFIX = "/2018-06-01/runtime"
NEXT_PATH = f"{PREFIX}/invocation/next"
INIT_ERROR_PATH = f"{PREFIX}/init/error"
INVOCATION_PREFIX = f"{PREFIX}/invocation/"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
QUEUE_POLL_S = 0.1
READ_CHUNK = 1 << 20
# What Lambda's Invoke API answers when the response is over the synchronous payload limit.
RESPONSE_TOO_LARGE = "Function.ResponseSizeTooLarge"


def trace_id() -> str:
    """An X-Ray trace header as Lambda passes it (awslambdaric puts it in _X_AMZN_TRACE_ID)."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0;Lineage=1:{secrets.token_hex(4)}:0"


@dataclass
class Invocation:
    """One event's round trip: handed out by `next`, finished by a response, an error or the runner."""

    event: bytes
    timeout_s: float
    client_context: dict[str, Any] | None = None
    cognito_identity: dict[str, Any] | None = None
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float | None = None  # monotonic, when `next` handed it out
    finished: float | None = None
    response: bytes | None = None
    error: dict[str, Any] | None = None
    peak_kb: int = 0  # the runtime's VmHWM when it answered
    log_start: int = 0  # offsets in the runtime's log file when the invocation began and ended
    log_end: int | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def duration_ms(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return (self.finished - self.started) * 1000

    def headers(self, function_arn: str) -> dict[str, str]:
        deadline_ms = int(time.time() * 1000 + self.timeout_s * 1000)
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": self.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": function_arn,
            "Lambda-Runtime-Trace-Id": trace_id(),
        }
        if self.client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(self.client_context)
        if self.cognito_identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(self.cognito_identity)
        return headers


def peak_rss_kb(pid: int | None) -> int:
    """A process's peak RSS (VmHWM) in KB, 0 when it is gone."""
    if pid is None:
        return 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class RuntimeApi:
    """The server, its queue of events and what the runtime reported back (thread-safe)."""

    def __init__(self, function_arn: str, on_init_done: Callable[[], None] | None = None) -> None:
        self.function_arn = function_arn
        self.on_init_done = on_init_done
        self.pid: int | None = None  # the runtime's process, to read its memory
        self.log_size: Callable[[], int] = lambda: 0
        self.init_done_at: float | None = None
        self.init_error: dict[str, Any] | None = None
        self.changed = threading.Event()  # set whenever the runtime reported something
        self._pending: queue.Queue[Invocation] = queue.Queue()
        self._by_id: dict[str, Invocation] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._server = _QuietServer((LOOPBACK, 0), _handler_class(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-api", daemon=True)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self._server.server_address[1]}"

    def __enter__(self) -> RuntimeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()

    def submit(self, invocation: Invocation) -> Invocation:
        with self._lock:
            self._by_id[invocation.request_id] = invocation
        self._pending.put(invocation)
        return invocation

    def withdraw(self) -> None:
        """Drop events no runtime has taken (the runtime died before asking for them)."""
        while True:
            try:
                self._pending.get_nowait()
            except queue.Empty:
                return

    # Called from the request handler threads.
    def next_invocation(self) -> Invocation | None:
        with self._lock:
            first = self.init_done_at is None
            if first:
                self.init_done_at = time.monotonic()
        if first:
            if self.on_init_done is not None:
                self.on_init_done()
            self.changed.set()
        while not self._closed.is_set():
            try:
                invocation = self._pending.get(timeout=QUEUE_POLL_S)
            except queue.Empty:
                continue
            invocation.log_start = self.log_size()
            invocation.started = time.monotonic()
            return invocation
        return None

    def finish(self, request_id: str, response: bytes | None, error: dict[str, Any] | None) -> bool:
        with self._lock:
            invocation = self._by_id.get(request_id)
        if invocation is None or invocation.done.is_set():
            return False
        invocation.finished = time.monotonic()
        invocation.peak_kb = peak_rss_kb(self.pid)
        invocation.log_end = self.log_size()
        invocation.response, invocation.error = response, error
        invocation.done.set()
        self.changed.set()
        return True

    def report_init_error(self, error: dict[str, Any]) -> None:
        self.init_error = error
        self.changed.set()


class _QuietServer(ThreadingHTTPServer):
    """A runtime killed mid-request (timeout, out of memory) is expected, not a server error to print."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _handler_class(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, and `Expect: 100-continue` for large bodies

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in two writes: with Nagle's algorithm the body of a reply on a
            # kept-alive connection would wait for the client's delayed ACK (40 ms), in every warm Duration.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the function's own logs are what the user reads."""

        def do_GET(self) -> None:
            if self.path != NEXT_PATH:
                self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": "unknown path", "errorType": "NotFound"})
                return
            invocation = api.next_invocation()
            if invocation is None:
                self._reply(HTTPStatus.GONE, {"errorMessage": "shutting down", "errorType": "Gone"})
                return
            self._reply(HTTPStatus.OK, invocation.event, invocation.headers(api.function_arn))

        def do_POST(self) -> None:
            body = self._body()
            if self.path == INIT_ERROR_PATH:
                api.report_init_error(_error_body(body, self.headers.get(ERROR_TYPE_HEADER)))
                self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})
                return
            request_id, _, kind = self.path[len(INVOCATION_PREFIX) :].partition("/")
            if not self.path.startswith(INVOCATION_PREFIX) or kind not in ("response", "error"):
                self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": "unknown path", "errorType": "NotFound"})
                return
            if kind == "error":
                known = api.finish(request_id, None, _error_body(body, self.headers.get(ERROR_TYPE_HEADER)))
            elif len(body) > SYNC_RESPONSE_LIMIT_BYTES:
                known = api.finish(request_id, None, _too_large(len(body)))
                if known:  # Lambda refuses the payload and the invocation fails
                    self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _too_large(len(body)))
                    return
            else:
                known = api.finish(request_id, body, None)
            if not known:
                message = f"invocation {request_id} is unknown or already answered"
                self._reply(
                    HTTPStatus.BAD_REQUEST, {"errorMessage": message, "errorType": "InvalidRequestID"}
                )
                return
            self._reply(HTTPStatus.ACCEPTED, {"status": "OK"})

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._chunked()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _chunked(self) -> bytes:
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()

        def _reply(
            self, status: HTTPStatus, body: bytes | dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            try:
                self.send_response(status)
                for key, value in (headers or {"Content-Type": "application/json"}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the runtime was killed while we answered
                self.close_connection = True

    return Handler


def _error_body(body: bytes, error_type: str | None) -> dict[str, Any]:
    """The runtime's error document; what Lambda's Invoke API returns for a function error."""
    try:
        error = json.loads(body) if body else {}
    except ValueError:
        error = {}
    if not isinstance(error, dict):
        error = {}
    if not error.get("errorType"):
        error["errorType"] = error_type or "Unhandled"
    error.setdefault("errorMessage", "")
    return error


def _too_large(size: int) -> dict[str, Any]:
    limit = SYNC_RESPONSE_LIMIT_BYTES
    return {
        "errorMessage": (
            f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({limit} bytes)."
        ),
        "errorType": RESPONSE_TOO_LARGE,
    }
