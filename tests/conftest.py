"""Fixtures: fast settings, an initialised instance and real servers.

Servers run as real ``buzon serve`` subprocesses on free ports, with their own
TMPDIR so tests can scan it, and are stopped when the test ends.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.support import (
    Instance,
    LiveServer,
    ServerFactory,
    initialise,
    make_settings,
    spawn_server,
    stop_server,
    use_database,
)
from tests.support.postgres import PostgresServer


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="where make_settings puts each data dir's database: SQLite in the data dir, "
        "or a fresh database on a throw-away PostgreSQL server",
    )


_UNCLOSED_PSYCOPG = "<psycopg.Connection .* was deleted while still open"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only(reason): checks something only SQLite has; skipped on PostgreSQL")
    if config.getoption("database") == "postgresql":
        # Tests open engines and leave them to the garbage collector. sqlite3
        # closes a collected connection silently; psycopg warns as it closes it.
        # Ignored inside each test, and in the session-wide filters that are
        # already in force when this hook runs (the last collection happens there).
        config.addinivalue_line("filterwarnings", f"ignore:{_UNCLOSED_PSYCOPG}:ResourceWarning")
        warnings.filterwarnings("ignore", _UNCLOSED_PSYCOPG, ResourceWarning)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("database") != "postgresql":
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {marker.args[0]}"))


@pytest.fixture(scope="session", autouse=True)
def postgres(request: pytest.FixtureRequest) -> Iterator[PostgresServer | None]:
    """With ``--database=postgresql``, one server for the session; otherwise None."""
    if request.config.getoption("database") != "postgresql":
        yield None
        return
    server = PostgresServer.start()
    use_database(server.database_for)
    try:
        yield server
    finally:
        use_database(None)
        server.stop()


@pytest.fixture(autouse=True)
def _drop_test_databases(postgres: PostgresServer | None) -> Iterator[None]:
    """Each test's databases go when it ends (after its servers, set up later, have stopped).

    Databases made by wider-scoped fixtures already exist here and stay until the session ends.
    """
    before = set(postgres.created) if postgres else set()
    yield
    if postgres is not None:
        postgres.drop_databases([name for name in postgres.created if name not in before])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def instance(settings: Settings) -> Instance:
    return initialise(settings)


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    started: list[LiveServer] = []

    def start(instance: Instance) -> LiveServer:
        tmp_dir = tmp_path / f"server-tmp-{len(started)}"
        tmp_dir.mkdir()
        log_path = tmp_path / f"server-{len(started)}.log"
        process, source_url, editor_url = spawn_server(instance.settings, tmp_dir, log_path)
        server = LiveServer(instance, source_url, editor_url, tmp_dir, log_path, process)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_server(server.process)


@pytest.fixture
def live_server(instance: Instance, server_factory: ServerFactory) -> LiveServer:
    return server_factory(instance)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as c:
        yield c
