"""A source comes back with their codename: replies, follow-ups, deletion, logout."""

from __future__ import annotations

import re
import secrets
import threading
from pathlib import Path

import httpx
import pytest

from tests.support import (
    LiveServer,
    ServerFactory,
    SettingsFactory,
    codename_in,
    csrf_token_in,
    initialise,
    post_multipart,
    row_counts,
    stored_files,
    submit_tip,
)
from tests.support.inprocess import SourceFactory, TestClient


def _source_login(server: LiveServer, client: httpx.Client, codename: str) -> httpx.Response:
    return server.post_form(client, server.source_url, "/login", "/login", {"codename": codename})


def _editor_reply(server: LiveServer, text: str) -> None:
    with httpx.Client() as editor_client:
        server.login(editor_client, server.instance.add_editor())
        inbox = editor_client.get(f"{server.editor_url}/").text
        (source_path,) = re.findall(r'href="(/sources/[0-9a-f]+)"', inbox)
        response = server.post_form(
            editor_client, server.editor_url, source_path, f"{source_path}/reply", {"reply": text}
        )
        assert response.status_code == 303, response.text
        assert text in editor_client.get(f"{server.editor_url}{source_path}").text


def test_codename_login_reads_a_reply_then_deletes_it(live_server: LiveServer, client: httpx.Client) -> None:
    codename = codename_in(submit_tip(live_server, client, "first tip").text)
    marker = f"REPLYMARKER{secrets.token_hex(6)}"
    _editor_reply(live_server, f"Thank you. {marker}")
    assert marker.encode() not in b"".join(p.read_bytes() for p in live_server.data_dir.rglob("*") if p.is_file())

    with httpx.Client() as source:
        # Codenames are case- and space-insensitive.
        response = _source_login(live_server, source, "  " + codename.upper().replace(" ", "   ") + " ")
        assert response.status_code == 303
        assert codename not in response.headers.get("set-cookie", "")
        home = source.get(f"{live_server.source_url}/home")
        assert marker in home.text
        (delete_path,) = re.findall(r'action="(/replies/[0-9a-f]+/delete)"', home.text)
        bodies_before = len(stored_files(live_server.instance.settings))
        deleted = live_server.post_form(source, live_server.source_url, "/home", delete_path, {})
        assert deleted.status_code == 303
        assert marker not in source.get(f"{live_server.source_url}/home").text
        # The newsroom keeps its copy (docs/crypto.md, "Replies"); the
        # source's capsule is erased, see tests/services/test_replies.py.
        assert len(stored_files(live_server.instance.settings)) == bodies_before


def test_follow_up_joins_the_same_source_without_a_new_codename(live_server: LiveServer, client: httpx.Client) -> None:
    codename = codename_in(submit_tip(live_server, client, "first").text)
    with httpx.Client() as source:
        _source_login(live_server, source, codename)
        url = live_server.submit_url(source, "/home")
        response = post_multipart(source, url, {"message": "second message"}, [("more.txt", b"x")])
        assert response.status_code == 200
        assert 'id="codename"' not in response.text
    assert row_counts(live_server.instance.settings) == {"sources": 1, "submissions": 2, "items": 3}


def test_unknown_or_oversized_codenames_are_refused_alike(live_server: LiveServer, client: httpx.Client) -> None:
    submit_tip(live_server, client, "a tip")
    for guess in ("abacus " * 7, "x" * 300, ""):
        response = _source_login(live_server, client, guess)
        assert response.status_code == 401
        assert "not recognised" in response.text
        assert "buzon_source=" not in response.headers.get("set-cookie", "")


def test_logout_and_expiry_pages_advise_new_identity(live_server: LiveServer, client: httpx.Client) -> None:
    codename = codename_in(submit_tip(live_server, client, "a tip").text)
    _source_login(live_server, client, codename)
    cookie = client.cookies["buzon_source"]
    out = live_server.post_form(client, live_server.source_url, "/home", "/logout", {})
    assert out.status_code == 200
    assert "New Identity" in out.text
    with httpx.Client(cookies={"buzon_source": cookie}) as stale:
        expired = stale.get(f"{live_server.source_url}/home")
        assert expired.status_code == 401
        assert "New Identity" in expired.text


def test_home_without_login_is_refused(live_server: LiveServer, client: httpx.Client) -> None:
    assert client.get(f"{live_server.source_url}/home").status_code == 401


def test_a_source_cannot_delete_another_sources_reply(live_server: LiveServer, client: httpx.Client) -> None:
    codename_a = codename_in(submit_tip(live_server, client, "from a").text)
    _editor_reply(live_server, "reply to a")
    with httpx.Client() as a:
        _source_login(live_server, a, codename_a)
        (delete_path,) = re.findall(
            r'action="(/replies/[0-9a-f]+/delete)"', a.get(f"{live_server.source_url}/home").text
        )
    with httpx.Client() as b:
        codename_b = codename_in(submit_tip(live_server, b, "from b").text)
        _source_login(live_server, b, codename_b)
        response = live_server.post_form(b, live_server.source_url, "/home", delete_path, {})
        assert response.status_code == 404
    with httpx.Client() as a:
        _source_login(live_server, a, codename_a)
        assert "reply to a" in a.get(f"{live_server.source_url}/home").text


def test_honeypot_gets_a_decoy_and_nothing_is_stored(live_server: LiveServer, client: httpx.Client) -> None:
    response = post_multipart(client, live_server.submit_url(client), {"message": "spam", "website": "http://spam"})
    assert response.status_code == 200
    assert len(codename_in(response.text).split()) == 7
    assert row_counts(live_server.instance.settings) == {"sources": 0, "submissions": 0, "items": 0}
    assert stored_files(live_server.instance.settings) == []


def test_hourly_budget_refuses_cleanly(
    tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    server = server_factory(initialise(make_settings(tmp_path / "d", max_submissions_per_hour=2)))
    with httpx.Client() as client:
        assert submit_tip(server, client, "one").status_code == 200
        assert submit_tip(server, client, "two").status_code == 200
        third = submit_tip(server, client, "three")
    assert third.status_code == 503
    assert "try again later" in third.text
    assert row_counts(server.instance.settings)["submissions"] == 2


def test_first_message_minimum_applies_to_new_sources_only(
    tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    server = server_factory(initialise(make_settings(tmp_path / "d", min_first_message_chars=20)))
    with httpx.Client() as client:
        short = submit_tip(server, client, "too short")
        assert short.status_code == 400
        assert "a little more" in short.text
        codename = codename_in(submit_tip(server, client, "a first message that is long enough").text)
        _source_login(server, client, codename)
        follow_up = post_multipart(client, server.submit_url(client, "/home"), {"message": "ok"})
        assert follow_up.status_code == 200


@pytest.mark.parametrize("flood", [8])
def test_login_flood_gets_busy_pages_and_the_form_stays_up(
    tmp_path: Path, server_factory: ServerFactory, flood: int, make_settings: SettingsFactory
) -> None:
    # Real Argon2id costs for codenames (64 MiB), one KDF slot and no waiting.
    settings = make_settings(
        tmp_path / "d",
        codename_kdf_memory_kib=65536,
        codename_kdf_time_cost=3,
        max_concurrent_kdf=1,
        kdf_wait_seconds=0,
    )
    server = server_factory(initialise(settings))
    statuses: list[int] = []

    def attempt() -> None:
        with httpx.Client(timeout=60) as c:
            statuses.append(_source_login(server, c, "abacus " * 7).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(flood)]
    for t in threads:
        t.start()
    with httpx.Client() as c:
        assert c.get(f"{server.source_url}/submit").status_code == 200
    for t in threads:
        t.join()
    assert 503 in statuses
    assert 401 in statuses
    assert set(statuses) <= {401, 503}


def test_new_codename_budget_still_lets_known_sources_in(
    tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    server = server_factory(initialise(make_settings(tmp_path / "d", max_new_codenames_per_hour=1)))
    with httpx.Client() as client:
        codename = codename_in(submit_tip(server, client, "first source").text)
        with httpx.Client() as second:
            refused = submit_tip(server, second, "second source")
        assert refused.status_code == 503
        assert "try again later" in refused.text
        _source_login(server, client, codename)
        assert post_multipart(client, server.submit_url(client, "/home"), {"message": "more"}).status_code == 200
    assert row_counts(server.instance.settings) == {"sources": 1, "submissions": 2, "items": 2}


def test_byte_budget_refuses_before_reading(
    tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    server = server_factory(initialise(make_settings(tmp_path / "d", max_bytes_per_hour=100_000)))
    with httpx.Client() as client:
        assert submit_tip(server, client, "small", [("a.bin", b"a" * 40_000)]).status_code == 200
        refused = submit_tip(server, client, "too much this hour", [("b.bin", b"b" * 80_000)])
    assert refused.status_code == 503
    assert row_counts(server.instance.settings)["submissions"] == 1
    assert len(stored_files(server.instance.settings)) == 2  # the message and the file of the first


def test_logging_in_again_and_again_keeps_one_login(source_client: TestClient, make_source: SourceFactory) -> None:
    made = make_source("a tip")
    cookies = []
    for _ in range(5):
        token = csrf_token_in(source_client.get("/login").text)
        response = source_client.post("/login", data={"codename": made.codename, "csrf_token": token})
        assert response.status_code == 303
        cookies.append(source_client.cookies["buzon_source"])
        source_client.cookies.delete("buzon_source")  # as a fresh Tor Browser identity would
    logins = source_client.app.state.source_logins  # type: ignore[attr-defined]
    assert len(logins) == 1
    assert [logins.get(cookie) is not None for cookie in cookies] == [False] * 4 + [True]
