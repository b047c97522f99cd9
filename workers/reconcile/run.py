"""One reconciliation run: fetch the due messages one by one, each applied in its own short
transaction (a row lock held across a REST call would stall the drain).

Bounded (`limit` per run) and paced by `acquire` (the fleet-wide TWILIO_MAX_RPS limiter). A 429,
a 5xx or no answer stops the run: the messages left are due again at the next run. A message
Twilio does not know (404) or refuses to show (another 4xx) is marked fetched, so it waits
RECONCILE_AFTER_HOURS before it is tried again instead of blocking every run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from twilio.base.exceptions import TwilioException, TwilioRestException

from shared.db import session_scope
from shared.models import Message
from workers.reconcile.apply import Fetched, apply_fetched
from workers.reconcile.candidates import Policy, due

log = logging.getLogger(__name__)

Fetch = Callable[[str], Fetched]


@dataclass
class RunResult:
    due: int = 0  # messages picked for this run
    fetched: int = 0
    changed: list[str] = field(default_factory=list)  # sids whose status moved or was settled
    settled: int = 0  # of them, brought to their first final status (lost callbacks)
    unknown_to_twilio: int = 0
    stopped: str | None = None  # why the run ended before its last message

    def as_json(self) -> dict[str, object]:
        return {
            "due": self.due,
            "fetched": self.fetched,
            "changed": len(self.changed),
            "settled": self.settled,
            "unknown_to_twilio": self.unknown_to_twilio,
            "stopped": self.stopped,
        }


def twilio_fetch(client: object) -> Fetch:
    """Fetch one message through the official client (`client.messages(sid).fetch()`)."""

    def fetch(sid: str) -> Fetched:
        return Fetched.from_instance(client.messages(sid).fetch())  # type: ignore[attr-defined]

    return fetch


def _mark_fetched(session: Session, sid: str, now: datetime) -> None:
    m = Message.__table__.c
    session.execute(update(Message.__table__).where(m.sid == sid).values(reconciled_at=now))


def reconcile(
    sessions: sessionmaker[Session],
    fetch: Fetch,
    acquire: Callable[[], None],
    policy: Policy,
    limit: int,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunResult:
    result = RunResult()
    with session_scope(sessions) as session:
        sids = due(session, now(), policy, limit)
    result.due = len(sids)
    for sid in sids:
        acquire()
        try:
            fetched = fetch(sid)
        except TwilioRestException as exc:
            if exc.status == 429 or exc.status >= 500:
                result.stopped = f"Twilio answered {exc.status} (code {exc.code}) for {sid}"
                break
            log.warning("reconcile: Twilio answered %s for %s: %s", exc.status, sid, exc.msg)
            result.unknown_to_twilio += 1
            with session_scope(sessions) as session:
                _mark_fetched(session, sid, now())
            continue
        except (requests.RequestException, TwilioException) as exc:
            result.stopped = f"no answer from Twilio for {sid}: {exc}"
            break
        result.fetched += 1
        with session_scope(sessions) as session:
            applied = apply_fetched(session, fetched, now())
        if applied is not None and applied.changed:
            result.changed.append(sid)
            result.settled += applied.settled
            log.info("reconcile: %s %s -> %s", sid, applied.before, applied.after)
    if result.stopped:
        log.warning(
            "reconcile stopped after %d of %d messages: %s; the rest wait for the next run",
            result.fetched,
            result.due,
            result.stopped,
        )
    return result
