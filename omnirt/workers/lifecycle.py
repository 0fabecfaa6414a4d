"""How a Celery worker becomes an OmniRT worker: a bootstep and a signal, no subclassing.

:func:`install` adds both to a Celery app; the app's owner (:mod:`omnirt.tasks.app`) passes in how to reach this
process's backplane and which queues can serve a model, so this package never imports the tasks above it.

* :class:`OmniRTStep` (a worker bootstep) runs in the main worker process before the pool starts. It publishes the
  node name and queues to the environment (``OMNIRT_WORKER_NODE``, ``OMNIRT_WORKER_QUEUES``), so pool children
  inherit them. For pools that run tasks in the main process (solo, threads) it starts the process services there.
* ``worker_process_init`` starts the process services in each prefork child, the process that runs tasks: models
  load there, never in the parent that forks.

The process services: the engine sized from the settings (:func:`omnirt.workers.engine.configure_process`, as in the
embedded server), a heartbeat (device, queues, loaded models, sessions, memory) that also runs the warm cache's idle
unload, the reaper, preloading of ``OMNIRT_PRELOAD`` models, and the session consumer (realtime sessions taken beside
the job slot, :class:`omnirt.workers.sessions.SessionConsumer`). They stop with the process (``worker_process_shutdown``
in a prefork child, the bootstep's ``stop`` otherwise).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery import bootsteps
from celery.signals import worker_process_init, worker_process_shutdown

from omnirt.settings import Settings

if TYPE_CHECKING:
    from omnirt.backplane import Backplane
    from omnirt.registry.spec import ModelSpec

log = logging.getLogger(__name__)

_services_started = threading.Event()
_heartbeat: Any = None
_session_consumer: Any = None


@dataclass(frozen=True)
class Wiring:
    """What a worker process needs from the layers above the workers, handed in by :func:`install`."""

    backplane: Callable[[], Backplane]  # this process's backplane, with the dispatcher its mode needs
    candidate_queues: Callable[[ModelSpec], list[str]]  # every queue that can serve a model


_wiring: Wiring | None = None


def node_name() -> str:
    return Settings.value("worker_node") or f"omnirt@{socket.gethostname()}"


def process_worker_id() -> str:
    return f"{node_name()}:{os.getpid()}"


def worker_queues() -> list[str]:
    return list(Settings.value("worker_queues"))


def worker_device() -> str:
    configured = Settings.value("worker_device")
    if configured:
        return configured
    devices = {name.rsplit(".", 1)[-1] for name in worker_queues() if name.startswith("omnirt.")}
    return devices.pop() if len(devices) == 1 else "auto"


def describe_process() -> dict[str, Any]:
    import psutil

    from omnirt.avatars.names import avatar_readiness
    from omnirt.avatars.scheduler import describe_schedulers
    from omnirt.workers.engine import get_default_engine
    from omnirt.workers.sessions import get_session_host

    assert _wiring is not None, "omnirt.workers.lifecycle.install was not called"
    engine = get_default_engine()
    queues = worker_queues()
    host = get_session_host()
    return {
        "node": node_name(),
        "pid": os.getpid(),
        "device": worker_device(),
        "queues": queues,
        "loaded_models": engine.loaded_models(),
        "avatar_models": avatar_readiness(queues, _wiring.candidate_queues, models_dir=engine.models_dir),
        "avatar_schedulers": describe_schedulers(),
        "sessions": {"active": len(host.active), "capacity": host.capacity, "by_model": host.by_model()},
        "memory": {"rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1), **engine.device_memory()},
    }


def start_process_services() -> None:
    """Start heartbeat, reaper, session consumer, preloading and idle unload in the process that runs jobs (once per
    process)."""
    global _heartbeat, _session_consumer
    if _services_started.is_set():
        return
    if _wiring is None:
        log.error("OmniRT worker services not started: omnirt.workers.lifecycle.install was not called")
        return
    _services_started.set()
    from omnirt.settings import unknown_variables
    from omnirt.workers.engine import configure_process, preload
    from omnirt.workers.heartbeat import Heartbeat
    from omnirt.workers.reaper import Reaper
    from omnirt.workers.sessions import SessionConsumer, get_session_host

    backplane = _wiring.backplane()
    settings = backplane.settings
    for warning in unknown_variables():
        log.warning(warning)
    engine = configure_process(settings)
    _heartbeat = Heartbeat(
        backplane.workers,
        process_worker_id(),
        describe_process,
        interval_s=settings.heartbeat_interval_s,
        ttl_s=settings.heartbeat_ttl_s,
        on_beat=(engine.cache.sweep,),
    ).start()
    Reaper(backplane).start()
    preload(engine, settings.preload, device=worker_device())
    if not settings.embedded:  # after preloading: a warm worker takes the sessions offered meanwhile
        _session_consumer = SessionConsumer(
            get_session_host(),
            backplane=backplane,
            engine=engine,
            worker_id=process_worker_id(),
            queues=worker_queues(),
        ).start()
    _heartbeat.beat_once()


@worker_process_init.connect
def _on_child_start(**_: Any) -> None:
    start_process_services()


def stop_process_services() -> None:
    """Stop taking sessions, then stop the heartbeat (sessions already running end with the process)."""
    if _session_consumer is not None:
        _session_consumer.stop()
    if _heartbeat is not None:
        _heartbeat.stop()


@worker_process_shutdown.connect
def _on_child_stop(**_: Any) -> None:
    stop_process_services()


class OmniRTStep(bootsteps.StartStopStep):
    """Publishes the worker's identity to its children; starts process services for in-process pools."""

    label = "OmniRT"

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        queues = sorted(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
        os.environ.update(Settings.as_environment({"worker_node": worker.hostname, "worker_queues": queues}))
        pool = worker.pool_cls if isinstance(worker.pool_cls, str) else getattr(worker.pool_cls, "__module__", "")
        self.in_process = "prefork" not in str(pool)

    def start(self, worker: Any) -> None:
        if self.in_process:
            start_process_services()

    def stop(self, worker: Any) -> None:
        if self.in_process:
            stop_process_services()


def install(
    app: Any, *, backplane: Callable[[], Backplane], candidate_queues: Callable[[ModelSpec], list[str]]
) -> None:
    """Make ``app``'s workers OmniRT workers: the bootstep, and the process services started in each process that
    runs jobs, which reach this process's backplane through ``backplane()``."""
    global _wiring
    _wiring = Wiring(backplane=backplane, candidate_queues=candidate_queues)
    app.steps["worker"].add(OmniRTStep)
