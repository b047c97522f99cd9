"""Delivery reports and reconciliation: callback counts on messages, the source of an event

Columns only, each with a constant default: on PostgreSQL 11+ adding them rewrites nothing and
holds the exclusive lock for an instant, so this runs beside live workers. Messages stored
before it count no callbacks (`callback_count` 0), so the report's duplicate rate of older days
is null rather than a wrong zero.

No index: the daily report reads a day by the existing `created_at` index, the baseline counts
by the existing (status, created_at) one without touching the table, and reconciliation finds
its messages by those and the partial `needs_reconcile` index (bench/reports.py,
docs/reports-explain.md). Every index on `messages` is paid on each upsert of the drain, since
its updates change the indexed status and are never HOT.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(
            sa.Column("callback_count", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(
            sa.Column("statuses_seen", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch.add_column(sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column(
                "settled_by_reconcile", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
    with op.batch_alter_table("message_events") as batch:
        batch.add_column(
            sa.Column(
                "source", sa.String(length=16), server_default=sa.text("'callback'"), nullable=False
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("message_events") as batch:
        batch.drop_column("source")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("settled_by_reconcile")
        batch.drop_column("reconciled_at")
        batch.drop_column("statuses_seen")
        batch.drop_column("callback_count")
