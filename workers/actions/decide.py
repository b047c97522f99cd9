"""Which stored failures call for an action, and which. Pure.

Only a message that ends `failed` or `undelivered` is acted on, and only once: the outbox row
is keyed by the message (workers/actions/outbox.py). Codes mapped to `none` (and failures
without a code) produce no row at all, so the common case costs the drain nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shared.error_codes import ActionKinds, ErrorCodeMap

FAILURE_STATUSES = frozenset({"failed", "undelivered"})


def plan_actions(
    failures: Iterable[tuple[str, str, int | None]], codes: ErrorCodeMap, now: datetime
) -> list[dict[str, Any]]:
    """Outbox rows for (message sid, status, error code) triples of newly stored events."""
    rows: dict[str, dict[str, Any]] = {}
    for sid, status, code in failures:
        if status not in FAILURE_STATUSES or sid in rows:
            continue
        action = codes.classify(code)
        if action.kind is ActionKinds.NONE:
            continue
        rows[sid] = {
            "message_sid": sid,
            "status": status,
            "error_code": code,
            "kind": str(action.kind),
            "contact_state": str(action.state) if action.state is not None else None,
            "state": "pending",
            "due_at": now,
            "runs": 0,
        }
    return [rows[sid] for sid in sorted(rows)]


def resend_delay(attempt: int, base_seconds: float, jitter: float) -> float:
    """Seconds between a failure and resend number `attempt` (2 = the first resend):
    exponential, `base x 2^(attempt-2)`, stretched by a jitter in [0, 1) so that a burst of
    failures does not come back as a burst of resends."""
    return base_seconds * (2 ** max(attempt - 2, 0)) * (1.0 + jitter)
