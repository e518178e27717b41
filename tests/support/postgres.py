"""A throw-away PostgreSQL server for one test session, and a database per data dir.

The server runs from Debian's ``postgresql`` binaries in a temporary
directory on a free loopback port. initdb refuses to run as root, so under
root (as in CI) it runs as the ``postgres`` system user the package creates.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.support import free_port

SUPERUSER = "buzon_test"


def _binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    return found[-1].parent


class PostgresServer:
    """One cluster; ``database_for`` gives each data dir its own database."""

    def __init__(self, root: Path, port: int, run_as: list[str]) -> None:
        self.root = root
        self.port = port
        self._run_as = run_as
        self._bin = _binaries()
        self.created: list[str] = []

    @classmethod
    def start(cls) -> PostgresServer:
        run_as: list[str] = []
        if os.geteuid() == 0:
            # Under /tmp, whatever TMPDIR says: root's own temp dir may be
            # closed to the postgres user.
            root = Path(tempfile.mkdtemp(prefix="buzon-pg-", dir="/tmp"))
            account = pwd.getpwnam("postgres")
            os.chown(root, account.pw_uid, account.pw_gid)
            run_as = ["runuser", "-u", "postgres", "--"]
        else:
            root = Path(tempfile.mkdtemp(prefix="buzon-pg-"))
        server = cls(root, free_port(), run_as)
        try:
            server._initdb()
            server._pg_ctl("start", "-w", "-t", "60", "-l", str(root / "log"), "-o", server._options())
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, *command: str) -> None:
        # From the cluster's directory: the checkout may be closed to the postgres user.
        done = subprocess.run([*self._run_as, *command], cwd=self.root, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.root / "log"
            detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{Path(command[0]).name} failed: {done.stderr.strip()}\n{detail}")

    def _initdb(self) -> None:
        # Trust on a loopback port of a cluster that lives for one test session.
        data = str(self.root / "data")
        self._run(str(self._bin / "initdb"), "-D", data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")

    def _options(self) -> str:
        # Durability is not wanted here: nothing outlives the session.
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": "300",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        return " ".join(f"-c {key}={value}" for key, value in settings.items())

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self._bin / "pg_ctl"), "-D", str(self.root / "data"), *args)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres", autocommit=True)

    def database_for(self, data_dir: Path) -> str:
        """The URL of the data dir's database, created empty the first time it is asked for."""
        name = "t_" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:24]
        if name not in self.created:
            with self._admin() as connection:
                connection.execute(f'CREATE DATABASE "{name}"')
            self.created.append(name)
        return self.url(name)

    def drop_databases(self, names: list[str]) -> None:
        """Drop databases, ending any connection a test or server left open."""
        with self._admin() as connection:
            for name in names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                self.created.remove(name)

    def stop(self) -> None:
        try:
            if (self.root / "data" / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
