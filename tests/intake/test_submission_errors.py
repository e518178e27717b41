"""Bad submissions get a clear page, never a 500, and leave nothing behind."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import (
    LiveServer,
    ServerFactory,
    SettingsFactory,
    initialise,
    multipart_body,
    row_counts,
    stored_files,
)

BOUNDARY = "----buzonTestBoundary7MA4YWxk"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
NOTHING = {"sources": 0, "submissions": 0, "items": 0}


def _assert_nothing_left(server: LiveServer) -> None:
    assert stored_files(server.instance.settings) == []
    assert row_counts(server.instance.settings) == NOTHING
    assert list(server.tmp_dir.iterdir()) == []


def _assert_clear_page(response: httpx.Response, status: int, phrase: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert phrase.lower() in response.text.lower()
    assert "Traceback" not in response.text
    assert "Nothing was saved" in response.text


@pytest.fixture
def small_server(tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory) -> LiveServer:
    settings = make_settings(
        tmp_path / "small", max_submission_bytes=256 * 1024, max_message_chars=1000, max_files_per_submission=2
    )
    return server_factory(initialise(settings))


def _post(server: LiveServer, client: httpx.Client, body: bytes | Iterator[bytes], **headers: str) -> httpx.Response:
    return client.post(server.submit_url(client), content=body, headers={"Content-Type": CONTENT_TYPE, **headers})


def test_garbage_body_is_refused(live_server: LiveServer, client: httpx.Client) -> None:
    response = _post(live_server, client, b"this is not multipart at all" * 100)
    _assert_clear_page(response, 400, "could not be read")
    _assert_nothing_left(live_server)


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_refused(live_server: LiveServer, client: httpx.Client, content_type: str) -> None:
    url = live_server.submit_url(client)
    response = client.post(url, content=b"a=b", headers={"Content-Type": content_type})
    _assert_clear_page(response, 400, "could not be read")
    _assert_nothing_left(live_server)


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.99])
def test_truncated_body_leaves_nothing(live_server: LiveServer, client: httpx.Client, cut: float) -> None:
    body = multipart_body(
        BOUNDARY, [("message", None, b"hello"), ("files", "a.bin", b"x" * 300_000), ("files", "b.bin", b"y" * 9)]
    )
    response = _post(live_server, client, body[: int(len(body) * cut)])
    _assert_clear_page(response, 400, "could not be read")
    _assert_nothing_left(live_server)


def test_declared_oversize_is_refused_at_once(small_server: LiveServer, client: httpx.Client) -> None:
    body = multipart_body(BOUNDARY, [("files", "big.bin", b"z" * 400_000)])
    response = _post(small_server, client, body)
    _assert_clear_page(response, 413, "too large")
    _assert_nothing_left(small_server)


def test_streamed_oversize_is_refused_while_streaming(small_server: LiveServer, client: httpx.Client) -> None:
    body = multipart_body(BOUNDARY, [("files", "big.bin", b"z" * 600_000)])

    def chunked() -> Iterator[bytes]:  # no Content-Length: the cap must hold mid-stream
        for start in range(0, len(body), 32_768):
            yield body[start : start + 32_768]

    response = _post(small_server, client, chunked())
    _assert_clear_page(response, 413, "too large")
    _assert_nothing_left(small_server)


def test_message_over_the_limit_is_refused(small_server: LiveServer, client: httpx.Client) -> None:
    body = multipart_body(BOUNDARY, [("message", None, "é".encode() * 1001)])
    _assert_clear_page(_post(small_server, client, body), 413, "too long")
    _assert_nothing_left(small_server)


def test_message_at_the_limit_is_accepted(small_server: LiveServer, client: httpx.Client) -> None:
    body = multipart_body(BOUNDARY, [("message", None, "é".encode() * 1000)])
    response = _post(small_server, client, body)
    assert response.status_code == 200
    assert 'id="codename"' in response.text
    assert row_counts(small_server.instance.settings) == {"sources": 1, "submissions": 1, "items": 1}


def test_too_many_files_are_refused(small_server: LiveServer, client: httpx.Client) -> None:
    parts: list[tuple[str, str | None, bytes]] = [("files", f"{i}.txt", b"data") for i in range(3)]
    _assert_clear_page(_post(small_server, client, multipart_body(BOUNDARY, parts)), 413, "too many files")
    _assert_nothing_left(small_server)


def test_empty_submission_is_refused(live_server: LiveServer, client: httpx.Client) -> None:
    # What a browser sends when nothing was typed and no file chosen.
    body = multipart_body(BOUNDARY, [("message", None, b"  \r\n "), ("files", "", b"")])
    _assert_clear_page(_post(live_server, client, body), 400, "nothing to send")
    _assert_nothing_left(live_server)


def test_invalid_utf8_message_is_refused(live_server: LiveServer, client: httpx.Client) -> None:
    body = multipart_body(BOUNDARY, [("message", None, b"\xff\xfe broken")])
    _assert_clear_page(_post(live_server, client, body), 400, "could not be read")
    _assert_nothing_left(live_server)


def test_cross_site_post_is_refused(live_server: LiveServer, client: httpx.Client) -> None:
    body = multipart_body(BOUNDARY, [("message", None, b"forged")])
    response = _post(live_server, client, body, Origin="http://evil.example")
    assert response.status_code == 403
    _assert_nothing_left(live_server)


@pytest.mark.parametrize("token", ["", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", "garbage!"])
def test_post_without_a_valid_csrf_token_is_refused(live_server: LiveServer, client: httpx.Client, token: str) -> None:
    live_server.submit_url(client)  # the browser has its cookie, but the token is wrong
    body = multipart_body(BOUNDARY, [("message", None, b"forged")])
    response = client.post(
        f"{live_server.source_url}/submit?csrf_token={token}", content=body, headers={"Content-Type": CONTENT_TYPE}
    )
    _assert_clear_page(response, 403, "expired")
    _assert_nothing_left(live_server)


def test_csrf_token_is_bound_to_the_browser_cookie(live_server: LiveServer, client: httpx.Client) -> None:
    url = live_server.submit_url(client)
    body = multipart_body(BOUNDARY, [("message", None, b"from another browser")])
    with httpx.Client() as other:
        other.get(f"{live_server.source_url}/submit")
        response = other.post(url, content=body, headers={"Content-Type": CONTENT_TYPE})
    _assert_clear_page(response, 403, "expired")
    _assert_nothing_left(live_server)


def test_client_vanishing_mid_upload_leaves_nothing(live_server: LiveServer, client: httpx.Client) -> None:
    body = multipart_body(BOUNDARY, [("files", "a.bin", b"q" * 2_000_000)])
    port = int(live_server.source_url.rsplit(":", 1)[1])
    target = live_server.submit_url(client).removeprefix(live_server.source_url)
    cookie = f"buzon_csrf={client.cookies['buzon_csrf']}"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        head = (
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Cookie: {cookie}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body[: len(body) // 2])
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while stored_files(live_server.instance.settings) and time.monotonic() < deadline:
        time.sleep(0.1)
    _assert_nothing_left(live_server)


def test_uninitialised_instance_refuses_tips(
    tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    instance = initialise(make_settings(tmp_path / "offline"))
    instance.settings.pepper_path.unlink()
    from sqlalchemy import delete

    from app.db.models import NewsroomKey
    from app.db.session import make_engine

    engine = make_engine(instance.settings.resolved_database_url)
    with engine.begin() as connection:
        connection.execute(delete(NewsroomKey))
    engine.dispose()
    server = server_factory(instance)
    body = multipart_body(BOUNDARY, [("message", None, b"a tip nobody could read")])
    with httpx.Client() as client:
        _assert_clear_page(_post(server, client, body), 503, "offline")
    _assert_nothing_left(server)
