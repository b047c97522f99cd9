"""Hand actions to the `actions` queue once the transaction that wrote them has committed.

One Celery message per stored batch, whatever the number of actions in it: the drain's cost
stays one publish per batch with failures (`make bench`, drain with actions). A message lost
here (the worker died between commit and publish) is not a lost action: the sweeper finds the
row still pending and dispatches it again.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

ACTIONS_QUEUE = "actions"
PERFORM_ACTIONS = "statuspipe.perform_actions"
PERFORM_ACTION = "statuspipe.perform_action"
POST_ALERT = "statuspipe.post_alert"


def dispatch_actions(app: Celery, action_ids: Sequence[int]) -> None:
    if action_ids:
        app.send_task(PERFORM_ACTIONS, args=[list(action_ids)], queue=ACTIONS_QUEUE)
