"""Acting on failures: the path of one failed message to its resend, alert or contact update.

1. `decide.py`    which failures call for an action (pure: error-code map + status)
2. `outbox.py`    the action rows, written in the drain's transaction with the failure itself
3. `dispatch.py`  after that commit, one Celery message per batch to the `actions` queue
4. `tasks.py`     the Celery tasks the `actions` role runs (thin shells)
5. `perform.py`   one action, exactly once: lock the row, then
   `resend.py`    (retry) a new send through the official twilio client, `settle.py` when its
                  answer never came; `contacts.py` (contact_update); `workers/alerts/` (alert)
6. `sweeper.py`   actions and alerts left behind by a dead worker are dispatched again
"""
