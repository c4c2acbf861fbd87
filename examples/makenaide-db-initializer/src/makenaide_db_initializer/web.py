"""Outbound HTTP with a total deadline per request, enforced by the clock.

requests' ``timeout=(connect, read)`` bounds each socket operation, not the request: a server that
sends one byte a second keeps a request alive for as long as it likes. ``fetch`` bounds the whole:
once connected, a timer shuts the socket down at the deadline, which ends a read blocked in the
headers or the body at once, and a request still running then fails as RequestTimedOut. Use it for
any HTTP a step makes, with ``total_s`` from the run's Deadline (``budget_s``). requests (from the
layer) is imported on first use.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from typing import Any

    from .pipeline import Deadline

_WATCH: contextvars.ContextVar[tuple[float, list[threading.Timer]] | None] = contextvars.ContextVar(
    "watch", default=None
)
"""The running request's deadline (monotonic time) and the timers that enforce it."""
_ADAPTER: list[type] = []


class RequestTimedOut(Exception):
    """The request did not finish within its total deadline."""


def budget_s(deadline: Deadline | None, cap_s: float) -> float:
    """The total time one request may take: ``cap_s``, or less when the invocation has less left."""
    return cap_s if deadline is None else min(cap_s, deadline.remaining_ms() / 1000)


def fetch(
    session: Any, method: str, url: str, total_s: float, connect_s: float, read_s: float, **options: Any
) -> Any:
    """``session.request(...)`` (a requests Session), body read, within ``total_s`` seconds in all."""
    import requests

    if total_s <= 0:
        raise RequestTimedOut(f"{method} {url}: no time left")
    give_up_at = time.monotonic() + total_s
    if not isinstance(session.get_adapter(url), _adapter()):
        session.mount(url.split("://", 1)[0] + "://", _adapter()())
    timers: list[threading.Timer] = []
    token = _WATCH.set((give_up_at, timers))
    try:
        timeout = (min(connect_s, total_s), min(read_s, total_s))
        response = session.request(method, url, timeout=timeout, **options)
    except requests.RequestException:
        if time.monotonic() < give_up_at:
            raise
        response = None
    finally:
        _WATCH.reset(token)
        for timer in timers:
            timer.cancel()
    if response is None or time.monotonic() >= give_up_at:  # a hung-up body may look complete
        raise RequestTimedOut(f"{method} {url}: not finished within {total_s:.1f} s")
    return response


def _hang_up(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _adapter() -> type:
    """requests' HTTPAdapter whose connections start the deadline's timer when they send a request."""
    if _ADAPTER:
        return _ADAPTER[0]
    from requests.adapters import HTTPAdapter
    from urllib3 import connection, connectionpool

    def watched(base: type) -> type:
        class Watched(base):  # type: ignore[misc,valid-type]
            def getresponse(self) -> Any:
                watch = _WATCH.get()
                if watch is not None and self.sock is not None:
                    timer = threading.Timer(max(0.0, watch[0] - time.monotonic()), _hang_up, (self.sock,))
                    timer.daemon = True
                    timer.start()
                    watch[1].append(timer)
                return super().getresponse()

        return Watched

    pools = {
        "http": type(
            "Pool",
            (connectionpool.HTTPConnectionPool,),
            {"ConnectionCls": watched(connection.HTTPConnection)},
        ),
        "https": type(
            "TlsPool",
            (connectionpool.HTTPSConnectionPool,),
            {"ConnectionCls": watched(connection.HTTPSConnection)},
        ),
    }

    class DeadlineAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = pools

    _ADAPTER.append(DeadlineAdapter)
    return DeadlineAdapter
