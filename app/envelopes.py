"""Small envelopes written and read whole: messages and replies."""

from __future__ import annotations

from dataclasses import dataclass

from app import crypto
from app.storage import BlobStore, PendingBlob


@dataclass
class WrittenBody:
    data_key: bytes
    blob_name: str
    blob: PendingBlob
    size: int
    sha256: str


def write_body(store: BlobStore, content: bytes) -> WrittenBody:
    """Encrypt ``content`` under a fresh data key into a pending blob."""
    data_key = crypto.new_data_key()
    blob_name, blob = store.begin()
    try:
        writer = crypto.BodyWriter(data_key, blob.file)
        writer.write(content)
        digest = writer.finish()
    except BaseException:
        blob.discard()
        raise
    return WrittenBody(data_key, blob_name, blob, len(content), digest)


def read_body(store: BlobStore, blob_name: str, data_key: bytes, size: int) -> bytes:
    with store.open(blob_name) as body:
        return b"".join(crypto.read_body(data_key, body, size))
