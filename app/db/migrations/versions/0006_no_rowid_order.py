"""random keys everywhere, and no hidden rowid that keeps the order of arrival

Revision ID: 0006
Revises: 0005

SQLite gives every ordinary table a hidden ``rowid`` that rises with each
insert, so ``ORDER BY rowid`` returned the true order of sources, submissions,
items and replies even where every stored date is the same day. Every table
becomes WITHOUT ROWID (a B-tree on its random key). Notes and the audit log
had rising integer ids; they get random ones. ``app.db.migrate`` runs VACUUM
after an upgrade, so the rebuilt file's pages follow the random keys too.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = (
    "instance",
    "newsroom_keys",
    "editors",
    "key_grants",
    "invites",
    "sources",
    "tags",
    "source_tags",
    "notes",
    "submissions",
    "items",
    "replies",
    "audit_log",
)
REKEYED = ("notes", "audit_log")


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _new_ids(table: str, make: list[str]) -> None:
    """Give every row of ``table`` the next id of ``make`` (ids held as text)."""
    bind = op.get_bind()
    old_ids = [row[0] for row in bind.execute(sa.text(f"SELECT id FROM {table}"))]  # noqa: S608 - our table names
    for old, new in zip(old_ids, make, strict=False):
        bind.execute(sa.text(f"UPDATE {table} SET id = :new WHERE id = :old"), {"new": new, "old": old})  # noqa: S608


def _count(table: str) -> int:
    return int(op.get_bind().execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608


def upgrade() -> None:
    sqlite = _is_sqlite()
    for table in REKEYED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "id",
                existing_type=sa.Integer(),
                type_=sa.String(length=32),
                server_default=None,
                postgresql_using="id::text",
            )
        _new_ids(table, [secrets.token_hex(16) for _ in range(_count(table))])
        if not sqlite:
            op.execute(f"DROP SEQUENCE IF EXISTS {table}_id_seq")
    if sqlite:
        for table in TABLES:
            with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_with_rowid": False}):
                pass


def downgrade() -> None:
    sqlite = _is_sqlite()
    if sqlite:
        for table in TABLES:
            with op.batch_alter_table(table, recreate="always"):
                pass
    for table in REKEYED:
        # Any order will do: the old ids said only when a row was added.
        _new_ids(table, [str(n) for n in range(1, _count(table) + 1)])
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "id",
                existing_type=sa.String(length=32),
                type_=sa.Integer(),
                postgresql_using="id::integer",
            )
        if not sqlite:
            op.execute(f"CREATE SEQUENCE {table}_id_seq OWNED BY {table}.id")
            op.execute(f"SELECT setval('{table}_id_seq', (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)")
            op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq')")
