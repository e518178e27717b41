"""Streaming multipart ingest: each part is encrypted as its bytes arrive.

Starlette's ``request.form()`` spools uploads over 1 MiB to plaintext temporary
files, so submissions never go through it. Instead the raw request body is fed
to python-multipart's push parser, file bytes go straight into a
``BodyWriter`` and only ciphertext reaches the disk. Every limit is checked as
bytes arrive, and ``abort`` removes whatever was half-written.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app import crypto
from app.clock import sealed_receipt_time
from app.envelopes import write_body
from app.errors import (
    EmptySubmission,
    FirstMessageTooShort,
    MalformedSubmission,
    MessageTooLong,
    StorageFull,
    SubmissionTooLarge,
    TooManyFiles,
    is_out_of_space,
)
from app.evidence.receipts import Receipt, new_salt, seal_receipt
from app.intake.filebody import FileBody, StripPolicy
from app.storage import BlobStore, PendingBlob

MESSAGE_FIELD = "message"
# Hidden from people by CSS; a bot that fills every field fills this one too.
HONEYPOT_FIELD = "website"
STRIP_FIELD = "strip_metadata"
FILES_FIELD = "files"
# Small form fields (tokens, checkboxes) are kept in memory; nothing else is.
MAX_SMALL_FIELD_BYTES = 1024
# The form has three non-file fields; junk fields are dropped unread, and this
# many non-file parts in all (the message included) are the most one body may carry.
KNOWN_FIELDS = frozenset({HONEYPOT_FIELD, STRIP_FIELD})
MAX_FORM_FIELDS = 16
MAX_PART_HEADER_BYTES = 8192
# The longest UTF-8 character is 4 bytes, so this many bytes always suffices.
_BYTES_PER_CHAR = 4


@dataclass(frozen=True)
class Limits:
    max_total_bytes: int
    max_message_chars: int
    max_files: int
    max_strip_bytes: int = 0
    # Refuse once the store's filesystem would have less than this left.
    reserve_bytes: int = 0


@dataclass
class SealedItem:
    """One encrypted envelope whose body is still pending in the store."""

    kind: str
    capsule: bytes
    sealed_metadata: bytes
    blob_name: str
    body_size: int
    blob: PendingBlob
    submission_id: str  # chosen before sealing: the metadata names it (docs/crypto.md)
    # The intake receipt sealed under the envelope's data key, and its commitment (docs/evidence.md).
    sealed_receipt: bytes
    commitment: bytes


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    content_type: str = ""
    data: bytearray = field(default_factory=bytearray)
    body: FileBody | None = None


def boundary_from_content_type(content_type: str | None) -> bytes:
    if not content_type:
        raise MalformedSubmission()
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 200:
        raise MalformedSubmission()
    return boundary


def clean_filename(raw: str) -> str:
    """Keep only the last path component, without control characters, ≤255 bytes."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    encoded = name.encode("utf-8")[: crypto.MAX_NAME_BYTES]
    return encoded.decode("utf-8", errors="ignore") or "unnamed"


def clean_content_type(raw: bytes) -> str:
    """The declared type as printable ASCII, at most 100 characters (docs/crypto.md)."""
    return "".join(c for c in raw.decode("latin-1") if " " <= c <= "~")[: crypto.MAX_TYPE_CHARS]


@contextmanager
def _full_disk_as_storage_full() -> Iterator[None]:
    try:
        yield
    except OSError as e:
        if is_out_of_space(e):
            raise StorageFull() from e
        raise


class SubmissionIngest:
    """Consumes one multipart body and produces sealed envelopes.

    Not thread-safe; feed it from one thread at a time.
    """

    def __init__(
        self,
        *,
        boundary: bytes,
        newsroom_public_key: bytes,
        instance_fingerprint: str,
        store: BlobStore,
        limits: Limits,
        min_message_chars: int = 0,
        strip: StripPolicy | None = None,
    ) -> None:
        self._strip = strip
        self._instance = instance_fingerprint
        self._min_message_chars = min_message_chars
        self._npk = newsroom_public_key
        # The submission's id is drawn now, so that every envelope's metadata can name it.
        self.submission_id = secrets.token_hex(16)
        self._store = store
        self._limits = limits
        self._received = 0
        self._files = 0
        self._ended = False
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._header_bytes = 0
        self.items: list[SealedItem] = []
        self.fields: dict[str, str] = {}
        self._small_parts = 0
        # (file name, what happened to its hidden metadata), for the receipt page.
        self.sanitised: list[tuple[str, crypto.Sanitised]] = []
        self._message: bytes | None = None
        self._pending: list[PendingBlob] = []
        self._bodies: list[FileBody] = []
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_end": self._on_end,
            },
        )

    # -- public API ----------------------------------------------------------------

    def check_room(self, expected_bytes: int = 0) -> None:
        """Refuse now if ``expected_bytes`` more would eat into the store's reserve."""
        if self._store.free_bytes() < self._limits.reserve_bytes + expected_bytes:
            raise StorageFull()

    def feed(self, data: bytes) -> None:
        self._received += len(data)
        if self._received > self._limits.max_total_bytes:
            raise SubmissionTooLarge()
        if self._limits.reserve_bytes:
            self.check_room()
        try:
            with _full_disk_as_storage_full():
                self._parser.write(data)
        except MultipartParseError as e:
            raise MalformedSubmission() from e

    def finish(self) -> list[SealedItem]:
        """Check the body ended properly and return the envelopes, message first."""
        try:
            self._parser.finalize()
        except MultipartParseError as e:
            raise MalformedSubmission() from e
        with _full_disk_as_storage_full():
            return self._finish()

    def _finish(self) -> list[SealedItem]:
        if not self._ended:
            raise MalformedSubmission()
        items = list(self.items)
        message = self._message_text()
        if message:
            items.insert(0, self._seal_message(message))
        if not items:
            raise EmptySubmission()
        return items

    def abort(self) -> None:
        """Remove every body this submission started; safe to call twice."""
        for body in self._bodies:
            body.discard()
        self._bodies.clear()
        for blob in self._pending:
            blob.discard()
        self._pending.clear()
        self.items.clear()

    # -- parser callbacks ------------------------------------------------------------------

    def _on_part_begin(self) -> None:
        self._part = _Part()
        self._headers = {}
        self._header_bytes = 0

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_value += data[start:end]

    def _count_header(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise MalformedSubmission()

    def _on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        kind, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name")
        if kind != b"form-data" or name is None:
            raise MalformedSubmission()
        part = self._part
        part.name = name.decode("utf-8", errors="replace")
        raw_filename = options.get(b"filename")
        if raw_filename is not None and part.name == FILES_FIELD:
            part.filename = raw_filename.decode("utf-8", errors="replace")
            part.content_type = clean_content_type(self._headers.get("content-type", b""))
            self._start_file(part)
        else:
            self._small_parts += 1
            if self._small_parts > MAX_FORM_FIELDS or (part.name == MESSAGE_FIELD and self._message is not None):
                raise MalformedSubmission()

    def _start_file(self, part: _Part) -> None:
        # An empty file input still sends a part with filename=""; it is
        # counted and opened only once its first byte arrives.
        if not part.filename:
            return
        self._files += 1
        if self._files > self._limits.max_files:
            raise TooManyFiles()
        # Stripping is asked for by a checkbox that the form puts before the files.
        strip = self._strip if self.fields.get(STRIP_FIELD) else None
        part.body = FileBody(self._store, strip)
        self._bodies.append(part.body)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part.body is not None:
            # A view, not a copy: file bytes go straight on to be encrypted.
            part.body.write(memoryview(data)[start:end])
            return
        if part.filename is not None:
            if end > start:  # bytes for a file input that had no name
                part.filename = "unnamed"
                self._start_file(part)
                self._on_part_data(data, start, end)
            return
        part.data += data[start:end]
        cap = self._limits.max_message_chars * _BYTES_PER_CHAR if part.name == MESSAGE_FIELD else MAX_SMALL_FIELD_BYTES
        if len(part.data) > cap:
            raise MessageTooLong() if part.name == MESSAGE_FIELD else MalformedSubmission()

    def _on_part_end(self) -> None:
        part = self._part
        if part.body is not None:
            self.items.append(self._seal_file(part))
        elif part.name == MESSAGE_FIELD:
            self._message = bytes(part.data)
        elif part.filename is None and part.name in KNOWN_FIELDS:
            self.fields[part.name] = part.data.decode("utf-8", errors="replace")

    def _on_end(self) -> None:
        self._ended = True

    # -- sealing ------------------------------------------------------------------------------

    def _seal_file(self, part: _Part) -> SealedItem:
        assert part.body is not None
        done = part.body.finish()
        self._bodies.remove(part.body)
        self._pending.append(done.blob)
        metadata = crypto.EnvelopeMetadata(
            kind="file",
            name=clean_filename(part.filename or ""),
            type=part.content_type,
            size=done.size,
            sha256=done.sha256,
            received=sealed_receipt_time(),
            sanitised=done.sanitised,
            owner=self.submission_id,
        )
        self.sanitised.append((metadata.name, done.sanitised))
        sent = _Sent(done.sent_size, done.sent_sha256, done.detected, done.cleaner)
        return self._sealed_item(done.data_key, metadata, done.blob_name, done.blob, sent)

    def _message_text(self) -> str:
        try:
            text = (self._message or b"").decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedSubmission() from e
        # Browsers send line breaks as CRLF; count characters as the source typed them.
        text = text.replace("\r\n", "\n")
        if len(text) > self._limits.max_message_chars:
            raise MessageTooLong()
        if len(text.strip()) < self._min_message_chars:
            raise FirstMessageTooShort()
        return text if text.strip() else ""

    def _seal_message(self, text: str) -> SealedItem:
        raw = self._message or b""  # as sent: line breaks as the browser sent them
        body = write_body(self._store, text.encode("utf-8"))
        self._pending.append(body.blob)
        metadata = crypto.EnvelopeMetadata(
            kind="message",
            name="",
            type="text/plain; charset=utf-8",
            size=body.size,
            sha256=body.sha256,
            received=sealed_receipt_time(),
            owner=self.submission_id,
        )
        sent = _Sent(len(raw), hashlib.sha256(raw).hexdigest())
        return self._sealed_item(body.data_key, metadata, body.blob_name, body.blob, sent)

    def _sealed_item(
        self, data_key: bytes, metadata: crypto.EnvelopeMetadata, blob_name: str, blob: PendingBlob, sent: _Sent
    ) -> SealedItem:
        blob.file.flush()
        sealed_metadata = crypto.seal_metadata(data_key, metadata)
        receipt = Receipt(
            instance=self._instance,
            owner=self.submission_id,
            envelope=hashlib.sha256(sealed_metadata).hexdigest(),
            kind=metadata.kind,
            received=metadata.received,
            sent_size=sent.size,
            sent_sha256=sent.sha256,
            stored_size=metadata.size,
            stored_sha256=metadata.sha256,
            cleaning=metadata.sanitised,
            cleaner=sent.cleaner,
            detected=sent.detected,
            salt=new_salt(),
        )
        return SealedItem(
            kind=metadata.kind,
            capsule=crypto.make_capsule(self._npk, data_key),
            sealed_metadata=sealed_metadata,
            blob_name=blob_name,
            body_size=crypto.body_size(metadata.size),
            blob=blob,
            submission_id=self.submission_id,
            sealed_receipt=seal_receipt(data_key, receipt),
            commitment=receipt.commitment(),
        )


@dataclass(frozen=True)
class _Sent:
    """An item as it arrived, for its receipt."""

    size: int
    sha256: str
    detected: str = ""
    cleaner: str = ""
