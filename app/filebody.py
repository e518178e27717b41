"""One uploaded file on its way to the store, stripped of hidden metadata if asked.

When stripping is requested the file is held in memory (never on disk) up to
``max_bytes``; if it ends within that, its metadata is stripped and the
result encrypted. A larger file is encrypted as it streams, as sent. Memory
for these buffers comes from a shared budget, so concurrent uploads wait
for room instead of exhausting the server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from app import crypto
from app.errors import ServiceBusy
from app.sanitize import StripStatus, strip_metadata
from app.storage import BlobStore, PendingBlob

SANITISED = {
    StripStatus.STRIPPED: "stripped",
    StripStatus.NOTHING_TO_STRIP: "none-found",
    StripStatus.UNSUPPORTED: "unsupported",
    StripStatus.FAILED: "failed",
}


class MemoryBudget:
    """Bytes of plaintext that strip buffers may hold at once, across all uploads."""

    def __init__(self, total: int, wait_seconds: float) -> None:
        self._available = total
        self._wait = wait_seconds
        self._cond = threading.Condition()

    def reserve(self, amount: int) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._available >= amount, timeout=self._wait):
                raise ServiceBusy()
            self._available -= amount

    def release(self, amount: int) -> None:
        with self._cond:
            self._available += amount
            self._cond.notify_all()


@dataclass(frozen=True)
class StripPolicy:
    max_bytes: int
    budget: MemoryBudget

    @property
    def reservation(self) -> int:
        # Stripping holds the original and the cleaned copy at once.
        return 2 * self.max_bytes


@dataclass
class FinishedFile:
    data_key: bytes
    blob_name: str
    blob: PendingBlob
    size: int
    sha256: str
    sanitised: str


class FileBody:
    """Receives one file's bytes and leaves an encrypted, pending body."""

    def __init__(self, store: BlobStore, strip: StripPolicy | None) -> None:
        self._store = store
        self._strip = strip
        self._buffer: bytearray | None = None
        self._writer: crypto.BodyWriter | None = None
        self._blob: PendingBlob | None = None
        self._blob_name = ""
        self._data_key = crypto.new_data_key()
        self._sanitised = "not-requested"
        if strip is not None:
            strip.budget.reserve(strip.reservation)
            self._buffer = bytearray()
        else:
            self._open()

    def _open(self) -> crypto.BodyWriter:
        self._blob_name, self._blob = self._store.begin()
        self._writer = crypto.BodyWriter(self._data_key, self._blob.file)
        return self._writer

    def _release(self) -> None:
        if self._buffer is not None and self._strip is not None:
            self._buffer = None
            self._strip.budget.release(self._strip.reservation)

    def write(self, data: bytes) -> None:
        if self._buffer is None:
            assert self._writer is not None
            self._writer.write(data)
            return
        assert self._strip is not None
        self._buffer += data
        if len(self._buffer) > self._strip.max_bytes:
            # Too large to strip in memory: from here on it streams as sent.
            held = self._buffer
            self._open().write(held)
            self._release()
            self._sanitised = "too-large"

    def finish(self) -> FinishedFile:
        if self._buffer is not None:
            original = bytes(self._buffer)
            self._buffer.clear()  # keep at most the original and the stripped copy
            result = strip_metadata(original, filename="", content_type="")
            del original
            self._release()
            self._sanitised = SANITISED[result.status]
            self._open().write(result.data)
        assert self._writer is not None
        assert self._blob is not None
        digest = self._writer.finish()
        return FinishedFile(self._data_key, self._blob_name, self._blob, self._writer.size, digest, self._sanitised)

    def discard(self) -> None:
        self._release()
        if self._blob is not None:
            self._blob.discard()
