"""the TOTP replay guard moves inside the sealed TOTP record

Revision ID: 0005
Revises: 0004

``editors.last_totp_counter`` dated each editor's last login to 30 seconds.
The guard now lives in the sealed record (docs/crypto.md, "Editor keys"),
which the server rewrites at each login. A migration cannot rewrite the
records (they open only with the editor's passphrase), so the records of
existing accounts stay v1, read with a guard of 0, until their next login.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("editors") as batch:
        batch.drop_column("last_totp_counter")


def downgrade() -> None:
    # The guard is lost on the way down: 0 accepts any current code once more.
    with op.batch_alter_table("editors") as batch:
        batch.add_column(sa.Column("last_totp_counter", sa.Integer(), nullable=False, server_default="0"))
