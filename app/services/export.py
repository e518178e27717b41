"""Exporting a source as a bundle, and an editor's key file (docs/export.md): the server's side.

A bundle carries a source's envelopes exactly as stored, so exporting never
decrypts anything. Opening it needs no database and no data directory: the
manifest holds every capsule, metadata record and grant the reader
(app/ops/offline.py) needs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto, errors
from app.db.models import Editor, NewsroomKey, Reply, Source, Submission
from app.formats.bundle import (
    BUNDLE_MANIFEST,
    BundleError,
    BundleManifest,
    EditorKeyFile,
    ManifestEntry,
    ManifestKey,
    bundle_manifest_json,
    key_file_json,
    member_name,
    pad_size,
    tar_header,
    tar_trailer,
)
from app.services import audit
from app.storage import BlobStore

_COPY_SIZE = 64 * 1024


class ExportNotFound(errors.NotFound):
    """No such source or editor."""


class KeyNotGranted(errors.NotFound):
    """The editor holds no grant for a newsroom key that the source's envelopes need."""


@dataclass(frozen=True)
class _Body:
    member: str
    blob_name: str
    size: int


@dataclass(frozen=True)
class BundlePlan:
    """Everything an export needs from the database, read before the first byte is sent."""

    designation: str
    manifest: bytes
    bodies: tuple[_Body, ...]

    @property
    def filename(self) -> str:
        return f"buzon-{re.sub(r'[^a-z0-9]+', '-', self.designation.lower()).strip('-') or 'source'}.tar"

    @property
    def size(self) -> int:
        return self.members_size + len(tar_trailer(self.members_size))

    @property
    def members_size(self) -> int:
        members = [(BUNDLE_MANIFEST, len(self.manifest))] + [(b.member, b.size) for b in self.bodies]
        return sum(len(tar_header(name, size)) + size + pad_size(size) for name, size in members)


def plan_bundle(*, session: Session, store: BlobStore, source_id: str, editor_id: str) -> BundlePlan:
    """Gather a source's envelopes, and the editor's grants that open them, into a manifest.

    Reads everything from the database up front, so the body can stream after
    the session has closed, and records the export in the audit log.
    """
    source = session.get(Source, source_id)
    editor = session.get(Editor, editor_id)
    if source is None or editor is None:
        raise ExportNotFound()
    rows = _stored_envelopes(session, source)
    try:
        needed = {crypto.capsule_key_id(row.capsule).hex() for row in rows}
    except crypto.DecryptionError as e:
        raise BundleError("A stored capsule is malformed.") from e
    grants = {grant.key_id: grant.sealed_secret_key for grant in editor.grants}
    if not needed <= grants.keys():
        raise KeyNotGranted()
    newsroom = session.scalars(select(NewsroomKey).where(NewsroomKey.key_id.in_(needed)).order_by(NewsroomKey.key_id))
    keys = tuple(
        ManifestKey(bytes.fromhex(k.key_id), k.public_key, k.recovery_grant, grants[k.key_id]) for k in newsroom
    )
    entries, bodies = [], []
    for index, row in enumerate(rows):
        if store.size(row.blob_name) != row.body_size:
            raise BundleError("A stored body does not have its recorded size.")
        member = member_name(index)
        entries.append(
            ManifestEntry(row.kind, row.submission, row.position, row.body_size, member, row.capsule, row.sealed)
        )
        bodies.append(_Body(member, row.blob_name, row.body_size))
    plan = BundlePlan(
        source.designation,
        bundle_manifest_json(BundleManifest(source.designation, editor.public_key, keys, tuple(entries))),
        tuple(bodies),
    )
    # Recorded when the export starts: a download cut short has still handed out ciphertext.
    audit.record(session, actor=editor.username, action="source export", target=source.designation)
    session.commit()
    return plan


class _Stored(NamedTuple):
    kind: str
    submission: int | None
    position: int
    capsule: bytes
    sealed: bytes
    blob_name: str
    body_size: int


def _stored_envelopes(session: Session, source: Source) -> list[_Stored]:
    rows: list[_Stored] = []
    submissions = session.scalars(
        select(Submission).where(Submission.source_id == source.id).order_by(Submission.created_on, Submission.id)
    )
    for number, submission in enumerate(submissions):
        for item in submission.items:
            rows.append(
                _Stored(
                    item.kind, number, item.position, item.capsule, item.sealed_metadata, item.blob_name, item.body_size
                )
            )
    replies = session.scalars(select(Reply).where(Reply.source_id == source.id).order_by(Reply.created_on, Reply.id))
    for position, reply in enumerate(replies):
        # Only the newsroom capsule: the source capsule is of no use to a reader of the bundle.
        rows.append(
            _Stored(
                "reply", None, position, reply.newsroom_capsule, reply.sealed_metadata, reply.blob_name, reply.body_size
            )
        )
    return rows


def bundle_chunks(store: BlobStore, plan: BundlePlan) -> Iterator[bytes]:
    """Yield the bundle as an uncompressed tar stream, holding at most one 64 KiB chunk.

    Tar headers come from ``TarInfo.tobuf`` and are written by hand rather
    than through ``tarfile``'s writer, so a web response can pull the stream
    chunk by chunk without a thread, a pipe or a temporary file.
    """
    yield tar_header(BUNDLE_MANIFEST, len(plan.manifest))
    yield plan.manifest
    yield bytes(pad_size(len(plan.manifest)))
    for body in plan.bodies:
        yield tar_header(body.member, body.size)
        yield from _stored_chunks(store, body)
        yield bytes(pad_size(body.size))
    yield tar_trailer(plan.members_size)


def _stored_chunks(store: BlobStore, body: _Body) -> Iterator[bytes]:
    with store.open(body.blob_name) as blob:
        remaining = body.size
        while remaining:
            chunk = blob.read(min(_COPY_SIZE, remaining))
            if not chunk:
                raise BundleError("A stored body shrank during the export.")
            remaining -= len(chunk)
            yield chunk


def write_bundle(*, session: Session, store: BlobStore, source_id: str, editor_id: str, sink: BinaryIO) -> None:
    """Write a source's bundle to ``sink`` (see ``plan_bundle`` for the errors)."""
    plan = plan_bundle(session=session, store=store, source_id=source_id, editor_id=editor_id)
    for chunk in bundle_chunks(store, plan):
        sink.write(chunk)


def editor_key_file(*, session: Session, editor_id: str) -> bytes:
    """The editor's wrapped secret key as a key file (audited); opening it needs their passphrase."""
    editor = session.get(Editor, editor_id)
    if editor is None:
        raise ExportNotFound()
    key_file = EditorKeyFile(editor.username, editor.public_key, editor.wrapped_secret_key)
    audit.record(session, actor=editor.username, action="key file export")
    session.commit()
    return key_file_json(key_file)
