"""``omnirt.session``: kept only for rolling upgrades; sessions are no longer Celery tasks.

A front end offers a new session on its queue's session list, which every worker process takes from beside its job
slot (:class:`omnirt.workers.sessions.SessionConsumer`), so sessions never wait behind jobs and Flower does not list
them (a worker's heartbeat counts its sessions, ``GET /v1/workers``). A front end from before that change still sends
this task; the task moves the session onto the list of the queue it came from, where a consumer takes it (it still
waited for the job slot to get here, as it always did). It acknowledges early and never re-runs.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from omnirt.tasks.dispatch import get_backplane


@shared_task(name="omnirt.session", bind=True, acks_late=False, ignore_result=True)
def start_session(self: Any, session_id: str, model: str | None = None) -> str:
    queue_name = (self.request.delivery_info or {}).get("routing_key")
    sessions = get_backplane().sessions
    record = sessions.record(session_id)
    if not queue_name or record is None or record.get("state") != "pending":
        return "dropped"
    sessions.offer(session_id, queue_name)  # type: ignore[attr-defined] - Redis session channels in a worker
    return "offered"
