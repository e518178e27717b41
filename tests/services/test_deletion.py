"""Deleting a file, a message or a whole source leaves none of its ciphertext on disk."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text, update

from app.db.models import AuditEntry, Item, Note, Reply, Source, SourceTag, Submission, Tag
from app.db.session import make_engine
from tests.support import LiveServer, ServerFactory, SettingsFactory, initialise, stored_files
from tests.support.desk import (
    audit_entries,
    database,
    database_traces,
    designation,
    desk_post,
    follow_up,
    new_source,
    scan,
    source_page,
)


def _traces(server: LiveServer, *, source_id: str | None = None, item_ids: list[str] | None = None) -> list[bytes]:
    """Distinctive slices of every capsule, metadata record, reply, note, tag name and body to be deleted."""
    with database(server) as session:
        query = select(Item).join(Submission, Submission.id == Item.submission_id)
        query = query.where(Item.id.in_(item_ids)) if item_ids else query.where(Submission.source_id == source_id)
        items = list(session.scalars(query))
        needles = [slice_ for item in items for slice_ in (item.capsule[9:41], item.sealed_metadata[25:57])]
        blobs = [item.blob_name for item in items]
        if source_id and not item_ids:
            for reply in session.scalars(select(Reply).where(Reply.source_id == source_id)):
                needles += [reply.newsroom_capsule[9:41], reply.sealed_metadata[25:57]]
                blobs.append(reply.blob_name)
            notes = session.scalars(select(Note).where(Note.source_id == source_id))
            needles += [note.sealed_text[9:41] for note in notes]
            needles += [tag.sealed_name[9:41] for tag in session.scalars(select(Tag))]
    store = server.instance.settings.store_dir
    needles += [(store / name[:2] / name).read_bytes()[100:132] for name in blobs]
    return needles


def _item_links(page: str) -> dict[str, str]:
    """Item id by the file name or message text shown next to its delete button."""
    links = {}
    for article in re.findall(r"<article class=\"(?:message|file)\">(.*?)</article>", page, re.S):
        (item_id,) = re.findall(r'action="/items/([0-9a-f]{32})/delete"', article)
        label = re.search(r'download">([^<]+)</a>|<pre class="message-text">([^<]*)</pre>', article)
        assert label is not None
        links[label.group(1) or label.group(2)] = item_id
    return links


@pytest.mark.sqlite_only("secure_delete is an SQLite pragma; on PostgreSQL the tests below check deleted rows are gone")
def test_every_connection_overwrites_deleted_content(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA secure_delete")).scalar() == 1
    engine.dispose()


def test_deleting_a_file_and_a_message_removes_rows_blobs_and_traces(
    live_server: LiveServer, client: httpx.Client
) -> None:
    doomed_file, kept_file = secrets.token_bytes(3000), secrets.token_bytes(3000)
    a, _ = new_source(live_server, "doomed message", [("doomed.bin", doomed_file), ("kept.bin", kept_file)])
    b, _ = new_source(live_server, "another source", [("other.bin", b"other")])
    editor = live_server.instance.add_editor()
    live_server.login(client, editor)
    links = _item_links(source_page(live_server, client, a))
    targets = [links["doomed.bin"], links["doomed message"]]
    traces = _traces(live_server, item_ids=targets)
    blobs_before = len(stored_files(live_server.instance.settings))

    for item_id in targets:
        response = desk_post(live_server, client, a, f"/items/{item_id}/delete")
        assert response.status_code == 303
        assert response.headers["location"] == f"/sources/{a}"

    with database(live_server) as session:
        assert session.scalars(select(Item).where(Item.id.in_(targets))).all() == []
    assert len(stored_files(live_server.instance.settings)) == blobs_before - 2
    assert scan(live_server.data_dir, traces) == []
    assert database_traces(live_server, traces) == []
    page = source_page(live_server, client, a)
    assert "doomed" not in page
    kept = client.get(f"{live_server.editor_url}/items/{links['kept.bin']}/download")
    assert kept.content == kept_file
    assert "another source" in source_page(live_server, client, b)
    name = designation(live_server, a)
    entries = audit_entries(live_server)
    assert (editor.username, "file delete", name) in entries
    assert (editor.username, "message delete", name) in entries
    assert not any("doomed" in " ".join(entry) for entry in entries)


def test_deleting_a_source_removes_everything_it_owns(live_server: LiveServer, client: httpx.Client) -> None:
    kept_file = secrets.token_bytes(2000)
    a, codename = new_source(live_server, "doomed source", [("a.bin", secrets.token_bytes(2000))])
    b, _ = new_source(live_server, "kept source", [("b.bin", kept_file)])
    editor = live_server.instance.add_editor()
    live_server.login(client, editor)
    desk_post(live_server, client, a, f"/sources/{a}/reply", {"reply": "a reply"})
    desk_post(live_server, client, a, f"/sources/{a}/notes", {"text": "a note"})
    desk_post(live_server, client, a, f"/sources/{a}/tags", {"name": "only on a"})
    traces = _traces(live_server, source_id=a)
    assert database_traces(live_server, traces) != []  # the check sees rows that are there
    name = designation(live_server, a)

    confirm = client.get(f"{live_server.editor_url}/sources/{a}/delete")
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.text
    response = live_server.post_form(client, live_server.editor_url, f"/sources/{a}/delete", f"/sources/{a}/delete", {})
    assert response.status_code == 303
    assert response.headers["location"] == "/"

    with database(live_server) as session:
        assert session.get(Source, a) is None
        for model in (Submission, Reply, Note, SourceTag, Tag):
            assert session.scalar(select(func.count()).select_from(model)) == (1 if model is Submission else 0)
    assert scan(live_server.data_dir, traces) == []
    assert database_traces(live_server, traces) == []
    assert client.get(f"{live_server.editor_url}/sources/{a}").status_code == 404
    (b_item,) = re.findall(r'href="/items/([0-9a-f]{32})/download"', source_page(live_server, client, b))
    assert client.get(f"{live_server.editor_url}/items/{b_item}/download").content == kept_file
    with httpx.Client() as source:
        refused = live_server.post_form(source, live_server.source_url, "/login", "/login", {"codename": codename})
        assert refused.status_code == 401
    assert (editor.username, "source delete", name) in audit_entries(live_server)


def _wait_until_gone(server: LiveServer, source_id: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with database(server) as session:
            if session.get(Source, source_id) is None:
                return
        time.sleep(0.1)
    raise AssertionError("retention did not delete the source")


def test_retention_deletes_inactive_sources_and_warns_ahead(
    tmp_path: Path, server_factory: ServerFactory, client: httpx.Client, make_settings: SettingsFactory
) -> None:
    instance = initialise(make_settings(tmp_path / "data", retention_days=30, retention_warning_days=7))
    first = server_factory(instance)
    old, _ = new_source(first, "old and forgotten")
    soon, codename = new_source(first, "deleted in five days")
    published, _ = new_source(first, "old but published")
    fresh, _ = new_source(first, "fresh")
    traces = _traces(first, source_id=old)
    old_name = designation(first, old)
    today = dt.datetime.now(dt.UTC).date()
    with database(first) as session:
        for source_id, days_ago in ((old, 40), (soon, 25), (published, 40)):
            day = today - dt.timedelta(days=days_ago)
            session.execute(update(Source).where(Source.id == source_id).values(last_submission_on=day))
        session.execute(update(Source).where(Source.id == published).values(status="published"))
        session.commit()

    # Retention runs when the editor app starts, then hourly.
    server = server_factory(instance)
    _wait_until_gone(server, old)
    with database(server) as session:
        assert set(session.scalars(select(Source.id))) == {soon, published, fresh}
        entries = session.scalars(select(AuditEntry).where(AuditEntry.actor == "(retention)")).all()
        assert [(e.action, e.target) for e in entries] == [("source delete", old_name)]
    # Retention removes the bodies just after it commits the rows: wait for that too.
    deadline = time.monotonic() + 20
    while (left := scan(server.data_dir, traces)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []
    assert database_traces(server, traces) == []

    server.login(client, instance.add_editor())
    inbox = client.get(f"{server.editor_url}/").text
    deletion_day = (today + dt.timedelta(days=5)).isoformat()
    assert f"1 inactive source will be deleted automatically on {deletion_day}" in inbox
    assert f"Retention will delete this source on {deletion_day}" in source_page(server, client, soon)
    assert "Retention will delete" not in source_page(server, client, published)
    later = (today + dt.timedelta(days=30)).isoformat()
    assert f"Retention will delete this source on {later}" in source_page(server, client, fresh)
    # A source that writes again is no longer due.
    follow_up(server, codename, "still here")
    assert "will be deleted automatically" not in client.get(f"{server.editor_url}/").text
