"""Fixtures: fast settings, an initialised instance, in-process apps and real servers.

``make_settings`` knows the database choice (``--database``), so every data
dir a test makes gets SQLite inside it or its own PostgreSQL database. In
process: ``db`` and ``store`` reach an initialised instance, ``make_source`` and
``make_editor`` fill it through the services, and ``source_client`` and
``editor_client`` drive the two apps under Starlette's TestClient. Servers run
as real ``buzon serve`` subprocesses on free ports, with their own TMPDIR so
tests can scan it, and are stopped when the test ends.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from app.db.models import Source
from app.main import create_editor_app, create_source_app
from app.services import editors
from app.settings import Settings
from app.storage import BlobStore
from tests.support import (
    Instance,
    LiveServer,
    ServerFactory,
    SettingsFactory,
    initialise,
    settings_for,
    spawn_server,
    stop_server,
)
from tests.support.evidence import build_package
from tests.support.inprocess import (
    EditorFactory,
    MadeEditor,
    MadeSource,
    SourceFactory,
    TestClient,
    Upload,
    create_source,
    session_on,
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
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def make_settings(postgres: PostgresServer | None) -> SettingsFactory:
    """Settings for a data dir: fast KDF, and with ``--database=postgresql`` a database of its own on the server.

    Session-scoped, so fixtures of any scope can take it. A database made for a
    test is dropped when the test ends; one made by a module- or session-scoped
    fixture exists before that test's ``_drop_test_databases`` looks, and stays
    until the session ends.
    """

    def make(data_dir: Path, /, **overrides: object) -> Settings:
        if postgres is not None and "database_url" not in overrides:
            overrides["database_url"] = postgres.database_for(data_dir)
        return settings_for(data_dir, **overrides)

    return make


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
def settings(tmp_path: Path, make_settings: SettingsFactory) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def instance(settings: Settings) -> Instance:
    return initialise(settings)


# --- in process ------------------------------------------------------------------------


@pytest.fixture
def db(instance: Instance) -> Iterator[Session]:
    """A session on the initialised instance's database, for calling services directly."""
    with session_on(instance.settings) as session:
        yield session


@pytest.fixture
def store(instance: Instance) -> BlobStore:
    return BlobStore(instance.settings.store_dir, instance.settings.store_pool)


@pytest.fixture
def make_source(db: Session, store: BlobStore, instance: Instance) -> Iterator[SourceFactory]:
    """``make_source(message="…", files=[(name, content)])``: a new source with one submission, through the intake.

    The source app records a tip in a session of its own, and so does this: ``db``
    holds none of the intake's objects, only the source, loaded afresh.
    """
    with session_on(instance.settings) as intake:

        def make(message: str = "a tip", files: Sequence[Upload] = ()) -> MadeSource:
            made = create_source(session=intake, store=store, settings=instance.settings, message=message, files=files)
            source = db.get(Source, made.id)
            assert source is not None
            return MadeSource(source, made.codename)

        yield make


@pytest.fixture
def make_editor(db: Session, instance: Instance) -> EditorFactory:
    """``make_editor(username=None, admin=False, grant=True)``: an editor added on ``db``, granted the keys if asked."""

    def make(username: str | None = None, *, admin: bool = False, grant: bool = True) -> MadeEditor:
        account = instance.add_editor(username, admin=admin, grant=grant, session=db)
        (editor_id,) = [e.id for e in editors.list_editors(db) if e.username == account.username]
        return MadeEditor(editor_id, account)

    return make


# Same-origin and CSRF checks pass as for a browser on the app's own address:
# TestClient sends no Origin or Sec-Fetch-Site header, keeps the CSRF cookie the
# app sets (not Secure, so plain http is fine) and sends it back.
SOURCE_BASE_URL = "http://127.0.0.1:8080"
EDITOR_BASE_URL = "http://127.0.0.1:8081"


def _client(app: FastAPI, base_url: str) -> Iterator[TestClient]:
    # As a context manager, so the lifespan runs: the KDF gate's workers and the editor app's jobs.
    try:
        with TestClient(app, base_url=base_url, follow_redirects=False) as client:
            yield client
    finally:
        app.state.engine.dispose()


@pytest.fixture
def source_client(instance: Instance) -> Iterator[TestClient]:
    """The source app of the initialised instance, in process."""
    yield from _client(create_source_app(instance.settings), SOURCE_BASE_URL)


@pytest.fixture
def editor_client(instance: Instance) -> Iterator[TestClient]:
    """The editor app of the initialised instance, in process; log in with tests.support.inprocess.log_in."""
    yield from _client(create_editor_app(instance.settings), EDITOR_BASE_URL)


@pytest.fixture
def built_package(
    tmp_path: Path,
    db: Session,
    store: BlobStore,
    instance: Instance,
    make_source: SourceFactory,
    make_editor: EditorFactory,
    editor_client: TestClient,
) -> tuple[Path, Path]:
    """A real evidence package's tar and its authority's CA (tests/support/evidence.py)."""
    return build_package(
        tmp_path, db=db, store=store, instance=instance, make_source=make_source, make_editor=make_editor,
        editor_client=editor_client,
    )  # fmt: skip


# --- real servers ------------------------------------------------------------------------


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
