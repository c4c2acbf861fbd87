"""The emulated Lambda runtime: one fresh process, an init phase, then at most one invocation.

Run as `python -I -S -u bootstrap.py CONFIG_JSON_FILE`. Standard library only, and nothing from
leanlambda, so the function sees the interpreter Lambda would give it. Results go to the report pipe
(fd in the config) as JSON lines, never to stdout, which belongs to the function (its logs, EMF lines,
or any garbage it prints).
"""

import json
import logging
import os
import sys
import time
import traceback

INIT_EVENT = "init"
INVOKE_EVENT = "invoke"
TEXT_LOG_FORMAT = "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s"


class LambdaContext:
    """The attributes and method Lambda's Python runtime gives a handler's `context`."""

    def __init__(self, config, deadline):
        self.function_name = config["function_name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = config["function_arn"]
        self.memory_limit_in_mb = str(config["memory_mb"])  # a str on Lambda too
        self.aws_request_id = config["request_id"]
        self.log_group_name = config["log_group_name"]
        self.log_stream_name = config["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class _RequestIdFilter(logging.Filter):
    def __init__(self, request_id):
        super().__init__()
        self.request_id = request_id

    def filter(self, record):
        record.aws_request_id = self.request_id
        return True


class _JsonFormatter(logging.Formatter):
    """The shape of Lambda's JSON application logs (LoggingConfig LogFormat: JSON)."""

    def __init__(self, request_id):
        super().__init__()
        self.request_id = request_id

    def format(self, record):
        entry = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": self.request_id,
        }
        if record.exc_info:
            entry["errorType"] = record.exc_info[0].__name__
            entry["errorMessage"] = str(record.exc_info[1])
            entry["stackTrace"] = traceback.format_exception(*record.exc_info)
        return json.dumps(entry, default=str)


def _configure_logging(config):
    """Install the root handler Lambda's runtime installs, in the configured format and level."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_RequestIdFilter(config["request_id"]))
    root = logging.getLogger()
    if config["log_format"] == "JSON":
        handler.setFormatter(_JsonFormatter(config["request_id"]))
        root.setLevel(os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO").upper())
    else:
        formatter = logging.Formatter(TEXT_LOG_FORMAT, "%Y-%m-%dT%H:%M:%S")
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
    root.addHandler(handler)


def _error(error_type, message, exc=None):
    error = {"errorType": error_type, "errorMessage": message}
    if exc is not None:  # the function's frames only, like Lambda's stackTrace
        frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__]
        error["stackTrace"] = traceback.format_list(frames)
    return error


def peak_rss_kb():
    """This process's own peak RSS (VmHWM). ru_maxrss would include the parent's peak on Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KB elsewhere


class _Reporter:
    def __init__(self, fd):
        self._stream = os.fdopen(fd, "w", encoding="utf-8", closefd=True)

    def send(self, **message):
        message["peak_rss_kb"] = peak_rss_kb()
        self._stream.write(json.dumps(message, default=str) + "\n")
        self._stream.flush()


def _init(config):
    """Import the handler's module (the init phase); return (handler or None, ms, error or None)."""
    import importlib

    module_name = config["module"]
    started = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
    except SystemExit as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return None, elapsed, _error("Runtime.ExitError", f"Runtime exited during init: {exc.code!r}")
    except Exception as exc:
        elapsed = (time.perf_counter() - started) * 1000
        message = f"Unable to import module '{module_name}': {exc}"
        return None, elapsed, _error("Runtime.ImportModuleError", message, exc)
    elapsed = (time.perf_counter() - started) * 1000
    handler = getattr(module, config["handler_attr"], None)
    if not callable(handler):
        message = f"Handler '{config['handler_attr']}' missing on module '{module_name}'"
        return None, elapsed, _error("Runtime.HandlerNotFound", message)
    return handler, elapsed, None


def _invoke(handler, event, config):
    """Call the handler once; return (result JSON text or None, ms, error or None)."""
    started_monotonic = time.monotonic()
    context = LambdaContext(config, started_monotonic + config["timeout_s"])
    started = time.perf_counter()
    try:
        result = handler(event, context)
    except SystemExit as exc:
        elapsed = (time.perf_counter() - started) * 1000
        code = exc.code if isinstance(exc.code, int) else 1
        message = f"RequestId: {config['request_id']} Error: Runtime exited with error: exit status {code}"
        return None, elapsed, _error("Runtime.ExitError", message)
    except Exception as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return None, elapsed, _error(type(exc).__name__, str(exc), exc)
    elapsed = (time.perf_counter() - started) * 1000
    try:
        return json.dumps(result), elapsed, None
    except (TypeError, ValueError) as exc:
        return None, elapsed, _error("Runtime.MarshalError", f"Unable to marshal response: {exc}")


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    here = os.path.dirname(os.path.abspath(__file__))
    interpreter = [p for p in sys.path if p and p != here and "site-packages" not in p]
    sys.path[:] = config["path_before"] + interpreter + config["path_after"]
    reporter = _Reporter(config["report_fd"])
    _configure_logging(config)
    handler, init_ms, error = _init(config)
    reporter.send(event=INIT_EVENT, duration_ms=init_ms, error=error)
    if error is not None or config["mode"] != INVOKE_EVENT:
        return
    with open(config["event_file"], encoding="utf-8") as handle:
        event = json.load(handle)
    result, duration_ms, error = _invoke(handler, event, config)
    sys.stdout.flush()
    sys.stderr.flush()
    reporter.send(event=INVOKE_EVENT, duration_ms=duration_ms, result=result, error=error)


if __name__ == "__main__":
    main()
