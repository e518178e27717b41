"""The hourly budgets count what really arrives: nobody closes the tip line with headers alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.settings import MIB
from tests.support import LiveServer, ServerFactory, SettingsFactory, initialise, multipart_body, raw_http, submit_tip

BYTES_PER_HOUR = 4 * MIB


@pytest.fixture
def budgeted(tmp_path: Path, make_settings: SettingsFactory, server_factory: ServerFactory) -> LiveServer:
    settings = make_settings(
        tmp_path / "data", max_bytes_per_hour=BYTES_PER_HOUR, max_submission_bytes=2 * MIB, max_submissions_per_hour=10
    )
    return server_factory(initialise(settings))


def _headers_only(server: LiveServer, client: httpx.Client, declared: int) -> None:
    """A submission's headers, a CSRF token and a declared length, and then no body at all."""
    url = urlsplit(server.submit_url(client))
    cookies = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    request = (
        f"POST {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nCookie: {cookies}\r\n"
        f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {declared}\r\n\r\n"
    )
    raw_http(server.source_url, request.encode())


def test_declared_lengths_without_bodies_spend_no_budget_and_no_submission(
    budgeted: LiveServer, client: httpx.Client
) -> None:
    for power in range(36, -1, -1):
        _headers_only(budgeted, client, 2**power)
    response = submit_tip(budgeted, client, "a tip after the flood of headers")
    assert response.status_code == 200, response.text


def _chunked(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), 64 * 1024):
        yield body[start : start + 64 * 1024]


def test_chunked_uploads_are_counted_as_they_arrive(budgeted: LiveServer, client: httpx.Client) -> None:
    boundary = "----budget"
    body = multipart_body(boundary, [("message", None, b"a tip"), ("files", "a.bin", bytes(1536 * 1024))])
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    statuses = []
    for _ in range(4):
        # A generator body: httpx sends it chunked, with no Content-Length to charge up front.
        response = client.post(budgeted.submit_url(client), content=_chunked(body), headers=headers)
        statuses.append(response.status_code)
    # 1.5 MiB each against 4 MiB an hour: the third no longer fits.
    assert statuses[:2] == [200, 200]
    assert statuses[2:] == [503, 503]
