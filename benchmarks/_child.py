"""The measuring child: one fresh process imports one handler module, invokes it twice, reports figures.

Run by benchmarks.harness as ``python -S -s -B -P _child.py key=value ...``. It imports only what a plain
interpreter start imports (``site``, without running it: no .pth file of the development venv runs) before
the clock starts, so the floor is an interpreter's, not this harness's. Arguments (all ``key=value``):

    module=pkg.handler  attr=lambda_handler  paths=SRC[:SRC2]  site=SITE_PACKAGES  out=RESULT_FILE
    preload=json,logging (imported before the clock: what Lambda's runtime bootstrap already imported)
    event=EVENT_FILE (invoke twice: first = cold path, second = warm; absent: init only)
    memory=MB  function=NAME  timeout=SECONDS (the context object's attributes)

With ``LEANLAMBDA_BENCH_UPBIT_URL`` set (a function using Upbit), ``<package>.upbit.API_URL`` is pointed at
that URL (the parent's loopback replay server) after init is timed and before the first invocation.

Init is perf_counter (wall) and process_time (CPU = user + system, what getrusage reports) around
importlib.import_module; peak RSS (KiB) after init and after the
first invocation, read as VmHWM from /proc/self/status: getrusage's ru_maxrss survives exec on Linux, so
a child spawned by a big parent would report the parent's peak. The result is one JSON object written to
``out``.
"""

import os  # imported by site anyway
import site  # noqa: F401  (what a normal start imports: os, io, stat...; -S keeps its main() from running)
import sys
import time

ARGS = dict(arg.partition("=")[::2] for arg in sys.argv[1:])


class LambdaContext:
    """The attributes of Lambda's context object that handlers use."""

    def __init__(self, function_name, memory_mb, timeout_s=60):
        self._deadline = time.monotonic() + timeout_s
        self.function_name = function_name
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = f"00000000-0000-4000-8000-{int(time.monotonic() * 1000) % 10**12:012d}"
        self.invoked_function_arn = "arn:aws:lambda:ap-northeast-2:123456789012:function:" + function_name
        self.function_version = "$LATEST"
        self.log_group_name = "/aws/lambda/" + function_name
        self.log_stream_name = "bench"

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def peak_rss_kib():
    """This process image's peak RSS: VmHWM (ru_maxrss where there is no /proc).

    The toolkit's reader is leanlambda.emulator.runtime_api.peak_rss_kb; this copy exists because the
    child runs under the runtime's Python with nothing but the standard library (leanlambda is not
    importable here, and importing it would count in the figures being measured)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class PointUpbitAt:
    """A one-shot import hook: sets ``API_URL`` of module ``name`` to ``url`` right after it is executed.

    A lazy function imports its upbit module during the first invocation; importing it here, before that
    invocation, would take its import out of the measured cold path. The hook stays first on
    ``sys.meta_path`` only until that import happens.
    """

    def __init__(self, name, url):
        self.name, self.url = name, url

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                break
        else:
            return None
        run_module, url = spec.loader.exec_module, self.url

        def exec_module(module):
            run_module(module)
            module.API_URL = url

        spec.loader.exec_module = exec_module
        return spec


def point_upbit_at(package, url):
    """Upbit's URL in ``<package>.upbit`` becomes ``url``, now (eager variant) or when it is imported."""
    name = package + ".upbit"
    if name in sys.modules:
        sys.modules[name].API_URL = url
    else:
        sys.meta_path.insert(0, PointUpbitAt(name, url))


def main():
    for name in filter(None, ARGS.get("preload", "").split(",")):
        __import__(name)
    sys.path[0:0] = [path for path in ARGS["paths"].split(":") if path]
    sys.path.append(ARGS["site"])
    import importlib

    wall0, cpu0 = time.perf_counter(), time.process_time()
    module = importlib.import_module(ARGS["module"])
    wall1, cpu1 = time.perf_counter(), time.process_time()
    init_done_mono = time.monotonic()
    upbit_url = os.environ.get("LEANLAMBDA_BENCH_UPBIT_URL")
    if upbit_url:
        point_upbit_at(ARGS["module"].rpartition(".")[0], upbit_url)

    result = {
        "init_ms": (wall1 - wall0) * 1000,
        "init_cpu_ms": (cpu1 - cpu0) * 1000,
        "rss_init_kib": peak_rss_kib(),
        "init_done_mono": init_done_mono,
    }
    if ARGS.get("event"):
        import json

        with open(ARGS["event"], encoding="utf-8") as handle:
            event = json.load(handle)
        handler = getattr(module, ARGS.get("attr", "lambda_handler"))
        memory = int(ARGS.get("memory", "128"))
        name = ARGS.get("function", "bench")
        timeout = int(ARGS.get("timeout", "60"))

        wall2, cpu2 = time.perf_counter(), time.process_time()
        first = handler(event, LambdaContext(name, memory, timeout))
        wall3, cpu3 = time.perf_counter(), time.process_time()
        result["first_done_mono"] = time.monotonic()
        result["rss_first_kib"] = peak_rss_kib()
        second = handler(event, LambdaContext(name, memory, timeout))
        wall4, cpu4 = time.perf_counter(), time.process_time()
        result.update(
            first_ms=(wall3 - wall2) * 1000,
            first_cpu_ms=(cpu3 - cpu2) * 1000,
            cold_ms=(wall3 - wall2 + wall1 - wall0) * 1000,
            cold_cpu_ms=(cpu3 - cpu2 + cpu1 - cpu0) * 1000,
            warm_ms=(wall4 - wall3) * 1000,
            warm_cpu_ms=(cpu4 - cpu3) * 1000,
            first_result=first,
            second_result=second,
        )
    import json

    with open(ARGS["out"], "w", encoding="utf-8") as handle:
        json.dump(result, handle, default=repr)


main()
