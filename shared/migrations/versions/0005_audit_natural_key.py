"""message_events is keyed by (message_sid, status): no surrogate id, no received_at index

The pair was already unique and is what every read looks up. The id's sequence and index and
the unused received_at index were each paid on every audit insert, the drain's largest
statement: keyed by the pair, the audit insert cost about a quarter less PostgreSQL CPU on the
drain benchmark (docs/benchmarks-notes.md).

On PostgreSQL this rebuilds one index under an exclusive lock on the table: on a large audit
trail, run it when a pause of the workers is acceptable (callbacks keep queueing in Redis).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_message_events_received_at", table_name="message_events")
    with op.batch_alter_table("message_events") as batch:
        batch.drop_constraint("uq_message_events_message_sid_status", type_="unique")
        if op.get_bind().dialect.name == "postgresql":
            # SQLite's primary key has no name to drop: it goes with its column.
            batch.drop_constraint("pk_message_events", type_="primary")
        batch.drop_column("id")
        batch.create_primary_key("pk_message_events", ["message_sid", "status"])


_COLUMNS = (
    "message_sid, status, error_code, error_message, idempotency_token, received_at,"
    " processed_at, duplicate_count, raw, url_query"
)


def downgrade() -> None:
    # Ids are handed out afresh, in the order the rows happen to be read.
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("pk_message_events", "message_events", type_="primary")
        op.create_unique_constraint(
            "uq_message_events_message_sid_status", "message_events", ["message_sid", "status"]
        )
        op.execute("ALTER TABLE message_events ADD COLUMN id BIGSERIAL")
        op.create_primary_key("pk_message_events", "message_events", ["id"])
    else:
        # SQLite cannot drop a primary key in place: rebuild the table as 0004 left it.
        op.rename_table("message_events", "message_events_0005")
        op.create_table(
            "message_events",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("message_sid", sa.String(length=34), nullable=False),
            sa.Column("status", sa.String(length=32), nullable=False),
            sa.Column("error_code", sa.Integer(), nullable=True),
            sa.Column("error_message", sa.Text(), nullable=True),
            sa.Column("idempotency_token", sa.Text(), nullable=True),
            sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column(
                "processed_at",
                sa.DateTime(timezone=True),
                server_default=sa.func.now(),
                nullable=False,
            ),
            sa.Column("duplicate_count", sa.Integer(), nullable=False),
            sa.Column("raw", sa.Text(), nullable=False),
            sa.Column("url_query", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id", name="pk_message_events"),
            sa.UniqueConstraint(
                "message_sid", "status", name="uq_message_events_message_sid_status"
            ),
        )
        op.execute(
            f"INSERT INTO message_events ({_COLUMNS}) SELECT {_COLUMNS} FROM message_events_0005"  # noqa: S608
        )
        op.drop_table("message_events_0005")
    op.create_index("ix_message_events_received_at", "message_events", ["received_at"])
