"""Tables of statuspipe. Models are singular, tables plural."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names keep Alembic migrations identical on PostgreSQL and SQLite.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDoc = JSON().with_variant(JSONB(), "postgresql")
# SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcTime(TypeDecorator[datetime]):
    """Timestamps in UTC, aware, on every database.

    SQLite keeps no time zone: without this, values read back from the `make run` database are
    naive, and values bound in another zone would compare wrongly as text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            return value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Message(Base):
    """Current state of one Twilio message: the highest-ranked status seen so far."""

    __tablename__ = "messages"

    sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    account_sid: Mapped[str | None] = mapped_column(Text)
    to: Mapped[str | None] = mapped_column(Text)
    from_: Mapped[str | None] = mapped_column("from", Text)
    messaging_service_sid: Mapped[str | None] = mapped_column(Text)
    # NULL until a known status arrives: an unknown status never becomes the current one.
    status: Mapped[str | None] = mapped_column(String(32))
    status_rank: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False)
    status_updated_at: Mapped[datetime | None] = mapped_column(UtcTime)
    callback_received_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False)
    carrier_done_at: Mapped[datetime | None] = mapped_column(UtcTime)
    # The first final status stored. A different final status later (delivered, then
    # undelivered) is a conflict: kept in the audit trail, flagged here for reconciliation.
    final_status: Mapped[str | None] = mapped_column(String(32))
    needs_reconcile: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )
    reconcile_flagged_at: Mapped[datetime | None] = mapped_column(UtcTime)
    # Callbacks stored for the message, duplicates included, and a bit per status they carried
    # (shared/statuses.py STATUS_BITS): their difference is the duplicates, for the report.
    # Counted from migration 0007 on.
    callback_count: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    statuses_seen: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default=text("0")
    )
    # When reconciliation last fetched the message from Twilio, and whether that fetch, not a
    # callback, brought its final status (the report's callback-loss rate).
    reconciled_at: Mapped[datetime | None] = mapped_column(UtcTime)
    settled_by_reconcile: Mapped[bool] = mapped_column(
        Boolean, nullable=False, default=False, server_default=false()
    )

    __table_args__ = (
        Index("ix_messages_status_created_at", "status", "created_at"),
        Index("ix_messages_created_at", "created_at"),
        Index(
            "ix_messages_needs_reconcile",
            "needs_reconcile",
            postgresql_where=needs_reconcile.is_(True),
            sqlite_where=needs_reconcile.is_(True),
        ),
    )


class MessageEvent(Base):
    """Audit trail: one row per (message, status), however many times Twilio sent it.

    The (message, status) pair is the key: no surrogate id and no time index. Each index is
    paid on every audit insert, the table's largest cost on the drain benchmark, and the pair
    is what every read asks for (a message's events). Migration 0005 removed both."""

    __tablename__ = "message_events"

    # No foreign key to messages: store_batch writes both in one transaction, and the per-row
    # check cost 40% of the audit insert on the drain benchmark.
    message_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    idempotency_token: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False)
    processed_at: Mapped[datetime] = mapped_column(
        UtcTime, nullable=False, server_default=func.now()
    )
    duplicate_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # The callback's form as Twilio sent it (POST body or GET query), not re-encoded: exact
    # evidence for an audit, and no JSON to build or parse on the drain's hot path.
    raw: Mapped[str] = mapped_column(Text, nullable=False)
    url_query: Mapped[str | None] = mapped_column(Text)
    # Who told us: `callback`, or `reconcile` when a fetch from Twilio's API brought the status
    # (its callback was lost). The drain never writes it: the default is its value.
    source: Mapped[str] = mapped_column(
        String(16), nullable=False, default="callback", server_default=text("'callback'")
    )


class CallbackReceipt(Base):
    """Spans of stream ids already stored, one row per batch read: a redelivered entry (its worker
    died between commit and XACK) falls inside a span and is not counted twice.

    On PostgreSQL an exclusion constraint (migration 0004) keeps spans disjoint, so a worker that
    takes over entries a slow but live worker is still storing waits for that commit and then
    skips them, instead of storing them twice."""

    __tablename__ = "callback_receipts"

    # A stream id is "<ms>-<seq>"; spans compare as (ms, seq) pairs.
    first_ms: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    first_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_ms: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    processed_at: Mapped[datetime] = mapped_column(
        UtcTime, nullable=False, server_default=func.now(), index=True
    )


class DeadLetter(Base):
    """A stream entry that could not become an event, kept with the reason."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    stream_id: Mapped[str] = mapped_column(String(41), nullable=False, unique=True)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    entry: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False, server_default=func.now())


class OutboundMessage(Base):
    """A message statuspipe asked Twilio to send, stored before the REST call.

    The row exists first so that its id can travel in the StatusCallback URL: a callback that
    arrives before `create` returned is still matched to it. A resend is a new row with
    `original_id` pointing at the first send of the chain and `attempt` counting from 1."""

    __tablename__ = "outbound_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sid: Mapped[str | None] = mapped_column(String(34), unique=True)
    to: Mapped[str] = mapped_column(Text, nullable=False)
    from_: Mapped[str | None] = mapped_column("from", Text)
    messaging_service_sid: Mapped[str | None] = mapped_column(Text)
    # NULL for a message statuspipe did not compose (never the case here) or media only.
    body: Mapped[str | None] = mapped_column(Text)
    media_urls: Mapped[list[str]] = mapped_column(JsonDoc, nullable=False, default=list)
    attempt: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=1)
    original_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("outbound_messages.id"), index=True
    )
    # pending: stored, create not answered yet; created: Twilio answered 2xx; rejected: Twilio
    # answered an error; unknown: the call timed out, so Twilio may or may not have it.
    send_state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    initial_status: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False, server_default=func.now())


class Action(Base):
    """What statuspipe decided to do about one failed message: an outbox row.

    Written in the transaction that stores the failure, keyed by the message, so duplicate and
    concurrent callbacks can only ever produce one; carried out later by the `actions` role."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_sid: Mapped[str] = mapped_column(String(34), nullable=False, unique=True)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    error_code: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)  # retry | alert | contact_update
    contact_state: Mapped[str | None] = mapped_column(String(16))
    # pending -> sending (a resend's create is in flight) -> done
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    outcome: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    resend_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("outbound_messages.id"))
    due_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False)
    runs: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False, server_default=func.now())

    __table_args__ = (
        # The sweeper's question: what is not done and due. Done rows are the vast majority.
        Index(
            "ix_actions_open_due_at",
            "due_at",
            postgresql_where=text("state <> 'done'"),
            sqlite_where=text("state <> 'done'"),
        ),
    )


class Contact(Base):
    """A recipient whose number has a known problem (opted out, landline, invalid, ...)."""

    __tablename__ = "contacts"

    number: Mapped[str] = mapped_column(Text, primary_key=True)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    reason_code: Mapped[int | None] = mapped_column(Integer)
    source_sid: Mapped[str | None] = mapped_column(String(34))
    updated_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False)


class AlertGroup(Base):
    """One alert: every failure of one kind and code within one window, posted once."""

    __tablename__ = "alert_groups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    # 0 when the alert is not about an error code: NULLs would never collide in the key.
    code: Mapped[int] = mapped_column(Integer, nullable=False)
    window_start: Mapped[datetime] = mapped_column(UtcTime, nullable=False)
    window_end: Mapped[datetime] = mapped_column(UtcTime, nullable=False)
    summary: Mapped[str] = mapped_column(Text, nullable=False)
    # Extra fields for the structured alert (a drop alert's rates, say).
    detail: Mapped[dict[str, Any]] = mapped_column(JsonDoc, nullable=False, default=dict)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="open")  # open | sent
    sinks_done: Mapped[list[str]] = mapped_column(JsonDoc, nullable=False, default=list)
    attempts: Mapped[int] = mapped_column(SmallInteger, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcTime)

    __table_args__ = (UniqueConstraint("kind", "code", "window_start"),)


class AlertMember(Base):
    """A message counted in an alert: distinct messages, never duplicate callbacks."""

    __tablename__ = "alert_members"

    group_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("alert_groups.id", ondelete="CASCADE"), primary_key=True
    )
    message_sid: Mapped[str] = mapped_column(String(34), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UtcTime, nullable=False, server_default=func.now())
