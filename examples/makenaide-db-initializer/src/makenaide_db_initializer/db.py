"""Lazy PostgreSQL access: credentials from Secrets Manager, one connection per container.

psycopg2 comes from the layer and is imported on first use. The connection is kept
for warm invocations and opened again when the server has dropped it. Credentials
are cached for at most DB_SECRET_MAX_AGE_S and never written to a log line; when a
connection is refused with cached credentials (a rotated password), the secret is
fetched again once and the connection retried with the new values. No statement here
changes the schema: a function can run as a role that may only read and write rows.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time

logger = logging.getLogger(__name__)

SECRET_ARN_ENV = "DB_SECRET_ARN"  # noqa: S105 - the name of a variable, not a secret
"""Names the Secrets Manager secret: JSON with username, password, host, port, dbname."""
HOST_ENV, PORT_ENV, NAME_ENV = "DB_HOST", "DB_PORT", "DB_NAME"
"""Override the secret's endpoint (an RDS-managed secret holds only the credentials)."""
APPLICATION_NAME = "makenaide-db-initializer"
"""How the function's sessions show in pg_stat_activity."""
DEFAULT_PORT = 5432
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 30_000
"""No single statement may hold a Lambda invocation longer than this."""
CONNECTION_LOST_CODES = frozenset({"", "57P01", "57P02", "57P03"})
"""No code (the socket closed) or an admin/crash shutdown; class 08 is checked apart."""
PING_AFTER_IDLE_S = 5.0
"""A connection idle this long (a warm invocation after a pause) is checked before use."""
TRANSACTION_ATTEMPTS = 2
"""A transaction lost with its connection is rolled back by the server; run it once more."""
SECRET_MAX_AGE_ENV = "DB_SECRET_MAX_AGE_S"  # noqa: S105 - the name of a variable, not a secret
DEFAULT_SECRET_MAX_AGE_S = 900.0
"""Cached credentials older than this are fetched again before the next connect (like the
max_age of Powertools' get_secret); a connection open already is kept, rotation does not end it."""

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (init time)
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, TypeVar

    from .clients import AWSClientFactory

    T = TypeVar("T")


class DatabaseConfigError(RuntimeError):
    """The function is not configured to reach its database."""


class Database:
    """A PostgreSQL connection shared by the invocations of one container."""

    def __init__(
        self,
        clients: AWSClientFactory,
        secret_arn: str | None = None,
        ping_after_idle_s: float = PING_AFTER_IDLE_S,
        secret_max_age_s: float | None = None,
    ) -> None:
        self._clients = clients
        self._secret_arn = secret_arn
        self._ping_after_idle_s = ping_after_idle_s
        self._secret_max_age_s = _configured_max_age_s() if secret_max_age_s is None else secret_max_age_s
        self._credentials: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._connection: Any = None
        self._last_used = 0.0

    def connection(self) -> Any:
        """The open connection, connecting (again) when there is none or it has died."""
        idle_s = time.monotonic() - self._last_used
        if self._connection is not None and not self._connection.closed and idle_s >= self._ping_after_idle_s:
            self._ping()
        if self._connection is None or self._connection.closed:
            self._connection = self._connect()
        self._last_used = time.monotonic()
        return self._connection

    def _ping(self) -> None:
        """Drop the connection if the server has closed it (failover, idle timeout)."""
        try:
            with self._connection, self._connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        except Exception as error:
            if not _is_connection_lost(error):
                raise
            logger.info("database connection was closed by the server, reconnecting")
            self.discard()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor in a transaction: committed on success, rolled back on any error."""
        connection = self.connection()
        try:
            with connection, connection.cursor() as cursor:
                yield cursor
        except Exception as error:
            if _is_connection_lost(error):
                self.discard()
            raise

    def run_transaction(self, work: Callable[[Any], T], attempts: int = TRANSACTION_ATTEMPTS) -> T:
        """Run ``work(cursor)`` in a transaction, again on a new connection if the old one died.

        Safe because a transaction cut off with its connection is rolled back whole.
        """
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as cursor:
                    return work(cursor)
            except Exception as error:
                if attempt == attempts or not _is_connection_lost(error):
                    raise
                logger.warning("database connection lost, retrying the transaction")
        raise AssertionError("unreachable")

    def discard(self) -> None:
        """Close and forget the connection (it is dead, or the container is shutting down)."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            with contextlib.suppress(Exception):
                connection.close()

    def reset(self) -> None:
        """Forget the connection and the cached credentials (tests, secret rotation)."""
        self.discard()
        self._credentials = None

    def _connect(self) -> Any:
        """Connect; refused with cached credentials, fetch the secret once more and retry if it changed."""
        import psycopg2

        cached = self._credentials is not None and not self._credentials_expired()
        settings = self._settings()
        try:
            return _open(settings)
        except psycopg2.OperationalError as error:
            if not cached:
                raise
            refused = error
        # Rotation changed the password (or the user) under the cached copy. psycopg2's message
        # names the user, never the password; only the error's type is logged.
        logger.warning(
            "connection refused with cached credentials (%s), fetching the secret again",
            type(refused).__name__,
        )
        self._credentials = None
        renewed = self._settings()
        if renewed == settings:
            raise refused
        return _open(renewed)

    def _credentials_expired(self) -> bool:
        return time.monotonic() - self._fetched_at >= self._secret_max_age_s

    def _settings(self) -> dict[str, Any]:
        if self._credentials is None or self._credentials_expired():
            self._credentials = self._fetch_secret()
            self._fetched_at = time.monotonic()
        settings = dict(self._credentials)
        for key, env in (("host", HOST_ENV), ("port", PORT_ENV), ("dbname", NAME_ENV)):
            settings[key] = os.environ.get(env) or settings.get(key)
        missing = [key for key in ("host", "dbname", "username", "password") if not settings.get(key)]
        if missing:
            raise DatabaseConfigError(f"database settings lack {', '.join(missing)}")
        try:
            settings["port"] = int(settings.get("port") or DEFAULT_PORT)
        except (TypeError, ValueError):
            raise DatabaseConfigError("the database port is not a number") from None
        return settings

    def _fetch_secret(self) -> dict[str, Any]:
        secret_arn = self._secret_arn or os.environ.get(SECRET_ARN_ENV)
        if not secret_arn:
            raise DatabaseConfigError(f"{SECRET_ARN_ENV} is not set")
        response = self._clients.get("secretsmanager").get_secret_value(SecretId=secret_arn)
        try:
            value = json.loads(response["SecretString"])
        except (KeyError, TypeError, ValueError):
            value = None
        if not isinstance(value, dict):  # null, a string, a list, a number: valid JSON, not settings
            raise DatabaseConfigError("the database secret is not a JSON object")
        return value


def _configured_max_age_s() -> float:
    configured = os.environ.get(SECRET_MAX_AGE_ENV)
    if not configured:
        return DEFAULT_SECRET_MAX_AGE_S
    try:
        value = float(configured)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also NaN
        raise DatabaseConfigError(f"{SECRET_MAX_AGE_ENV} must be a number of seconds >= 0")
    return value


def _open(settings: dict[str, Any]) -> Any:
    import psycopg2

    logger.info("connecting to PostgreSQL %s/%s", settings["host"], settings["dbname"])
    return psycopg2.connect(
        host=settings["host"],
        port=settings["port"],
        dbname=settings["dbname"],
        user=settings["username"],
        password=settings["password"],
        connect_timeout=CONNECT_TIMEOUT_S,
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        application_name=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", APPLICATION_NAME),
    )


_database: Database | None = None


def get_database(clients: AWSClientFactory) -> Database:
    """The container's Database: its connection outlives the invocation that opened it."""
    global _database
    if _database is None:
        _database = Database(clients)
    return _database


def reset_database() -> None:
    """Close and forget the container's Database, as a new container would (tests)."""
    global _database
    if _database is not None:
        _database.reset()
    _database = None


def _is_connection_lost(error: BaseException) -> bool:
    """True for errors after which the connection cannot be used again."""
    import psycopg2

    if isinstance(error, psycopg2.InterfaceError):
        return True
    if isinstance(error, psycopg2.OperationalError):
        code = getattr(error, "pgcode", None) or ""
        return code.startswith("08") or code in CONNECTION_LOST_CODES
    return False
