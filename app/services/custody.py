"""The custody log (docs/evidence.md, "Custody"): appending entries, and reading the chain back.

Intake appends a ``received`` entry per item, unsigned (the server holds no
signing key); every later handling is signed by the acting editor's own key.
Entries are sealed to the newsroom key; the chain's order exists only inside
them, and the clear head row says only where the newest one ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import crypto, errors
from app.clock import sealed_receipt_time, utc_today
from app.db.models import (
    AuditEntry,
    CustodyEntry,
    CustodyHead,
    Editor,
    EvidenceLeaf,
    Instance,
    Item,
    SigningKeyRecord,
    Submission,
)
from app.evidence import custody
from app.evidence.custody import Entry
from app.evidence.identity import fingerprint
from app.services import keys, submissions

Signer = tuple[str, crypto.SigningKey]  # (username, signing key)


def append(
    session: Session, *, item: bytes, item_prev: str, action: str, detail: str = "", signer: Signer | None = None
) -> Entry:
    """Add one entry to the chain in the caller's transaction; the caller commits.

    The head row is written first, which takes the write lock on SQLite and the
    row lock on PostgreSQL, so two appends can never extend the same entry.
    """
    head = lock_head(session)
    instance = session.get(Instance, 1)
    if instance is None or instance.signing_public_key is None:
        raise errors.NotInitialised()
    entry = custody.new_entry(
        instance=fingerprint(instance.signing_public_key),
        seq=head.entries,
        prev=head.link,
        item=item,
        item_prev=item_prev,
        action=action,
        detail=detail,
        time=sealed_receipt_time(),
        signer=signer,
    )
    today = utc_today()
    sealed = crypto.seal_evidence(keys.active_public_key(session), entry.document())
    session.add(CustodyEntry(day=today, sealed_entry=sealed))
    session.add(EvidenceLeaf(commitment=entry.commitment(), day=today))
    head.link, head.entries = entry.link(), head.entries + 1
    return entry


def lock_head(session: Session) -> CustodyHead:
    """The head row, written first so that this transaction holds it; made at the first entry.

    Not made by the migration: a restore copies rows into an empty schema, head included.
    """
    lock = update(CustodyHead).where(CustodyHead.id == 1).values(entries=CustodyHead.entries)
    if getattr(session.execute(lock), "rowcount", 0) == 0:
        with contextlib.suppress(IntegrityError), session.begin_nested():
            session.add(CustodyHead(id=1, link="", entries=0))  # another writer may make it first
        session.execute(lock)
    return session.get_one(CustodyHead, 1, populate_existing=True)


def record_received(session: Session, items: Iterable[tuple[Item, bytes]]) -> None:
    """At intake: a ``received`` entry for each new item, given with its receipt's commitment."""
    for item, commitment in items:
        item.custody_link = append(session, item=commitment, item_prev="", action=custody.RECEIVED).link()


def record_retention(session: Session, source_ids: Iterable[str]) -> None:
    """Unsigned tombstones for the items retention is about to delete; the caller commits.

    Retention runs without any key, so it names each item by the commitment kept beside it;
    the day's signed anchor covers these entries as it covers intake's.
    """
    query = select(Item).join(Submission).where(Submission.source_id.in_(list(source_ids)))
    for item in session.scalars(query):
        if item.commitment is not None:
            append(
                session,
                item=item.commitment,
                item_prev=item.custody_link or "",
                action=custody.DELETED,
                detail=custody.RETENTION,
            )


class Handling(Protocol):
    """Who is handling items, and with what: an editor's unlocked session."""

    @property
    def username(self) -> str: ...
    @property
    def signing_key(self) -> crypto.SigningKey: ...
    @property
    def newsroom_keys(self) -> crypto.NewsroomKeys: ...


def record(
    session: Session, handling: Handling, items: Iterable[Item], action: str, detail: str = "", *, commit: bool = True
) -> None:
    """One signed entry per item that has a receipt, then commit. Items from before receipts get none."""
    for item in items:
        commitment = _commitment(item, handling.newsroom_keys)
        if commitment is None:
            continue
        signer = (handling.username, handling.signing_key)
        entry = append(
            session, item=commitment, item_prev=item.custody_link or "", action=action, detail=detail, signer=signer
        )
        item.custody_link = entry.link()
    if commit:
        session.commit()


def record_for_source(
    session: Session, handling: Handling, source_id: str, action: str, detail: str = "", *, commit: bool = True
) -> None:
    """A source-level action (status, tag, note, deletion), on the record of each of the source's items."""
    items = session.scalars(select(Item).join(Submission).where(Submission.source_id == source_id))
    record(session, handling, list(items), action, detail, commit=commit)


def _commitment(item: Item, newsroom_keys: crypto.NewsroomKeys) -> bytes | None:
    try:
        receipt = submissions.open_receipt(item, newsroom_keys)
    except crypto.DecryptionError:
        return None  # an item this session cannot open, or a damaged one: nothing to name it by
    return None if receipt is None else receipt.commitment()


def open_chain(session: Session, newsroom_keys: crypto.NewsroomKeys) -> list[Entry | None]:
    """Every entry the database holds, opened, in no particular order; None for one that does not open."""
    opened: list[Entry | None] = []
    for row in session.scalars(select(CustodyEntry)):
        try:
            opened.append(custody.parse_entry(crypto.open_evidence(row.sealed_entry, newsroom_keys)))
        except (crypto.DecryptionError, custody.BadEntry):
            opened.append(None)
    return opened


def revocation_days(session: Session) -> dict[str, str]:
    """Each revoked editor's signing key, with the day the audit log records the revocation."""
    found: dict[str, str] = {}
    revoked = select(AuditEntry.target, func.max(AuditEntry.day)).where(AuditEntry.action == "revoked access")
    days = {target: day for target, day in session.execute(revoked.group_by(AuditEntry.target))}
    for editor in session.scalars(select(Editor).where(Editor.signing_public_key.is_not(None))):
        day = days.get(editor.username)
        if editor.disabled and day is not None and editor.signing_public_key is not None:
            found[editor.signing_public_key.hex()] = day.isoformat()
    return found


def verify_chain(session: Session, newsroom_keys: crypto.NewsroomKeys) -> custody.ChainCheck:
    """The whole chain, checked against its head, the editors' keys and their revocations."""
    head = session.get(CustodyHead, 1) or CustodyHead(id=1, link="", entries=0)
    editor_keys = {k.public_key: k.username for k in session.scalars(select(SigningKeyRecord))}
    return custody.check_chain(
        open_chain(session, newsroom_keys),
        head_link=head.link,
        head_entries=head.entries,
        editor_keys=editor_keys,
        revoked=revocation_days(session),
    )
