"""Tests of app.crypto against docs/crypto.md (the normative spec)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import math
import re
import struct
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

# argon2 and nacl are imported only to check the spec's formulas independently of
# app.crypto (pyproject.toml lifts the banned-api rule TID251 for tests/**).
import argon2.low_level
import nacl.bindings as sodium
import pytest

from app import crypto
from app.crypto import (
    BODY_CHUNK_SIZE,
    BODY_HEADER_SIZE,
    CAPSULE_SIZE,
    CHUNK_SIZE,
    META_SIZE,
    SEALED_KEY_SIZE,
    WRAPPED_KEY_SIZE,
    BodyWriter,
    DecryptionError,
    EnvelopeMetadata,
    InputTooLongError,
    KdfParams,
    KeyPair,
)

FAST = KdfParams(time_cost=1, memory_kib=8)
VECTORS: dict[str, Any] = json.loads(Path(__file__).with_name("vectors.json").read_text(encoding="utf-8"))
PEPPER = bytes(range(16))
CODENAME = "abacus abdomen abdominal abide abiding ability ablaze"
TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_PUSH = sodium.crypto_secretstream_xchacha20poly1305_TAG_PUSH
TAG_REKEY = sodium.crypto_secretstream_xchacha20poly1305_TAG_REKEY
TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
FLIP_MASKS = (0x01, 0x80, 0xFF)


# --- helpers ----------------------------------------------------------------------------


def blake2b(data: bytes, label: bytes, size: int = 32) -> bytes:
    """BLAKE2b-N(x, P) as docs/crypto.md defines it, via hashlib (personal zero-padded to 16)."""
    return hashlib.blake2b(data, digest_size=size, person=label).digest()


_P = 2**255 - 19


def x25519_base(secret: bytes) -> bytes:
    """X25519(k, 9) in pure Python (RFC 7748 section 5), independent of libsodium."""
    scalar = bytearray(secret)
    scalar[0] &= 248
    scalar[31] &= 127
    scalar[31] |= 64
    k = int.from_bytes(scalar, "little")
    x1, x2, z2, x3, z3, swap = 9, 1, 0, 9, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        swap ^= bit
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b, c, d = x2 + z2, x2 - z2, x3 + z3, x3 - z3
        aa, bb = a * a % _P, b * b % _P
        e = aa - bb
        da, cb = d * a % _P, c * b % _P
        x3, z3 = (da + cb) ** 2 % _P, x1 * (da - cb) ** 2 % _P
        x2, z2 = aa * bb % _P, e * (aa + 121665 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


def pieces(content: bytes, sizes: Sequence[int]) -> Iterator[bytes]:
    """Split ``content`` into consecutive pieces whose sizes cycle through ``sizes``."""
    offset, index = 0, 0
    while offset < len(content):
        size = sizes[index % len(sizes)]
        yield content[offset : offset + size]
        offset += size
        index += 1


def encrypt_body(data_key: bytes, content: bytes, sizes: Sequence[int] = (1 << 30,)) -> tuple[bytes, str, int]:
    sink = io.BytesIO()
    writer = BodyWriter(data_key, sink)
    for piece in pieces(content, sizes):
        writer.write(piece)
    digest = writer.finish()
    return sink.getvalue(), digest, writer.size


def read_all(data_key: bytes, body: bytes, content_size: int) -> bytes:
    return b"".join(crypto.read_body(data_key, io.BytesIO(body), content_size))


def assert_body_rejected(data_key: bytes, body: bytes, content_size: int) -> None:
    with pytest.raises(DecryptionError):
        for _ in crypto.read_body(data_key, io.BytesIO(body), content_size):
            pass


def flipped(data: bytes, masks: Sequence[int] = FLIP_MASKS) -> Iterator[tuple[int, bytes]]:
    """Every copy of ``data`` with exactly one byte changed (XOR each of ``masks``)."""
    buffer = bytearray(data)
    for index in range(len(data)):
        for mask in masks:
            buffer[index] ^= mask
            yield index, bytes(buffer)
            buffer[index] ^= mask


def chunks_of(body: bytes) -> tuple[bytes, list[bytes]]:
    header, rest = body[:BODY_HEADER_SIZE], body[BODY_HEADER_SIZE:]
    assert len(rest) % BODY_CHUNK_SIZE == 0
    return header, [rest[i : i + BODY_CHUNK_SIZE] for i in range(0, len(rest), BODY_CHUNK_SIZE)]


def stream_body(data_key: bytes, plain_chunks: Sequence[tuple[bytes, int]]) -> bytes:
    """A body built directly with libsodium's secretstream, with arbitrary tags."""
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, blake2b(data_key, b"buzon-body-v1"))
    out = [b"\x01", header]
    for plain, tag in plain_chunks:
        out.append(sodium.crypto_secretstream_xchacha20poly1305_push(state, plain, None, tag))
    return b"".join(out)


def metadata_record(data_key: bytes, plaintext: bytes) -> bytes:
    """An authentic metadata record with an arbitrary (padded) plaintext."""
    nonce = bytes(24)
    box = sodium.crypto_secretbox(plaintext.ljust(1024, b" "), nonce, blake2b(data_key, b"buzon-meta-v1"))
    return b"\x01" + nonce + box


OWNER = "5e" * 16  # the submission a sample envelope belongs to


def sample_metadata(name: str = "informe.pdf", content: bytes = b"hello") -> EnvelopeMetadata:
    return EnvelopeMetadata(
        kind="file",
        name=name,
        type="application/pdf",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        received="2024-05-01T12:34:56Z",
        owner=OWNER,
    )


@pytest.fixture(scope="module")
def newsroom() -> KeyPair:
    return crypto.generate_keypair()


@pytest.fixture(scope="module")
def wrapped() -> tuple[bytes, KeyPair]:
    editor = crypto.generate_keypair()
    return crypto.wrap_secret_key(editor.secret, "correct horse battery staple", FAST), editor


@pytest.fixture
def no_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any Argon2id run fail the test."""

    def refuse(secret: bytes, salt: bytes, params: KdfParams) -> bytes:
        raise AssertionError("Argon2id ran")

    monkeypatch.setattr(crypto, "_argon2id", refuse)


# --- constants and labels ---------------------------------------------------------------


def test_sizes_match_spec() -> None:
    assert CAPSULE_SIZE == 89
    assert META_SIZE == 1065
    assert WRAPPED_KEY_SIZE == 98
    assert SEALED_KEY_SIZE == 80
    assert BODY_HEADER_SIZE == 25
    assert BODY_CHUNK_SIZE == 65553
    assert CHUNK_SIZE == 65536
    assert crypto.VERSION == 0x01


def test_labels_match_spec_table_and_are_distinct() -> None:
    labels = {
        crypto.LABEL_KEY_ID: b"buzon-key-id-v1",
        crypto.LABEL_LOOKUP: b"buzon-lookup-v1",
        crypto.LABEL_REPLY: b"buzon-reply-v1",
        crypto.LABEL_RECOVERY: b"buzon-recover-v1",
        crypto.LABEL_BODY: b"buzon-body-v1",
        crypto.LABEL_META: b"buzon-meta-v1",
        crypto.LABEL_SESSION_ID: b"buzon-sess-id-v1",
        crypto.LABEL_SESSION_KEY: b"buzon-sesskey-v1",
    }
    assert all(constant == label for constant, label in labels.items())
    assert len(set(labels)) == 8


def test_every_label_fits_blake2b_personalisation() -> None:
    # Regression: LABEL_SESSION_KEY was once b"buzon-sess-key-v1" (17 bytes), which libsodium refuses.
    labels = [
        crypto.LABEL_KEY_ID,
        crypto.LABEL_LOOKUP,
        crypto.LABEL_REPLY,
        crypto.LABEL_RECOVERY,
        crypto.LABEL_BODY,
        crypto.LABEL_META,
        crypto.LABEL_SESSION_ID,
        crypto.LABEL_SESSION_KEY,
    ]
    assert [label for label in labels if len(label) > 16] == []


def test_pure_python_x25519_matches_rfc7748() -> None:
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    assert x25519_base(alice).hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"


def test_decryption_error_is_opaque() -> None:
    assert str(DecryptionError()) == "decryption failed"
    errors: list[DecryptionError] = []
    for attempt in (
        lambda: crypto.open_capsule(b"", {}),
        lambda: crypto.open_metadata(bytes(32), bytes(META_SIZE), owner=None),
        lambda: crypto.recovery_keypair("nope"),
        lambda: crypto.unwrap_secret_key(b"\x02" * WRAPPED_KEY_SIZE, "x"),
    ):
        with pytest.raises(DecryptionError) as info:
            attempt()
        errors.append(info.value)
    assert {(type(e), e.args) for e in errors} == {(DecryptionError, ("decryption failed",))}


# --- keypairs, key ids, grants ----------------------------------------------------------


def test_keypair_from_secret_and_key_id() -> None:
    kp = crypto.generate_keypair()
    again = crypto.keypair_from_secret(kp.secret)
    assert again.public == kp.public == x25519_base(kp.secret)
    assert crypto.key_id(kp.public) == blake2b(kp.public, b"buzon-key-id-v1", 8)
    assert crypto.key_id(kp.public) != crypto.key_id(crypto.generate_keypair().public)
    assert kp.secret.hex() not in repr(kp)
    with pytest.raises(DecryptionError):
        crypto.keypair_from_secret(kp.secret[:31])


def test_open_sealed_keypair_round_trip(newsroom: KeyPair) -> None:
    editor = crypto.generate_keypair()
    grant = crypto.seal(editor.public, newsroom.secret)
    assert len(grant) == SEALED_KEY_SIZE
    opened = crypto.open_sealed_keypair(editor, grant)
    assert (opened.secret, opened.public) == (newsroom.secret, newsroom.public)
    assert crypto.seal_open(editor, crypto.seal(editor.public, b"totp")) == b"totp"


def test_open_sealed_keypair_rejects_wrong_key_lengths_and_tampering(newsroom: KeyPair) -> None:
    editor = crypto.generate_keypair()
    grant = crypto.seal(editor.public, newsroom.secret)
    with pytest.raises(DecryptionError):
        crypto.open_sealed_keypair(crypto.generate_keypair(), grant)
    for bad in (b"", grant[:-1], grant + b"\0", crypto.seal(editor.public, newsroom.secret[:31])):
        with pytest.raises(DecryptionError):
            crypto.open_sealed_keypair(editor, bad)
    for _, bad in flipped(grant):
        with pytest.raises(DecryptionError):
            crypto.open_sealed_keypair(editor, bad)


def test_seal_open_rejects_short_ciphertext() -> None:
    kp = crypto.generate_keypair()
    for size in (0, 1, 47, 48):
        with pytest.raises(DecryptionError):
            crypto.seal_open(kp, bytes(size))


# --- capsule ----------------------------------------------------------------------------


def test_capsule_round_trip(newsroom: KeyPair) -> None:
    data_key = crypto.new_data_key()
    capsule = crypto.make_capsule(newsroom.public, data_key)
    assert len(capsule) == CAPSULE_SIZE
    assert capsule[0] == 0x01
    assert capsule[1:9] == crypto.key_id(newsroom.public) == crypto.capsule_key_id(capsule)
    old = crypto.generate_keypair()
    keys = {crypto.key_id(old.public): old, crypto.key_id(newsroom.public): newsroom}
    assert crypto.open_capsule(capsule, keys) == data_key
    assert crypto.make_capsule(newsroom.public, data_key) != capsule  # fresh ephemeral key each time


def test_capsule_every_byte_flip_is_rejected(newsroom: KeyPair) -> None:
    capsule = crypto.make_capsule(newsroom.public, crypto.new_data_key())
    keys = {crypto.key_id(newsroom.public): newsroom}
    for _, bad in flipped(capsule):
        with pytest.raises(DecryptionError):
            crypto.open_capsule(bad, keys)


def test_capsule_wrong_length_or_version_is_rejected(newsroom: KeyPair) -> None:
    capsule = crypto.make_capsule(newsroom.public, crypto.new_data_key())
    keys = {crypto.key_id(newsroom.public): newsroom}
    for bad in (b"", capsule[:-1], capsule + b"\0", b"\0" + capsule, b"\x02" + capsule[1:], b"\x00" + capsule[1:]):
        with pytest.raises(DecryptionError):
            crypto.open_capsule(bad, keys)
        with pytest.raises(DecryptionError):
            crypto.capsule_key_id(bad)


def test_capsule_wrong_newsroom_key_is_rejected(newsroom: KeyPair) -> None:
    capsule = crypto.make_capsule(newsroom.public, crypto.new_data_key())
    impostor = crypto.generate_keypair()
    with pytest.raises(DecryptionError):  # right key id, wrong key
        crypto.open_capsule(capsule, {crypto.key_id(newsroom.public): impostor})
    with pytest.raises(DecryptionError):  # the capsule names a key id nobody holds
        crypto.open_capsule(capsule, {crypto.key_id(impostor.public): impostor})
    with pytest.raises(DecryptionError):
        crypto.open_capsule(capsule, {})


def test_capsule_retargeted_to_another_held_key_is_rejected(newsroom: KeyPair) -> None:
    other = crypto.generate_keypair()
    capsule = crypto.make_capsule(newsroom.public, crypto.new_data_key())
    keys = {crypto.key_id(newsroom.public): newsroom, crypto.key_id(other.public): other}
    with pytest.raises(DecryptionError):
        crypto.open_capsule(capsule[:1] + crypto.key_id(other.public) + capsule[9:], keys)


def test_capsule_sealing_a_short_data_key_is_rejected(newsroom: KeyPair) -> None:
    forged = b"\x01" + crypto.key_id(newsroom.public) + crypto.seal(newsroom.public, bytes(31))
    with pytest.raises(DecryptionError):
        crypto.open_capsule(forged, {crypto.key_id(newsroom.public): newsroom})


# --- metadata ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "informe.pdf",
        "é" * 127 + "a",  # 255 bytes of UTF-8
        "名" * 85,  # 255 bytes
        "😀" * 63 + "abc",  # 255 bytes, astral characters
        '"' * 255,  # 255 bytes that JSON escapes to 510
        "a\u2028b\u0301 ñandú «ok».txt",
    ],
)
def test_metadata_round_trip(name: str) -> None:
    assert len(name.encode("utf-8")) <= 255
    data_key = crypto.new_data_key()
    metadata = sample_metadata(name)
    record = crypto.seal_metadata(data_key, metadata)
    assert len(record) == META_SIZE
    assert record[0] == 0x02
    assert crypto.open_metadata(data_key, record, owner=None) == metadata
    assert crypto.open_metadata(data_key, record, owner=OWNER, kind="file") == metadata
    assert crypto.seal_metadata(data_key, metadata) != record  # fresh nonce


def test_metadata_record_has_spec_layout() -> None:
    data_key = crypto.new_data_key()
    metadata = sample_metadata("carta.txt")
    record = crypto.seal_metadata(data_key, metadata)
    plain = sodium.crypto_secretbox_open(record[25:], record[1:25], blake2b(data_key, b"buzon-meta-v1"))
    assert len(plain) == 1024
    document = plain.rstrip(b" ")
    assert plain == document.ljust(1024, b" ")
    assert json.loads(document) == metadata.__dict__


def test_metadata_record_does_not_leak_name_length() -> None:
    data_key = crypto.new_data_key()
    short = crypto.seal_metadata(data_key, sample_metadata("a"))
    long = crypto.seal_metadata(data_key, sample_metadata("a" * 255))
    assert len(short) == len(long) == META_SIZE


def test_metadata_too_large_is_refused() -> None:
    with pytest.raises(ValueError, match="schema"):
        crypto.seal_metadata(crypto.new_data_key(), sample_metadata("x" * 1100))


def test_metadata_within_spec_limits_always_fits() -> None:
    metadata = EnvelopeMetadata(
        kind="file",
        name='"' * 255,  # JSON doubles it: 510 bytes
        type='"' * 100,  # printable ASCII that JSON doubles: 200 bytes
        size=2**63,
        sha256="0" * 64,
        received="2024-05-01T12:34:56Z",
        sanitised="not-requested",
        owner="f" * 32,
    )
    record = crypto.seal_metadata(crypto.new_data_key(), metadata)
    assert len(record) == META_SIZE


def test_metadata_every_byte_flip_is_rejected() -> None:
    data_key = crypto.new_data_key()
    record = crypto.seal_metadata(data_key, sample_metadata())
    for _, bad in flipped(record):
        with pytest.raises(DecryptionError):
            crypto.open_metadata(data_key, bad, owner=None)


def test_metadata_wrong_length_version_or_key_is_rejected() -> None:
    data_key = crypto.new_data_key()
    record = crypto.seal_metadata(data_key, sample_metadata())
    # 0x01 with an owner inside is a downgrade; 0x03 is no version at all.
    for bad in (
        b"",
        record[:-1],
        record + b" ",
        b"\x01" + record[1:],
        b"\x03" + record[1:],
        record[:25] + record[26:] + b"\0",
    ):
        with pytest.raises(DecryptionError):
            crypto.open_metadata(data_key, bad, owner=None)
    other_key = crypto.new_data_key()
    other_record = crypto.seal_metadata(other_key, sample_metadata())
    with pytest.raises(DecryptionError):  # another envelope's data key
        crypto.open_metadata(other_key, record, owner=None)
    with pytest.raises(DecryptionError):
        crypto.open_metadata(data_key, other_record, owner=None)
    with pytest.raises(DecryptionError):  # the body key is not the metadata key
        crypto.open_metadata(blake2b(data_key, b"buzon-body-v1"), record, owner=None)


GOOD_FIELDS: dict[str, Any] = {
    "kind": "file",
    "name": "a.txt",
    "type": "text/plain",
    "size": 3,
    "sha256": "0" * 64,
    "received": "2024-05-01T12:34:56Z",
}


@pytest.mark.parametrize(
    "plaintext",
    [
        b"\xff\xfe not utf-8",
        b"",
        b"not json",
        b"[]",
        b'"a string"',
        b"42",
        json.dumps({k: v for k, v in GOOD_FIELDS.items() if k != "sha256"}).encode(),
        json.dumps({**GOOD_FIELDS, "extra": 1}).encode(),
        json.dumps({**GOOD_FIELDS, "size": -1}).encode(),
        json.dumps({**GOOD_FIELDS, "size": "3"}).encode(),
        json.dumps({**GOOD_FIELDS, "size": 3.0}).encode(),
        json.dumps({**GOOD_FIELDS, "size": None}).encode(),
        b'{"size": 1e999}',
    ],
)
def test_authentic_but_malformed_metadata_is_rejected(plaintext: bytes) -> None:
    data_key = crypto.new_data_key()
    with pytest.raises(DecryptionError):
        crypto.open_metadata(data_key, metadata_record(data_key, plaintext), owner=None)


@pytest.mark.parametrize(
    "override",
    [
        {"kind": "message", "name": "", "sanitised": ""},
        {"kind": "reply", "name": ""},  # no sanitised member: it reads as ""
        {"sanitised": ""},  # a file sealed before the member existed
        {"received": "2024-02-29T23:59:59Z"},
    ],
)
def test_authentic_metadata_within_the_schema_opens(override: dict[str, Any]) -> None:
    data_key = crypto.new_data_key()
    fields = {**GOOD_FIELDS, **override}
    assert crypto.open_metadata(
        data_key, metadata_record(data_key, json.dumps(fields).encode()), owner=None
    ) == EnvelopeMetadata(**fields)


def test_authentic_metadata_with_any_json_layout_opens() -> None:
    data_key = crypto.new_data_key()
    document = json.dumps(GOOD_FIELDS, indent=4, sort_keys=True).encode()
    assert crypto.open_metadata(data_key, metadata_record(data_key, document), owner=None) == EnvelopeMetadata(
        **GOOD_FIELDS
    )


def test_authentic_deeply_nested_metadata_is_rejected() -> None:
    data_key = crypto.new_data_key()
    with pytest.raises(DecryptionError):
        crypto.open_metadata(data_key, metadata_record(data_key, b"[" * 1024), owner=None)


@pytest.mark.parametrize(
    "override",
    [
        {"kind": "bogus"},
        {"name": 123},
        {"name": "../../etc/passwd"},
        {"type": ["text/plain"]},
        {"size": True},
        {"sha256": "not a digest"},
        {"received": 0},
        {"received": "2024-05-01T12:34:56"},  # no zone
        {"received": "2024-05-01T12:34:56.123Z"},  # finer than the second
        {"received": "2024-05-01T12:34:56+00:00"},
        {"received": "2024-02-30T12:34:56Z"},  # no such day
        {"received": "2024-05-01T24:00:00Z"},
        {"received": "٢٠٢٤-05-01T12:34:56Z"},  # digits of another script
        {"received": " 2024-05-01T12:34:56Z"},
        {"kind": "message", "name": "a.txt", "sanitised": ""},  # a message names no file
        {"kind": "message", "name": "", "sanitised": "stripped"},  # and nothing was stripped from it
        {"kind": "reply", "name": "", "sanitised": "not-requested"},
        {"sanitised": "cleaned"},
    ],
)
def test_authentic_metadata_violating_schema_is_rejected(override: dict[str, Any]) -> None:
    data_key = crypto.new_data_key()
    with pytest.raises(DecryptionError):
        crypto.open_metadata(
            data_key, metadata_record(data_key, json.dumps({**GOOD_FIELDS, **override}).encode()), owner=None
        )


# --- body -------------------------------------------------------------------------------

BODY_SIZES = [
    0,
    1,
    CHUNK_SIZE - 1,
    CHUNK_SIZE,
    CHUNK_SIZE + 1,
    2 * CHUNK_SIZE,
    3 * CHUNK_SIZE + 17,
    9 * CHUNK_SIZE - 5,  # padme(9) == 10 chunks
]


def content_of(size: int) -> bytes:
    # Non-zero everywhere, so that a misplaced padding boundary is visible.
    return bytes((i * 7 + 1) % 255 + 1 for i in range(256)) * (size // 256) + b"\x01" * (size % 256)


@pytest.mark.parametrize("size", BODY_SIZES)
@pytest.mark.parametrize("split", [(1 << 30,), (1, 7, 65535, 3, 65537, 4099)], ids=["whole", "odd-pieces"])
def test_body_round_trip(size: int, split: tuple[int, ...]) -> None:
    data_key = crypto.new_data_key()
    content = content_of(size)
    body, digest, written = encrypt_body(data_key, content, split)
    assert written == size
    assert digest == hashlib.sha256(content).hexdigest()
    assert len(body) == crypto.body_size(size)
    assert len(body) == BODY_HEADER_SIZE + crypto.padded_chunk_count(size) * BODY_CHUNK_SIZE
    assert body[0] == 0x01
    parts = list(crypto.read_body(data_key, io.BytesIO(body), size))
    assert b"".join(parts) == content
    assert all(0 < len(part) <= CHUNK_SIZE for part in parts)


def test_body_plaintext_follows_spec() -> None:
    data_key = crypto.new_data_key()
    content = content_of(2 * CHUNK_SIZE + 5)
    body, _, _ = encrypt_body(data_key, content, (1000,))
    header, chunks = chunks_of(body)
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, header[1:], blake2b(data_key, b"buzon-body-v1"))
    opened = [sodium.crypto_secretstream_xchacha20poly1305_pull(state, chunk, None) for chunk in chunks]
    assert [tag for _, tag in opened] == [TAG_MESSAGE, TAG_MESSAGE, TAG_FINAL]
    assert b"".join(plain for plain, _ in opened) == content.ljust(3 * CHUNK_SIZE, b"\0")


@pytest.mark.parametrize(
    ("content_size", "expected_chunks"),
    [
        (0, 1),
        (1, 1),
        (CHUNK_SIZE, 1),
        (CHUNK_SIZE + 1, 2),
        (8 * CHUNK_SIZE, 8),
        (8 * CHUNK_SIZE + 1, 10),
        (129 * CHUNK_SIZE, 144),
        (1000 * CHUNK_SIZE - 1, 1024),
    ],
)
def test_body_size(content_size: int, expected_chunks: int) -> None:
    assert crypto.padded_chunk_count(content_size) == expected_chunks
    assert crypto.body_size(content_size) == 25 + expected_chunks * 65553


def test_body_wrong_data_key_is_rejected() -> None:
    data_key = crypto.new_data_key()
    body, _, _ = encrypt_body(data_key, b"secret")
    assert_body_rejected(crypto.new_data_key(), body, 6)
    assert_body_rejected(blake2b(data_key, b"buzon-body-v1"), body, 6)  # the derived key, not K


def test_body_every_byte_flip_of_one_chunk_body_is_rejected() -> None:
    data_key = crypto.new_data_key()
    body, _, _ = encrypt_body(data_key, b"one small secret")
    assert len(body) == BODY_HEADER_SIZE + BODY_CHUNK_SIZE
    for _, bad in flipped(body, (0x01,)):
        assert_body_rejected(data_key, bad, 16)


def test_body_byte_flips_of_two_chunk_body_are_rejected() -> None:
    # Every byte of the header and of both ends of each chunk, and a stride through the
    # middle: every byte of a two-chunk body would take ~9 s.
    data_key = crypto.new_data_key()
    size = CHUNK_SIZE + 100
    body, _, _ = encrypt_body(data_key, content_of(size))
    assert len(body) == BODY_HEADER_SIZE + 2 * BODY_CHUNK_SIZE
    positions: set[int] = set(range(BODY_HEADER_SIZE)) | set(range(0, len(body), 61))
    for start in (BODY_HEADER_SIZE, BODY_HEADER_SIZE + BODY_CHUNK_SIZE):
        positions |= set(range(start, start + 48)) | set(range(start + BODY_CHUNK_SIZE - 48, start + BODY_CHUNK_SIZE))
    for index in sorted(positions):
        bad = bytearray(body)
        bad[index] ^= 0x01
        assert_body_rejected(data_key, bytes(bad), size)


def test_body_truncation_and_extension_are_rejected() -> None:
    data_key = crypto.new_data_key()
    size = 2 * CHUNK_SIZE + 10
    body, _, _ = encrypt_body(data_key, content_of(size))
    header, chunks = chunks_of(body)
    assert len(chunks) == 3
    assert read_all(data_key, body, size) == content_of(size)
    other_body, _, _ = encrypt_body(data_key, content_of(size))
    _, other_chunks = chunks_of(other_body)
    truncations = [0, 1, 24, 25, 26, 25 + BODY_CHUNK_SIZE - 1, 25 + BODY_CHUNK_SIZE, len(body) - 1]
    variants = (
        [body[:n] for n in truncations]
        + [
            body + b"\0",  # one extra byte
            body + body[-1:],
            header + chunks[0] + chunks[1],  # last chunk dropped
            header + chunks[1] + chunks[2],  # first chunk dropped
            header + chunks[1] + chunks[0] + chunks[2],  # two chunks swapped
            header + chunks[0] + chunks[2] + chunks[1],
            header + chunks[0] + chunks[1] + chunks[1] + chunks[2],  # a chunk repeated
            body + chunks[2],  # an extra chunk after the final one
            body + crypto.random_bytes(BODY_CHUNK_SIZE),  # an extra valid-size chunk of junk
            header + chunks[0] + other_chunks[1] + chunks[2],  # a chunk from another body, same key
            other_body[:BODY_HEADER_SIZE] + b"".join(chunks),  # another body's header
        ]
    )
    for bad in variants:
        assert_body_rejected(data_key, bad, size)


def test_body_chunk_tags_are_enforced() -> None:
    data_key = crypto.new_data_key()
    zero = bytes(CHUNK_SIZE)
    assert read_all(data_key, stream_body(data_key, [(zero, TAG_MESSAGE), (zero, TAG_FINAL)]), 0) == b""
    for tags in (
        [TAG_FINAL, TAG_FINAL],  # TAG_FINAL before the last chunk
        [TAG_FINAL, TAG_MESSAGE],
        [TAG_MESSAGE, TAG_MESSAGE],  # the last chunk lacks TAG_FINAL
        [TAG_MESSAGE],
        [TAG_PUSH, TAG_FINAL],
        [TAG_REKEY, TAG_FINAL],
        [TAG_MESSAGE, TAG_PUSH],
    ):
        assert_body_rejected(data_key, stream_body(data_key, [(zero, tag) for tag in tags]), 0)


def test_body_chunk_of_wrong_plaintext_size_is_rejected() -> None:
    data_key = crypto.new_data_key()
    for plain in (bytes(CHUNK_SIZE - 1), bytes(CHUNK_SIZE + 1), b""):
        assert_body_rejected(data_key, stream_body(data_key, [(plain, TAG_FINAL)]), 0)


def test_body_non_zero_padding_is_rejected() -> None:
    data_key = crypto.new_data_key()
    body, _, _ = encrypt_body(data_key, b"abc")
    assert read_all(data_key, body, 3) == b"abc"
    for claimed in (0, 1, 2):
        assert_body_rejected(data_key, body, claimed)
    size = CHUNK_SIZE + 1
    body, _, _ = encrypt_body(data_key, content_of(size))
    for claimed in (CHUNK_SIZE, 10):  # non-zero padding in the second chunk
        assert_body_rejected(data_key, body, claimed)


def test_body_content_size_beyond_chunks_is_rejected() -> None:
    data_key = crypto.new_data_key()
    body, _, _ = encrypt_body(data_key, b"abc")
    assert read_all(data_key, body, 10) == b"abc" + bytes(7)  # zero padding is indistinguishable
    assert read_all(data_key, body, CHUNK_SIZE) == b"abc".ljust(CHUNK_SIZE, b"\0")
    for claimed in (CHUNK_SIZE + 1, 10 * CHUNK_SIZE, -1):
        assert_body_rejected(data_key, body, claimed)


def test_body_wrong_version_is_rejected() -> None:
    data_key = crypto.new_data_key()
    body, _, _ = encrypt_body(data_key, b"abc")
    for version in (0x00, 0x02, 0xFF):
        assert_body_rejected(data_key, bytes([version]) + body[1:], 3)


def test_body_writer_holds_at_most_two_chunks_of_plaintext() -> None:
    sink = io.BytesIO()
    writer = BodyWriter(crypto.new_data_key(), sink)
    for step in range(1, 81):
        writer.write(b"\1" * 4099)
        encrypted = (len(sink.getvalue()) - BODY_HEADER_SIZE) // BODY_CHUNK_SIZE * CHUNK_SIZE
        assert step * 4099 - encrypted < 2 * CHUNK_SIZE


def test_body_writer_holds_back_at_most_one_chunk() -> None:
    sink = io.BytesIO()
    writer = BodyWriter(crypto.new_data_key(), sink)
    writer.write(b"\1" * (3 * CHUNK_SIZE + 5))
    assert len(sink.getvalue()) == BODY_HEADER_SIZE + 2 * BODY_CHUNK_SIZE
    writer.finish()
    assert len(sink.getvalue()) == crypto.body_size(3 * CHUNK_SIZE + 5)


# --- padme ------------------------------------------------------------------------------

PADME_KNOWN = {
    0: 0,
    1: 1,
    2: 2,
    3: 3,
    4: 4,
    5: 5,
    7: 7,
    8: 8,
    9: 10,
    11: 12,
    13: 14,
    17: 18,
    33: 36,
    65: 72,
    100: 104,
    129: 144,
    257: 272,
    1000: 1024,
    1025: 1088,
    65537: 67584,
    1_000_000: 1_015_808,
}


def padme_reference(length: int) -> int:
    """Padmé as in Nikitin et al., 'Reducing metadata leakage ... with PURBs', PETS 2019."""
    if length < 2:
        return length
    e = length.bit_length() - 1  # floor(log2 L)
    s = e.bit_length()  # floor(log2 E) + 1
    last_bits = e - s
    mask = (1 << last_bits) - 1
    return (length + mask) & ~mask


def padme_spec_wording(length: int) -> int:
    """docs/crypto.md read literally: E, S, z, then round L up to a multiple of 2^z."""
    if length < 2:
        return length
    e = math.floor(math.log2(length))
    s = math.floor(math.log2(e)) + 1 if e else 1
    z = e - s
    return -(-length // 2**z) * 2**z if z > 0 else length


@pytest.mark.parametrize(("length", "expected"), sorted(PADME_KNOWN.items()))
def test_padme_known_values(length: int, expected: int) -> None:
    assert crypto.padme(length) == expected == padme_reference(length)


def test_padme_monotone_bounded_and_idempotent() -> None:
    lengths = sorted(
        {
            *range(1, 20000),
            *range(2**20 - 3000, 2**20 + 3000),
            *(2**k + d for k in range(15, 64) for d in (-1, 0, 1)),
        }
    )
    previous = 0
    worst = 0.0
    for length in lengths:
        padded = crypto.padme(length)
        assert padded >= length
        assert padded >= previous  # monotone
        assert crypto.padme(padded) == padded  # idempotent
        assert padded == padme_reference(length)
        previous = padded
        worst = max(worst, (padded - length) / length)
    assert 0.11 < worst <= 0.12  # the Padmé bound; reached near L = 129


def test_padme_matches_spec_wording() -> None:
    assert [crypto.padme(n) for n in range(1, 20)] == [padme_spec_wording(n) for n in range(1, 20)]


# --- editor key wrapping ----------------------------------------------------------------


def test_wrap_unwrap_round_trip(wrapped: tuple[bytes, KeyPair]) -> None:
    record, editor = wrapped
    assert len(record) == WRAPPED_KEY_SIZE
    assert record[:10] == struct.pack(">BIIB", 1, 1, 8, 1)
    assert crypto.wrapped_key_params(record) == FAST
    opened = crypto.unwrap_secret_key(record, "correct horse battery staple")
    assert (opened.secret, opened.public) == (editor.secret, editor.public)
    assert crypto.wrap_secret_key(editor.secret, "correct horse battery staple", FAST) != record  # fresh salt


def test_wrap_records_params_and_matches_spec_formula() -> None:
    editor = crypto.generate_keypair()
    params = KdfParams(time_cost=2, memory_kib=64, parallelism=2)
    record = crypto.wrap_secret_key(editor.secret, "pässwörd", params)
    assert record[:10] == struct.pack(">BIIB", 1, 2, 64, 2)
    assert crypto.wrapped_key_params(record) == params
    salt, nonce, box = record[10:26], record[26:50], record[50:]
    wrap_key = argon2.low_level.hash_secret_raw(
        "pässwörd".encode(),
        salt,
        time_cost=2,
        memory_cost=64,
        parallelism=2,
        hash_len=32,
        type=argon2.low_level.Type.ID,
        version=0x13,
    )
    assert sodium.crypto_secretbox_open(box, nonce, wrap_key) == editor.secret
    assert crypto.unwrap_secret_key(record, "pässwörd").public == editor.public


def test_unwrap_normalises_passphrase_to_nfc() -> None:
    editor = crypto.generate_keypair()
    record = crypto.wrap_secret_key(editor.secret, "Buzo\u0301n", FAST)  # NFD
    assert crypto.unwrap_secret_key(record, "Buz\u00f3n").public == editor.public  # NFC
    with pytest.raises(DecryptionError):
        crypto.unwrap_secret_key(record, "Buzon")


def test_unwrap_wrong_passphrase_is_rejected(wrapped: tuple[bytes, KeyPair]) -> None:
    record, _ = wrapped
    for guess in ("", "correct horse battery stapl", "Correct horse battery staple", "correct horse battery staple "):
        with pytest.raises(DecryptionError):
            crypto.unwrap_secret_key(record, guess)


def test_wrapped_key_every_byte_flip_is_rejected(wrapped: tuple[bytes, KeyPair]) -> None:
    # Some flips of the memory cost stay in range (up to 64 MiB); they run Argon2id and fail the tag.
    record, _ = wrapped
    for _, bad in flipped(record, (0x01, 0x80)):
        with pytest.raises(DecryptionError):
            crypto.unwrap_secret_key(bad, "correct horse battery staple")


@pytest.mark.usefixtures("no_kdf")
def test_wrapped_key_wrong_length_or_version_is_rejected_before_kdf(wrapped: tuple[bytes, KeyPair]) -> None:
    record, _ = wrapped
    for bad in (b"", record[:-1], record + b"\0", b"\x00" + record[1:], b"\x02" + record[1:]):
        with pytest.raises(DecryptionError):
            crypto.unwrap_secret_key(bad, "correct horse battery staple")
        with pytest.raises(DecryptionError):
            crypto.wrapped_key_params(bad)


@pytest.mark.usefixtures("no_kdf")
@pytest.mark.parametrize(
    ("t", "m", "p"),
    [
        (0, 8, 1),
        (17, 8, 1),
        (2**32 - 1, 8, 1),
        (1, 7, 1),
        (1, 0, 1),
        (1, 4194305, 1),
        (1, 2**32 - 1, 1),
        (1, 64, 0),
        (1, 64, 9),
        (1, 64, 255),
        (1, 8, 2),
    ],
)
def test_wrapped_key_out_of_range_params_are_rejected_before_kdf(
    wrapped: tuple[bytes, KeyPair], t: int, m: int, p: int
) -> None:
    record, _ = wrapped
    bad = struct.pack(">BIIB", 1, t, m, p) + record[10:]
    with pytest.raises(DecryptionError):
        crypto.wrapped_key_params(bad)
    with pytest.raises(DecryptionError):
        crypto.unwrap_secret_key(bad, "correct horse battery staple")


# --- input caps and KDF parameters ------------------------------------------------------


@pytest.mark.usefixtures("no_kdf")
@pytest.mark.parametrize("passphrase", ["x" * 1025, "é" * 513, "😀" * 257, "x" * 100_000])
def test_long_passphrase_is_refused_before_kdf(wrapped: tuple[bytes, KeyPair], passphrase: str) -> None:
    record, editor = wrapped
    with pytest.raises(InputTooLongError):
        crypto.wrap_secret_key(editor.secret, passphrase, FAST)
    with pytest.raises(InputTooLongError):
        crypto.unwrap_secret_key(record, passphrase)
    assert issubclass(InputTooLongError, ValueError)


def test_passphrase_of_exactly_1024_bytes_is_accepted() -> None:
    editor = crypto.generate_keypair()
    for passphrase in ("x" * 1024, "é" * 512, "😀" * 256):
        record = crypto.wrap_secret_key(editor.secret, passphrase, FAST)
        assert crypto.unwrap_secret_key(record, passphrase).public == editor.public


@pytest.mark.usefixtures("no_kdf")
@pytest.mark.parametrize("codename", ["a" * 257, "word " * 52, " " * 300, "ｗ" * 257])
def test_long_codename_is_refused_before_kdf(codename: str) -> None:
    with pytest.raises(InputTooLongError):
        crypto.derive_source_keys(codename, PEPPER, FAST)
    with pytest.raises(InputTooLongError):
        crypto.normalise_codename(codename)


def test_codename_of_256_characters_is_accepted() -> None:
    codename = ("abcdefg " * 32)[:256]
    assert len(codename) == 256
    assert crypto.derive_source_keys(codename, PEPPER, FAST) == crypto.derive_source_keys(
        codename.strip(), PEPPER, FAST
    )


@pytest.mark.parametrize(
    ("t", "m", "p"),
    [
        (0, 8, 1),
        (17, 8, 1),
        (-1, 8, 1),
        (1, 7, 1),
        (1, 0, 1),
        (1, 4194305, 1),
        (1, 64, 0),
        (1, 64, 9),
        (1, 8, 2),
        (1, 63, 8),
    ],
)
def test_kdf_params_out_of_range_are_refused(t: int, m: int, p: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        KdfParams(time_cost=t, memory_kib=m, parallelism=p)


@pytest.mark.parametrize(("t", "m", "p"), [(1, 8, 1), (16, 4194304, 8), (3, 131072, 1), (1, 64, 8), (16, 8, 1)])
def test_kdf_params_in_range_are_accepted(t: int, m: int, p: int) -> None:
    params = KdfParams(time_cost=t, memory_kib=m, parallelism=p)
    assert (params.time_cost, params.memory_kib, params.parallelism) == (t, m, p)


# --- recovery secret --------------------------------------------------------------------

RECOVERY_FORMAT = re.compile(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){7}")


def test_generate_recovery_secret_format() -> None:
    secrets_seen = {crypto.generate_recovery_secret() for _ in range(20)}
    assert len(secrets_seen) == 20
    for secret in secrets_seen:
        assert RECOVERY_FORMAT.fullmatch(secret), secret
        assert len(base64.b32decode(secret.replace("-", ""))) == 20
        kp = crypto.recovery_keypair(secret)
        assert kp.secret == blake2b(base64.b32decode(secret.replace("-", "")), b"buzon-recover-v1")
        assert kp.public == x25519_base(kp.secret)


def test_recovery_parsing_ignores_case_spaces_and_hyphens() -> None:
    secret = crypto.generate_recovery_secret()
    expected = crypto.recovery_keypair(secret)
    compact = secret.replace("-", "")
    for variant in (
        secret.lower(),
        compact,
        compact.lower(),
        secret.replace("-", " "),
        f"  {secret}  ",
        " ".join(compact),
        "-".join(compact),
        "--" + secret.swapcase() + "--",
        compact[:16] + "\n" + compact[16:],
    ):
        kp = crypto.recovery_keypair(variant)
        assert (kp.secret, kp.public) == (expected.secret, expected.public), variant
    assert crypto.recovery_keypair(crypto.generate_recovery_secret()).public != expected.public


@pytest.mark.parametrize(
    "text",
    [
        "",
        "A" * 31,
        "A" * 33,
        "A" * 40,  # 25 bytes
        "A" * 24,  # 15 bytes
        "AAAA-" * 7 + "AAA",
        "AAAA-" * 8 + "A",
        "0" * 32,  # not in the base32 alphabet
        "1" * 32,
        "8" * 32,
        "A" * 31 + "!",
        "A" * 31 + "é",
        "=" * 32,
    ],
)
def test_recovery_malformed_is_rejected(text: str) -> None:
    with pytest.raises(DecryptionError):
        crypto.recovery_keypair(text)


@pytest.mark.parametrize(
    "text", ["A" * 31 + "=", "A" * 29 + "===", "A" * 28 + "====", "A" * 26 + "======", "AAAA-" * 7 + "AAA="]
)
def test_recovery_with_padding_is_rejected(text: str) -> None:
    with pytest.raises(DecryptionError):
        crypto.recovery_keypair(text)


# --- source codenames -------------------------------------------------------------------


def test_derive_source_keys_is_deterministic_and_normalised() -> None:
    keys = crypto.derive_source_keys(CODENAME, PEPPER, FAST)
    assert len(keys.lookup_id) == 32
    assert keys.reply.public == x25519_base(keys.reply.secret)
    assert repr(keys) == "SourceKeys(…)"
    for variant in (
        CODENAME,
        CODENAME.upper(),
        "  " + CODENAME.replace(" ", " \t\n ") + "\n",
        CODENAME.title(),
        unicodedata.normalize("NFKC", "\uff41\uff42\uff41\uff43\uff55\uff53") + CODENAME[6:],
        "\uff41\uff42\uff41\uff43\uff55\uff53" + CODENAME[6:],  # fullwidth letters
        CODENAME.replace(" ", "\u3000"),  # ideographic space
        CODENAME.replace(" ", "\u00a0"),
    ):
        again = crypto.derive_source_keys(variant, PEPPER, FAST)
        assert again.lookup_id == keys.lookup_id, variant
        assert (again.reply.secret, again.reply.public) == (keys.reply.secret, keys.reply.public)


def test_derive_source_keys_separates_inputs() -> None:
    keys = crypto.derive_source_keys(CODENAME, PEPPER, FAST)
    others = [
        crypto.derive_source_keys(CODENAME, bytes(16), FAST),
        crypto.derive_source_keys(CODENAME.replace("ablaze", "able"), PEPPER, FAST),
        crypto.derive_source_keys(CODENAME.replace(" ", ""), PEPPER, FAST),
        crypto.derive_source_keys(CODENAME, PEPPER, KdfParams(time_cost=2, memory_kib=8)),
    ]
    lookups = {keys.lookup_id} | {o.lookup_id for o in others}
    replies = {keys.reply.public} | {o.reply.public for o in others}
    assert len(lookups) == len(replies) == 1 + len(others)
    assert keys.lookup_id != keys.reply.secret
    assert keys.lookup_id != keys.reply.public


def test_normalise_codename() -> None:
    assert crypto.normalise_codename("  Ａｂc\tDEF  ghi\n") == "abc def ghi"
    assert crypto.normalise_codename("ﬁ ① Ⅻ") == "fi 1 xii"
    assert crypto.normalise_codename("") == ""


# --- editor sessions --------------------------------------------------------------------


def test_session_id_is_deterministic_and_labelled() -> None:
    token = crypto.random_token()
    assert len(token) == 32
    assert crypto.session_id(token) == crypto.session_id(bytes(token)) == blake2b(token, b"buzon-sess-id-v1")
    assert crypto.session_id(token) != crypto.session_id(crypto.random_token())


def test_session_seal_open_round_trip() -> None:
    token = crypto.random_token()
    held = b"key-id-8" + bytes(32)
    sealed = crypto.seal_for_session(token, held)
    assert len(sealed) == 24 + 16 + len(held)
    assert crypto.open_for_session(token, sealed) == held
    assert crypto.open_for_session(token, crypto.seal_for_session(token, b"")) == b""
    assert crypto.seal_for_session(token, held) != sealed  # fresh nonce
    session_key = blake2b(token, b"buzon-sesskey-v1")
    assert sodium.crypto_secretbox_open(sealed[24:], sealed[:24], session_key) == held


def test_session_wrong_token_or_tampering_is_rejected() -> None:
    token = crypto.random_token()
    sealed = crypto.seal_for_session(token, b"held keys")
    for wrong in (crypto.random_token(), token[:-1], token + b"\0", bytes(32)):
        with pytest.raises(DecryptionError):
            crypto.open_for_session(wrong, sealed)
    for _, bad in flipped(sealed):
        with pytest.raises(DecryptionError):
            crypto.open_for_session(token, bad)
    for bad in (sealed[:-1], sealed + b"\0", bytes(64)):
        with pytest.raises(DecryptionError):
            crypto.open_for_session(token, bad)


def test_session_open_short_ciphertext_is_rejected() -> None:
    for size in (0, 23, 39):
        with pytest.raises(DecryptionError):
            crypto.open_for_session(crypto.random_token(), bytes(size))


# --- fixed vectors (tests/crypto/vectors.json, from make_vectors.py) ---------------------


def argon2id_reference(secret: bytes, salt: bytes, kdf: dict[str, int]) -> bytes:
    return argon2.low_level.hash_secret_raw(
        secret,
        salt,
        time_cost=kdf["time_cost"],
        memory_cost=kdf["memory_kib"],
        parallelism=kdf["parallelism"],
        hash_len=32,
        type=argon2.low_level.Type.ID,
        version=0x13,
    )


@pytest.mark.parametrize("case", VECTORS["key_id"], ids=lambda case: str(case["key_id"]))
def test_vector_key_id(case: dict[str, str]) -> None:
    public = bytes.fromhex(case["public_key"])
    assert crypto.key_id(public).hex() == case["key_id"]
    assert blake2b(public, b"buzon-key-id-v1", 8).hex() == case["key_id"]


@pytest.mark.parametrize("case", VECTORS["source_keys"]["cases"], ids=lambda case: str(case["normalised"]))
def test_vector_source_keys(case: dict[str, Any]) -> None:
    vector = VECTORS["source_keys"]
    kdf: dict[str, int] = vector["kdf"]
    pepper = bytes.fromhex(vector["pepper"])
    params = KdfParams(kdf["time_cost"], kdf["memory_kib"], kdf["parallelism"])
    assert crypto.normalise_codename(case["codename"]) == case["normalised"]
    for text in [case["codename"], case["normalised"], *case["equivalent_inputs"]]:
        keys = crypto.derive_source_keys(text, pepper, params)
        assert keys.lookup_id.hex() == case["lookup_id"], text
        assert keys.reply.public.hex() == case["reply_public_key"], text
    # The spec's formulas, computed without app.crypto.
    master = argon2id_reference(case["normalised"].encode("utf-8"), pepper, kdf)
    assert master.hex() == case["master"]
    assert blake2b(master, b"buzon-lookup-v1").hex() == case["lookup_id"]
    reply_secret = blake2b(master, b"buzon-reply-v1")
    assert reply_secret.hex() == case["reply_secret_key"]
    assert x25519_base(reply_secret).hex() == case["reply_public_key"]


@pytest.mark.parametrize("case", VECTORS["recovery"], ids=lambda case: str(case["recovery_secret"]))
def test_vector_recovery(case: dict[str, str]) -> None:
    kp = crypto.recovery_keypair(case["recovery_secret"])
    assert kp.public.hex() == case["public_key"]
    assert crypto.recovery_keypair(case["recovery_secret"].lower().replace("-", " ")).public == kp.public
    raw = base64.b32decode(case["recovery_secret"].replace("-", ""))
    assert raw.hex() == case["raw"]
    assert blake2b(raw, b"buzon-recover-v1").hex() == case["secret_key"]
    assert x25519_base(bytes.fromhex(case["secret_key"])).hex() == case["public_key"]


def test_vector_wrapped_key() -> None:
    vector = VECTORS["wrapped_key"]
    record = bytes.fromhex(vector["record"])
    for passphrase in (vector["passphrase"], vector["passphrase_nfc"]):
        kp = crypto.unwrap_secret_key(record, passphrase)
        assert kp.public.hex() == vector["public_key"]
        assert kp.secret.hex() == vector["secret_key"]
    with pytest.raises(DecryptionError):
        crypto.unwrap_secret_key(record, vector["passphrase_nfc"].upper())
    version, t, m, p = struct.unpack(">BIIB", record[:10])
    assert (version, record[10:26].hex(), record[26:50].hex()) == (1, vector["salt"], vector["nonce"])
    wrap_key = argon2id_reference(
        vector["passphrase_nfc"].encode("utf-8"), record[10:26], {"time_cost": t, "memory_kib": m, "parallelism": p}
    )
    assert wrap_key.hex() == vector["wrap_key"]
    assert x25519_base(bytes.fromhex(vector["secret_key"])).hex() == vector["public_key"]


def test_vector_envelope() -> None:
    vector = VECTORS["envelope"]
    newsroom = crypto.keypair_from_secret(bytes.fromhex(vector["newsroom_secret_key"]))
    assert newsroom.public.hex() == vector["newsroom_public_key"] == x25519_base(newsroom.secret).hex()
    capsule = bytes.fromhex(vector["capsule"])
    data_key = crypto.open_capsule(capsule, {crypto.key_id(newsroom.public): newsroom})
    assert data_key.hex() == vector["data_key"]
    record = bytes.fromhex(vector["metadata_record"])
    metadata = crypto.open_metadata(data_key, record, owner=None)
    assert metadata == EnvelopeMetadata(**vector["metadata"])
    content = bytes.fromhex(vector["content"])
    assert read_all(data_key, bytes.fromhex(vector["body"]), metadata.size) == content
    assert metadata.sha256 == hashlib.sha256(content).hexdigest()
    assert blake2b(data_key, b"buzon-meta-v1").hex() == vector["meta_key"]
    assert blake2b(data_key, b"buzon-body-v1").hex() == vector["body_key"]
    other = crypto.generate_keypair()
    with pytest.raises(DecryptionError):
        crypto.open_capsule(capsule, {crypto.key_id(newsroom.public): other})


# --- newsroom records and duplicate tags ---------------------------------------


def test_record_round_trip_and_padding(newsroom: KeyPair) -> None:
    keys = {crypto.key_id(newsroom.public): newsroom}
    for text in ("", "nota: revisar con la fuente", "ñ" * 300):
        record = crypto.seal_record(newsroom.public, text)
        assert crypto.open_record(record, keys) == text
        # version || key id || seal of a multiple of 256 bytes
        assert record[0] == crypto.VERSION
        assert record[1:9] == crypto.key_id(newsroom.public)
        assert (len(record) - 9 - crypto.SEAL_OVERHEAD) % 256 == 0
    assert len(crypto.seal_record(newsroom.public, "a")) == len(crypto.seal_record(newsroom.public, "a" * 200))


def test_record_rejects_tampering_wrong_key_and_bad_padding(newsroom: KeyPair) -> None:
    keys = {crypto.key_id(newsroom.public): newsroom}
    record = crypto.seal_record(newsroom.public, "secret note")
    for position in range(0, len(record), 7):
        tampered = bytearray(record)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionError):
            crypto.open_record(bytes(tampered), keys)
    other = crypto.generate_keypair()
    with pytest.raises(DecryptionError):
        crypto.open_record(record, {crypto.key_id(newsroom.public): other})
    with pytest.raises(DecryptionError):
        crypto.open_record(record, {})
    # Authentic seals whose padding lies about the length are refused too.
    for padded in (struct.pack(">I", 300) + bytes(252), struct.pack(">I", 1) + b"a" + b"\x01" + bytes(250)):
        forged = (
            bytes([crypto.VERSION]) + crypto.key_id(newsroom.public) + sodium.crypto_box_seal(padded, newsroom.public)
        )
        with pytest.raises(DecryptionError):
            crypto.open_record(forged, keys)
    with pytest.raises(InputTooLongError):
        crypto.seal_record(newsroom.public, "x" * (crypto.MAX_RECORD_TEXT_BYTES + 1))


def test_dup_tag_matches_spec_formula() -> None:
    nsk = hashlib.sha256(b"oldest newsroom key").digest()
    sha = hashlib.sha256(b"leaked.pdf contents").hexdigest()
    key = hashlib.blake2b(nsk, digest_size=32, person=b"buzon-dedup-v1").digest()
    expected = hashlib.blake2b(bytes.fromhex(sha), digest_size=32, key=key).digest()
    assert crypto.dedup_key(nsk) == key
    assert crypto.dup_tag(key, sha) == expected
    assert crypto.dup_tag(crypto.dedup_key(bytes(32)), sha) != expected
    with pytest.raises(DecryptionError):
        crypto.dup_tag(key, "not hex")


def test_vector_metadata_v2() -> None:
    vector = VECTORS["metadata_v2"]
    data_key, record = bytes.fromhex(vector["data_key"]), bytes.fromhex(vector["metadata_record"])
    expected = EnvelopeMetadata(**vector["metadata"])
    assert crypto.open_metadata(data_key, record, owner=vector["owner"], kind="message") == expected
    assert crypto.open_metadata(data_key, record, owner=None) == expected
    with pytest.raises(DecryptionError):  # moved to another submission
        crypto.open_metadata(data_key, record, owner="0" * 32)
    with pytest.raises(DecryptionError):  # relabelled
        crypto.open_metadata(data_key, record, owner=vector["owner"], kind="file")


def test_a_version_1_record_stays_readable_without_an_owner_check() -> None:
    # Sealed before 0x02: no owner to compare, so any row may hold it (the residue in docs/crypto.md).
    vector = VECTORS["envelope"]
    data_key, record = bytes.fromhex(vector["data_key"]), bytes.fromhex(vector["metadata_record"])
    assert record[0] == 0x01
    opened = crypto.open_metadata(data_key, record, owner="0" * 32, kind="file")
    assert opened == EnvelopeMetadata(**vector["metadata"])
    assert opened.owner == ""


@pytest.mark.parametrize(
    ("version", "owner"),
    [(0x01, OWNER), (0x02, None), (0x02, ""), (0x02, "A" * 32), (0x02, OWNER + "0")],
    ids=["owner in 0x01", "no owner in 0x02", "empty owner", "upper-case owner", "long owner"],
)
def test_the_owner_member_is_exactly_where_its_version_says(version: int, owner: str | None) -> None:
    data_key = crypto.new_data_key()
    fields = {**sample_metadata().__dict__}
    if owner is None:
        del fields["owner"]
    else:
        fields["owner"] = owner
    plaintext = json.dumps(fields).encode()
    record = bytes([version]) + metadata_record(data_key, plaintext)[1:]
    with pytest.raises(DecryptionError):
        crypto.open_metadata(data_key, record, owner=None)


def test_metadata_without_an_owner_cannot_be_sealed() -> None:
    with pytest.raises(ValueError, match="schema"):
        crypto.seal_metadata(crypto.new_data_key(), dataclasses.replace(sample_metadata(), owner=""))
