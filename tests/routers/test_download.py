"""Editor downloads: exactly the plaintext, in batches; a tampered body is refused or cut short."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app import crypto
from app.web.downloads import BATCH_BYTES
from tests.support import LiveServer, post_multipart, stored_files

# Three batches, the last one short, and a last chunk that is partly padding.
SIZE = 2 * BATCH_BYTES + 12_345
CHUNKS_PER_BATCH = BATCH_BYTES // crypto.CHUNK_SIZE


@pytest.fixture
def upload(live_server: LiveServer, client: httpx.Client) -> tuple[bytes, Path]:
    """A file sent without a message, so that its body is the only one in the store."""
    content = secrets.token_bytes(SIZE)
    response = post_multipart(client, live_server.submit_url(client), {}, [("big.bin", content)])
    assert response.status_code == 200, response.text
    (body,) = stored_files(live_server.instance.settings)
    return content, body


@pytest.fixture
def editor(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        live_server.login(client, live_server.instance.add_editor())
        yield client


def _download_url(server: LiveServer, editor: httpx.Client) -> str:
    (source,) = re.findall(r'href="(/sources/[0-9a-f]+)"', editor.get(f"{server.editor_url}/").text)
    (item,) = re.findall(r'href="(/items/[0-9a-f]+/download)"', editor.get(f"{server.editor_url}{source}").text)
    return f"{server.editor_url}{item}"


def _tamper(body: Path, chunk: int) -> None:
    data = bytearray(body.read_bytes())
    data[crypto.BODY_HEADER_SIZE + chunk * crypto.BODY_CHUNK_SIZE + 7] ^= 1
    body.write_bytes(bytes(data))


def test_a_download_is_exactly_the_plaintext(
    live_server: LiveServer, upload: tuple[bytes, Path], editor: httpx.Client
) -> None:
    content, _ = upload
    response = editor.get(_download_url(live_server, editor))
    assert response.status_code == 200
    assert response.headers["content-length"] == str(SIZE)
    assert response.content == content


def test_a_body_tampered_in_its_first_batch_is_refused(
    live_server: LiveServer, upload: tuple[bytes, Path], editor: httpx.Client
) -> None:
    content, body = upload
    _tamper(body, CHUNKS_PER_BATCH - 1)
    response = editor.get(_download_url(live_server, editor))
    assert response.status_code == 404
    assert content[:64] not in response.content


def test_a_body_tampered_later_is_cut_short_before_the_bad_batch(
    live_server: LiveServer, upload: tuple[bytes, Path], editor: httpx.Client
) -> None:
    content, body = upload
    _tamper(body, CHUNKS_PER_BATCH + 1)
    received = bytearray()

    def read_all(response: httpx.Response) -> None:
        for piece in response.iter_bytes():
            received.extend(piece)

    with editor.stream("GET", _download_url(live_server, editor)) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            read_all(response)
    # Nothing of the batch holding the bad chunk is sent, not even the chunks before it.
    assert bytes(received) == content[:BATCH_BYTES]


def test_a_damaged_message_leaves_the_rest_of_the_source_page(
    live_server: LiveServer, client: httpx.Client, editor: httpx.Client
) -> None:
    fields = {"message": "a message that will be damaged"}
    kept = b"the file stays" * 10_000  # larger than the message, so the smaller body is the message's
    response = post_multipart(client, live_server.submit_url(client), fields, [("kept.bin", kept)])
    assert response.status_code == 200, response.text
    message_body = min(stored_files(live_server.instance.settings), key=lambda body: body.stat().st_size)
    _tamper(message_body, 0)
    (source,) = re.findall(r'href="(/sources/[0-9a-f]+)"', editor.get(f"{live_server.editor_url}/").text)
    page = editor.get(f"{live_server.editor_url}{source}")
    assert page.status_code == 200
    assert "1 item on this page cannot be opened" in page.text
    assert "a message that will be damaged" not in page.text
    (item,) = re.findall(r'href="(/items/[0-9a-f]+/download)"', page.text)
    assert editor.get(f"{live_server.editor_url}{item}").content == kept
