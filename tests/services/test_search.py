"""Search over decrypted messages, file names and notes, held in one session's memory."""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote

import httpx
from sqlalchemy.orm import Session

from app.services import keys, search
from app.storage import BlobStore
from tests.support import Instance, LiveServer
from tests.support.desk import database_traces, desk_post, encodings, new_source, scan, source_page
from tests.support.inprocess import SourceFactory


def _search(server: LiveServer, client: httpx.Client, query: str) -> list[str]:
    response = client.get(f"{server.editor_url}/search?q={quote(query)}")
    assert response.status_code == 200, response.text
    return re.findall(r'href="/sources/([0-9a-f]{32})"', response.text)


def test_search_finds_messages_file_names_and_notes(live_server: LiveServer, client: httpx.Client) -> None:
    tag = secrets.token_hex(5)
    in_message, in_name, in_note = f"Café{tag}Msg", f"NAME{tag}", f"NOTE{tag}"
    a, _ = new_source(live_server, f"The minister met at the {in_message} on Friday")
    b, _ = new_source(live_server, "see attached", [(f"budget-{in_name}.pdf", b"%PDF-1.4")])
    c, _ = new_source(live_server, "nothing to see")
    d, _ = new_source(live_server, "unrelated")
    live_server.login(client, live_server.instance.add_editor())
    desk_post(live_server, client, c, f"/sources/{c}/notes", {"text": f"Called back: {in_note}"})

    assert _search(live_server, client, in_message) == [a]
    # Case- and accent-insensitive.
    assert _search(live_server, client, f"CAFE{tag}msg") == [a]
    assert _search(live_server, client, in_name.lower()) == [b]
    assert _search(live_server, client, in_note) == [c]
    assert set(_search(live_server, client, tag)) == {a, b, c}
    assert _search(live_server, client, f"absent{tag}") == []
    assert d not in _search(live_server, client, tag)

    # Deleted content drops out of the session's cache.
    (note_delete,) = re.findall(
        rf'action="(/sources/{c}/notes/[0-9a-f]{{32}}/delete)"', source_page(live_server, client, c)
    )
    desk_post(live_server, client, c, note_delete)
    assert _search(live_server, client, in_note) == []

    needles = [*encodings(in_message), *encodings(in_name), *encodings(in_note), *encodings(tag)]
    assert scan(live_server.data_dir, needles) == []
    assert database_traces(live_server, needles) == []
    assert scan(live_server.tmp_dir, needles) == []
    assert scan(live_server.log_path.parent, needles) == []


def test_search_belongs_to_the_session(live_server: LiveServer, client: httpx.Client) -> None:
    marker = f"SEARCHMARKER{secrets.token_hex(5)}"
    a, _ = new_source(live_server, f"tip with {marker}")
    live_server.login(client, live_server.instance.add_editor())
    assert _search(live_server, client, marker) == [a]

    # Another session, whose keys open nothing, finds nothing: no shared index.
    with httpx.Client() as other:
        live_server.login(other, live_server.instance.add_editor(grant=False))
        assert _search(live_server, other, marker) == []

    live_server.post_form(client, live_server.editor_url, "/", "/logout", {})
    after = client.get(f"{live_server.editor_url}/search?q={marker}")
    assert after.status_code == 303
    assert after.headers["location"] == "/login"


def test_an_empty_or_oversized_query_is_refused(live_server: LiveServer, client: httpx.Client) -> None:
    new_source(live_server, "tip")
    live_server.login(client, live_server.instance.add_editor())
    for query in ("", "   ", "x" * 201):
        response = client.get(f"{live_server.editor_url}/search?q={quote(query)}")
        assert response.status_code == 200
        assert "Type 1 to 200 characters" in response.text


def test_the_session_cache_stays_within_its_bound_and_search_stays_complete(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    markers = [f"MARK{n:02d}{secrets.token_hex(4)}" for n in range(12)]
    made = {marker: make_source(f"{marker} " + "x" * 1000).id for marker in markers}
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    scratch: dict[str, object] = {}
    limit = 3_500  # room for three of the twelve messages
    for marker, source_id in made.items():
        found = search.search_sources(
            session=db, store=store, scratch=scratch, newsroom_keys=newsroom_keys, query=marker, max_cached_chars=limit
        )
        assert found == {source_id}
        cached = scratch["search"]
        assert isinstance(cached, search._Cache)
        assert 0 < cached.chars <= limit
        assert cached.chars == sum(len(text) for _, text in cached.texts.values())
