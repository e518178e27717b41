"""Recording sealed submissions, and reading them back for an editor."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import crypto, errors
from app.clock import utc_today
from app.codenames import generate_codename, generate_designation
from app.db.models import EvidenceLeaf, Item, Source, Submission
from app.envelopes import read_body
from app.evidence import receipts
from app.evidence.receipts import Receipt
from app.intake.ingest import SealedItem
from app.services import custody
from app.storage import BlobStore

# Random draws before a crowded desk falls back to numbering (70 x 58 pairs collide
# by chance after about 75 sources, and run out after 4,060).
_DESIGNATION_DRAWS = 20


def unused_designation(session: Session) -> str:
    """A designation no source has: editors, exports and the audit log tell sources apart by it."""

    def taken(candidate: str) -> bool:
        return session.scalars(select(Source.id).where(Source.designation == candidate)).first() is not None

    for _ in range(_DESIGNATION_DRAWS):
        candidate = generate_designation()
        if not taken(candidate):
            return candidate
    base, number = generate_designation(), 2
    while taken(f"{base} {number}"):
        number += 1
    return f"{base} {number}"


def record_new_source_submission(
    *, session: Session, items: list[SealedItem], pepper: bytes, kdf: crypto.KdfParams, language: str = "en"
) -> str:
    """Store ``items`` under a brand-new source and return its codename.

    The bodies are moved into place before the rows commit; if anything fails
    the caller aborts the ingest, which deletes them again.
    """
    codename = generate_codename(language)
    keys = crypto.derive_source_keys(codename, pepper, kdf)
    today = utc_today()
    source = Source(
        id=secrets.token_hex(16),
        lookup_id=keys.lookup_id,
        reply_public_key=keys.reply.public,
        designation=unused_designation(session),
        created_on=today,
        last_submission_on=today,
        unread=len(items),
    )
    session.add(source)
    _add_submission(session=session, source=source, items=items, today=today)
    _commit_with_bodies(session, items)
    return codename


class SourceGone(errors.NotFound):
    """The source was deleted while they were logged in."""


def record_follow_up(*, session: Session, items: list[SealedItem], source_id: str) -> None:
    """Store ``items`` as a new submission of a logged-in source."""
    # The custody head first, as every writer takes it: an approved deletion holds it and then
    # wants this source's row, so taking the row first could deadlock on PostgreSQL.
    custody.lock_head(session)
    source = session.get(Source, source_id)
    if source is None:
        raise SourceGone()
    today = utc_today()
    source.last_submission_on = today
    # Incremented in SQL, so two follow-ups arriving together both count.
    source.unread = Source.unread + len(items)
    if source.hidden:
        # An editor hid this source as abusive: what they send goes to spam.
        source.status = "spam"
    _add_submission(session=session, source=source, items=items, today=today)
    _commit_with_bodies(session, items)


def _commit_with_bodies(session: Session, items: list[SealedItem]) -> None:
    # Bodies get their names before the rows commit, and stay locked until
    # then, so a crash in between leaves only bodies the store sweep removes.
    for item in items:
        item.blob.commit()
    session.commit()
    for item in items:
        item.blob.release()


def _add_submission(*, session: Session, source: Source, items: list[SealedItem], today: dt.date) -> None:
    (submission_id,) = {sealed.submission_id for sealed in items}  # one ingest, one submission
    submission = Submission(id=submission_id, source=source, created_on=today)
    received = []
    for position, sealed in enumerate(items):
        item = Item(
            id=secrets.token_hex(16),
            position=position,
            kind=sealed.kind,
            capsule=sealed.capsule,
            sealed_metadata=sealed.sealed_metadata,
            blob_name=sealed.blob_name,
            body_size=sealed.body_size,
            sealed_receipt=sealed.sealed_receipt,
            commitment=sealed.commitment,
        )
        submission.items.append(item)
        received.append((item, sealed.commitment))
        # Committed with the item: the day's anchor will cover its receipt (docs/evidence.md).
        session.add(EvidenceLeaf(commitment=sealed.commitment, day=today))
    session.add(submission)
    custody.record_received(session, received)


# --- reading, for editors -----------------------------------------------------------

MAX_INLINE_MESSAGE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class OpenedItem:
    id: str
    kind: str
    metadata: crypto.EnvelopeMetadata
    text: str | None
    # The intake receipt (docs/evidence.md), None for items from before receipts, and where its
    # commitment is: "waiting" for its day's anchor, or "anchored" (in the anchor of the
    # submission's day, the day its leaf was recorded with).
    receipt: Receipt | None = None
    stamp: str = ""


@dataclass(frozen=True)
class UnreadableItem:
    """An item whose envelope does not open: not with these keys, or changed since it arrived."""

    id: str
    kind: str


@dataclass(frozen=True)
class OpenedSubmission:
    created_on: dt.date
    items: list[OpenedItem]
    # Shown apart, so that one damaged envelope hides nothing else of the conversation.
    unreadable: list[UnreadableItem] = field(default_factory=list)


class ItemNotFound(errors.NotFound):
    """No such item, or one whose envelope does not open with the editor's keys (or was tampered with)."""


def open_source_submissions(
    *, session: Session, store: BlobStore, source: Source, newsroom_keys: crypto.NewsroomKeys
) -> list[OpenedSubmission]:
    """Decrypt metadata of every item, and the text of messages, in memory.

    An item that does not open (a key this session lacks, a row or body changed
    since it arrived) is listed as unreadable, and the rest still show.
    """
    submissions = session.scalars(
        select(Submission).where(Submission.source_id == source.id).order_by(Submission.created_on)
    )
    opened = []
    for submission in submissions:
        items, unreadable = [], []
        for item in submission.items:
            try:
                items.append(_open_item(item, store, newsroom_keys))
            except (crypto.DecryptionError, FileNotFoundError):
                unreadable.append(UnreadableItem(id=item.id, kind=item.kind))
        items = _with_stamps(session, items)
        items.sort(key=lambda i: (i.kind != "message", i.metadata.received))
        unreadable.sort(key=lambda i: (i.kind != "message", i.id))
        opened.append(OpenedSubmission(created_on=submission.created_on, items=items, unreadable=unreadable))
    # The day stands in for a submission none of whose items opened ("2026-12-04" < "2026-12-04T…").
    opened.sort(key=lambda s: min((i.metadata.received for i in s.items), default=s.created_on.isoformat()))
    return opened


def _open_envelope(item: Item, newsroom_keys: crypto.NewsroomKeys) -> tuple[bytes, crypto.EnvelopeMetadata]:
    """The data key and metadata, checked against the row as the offline reader checks the bundle.

    The row's clear ``kind``, ``body_size`` and submission must say what the
    sealed metadata says: a message relabelled as a file, a size that is not the
    Padmé size of the content, or an envelope moved to another submission, is a
    tampered row (DecryptionError).
    """
    data_key = crypto.open_capsule(item.capsule, newsroom_keys)
    metadata = crypto.open_metadata(data_key, item.sealed_metadata, owner=item.submission_id, kind=item.kind)
    if item.body_size != crypto.body_size(metadata.size):
        raise crypto.DecryptionError()
    return data_key, metadata


def _open_item(item: Item, store: BlobStore, newsroom_keys: crypto.NewsroomKeys) -> OpenedItem:
    data_key, metadata = _open_envelope(item, newsroom_keys)
    text = None
    if item.kind == "message" and metadata.size <= MAX_INLINE_MESSAGE_BYTES:
        text = read_body(store, item.blob_name, data_key, metadata.size).decode("utf-8", errors="replace")
    receipt = None
    if item.sealed_receipt is not None:
        receipt = receipts.open_receipt(data_key, item.sealed_receipt)
        if not receipts.check_against_envelope(receipt, metadata, item.sealed_metadata):
            raise crypto.DecryptionError()
    return OpenedItem(id=item.id, kind=item.kind, metadata=metadata, text=text, receipt=receipt)


def _with_stamps(session: Session, items: list[OpenedItem]) -> list[OpenedItem]:
    """Mark each receipt waiting or anchored: a commitment leaves the pending table only when anchored."""
    commitments = {i.id: i.receipt.commitment() for i in items if i.receipt is not None}
    waiting = (
        set(
            session.scalars(
                select(EvidenceLeaf.commitment).where(EvidenceLeaf.commitment.in_(list(commitments.values())))
            )
        )
        if commitments
        else set()
    )
    return [
        dataclasses.replace(i, stamp="waiting" if commitments[i.id] in waiting else "anchored")
        if i.id in commitments
        else i
        for i in items
    ]


def open_receipt(item: Item, newsroom_keys: crypto.NewsroomKeys) -> Receipt | None:
    """The item's intake receipt, checked against its envelope; None for an item from before receipts.

    A receipt that does not open, or that describes another envelope, is a
    DecryptionError: a damaged or moved receipt must not pass as a missing one.
    """
    if item.sealed_receipt is None:
        return None
    data_key, metadata = _open_envelope(item, newsroom_keys)
    receipt = receipts.open_receipt(data_key, item.sealed_receipt)
    if not receipts.check_against_envelope(receipt, metadata, item.sealed_metadata):
        raise crypto.DecryptionError()
    return receipt


def open_item_stream(
    *, session: Session, store: BlobStore, item_id: str, newsroom_keys: crypto.NewsroomKeys
) -> tuple[crypto.EnvelopeMetadata, Iterator[bytes]]:
    """Return an item's metadata and an iterator that decrypts its body lazily."""
    item = session.get(Item, item_id)
    if item is None:
        raise ItemNotFound()
    try:
        data_key, metadata = _open_envelope(item, newsroom_keys)
    except crypto.DecryptionError as e:
        raise ItemNotFound() from e
    blob_name = item.blob_name

    def chunks() -> Iterator[bytes]:
        with store.open(blob_name) as body:
            try:
                yield from crypto.read_body(data_key, body, metadata.size)
            except crypto.DecryptionError as e:
                raise ItemNotFound() from e

    return metadata, chunks()
