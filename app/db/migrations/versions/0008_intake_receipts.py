"""intake receipts: a sealed receipt per item, the instance signing key, pending evidence leaves

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instance") as batch:
        batch.add_column(sa.Column("signing_public_key", sa.LargeBinary(32), nullable=True))
        batch.add_column(sa.Column("sealed_signing_seed", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("sealed_receipt", sa.LargeBinary(809), nullable=True))
    op.create_table(
        "evidence_leaves",
        sa.Column("commitment", sa.LargeBinary(32), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_evidence_leaves_day", "evidence_leaves", ["day"])


def downgrade() -> None:
    op.drop_index("ix_evidence_leaves_day", table_name="evidence_leaves")
    op.drop_table("evidence_leaves")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("sealed_receipt")
    with op.batch_alter_table("instance") as batch:
        batch.drop_column("sealed_signing_seed")
        batch.drop_column("signing_public_key")
