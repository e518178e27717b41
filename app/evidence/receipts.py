"""Intake receipts (docs/evidence.md, "Receipts"): what arrived, what was stored, sealed beside it."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from app import crypto
from app.evidence.canonical import NotCanonical, canonical, parse_canonical

RECEIPT_FORMAT = 1
COMMIT_RECEIPT = b"buzon-commit-receipt-v1:"
KINDS = frozenset({"message", "file"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DETECTED = re.compile(r"[a-z0-9-]{1,24}")
_CLEANER = re.compile(r"buzon [0-9A-Za-z.+-]{1,32}")
_CLEANINGS = frozenset(s.value for s in crypto.Sanitised)


class BadReceipt(ValueError):
    """A receipt outside the schema of docs/evidence.md."""


@dataclass(frozen=True)
class Receipt:
    instance: str
    owner: str
    envelope: str
    kind: str
    received: str
    sent_size: int
    sent_sha256: str
    stored_size: int
    stored_sha256: str
    cleaning: str
    cleaner: str
    detected: str
    salt: str

    def document(self) -> bytes:
        return canonical({"receipt": RECEIPT_FORMAT, **dataclasses.asdict(self)})

    def commitment(self) -> bytes:
        return hashlib.sha256(COMMIT_RECEIPT + self.document()).digest()

    @property
    def cleaned(self) -> bool:
        """Whether what is stored differs from what was sent."""
        return (self.sent_size, self.sent_sha256) != (self.stored_size, self.stored_sha256)


def new_salt() -> str:
    return secrets.token_hex(32)


def parse_receipt(raw: bytes) -> Receipt:
    try:
        fields: dict[str, Any] = parse_canonical(raw)
    except NotCanonical as e:
        raise BadReceipt(str(e)) from e
    if fields.pop("receipt", None) != RECEIPT_FORMAT or set(fields) != {f.name for f in dataclasses.fields(Receipt)}:
        raise BadReceipt("wrong members")
    receipt = Receipt(**fields)
    if not _valid(receipt):
        raise BadReceipt("a member is out of range")
    return receipt


def _valid(r: Receipt) -> bool:
    hashes = (r.instance, r.envelope, r.sent_sha256, r.stored_sha256, r.salt)
    strings = (*hashes, r.owner, r.kind, r.received, r.cleaning, r.cleaner, r.detected)
    if not all(isinstance(s, str) for s in strings):
        return False
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (r.sent_size, r.stored_size)):
        return False
    if r.kind not in KINDS or r.cleaning not in (_CLEANINGS | {""}) or (r.kind == "message" and r.cleaning):
        return False
    return (
        all(_HEX64.fullmatch(h) for h in hashes)
        and _HEX32.fullmatch(r.owner) is not None
        and _TIME.fullmatch(r.received) is not None
        and (r.cleaner == "" or _CLEANER.fullmatch(r.cleaner) is not None)
        and (r.detected == "" or _DETECTED.fullmatch(r.detected) is not None)
    )


def seal_receipt(data_key: bytes, receipt: Receipt) -> bytes:
    return crypto.seal_receipt(data_key, receipt.document())


def open_receipt(data_key: bytes, record: bytes) -> Receipt:
    """Open and check a sealed receipt; any failure is a DecryptionError, as for every record."""
    try:
        return parse_receipt(crypto.open_receipt(data_key, record))
    except BadReceipt as e:
        raise crypto.DecryptionError() from e


def check_against_envelope(receipt: Receipt, metadata: crypto.EnvelopeMetadata, sealed_metadata: bytes) -> bool:
    """Whether the receipt describes this envelope (docs/evidence.md, "Sealing")."""
    return (
        receipt.owner == metadata.owner
        and receipt.kind == metadata.kind
        and receipt.received == metadata.received
        and receipt.stored_size == metadata.size
        and receipt.stored_sha256 == metadata.sha256
        and receipt.cleaning == metadata.sanitised
        and receipt.envelope == hashlib.sha256(sealed_metadata).hexdigest()
    )
