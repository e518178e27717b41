"""Every Alembic revision, up and down, on a populated database (SQLite or PostgreSQL).

Rows are written at each revision with the columns that revision has, then
the schema is upgraded to head, read back through the current models,
downgraded one step at a time to base and upgraded again.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, String, func, insert, inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.db import models
from app.db.migrate import MIGRATIONS_DIR, downgrade_database, upgrade_database
from app.db.session import make_engine
from tests.support import SettingsFactory, migration_revisions, uses_sqlite

DAY = dt.date(2024, 5, 17)
EDITOR = secrets.token_hex(16)
SOURCE = secrets.token_hex(16)
SUBMISSION = secrets.token_hex(16)
KEY_ID = secrets.token_hex(8)
TAG = secrets.token_hex(16)


REVISIONS = migration_revisions()


def _rows() -> dict[str, list[dict[str, object]]]:
    """Rows for every table, in foreign-key order, with every column the head schema has."""
    blob = secrets.token_bytes
    return {
        "instance": [
            dict(
                id=1,
                codename_kdf_time_cost=3,
                codename_kdf_memory_kib=65536,
                codename_kdf_parallelism=1,
                recovery_public_key=blob(32),
            )
        ],
        "newsroom_keys": [
            dict(key_id=KEY_ID, public_key=blob(32), recovery_grant=blob(80), active=True, created_on=DAY)
        ],
        "editors": [
            dict(
                id=EDITOR,
                username="ana",
                is_admin=True,
                public_key=blob(32),
                wrapped_secret_key=blob(98),
                sealed_totp_secret=blob(128),
                last_totp_counter=57_000_000,
                created_on=DAY,
                session_epoch=2,
            )
        ],
        "key_grants": [dict(editor_id=EDITOR, key_id=KEY_ID, sealed_secret_key=blob(80))],
        "invites": [dict(token_hash=blob(32), username="bea", is_admin=False, expires_on=DAY)],
        "sources": [
            dict(
                id=SOURCE,
                lookup_id=blob(32),
                reply_public_key=blob(32),
                designation="quiet heron",
                created_on=DAY,
                last_submission_on=DAY,
                status="verifying",
                starred=True,
                assignee_id=EDITOR,
                hidden=False,
                unread=2,
            )
        ],
        "submissions": [dict(id=SUBMISSION, source_id=SOURCE, created_on=DAY)],
        "items": [
            dict(
                id=secrets.token_hex(16),
                submission_id=SUBMISSION,
                position=position,
                kind=kind,
                capsule=blob(89),
                sealed_metadata=blob(1065),
                blob_name=secrets.token_hex(16),
                body_size=5 * 1024**3 + position,  # past 32 bits
                dup_tag=blob(32),
            )
            for position, kind in enumerate(("message", "file"))
        ],
        "replies": [
            dict(
                id=secrets.token_hex(16),
                source_id=SOURCE,
                source_capsule=blob(89),
                newsroom_capsule=blob(89),
                sealed_metadata=blob(1065),
                blob_name=secrets.token_hex(16),
                body_size=4096,
                created_on=DAY,
                author="ana",
                source_state="read",
            )
        ],
        "tags": [dict(id=TAG, sealed_name=blob(90))],
        "source_tags": [dict(source_id=SOURCE, tag_id=TAG)],
        "notes": [dict(source_id=SOURCE, author="ana", sealed_text=blob(120), created_on=DAY)],
        "audit_log": [
            dict(day=DAY, actor="ana", action="status verifying", target="quiet heron"),
            dict(day=DAY, actor="(command line)", action="added editor", target="ana"),
        ],
    }


# Columns added after a table was created, and the value an upgrade gives old rows.
ADDED_LATER: dict[str, dict[str, object]] = {
    "editors": {"session_epoch": 0, "disabled": False},
    "instance": {"recovery_public_key": None},
    "items": {"dup_tag": None},
    "replies": {"author": None, "source_state": "unread"},
    "sources": {"status": "new", "starred": False, "assignee_id": None, "hidden": False, "unread": 0},
}


# Tables whose integer ids 0006 replaced with random ones: an old row keeps its content, not its id.
REKEYED = ("notes", "audit_log")
# Columns a later revision drops (0005: the TOTP guard moved inside the sealed record).
DROPPED_LATER: dict[str, set[str]] = {"editors": {"last_totp_counter"}}


def _populate(engine: Engine) -> dict[str, list[dict[str, object]]]:
    """Insert rows with the columns the current revision has; return what was inserted."""
    schema = MetaData()
    schema.reflect(engine)
    inserted: dict[str, list[dict[str, object]]] = {}
    with engine.begin() as connection:
        for name, rows in _rows().items():
            if name not in schema.tables:
                continue
            table = schema.tables[name]
            inserted[name] = [{k: v for k, v in row.items() if k in table.columns} for row in rows]
            if name in REKEYED and isinstance(table.c.id.type, String):
                # Since 0006 these ids are random and made by the application, not the database.
                inserted[name] = [{**row, "id": secrets.token_hex(16)} for row in inserted[name]]
            connection.execute(insert(table), inserted[name])
    return inserted


def _model_for(table: str) -> type[models.Base]:
    return next(
        m.class_ for m in models.Base.registry.mappers if m.persist_selectable is models.Base.metadata.tables[table]
    )


def _assert_readable_at_head(engine: Engine, inserted: dict[str, list[dict[str, object]]]) -> None:
    """Every inserted row comes back through the models, new columns holding their defaults."""
    with Session(engine) as session:
        for table, rows in inserted.items():
            model = _model_for(table)
            found = list(session.scalars(select(model)))
            assert len(found) == len(rows), table
            for row in rows:
                replaced = DROPPED_LATER.get(table, set()) | ({"id"} if table in REKEYED else set())
                kept = {k: v for k, v in row.items() if k not in replaced}
                expected = {**{k: v for k, v in ADDED_LATER.get(table, {}).items() if k not in row}, **kept}
                matches = [
                    obj for obj in found if all(getattr(obj, column) == value for column, value in expected.items())
                ]
                assert len(matches) == 1, (table, row)


def _schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), models.Base.metadata))


def _revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _counts(engine: Engine) -> dict[str, int]:
    tables = [name for name in inspect(engine).get_table_names() if name != "alembic_version"]
    with engine.connect() as connection:
        return {name: connection.scalar(select(func.count()).select_from(text(name))) or 0 for name in tables}


@pytest.mark.parametrize("start", REVISIONS)
def test_populated_database_survives_upgrade_to_head_and_every_step_down_and_up(
    tmp_path: Path, start: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(tmp_path / "data")
    settings.data_dir.mkdir(mode=0o700)
    engine = make_engine(settings.resolved_database_url)
    try:
        upgrade_database(engine, start)
        inserted = _populate(engine)
        assert sum(len(rows) for rows in inserted.values()) > 0

        upgrade_database(engine)
        assert _revision(engine) == REVISIONS[-1]
        _assert_readable_at_head(engine, inserted)
        assert _schema_differences(engine) == []

        # Each step down keeps every row of the tables that revision still has.
        at_head = _counts(engine)
        for target in [*reversed(REVISIONS[:-1]), "base"]:
            downgrade_database(engine, target)
            assert _revision(engine) == (None if target == "base" else target)
            remaining = _counts(engine)
            assert remaining == {name: at_head[name] for name in remaining}
        assert remaining == {}

        upgrade_database(engine)
        assert _schema_differences(engine) == []
        _assert_readable_at_head(engine, _populate(engine))
    finally:
        engine.dispose()


def test_the_revisions_form_one_line() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    scripts = ScriptDirectory.from_config(config)
    assert len(scripts.get_heads()) == 1
    assert len(REVISIONS) == len(set(REVISIONS)) >= 3


@pytest.mark.parametrize("start", ["0005", "base"])
def test_no_table_keeps_a_rowid_that_orders_arrivals(
    tmp_path: Path, start: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(tmp_path / "data")
    if not uses_sqlite(settings):
        pytest.skip("rowids are SQLite's; PostgreSQL's xmin is in docs/postgresql.md")
    settings.data_dir.mkdir(mode=0o700)
    engine = make_engine(settings.resolved_database_url)
    try:
        if start == "base":
            upgrade_database(engine)
            _populate(engine)
        else:  # rows written before 0006, then rebuilt by it
            upgrade_database(engine, start)
            _populate(engine)
            upgrade_database(engine)
        with engine.connect() as connection:
            tables = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name != 'alembic_version'")
            ).all()
            assert {name for name, _ in tables} == set(models.Base.metadata.tables)
            for name, sql in tables:
                assert sql.rstrip().endswith("WITHOUT ROWID"), name
                with pytest.raises(OperationalError, match="no such column"):
                    connection.execute(text(f"SELECT rowid FROM {name}"))
            for name in REKEYED:
                ids = connection.execute(text(f"SELECT id FROM {name}")).scalars().all()
                assert ids, name
                assert all(isinstance(i, str) and len(i) == 32 and int(i, 16) >= 0 for i in ids), ids
    finally:
        engine.dispose()
