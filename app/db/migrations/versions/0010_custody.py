"""custody: editors' signing keys, the sealed hash-chained custody log and its head

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("editors") as batch:
        batch.add_column(sa.Column("signing_public_key", sa.LargeBinary(32), nullable=True))
        batch.add_column(sa.Column("sealed_signing_seed", sa.LargeBinary(80), nullable=True))
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("custody_link", sa.String(64), nullable=True))
        batch.add_column(sa.Column("commitment", sa.LargeBinary(32), nullable=True))
    op.create_table(
        "custody_entries",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sealed_entry", sa.LargeBinary(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "custody_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("link", sa.String(64), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "signing_keys",
        sa.Column("public_key", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
    op.drop_table("custody_head")
    op.drop_table("custody_entries")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("commitment")
        batch.drop_column("custody_link")
    with op.batch_alter_table("editors") as batch:
        batch.drop_column("sealed_signing_seed")
        batch.drop_column("signing_public_key")
