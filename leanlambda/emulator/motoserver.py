"""A moto server on a free loopback port for one run, reached through boto3's own AWS_ENDPOINT_URL."""

from __future__ import annotations

import contextlib
import logging
import urllib.request
from collections.abc import Iterator

LOOPBACK = "127.0.0.1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
RESET_PATH = "/moto-api/reset"
RESET_TIMEOUT_S = 10


@contextlib.contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    """Start moto in a thread, yield the env vars that point boto3 at it, stop it afterwards.

    moto keeps its backends per process, so the state is reset at start: each run begins empty.
    """
    from moto.server import ThreadedMotoServer

    request_log = logging.getLogger("werkzeug")  # one line per request on stderr otherwise
    previous_level = request_log.level
    request_log.setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        request = urllib.request.Request(endpoint + RESET_PATH, method="POST")  # noqa: S310  # nosec B310
        with urllib.request.urlopen(request, timeout=RESET_TIMEOUT_S):  # noqa: S310  # nosec B310 - loopback
            pass
        yield {"AWS_ENDPOINT_URL": endpoint, **FAKE_CREDENTIALS}
    finally:
        server.stop()
        request_log.setLevel(previous_level)
