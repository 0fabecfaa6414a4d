"""``omnirt.generate``: the one task. Its argument is a job id; the request lives in the job store.

``model`` and ``task`` ride along only so that Flower shows what each task is.
"""

from __future__ import annotations

from celery import shared_task

from omnirt.tasks.dispatch import get_backplane
from omnirt.workers.engine import get_default_engine
from omnirt.workers.executor import execute_job
from omnirt.workers.lifecycle import process_worker_id


@shared_task(name="omnirt.generate", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def generate(job_id: str, model: str | None = None, task: str | None = None) -> str | None:
    state = execute_job(job_id, backplane=get_backplane(), engine=get_default_engine(), worker_id=process_worker_id())
    return state.value if state else None
