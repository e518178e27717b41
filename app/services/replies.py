"""Replies from the newsroom to a source (docs/crypto.md, "Replies")."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app import crypto, errors
from app.clock import sealed_receipt_time, utc_today
from app.db.models import Reply, Source
from app.envelopes import read_body, write_body
from app.services import audit
from app.services.deletion import scrub_database
from app.storage import BlobStore

MAX_REPLY_CHARS = 100_000
UNREAD, READ, DELETED = "unread", "read", "deleted"


@dataclass(frozen=True)
class OpenedReply:
    id: str
    text: str
    received: str
    author: str | None = None
    # "unread", "read" or "deleted" (by the source).
    source_state: str = "unread"


class EmptyReply(errors.InvalidInput):
    pass


def send_reply(
    *,
    session: Session,
    store: BlobStore,
    source: Source,
    text: str,
    newsroom_public_key: bytes,
    author: str | None = None,
) -> None:
    """Encrypt ``text`` once, sealing its key to the source and to the newsroom.

    ``author`` is the replying editor's username, shown to other editors.
    """
    text = text.replace("\r\n", "\n")
    if not text.strip() or len(text) > MAX_REPLY_CHARS:
        raise EmptyReply()
    body = write_body(store, text.encode("utf-8"))
    try:
        metadata = crypto.EnvelopeMetadata(
            kind="reply",
            name="",
            type="text/plain; charset=utf-8",
            size=body.size,
            sha256=body.sha256,
            received=sealed_receipt_time(),
            owner=source.id,
        )
        session.add(
            Reply(
                id=secrets.token_hex(16),
                source_id=source.id,
                source_capsule=crypto.make_capsule(source.reply_public_key, body.data_key),
                newsroom_capsule=crypto.make_capsule(newsroom_public_key, body.data_key),
                sealed_metadata=crypto.seal_metadata(body.data_key, metadata),
                blob_name=body.blob_name,
                body_size=crypto.body_size(body.size),
                created_on=utc_today(),
                author=author,
            )
        )
        if author is not None:
            audit.record(session, actor=author, action="reply send", target=source.designation)
        body.blob.commit()
        session.commit()
        body.blob.release()
    except BaseException:
        session.rollback()
        body.blob.discard()
        raise


def _open(store: BlobStore, reply: Reply, capsule: bytes, keys: crypto.NewsroomKeys) -> OpenedReply:
    data_key = crypto.open_capsule(capsule, keys)
    # A reply moved to another source does not open: its record names the source it was sent to.
    metadata = crypto.open_metadata(data_key, reply.sealed_metadata, owner=reply.source_id, kind="reply")
    text = read_body(store, reply.blob_name, data_key, metadata.size).decode("utf-8", errors="replace")
    return OpenedReply(
        id=reply.id, text=text, received=metadata.received, author=reply.author, source_state=reply.source_state
    )


def _replies(session: Session, source_id: str, *, include_deleted: bool) -> list[Reply]:
    query = select(Reply).where(Reply.source_id == source_id)
    if not include_deleted:
        query = query.where(Reply.source_state != DELETED)
    return list(session.scalars(query))


def replies_for_source(
    *, session: Session, store: BlobStore, source_id: str, reply_keys: crypto.KeyPair
) -> list[OpenedReply]:
    """A source's replies, newest first, opened with the key from their codename."""
    keys = {crypto.key_id(reply_keys.public): reply_keys}
    opened = [_open(store, r, r.source_capsule, keys) for r in _replies(session, source_id, include_deleted=False)]
    return sorted(opened, key=lambda r: r.received, reverse=True)


def replies_for_editor(
    *, session: Session, store: BlobStore, source_id: str, newsroom_keys: crypto.NewsroomKeys
) -> tuple[list[OpenedReply], int]:
    """Every reply to the source, oldest first; one that does not open is left out and counted.

    Returns the replies and how many did not open (a key this session lacks, or
    a row or body changed since it was sent): one damaged reply hides nothing else.
    """
    opened, unreadable = [], 0
    for reply in _replies(session, source_id, include_deleted=True):
        try:
            opened.append(_open(store, reply, reply.newsroom_capsule, newsroom_keys))
        except (crypto.DecryptionError, FileNotFoundError):
            unreadable += 1
    return sorted(opened, key=lambda r: r.received), unreadable


def mark_read(*, session: Session, source_id: str, reply_ids: list[str]) -> None:
    """The source has seen these replies on their page."""
    if reply_ids:
        session.execute(
            update(Reply)
            .where(Reply.source_id == source_id, Reply.id.in_(reply_ids), Reply.source_state == UNREAD)
            .values(source_state=READ)
        )
        session.commit()


def forget_reply(*, session: Session, source_id: str, reply_id: str) -> bool:
    """The source deletes a reply: erase their capsule, keep the newsroom's copy.

    Without the source capsule the reply cannot be opened with the codename,
    even under coercion (docs/crypto.md, "Replies").
    """
    reply = session.get(Reply, reply_id)
    if reply is None or reply.source_id != source_id or reply.source_state == DELETED:
        return False
    reply.source_capsule = b""
    reply.source_state = DELETED
    session.commit()
    scrub_database(session)
    return True
