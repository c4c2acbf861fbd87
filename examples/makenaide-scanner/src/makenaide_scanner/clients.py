"""AWSClientFactory: one boto3 client per service, created on first use and reused.

boto3 is imported here, at first use, so that importing the handler stays cheap.
Clients live as long as the container: a warm invocation never builds one again.
While an invocation runs, its Deadline bounds every AWS attempt: none starts without the
time to finish, and the pause before a retry is never longer than the safety margin that
the deadline keeps back.
"""

from __future__ import annotations

import logging
import os
import threading

from .pipeline import DeadlineExceeded

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from typing import Any

    from .pipeline import Deadline

CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 10
"""Per attempt; scaled to the function's timeout so that an attempt always fits in it."""
ATTEMPT_MS = (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) * 1000
"""The longest one attempt can take: none starts with less time left."""
MAX_ATTEMPTS = 3
"""Attempts per call, first one included (botocore's adaptive mode retries throttling and 5xx)."""
RETRY_PAUSE_MAX_MS = 2000
"""botocore's longest pause before a retry: a random share of 2 ** (retry - 1) s. It fits in the
deadline's safety margin, so a retry's pause cannot carry a run past its timeout."""

DEFAULT_REGION = "ap-northeast-2"
QUIETEST_SDK_LOG_LEVEL = logging.INFO
"""botocore logs whole request and response bodies at DEBUG, secrets included: never lower."""

for _sdk_logger in ("botocore", "boto3", "urllib3"):
    logging.getLogger(_sdk_logger).setLevel(QUIETEST_SDK_LOG_LEVEL)


class AWSClientFactory:
    """Creates boto3 clients lazily and caches them per (service, region, endpoint)."""

    def __init__(self, region: str | None = None) -> None:
        self._region = region
        self._clients: dict[tuple[str, str, str | None], Any] = {}
        self._session: Any = None
        self._lock = threading.Lock()
        self.deadline: Deadline | None = None
        """The running invocation's deadline, set by the orchestrator; None outside an invocation."""

    @property
    def region(self) -> str:
        env = os.environ
        return self._region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION

    def get(self, service: str, region: str | None = None) -> Any:
        """The cached client for ``service``; created on first call."""
        region = region or self.region
        key = (service, region, _endpoint_for(service))
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._create(service, region)
                    self._clients[key] = client
        return client

    def prewarm(self, *services: str) -> None:
        """Create clients now, during init, where the CPU is not throttled."""
        for service in services:
            self.get(service)

    def reset(self) -> None:
        """Forget every client (tests, or after credentials change)."""
        with self._lock:
            self._clients.clear()
            self._session = None

    @property
    def created(self) -> int:
        """How many clients this factory holds."""
        return len(self._clients)

    def _create(self, service: str, region: str) -> Any:
        import boto3
        from botocore.config import Config

        if self._session is None:
            self._session = boto3.session.Session()
        config = Config(
            region_name=region,
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS},
        )
        # The endpoint comes from boto3's own AWS_ENDPOINT_URL[_<SERVICE>] settings.
        client = self._session.client(service, config=config)
        client.meta.events.register_first("before-send", self._refuse_attempt_past_deadline)
        return client

    def _refuse_attempt_past_deadline(self, **_: Any) -> None:
        if self.deadline is not None and self.deadline.remaining_ms() < ATTEMPT_MS:
            raise DeadlineExceeded(f"an AWS attempt can take {ATTEMPT_MS} ms: too little time is left")


def _endpoint_for(service: str) -> str | None:
    """The endpoint override boto3 will apply to ``service``: clients differ by it."""
    specific = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
    return os.environ.get(specific) or os.environ.get("AWS_ENDPOINT_URL")
