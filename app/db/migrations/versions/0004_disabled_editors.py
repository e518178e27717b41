"""disabled editors: a revoked account can no longer log in

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("editors") as batch:
        batch.add_column(sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Accounts revoked before this revision hold no key grant: they were meant to be out.
    # Nothing marks them apart from never-granted ones, so both stay enabled and an
    # admin revokes again; docs/editors.md says so.


def downgrade() -> None:
    with op.batch_alter_table("editors") as batch:
        batch.drop_column("disabled")
