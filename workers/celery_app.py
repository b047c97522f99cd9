"""The Celery app of the drain role: `celery -A workers.celery_app worker`.

Callbacks do not travel as one Celery task each: that caps the drain at about 1,300/s here.
Instead every worker process runs the stream drain loop (workers.drain) as a worker bootstep.
Scale by running more worker processes anywhere; they share the work through the Redis consumer
group. Failures that call for an action are handed to the `actions` role (workers/actions_app.py)
after each batch commits.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any, ClassVar

from celery import Celery, bootsteps, signals

from shared.bootstrap import error_code_map, worker_settings
from shared.config import Settings
from shared.db import make_engine, make_sessionmaker
from workers.actions.dispatch import dispatch_actions
from workers.actions.outbox import ActionPlanner
from workers.celery_base import create_celery
from workers.changes import ChangePublisher
from workers.drain import Drainer, redis_client

log = logging.getLogger(__name__)


class StreamDrainStep(bootsteps.StartStopStep):
    """Runs one Drainer in a thread of the worker's main process for the worker's lifetime."""

    requires: ClassVar = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.drainer: Drainer | None = None
        self.thread: threading.Thread | None = None

    def start(self, parent: Any) -> None:
        settings: Settings = parent.app.conf.statuspipe_settings
        client = redis_client(settings)
        sessions = make_sessionmaker(make_engine(settings))
        app: Celery = parent.app
        acting = settings.act_on_failures
        self.drainer = Drainer(
            settings,
            client,
            sessions,
            plan_actions=ActionPlanner(error_code_map(settings)) if acting else None,
            dispatch_actions=(lambda ids: dispatch_actions(app, ids)) if acting else None,
            publish_changes=ChangePublisher(settings, client).queue,
        )
        # Everything loaded so far lives as long as the process: keep the cyclic collector from
        # walking it again on every full collection. A batch allocates tens of thousands of
        # short-lived containers, which set collections off constantly.
        gc.freeze()
        # Before the drain starts, so that no SIGTERM finds it draining without being told.
        # Never disconnected: the step lasts as long as the process, and a disconnect holds the
        # signal's lock, which a second SIGTERM's dispatch would then wait on forever.
        signals.worker_shutting_down.connect(self._shutting_down, weak=False)
        self.thread = threading.Thread(target=self.drainer.run, name="stream-drain", daemon=True)
        self.thread.start()

    def _shutting_down(self, sig: str = "", how: str = "", **_: Any) -> None:
        """Stop taking batches the moment SIGTERM arrives. Celery stops this step only after it has
        wound down its own consumer; in that time the drain read on, once through a whole
        backlog of 20,000 callbacks, which a rollout means to leave to the new workers."""
        if self._stop_drain():
            log.info("%s: the drain finishes the batch in hand and stops", sig or how)

    def _stop_drain(self) -> bool:
        """Tell the drain to stop after the batch in hand; False when it was told already.
        is_set() first: set() takes the event's lock, which a second signal would otherwise
        wait on if it arrived while this thread held it."""
        if self.drainer is None or self.drainer.stop.is_set():
            return False
        self.drainer.stop.set()
        return True

    def stop(self, parent: Any) -> None:
        # SIGTERM has told the drain already, as a rule; it finishes the batch in hand (its
        # transaction commits and is acknowledged) first.
        self._stop_drain()
        if self.thread:
            self.thread.join(timeout=60)

    shutdown = stop


def create_app(settings: Settings) -> Celery:
    app = create_celery(settings, default_queue="status", include=[])
    app.steps["worker"].add(StreamDrainStep)
    return app


app = create_app(worker_settings())
