"""The Celery app and its configuration (serving-practice section 1).

Late ack and prefetch 1 (a worker holds one job at a time), a visibility timeout above the longest job, task
events on (Flower), reject-on-worker-lost with the job store bounding re-runs, soft shutdown, and no result
backend: results and artifacts live in the job store and the artifact directory, never in Celery messages.
"""

from __future__ import annotations

import threading

from celery import Celery

from omnirt.settings import Settings

_APP: Celery | None = None
_LOCK = threading.Lock()


def make_celery(settings: Settings) -> Celery:
    app = Celery(
        "omnirt", broker=settings.redis_url or "memory://", include=["omnirt.tasks.generate", "omnirt.tasks.session"]
    )
    transport = {"visibility_timeout": settings.visibility_timeout_s}
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        task_ignore_result=True,
        result_backend=None,
        broker_transport_options=transport,
        visibility_timeout=settings.visibility_timeout_s,
        worker_send_task_events=True,  # Flower sees tasks from received/started/succeeded events
        task_send_sent_event=False,  # one publish per submit instead of two (see docs/benchmarks.md)
        worker_soft_shutdown_timeout=25.0,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_proc_alive_timeout=600.0,  # models may preload in the child before it reports ready
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        task_default_queue="omnirt.experimental.cpu",
        task_create_missing_queues=True,
        worker_max_tasks_per_child=None,
    )
    from omnirt.tasks.dispatch import get_backplane
    from omnirt.tasks.routing import candidate_queues
    from omnirt.tracing import install_celery_propagation
    from omnirt.workers.lifecycle import install

    install(app, backplane=get_backplane, candidate_queues=candidate_queues)
    install_celery_propagation()  # traceparent in task headers, a span per task, JSON logs (omnirt.tracing)
    return app


def get_celery_app() -> Celery:
    """This process's Celery app, configured from the environment on first use."""
    global _APP
    with _LOCK:
        if _APP is None:
            _APP = make_celery(Settings.from_env())
        return _APP
