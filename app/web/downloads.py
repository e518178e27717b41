"""Synchronous body iterators made cheap to stream from a worker thread.

Starlette pulls a synchronous iterator one ``next()`` per worker-thread hop.
At one 64 KiB envelope chunk per hop the hops, not the decryption, bound a
download; a batch of about 1 MiB makes them cheap and still holds little memory.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

BATCH_BYTES = 1024 * 1024


def batched(chunks: Iterable[bytes], size: int = BATCH_BYTES) -> Iterator[bytes]:
    """Join consecutive chunks into pieces of at least ``size`` bytes; only the last may be shorter."""
    batch: list[bytes] = []
    held = 0
    for chunk in chunks:
        batch.append(chunk)
        held += len(chunk)
        if held >= size:
            yield b"".join(batch)
            batch, held = [], 0
    if batch:
        yield b"".join(batch)


def primed(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Pull the first piece now, so that its errors raise here rather than after a 200 is sent."""
    first = next(pieces, b"")
    return itertools.chain([first], pieces)
