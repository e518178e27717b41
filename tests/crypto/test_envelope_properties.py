"""Hypothesis properties of app.crypto's parsers and envelope format (docs/crypto.md).

- Bodies round-trip for arbitrary content and arbitrary write boundaries.
- Every parser, fed arbitrary bytes, either returns well-formed data or raises
  DecryptionError, never anything else.
- No malleability: a mutated capsule, metadata record, wrapped key, grant or
  body is accepted only if it is byte-identical to the original.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import random
import re
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app import crypto
from app.crypto import (
    BODY_CHUNK_SIZE,
    BODY_HEADER_SIZE,
    CAPSULE_SIZE,
    CHUNK_SIZE,
    META_SIZE,
    WRAPPED_KEY_SIZE,
    BodyWriter,
    DecryptionError,
    EnvelopeMetadata,
    KdfParams,
    KeyPair,
)

FAST = KdfParams(time_cost=1, memory_kib=8)
PROPERTY = settings(max_examples=50, deadline=None)

NEWSROOM = crypto.generate_keypair()
NEWSROOM_KEYS = {crypto.key_id(NEWSROOM.public): NEWSROOM}
DATA_KEY = crypto.new_data_key()
CAPSULE = crypto.make_capsule(NEWSROOM.public, DATA_KEY)
METADATA = EnvelopeMetadata(
    kind="file",
    name="ñandú «borrador».txt",
    type="text/plain",
    size=5,
    sha256=hashlib.sha256(b"hello").hexdigest(),
    received="2024-05-01T12:34:56Z",
    owner="0f" * 16,
)
METADATA_RECORD = crypto.seal_metadata(DATA_KEY, METADATA)
EDITOR = crypto.generate_keypair()
PASSPHRASE = "correct horse battery staple"
WRAPPED = crypto.wrap_secret_key(EDITOR.secret, PASSPHRASE, FAST)
GRANT = crypto.seal(EDITOR.public, NEWSROOM.secret)
CANONICAL_RECOVERY = re.compile(r"[A-Z2-7]{32}")

_real_argon2id = crypto._argon2id


def _capped_argon2id(secret: bytes, salt: bytes, params: KdfParams) -> bytes:
    """Argon2id with the record's parameters capped, so random records cannot ask for 4 GiB."""
    cheap = KdfParams(min(params.time_cost, 2), min(params.memory_kib, 64), params.parallelism)
    return _real_argon2id(secret, salt, cheap)


def _encrypt(content: bytes, cuts: list[int]) -> tuple[bytes, str, int]:
    sink = io.BytesIO()
    writer = BodyWriter(DATA_KEY, sink)
    bounds = [0, *sorted(cuts), len(content)]
    for start, end in itertools.pairwise(bounds):
        writer.write(content[start:end])
    digest = writer.finish()
    return sink.getvalue(), digest, writer.size


def _read(body: bytes, content_size: int, data_key: bytes = DATA_KEY) -> bytes:
    return b"".join(crypto.read_body(data_key, io.BytesIO(body), content_size))


SMALL_BODY = _encrypt(b"a small secret", [])[0]
TWO_CHUNK_CONTENT = random.Random(1).randbytes(CHUNK_SIZE + 3)
TWO_CHUNK_BODY = _encrypt(TWO_CHUNK_CONTENT, [])[0]


@st.composite
def contents(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return draw(st.binary(max_size=600))
    # Spread sizes over 0-3 whole chunks plus a remainder near a boundary or anywhere (up to ~250 KB).
    remainder = draw(st.one_of(st.integers(-3, 3), st.integers(0, CHUNK_SIZE - 1)))
    size = max(0, draw(st.integers(0, 3)) * CHUNK_SIZE + remainder)
    data = random.Random(draw(st.integers(0, 2**32 - 1))).randbytes(size)
    if draw(st.booleans()):  # trailing zeros must survive, not be taken for padding
        data = data[: size // 2] + bytes(size - size // 2)
    return data


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` after one to three edits: byte changes, insertions, deletions, truncation, chunk moves."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["set", "xor", "insert", "delete", "truncate", "append", "chunk"]))
        index = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "set" and data:
            data[index] = draw(st.integers(0, 255))
        elif op == "xor" and data:
            data[index] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[index:index] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[index : index + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[index:]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=8))
        elif op == "chunk" and len(original) > BODY_CHUNK_SIZE:  # a body: add, drop or move whole chunks
            where = BODY_HEADER_SIZE + BODY_CHUNK_SIZE * draw(st.integers(0, len(original) // BODY_CHUNK_SIZE))
            if draw(st.booleans()):
                data[where:where] = random.Random(draw(st.integers(0, 2**32 - 1))).randbytes(BODY_CHUNK_SIZE)
            else:
                moved = bytes(data[where : where + BODY_CHUNK_SIZE])
                del data[where : where + BODY_CHUNK_SIZE]
                data += moved
    return bytes(data)


def _anything_with_prefix(prefix: bytes, size: int) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, and bytes of the right size past the cheap header checks."""
    return st.one_of(
        st.binary(max_size=2 * size),
        st.binary(min_size=size, max_size=size),
        st.binary(min_size=size - len(prefix), max_size=size - len(prefix)).map(lambda rest: prefix + rest),
    )


# --- round trips ---------------------------------------------------------------------------


@PROPERTY
@given(content=contents(), data=st.data())
def test_body_round_trips(content: bytes, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(content)), max_size=12), label="cuts")
    body, digest, size = _encrypt(content, cuts)
    assert size == len(content)
    assert digest == hashlib.sha256(content).hexdigest()
    assert len(body) == crypto.body_size(len(content))
    assert _read(body, len(content)) == content
    if content and content[-1] != 0:  # the last content byte cannot pass for padding
        with pytest.raises(DecryptionError):
            _read(body, len(content) - 1)


@PROPERTY
@given(
    # The schema forbids "/", "\\" and every character of Unicode category C.
    name=st.text(st.characters(exclude_categories=["C"], exclude_characters="/\\"), max_size=255).filter(
        lambda name: len(name.encode("utf-8")) <= 255
    ),
    size=st.integers(0, 2**53),
)
def test_metadata_round_trips(name: str, size: int) -> None:
    metadata = EnvelopeMetadata(
        "file", name, "application/octet-stream", size, "ab" * 32, "2024-05-01T12:34:56Z", owner="0f" * 16
    )
    record = crypto.seal_metadata(DATA_KEY, metadata)
    assert len(record) == META_SIZE
    assert crypto.open_metadata(DATA_KEY, record, owner=None) == metadata


# --- arbitrary input: valid data or DecryptionError, nothing else --------------------------


@PROPERTY
@given(_anything_with_prefix(b"\x01" + crypto.key_id(NEWSROOM.public), CAPSULE_SIZE))
def test_open_capsule_arbitrary_bytes(capsule: bytes) -> None:
    try:
        data_key = crypto.open_capsule(capsule, NEWSROOM_KEYS)
    except DecryptionError:
        return
    assert len(data_key) == 32


@PROPERTY
@given(_anything_with_prefix(b"\x01", META_SIZE))
def test_open_metadata_arbitrary_bytes(record: bytes) -> None:
    try:
        metadata = crypto.open_metadata(DATA_KEY, record, owner=None)
    except DecryptionError:
        return
    assert isinstance(metadata, EnvelopeMetadata)


@PROPERTY
@given(
    body=st.one_of(
        st.binary(max_size=200),
        st.binary(min_size=BODY_HEADER_SIZE, max_size=BODY_HEADER_SIZE).map(lambda h: b"\x01" + h[1:]),
        st.tuples(st.binary(min_size=24, max_size=24), st.integers(0, 2**32 - 1), st.integers(1, 2)).map(
            lambda t: b"\x01" + t[0] + random.Random(t[1]).randbytes(t[2] * BODY_CHUNK_SIZE)
        ),
    ),
    content_size=st.integers(-3, 2 * CHUNK_SIZE + 3),
)
def test_read_body_arbitrary_bytes(body: bytes, content_size: int) -> None:
    try:
        content = _read(body, content_size)
    except DecryptionError:
        return
    assert len(content) == content_size


@PROPERTY
@given(
    record=st.one_of(
        st.binary(max_size=200),
        st.binary(min_size=WRAPPED_KEY_SIZE, max_size=WRAPPED_KEY_SIZE).map(lambda r: b"\x01" + r[1:]),
        st.tuples(
            st.integers(0, 20), st.integers(0, 2**22 + 2), st.integers(0, 10), st.binary(min_size=88, max_size=88)
        ).map(lambda t: b"\x01" + t[0].to_bytes(4, "big") + t[1].to_bytes(4, "big") + bytes([t[2]]) + t[3]),
    ),
    passphrase=st.text(max_size=40),
)
def test_unwrap_secret_key_arbitrary_bytes(record: bytes, passphrase: str) -> None:
    with mock.patch.object(crypto, "_argon2id", _capped_argon2id):
        try:
            keypair = crypto.unwrap_secret_key(record, passphrase)
        except DecryptionError:
            return
    assert len(keypair.secret) == len(keypair.public) == 32


@PROPERTY
@given(st.binary(max_size=200))
def test_open_sealed_keypair_and_session_arbitrary_bytes(data: bytes) -> None:
    for attempt in (
        lambda: crypto.open_sealed_keypair(EDITOR, data),
        lambda: crypto.open_for_session(bytes(32), data),
        lambda: crypto.seal_open(EDITOR, data),
    ):
        try:
            attempt()
        except DecryptionError:
            continue
        raise AssertionError("arbitrary bytes opened")


def _check_recovery(text: str) -> KeyPair | None:
    try:
        keypair = crypto.recovery_keypair(text)
    except DecryptionError:
        return None
    assert len(keypair.secret) == 32
    assert keypair.public == crypto.keypair_from_secret(keypair.secret).public
    return keypair


@PROPERTY
@given(st.text(max_size=60))
def test_recovery_keypair_arbitrary_text(text: str) -> None:
    _check_recovery(text)


@PROPERTY
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcxyz01890 -\t", min_size=28, max_size=44))
def test_recovery_keypair_accepts_only_32_base32_characters(text: str) -> None:
    keypair = _check_recovery(text)
    compact = "".join(text.split()).replace("-", "").upper()
    assert (keypair is not None) == bool(CANONICAL_RECOVERY.fullmatch(compact))


# --- no malleability: accepted implies byte-identical -----------------------------------


@PROPERTY
@given(mutated(CAPSULE))
def test_capsule_is_not_malleable(capsule: bytes) -> None:
    assume(capsule != CAPSULE)
    with pytest.raises(DecryptionError):
        crypto.open_capsule(capsule, NEWSROOM_KEYS)


@PROPERTY
@given(mutated(METADATA_RECORD))
def test_metadata_record_is_not_malleable(record: bytes) -> None:
    assume(record != METADATA_RECORD)
    with pytest.raises(DecryptionError):
        crypto.open_metadata(DATA_KEY, record, owner=None)


@PROPERTY
@given(mutated(WRAPPED))
def test_wrapped_key_is_not_malleable(record: bytes) -> None:
    assume(record != WRAPPED)
    with mock.patch.object(crypto, "_argon2id", _capped_argon2id), pytest.raises(DecryptionError):
        crypto.unwrap_secret_key(record, PASSPHRASE)


@PROPERTY
@given(mutated(GRANT))
def test_grant_is_not_malleable(grant: bytes) -> None:
    assume(grant != GRANT)
    with pytest.raises(DecryptionError):
        crypto.open_sealed_keypair(EDITOR, grant)


@PROPERTY
@given(
    st.one_of(
        mutated(SMALL_BODY).map(lambda b: (b, SMALL_BODY)), mutated(TWO_CHUNK_BODY).map(lambda b: (b, TWO_CHUNK_BODY))
    )
)
def test_body_is_not_malleable(pair: tuple[bytes, bytes]) -> None:
    body, original = pair
    assume(body != original)
    content_size = 14 if original is SMALL_BODY else len(TWO_CHUNK_CONTENT)
    with pytest.raises(DecryptionError):
        _read(body, content_size)


def test_fixtures_of_the_properties_are_valid() -> None:
    assert crypto.open_capsule(CAPSULE, NEWSROOM_KEYS) == DATA_KEY
    assert crypto.open_metadata(DATA_KEY, METADATA_RECORD, owner=None) == METADATA
    assert crypto.unwrap_secret_key(WRAPPED, PASSPHRASE).public == EDITOR.public
    assert crypto.open_sealed_keypair(EDITOR, GRANT).public == NEWSROOM.public
    assert _read(SMALL_BODY, 14) == b"a small secret"
    assert _read(TWO_CHUNK_BODY, len(TWO_CHUNK_CONTENT)) == TWO_CHUNK_CONTENT
