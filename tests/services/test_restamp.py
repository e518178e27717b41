"""PostgreSQL's transaction ids order rows; the daily restamp leaves one id for all that came before."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.services.housekeeping import restamp_rows
from tests.support import Instance, row_counts, uses_sqlite
from tests.support.inprocess import SourceFactory

TABLES = ("sources", "submissions", "items")


def _distinct_xmins(db: Session, table: str) -> int:
    return int(db.execute(text(f"SELECT count(DISTINCT xmin::text) FROM {table}")).scalar_one())


def test_restamping_leaves_one_transaction_id_for_every_row(
    db: Session, instance: Instance, make_source: SourceFactory
) -> None:
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    for n in range(3):
        make_source(f"tip {n}", files=[(f"{n}.txt", b"x")])
    if uses_sqlite(instance.settings):
        assert restamp_rows(engine) is False  # SQLite has no xmin; WITHOUT ROWID covers its order
        return
    db.commit()
    # The residue this answers: each tip's rows carry the id of its own transaction, in order.
    assert all(_distinct_xmins(db, table) == 3 for table in TABLES)
    counts = row_counts(instance.settings)
    db.rollback()  # as a request would, between reads: no transaction left holding the tables
    assert restamp_rows(engine) is True
    db.rollback()
    assert all(_distinct_xmins(db, table) == 1 for table in TABLES)
    assert row_counts(instance.settings) == counts


@pytest.mark.parametrize("table", TABLES)
def test_every_table_has_a_key_to_restamp_by(table: str) -> None:
    from app.db.models import Base

    assert Base.metadata.tables[table].primary_key.columns


def test_a_reader_holding_a_table_only_delays_the_restamp(
    db: Session, instance: Instance, make_source: SourceFactory
) -> None:
    if uses_sqlite(instance.settings):
        pytest.skip("PostgreSQL's xmin")
    engine = db.get_bind()
    assert isinstance(engine, Engine)
    make_source("a tip")
    make_source("another tip")
    db.rollback()
    with engine.connect() as reader:
        reader.execute(text("SELECT count(*) FROM sources"))  # its transaction stays open: a lock on sources
        assert restamp_rows(engine) is True  # VACUUM FULL gives up on sources after its wait; VACUUM runs
        reader.rollback()
    assert _distinct_xmins(db, "sources") == 1
