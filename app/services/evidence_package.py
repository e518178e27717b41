"""Writing a source's evidence package (docs/evidence.md, "Packages") from a key holder's session.

Everything a verifier needs and nothing else: each item's stored copy and
receipt, its custody entries, proofs into the anchors that hold them, those
anchors' statements, replies and signatures (not their other leaves), and the
editor key statements, signed here with the instance key.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto, errors
from app.clock import utc_today
from app.db.models import AnchorRow, Instance, Item, SigningKeyRecord, Submission
from app.evidence import acta, package, timestamps
from app.evidence.anchors import Anchor
from app.evidence.canonical import canonical, parse_canonical
from app.evidence.custody import Entry
from app.evidence.identity import fingerprint
from app.evidence.package import Proof
from app.evidence.receipts import Receipt
from app.services import anchors, custody, keys, submissions
from app.storage import BlobStore


class NothingToPackage(errors.NotFound):
    """The source has no item with a receipt."""


@dataclass(frozen=True)
class _Anchors:
    by_name: dict[str, Anchor]

    def proof(self, leaf: bytes) -> Proof:
        for name, anchor in self.by_name.items():
            found = anchor.proof(leaf)
            if found is not None:
                index, path = found
                return Proof(anchor=name, index=index, size=len(anchor.leaves), path=tuple(path))
        return Proof(anchor="")


def _name(anchor: Anchor) -> str:
    return f"{anchor.day.isoformat()}-{anchor.fields['root'][:12]}"


def write_package(
    *, session: Session, store: BlobStore, source_id: str, newsroom_keys: crypto.NewsroomKeys, out: BinaryIO,
    tsa_ca: bytes | None = None,
) -> int:  # fmt: skip
    """Stream the package as an uncompressed tar to ``out``; return how many items it holds.

    Nothing is written anywhere else: the caller chooses where the plaintext goes.
    """
    instance_row = session.get(Instance, 1)
    if instance_row is None or instance_row.signing_public_key is None:
        raise errors.NotInitialised()
    instance_key = keys.open_instance_key(session=session, newsroom_keys=newsroom_keys)
    instance = fingerprint(instance_key.public)
    all_anchors = _Anchors(
        {_name(a): a for a in (anchors.open_anchor(row, newsroom_keys) for row in session.scalars(select(AnchorRow)))}
    )
    chain = [e for e in custody.open_chain(session, newsroom_keys) if e is not None]
    items = list(
        session.scalars(
            select(Item)
            .join(Submission)
            .where(Submission.source_id == source_id)
            .order_by(Submission.created_on, Item.position)
        )
    )
    listed: list[dict[str, object]] = []
    acta_items: list[acta.ActaItem] = []
    used: set[str] = set()
    with _package_tar(out) as tar:
        for item in items:
            receipt = submissions.open_receipt(item, newsroom_keys)
            if receipt is None:
                continue  # received before receipts: nothing a verifier could check
            n = len(listed)
            metadata, chunks = submissions.open_item_stream(
                session=session, store=store, item_id=item.id, newsroom_keys=newsroom_keys
            )
            tar.add_stream(f"items/{n}/content", metadata.size, chunks)
            tar.add(f"items/{n}/receipt.json", receipt.document())
            commitment = receipt.commitment()
            proof = all_anchors.proof(commitment)
            entries = sorted((e for e in chain if e.item == commitment.hex()), key=lambda e: e.seq)
            proofs = [all_anchors.proof(e.commitment()) for e in entries]
            listings = [
                {"entry": parse_canonical(e.document()), "proof": p.document()}
                for e, p in zip(entries, proofs, strict=True)
            ]
            used |= {proof.anchor} | {p.anchor for p in proofs}
            tar.add(f"items/{n}/custody.json", canonical({"entries": listings}))
            acta_items.append(_acta_item(n, receipt, proof, entries, all_anchors))
            listed.append({"n": n, "name": metadata.name or "message.txt", "type": metadata.type,
                           "commitment": commitment.hex(), "proof": proof.document()})  # fmt: skip
        if not listed:
            raise NothingToPackage()
        names = sorted(name for name in used if name)
        documents: dict[str, bytes] = {}
        for name in names:
            anchor = all_anchors.by_name[name]
            tar.add(f"anchors/{name}.json", _anchor_document(anchor))
            # The statement and the reply as files of their own, for `openssl ts -verify -data … -in …`.
            documents[f"anchors/{name}.statement"] = anchor.statement
            documents[f"anchors/{name}.tsr"] = anchor.reply
        made = utc_today()
        for language in acta.LANGUAGES:
            documents[f"acta-{language}.pdf"] = acta.acta_pdf(language, instance=instance, made=made, items=acta_items)
            documents[f"VERIFY-{language}.txt"] = acta.guide(language)
        for name, data in documents.items():
            tar.add(name, data)
        if tsa_ca:
            tar.add("tsa/ca.pem", tsa_ca)
        document = {
            "package": package.PACKAGE_FORMAT,
            "instance": {"fingerprint": instance, "public_key": _b64(instance_key.public)},
            "made": made.isoformat(),
            "documents": {name: hashlib.sha256(data).hexdigest() for name, data in documents.items()},
            "items": listed,
            "anchors": names,
            "editor_keys": _key_statements(session, instance, instance_key),
        }
        tar.add(package.PACKAGE_FILE, canonical(document))
    return len(listed)


@contextlib.contextmanager
def _package_tar(out: BinaryIO) -> Iterator[_PackageTar]:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        yield _PackageTar(tar)


class _PackageTar:
    """A pax tar written in one pass; headers say nothing of the server or the time (as bundles)."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self._tar = tar

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = size, 0o600, 0, 0, 0, "", ""
        return info

    def add(self, name: str, data: bytes) -> None:
        self._tar.addfile(self._info(name, len(data)), io.BytesIO(data))

    def add_stream(self, name: str, size: int, chunks: Iterator[bytes]) -> None:
        self._tar.addfile(self._info(name, size), _ChunkReader(chunks))


class _ChunkReader(io.RawIOBase):
    """A file-like view of decrypted chunks, so tarfile copies them without holding the whole file."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        taken = self._pending[: len(buffer)]
        buffer[: len(taken)] = taken
        self._pending = self._pending[len(taken) :]
        return len(taken)


def _acta_item(n: int, receipt: Receipt, proof: Proof, entries: list[Entry], all_anchors: _Anchors) -> acta.ActaItem:
    anchor = all_anchors.by_name.get(proof.anchor)
    if anchor is None:
        return acta.item_for(n, receipt, "", None, entries)
    return acta.item_for(n, receipt, anchor.day.isoformat(), timestamps.stamp_time(anchor.reply), entries)


def _anchor_document(anchor: Anchor) -> bytes:
    return canonical(
        {
            "statement": anchor.fields,
            "reply": _b64(anchor.reply),
            "signature": _b64(anchor.signature),
            "head": {"head": anchor.head.link, "seq": anchor.head.seq},
        }
    )


def _key_statements(session: Session, instance: str, instance_key: crypto.SigningKey) -> list[dict[str, object]]:
    revoked = custody.revocation_days(session)
    statements: list[dict[str, object]] = []
    for record in session.scalars(select(SigningKeyRecord).order_by(SigningKeyRecord.username)):
        statement = package.key_statement(
            instance=instance, editor=record.username, key=bytes.fromhex(record.public_key),
            until=revoked.get(record.public_key, ""),
        )  # fmt: skip
        signature = crypto.sign(instance_key, package.SIGN_KEY, statement)
        statements.append({"statement": parse_canonical(statement), "signature": _b64(signature)})
    return statements


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
