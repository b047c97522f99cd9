"""messages.final_status and reconcile_flagged_at

Conflicting final statuses are now found in the messages upsert itself, against the first final
status kept on the row, instead of by counting audit rows per message after every batch (that
count was a sixth of PostgreSQL's time on the drain benchmark).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

FINALS = "('canceled', 'delivered', 'failed', 'undelivered')"


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("final_status", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("reconcile_flagged_at", sa.DateTime(timezone=True), nullable=True)
        )
    # Rows stored before this revision: their first final status from the audit trail.
    op.execute(f"""
        UPDATE messages SET final_status = (
            SELECT e.status FROM message_events e
            WHERE e.message_sid = messages.sid AND e.status IN {FINALS}
            ORDER BY e.received_at, e.status LIMIT 1)
        WHERE status_rank >= 4
    """)  # noqa: S608 - constant text
    op.execute("UPDATE messages SET reconcile_flagged_at = CURRENT_TIMESTAMP WHERE needs_reconcile")


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("reconcile_flagged_at")
        batch.drop_column("final_status")
