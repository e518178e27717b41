"""A row's clear fields must agree with the sealed metadata: a relabelled or resized item does not open."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.models import Item, Submission
from app.services import keys, submissions
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
