"""Uploads waiting for strip memory must not stall the upload that holds it, nor the pages."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support import LiveServer, ServerFactory, SettingsFactory, initialise, multipart_body, row_counts

KIB = 1024
# More uploads waiting for strip memory than the 40 worker threads anyio lends by default.
WAITERS = 50


def _body(boundary: str, file: bytes) -> bytes:
    parts: list[tuple[str, str | None, bytes]] = [("message", None, b"a photo"), ("strip_metadata", None, b"1")]
    return multipart_body(boundary, [*parts, ("files", "photo.bin", file)])


def _post(server: LiveServer, body: bytes | Iterator[bytes], boundary: str, timeout: float) -> int:
    with httpx.Client(timeout=timeout) as client:
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return client.post(server.submit_url(client), content=body, headers=headers).status_code


def test_uploads_waiting_for_strip_memory_leave_threads_for_the_upload_holding_it(
    tmp_path: Path, server_factory: ServerFactory, make_settings: SettingsFactory
) -> None:
    # Strip memory for one file at a time.
    settings = make_settings(tmp_path / "d", max_strip_bytes=64 * KIB, strip_memory_budget_bytes=128 * KIB)
    server = server_factory(initialise(settings))
    boundary = f"----buzon{secrets.token_hex(8)}"
    held = _body(boundary, b"\x00" + secrets.token_bytes(32 * KIB))
    split = held.index(b"\x00", held.index(b'filename="photo.bin"')) + KIB
    resume = threading.Event()

    def holding() -> Iterator[bytes]:
        yield held[:split]  # the file has begun: its strip buffer holds the whole budget
        resume.wait()
        yield held[split:]

    with ThreadPoolExecutor(1 + WAITERS) as pool:
        holder = pool.submit(_post, server, holding(), boundary, 30)
        time.sleep(1)
        waiters = [
            pool.submit(_post, server, _body(boundary, secrets.token_bytes(KIB)), boundary, 60) for _ in range(WAITERS)
        ]
        time.sleep(2)  # for every waiting upload to reach its file
        try:
            # Every waiting upload is parked in a worker thread; pages still load...
            with httpx.Client(timeout=10) as client:
                assert client.get(f"{server.source_url}/").status_code == 200
        finally:
            resume.set()
        # ...and the upload holding the memory finishes, freeing it for the others.
        assert holder.result() == 200
        assert [w.result() for w in waiters] == [200] * WAITERS
    assert row_counts(settings) == {"sources": 1 + WAITERS, "submissions": 1 + WAITERS, "items": 2 + 2 * WAITERS}
