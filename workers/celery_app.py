"""The Celery app: `celery -A workers.celery_app worker`.

Callbacks do not travel as one Celery task each: that caps the drain at about 1,300/s here.
Instead every worker process runs the stream drain loop (workers.drain) as a worker bootstep,
beside the task pool that later jobs (resends, reconciliation) use. Scale by running more
worker processes anywhere; they share the work through the Redis consumer group.
"""

from __future__ import annotations

import gc
import logging
import threading
from typing import Any, ClassVar

from celery import Celery, bootsteps
from celery.signals import setup_logging

from shared.bootstrap import worker_settings
from shared.config import Settings, load_settings
from shared.db import make_engine, make_sessionmaker
from shared.logs import configure_logging
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
        self.drainer = Drainer(settings, client, sessions)
        # Everything loaded so far lives as long as the process: keep the cyclic collector from
        # walking it again on every full collection. A batch allocates tens of thousands of
        # short-lived containers, which set collections off constantly.
        gc.freeze()
        self.thread = threading.Thread(target=self.drainer.run, name="stream-drain", daemon=True)
        self.thread.start()

    def stop(self, parent: Any) -> None:
        if self.drainer and self.thread:
            # Finishes the batch in hand (its transaction commits and is acknowledged) first.
            self.drainer.stop.set()
            self.thread.join(timeout=60)

    shutdown = stop


def create_app(settings: Settings) -> Celery:
    app = Celery("statuspipe", broker=settings.redis_url, include=[])
    app.conf.update(
        statuspipe_settings=settings,
        task_default_queue="status",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
    )
    app.steps["worker"].add(StreamDrainStep)
    return app


@setup_logging.connect
def _logging(**_: Any) -> None:
    configure_logging(load_settings(), "worker")


app = create_app(worker_settings())
