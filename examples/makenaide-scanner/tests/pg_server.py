"""A throwaway PostgreSQL server for tests: initdb + pg_ctl on a free loopback port.

Used when DATABASE_URL is not set. PostgreSQL refuses to run as root, so under root
the server runs as the ``postgres`` user. The password is random per run.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_USER = "postgres"
START_TIMEOUT_S = 60


def find_binary(name: str) -> str:
    """``name`` on PATH, else the newest /usr/lib/postgresql/*/bin/``name``."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key, reverse=True)
    found = candidates[0] if candidates else shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} was not found on PATH or under /usr/lib/postgresql")
    return found


def _version_key(path: str) -> int:
    version = Path(path).parts[-3]
    return int(version) if version.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """Start with ``start()``, read ``url``, stop with ``stop()`` (removes every file)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pgtest-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.password = secrets.token_hex(16)
        self._as_root = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql://{SERVER_USER}:{self.password}@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresServer:
        password_file = self.root / "password"
        password_file.write_text(self.password)
        if self._as_root:
            shutil.chown(self.root, SERVER_USER)
            shutil.chown(password_file, SERVER_USER)
        self._run(
            find_binary("initdb"),
            "-D",
            str(self.data),
            "-U",
            SERVER_USER,
            "--auth=scram-sha-256",
            f"--pwfile={password_file}",
            "-E",
            "UTF8",
            "--no-sync",
        )
        password_file.unlink()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run(
            find_binary("pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
        )
        return self

    def stop(self) -> None:
        try:
            self._run(find_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, binary: str, *arguments: str) -> None:
        command = [binary, *arguments]
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = result.stderr.strip() or result.stdout.strip()
            raise RuntimeError(f"{Path(binary).name} failed: {output}")
