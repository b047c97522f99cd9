"""Replay dead letters through the store, after a fix or a migration made them storable.

Each dead letter is replayed in a transaction of its own, holding its row locked: it is parsed
as the drain parses a stream entry, stored with `store_batch`, and deleted in the same
transaction, so it is stored exactly once or stays. Its receipt is the span `0-<id>`, which no
stream id can take (Redis ids start at the epoch's milliseconds): a second replay of the same
letter, in a race or after a crash, finds the receipt and counts nothing. A callback whose
(sid, status) is stored already counts as one more duplicate, as it would have in the drain.
What still fails stays, with the new reason.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shared import stream
from shared.callback import MalformedCallback, from_entry
from shared.db import session_scope
from shared.models import DeadLetter, MessageEvent
from workers.drain.errors import is_data_error
from workers.store.batch import PlanActions, store_batch

log = logging.getLogger(__name__)

# Dead letters keep the entry as JSON text, with NUL characters written as \x00 (PostgreSQL's
# JSONB refuses them): such an entry is no longer the bytes received, and is not replayed.
_ESCAPED_NUL = "\\x00"
STORED = "stored"
DUPLICATE = "duplicate"


@dataclass(slots=True)
class ReplayResult:
    stored: list[int] = field(default_factory=list)  # dead letter ids now stored
    duplicates: list[int] = field(default_factory=list)  # of which the pair was stored already
    failed: dict[int, str] = field(default_factory=dict)  # id -> the new reason
    not_found: list[int] = field(default_factory=list)


def stream_entry(letter: DeadLetter) -> dict[bytes, bytes]:
    """The dead letter as the stream entry the drain read, from what the drain kept of it."""
    entry: dict[str, Any] = letter.entry or {}
    if "form" in entry:
        # A row the database refused: the drain kept the form, the URL query and the receive
        # time (before that, its stream id, Redis's clock, tells when it came).
        received = entry.get("r") or repr(int(letter.stream_id.partition("-")[0]) / 1000)
        fields = {
            stream.F_BODY: str(entry["form"]).encode(),
            stream.F_RECEIVED: str(received).encode(),
        }
        if entry.get("query"):
            fields[stream.F_QUERY] = str(entry["query"]).encode()
        return fields
    return {str(k).encode(): str(v).encode() for k, v in entry.items()}


def select_ids(session: Session, ids: Iterable[int] = (), reason: str | None = None) -> list[int]:
    """Ids of the dead letters named, or whose reason contains `reason`, or all; oldest first."""
    query = select(DeadLetter.id).order_by(DeadLetter.id)
    ids = list(ids)
    if ids:
        query = query.where(DeadLetter.id.in_(ids))
    if reason is not None:
        query = query.where(DeadLetter.reason.contains(reason, autoescape=True))
    return list(session.scalars(query))


def _replay_one(session: Session, letter_id: int, plan_actions: PlanActions | None) -> str:
    """STORED, DUPLICATE (its pair was stored already: one more duplicate), or the reason it
    still cannot be stored (the caller rolls back)."""
    letter = session.get(DeadLetter, letter_id, with_for_update=True)
    if letter is None:
        raise LookupError(letter_id)
    entry = stream_entry(letter)
    if any(_ESCAPED_NUL in v.decode("utf-8", "replace") for v in entry.values()):
        return "contains NUL characters (kept escaped as \\x00), which PostgreSQL cannot store"
    try:
        callback = from_entry(f"0-{letter.id}", entry)
    except MalformedCallback as exc:
        return str(exc)
    stored_before = session.get(MessageEvent, (callback.message_sid, callback.status))
    # The receipt 0-<id> cannot exist while the letter does (both change in one transaction),
    # so this stores it; store_batch is still the one place that decides.
    store_batch(session, [callback], plan_actions=plan_actions)
    session.delete(letter)
    return DUPLICATE if stored_before is not None else STORED


def replay(
    sessions: sessionmaker[Session], ids: Iterable[int], plan_actions: PlanActions | None = None
) -> ReplayResult:
    """Replay these dead letters, each alone (one that fails never holds back the others)."""
    result = ReplayResult()
    for letter_id in ids:
        try:
            with session_scope(sessions) as session:
                outcome = _replay_one(session, letter_id, plan_actions)
                if outcome not in (STORED, DUPLICATE):
                    session.rollback()
        except LookupError:
            result.not_found.append(letter_id)
            continue
        except sa_exc.SQLAlchemyError as exc:
            if not is_data_error(exc):
                raise  # about the database, not the row: stop; nothing is half done
            orig = getattr(exc, "orig", None) or exc
            outcome = f"database refused it: {str(orig).strip().splitlines()[0]}"
        if outcome in (STORED, DUPLICATE):
            result.stored.append(letter_id)
            if outcome == DUPLICATE:
                result.duplicates.append(letter_id)
            continue
        _keep(sessions, letter_id, outcome)
        result.failed[letter_id] = outcome
        log.warning("dead letter %d still cannot be stored: %s", letter_id, outcome)
    return result


def _keep(sessions: sessionmaker[Session], letter_id: int, reason: str) -> None:
    with session_scope(sessions) as session:
        letter = session.get(DeadLetter, letter_id)
        if letter is not None:
            letter.reason = reason
