"""What both worker roles' Celery apps share: the broker, at-least-once task settings, logging.

`workers/celery_app.py` is the drain role (`worker` in the Procfile), `workers/actions_app.py`
the actions role (`actions`). Each is the `-A` target of its own command.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging

from shared.config import Settings, load_settings
from shared.logs import configure_logging


def create_celery(settings: Settings, default_queue: str, include: list[str]) -> Celery:
    app = Celery("statuspipe", broker=settings.redis_url, include=include)
    app.conf.update(
        statuspipe_settings=settings,
        task_default_queue=default_queue,
        # A task is acknowledged once it ran, and given back if its worker dies meanwhile: every
        # task locks its row and checks its state first, so running one twice is harmless.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
    )
    return app


@setup_logging.connect
def _logging(**_: Any) -> None:
    configure_logging(load_settings(), "worker")
