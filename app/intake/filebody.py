"""One uploaded file on its way to the store, stripped of hidden metadata if asked.

When stripping is requested the file is held in memory (never on disk) up to
``max_bytes``; if it ends within that, the parser sandbox's worker strips its
metadata and the result is encrypted. A larger file is encrypted as it streams, as sent. Memory
for these buffers comes from a shared budget, reserved as bytes arrive (a
stalled upload holds only what it sent) and never waited for: a file that finds
the budget spent streams on as sent, marked too-large, and the source is told.

The buffer is an anonymous memory mapping of its own rather than a growing
``bytearray``: growing one reallocates and copies (briefly holding two), and
the allocator may keep the freed memory for good, so one large upload would
leave the server that much bigger.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import threading
from dataclasses import dataclass

from app import crypto
from app.media.sandbox import Sandbox
from app.storage import BlobStore, PendingBlob
from app.version import buzon_version

# Reservations grow in steps of this much plaintext (twice it, for the cleaned copy).
RESERVE_STEP = 64 * 1024


class MemoryBudget:
    """Bytes of plaintext that strip buffers may hold at once, across all uploads. Nobody waits."""

    def __init__(self, total: int) -> None:
        self._available = total
        self._lock = threading.Lock()

    def try_reserve(self, amount: int) -> bool:
        with self._lock:
            if self._available < amount:
                return False
            self._available -= amount
            return True

    def release(self, amount: int) -> None:
        with self._lock:
            self._available += amount


@dataclass(frozen=True)
class StripPolicy:
    max_bytes: int
    budget: MemoryBudget
    sandbox: Sandbox

    def reservation_for(self, held: int) -> int:
        # Stripping holds the original and the cleaned copy at once.
        steps = -(-max(held, 1) // RESERVE_STEP)
        return 2 * min(steps * RESERVE_STEP, self.max_bytes)


@dataclass
class FinishedFile:
    data_key: bytes
    blob_name: str
    blob: PendingBlob
    size: int
    sha256: str
    sanitised: crypto.Sanitised
    # The bytes as sent, before cleaning; the stored ones where no cleaner ran.
    sent_size: int
    sent_sha256: str
    # What the cleaner's parser found, and which cleaner: "" where none ran (docs/evidence.md).
    detected: str = ""
    cleaner: str = ""


class _Held:
    """One file's plaintext, held for stripping in an anonymous mapping: nothing backs it
    on disk, its pages are taken only as bytes arrive, and closing it gives them all back."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # An anonymous mapping cannot be empty; the capacity alone bounds what is held.
        self._map = mmap.mmap(-1, max(capacity, 1), flags=mmap.MAP_PRIVATE)
        self.size = 0

    def fits(self, more: int) -> bool:
        return self.size + more <= self.capacity

    def append(self, data: bytes | memoryview) -> None:
        self._map.write(data)
        self.size += len(data)

    def copy(self) -> bytes:
        return self._map[: self.size]

    def write_to(self, writer: crypto.BodyWriter) -> None:
        writer.write(memoryview(self._map)[: self.size])

    def close(self) -> None:
        # A view may outlive a failed write_to, in the traceback of its error: the
        # mapping then goes with the last view, and the error is the one to report.
        with contextlib.suppress(BufferError):
            self._map.close()


class FileBody:
    """Receives one file's bytes and leaves an encrypted, pending body."""

    def __init__(self, store: BlobStore, strip: StripPolicy | None) -> None:
        self._store = store
        self._strip = strip
        self._held: _Held | None = None
        self._writer: crypto.BodyWriter | None = None
        self._blob: PendingBlob | None = None
        self._blob_name = ""
        self._data_key = crypto.new_data_key()
        self._sanitised = crypto.Sanitised.NOT_REQUESTED
        self._reserved = 0
        if strip is not None and self._reserve(strip, 0):
            self._held = _Held(strip.max_bytes)
        else:
            if strip is not None:
                self._sanitised = crypto.Sanitised.TOO_LARGE  # no strip memory free: kept as sent
            self._open()

    def _reserve(self, strip: StripPolicy, held: int) -> bool:
        """Grow this file's reservation to cover ``held`` bytes; False if the budget is spent."""
        needed = strip.reservation_for(held) - self._reserved
        if needed <= 0:
            return True
        if not strip.budget.try_reserve(needed):
            return False
        self._reserved += needed
        return True

    def _open(self) -> crypto.BodyWriter:
        self._blob_name, self._blob = self._store.begin()
        self._writer = crypto.BodyWriter(self._data_key, self._blob.file)
        return self._writer

    def _release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None
        if self._strip is not None and self._reserved:
            self._strip.budget.release(self._reserved)
            self._reserved = 0

    def write(self, data: bytes | memoryview) -> None:
        if self._held is None:
            assert self._writer is not None
            self._writer.write(data)
        elif (
            self._held.fits(len(data))
            and self._strip is not None
            and self._reserve(self._strip, self._held.size + len(data))
        ):
            self._held.append(data)
        else:
            # Too large to strip in memory, or no strip memory free: from here on it streams as sent.
            writer = self._open()
            self._held.write_to(writer)
            writer.write(data)
            self._release()
            self._sanitised = crypto.Sanitised.TOO_LARGE

    def finish(self) -> FinishedFile:
        sent: tuple[int, str] | None = None
        detected = cleaner = ""
        if self._held is not None and self._strip is not None:
            original = self._held.copy()
            self._held.close()  # keep at most the original and the stripped copy
            sent = len(original), hashlib.sha256(original).hexdigest()
            # Parsed by the sandbox's worker, never here: see app/media/sandbox.py.
            data, self._sanitised, detected = self._strip.sandbox.strip(original)
            cleaner = f"buzon {buzon_version()}"
            del original
            self._release()
            self._open().write(data)
        assert self._writer is not None
        assert self._blob is not None
        digest = self._writer.finish()
        size = self._writer.size
        sent_size, sent_sha256 = sent or (size, digest)  # streamed as sent: the stored bytes are the sent ones
        return FinishedFile(
            self._data_key,
            self._blob_name,
            self._blob,
            size,
            digest,
            self._sanitised,
            sent_size=sent_size,
            sent_sha256=sent_sha256,
            detected=detected,
            cleaner=cleaner,
        )

    def discard(self) -> None:
        self._release()
        if self._blob is not None:
            self._blob.discard()
