"""The baseline for ``omnirt bench dispatch``: a bare Celery app on the same Redis with one trivial task.

Same delivery settings as OmniRT's app (late ack, prefetch 1), plus a Redis result backend so that
``apply_async(...).get()`` measures the raw round trip.
"""

from __future__ import annotations

from celery import Celery

from omnirt.settings import Settings

_URL = Settings.value("redis_url") or "redis://127.0.0.1:6379/15"

app = Celery("omnirt_bench_raw", broker=_URL, backend=_URL)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    result_expires=600,
)

RAW_QUEUE = "omnirt.bench.raw"


@app.task(name="omnirt.bench.echo")
def echo(value: int) -> int:
    return value
