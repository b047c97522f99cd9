"""SIGTERM to the actions worker while a resend is in flight (Twilio has not answered the
create yet): Celery's warm shutdown lets the resend finish and record itself, the worker exits
within 30 s, and no second message is ever sent, by it or by the worker that replaces it."""

from __future__ import annotations

import signal

import pytest

# The stack of the actions tests: gunicorn, drain, actions worker, the fake Twilio REST API.
from tests.integration.workers.test_actions import (  # noqa: F401 - fixtures
    Stack,
    actions_env,
    alerts,
    fake,
    settle,
    stack,
)
from tests.waiting import wait_for

STOP_WITHIN_SECONDS = 30


@pytest.fixture
def env(pg_url, redis_base_url, redis_client, db, fake, alerts) -> dict[str, str]:  # noqa: F811
    # A REST timeout longer than the create's delay: the resend in flight succeeds.
    return actions_env(pg_url, redis_base_url, fake, alerts, TWILIO_TIMEOUT="10")


def test_sigterm_mid_resend_lets_it_finish_and_nothing_is_sent_twice(stack: Stack):  # noqa: F811
    first = stack.send()["sid"]
    stack.fake.hang_next_creates(3)
    stack.fake.send_status(first, "undelivered", 30003)
    # The fake created the message and holds its answer for 3 s: the resend is in flight.
    wait_for(lambda: len(stack.create_requests()) == 2, timeout=60, what="the resend in flight")

    actions = stack.actions
    actions.proc.send_signal(signal.SIGTERM)
    assert actions.proc.wait(timeout=STOP_WITHIN_SECONDS) == 0, actions.output()[-3000:]
    # The warm shutdown waited for the create: recorded sent, with the sid Twilio gave it.
    assert stack.outcomes(first) == ["sent"]
    assert stack.message(first)["retries"] == [stack.creates()[1].sid]

    # The replacement's sweeper finds nothing to redo.
    stack.start_actions()
    settle(3)
    assert len(stack.create_requests()) == 2
    assert len(stack.creates()) == 2
    assert stack.outcomes(first) == ["sent"]
