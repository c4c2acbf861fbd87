"""One throwaway PostgreSQL server for the whole test session, one database per consumer.

The server code is the template's own tests/pg_server.py (a single implementation for
generated functions and this repository). DATABASE_URL, when set, is used instead.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]
PG_SERVER_SOURCE = REPO / "{{cookiecutter.function_name}}" / "tests" / "pg_server.py"
DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def load_pg_server_module():
    spec = importlib.util.spec_from_file_location("leanlambda_pg_server", PG_SERVER_SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SessionPostgres:
    """A server URL plus ``database(name)``: a fresh, empty database with that name."""

    def __init__(self) -> None:
        self._server = None
        self.url = os.environ.get("DATABASE_URL")
        if not self.url:
            self._server = load_pg_server_module().PostgresServer().start()
            self.url = self._server.url

    def database(self, name: str) -> str:
        """Drop and create database ``name``; return its URL."""
        import psycopg2

        if not DATABASE_NAME.match(name):
            raise ValueError(f"not a plain database name: {name!r}")
        admin = psycopg2.connect(self.url)
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                cursor.execute(f"CREATE DATABASE {name}")
        finally:
            admin.close()
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
