"""``omnirt.session``: start a realtime avatar session on this worker, if it has room.

The task only hands the lease to the process's session host and returns; the session then runs in its own thread. A
worker at capacity (its session slots, or the measured frames per second of the model) puts the task back (after a
short pause) so that another worker can take it; the front end answers ``no_capacity`` when no worker admits the
session within its deadline. Sessions are never re-run, so the task acknowledges early.
"""

from __future__ import annotations

import json
import time

from celery import shared_task
from celery.exceptions import Reject

from omnirt.avatars.names import READY, local_readiness
from omnirt.backplane import get_backplane
from omnirt.registry.registry import get_model
from omnirt.runtime.engine import get_default_engine
from omnirt.workers.lifecycle import process_worker_id
from omnirt.workers.sessions import get_session_host


@shared_task(name="omnirt.session", acks_late=False, ignore_result=True)
def start_session(session_id: str, model: str | None = None) -> str:
    backplane = get_backplane()
    record = backplane.sessions.record(session_id)
    if record is None or record.get("state") != "pending":
        return "dropped"
    spec = json.loads(record.get("spec") or "{}")
    if local_readiness(get_model(spec.get("model", ""), "audio2video")) != READY:
        time.sleep(0.2)  # this worker cannot load the model: leave the session to one that can
        raise Reject("model cannot run on this worker", requeue=True)
    if get_session_host().try_start(
        session_id,
        backplane=backplane,
        engine=get_default_engine(),
        worker_id=process_worker_id(),
        model=spec.get("model", ""),
        fps=float(spec.get("fps", 25)),
    ):
        return "started"
    time.sleep(0.2)
    raise Reject("session host at capacity", requeue=True)
