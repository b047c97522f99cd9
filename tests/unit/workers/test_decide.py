from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.error_codes import load_error_codes
from workers.actions.decide import plan_actions, resend_delay

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
CODES = load_error_codes(None, "alert")
SID = "SM" + "1" * 32


@pytest.mark.parametrize(
    ("status", "code", "kind", "state"),
    [
        ("undelivered", 30003, "retry", None),
        ("failed", 30007, "alert", None),
        ("undelivered", 21610, "contact_update", "opted_out"),
        ("undelivered", 30006, "contact_update", "landline"),
        ("failed", 99999, "alert", None),  # not in the map: the default
        ("delivered", 30003, None, None),  # not a failure
        ("sent", None, None, None),
        ("failed", None, None, None),  # no code: nothing to decide on
        ("undelivered", 30009, None, None),  # mapped to none
    ],
)
def test_one_failure(status, code, kind, state):
    rows = plan_actions([(SID, status, code)], CODES, NOW)
    if kind is None:
        assert rows == []
        return
    assert rows == [
        {"message_sid": SID, "status": status, "error_code": code, "kind": kind,
         "contact_state": state, "state": "pending", "due_at": NOW, "runs": 0}
    ]  # fmt: skip


def test_one_row_per_message_and_sorted():
    other = "SM" + "0" * 32
    rows = plan_actions(
        [(SID, "undelivered", 30003), (SID, "failed", 30007), (other, "failed", 30003)], CODES, NOW
    )
    assert [(r["message_sid"], r["kind"]) for r in rows] == [(other, "retry"), (SID, "retry")]


@pytest.mark.parametrize(
    ("attempt", "jitter", "seconds"),
    [(2, 0.0, 5.0), (2, 0.99, 9.95), (3, 0.0, 10.0), (4, 0.5, 30.0)],
)
def test_resend_delay_doubles_per_attempt(attempt, jitter, seconds):
    assert resend_delay(attempt, 5.0, jitter) == pytest.approx(seconds)
