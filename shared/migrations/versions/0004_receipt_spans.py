"""callback_receipts holds spans of stream ids, one row per batch read, not one row per callback

A receipt per callback was a quarter of PostgreSQL's time on the drain benchmark. A batch read
with XREADGROUP ">" is a contiguous run of the stream, so one span covers it; entries taken over
with XAUTOCLAIM are recorded one by one. On PostgreSQL an exclusion constraint keeps spans
disjoint: a takeover of entries still being stored waits for that commit, then skips them.
Existing receipts become one-entry spans.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# (ms, seq) as one number: seq is below 2**64.
SPAN = (
    "numrange(first_ms::numeric * 18446744073709551616 + first_seq, "
    "last_ms::numeric * 18446744073709551616 + last_seq, '[]')"
)


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute("CREATE TEMP TABLE statuspipe_old_receipts AS SELECT * FROM callback_receipts")
    op.drop_index("ix_callback_receipts_processed_at", table_name="callback_receipts")
    op.drop_table("callback_receipts")
    op.create_table(
        "callback_receipts",
        sa.Column("first_ms", sa.BigInteger(), nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("first_ms", "first_seq", name="pk_callback_receipts"),
    )
    op.create_index(
        "ix_callback_receipts_processed_at", "callback_receipts", ["processed_at"], unique=False
    )
    if postgres:
        op.execute(
            "ALTER TABLE callback_receipts ADD CONSTRAINT ex_callback_receipts_span "
            f"EXCLUDE USING gist ({SPAN} WITH &&)"
        )
        ms = "split_part(stream_id, '-', 1)::bigint"
        seq = "split_part(stream_id, '-', 2)::bigint"
    else:
        ms = "CAST(substr(stream_id, 1, instr(stream_id, '-') - 1) AS INTEGER)"
        seq = "CAST(substr(stream_id, instr(stream_id, '-') + 1) AS INTEGER)"
    op.execute(
        "INSERT INTO callback_receipts (first_ms, first_seq, last_ms, last_seq, processed_at) "
        f"SELECT {ms}, {seq}, {ms}, {seq}, processed_at FROM statuspipe_old_receipts"  # noqa: S608
    )
    op.execute("DROP TABLE statuspipe_old_receipts")


def downgrade() -> None:
    raise NotImplementedError("0004 is one-way: spans cannot be split back into stream ids")
