"""The deletion rules, called directly: exactly the named rows and bodies go, and the log says who did it."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.models import AuditEntry, Item, Note, Reply, Source, SourceTag, Submission, Tag
from app.services import deletion, keys, replies, triage
from app.services.deletion import NothingToDelete
from app.storage import BlobStore
from tests.support import Instance, stored_files
from tests.support.inprocess import MadeSource, SourceFactory

ACTOR = "ana"


def _stored(instance: Instance) -> set[str]:
    return {path.name for path in stored_files(instance.settings)}


def _blobs_of(db: Session, source_id: str) -> set[str]:
    items = select(Item.blob_name).join(Submission).where(Submission.source_id == source_id)
    return set(db.scalars(items)) | set(db.scalars(select(Reply.blob_name).where(Reply.source_id == source_id)))


def _items(db: Session, source_id: str) -> list[Item]:
    query = select(Item).join(Submission).where(Submission.source_id == source_id).order_by(Item.position)
    return list(db.scalars(query))


def _count(db: Session, model: type[object]) -> int:
    return db.scalar(select(func.count()).select_from(model)) or 0


def _audit(db: Session) -> list[tuple[str, str, str]]:
    # Sorted: entries keep no order within a day (random ids), so tests compare them as a multiset.
    entries = db.scalars(select(AuditEntry).where(AuditEntry.actor == ACTOR))
    return sorted((e.actor, e.action, e.target) for e in entries)


def _reply(db: Session, store: BlobStore, made: MadeSource, text: str = "thank you") -> Reply:
    before = set(db.scalars(select(Reply.id)))
    public_key = keys.active_public_key(db)
    replies.send_reply(session=db, store=store, source=made.source, text=text, newsroom_public_key=public_key)
    (reply,) = db.scalars(select(Reply).where(Reply.id.not_in(before)))
    return reply


def _note(db: Session, made: MadeSource) -> Note:
    public_key = keys.active_public_key(db)
    triage.add_note(session=db, source=made.source, text="call back", author=ACTOR, newsroom_public_key=public_key)
    (note,) = db.scalars(select(Note).where(Note.source_id == made.id))
    return note


def test_deleting_a_file_takes_its_row_and_body_and_keeps_the_rest(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    made = make_source("the message", files=[("a.pdf", b"%PDF a"), ("b.pdf", b"%PDF b")])
    message, first, second = _items(db, made.id)
    assert (message.kind, first.kind) == ("message", "file")
    doomed = first.blob_name
    assert doomed in _stored(instance)

    assert deletion.delete_item(session=db, store=store, item_id=first.id, actor=ACTOR) == made.id
    assert [item.id for item in _items(db, made.id)] == [message.id, second.id]
    assert doomed not in _stored(instance)
    assert _stored(instance) == {message.blob_name, second.blob_name}
    assert _audit(db) == [(ACTOR, "file delete", made.source.designation)]


def test_the_last_item_takes_its_submission_but_never_the_source(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    made = make_source("only a message")
    (item,) = _items(db, made.id)
    deletion.delete_item(session=db, store=store, item_id=item.id, actor=ACTOR)
    assert _count(db, Item) == 0
    assert _count(db, Submission) == 0
    assert db.get(Source, made.id) is not None
    assert _stored(instance) == set()
    assert _audit(db) == [(ACTOR, "message delete", made.source.designation)]


def test_an_unknown_item_is_nothing_to_delete(db: Session, store: BlobStore, make_source: SourceFactory) -> None:
    make_source()
    with pytest.raises(NothingToDelete):
        deletion.delete_item(session=db, store=store, item_id="f" * 32, actor=ACTOR)
    assert _count(db, Item) == 1
    assert _audit(db) == []


def test_a_note_is_deleted_only_through_its_own_source(db: Session, make_source: SourceFactory) -> None:
    mine, other = make_source("mine"), make_source("other")
    note = _note(db, mine)
    for source_id, note_id in ((other.id, note.id), ("0" * 32, note.id), (mine.id, "0" * 32)):
        with pytest.raises(NothingToDelete):
            deletion.delete_note(session=db, source_id=source_id, note_id=note_id, actor=ACTOR)
    assert _count(db, Note) == 1
    deletion.delete_note(session=db, source_id=mine.id, note_id=note.id, actor=ACTOR)
    assert _count(db, Note) == 0
    assert (ACTOR, "note delete", mine.source.designation) in _audit(db)


def test_a_reply_is_deleted_with_its_body_only_through_its_own_source(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    mine, other = make_source("mine"), make_source("other")
    kept, doomed = _reply(db, store, mine, "kept"), _reply(db, store, mine, "doomed")
    with pytest.raises(NothingToDelete):
        deletion.delete_reply(session=db, store=store, source_id=other.id, reply_id=doomed.id, actor=ACTOR)
    with pytest.raises(NothingToDelete):
        deletion.delete_reply(session=db, store=store, source_id=mine.id, reply_id="e" * 32, actor=ACTOR)
    assert doomed.blob_name in _stored(instance)

    deletion.delete_reply(session=db, store=store, source_id=mine.id, reply_id=doomed.id, actor=ACTOR)
    assert list(db.scalars(select(Reply.id))) == [kept.id]
    assert doomed.blob_name not in _stored(instance)
    assert kept.blob_name in _stored(instance)
    assert _audit(db) == [(ACTOR, "reply delete", mine.source.designation)]


def test_deleting_sources_takes_everything_they_own_and_nothing_else(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    doomed, spared = make_source("doomed", files=[("x.bin", b"x")]), make_source("spared")
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    public_key = keys.active_public_key(db)
    for made in (doomed, spared):
        _reply(db, store, made)
        _note(db, made)
    for made, name in ((doomed, "only-doomed"), (doomed, "both"), (spared, "both")):
        triage.add_tag(
            session=db,
            source=made.source,
            name=name,
            actor=ACTOR,
            newsroom_keys=newsroom_keys,
            newsroom_public_key=public_key,
        )
    doomed_blobs, spared_blobs = _blobs_of(db, doomed.id), _blobs_of(db, spared.id)
    assert len(doomed_blobs) == 3
    designation = doomed.source.designation

    assert deletion.delete_sources(session=db, store=store, source_ids=[doomed.id, "0" * 32], actor=ACTOR) == 1
    db.expire_all()
    assert list(db.scalars(select(Source.id))) == [spared.id]
    assert list(db.scalars(select(Submission.source_id))) == [spared.id]
    assert list(db.scalars(select(Reply.source_id))) == [spared.id]
    assert list(db.scalars(select(Note.source_id))) == [spared.id]
    assert list(db.scalars(select(SourceTag.source_id))) == [spared.id]
    # The tag only the deleted source carried goes, with its sealed name.
    assert set(triage.tag_names(session=db, newsroom_keys=newsroom_keys).values()) == {"both"}
    assert _count(db, Tag) == 1
    assert _stored(instance) == spared_blobs
    assert (ACTOR, "source delete", designation) in _audit(db)


def test_deleting_no_known_source_changes_nothing(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    made = make_source()
    before = _stored(instance)
    assert deletion.delete_sources(session=db, store=store, source_ids=["0" * 32], actor=ACTOR) == 0
    assert deletion.delete_sources(session=db, store=store, source_ids=[], actor=ACTOR) == 0
    assert db.get(Source, made.id) is not None
    assert _stored(instance) == before
    assert _audit(db) == []


@pytest.mark.sqlite_only("secure_delete and the WAL checkpoint are SQLite's")
def test_no_trace_of_a_deleted_source_stays_in_the_database_files(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    made = make_source("doomed", files=[("x.bin", b"x")])
    traces = [item.capsule[9:41] for item in _items(db, made.id)]
    traces += [item.sealed_metadata[25:57] for item in _items(db, made.id)]
    deletion.delete_sources(session=db, store=store, source_ids=[made.id], actor=ACTOR)
    database_file = instance.settings.data_dir / "buzon.db"
    wal = database_file.with_name("buzon.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    content = database_file.read_bytes()
    assert [trace for trace in traces if trace in content] == []


@pytest.mark.sqlite_only("the WAL is SQLite's")
def test_a_reply_the_source_deleted_leaves_the_wal_even_while_another_connection_reads(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    made = make_source("a tip")
    reply = _reply(db, store, made, "meet at the church")
    capsule = reply.source_capsule[9:41]
    database_file = instance.settings.data_dir / "buzon.db"
    wal = database_file.with_name("buzon.db-wal")
    holding, release = threading.Event(), threading.Event()

    def read_and_hold() -> None:
        # An editor's long read: a transaction whose snapshot predates the erasure.
        reader = sqlite3.connect(database_file, timeout=30)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM replies").fetchone()
            holding.set()
            release.wait(30)
        finally:
            reader.close()

    thread = threading.Thread(target=read_and_hold)
    thread.start()
    try:
        assert holding.wait(10)
        # The reader lets go only after longer than one checkpoint waits for it (busy_timeout, 10 s).
        threading.Timer(12, release.set).start()
        assert replies.forget_reply(session=db, source_id=made.id, reply_id=reply.id)
    finally:
        release.set()
        thread.join()
    assert not wal.exists() or wal.stat().st_size == 0
    assert capsule not in database_file.read_bytes()
