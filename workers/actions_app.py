"""The Celery app of the `actions` role: `celery -A workers.actions_app worker -Q actions`.

It runs the tasks of workers/actions/tasks.py (resends, contact updates, alerts) and the jobs
the `beat` role schedules (workers/schedule.py: drop check, reconciliation) from their own
queue, so that failures are acted on beside the drain, never on its hot path, and resends can be
throttled on their own. A sweeper thread re-dispatches what a dead worker left behind. Run one
or more anywhere; every task locks its row, so they never act twice.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

from celery import Celery, bootsteps

from shared.bootstrap import worker_settings
from shared.config import Settings
from workers.actions.dispatch import ACTIONS_QUEUE
from workers.actions.sweeper import sweep
from workers.celery_base import create_celery
from workers.schedule import BEAT_SCHEDULER, beat_schedule

log = logging.getLogger(__name__)

MAX_SWEEP_INTERVAL_SECONDS = 30.0


class SweeperStep(bootsteps.StartStopStep):
    """Sweeps for leftover actions and alerts in a thread for the worker's lifetime."""

    requires: ClassVar = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        app: Celery = parent.app
        self.thread = threading.Thread(target=self._run, args=(app,), name="sweeper", daemon=True)
        self.thread.start()

    def _run(self, app: Celery) -> None:
        from workers.actions.tasks import context, perform_action_task, post_alert_task

        settings: Settings = app.conf.statuspipe_settings
        interval = min(settings.action_stale_seconds / 2, MAX_SWEEP_INTERVAL_SECONDS)
        log.info("sweeping for left-behind actions every %.0fs", interval)
        while not self.stop_event.wait(interval):
            try:
                sweep(
                    context(settings),
                    lambda i: perform_action_task.apply_async((i,), queue=ACTIONS_QUEUE),
                    lambda g: post_alert_task.apply_async((g,), queue=ACTIONS_QUEUE),
                )
            except Exception:
                # The database or Redis is away: the next sweep tries again.
                log.exception("sweep failed; trying again in %.0fs", interval)

    def stop(self, parent: Any) -> None:
        self.stop_event.set()
        if self.thread:
            self.thread.join(timeout=10)

    shutdown = stop


def create_app(settings: Settings) -> Celery:
    app = create_celery(
        settings, default_queue=ACTIONS_QUEUE, include=["workers.actions.tasks", "workers.schedule"]
    )
    app.steps["worker"].add(SweeperStep)
    # Read by the `beat` role (`celery -A workers.actions_app beat`), which only enqueues.
    app.conf.beat_schedule = beat_schedule(settings)
    app.conf.beat_scheduler = BEAT_SCHEDULER
    return app


app = create_app(worker_settings())
