"""leanlambda's stand-in runtime client, used only where awslambdaric cannot be had for the Python.

Run as `python -S -B -u bootstrap.py module.handler` with AWS_LAMBDA_RUNTIME_API set. Standard library
only and nothing from leanlambda. It speaks the same Runtime API as awslambdaric and answers with the
same error documents (errorMessage, errorType, requestId, stackTrace), so the runner treats both alike.
"""

from __future__ import annotations  # annotations stay text: nothing is imported for them at run time

import http.client
import importlib
import json
import logging
import os
import sys
import time
import traceback

TYPE_CHECKING = False  # typing is imported for the type checker only (its import would count in init)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Headers = dict[str, str]
    ErrorDocument = dict[str, Any]
    Handler = Callable[[Any, "LambdaContext"], Any]

API = "/2018-06-01/runtime"
TEXT_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"
_REQUEST_ID = ""


class LambdaContext:
    """The attributes and method Lambda's Python runtime gives a handler's `context`."""

    def __init__(self, headers: Headers) -> None:
        env = os.environ
        self.aws_request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
        self.invoked_function_arn = headers.get("Lambda-Runtime-Invoked-Function-Arn")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")  # a str on Lambda too
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.client_context = _json_header(headers, "Lambda-Runtime-Client-Context")
        self.identity = _json_header(headers, "Lambda-Runtime-Cognito-Identity")
        self._deadline_ms = int(headers["Lambda-Runtime-Deadline-Ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _json_header(headers: Headers, name: str) -> Any:
    value = headers.get(name)
    return json.loads(value) if value else None


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _REQUEST_ID
        return True


class _JsonFormatter(logging.Formatter):
    """The shape of Lambda's JSON application logs (LoggingConfig LogFormat: JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": _REQUEST_ID,
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["errorType"] = record.exc_info[0].__name__
            entry["errorMessage"] = str(record.exc_info[1])
            entry["stackTrace"] = traceback.format_exception(*record.exc_info)
        return json.dumps(entry, default=str)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON":
        handler.setFormatter(_JsonFormatter())
        root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper())
    else:
        formatter = logging.Formatter(TEXT_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root.addHandler(handler)


def _call(
    method: str, path: str, body: bytes | None = None, headers: Headers | None = None
) -> tuple[bytes, Headers]:
    connection = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
    connection.request(method, API + path, body, headers or {})
    response = connection.getresponse()
    return response.read(), dict(response.getheaders())


def _error(
    message: str, error_type: str, exc: BaseException | None = None, request_id: str = ""
) -> ErrorDocument:
    trace: list[str] = []
    if exc is not None:  # the function's frames only, as awslambdaric trims its own
        frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__]
        trace = traceback.format_list(frames)
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace}


def _post_error(path: str, error: ErrorDocument) -> None:
    _call(
        "POST", path, json.dumps(error).encode(), {"Lambda-Runtime-Function-Error-Type": error["errorType"]}
    )


def _load(handler_name: str) -> tuple[Handler | None, ErrorDocument | None]:
    module_name, _, attr = handler_name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return None, _error(f"Unable to import module '{module_name}': {exc}", "Runtime.ImportModuleError")
    except SyntaxError as exc:
        return None, _error(f"Syntax error in module '{module_name}': {exc}", "Runtime.UserCodeSyntaxError")
    except Exception as exc:
        return None, _error(str(exc), type(exc).__name__, exc)
    handler = getattr(module, attr, None)
    if handler is None:
        return None, _error(f"Handler '{attr}' missing on module '{module_name}'", "Runtime.HandlerNotFound")
    return handler, None


def _invoke(handler: Handler, body: bytes, headers: Headers) -> tuple[bytes | None, ErrorDocument | None]:
    request_id = headers.get("Lambda-Runtime-Aws-Request-Id", "")
    try:
        result = handler(json.loads(body), LambdaContext(headers))
    except Exception as exc:
        return None, _error(str(exc), type(exc).__name__, exc, request_id)
    try:
        return json.dumps(result).encode(), None
    except (TypeError, ValueError) as exc:
        return None, _error(f"Unable to marshal response: {exc}", "Runtime.MarshalError", None, request_id)


def main() -> None:
    global _REQUEST_ID
    sys.path[:] = [p for p in sys.path if p != os.path.dirname(os.path.abspath(__file__))]
    _configure_logging()
    handler, error = _load(sys.argv[1])
    if error is not None:
        print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", flush=True)
        _post_error("/init/error", error)
        sys.exit(1)
    assert handler is not None  # _load gives a handler or an error document
    while True:
        body, headers = _call("GET", "/invocation/next")
        _REQUEST_ID = headers.get("Lambda-Runtime-Aws-Request-Id", "")
        os.environ["_X_AMZN_TRACE_ID"] = headers.get("Lambda-Runtime-Trace-Id", "")
        result, error = _invoke(handler, body, headers)
        if error is not None:
            print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", flush=True)
            _post_error(f"/invocation/{_REQUEST_ID}/error", error)
        else:
            _call("POST", f"/invocation/{_REQUEST_ID}/response", result)


if __name__ == "__main__":
    main()
