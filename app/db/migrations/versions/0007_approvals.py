"""approvals: deleting a source or an editor waits for a second admin

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approvals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("target_id", sa.String(32), nullable=False),
        sa.Column("requested_by", sa.String(32), sa.ForeignKey("editors.id", ondelete="CASCADE"), nullable=False),
        sa.Column("requested_on", sa.Date(), nullable=False),
        sa.UniqueConstraint("action", "target_id"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_approvals_requested_by", "approvals", ["requested_by"])


def downgrade() -> None:
    op.drop_index("ix_approvals_requested_by", table_name="approvals")
    op.drop_table("approvals")
