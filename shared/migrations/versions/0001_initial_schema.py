"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28 04:42:49.539545
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('callback_receipts',
    sa.Column('stream_id', sa.String(length=41), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('stream_id', name=op.f('pk_callback_receipts'))
    )
    op.create_index(op.f('ix_callback_receipts_processed_at'), 'callback_receipts', ['processed_at'], unique=False)
    op.create_table('dead_letters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('stream_id', sa.String(length=41), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('entry', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dead_letters')),
    sa.UniqueConstraint('stream_id', name=op.f('uq_dead_letters_stream_id'))
    )
    op.create_table('messages',
    sa.Column('sid', sa.String(length=34), nullable=False),
    sa.Column('account_sid', sa.Text(), nullable=True),
    sa.Column('to', sa.Text(), nullable=True),
    sa.Column('from', sa.Text(), nullable=True),
    sa.Column('messaging_service_sid', sa.Text(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('status_rank', sa.SmallInteger(), nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('callback_received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('carrier_done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('needs_reconcile', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.PrimaryKeyConstraint('sid', name=op.f('pk_messages'))
    )
    op.create_index('ix_messages_created_at', 'messages', ['created_at'], unique=False)
    op.create_index('ix_messages_needs_reconcile', 'messages', ['needs_reconcile'], unique=False, postgresql_where=sa.text('needs_reconcile IS true'), sqlite_where=sa.text('needs_reconcile IS true'))
    op.create_index('ix_messages_status_created_at', 'messages', ['status', 'created_at'], unique=False)
    op.create_table('message_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_sid', sa.String(length=34), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('error_code', sa.Integer(), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('idempotency_token', sa.Text(), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('duplicate_count', sa.Integer(), nullable=False),
    sa.Column('raw', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_events')),
    sa.UniqueConstraint('message_sid', 'status', name=op.f('uq_message_events_message_sid_status'))
    )
    op.create_index('ix_message_events_received_at', 'message_events', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_message_events_received_at', table_name='message_events')
    op.drop_table('message_events')
    op.drop_index('ix_messages_status_created_at', table_name='messages')
    op.drop_index('ix_messages_needs_reconcile', table_name='messages', postgresql_where=sa.text('needs_reconcile IS true'), sqlite_where=sa.text('needs_reconcile IS true'))
    op.drop_index('ix_messages_created_at', table_name='messages')
    op.drop_table('messages')
    op.drop_table('dead_letters')
    op.drop_index(op.f('ix_callback_receipts_processed_at'), table_name='callback_receipts')
    op.drop_table('callback_receipts')
