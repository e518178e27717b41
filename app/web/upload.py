"""Receiving a submission body: fed to the ingest as it arrives, drained if refused."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio
from anyio import CapacityLimiter, to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message

from app.errors import MalformedSubmission, SubmissionError, SubmissionTooLarge, TryLater, UploadTooSlow
from app.intake.ingest import Limits, SealedItem, SubmissionIngest

# After a refused upload the rest of the body is read and dropped, up to this
# much, so the browser gets to show the error page instead of a reset.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
# ... and for at most this long: a client that stops sending gets the page anyway.
DRAIN_SECONDS = 30.0
# While a worker thread encrypts one batch, the event loop reads ahead up to this
# many body messages (uvicorn hands over at most ~256 KiB in each), and the next
# hop to the thread takes all of them: reading overlaps encrypting, hops stay few,
# and the plaintext held in memory stays bounded.
READ_AHEAD_MESSAGES = 4


@dataclass(frozen=True)
class Pace:
    """How slow an upload may be before it is ended: it holds a thread and memory meanwhile.

    No byte for ``idle_seconds`` ends it; so does averaging under
    ``min_bytes_per_second`` once ``grace_seconds`` have passed (a connection
    that trickles a byte now and then to stay alive).
    """

    idle_seconds: float = 60.0
    min_bytes_per_second: int = 256
    grace_seconds: float = 120.0


class _RequestBody:
    """The request body as raw ASGI messages, remembering whether it has ended.

    Reading ``receive`` directly (rather than ``request.stream()``) lets a
    refused upload drain the rest without waiting for bytes that never come.
    """

    def __init__(self, request: Request, pace: Pace | None = None) -> None:
        # Whoever reads the body says so, so that the error pages know not to.
        request.state.body_taken = True
        self._receive = request.receive
        self._pace = pace
        self.ended = False

    async def chunks(self) -> AsyncIterator[bytes]:
        started, received = time.monotonic(), 0
        while not self.ended:
            message = await self._next(started, received)
            if message["type"] == "http.disconnect":
                raise ClientDisconnect()
            self.ended = not message.get("more_body", False)
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            yield chunk

    async def _next(self, started: float, received: int) -> Message:
        if self._pace is None:
            return await self._receive()
        elapsed = time.monotonic() - started
        if elapsed > self._pace.grace_seconds and received < self._pace.min_bytes_per_second * elapsed:
            raise UploadTooSlow()
        try:
            with anyio.fail_after(self._pace.idle_seconds):
                return await self._receive()
        except TimeoutError as e:
            raise UploadTooSlow() from e

    async def drain(self, limit: int) -> None:
        dropped = 0
        with contextlib.suppress(ClientDisconnect), anyio.move_on_after(DRAIN_SECONDS):
            async for chunk in self.chunks():
                dropped += len(chunk)
                if dropped > limit:
                    return


Charge = Callable[[int], None]


async def receive_submission(
    request: Request, ingest: SubmissionIngest, limits: Limits, charge: Charge, pace: Pace | None = None
) -> list[SealedItem]:
    """Feed the body to the ingest as it arrives; on any failure remove what it wrote.

    ``charge`` is called with the size of each piece as it arrives, before it is
    used: a budget is spent by bytes that came, never by a length a header claims.
    """
    declared = request.headers.get("content-length", "")
    body = _RequestBody(request, pace)
    # The ingest runs on a thread of this upload's own, not one of the pool the
    # pages share: a file waiting there for strip memory (app/intake/filebody.py) would
    # otherwise hold a thread that the upload holding that memory needs to finish.
    own_thread = CapacityLimiter(1)
    try:
        if declared.isdigit() and int(declared) > limits.max_total_bytes:
            raise SubmissionTooLarge()
        await _feed(body, ingest, own_thread, charge)
        return await to_thread.run_sync(ingest.finish, limiter=own_thread)
    except UploadTooSlow:
        ingest.abort()  # nothing to drain: the client sends nothing, or next to nothing
        raise
    except (SubmissionError, TryLater):
        # Over the hourly budget mid-upload too: the rest is dropped unread, so the page shows.
        ingest.abort()
        await body.drain(DRAIN_LIMIT_BYTES)
        raise
    except ClientDisconnect as e:
        ingest.abort()
        raise MalformedSubmission() from e
    except BaseException:
        ingest.abort()
        raise


async def _feed(body: _RequestBody, ingest: SubmissionIngest, thread: CapacityLimiter, charge: Charge) -> None:
    """Read the body in one task while the ingest encrypts what has arrived in a worker thread."""
    send, receive = anyio.create_memory_object_stream[bytes](READ_AHEAD_MESSAGES)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(_read_ahead, body, send, charge)
            async with receive:
                async for chunk in receive:
                    await to_thread.run_sync(_feed_batch, ingest, [chunk, *_arrived(receive)], limiter=thread)
    except BaseExceptionGroup as group:
        # One side failed and the other was cancelled: the failure is what the caller handles.
        failure = group.exceptions[0]
        context = None if failure.__suppress_context__ else failure.__context__
        raise failure from failure.__cause__ or context


async def _read_ahead(body: _RequestBody, send: MemoryObjectSendStream[bytes], charge: Charge) -> None:
    async with send:
        async for chunk in body.chunks():
            if chunk:
                charge(len(chunk))
                await send.send(chunk)


def _arrived(receive: MemoryObjectReceiveStream[bytes]) -> list[bytes]:
    """The chunks already read ahead, without waiting for more."""
    chunks = []
    with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
        while True:
            chunks.append(receive.receive_nowait())
    return chunks


def _feed_batch(ingest: SubmissionIngest, chunks: list[bytes]) -> None:
    for chunk in chunks:
        ingest.feed(chunk)


async def drain_unread_body(request: Request) -> None:
    """Before an error page for an upload refused unread, drop its body (bounded).

    Browsers that are still sending when the answer comes often show a reset
    connection instead of the page; reading the rest first lets the page show.
    Only multipart bodies nobody has started reading are drained: reading a
    finished body would wait for a disconnect.
    """
    if request.method != "POST" or getattr(request.state, "body_taken", False):
        return
    if not request.headers.get("content-type", "").lower().startswith("multipart/"):
        return
    await _RequestBody(request).drain(DRAIN_LIMIT_BYTES)
