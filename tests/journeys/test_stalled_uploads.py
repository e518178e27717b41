"""Nobody closes the tip line with uploads that stall (issue 11, section 5).

Five connections each send the start of a file, with stripping asked for, and
then nothing. Before: each reserved the whole strip memory of a file on its
first byte, so two of them held the budget, and every other upload waited
120 s and was lost. Now memory is reserved as bytes arrive, nobody waits for
it, and a connection that stays idle is ended.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.crypto import Sanitised
from tests.media.test_strip import make_jpeg
from tests.support import (
    LiveServer,
    ServerFactory,
    SettingsFactory,
    initialise,
    multipart_body,
    open_every_submission,
    post_multipart,
)

MIB = 1 << 20
STALLED = 5
SETTINGS = {"max_strip_bytes": MIB // 2, "strip_memory_budget_bytes": MIB, "upload_idle_seconds": 3}


@pytest.fixture
def server(tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory) -> LiveServer:
    return server_factory(initialise(make_settings(tmp_path / "data", **SETTINGS)))


@pytest.fixture
def two_slot_server(tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory) -> LiveServer:
    settings = make_settings(
        tmp_path / "data",
        **{**SETTINGS, "upload_idle_seconds": 60, "max_concurrent_uploads": 2, "upload_slot_wait_seconds": 1},
    )
    return server_factory(initialise(settings))


def _stall(server: LiveServer) -> socket.socket:
    """A connection that sends 200 bytes of a file to be cleaned, then goes quiet."""
    with httpx.Client() as client:
        url = urlsplit(server.submit_url(client))
        cookies = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    boundary = "stall"
    parts = [("strip_metadata", None, b"1"), ("files", "big.jpg", b"\xff\xd8\xff" + bytes(197))]
    body = multipart_body(boundary, parts)
    opened = body[: body.rindex(b"\r\n--")]  # the file part, unfinished
    head = (
        f"POST {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nCookie: {cookies}\r\n"
        f"Origin: {server.source_url}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body) + 400_000}\r\n\r\n"
    ).encode()
    assert url.hostname is not None
    assert url.port is not None
    raw = socket.create_connection((url.hostname, url.port), timeout=30)
    raw.sendall(head + opened)
    return raw


def test_stalled_uploads_hold_no_memory_others_need_and_are_ended(server: LiveServer) -> None:
    stalled = [_stall(server) for _ in range(STALLED)]
    try:
        time.sleep(0.5)  # all five are in, holding what they hold
        photo = make_jpeg()
        with httpx.Client(timeout=30) as client:
            response = post_multipart(
                client, server.submit_url(client), {"message": "a real tip", "strip_metadata": "1"}, [("p.jpg", photo)]
            )
        assert response.status_code == 200, response.text
        assert "could not remove hidden data" not in response.text
        (submission,) = open_every_submission(server.instance.settings, server.instance.recovery_secret)
        (photo_item,) = [metadata for item, metadata in submission if item[0] == "file"]
        assert photo_item.sanitised == Sanitised.STRIPPED
        # The server ends each stalled upload once it has been idle for upload_idle_seconds.
        for raw in stalled:
            raw.settimeout(SETTINGS["upload_idle_seconds"] + 10)
            answer = b""
            while chunk := raw.recv(65536):
                answer += chunk
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:200]
    finally:
        for raw in stalled:
            raw.close()
    assert len(open_every_submission(server.instance.settings, server.instance.recovery_secret)) == 1


def _send_tip(server: LiveServer, message: str) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return post_multipart(client, server.submit_url(client), {"message": message}, [("a.txt", b"attached")])


def test_uploads_beyond_the_slots_wait_then_get_the_busy_page_and_nothing_is_kept(two_slot_server: LiveServer) -> None:
    server = two_slot_server
    stalled = [_stall(server) for _ in range(2)]
    try:
        time.sleep(0.5)  # both hold a slot, each with a thread of its own
        started = time.monotonic()
        refused = _send_tip(server, "the third upload")
        assert refused.status_code == 503
        assert "We are busy right now" in refused.text
        assert refused.headers["content-security-policy"]
        # Refused after the slot wait (1 s here), not queued behind the stalled uploads (idle for 60 s).
        assert 1 <= time.monotonic() - started < 10
    finally:
        for raw in stalled:
            raw.close()
    # Their slots come back when the server sees the connections close.
    deadline = time.monotonic() + 20
    while (answer := _send_tip(server, "sent once the slots are free")).status_code == 503:
        assert time.monotonic() < deadline, "the stalled uploads' slots never came back"
        time.sleep(0.2)
    assert answer.status_code == 200, answer.text
    (submission,) = open_every_submission(server.instance.settings, server.instance.recovery_secret)
    assert [metadata.kind for _, metadata in submission] == ["message", "file"]
