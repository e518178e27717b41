"""A request too broken for any app still gets its answer with the security headers."""

from __future__ import annotations

import pytest

from app.web.security import SECURITY_HEADERS
from tests.support import LiveServer, raw_http


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header Without Colon\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_a_malformed_request_gets_a_400_with_every_security_header(
    live_server: LiveServer, request_bytes: bytes
) -> None:
    for url in (live_server.source_url, live_server.editor_url):
        head, _, _ = raw_http(url, request_bytes).partition(b"\r\n\r\n")
        status, *lines = head.decode("latin-1").split("\r\n")
        assert status.startswith("HTTP/1.1 400"), status
        headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}
        for name, value in SECURITY_HEADERS.items():
            assert headers.get(name.lower()) == value, name
        assert "server" not in headers
        assert "date" not in headers
