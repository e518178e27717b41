"""Deleting items, notes, replies and whole sources, leaving no ciphertext behind.

Rows go first and are committed, then the bodies: a crash in between leaves
an orphan body no row points to, never a row whose body is gone. On SQLite
every connection runs with ``secure_delete`` (app/db/session.py), which
overwrites freed cells, and each deletion ends with a truncating WAL
checkpoint so old page images do not linger in the ``-wal`` file.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from app import errors
from app.db.models import Item, Note, Reply, Source, SourceTag, Submission
from app.services import audit, triage
from app.storage import BlobStore


class NothingToDelete(errors.NotFound):
    """No such item, note or reply (of this source)."""


# A truncating checkpoint waits for readers itself (up to the busy timeout, 10 s)
# and is then tried again, for at most this long in all; the hourly store sweep
# tries again after that (app/services/housekeeping.py).
SCRUB_DEADLINE_SECONDS = 60.0
_SCRUB_PAUSE_SECONDS = 0.2


def scrub_database(session: Session, *, deadline_seconds: float = SCRUB_DEADLINE_SECONDS) -> bool:
    """Fold the WAL into the database file and truncate it (SQLite only); False if readers kept it.

    Until the WAL is truncated it may still hold the page images of rows just
    erased, so a checkpoint that reports "busy" (another connection still
    reads an older snapshot) is not the end of it: it is tried again.
    """
    bind = session.get_bind()
    if bind.dialect.name != "sqlite" or not isinstance(bind, Engine):
        return True
    deadline = time.monotonic() + deadline_seconds
    # Its own connection outside any transaction: a checkpoint cannot finish
    # while the connection running it holds a read snapshot.
    with bind.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        while True:
            busy = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").scalar()
            if not busy:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_SCRUB_PAUSE_SECONDS)


def _finish(session: Session, store: BlobStore | None = None, blob_names: list[str] | None = None) -> None:
    session.commit()
    scrub_database(session)
    for name in blob_names or ():
        assert store is not None
        store.delete(name)


def delete_item(*, session: Session, store: BlobStore, item_id: str, actor: str) -> str:
    """Delete one message or file; return its source's id."""
    item = session.get(Item, item_id)
    if item is None:
        raise NothingToDelete()
    submission = item.submission
    source = submission.source
    blob_name, kind = item.blob_name, item.kind
    session.delete(item)
    session.flush()
    if not session.scalars(select(Item.id).where(Item.submission_id == submission.id)).first():
        session.delete(submission)
    audit.record(session, actor=actor, action=f"{kind} delete", target=source.designation)
    _finish(session, store, [blob_name])
    return source.id


def delete_note(*, session: Session, source_id: str, note_id: str, actor: str) -> None:
    note = session.get(Note, note_id)
    source = session.get(Source, source_id)
    if note is None or source is None or note.source_id != source_id:
        raise NothingToDelete()
    session.delete(note)
    audit.record(session, actor=actor, action="note delete", target=source.designation)
    _finish(session)


def delete_reply(*, session: Session, store: BlobStore, source_id: str, reply_id: str, actor: str) -> None:
    """Delete a reply entirely: both capsules, the metadata record and the body."""
    reply = session.get(Reply, reply_id)
    source = session.get(Source, source_id)
    if reply is None or source is None or reply.source_id != source_id:
        raise NothingToDelete()
    blob_name = reply.blob_name
    session.delete(reply)
    audit.record(session, actor=actor, action="reply delete", target=source.designation)
    _finish(session, store, [blob_name])


def delete_sources(*, session: Session, store: BlobStore, source_ids: list[str], actor: str) -> int:
    """Delete sources with everything they own, in one transaction; return how many."""
    sources = list(session.scalars(select(Source).where(Source.id.in_(source_ids))))
    if not sources:
        return 0
    ids = [source.id for source in sources]
    designations = [source.designation for source in sources]
    submission_ids = select(Submission.id).where(Submission.source_id.in_(ids))
    blob_names = list(session.scalars(select(Item.blob_name).where(Item.submission_id.in_(submission_ids))))
    blob_names += session.scalars(select(Reply.blob_name).where(Reply.source_id.in_(ids)))
    # Explicit deletes rather than relying on ON DELETE CASCADE, so nothing
    # depends on the foreign_keys pragma being on.
    session.execute(delete(Item).where(Item.submission_id.in_(submission_ids)))
    session.execute(delete(Submission).where(Submission.source_id.in_(ids)))
    session.execute(delete(Reply).where(Reply.source_id.in_(ids)))
    session.execute(delete(Note).where(Note.source_id.in_(ids)))
    session.execute(delete(SourceTag).where(SourceTag.source_id.in_(ids)))
    session.execute(delete(Source).where(Source.id.in_(ids)))
    triage.delete_unused_tags(session)
    for name in designations:
        audit.record(session, actor=actor, action="source delete", target=name)
    _finish(session, store, blob_names)
    return len(ids)
