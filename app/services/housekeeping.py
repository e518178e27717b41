"""Removing ciphertext that an interrupted run left behind."""

from __future__ import annotations

from sqlalchemy import select, union
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Item, Reply
from app.storage import BlobStore


def referenced_blob_names(session: Session) -> set[str]:
    query = union(select(Item.blob_name), select(Reply.blob_name))
    return set(session.scalars(query))


def sweep_store(factory: sessionmaker[Session], store: BlobStore) -> int:
    """Remove bodies a crashed writer left unrecorded; return how many (see app/storage.py)."""

    def referenced() -> set[str]:
        with factory() as session:
            return referenced_blob_names(session)

    return store.sweep_abandoned(referenced)
