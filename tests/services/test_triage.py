"""The editor's desk: inbox filters, unread counts, triage, sealed tags and notes, duplicates."""

from __future__ import annotations

import hashlib
import re
import secrets

import httpx
from sqlalchemy import select

from app.db.models import Editor, Item, Note, Source, Tag
from tests.support import LiveServer
from tests.support.desk import (
    audit_entries,
    database,
    database_traces,
    designation,
    desk_post,
    encodings,
    follow_up,
    inbox_ids,
    new_source,
    scan,
    source_page,
)


def _source(server: LiveServer, source_id: str) -> Source:
    with database(server) as session:
        source = session.get(Source, source_id)
        assert source is not None
        return source


def _editor_id(server: LiveServer, username: str) -> str:
    with database(server) as session:
        editor = session.scalars(select(Editor).where(Editor.username == username)).one()
        return editor.id


def _tag_id(page: str, name: str) -> str:
    match = re.search(rf'<option value="([0-9a-f]{{32}})"[^>]*>{re.escape(name)}</option>', page)
    assert match is not None, page
    return match.group(1)


def test_unread_counts_rise_on_submission_and_reset_when_opened(live_server: LiveServer, client: httpx.Client) -> None:
    source_id, codename = new_source(live_server, "first", [("a.txt", b"a")])
    assert _source(live_server, source_id).unread == 2
    live_server.login(client, live_server.instance.add_editor())
    inbox = client.get(f"{live_server.editor_url}/").text
    assert "<strong>2</strong>" in inbox
    source_page(live_server, client, source_id)
    assert _source(live_server, source_id).unread == 0
    follow_up(live_server, codename, "again", [("b.txt", b"b"), ("c.txt", b"c")])
    assert _source(live_server, source_id).unread == 3
    source_page(live_server, client, source_id)
    assert _source(live_server, source_id).unread == 0


def test_filters_return_exactly_the_right_sources(live_server: LiveServer, client: httpx.Client) -> None:
    a, _ = new_source(live_server, "tip a")
    b, _ = new_source(live_server, "tip b")
    c, _ = new_source(live_server, "tip c")
    d, _ = new_source(live_server, "tip d")
    me = live_server.instance.add_editor()
    other = live_server.instance.add_editor()
    other_id = _editor_id(live_server, other.username)
    live_server.login(client, me)
    assert set(inbox_ids(live_server, client)) == {a, b, c, d}

    tag = f"leak {secrets.token_hex(4)}"
    assert desk_post(live_server, client, a, f"/sources/{a}/status", {"status": "verified"}).status_code == 303
    assert desk_post(live_server, client, b, f"/sources/{b}/star", {"starred": "1"}).status_code == 303
    my_id = _editor_id(live_server, me.username)
    assert desk_post(live_server, client, c, f"/sources/{c}/assign", {"assignee": my_id}).status_code == 303
    assert desk_post(live_server, client, d, f"/sources/{d}/assign", {"assignee": other_id}).status_code == 303
    for source_id in (a, c):
        assert desk_post(live_server, client, source_id, f"/sources/{source_id}/tags", {"name": tag}).status_code == 303
    assert desk_post(live_server, client, d, f"/sources/{d}/tags", {"name": "other"}).status_code == 303
    tag_id = _tag_id(client.get(f"{live_server.editor_url}/").text, tag)

    assert inbox_ids(live_server, client, "?status=verified") == [a]
    assert inbox_ids(live_server, client, "?starred=1") == [b]
    assert inbox_ids(live_server, client, "?assignee=me") == [c]
    assert inbox_ids(live_server, client, f"?assignee={other_id}") == [d]
    assert set(inbox_ids(live_server, client, "?assignee=none")) == {a, b}
    assert set(inbox_ids(live_server, client, f"?tag={tag_id}")) == {a, c}
    assert inbox_ids(live_server, client, f"?tag={tag_id}&assignee=me") == [c]
    assert inbox_ids(live_server, client, "?status=spam") == []
    assert inbox_ids(live_server, client, "?status=new&starred=1") == [b]

    # Unstar, unassign, untag: the filters follow.
    desk_post(live_server, client, b, f"/sources/{b}/star", {"starred": "0"})
    desk_post(live_server, client, c, f"/sources/{c}/assign", {"assignee": ""})
    desk_post(live_server, client, a, f"/sources/{a}/tags/{tag_id}/remove")
    assert inbox_ids(live_server, client, "?starred=1") == []
    assert inbox_ids(live_server, client, "?assignee=me") == []
    assert inbox_ids(live_server, client, f"?tag={tag_id}") == [c]


def test_triage_persists_and_tags_and_notes_are_sealed(live_server: LiveServer, client: httpx.Client) -> None:
    a, _ = new_source(live_server, "tip a")
    b, _ = new_source(live_server, "tip b")
    editor = live_server.instance.add_editor()
    live_server.login(client, editor)
    tag = f"TAGMARKER{secrets.token_hex(6)}"
    note = f"NOTEMARKER{secrets.token_hex(6)} call the ministry back"

    desk_post(live_server, client, a, f"/sources/{a}/status", {"status": "in-review"})
    desk_post(live_server, client, a, f"/sources/{a}/star", {"starred": "1"})
    desk_post(live_server, client, a, f"/sources/{a}/tags", {"name": f"  {tag}  "})
    # The same name, in another case, on another source: the tag is reused.
    desk_post(live_server, client, b, f"/sources/{b}/tags", {"name": tag.lower()})
    assert desk_post(live_server, client, a, f"/sources/{a}/notes", {"text": note}).status_code == 303

    page = source_page(live_server, client, a)
    assert '<option value="in-review" selected>' in page
    assert f'<span class="tag">{tag}</span>' in page
    assert note in page
    assert editor.username in page
    assert f'<span class="tag">{tag}</span>' in source_page(live_server, client, b)
    with database(live_server) as session:
        assert len(session.scalars(select(Tag)).all()) == 1
        assert len(session.scalars(select(Note)).all()) == 1
        source = session.get_one(Source, a)
        assert (source.status, source.starred) == ("in-review", True)

    assert scan(live_server.data_dir, [*encodings(tag), *encodings(tag.lower()), *encodings(note)]) == []
    assert database_traces(live_server, [*encodings(tag), *encodings(tag.lower()), *encodings(note)]) == []
    assert scan(live_server.log_path.parent, [*encodings(tag), *encodings(note)]) == []

    entries = audit_entries(live_server)
    actions = [(actor, action, target) for actor, action, target in entries if actor == editor.username]
    name_a, name_b = designation(live_server, a), designation(live_server, b)
    for expected in ("status in-review", "star", "tag add", "note add"):
        assert (editor.username, expected, name_a) in actions
    assert (editor.username, "tag add", name_b) in actions
    flat = " ".join(" ".join(entry) for entry in entries).casefold()
    assert tag.casefold() not in flat
    assert "ministry" not in flat


def test_invalid_triage_input_changes_nothing(live_server: LiveServer, client: httpx.Client) -> None:
    a, _ = new_source(live_server, "tip")
    live_server.login(client, live_server.instance.add_editor())
    assert desk_post(live_server, client, a, f"/sources/{a}/status", {"status": "sold"}).status_code == 400
    assert desk_post(live_server, client, a, f"/sources/{a}/tags", {"name": "x" * 41}).status_code == 400
    assert desk_post(live_server, client, a, f"/sources/{a}/tags", {"name": "   "}).status_code == 400
    assert desk_post(live_server, client, a, f"/sources/{a}/notes", {"text": "y" * 10_001}).status_code == 400
    assert desk_post(live_server, client, a, f"/sources/{a}/assign", {"assignee": "nobody"}).status_code == 400
    assert _source(live_server, a).status == "new"
    with database(live_server) as session:
        assert session.scalars(select(Tag)).all() == []
        assert session.scalars(select(Note)).all() == []
    # Without the page's CSRF token, nothing happens either.
    refused = client.post(f"{live_server.editor_url}/sources/{a}/status", data={"status": "spam"})
    assert refused.status_code == 403
    assert _source(live_server, a).status == "new"


def test_a_hidden_sources_follow_up_goes_to_spam(live_server: LiveServer, client: httpx.Client) -> None:
    a, codename = new_source(live_server, "abusive")
    b, _ = new_source(live_server, "fine")
    live_server.login(client, live_server.instance.add_editor())
    assert desk_post(live_server, client, a, f"/sources/{a}/hide", {"hidden": "1"}).status_code == 303
    assert _source(live_server, a).status == "new"
    follow_up(live_server, codename, "more abuse")
    assert _source(live_server, a).status == "spam"
    assert _source(live_server, a).hidden
    assert inbox_ids(live_server, client) == [b]
    assert inbox_ids(live_server, client, "?status=spam") == [a]
    assert set(inbox_ids(live_server, client, "?status=all")) == {a, b}


def test_identical_files_in_two_sources_are_flagged_on_both(live_server: LiveServer, client: httpx.Client) -> None:
    shared = secrets.token_bytes(5000)
    x, _ = new_source(live_server, "x", [("leaked.pdf", shared)])
    y, _ = new_source(live_server, "y", [("copy-of-leak.pdf", shared)])
    z, _ = new_source(live_server, "z", [("different.pdf", secrets.token_bytes(5000))])
    live_server.login(client, live_server.instance.add_editor())

    page_x = source_page(live_server, client, x)
    assert f'Also in: <a href="/sources/{y}">{designation(live_server, y)}</a>' in page_x
    page_y = source_page(live_server, client, y)
    assert f'Also in: <a href="/sources/{x}">{designation(live_server, x)}</a>' in page_y
    page_z = source_page(live_server, client, z)
    assert "Also in:" not in page_z

    with database(live_server) as session:
        tags = [t for t in session.scalars(select(Item.dup_tag).where(Item.kind == "file")) if t is not None]
    # Every file got a tag, and the tag is keyed: not the file's plain hash.
    assert len(tags) == 3
    assert len(set(tags)) == 2
    assert hashlib.sha256(shared).digest() not in tags
