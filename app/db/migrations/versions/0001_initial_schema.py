"""initial schema

Revision ID: 0001
Revises: 
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('editors',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('is_admin', sa.Boolean(), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('wrapped_secret_key', sa.LargeBinary(length=98), nullable=False),
    sa.Column('sealed_totp_secret', sa.LargeBinary(length=128), nullable=False),
    sa.Column('last_totp_counter', sa.Integer(), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('username')
    )
    op.create_table('instance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('codename_kdf_time_cost', sa.Integer(), nullable=False),
    sa.Column('codename_kdf_memory_kib', sa.Integer(), nullable=False),
    sa.Column('codename_kdf_parallelism', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('newsroom_keys',
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('recovery_grant', sa.LargeBinary(length=80), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('key_id')
    )
    op.create_table('sources',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('lookup_id', sa.LargeBinary(length=32), nullable=False),
    sa.Column('reply_public_key', sa.LargeBinary(length=32), nullable=False),
    sa.Column('designation', sa.String(length=80), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=False),
    sa.Column('last_submission_on', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lookup_id')
    )
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sources_last_submission_on'), ['last_submission_on'], unique=False)

    op.create_table('key_grants',
    sa.Column('editor_id', sa.String(length=32), nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('sealed_secret_key', sa.LargeBinary(length=80), nullable=False),
    sa.ForeignKeyConstraint(['editor_id'], ['editors.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['key_id'], ['newsroom_keys.key_id'], ),
    sa.PrimaryKeyConstraint('editor_id', 'key_id')
    )
    op.create_table('submissions',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('source_id', sa.String(length=32), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_submissions_source_id'), ['source_id'], unique=False)

    op.create_table('items',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('submission_id', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('capsule', sa.LargeBinary(length=89), nullable=False),
    sa.Column('sealed_metadata', sa.LargeBinary(length=1065), nullable=False),
    sa.Column('blob_name', sa.String(length=64), nullable=False),
    sa.Column('body_size', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('blob_name')
    )
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_items_submission_id'), ['submission_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_items_submission_id'))

    op.drop_table('items')
    with op.batch_alter_table('submissions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_submissions_source_id'))

    op.drop_table('submissions')
    op.drop_table('key_grants')
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sources_last_submission_on'))

    op.drop_table('sources')
    op.drop_table('newsroom_keys')
    op.drop_table('instance')
    op.drop_table('editors')
