"""How work reaches workers, and the backplane each process uses.

* :class:`CeleryDispatcher` (fleet) sends ``omnirt.generate`` by name, carrying the job id only, and offers sessions
  on their queue's session list.
* :func:`connect` builds a backplane with the dispatcher its mode needs: Celery in a fleet, the in-process worker
  threads of :class:`omnirt.workers.embedded.EmbeddedDispatcher` embedded. The API builds its backplane here.
* :func:`get_backplane` is this process's backplane (worker processes and the Celery tasks they run), built on first
  use from the environment's settings.
"""

from __future__ import annotations

import threading
from typing import Any

from omnirt.backplane import Backplane
from omnirt.events.channels import RedisSessionChannels
from omnirt.jobs.job import Job
from omnirt.settings import Settings

HARD_LIMIT_GRACE_S = 30.0  # from a task's soft time limit to its hard one (the child process is ended)


class CeleryDispatcher:
    """Sends ``omnirt.generate`` by name (the API never imports the task code), carrying the job id only. Sessions
    are no Celery tasks: they are offered on the queue's session list, which every worker process takes from beside
    its job slot (:class:`omnirt.workers.sessions.SessionConsumer`), so they never wait behind jobs."""

    def __init__(
        self, celery_app: Any, limits: dict[str, float] | None = None, sessions: RedisSessionChannels | None = None
    ) -> None:
        self.celery = celery_app
        self.limits = dict(limits or {})
        self.sessions = sessions

    @staticmethod
    def task_id(job: Job) -> str:
        return f"{job.id}.{job.attempts}"

    def dispatch(self, job: Job) -> None:
        """Send the job's task, with soft and hard time limits from its model's ``time_limit_s``: the soft limit
        fails the job with ``timeout`` where it never reaches a step; the hard one, a little later, ends the child."""
        from omnirt.registry.limits import job_time_limit_s

        kwargs = {"model": job.model, "task": job.task}
        limit = job_time_limit_s(job.model, job.task, self.limits)
        self.celery.send_task(
            "omnirt.generate",
            args=[job.id],
            kwargs=kwargs,
            queue=job.queue,
            task_id=self.task_id(job),
            argsrepr=repr([job.id]),
            kwargsrepr=repr(kwargs),
            soft_time_limit=limit,
            time_limit=limit + HARD_LIMIT_GRACE_S,
        )

    def revoke(self, job: Job) -> None:
        self.celery.control.revoke(self.task_id(job))

    def start_session(self, session_id: str, model: str, queue_name: str) -> None:
        """Offer the pending session to the workers of ``queue_name``; the front end's admission deadline answers
        ``no_capacity`` when none takes it."""
        if self.sessions is None:
            raise RuntimeError("CeleryDispatcher needs the session channels to start sessions")
        self.sessions.offer(session_id, queue_name)


def connect(settings: Settings) -> Backplane:
    """A backplane for ``settings`` whose dispatcher sends work the way the mode needs (Celery, or worker threads in
    this process; embedded ones start on the first job or with ``backplane.dispatcher.start()``)."""
    if settings.embedded:
        from omnirt.tasks.routing import all_tier_queues
        from omnirt.workers.embedded import EmbeddedDispatcher

        return Backplane(
            settings, lambda plane: EmbeddedDispatcher(plane, settings.embedded_workers, queues=all_tier_queues())
        )
    from omnirt.tasks.app import make_celery

    return Backplane(settings, lambda plane: CeleryDispatcher(make_celery(settings), settings.limits, plane.sessions))


_BACKPLANE: Backplane | None = None
_LOCK = threading.Lock()


def get_backplane(settings: Settings | None = None) -> Backplane:
    """This process's backplane, built on first use from ``settings`` (default: the environment)."""
    global _BACKPLANE
    with _LOCK:
        if _BACKPLANE is None or (settings is not None and settings is not _BACKPLANE.settings):
            _BACKPLANE = connect(settings or Settings.from_env())
        return _BACKPLANE
