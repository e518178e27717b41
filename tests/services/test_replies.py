"""Replies on the desk: who replied, whether the source read or deleted it, and deleting them."""

from __future__ import annotations

import re
import secrets

import httpx
from sqlalchemy import select

from app.db.models import Reply
from tests.support import LiveServer, stored_files
from tests.support.desk import (
    audit_entries,
    database,
    database_traces,
    designation,
    desk_post,
    new_source,
    scan,
    source_login,
    source_page,
)


def _state_shown(page: str) -> list[str]:
    return re.findall(r'<span class="reply-state">([^<]+)</span>', page)


def _reply(server: LiveServer, client: httpx.Client, source_id: str, text: str) -> None:
    response = desk_post(server, client, source_id, f"/sources/{source_id}/reply", {"reply": text})
    assert response.status_code == 303, response.text


def test_author_and_the_sources_reading_and_deleting_are_shown(live_server: LiveServer, client: httpx.Client) -> None:
    source_id, codename = new_source(live_server, "a tip")
    editor = live_server.instance.add_editor()
    live_server.login(client, editor)
    marker = f"REPLYMARKER{secrets.token_hex(6)}"
    _reply(live_server, client, source_id, marker)
    page = source_page(live_server, client, source_id)
    assert f"by {editor.username}" in page
    assert _state_shown(page) == ["unread"]

    with httpx.Client() as source:
        source_login(live_server, source, codename)
        home = source.get(f"{live_server.source_url}/home").text
        assert marker in home
        assert _state_shown(source_page(live_server, client, source_id)) == ["read by the source"]
        with database(live_server) as session:
            capsule = session.scalars(select(Reply.source_capsule)).one()
        (delete_path,) = re.findall(r'action="(/replies/[0-9a-f]+/delete)"', home)
        assert live_server.post_form(source, live_server.source_url, "/home", delete_path, {}).status_code == 303
        assert marker not in source.get(f"{live_server.source_url}/home").text

    page = source_page(live_server, client, source_id)
    assert _state_shown(page) == ["deleted by the source"]
    assert marker in page  # the newsroom keeps its copy
    with database(live_server) as session:
        assert session.scalars(select(Reply.source_capsule)).one() == b""
    # The erased capsule is nowhere on disk, not even in the WAL.
    assert scan(live_server.data_dir, [capsule[9:41]]) == []
    assert database_traces(live_server, [capsule[9:41]]) == []
    assert (editor.username, "reply send", designation(live_server, source_id)) in audit_entries(live_server)


def test_an_editor_deletes_a_reply_completely(live_server: LiveServer, client: httpx.Client) -> None:
    source_id, codename = new_source(live_server, "a tip")
    editor = live_server.instance.add_editor()
    live_server.login(client, editor)
    _reply(live_server, client, source_id, "keep me")
    _reply(live_server, client, source_id, "delete me")
    page = source_page(live_server, client, source_id)
    assert len(re.findall(rf'action="/sources/{source_id}/replies/[0-9a-f]+/delete"', page)) == 2
    # Each reply's delete form follows its text (two replies sent in one second have no order).
    (target,) = re.findall(
        rf'delete me</pre>\s*<form method="post" action="(/sources/{source_id}/replies/[0-9a-f]+/delete)"', page
    )
    reply_id = target.split("/")[4]
    with database(live_server) as session:
        row = session.get_one(Reply, reply_id)
        blob_name, capsules = row.blob_name, [row.source_capsule[9:41], row.newsroom_capsule[9:41]]
        body = (live_server.instance.settings.store_dir / blob_name[:2] / blob_name).read_bytes()
    assert desk_post(live_server, client, source_id, target).status_code == 303

    page = source_page(live_server, client, source_id)
    assert "delete me" not in page
    assert "keep me" in page
    assert blob_name not in {p.name for p in stored_files(live_server.instance.settings)}
    assert scan(live_server.data_dir, [*capsules, body[100:164]]) == []
    assert database_traces(live_server, capsules) == []
    with httpx.Client() as source:
        source_login(live_server, source, codename)
        home = source.get(f"{live_server.source_url}/home").text
        assert "keep me" in home
        assert "delete me" not in home
    assert (editor.username, "reply delete", designation(live_server, source_id)) in audit_entries(live_server)
