"""Generate tests/crypto/vectors.json, the fixed test vectors of docs/crypto.md.

Run from the repository root::

    .venv/bin/python tests/crypto/make_vectors.py

Every value is built here from the primitives named in docs/crypto.md
(``hashlib.blake2b``, ``argon2-cffi``, PyNaCl's libsodium bindings) and fixed
inputs, *not* through ``app.crypto``; the script then checks that
``app.crypto`` agrees and refuses to write the file if it does not. So the
vectors pin the byte layouts of the spec, not whatever the code happens to do.

The output is deterministic. The seal inside the capsule is normally random
(an ephemeral X25519 key); here the ephemeral secret key is fixed and the seal
is assembled by hand exactly as ``crypto_box_seal`` does (the script checks
that libsodium's ``crypto_box_seal_open`` accepts it). The only value that
cannot be made deterministic is the secretstream header of the body
(``init_push`` draws it internally), so the body was produced once and is
reused from the existing vectors.json for as long as it still decrypts to the
fixed content under the fixed key.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import sys
import unicodedata
from pathlib import Path
from typing import Any

# The vectors are built from the primitives themselves; pyproject.toml lifts the
# banned-api rule (TID251), which keeps them out of application code, for tests/**.
import argon2.low_level
import nacl.bindings as sodium

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app import crypto  # noqa: E402

OUTPUT = Path(__file__).with_name("vectors.json")

T_COST = 1
M_COST_KIB = 8
PARALLELISM = 1
CHUNK = 65536


def fixed(label: str, size: int = 32) -> bytes:
    """A fixed pseudo-random value, reproducible from its label."""
    return hashlib.sha256(b"buzon test vectors: " + label.encode("ascii")).digest()[:size]


def blake2b(data: bytes, label: bytes, size: int = 32) -> bytes:
    """BLAKE2b-N(x, P) of docs/crypto.md: no key, zero salt, personal = label padded to 16."""
    return hashlib.blake2b(data, digest_size=size, person=label).digest()


def argon2id(secret: bytes, salt: bytes) -> bytes:
    return argon2.low_level.hash_secret_raw(
        secret,
        salt,
        time_cost=T_COST,
        memory_cost=M_COST_KIB,
        parallelism=PARALLELISM,
        hash_len=32,
        type=argon2.low_level.Type.ID,
        version=0x13,
    )


def public_key(secret: bytes) -> bytes:
    return sodium.crypto_scalarmult_base(secret)


def normalise(codename: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", codename).lower().split())


def seal_deterministic(recipient_pk: bytes, message: bytes, ephemeral_sk: bytes) -> bytes:
    """crypto_box_seal with a chosen ephemeral key: epk || box(m, BLAKE2b-192(epk || pk))."""
    epk = public_key(ephemeral_sk)
    nonce = hashlib.blake2b(epk + recipient_pk, digest_size=24).digest()
    return epk + sodium.crypto_box(message, nonce, recipient_pk, ephemeral_sk)


def key_id_vectors() -> list[dict[str, str]]:
    rfc7748_alice = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    rfc7748_bob = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    keys = [bytes.fromhex(rfc7748_alice), bytes.fromhex(rfc7748_bob), public_key(fixed("newsroom secret key"))]
    out = []
    for pk in keys:
        kid = blake2b(pk, b"buzon-key-id-v1", 8)
        assert crypto.key_id(pk) == kid
        out.append({"public_key": pk.hex(), "key_id": kid.hex()})
    return out


CODENAMES: list[tuple[str, list[str]]] = [
    (
        "abacus abdomen abdominal abide abiding ability ablaze",
        [
            "  Abacus ABDOMEN\tabdominal\n abide   abiding ability ablaze ",
            "\uff41\uff42\uff41\uff43\uff55\uff53 abdomen abdominal abide abiding ability ablaze",
        ],
    ),
    (
        "zoology zoom sprout unbent yonder quarrel kettle",
        [
            "ZOOLOGY ZOOM SPROUT UNBENT YONDER QUARREL KETTLE",
            "zoology\u3000zoom\u00a0sprout unbent yonder quarrel kettle",
        ],
    ),
    ("café ﬁnal ①", ["CAFE\u0301 FINAL 1", "caf\u00e9 final 1"]),
]


def source_key_vectors() -> dict[str, Any]:
    pepper = fixed("installation pepper", 16)
    cases = []
    for codename, equivalents in CODENAMES:
        normalised = normalise(codename)
        for other in equivalents:
            assert normalise(other) == normalised, (other, normalised)
        master = argon2id(normalised.encode("utf-8"), pepper)
        lookup = blake2b(master, b"buzon-lookup-v1")
        reply_sk = blake2b(master, b"buzon-reply-v1")
        reply_pk = public_key(reply_sk)
        keys = crypto.derive_source_keys(codename, pepper, crypto.KdfParams(T_COST, M_COST_KIB, PARALLELISM))
        assert keys.lookup_id == lookup
        assert keys.reply.secret == reply_sk
        assert keys.reply.public == reply_pk
        cases.append(
            {
                "codename": codename,
                "equivalent_inputs": equivalents,
                "normalised": normalised,
                "master": master.hex(),
                "lookup_id": lookup.hex(),
                "reply_secret_key": reply_sk.hex(),
                "reply_public_key": reply_pk.hex(),
            }
        )
    return {
        "kdf": {"time_cost": T_COST, "memory_kib": M_COST_KIB, "parallelism": PARALLELISM},
        "pepper": pepper.hex(),
        "cases": cases,
    }


def recovery_vectors() -> list[dict[str, str]]:
    out = []
    for raw in (bytes(range(20)), fixed("recovery secret", 20)):
        text = base64.b32encode(raw).decode("ascii")
        shown = "-".join(text[i : i + 4] for i in range(0, 32, 4))
        rsk = blake2b(raw, b"buzon-recover-v1")
        rpk = public_key(rsk)
        kp = crypto.recovery_keypair(shown)
        assert kp.secret == rsk
        assert kp.public == rpk
        out.append({"recovery_secret": shown, "raw": raw.hex(), "secret_key": rsk.hex(), "public_key": rpk.hex()})
    return out


def wrapped_key_vector() -> dict[str, Any]:
    passphrase = "correct horse battery staple \u2014 Buzo\u0301n"  # NFD; the wrap key uses NFC
    esk = fixed("editor secret key")
    salt = fixed("wrap salt", 16)
    nonce = fixed("wrap nonce", 24)
    wk = argon2id(unicodedata.normalize("NFC", passphrase).encode("utf-8"), salt)
    record = (
        struct.pack(">BIIB", 1, T_COST, M_COST_KIB, PARALLELISM)
        + salt
        + nonce
        + sodium.crypto_secretbox(esk, nonce, wk)
    )
    assert len(record) == 98
    kp = crypto.unwrap_secret_key(record, passphrase)
    assert kp.secret == esk
    assert kp.public == public_key(esk)
    return {
        "passphrase": passphrase,
        "passphrase_nfc": unicodedata.normalize("NFC", passphrase),
        "salt": salt.hex(),
        "nonce": nonce.hex(),
        "wrap_key": wk.hex(),
        "record": record.hex(),
        "secret_key": esk.hex(),
        "public_key": public_key(esk).hex(),
    }


def pull_body(body_key: bytes, body: bytes) -> tuple[bytes, list[int]]:
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, body[1:25], body_key)
    plain, tags = b"", []
    for offset in range(25, len(body), CHUNK + 17):
        chunk, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(state, body[offset : offset + CHUNK + 17], None)
        plain += chunk
        tags.append(tag)
    return plain, tags


def make_body(body_key: bytes, content: bytes, previous: str | None) -> bytes:
    expected = content.ljust(CHUNK, b"\0")
    if previous is not None:
        old = bytes.fromhex(previous)
        try:
            if old[0] == 1 and len(old) == 25 + CHUNK + 17 and pull_body(body_key, old) == (expected, [3]):
                return old
        except Exception:  # anything wrong with the old body: make a new one
            pass
    state = sodium.crypto_secretstream_xchacha20poly1305_state()
    header = sodium.crypto_secretstream_xchacha20poly1305_init_push(state, body_key)
    final = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
    return b"\x01" + header + sodium.crypto_secretstream_xchacha20poly1305_push(state, expected, None, final)


def envelope_vector(previous: dict[str, Any] | None) -> dict[str, Any]:
    nsk = fixed("newsroom secret key")
    npk = public_key(nsk)
    data_key = fixed("envelope data key")
    content = "¡Hola, Buzón! Documento de prueba.\n".encode()
    metadata: dict[str, Any] = {
        "kind": "file",
        "name": "carta-ñandú (borrador) «final».txt",
        "type": "text/plain; charset=utf-8",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "received": "2024-05-01T12:34:56Z",
    }
    capsule = b"\x01" + blake2b(npk, b"buzon-key-id-v1", 8) + seal_deterministic(npk, data_key, fixed("ephemeral"))
    assert sodium.crypto_box_seal_open(capsule[9:], npk, nsk) == data_key
    # Any valid JSON serialisation may be used; this one differs from the code's on purpose.
    document = json.dumps(metadata, sort_keys=True, ensure_ascii=False, separators=(", ", ": ")).encode("utf-8")
    meta_nonce = fixed("metadata nonce", 24)
    meta_key = blake2b(data_key, b"buzon-meta-v1")
    record = b"\x01" + meta_nonce + sodium.crypto_secretbox(document.ljust(1024, b" "), meta_nonce, meta_key)
    body_key = blake2b(data_key, b"buzon-body-v1")
    body = make_body(body_key, content, None if previous is None else previous.get("body"))

    newsroom = crypto.keypair_from_secret(nsk)
    assert crypto.open_capsule(capsule, {crypto.key_id(npk): newsroom}) == data_key
    assert crypto.open_metadata(data_key, record, owner=None) == crypto.EnvelopeMetadata(**metadata)
    assert b"".join(crypto.read_body(data_key, io.BytesIO(body), len(content))) == content
    return {
        "newsroom_secret_key": nsk.hex(),
        "newsroom_public_key": npk.hex(),
        "data_key": data_key.hex(),
        "meta_key": meta_key.hex(),
        "body_key": body_key.hex(),
        "capsule": capsule.hex(),
        "metadata": metadata,
        "metadata_record": record.hex(),
        "content": content.hex(),
        "body": body.hex(),
    }


def metadata_v2_vector() -> dict[str, Any]:
    """A version 0x02 metadata record: the 0x01 members plus ``owner`` (docs/crypto.md)."""
    data_key = fixed("metadata v2 data key")
    owner = fixed("metadata v2 owner", 16).hex()
    metadata: dict[str, Any] = {
        "kind": "message",
        "name": "",
        "type": "text/plain; charset=utf-8",
        "size": 12,
        "sha256": hashlib.sha256(b"hola, buzon\n").hexdigest(),
        "received": "2026-12-04T05:06:07Z",
        "sanitised": "",
        "owner": owner,
    }
    document = json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode("utf-8")
    nonce = fixed("metadata v2 nonce", 24)
    meta_key = blake2b(data_key, b"buzon-meta-v1")
    record = b"\x02" + nonce + sodium.crypto_secretbox(document.ljust(1024, b" "), nonce, meta_key)
    opened = crypto.open_metadata(data_key, record, owner=owner, kind="message")
    assert opened == crypto.EnvelopeMetadata(**metadata)
    return {"data_key": data_key.hex(), "owner": owner, "metadata": metadata, "metadata_record": record.hex()}


def main() -> None:
    previous: dict[str, Any] | None = None
    if OUTPUT.exists():
        previous = json.loads(OUTPUT.read_text(encoding="utf-8")).get("envelope")
    vectors = {
        "comment": "Generated by tests/crypto/make_vectors.py from docs/crypto.md; do not edit by hand.",
        "key_id": key_id_vectors(),
        "source_keys": source_key_vectors(),
        "recovery": recovery_vectors(),
        "wrapped_key": wrapped_key_vector(),
        "envelope": envelope_vector(previous),
        "metadata_v2": metadata_v2_vector(),
    }
    OUTPUT.write_text(json.dumps(vectors, indent=2, ensure_ascii=True) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
