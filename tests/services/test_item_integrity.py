"""A row's clear fields must agree with the sealed metadata: a relabelled or resized item does not open."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Item, Reply, Submission
from app.services import desk, keys, replies, submissions
from app.storage import BlobStore
from tests.support import Instance
from tests.support.inprocess import SourceFactory


def _items(db: Session, source_id: str) -> dict[str, Item]:
    query = select(Item).join(Submission).where(Submission.source_id == source_id)
    return {item.kind: item for item in db.scalars(query)}


def _relabel(kind: str) -> Callable[[Item], None]:
    def tamper(item: Item) -> None:
        item.kind = kind

    return tamper


def _resize(by: int) -> Callable[[Item], None]:
    def tamper(item: Item) -> None:
        item.body_size += by

    return tamper


@pytest.mark.parametrize(
    ("kind", "tamper"),
    [
        ("file", _relabel("message")),
        ("message", _relabel("file")),
        ("file", _resize(65536 + 17)),  # one more chunk than Padmé gives this content
        ("message", _resize(-1)),
    ],
)
def test_a_tampered_row_opens_nothing(
    db: Session,
    store: BlobStore,
    instance: Instance,
    make_source: SourceFactory,
    kind: str,
    tamper: Callable[[Item], None],
) -> None:
    made = make_source("a message", files=[("a.txt", b"a file")])
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    item = _items(db, made.id)[kind]
    _, chunks = submissions.open_item_stream(session=db, store=store, item_id=item.id, newsroom_keys=newsroom_keys)
    assert b"".join(chunks) == (b"a file" if kind == "file" else b"a message")
    tamper(item)
    db.commit()
    with pytest.raises(submissions.ItemNotFound):
        submissions.open_item_stream(session=db, store=store, item_id=item.id, newsroom_keys=newsroom_keys)


def test_an_envelope_moved_to_another_sources_submission_opens_nothing(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    # An adversary with the database (not the keys) plants one source's file in another's
    # conversation, to make it look as if the second source sent it.
    victim = make_source("the victim's tip", files=[("plan.pdf", b"%PDF-1.4 the victim's file")])
    other = make_source("someone else's tip")
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    item = _items(db, victim.id)["file"]
    (target,) = db.scalars(select(Submission).where(Submission.source_id == other.id))
    _, chunks = submissions.open_item_stream(session=db, store=store, item_id=item.id, newsroom_keys=newsroom_keys)
    assert b"".join(chunks) == b"%PDF-1.4 the victim's file"
    item.submission_id = target.id
    db.commit()
    with pytest.raises(submissions.ItemNotFound):
        submissions.open_item_stream(session=db, store=store, item_id=item.id, newsroom_keys=newsroom_keys)
    # Nor does the planted file show on the other source's page as theirs: it is listed as
    # unreadable, and their own message still shows.
    (page,) = submissions.open_source_submissions(
        session=db, store=store, source=other.source, newsroom_keys=newsroom_keys
    )
    assert [i.text for i in page.items] == ["someone else's tip"]
    assert page.unreadable == [submissions.UnreadableItem(id=item.id, kind="file")]


def test_a_reply_moved_to_another_source_opens_nothing(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory
) -> None:
    first = make_source("first")
    second = make_source("second")
    public_key = keys.active_public_key(db)
    text = "only for the first"
    replies.send_reply(session=db, store=store, source=first.source, text=text, newsroom_public_key=public_key)
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    sent, _ = replies.replies_for_editor(session=db, store=store, source_id=first.id, newsroom_keys=newsroom_keys)
    assert [r.text for r in sent] == [text]
    (reply,) = db.scalars(select(Reply).where(Reply.source_id == first.id))
    reply.source_id = second.id
    db.commit()
    assert replies.replies_for_editor(session=db, store=store, source_id=second.id, newsroom_keys=newsroom_keys) == (
        [],
        1,
    )


def _flip_metadata(item: Item) -> None:
    item.sealed_metadata = item.sealed_metadata[:-1] + bytes([item.sealed_metadata[-1] ^ 1])


@pytest.mark.parametrize("damage", ["metadata", "body"])
def test_one_damaged_item_hides_nothing_else_of_the_conversation(
    db: Session, store: BlobStore, instance: Instance, make_source: SourceFactory, damage: str
) -> None:
    # Before, one envelope that did not open blanked the whole page: an adversary with the
    # database could hide a source's every message from the editors by damaging one row.
    made = make_source("the first tip", files=[("a.txt", b"a file"), ("b.txt", b"another")])
    public_key = keys.active_public_key(db)
    replies.send_reply(session=db, store=store, source=made.source, text="thank you", newsroom_public_key=public_key)
    newsroom_keys = keys.open_with_recovery(session=db, recovery_secret=instance.recovery_secret)
    (message,) = [i for i in _all_items(db, made.id) if i.kind == "message"]
    if damage == "metadata":
        _flip_metadata(message)
    else:
        store.delete(message.blob_name)
    db.commit()
    page = desk.open_source_page(
        session=db, store=store, source_id=made.id, newsroom_keys=newsroom_keys, retention_days=None
    )
    (submission,) = page.submissions
    assert sorted(i.metadata.name for i in submission.items) == ["a.txt", "b.txt"]
    assert submission.unreadable == [submissions.UnreadableItem(id=message.id, kind="message")]
    assert [r.text for r in page.replies] == ["thank you"]
    assert page.unreadable == 1


def _all_items(db: Session, source_id: str) -> list[Item]:
    return list(db.scalars(select(Item).join(Submission).where(Submission.source_id == source_id)))
