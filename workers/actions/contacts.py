"""contact_update: remember what Twilio's error says about the recipient's number."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.models import Contact


def mark_contact(
    session: Session, number: str, state: str, reason_code: int | None, source_sid: str
) -> None:
    """Set the number's state (the latest failure wins: a number that opted out and later
    turned out invalid is invalid). Idempotent."""
    table = Contact.__table__
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    values = {
        "number": number,
        "state": state,
        "reason_code": reason_code,
        "source_sid": source_sid,
        "updated_at": datetime.now(UTC),
    }
    stmt = insert.values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["number"],
        set_={k: stmt.excluded[k] for k in ("state", "reason_code", "source_sid", "updated_at")},
    )
    session.execute(stmt)
