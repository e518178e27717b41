"""Every cryptographic operation in Buzón, as specified in docs/crypto.md.

This is the only module that imports ``nacl`` or ``argon2`` (ruff's banned-api
rule enforces it). Constants carry the same names and values as the spec.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import secrets
import struct
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO

import argon2.low_level
import nacl.bindings as sodium
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.public
import nacl.secret
import nacl.utils

VERSION = 0x01
# The metadata record's version: 0x02 adds the owner member (docs/crypto.md); 0x01 stays readable.
META_VERSION = 0x02
META_VERSIONS = frozenset({VERSION, META_VERSION})

LABEL_KEY_ID = b"buzon-key-id-v1"
LABEL_LOOKUP = b"buzon-lookup-v1"
LABEL_REPLY = b"buzon-reply-v1"
LABEL_RECOVERY = b"buzon-recover-v1"
LABEL_BODY = b"buzon-body-v1"
LABEL_META = b"buzon-meta-v1"
LABEL_SESSION_ID = b"buzon-sess-id-v1"
LABEL_SESSION_KEY = b"buzon-sesskey-v1"
LABEL_DEDUP = b"buzon-dedup-v1"
LABEL_RECEIPT = b"buzon-receipt-v1"

KEY_SIZE = 32
KEY_ID_SIZE = 8
SEAL_OVERHEAD = 48
SEALED_KEY_SIZE = KEY_SIZE + SEAL_OVERHEAD
CAPSULE_SIZE = 1 + KEY_ID_SIZE + SEALED_KEY_SIZE
SALT_SIZE = 16
NONCE_SIZE = 24
BOX_OVERHEAD = 16
WRAPPED_KEY_SIZE = 1 + 4 + 4 + 1 + SALT_SIZE + NONCE_SIZE + KEY_SIZE + BOX_OVERHEAD
CHUNK_SIZE = 65536
SS_HEADER_SIZE = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
SS_OVERHEAD = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
BODY_CHUNK_SIZE = CHUNK_SIZE + SS_OVERHEAD
BODY_HEADER_SIZE = 1 + SS_HEADER_SIZE
META_PLAIN_SIZE = 1024
META_SIZE = 1 + NONCE_SIZE + META_PLAIN_SIZE + BOX_OVERHEAD
RECOVERY_SECRET_SIZE = 20
PEPPER_SIZE = 16
MAX_PASSPHRASE_BYTES = 1024
MAX_CODENAME_CHARS = 256
MAX_NAME_BYTES = 255
MAX_TYPE_CHARS = 100

_RECOVERY_PATTERN = re.compile(r"[A-Za-z2-7]{32}")
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_ZERO_CHUNK = bytes(CHUNK_SIZE)


class DecryptionError(Exception):
    """Opening, unwrapping or parsing failed. Deliberately carries no detail."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


class InputTooLongError(ValueError):
    """A passphrase or codename was refused before any KDF ran."""


@dataclass(frozen=True)
class KdfParams:
    time_cost: int
    memory_kib: int
    parallelism: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.time_cost <= 16 and 8 <= self.memory_kib <= 4194304):
            raise ValueError("Argon2id parameters out of range")
        if not 1 <= self.parallelism <= 8 or self.memory_kib < 8 * self.parallelism:
            raise ValueError("Argon2id parameters out of range")


@dataclass(frozen=True, repr=False)
class KeyPair:
    secret: bytes
    public: bytes

    def __repr__(self) -> str:
        return f"KeyPair(public={self.public.hex()[:16]}…)"


# A newsroom key's id: KEY_ID_SIZE bytes of keyed BLAKE2b over its public key (`key_id`).
KeyId = bytes
# Every newsroom key an editor or the recovery key can open, by id: old keys stay readable.
NewsroomKeys = dict[KeyId, KeyPair]

KINDS = ("message", "file", "reply")


class Sanitised(StrEnum):
    """The envelope's ``sanitised`` member: what happened to a file's hidden metadata.

    The values are the spec's wire strings; this is the only list of them.
    """

    STRIPPED = "stripped"
    NONE_FOUND = "none-found"  # a known format with no metadata in it
    UNSUPPORTED = "unsupported"  # a format the cleaner does not know: bytes as sent
    FAILED = "failed"  # a known format that did not parse: bytes as sent
    TOO_LARGE = "too-large"  # beyond what is cleaned in memory: bytes as sent
    NOT_REQUESTED = "not-requested"  # the source asked for the file as it was
    NOT_A_FILE = ""  # messages and replies

    @property
    def may_hide_data(self) -> bool:
        """True when the file was kept as sent although the source asked for it to be cleaned."""
        return self in (Sanitised.UNSUPPORTED, Sanitised.FAILED, Sanitised.TOO_LARGE)


@dataclass(frozen=True)
class EnvelopeMetadata:
    kind: str
    name: str
    type: str
    size: int
    sha256: str
    received: str
    sanitised: str = ""
    # The submission (or, for a reply, the source) it belongs to; "" only in version 0x01 records.
    owner: str = ""


def _blake2b(data: bytes, label: bytes, size: int = 32) -> bytes:
    return nacl.hash.blake2b(data, digest_size=size, person=label, encoder=nacl.encoding.RawEncoder)


# Where an Argon2id run happens: on the calling thread, unless the caller lends
# threads for it (the server's run at low priority, app/web/admission.py).
# This module sets no limit of its own: each run holds its whole memory cost
# (64-128 MiB by default), and how many may run at once is each app's KDF
# gate's business, sized from BUZON_MAX_CONCURRENT_KDF.
KdfRunner = Callable[[Callable[[], bytes]], bytes]
_kdf_runner: ContextVar[KdfRunner | None] = ContextVar("kdf_runner", default=None)


@contextmanager
def kdf_runner(run: KdfRunner) -> Iterator[None]:
    """Hand every Argon2id run made inside the block to ``run``, which calls it and returns its result."""
    token = _kdf_runner.set(run)
    try:
        yield
    finally:
        _kdf_runner.reset(token)


def _argon2id(secret: bytes, salt: bytes, params: KdfParams) -> bytes:
    run = _kdf_runner.get()
    if run is None:
        return _argon2id_here(secret, salt, params)
    return run(lambda: _argon2id_here(secret, salt, params))


def _argon2id_here(secret: bytes, salt: bytes, params: KdfParams) -> bytes:
    return argon2.low_level.hash_secret_raw(
        secret,
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=KEY_SIZE,
        type=argon2.low_level.Type.ID,
        version=19,
    )


def random_bytes(size: int) -> bytes:
    return nacl.utils.random(size)


# --- keypairs and seals ------------------------------------------------------


def generate_keypair() -> KeyPair:
    sk = nacl.public.PrivateKey.generate()
    return KeyPair(secret=bytes(sk), public=bytes(sk.public_key))


def keypair_from_secret(secret: bytes) -> KeyPair:
    if len(secret) != KEY_SIZE:
        raise DecryptionError()
    sk = nacl.public.PrivateKey(secret)
    return KeyPair(secret=secret, public=bytes(sk.public_key))


def key_id(public_key: bytes) -> KeyId:
    """The 8-byte identifier of a newsroom public key."""
    return _blake2b(public_key, LABEL_KEY_ID, KEY_ID_SIZE)


def seal(public_key: bytes, plaintext: bytes) -> bytes:
    return sodium.crypto_box_seal(plaintext, public_key)


def seal_open(keypair: KeyPair, ciphertext: bytes) -> bytes:
    if len(ciphertext) < SEAL_OVERHEAD:
        raise DecryptionError()
    try:
        return sodium.crypto_box_seal_open(ciphertext, keypair.public, keypair.secret)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as e:
        raise DecryptionError() from e


# --- TOTP records ("Editor keys": the secret and its replay guard, sealed) -------------

TOTP_RECORD_V2 = 0x02
_TOTP_HEADER = struct.Struct(">BQ")
_BASE32_SECRET = re.compile(rb"[A-Z2-7]{16,64}")


@dataclass(frozen=True, repr=False)
class TotpRecord:
    secret: str
    # The last time step a code was accepted for; only a later step logs in.
    last_step: int

    def __repr__(self) -> str:
        return "TotpRecord(…)"


def seal_totp_record(public_key: bytes, record: TotpRecord) -> bytes:
    header = _TOTP_HEADER.pack(TOTP_RECORD_V2, record.last_step)
    return seal(public_key, header + record.secret.encode("ascii"))


def open_totp_record(keypair: KeyPair, sealed: bytes) -> TotpRecord:
    """A v2 record, or a v1 record (the bare secret) with ``last_step`` 0."""
    raw = seal_open(keypair, sealed)
    last_step, secret = 0, raw
    if raw[:1] == bytes([TOTP_RECORD_V2]):
        if len(raw) < _TOTP_HEADER.size:
            raise DecryptionError()
        _, last_step = _TOTP_HEADER.unpack_from(raw)
        secret = raw[_TOTP_HEADER.size :]
    if _BASE32_SECRET.fullmatch(secret) is None:
        raise DecryptionError()
    return TotpRecord(secret.decode("ascii"), last_step)


def open_sealed_keypair(keypair: KeyPair, sealed_secret: bytes) -> KeyPair:
    """Open a grant (a sealed newsroom secret key) into a keypair."""
    if len(sealed_secret) != SEALED_KEY_SIZE:
        raise DecryptionError()
    return keypair_from_secret(seal_open(keypair, sealed_secret))


def _secretbox(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    return sodium.crypto_secretbox(plaintext, nonce, key)


def _secretbox_open(key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    try:
        return sodium.crypto_secretbox_open(ciphertext, nonce, key)
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as e:
        raise DecryptionError() from e


# --- recovery secret -----------------------------------------------------------


def generate_recovery_secret() -> str:
    text = base64.b32encode(random_bytes(RECOVERY_SECRET_SIZE)).decode("ascii")
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def recovery_keypair(recovery_secret: str) -> KeyPair:
    """Derive the recovery keypair; raises DecryptionError on a malformed secret."""
    compact = "".join(recovery_secret.split()).replace("-", "")
    # Exactly 32 base32 letters: no "=" padding, no case-folding surprises.
    if not _RECOVERY_PATTERN.fullmatch(compact):
        raise DecryptionError()
    raw = base64.b32decode(compact.upper())
    return keypair_from_secret(_blake2b(raw, LABEL_RECOVERY))


# --- editor key wrapping --------------------------------------------------------


def _passphrase_bytes(passphrase: str) -> bytes:
    raw = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    if len(raw) > MAX_PASSPHRASE_BYTES:
        raise InputTooLongError("passphrase too long")
    return raw


def wrap_secret_key(secret_key: bytes, passphrase: str, params: KdfParams) -> bytes:
    """Wrap an editor's secret key under an Argon2id key from their passphrase."""
    salt = random_bytes(SALT_SIZE)
    nonce = random_bytes(NONCE_SIZE)
    wrap_key = _argon2id(_passphrase_bytes(passphrase), salt, params)
    header = struct.pack(">BIIB", VERSION, params.time_cost, params.memory_kib, params.parallelism)
    return header + salt + nonce + _secretbox(wrap_key, nonce, secret_key)


def wrapped_key_params(wrapped: bytes) -> KdfParams:
    if len(wrapped) != WRAPPED_KEY_SIZE or wrapped[0] != VERSION:
        raise DecryptionError()
    _, t, m, p = struct.unpack(">BIIB", wrapped[:10])
    try:
        return KdfParams(time_cost=t, memory_kib=m, parallelism=p)
    except ValueError as e:
        raise DecryptionError() from e


def unwrap_secret_key(wrapped: bytes, passphrase: str) -> KeyPair:
    """Unwrap an editor keypair; a wrong passphrase raises DecryptionError."""
    params = wrapped_key_params(wrapped)
    raw = _passphrase_bytes(passphrase)
    salt = wrapped[10 : 10 + SALT_SIZE]
    nonce = wrapped[10 + SALT_SIZE : 10 + SALT_SIZE + NONCE_SIZE]
    wrap_key = _argon2id(raw, salt, params)
    return keypair_from_secret(_secretbox_open(wrap_key, nonce, wrapped[10 + SALT_SIZE + NONCE_SIZE :]))


# --- codenames ------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class SourceKeys:
    lookup_id: bytes
    reply: KeyPair

    def __repr__(self) -> str:
        return "SourceKeys(…)"


def normalise_codename(codename: str) -> str:
    if len(codename) > MAX_CODENAME_CHARS:
        raise InputTooLongError("codename too long")
    return " ".join(unicodedata.normalize("NFKC", codename).lower().split())


def derive_source_keys(codename: str, pepper: bytes, params: KdfParams) -> SourceKeys:
    """Derive the lookup id and reply keypair of a codename (one Argon2id run)."""
    master = _argon2id(normalise_codename(codename).encode("utf-8"), pepper, params)
    return SourceKeys(
        lookup_id=_blake2b(master, LABEL_LOOKUP),
        reply=keypair_from_secret(_blake2b(master, LABEL_REPLY)),
    )


# --- sessions -----------------------------------------------------------------------


def session_id(token: bytes) -> bytes:
    return _blake2b(token, LABEL_SESSION_ID)


def seal_for_session(token: bytes, plaintext: bytes) -> bytes:
    nonce = random_bytes(NONCE_SIZE)
    return nonce + _secretbox(_blake2b(token, LABEL_SESSION_KEY), nonce, plaintext)


def open_for_session(token: bytes, ciphertext: bytes) -> bytes:
    if len(ciphertext) < NONCE_SIZE + BOX_OVERHEAD:
        raise DecryptionError()
    key = _blake2b(token, LABEL_SESSION_KEY)
    return _secretbox_open(key, ciphertext[:NONCE_SIZE], ciphertext[NONCE_SIZE:])


# --- envelopes ------------------------------------------------------------------------


def padme(length: int) -> int:
    """Round ``length`` up so that it leaks O(log log length) bits (Padmé)."""
    if length < 2:
        return length
    exponent = length.bit_length() - 1
    low_bits = exponent - exponent.bit_length()
    mask = (1 << low_bits) - 1
    return (length + mask) & ~mask


def padded_chunk_count(content_size: int) -> int:
    return padme(max(1, -(-content_size // CHUNK_SIZE)))


def body_size(content_size: int) -> int:
    return BODY_HEADER_SIZE + padded_chunk_count(content_size) * BODY_CHUNK_SIZE


def make_capsule(newsroom_public_key: bytes, data_key: bytes) -> bytes:
    return bytes([VERSION]) + key_id(newsroom_public_key) + seal(newsroom_public_key, data_key)


def capsule_key_id(capsule: bytes) -> bytes:
    if len(capsule) != CAPSULE_SIZE or capsule[0] != VERSION:
        raise DecryptionError()
    return capsule[1 : 1 + KEY_ID_SIZE]


def open_capsule(capsule: bytes, newsroom_keys: NewsroomKeys) -> bytes:
    """Recover an envelope's data key with whichever newsroom key it names."""
    keypair = newsroom_keys.get(capsule_key_id(capsule))
    if keypair is None:
        raise DecryptionError()
    data_key = seal_open(keypair, capsule[1 + KEY_ID_SIZE :])
    if len(data_key) != KEY_SIZE:
        raise DecryptionError()
    return data_key


_ID_PATTERN = re.compile(r"[0-9a-f]{32}")


def _valid_metadata(metadata: EnvelopeMetadata) -> bool:
    """The schema of docs/crypto.md, which also guarantees the JSON fits 1024 bytes."""
    fields = (
        metadata.kind,
        metadata.name,
        metadata.type,
        metadata.sha256,
        metadata.received,
        metadata.sanitised,
        metadata.owner,
    )
    if not all(isinstance(f, str) for f in fields):
        return False
    not_a_file = metadata.kind != "file"
    return (
        metadata.kind in KINDS
        and metadata.sanitised in set(Sanitised)
        and not (not_a_file and (metadata.name or metadata.sanitised))
        and _is_receipt_time(metadata.received)
        and len(metadata.name.encode("utf-8")) <= MAX_NAME_BYTES
        and not any(c in "/\\" or unicodedata.category(c)[0] == "C" for c in metadata.name)
        and len(metadata.type) <= MAX_TYPE_CHARS
        and all(" " <= c <= "~" for c in metadata.type)
        and type(metadata.size) is int
        and metadata.size >= 0
        and _SHA256_PATTERN.fullmatch(metadata.sha256) is not None
        and (metadata.owner == "" or _ID_PATTERN.fullmatch(metadata.owner) is not None)
    )


_RECEIPT_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def _is_receipt_time(text: str) -> bool:
    """``YYYY-MM-DDTHH:MM:SSZ``, and a time that exists."""
    if _RECEIPT_TIME.fullmatch(text) is None:
        return False
    try:
        datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


def seal_metadata(data_key: bytes, metadata: EnvelopeMetadata) -> bytes:
    if not _valid_metadata(metadata) or _ID_PATTERN.fullmatch(metadata.owner) is None:
        raise ValueError("metadata outside the schema of docs/crypto.md")
    document = json.dumps(metadata.__dict__, ensure_ascii=False, separators=(",", ":"))
    raw = document.encode("utf-8")
    if len(raw) > META_PLAIN_SIZE:
        raise ValueError("metadata too large")
    nonce = random_bytes(NONCE_SIZE)
    padded = raw.ljust(META_PLAIN_SIZE, b" ")
    return bytes([META_VERSION]) + nonce + _secretbox(_blake2b(data_key, LABEL_META), nonce, padded)


def open_metadata(data_key: bytes, record: bytes, *, owner: str | None, kind: str | None = None) -> EnvelopeMetadata:
    """Open a metadata record; ``owner`` and ``kind`` are what the row says, None where unknown.

    A version 0x02 record names its owner, and must name this one; a version
    0x01 record names none and is not checked (docs/crypto.md).
    """
    if len(record) != META_SIZE or record[0] not in META_VERSIONS:
        raise DecryptionError()
    nonce = record[1 : 1 + NONCE_SIZE]
    plain = _secretbox_open(_blake2b(data_key, LABEL_META), nonce, record[1 + NONCE_SIZE :])
    try:
        fields = json.loads(plain.decode("utf-8"))
        metadata = EnvelopeMetadata(**fields)
    except (ValueError, TypeError, RecursionError) as e:
        raise DecryptionError() from e
    if not _valid_metadata(metadata):
        raise DecryptionError()
    names_owner = _ID_PATTERN.fullmatch(metadata.owner) is not None
    if names_owner != (record[0] == META_VERSION) or (names_owner and owner is not None and metadata.owner != owner):
        raise DecryptionError()
    if kind is not None and metadata.kind != kind:
        raise DecryptionError()
    return metadata


class BodyWriter:
    """Encrypts a body stream chunk by chunk into ``sink`` as bytes arrive.

    At most two plaintext chunks (128 KiB) are buffered: the one filling up,
    and the last full one, held back until we know whether it is the final
    chunk. Memory stays flat whatever the upload size. ``finish`` pads and
    writes the final chunk.
    """

    def __init__(self, data_key: bytes, sink: BinaryIO) -> None:
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        header = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, _blake2b(data_key, LABEL_BODY))
        self._sink = sink
        self._buffer = bytearray()
        self._pending: bytes | None = None
        self._chunks = 0
        self._hash = hashlib.sha256()
        self.size = 0
        sink.write(bytes([VERSION]) + header)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        self.size += len(view)
        self._hash.update(view)
        if self._buffer:
            # Top up the partial chunk first; slicing a memoryview copies nothing.
            room = CHUNK_SIZE - len(self._buffer)
            self._buffer += view[:room]
            view = view[room:]
            if len(self._buffer) < CHUNK_SIZE:
                return
            self._queue(bytes(self._buffer))
            self._buffer.clear()
        while len(view) >= CHUNK_SIZE:
            self._queue(bytes(view[:CHUNK_SIZE]))
            view = view[CHUNK_SIZE:]
        self._buffer += view

    def _queue(self, chunk: bytes) -> None:
        # A chunk is held back one step because only the last one may carry
        # TAG_FINAL, and we learn which one is last only at finish().
        if self._pending is not None:
            self._push(self._pending, _TAG_MESSAGE)
        self._pending = chunk

    def _push(self, chunk: bytes, tag: int) -> None:
        self._sink.write(sodium.crypto_secretstream_xchacha20poly1305_push(self._state, chunk, None, tag))
        self._chunks += 1

    def finish(self) -> str:
        """Pad, write the final chunk and return the SHA-256 hex of the content."""
        if self._buffer or self._pending is None:
            self._queue(bytes(self._buffer).ljust(CHUNK_SIZE, b"\0"))
            self._buffer.clear()
        target = padded_chunk_count(self.size)
        while self._chunks + 1 < target:
            self._queue(_ZERO_CHUNK)
        assert self._pending is not None
        self._push(self._pending, _TAG_FINAL)
        self._pending = None
        return self._hash.hexdigest()


def read_body(data_key: bytes, source: BinaryIO, content_size: int) -> Iterator[bytes]:
    """Yield the content of a body, authenticating every chunk and the padding.

    Raises DecryptionError on any deviation from the format; content already
    yielded before the failure must then be discarded by the caller.
    """
    first = source.read(BODY_HEADER_SIZE)
    if len(first) != BODY_HEADER_SIZE or first[0] != VERSION or content_size < 0:
        raise DecryptionError()
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    try:
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, first[1:], _blake2b(data_key, LABEL_BODY))
    except (nacl.exceptions.CryptoError, ValueError) as e:
        raise DecryptionError() from e
    remaining = content_size
    final = False
    while not final:
        chunk = source.read(BODY_CHUNK_SIZE)
        if len(chunk) != BODY_CHUNK_SIZE:
            raise DecryptionError()
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, chunk, None)
        except (nacl.exceptions.CryptoError, ValueError) as e:
            raise DecryptionError() from e
        if tag not in (_TAG_MESSAGE, _TAG_FINAL):
            raise DecryptionError()
        final = tag == _TAG_FINAL
        take = min(remaining, CHUNK_SIZE)
        if plain[take:].count(0) != CHUNK_SIZE - take:
            raise DecryptionError()
        remaining -= take
        if take:
            yield plain[:take]
    if remaining or source.read(1):
        raise DecryptionError()


# --- newsroom records (notes, tag names) and duplicate tags ------------------------

RECORD_BLOCK = 256
MAX_RECORD_TEXT_BYTES = 65536


def seal_record(newsroom_public_key: bytes, text: str) -> bytes:
    """Seal a short text that only editors read, padded to hide its length."""
    raw = text.encode("utf-8")
    if len(raw) > MAX_RECORD_TEXT_BYTES:
        raise InputTooLongError("record too long")
    return _seal_padded(newsroom_public_key, raw, RECORD_BLOCK)


def open_record(record: bytes, newsroom_keys: NewsroomKeys) -> str:
    try:
        return _open_padded(record, newsroom_keys, RECORD_BLOCK).decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecryptionError() from e


def _seal_padded(newsroom_public_key: bytes, raw: bytes, block: int) -> bytes:
    padded = struct.pack(">I", len(raw)) + raw
    padded += bytes(-len(padded) % block)
    return bytes([VERSION]) + key_id(newsroom_public_key) + seal(newsroom_public_key, padded)


def _open_padded(record: bytes, newsroom_keys: NewsroomKeys, block: int) -> bytes:
    header = 1 + KEY_ID_SIZE
    if len(record) < header + SEAL_OVERHEAD + block or record[0] != VERSION:
        raise DecryptionError()
    keypair = newsroom_keys.get(record[1:header])
    if keypair is None:
        raise DecryptionError()
    padded = seal_open(keypair, record[header:])
    if len(padded) % block:
        raise DecryptionError()
    (length,) = struct.unpack(">I", padded[:4])
    if length > len(padded) - 4 or any(padded[4 + length :]):
        raise DecryptionError()
    return padded[4 : 4 + length]


def dedup_key(oldest_newsroom_secret: bytes) -> bytes:
    return _blake2b(oldest_newsroom_secret, LABEL_DEDUP)


def dup_tag(key: bytes, sha256_hex: str) -> bytes:
    """A keyed tag of a plaintext hash: equal files, equal tags; useless without the key."""
    try:
        digest = bytes.fromhex(sha256_hex)
    except ValueError as e:
        raise DecryptionError() from e
    return nacl.hash.blake2b(digest, digest_size=32, key=key, encoder=nacl.encoding.RawEncoder)


def new_data_key() -> bytes:
    return random_bytes(KEY_SIZE)


def random_token(size: int = 32) -> bytes:
    return secrets.token_bytes(size)


# --- evidence (docs/evidence.md): signing keys, receipts, evidence records --------------

SIGNING_SEED_SIZE = 32
SIGNATURE_SIZE = 64
RECEIPT_PLAIN_SIZE = 768
RECEIPT_SIZE = 1 + NONCE_SIZE + RECEIPT_PLAIN_SIZE + BOX_OVERHEAD
EVIDENCE_BLOCK = 1024
MAX_EVIDENCE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, repr=False)
class SigningKey:
    """An Ed25519 key: the instance key, or an editor's signing key."""

    seed: bytes
    public: bytes

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public.hex()[:16]}…)"


def new_signing_key() -> SigningKey:
    return signing_key_from_seed(random_bytes(SIGNING_SEED_SIZE))


def signing_key_from_seed(seed: bytes) -> SigningKey:
    if len(seed) != SIGNING_SEED_SIZE:
        raise DecryptionError()
    public, _ = sodium.crypto_sign_seed_keypair(seed)
    return SigningKey(seed=seed, public=public)


def sign(key: SigningKey, label: bytes, message: bytes) -> bytes:
    """Ed25519 over ``label || message``: the label keeps one kind of statement from passing as another."""
    _, secret = sodium.crypto_sign_seed_keypair(key.seed)
    return sodium.crypto_sign(label + message, secret)[:SIGNATURE_SIZE]


def signature_valid(public_key: bytes, label: bytes, message: bytes, signature: bytes) -> bool:
    if len(public_key) != sodium.crypto_sign_PUBLICKEYBYTES or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        sodium.crypto_sign_open(signature + label + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError, TypeError):
        return False
    return True


def seal_receipt(data_key: bytes, document: bytes) -> bytes:
    """A receipt, sealed under a key derived from the envelope's data key and padded to one size."""
    if len(document) > RECEIPT_PLAIN_SIZE or document.endswith(b" "):
        raise ValueError("receipt does not fit its record")
    nonce = random_bytes(NONCE_SIZE)
    padded = document.ljust(RECEIPT_PLAIN_SIZE, b" ")
    return bytes([VERSION]) + nonce + _secretbox(_blake2b(data_key, LABEL_RECEIPT), nonce, padded)


def open_receipt(data_key: bytes, record: bytes) -> bytes:
    """The receipt's canonical JSON; the caller checks its schema."""
    if len(record) != RECEIPT_SIZE or record[0] != VERSION:
        raise DecryptionError()
    nonce = record[1 : 1 + NONCE_SIZE]
    return _secretbox_open(_blake2b(data_key, LABEL_RECEIPT), nonce, record[1 + NONCE_SIZE :]).rstrip(b" ")


def seal_evidence(newsroom_public_key: bytes, document: bytes) -> bytes:
    """A custody entry, an anchor or a key seed, sealed to the newsroom key and padded to 1 KiB steps."""
    if len(document) > MAX_EVIDENCE_BYTES:
        raise InputTooLongError("evidence record too long")
    return _seal_padded(newsroom_public_key, document, EVIDENCE_BLOCK)


def open_evidence(record: bytes, newsroom_keys: NewsroomKeys) -> bytes:
    return _open_padded(record, newsroom_keys, EVIDENCE_BLOCK)
