"""SubmissionIngest on its own: any chunking of a body gives the same envelopes."""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import crypto
from app.errors import MalformedSubmission, MessageTooLong, TooManyFiles
from app.intake.ingest import MAX_FORM_FIELDS, Limits, SealedItem, SubmissionIngest, clean_filename
from app.storage import BlobStore
from tests.support import bodies_in, multipart_body

BOUNDARY = "xYzBoundary0123"
LIMITS = Limits(max_total_bytes=10 * 1024 * 1024, max_message_chars=5000, max_files=5)
NEWSROOM = crypto.generate_keypair()
INSTANCE = "ab" * 32  # an instance key fingerprint
KEYS = {crypto.key_id(NEWSROOM.public): NEWSROOM}


def _ingest(store: BlobStore, chunks: list[bytes], limits: Limits = LIMITS) -> list[SealedItem]:
    ingest = SubmissionIngest(
        boundary=BOUNDARY.encode(),
        newsroom_public_key=NEWSROOM.public,
        instance_fingerprint=INSTANCE,
        store=store,
        limits=limits,
    )
    try:
        for chunk in chunks:
            ingest.feed(chunk)
        items = ingest.finish()
    except Exception:
        ingest.abort()
        raise
    for item in items:
        item.blob.commit()
        item.blob.release()
    return items


def _open(store: BlobStore, item: SealedItem) -> tuple[crypto.EnvelopeMetadata, bytes]:
    data_key = crypto.open_capsule(item.capsule, KEYS)
    metadata = crypto.open_metadata(data_key, item.sealed_metadata, owner=None)
    with store.open(item.blob_name) as body:
        content = b"".join(crypto.read_body(data_key, body, metadata.size))
    assert store.size(item.blob_name) == item.body_size == crypto.body_size(metadata.size)
    return metadata, content


def _bytes_open_under(root: Path) -> int:
    """Bytes in the files this process has open under ``root``, named or not (O_TMPFILE)."""
    total = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(root)):
                total += os.stat(f"/proc/self/fd/{fd}").st_size
    return total


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    return [body[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    message=st.text(max_size=300),
    files=st.lists(st.tuples(st.text(min_size=1, max_size=40), st.binary(max_size=150_000)), max_size=3),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_any_chunking_yields_the_same_envelopes(
    tmp_path: Path, message: str, files: list[tuple[str, bytes]], cuts: list[int]
) -> None:
    names = [clean_filename(name.replace('"', "").replace("\r", "").replace("\n", "")) for name, _ in files]
    parts: list[tuple[str, str | None, bytes]] = [("message", None, message.encode())]
    parts += [("files", name, content) for name, (_, content) in zip(names, files, strict=True)]
    store = BlobStore(tmp_path / f"store-{len(list(tmp_path.iterdir()))}")
    store.create_dirs()
    body = multipart_body(BOUNDARY, parts)
    if not message.replace("\r\n", "\n").strip() and not files:
        return
    items = _ingest(store, _split(body, cuts))
    opened = [_open(store, item) for item in items]
    expected_message = message.replace("\r\n", "\n")
    if expected_message.strip():
        metadata, content = opened.pop(0)
        assert metadata.kind == "message"
        assert content.decode() == expected_message
    assert [(m.kind, m.name, c) for m, c in opened] == [
        ("file", name, content) for name, (_, content) in zip(names, files, strict=True)
    ]


def test_metadata_records_what_the_editor_needs(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    body = multipart_body(BOUNDARY, [("files", "C:\\Users\\ana\\Fotos\\foto\x07.jpg", b"\xff\xd8 jpeg bytes")])
    (item,) = _ingest(store, [body])
    metadata, content = _open(store, item)
    assert metadata.name == "foto.jpg"  # no path, no control characters
    assert metadata.type == "application/octet-stream"
    assert metadata.size == len(content)
    assert metadata.received.endswith("Z")
    assert len(metadata.received) == len("2026-01-01T00:00:00Z")


def test_long_file_names_are_cut_on_a_character_boundary() -> None:
    name = clean_filename("ñ" * 300 + ".pdf")
    assert len(name.encode()) <= crypto.MAX_NAME_BYTES
    assert name == "ñ" * 127


def test_only_ciphertext_reaches_the_store(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    marker = b"PLAINTEXT-MARKER-42"
    _ingest(store, [multipart_body(BOUNDARY, [("message", None, marker), ("files", "m.txt", marker * 1000)])])
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert marker not in path.read_bytes()


@pytest.mark.parametrize(
    ("parts", "error"),
    [
        ([("message", None, b"a" * 5001)], MessageTooLong),
        ([("files", f"{i}", b"x") for i in range(6)], TooManyFiles),
        ([("message", None, b"one"), ("message", None, b"two")], MalformedSubmission),
        ([("token", None, b"t" * 2000)], MalformedSubmission),
    ],
)
def test_limits_hold_and_nothing_is_left(
    tmp_path: Path, parts: list[tuple[str, str | None, bytes]], error: type[Exception]
) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(error):
        _ingest(store, _split(multipart_body(BOUNDARY, parts), [7, 100, 1000]))
    assert bodies_in(tmp_path) == []


def test_oversized_part_headers_are_refused(tmp_path: Path) -> None:
    body = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="{"a" * 9000}"\r\n\r\nx\r\n'
    with pytest.raises(MalformedSubmission):
        _ingest(BlobStore(tmp_path), [body.encode()])


def test_file_arrives_in_chunks_without_buffering(tmp_path: Path) -> None:
    """While a large file streams, ciphertext on disk keeps pace with the input."""
    store = BlobStore(tmp_path)
    ingest = SubmissionIngest(
        boundary=BOUNDARY.encode(),
        newsroom_public_key=NEWSROOM.public,
        instance_fingerprint=INSTANCE,
        store=store,
        limits=LIMITS,
    )
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big"\r\n\r\n'.encode()
    ingest.feed(head)
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(4):
        ingest.feed(block)
    written = _bytes_open_under(tmp_path)
    assert written >= 3 * 1024 * 1024  # all but the last chunk held back for TAG_FINAL
    ingest.abort()
    assert bodies_in(tmp_path) == []


def test_unknown_fields_are_dropped_and_not_kept_in_memory(tmp_path: Path) -> None:
    ingest = SubmissionIngest(
        boundary=BOUNDARY.encode(),
        newsroom_public_key=NEWSROOM.public,
        instance_fingerprint=INSTANCE,
        store=BlobStore(tmp_path),
        limits=LIMITS,
    )
    parts: list[tuple[str, str | None, bytes]] = [("message", None, b"a tip"), ("strip_metadata", None, b"1")]
    parts += [(f"junk{n}", None, b"x" * 1000) for n in range(10)]
    ingest.feed(multipart_body(BOUNDARY, parts))
    for item in ingest.finish():
        item.blob.discard()
    assert set(ingest.fields) == {"strip_metadata"}


def test_a_flood_of_small_fields_is_refused(tmp_path: Path) -> None:
    # 150 MiB of 1 KiB fields once stayed in memory to the end: the count of fields is capped.
    parts: list[tuple[str, str | None, bytes]] = [("message", None, b"a tip")]
    parts += [("website", None, b"x" * 1000) for _ in range(MAX_FORM_FIELDS + 1)]
    with pytest.raises(MalformedSubmission):
        _ingest(BlobStore(tmp_path), [multipart_body(BOUNDARY, parts)])
    assert bodies_in(tmp_path) == []
