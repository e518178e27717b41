"""Helpers for the editor's desk tests: sources by id, desk forms, database and disk scans."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import AuditEntry, Base, Source
from app.db.session import make_engine, make_session_factory
from tests.support import LiveServer, codename_in, post_multipart, submit_tip


@contextmanager
def database(server: LiveServer) -> Iterator[Session]:
    """A session on the live server's database, from outside the server."""
    engine = make_engine(server.instance.settings.resolved_database_url)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def source_ids(server: LiveServer) -> set[str]:
    with database(server) as session:
        return set(session.scalars(select(Source.id)))


def new_source(server: LiveServer, message: str, files: list[tuple[str, bytes]] | None = None) -> tuple[str, str]:
    """Submit a first tip from a fresh browser; return (source id, codename)."""
    before = source_ids(server)
    with httpx.Client(timeout=60) as browser:
        response = submit_tip(server, browser, message, files)
        assert response.status_code == 200, response.text
        codename = codename_in(response.text)
    (source_id,) = source_ids(server) - before
    return source_id, codename


def source_login(server: LiveServer, client: httpx.Client, codename: str) -> None:
    response = server.post_form(client, server.source_url, "/login", "/login", {"codename": codename})
    assert response.status_code == 303, response.text


def follow_up(server: LiveServer, codename: str, message: str, files: list[tuple[str, bytes]] | None = None) -> None:
    with httpx.Client(timeout=60) as browser:
        source_login(server, browser, codename)
        url = server.submit_url(browser, "/home")
        response = post_multipart(browser, url, {"message": message}, files)
        assert response.status_code == 200, response.text


def desk_post(
    server: LiveServer, client: httpx.Client, source_id: str, action: str, data: dict[str, str] | None = None
) -> httpx.Response:
    """Post a desk form found on the source's page, as a browser would."""
    return server.post_form(client, server.editor_url, f"/sources/{source_id}", action, data or {})


def inbox_ids(server: LiveServer, client: httpx.Client, query: str = "") -> list[str]:
    response = client.get(f"{server.editor_url}/{query}")
    assert response.status_code == 200, response.text
    return re.findall(r'href="/sources/([0-9a-f]{32})"', response.text)


def source_page(server: LiveServer, client: httpx.Client, source_id: str) -> str:
    response = client.get(f"{server.editor_url}/sources/{source_id}")
    assert response.status_code == 200, response.text
    return response.text


def audit_entries(server: LiveServer) -> list[tuple[str, str, str]]:
    with database(server) as session:
        return [(e.actor, e.action, e.target) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def designation(server: LiveServer, source_id: str) -> str:
    with database(server) as session:
        source = session.get(Source, source_id)
        assert source is not None
        return source.designation


def scan(root: Path, needles: list[bytes]) -> list[tuple[str, bytes]]:
    """Every (file, needle) pair where a needle occurs anywhere under ``root``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(str(path), needle) for needle in needles if needle in data]
    return found


def database_traces(server: LiveServer, needles: list[bytes]) -> list[tuple[str, bytes]]:
    """Every (table, needle) pair where a needle occurs in a row of the server's database.

    With SQLite, ``scan`` of the data dir covers the database file, free pages
    and WAL included. A PostgreSQL database lives elsewhere, so its rows are
    checked here: deleted rows are gone, and no row holds plaintext.
    """
    found = []
    with database(server) as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                values = [v if isinstance(v, bytes) else str(v).encode() for v in row]
                found += [(table.name, needle) for needle in needles if any(needle in v for v in values)]
    return found


def encodings(text: str) -> list[bytes]:
    """A marker as a careless implementation might store it: UTF-8, UTF-16 or hex."""
    raw = text.encode()
    return [raw, text.encode("utf-16-le"), raw.hex().encode()]
