"""editor portal: invites, triage, tags, notes, audit

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "invites",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("token_hash"),
        sa.UniqueConstraint("username"),
    )
    op.create_table(
        "tags",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("sealed_name", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source_id", sa.String(length=32), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("sealed_text", sa.LargeBinary(), nullable=False),
        sa.Column("created_on", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notes_source_id"), ["source_id"], unique=False)

    op.create_table(
        "source_tags",
        sa.Column("source_id", sa.String(length=32), nullable=False),
        sa.Column("tag_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("source_id", "tag_id"),
    )
    with op.batch_alter_table("source_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_source_tags_tag_id"), ["tag_id"], unique=False)

    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recovery_public_key", sa.LargeBinary(length=32), nullable=True))

    with op.batch_alter_table("editors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))

    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dup_tag", sa.LargeBinary(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_items_dup_tag"), ["dup_tag"], unique=False)

    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("author", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("source_state", sa.String(length=8), nullable=False, server_default="unread"))

    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="new"))
        batch_op.add_column(sa.Column("starred", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("assignee_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("unread", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index(batch_op.f("ix_sources_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_sources_starred"), ["starred"], unique=False)
        batch_op.create_index(batch_op.f("ix_sources_status"), ["status"], unique=False)
        batch_op.create_index("ix_sources_inbox_order", ["last_submission_on", "id", "status"], unique=False)
        batch_op.create_foreign_key(
            "fk_sources_assignee_id_editors", "editors", ["assignee_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_constraint("fk_sources_assignee_id_editors", type_="foreignkey")
        batch_op.drop_index("ix_sources_inbox_order")
        batch_op.drop_index(batch_op.f("ix_sources_status"))
        batch_op.drop_index(batch_op.f("ix_sources_starred"))
        batch_op.drop_index(batch_op.f("ix_sources_assignee_id"))
        batch_op.drop_column("unread")
        batch_op.drop_column("hidden")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("starred")
        batch_op.drop_column("status")

    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.drop_column("source_state")
        batch_op.drop_column("author")

    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_items_dup_tag"))
        batch_op.drop_column("dup_tag")

    with op.batch_alter_table("editors", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")

    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_column("recovery_public_key")

    with op.batch_alter_table("source_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_tags_tag_id"))

    op.drop_table("source_tags")
    with op.batch_alter_table("notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notes_source_id"))

    op.drop_table("notes")
    op.drop_table("tags")
    op.drop_table("invites")
    op.drop_table("audit_log")
