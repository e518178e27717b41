"""Removing ciphertext that an interrupted run left behind."""

from __future__ import annotations

from sqlalchemy import Engine, select, text, union
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.db.models import Base, Item, Reply
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


VACUUM_FULL_WAIT_MS = 2000


def restamp_rows(engine: Engine) -> bool:
    """On PostgreSQL, give every row the same transaction id; False (nothing done) elsewhere.

    Each row's hidden ``xmin`` is the id of the transaction that wrote it: ids
    rise, so they order rows across tables, and the WAL ties each id to its
    commit time (docs/postgresql.md). Rewriting every row in one transaction,
    then VACUUM FULL, leaves one id for all of them: what came in before this
    run is no longer ordered. Rows written since the last run still are.
    """
    if engine.dialect.name != "postgresql":
        return False
    with engine.begin() as connection:
        for table in Base.metadata.sorted_tables:
            key = next(iter(table.primary_key.columns)).name
            connection.execute(text(f'UPDATE "{table.name}" SET "{key}" = "{key}"'))  # noqa: S608 - our own tables
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        # FULL rewrites a table into new files, so the dead copies with their old ids go
        # too; it needs the table to itself, so it waits only briefly for readers and
        # falls back to a plain VACUUM, which frees the dead copies without erasing them.
        connection.execute(text(f"SET lock_timeout = '{VACUUM_FULL_WAIT_MS}ms'"))
        for table in Base.metadata.sorted_tables:
            try:
                connection.execute(text(f'VACUUM FULL "{table.name}"'))
            except OperationalError:
                connection.execute(text(f'VACUUM "{table.name}"'))
    return True
