"""receive_submission reads ahead while a worker thread encrypts, in bounded batches."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from python_multipart.exceptions import MultipartParseError
from starlette.requests import Request
from starlette.types import Message

from app import crypto
from app.errors import MalformedSubmission, SubmissionTooLarge, UploadTooSlow
from app.intake.ingest import Limits, SealedItem, SubmissionIngest
from app.storage import BlobStore
from app.web import upload
from tests.support import bodies_in

BOUNDARY = "xYzBoundary0123"
NEWSROOM = crypto.generate_keypair()
INSTANCE = "ab" * 32  # an instance key fingerprint
CHUNK = 16 * 1024
HEAD = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="f"\r\n\r\n'.encode()
TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


class _Body:
    """An ASGI ``receive`` that hands out ``messages`` and counts how many were taken.

    After the last message comes a disconnect, which cuts the body short unless it is ``complete``.
    """

    def __init__(self, messages: Iterator[bytes], *, complete: bool = True) -> None:
        self._messages = messages
        self._next: bytes | None = next(messages, None)
        self._complete = complete
        self.taken = 0

    async def receive(self) -> Message:
        await anyio.lowlevel.checkpoint()
        if self._next is None:
            return {"type": "http.disconnect"}
        body, self._next = self._next, next(self._messages, None)
        self.taken += 1
        more = self._next is not None or not self._complete
        return {"type": "http.request", "body": body, "more_body": more}


def _request(body: _Body) -> Request:
    headers = [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())]
    return Request({"type": "http", "method": "POST", "headers": headers}, body.receive)


def _ingest(store: BlobStore, limits: Limits) -> SubmissionIngest:
    return SubmissionIngest(
        boundary=BOUNDARY.encode(),
        newsroom_public_key=NEWSROOM.public,
        instance_fingerprint=INSTANCE,
        store=store,
        limits=limits,
    )


def _receive(body: _Body, ingest: SubmissionIngest, limits: Limits) -> list[SealedItem]:
    async def run() -> list[SealedItem]:
        return await upload.receive_submission(_request(body), ingest, limits, charge=lambda _size: None)

    return anyio.run(run)


def _file_messages(content: bytes) -> Iterator[bytes]:
    yield HEAD
    for start in range(0, len(content), CHUNK):
        yield content[start : start + CHUNK]
    yield TAIL


def test_a_slow_ingest_takes_what_has_arrived_in_one_hop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hops: list[int] = []
    feed_batch = upload._feed_batch

    def slow_feed_batch(ingest: SubmissionIngest, chunks: list[bytes]) -> None:
        hops.append(len(chunks))
        time.sleep(0.02)  # meanwhile the body is read ahead
        feed_batch(ingest, chunks)

    monkeypatch.setattr(upload, "_feed_batch", slow_feed_batch)
    content = bytes(range(256)) * 1024
    limits = Limits(max_total_bytes=1024 * 1024, max_message_chars=10, max_files=1)
    store = BlobStore(tmp_path)
    (item,) = _receive(_Body(_file_messages(content)), _ingest(store, limits), limits)
    assert sum(hops) == len(content) // CHUNK + 2
    assert max(hops) == upload.READ_AHEAD_MESSAGES + 1  # never more than was allowed to wait
    assert len(hops) < sum(hops) / 2
    item.blob.discard()


def test_the_size_limit_fires_mid_stream_and_read_ahead_stays_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload, "DRAIN_LIMIT_BYTES", 0)  # count only what was read before the refusal

    def endless() -> Iterator[bytes]:
        yield HEAD
        while True:
            yield b"z" * CHUNK

    limits = Limits(max_total_bytes=256 * 1024, max_message_chars=10, max_files=1)
    body = _Body(endless())
    with pytest.raises(SubmissionTooLarge):
        _receive(body, _ingest(BlobStore(tmp_path), limits), limits)
    # The limit, then at most a batch in the thread, the read-ahead waiting, and one message in hand.
    assert body.taken <= limits.max_total_bytes // CHUNK + 2 * (upload.READ_AHEAD_MESSAGES + 1) + 2
    assert bodies_in(tmp_path) == []


def test_a_client_gone_mid_body_leaves_nothing(tmp_path: Path) -> None:
    limits = Limits(max_total_bytes=1024 * 1024, max_message_chars=10, max_files=1)
    body = _Body(iter([HEAD, b"q" * CHUNK, b"q" * CHUNK]), complete=False)
    with pytest.raises(MalformedSubmission):
        _receive(body, _ingest(BlobStore(tmp_path), limits), limits)
    assert bodies_in(tmp_path) == []


def test_a_refusal_keeps_its_cause(tmp_path: Path) -> None:
    limits = Limits(max_total_bytes=1024 * 1024, max_message_chars=10, max_files=1)
    with pytest.raises(MalformedSubmission) as refused:
        _receive(_Body(iter([b"not multipart at all\r\n" * 10])), _ingest(BlobStore(tmp_path), limits), limits)
    assert isinstance(refused.value.__cause__, MultipartParseError)


class _Trickle(_Body):
    """A client that sends a few bytes now and then: alive, but never getting anywhere."""

    async def receive(self) -> Message:
        await anyio.sleep(0.05)
        return await super().receive()


def test_an_upload_that_crawls_is_ended_and_leaves_nothing(tmp_path: Path) -> None:
    limits = Limits(max_total_bytes=1024 * 1024, max_message_chars=10, max_files=1)
    body = _Trickle(iter([HEAD, *([b"t" * 10] * 1000)]))
    ingest = _ingest(BlobStore(tmp_path), limits)
    pace = upload.Pace(idle_seconds=5, min_bytes_per_second=1000, grace_seconds=0.3)

    async def run() -> list[SealedItem]:
        return await upload.receive_submission(_request(body), ingest, limits, lambda _size: None, pace)

    with pytest.raises(UploadTooSlow):
        anyio.run(run)
    assert body.taken < 20  # ended soon after the grace, not after a thousand trickles
    assert bodies_in(tmp_path) == []


def test_an_upload_that_goes_silent_is_ended(tmp_path: Path) -> None:
    limits = Limits(max_total_bytes=1024 * 1024, max_message_chars=10, max_files=1)

    async def silent() -> Message:
        await anyio.sleep(3600)
        raise AssertionError("never reached")

    request = Request({"type": "http", "method": "POST", "headers": _request(_Body(iter([]))).scope["headers"]}, silent)
    ingest = _ingest(BlobStore(tmp_path), limits)
    pace = upload.Pace(idle_seconds=0.2)

    async def run() -> list[SealedItem]:
        return await upload.receive_submission(request, ingest, limits, lambda _size: None, pace)

    with pytest.raises(UploadTooSlow):
        anyio.run(run)
