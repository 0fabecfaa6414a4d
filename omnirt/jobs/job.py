"""The job record and its explicit states.

``queued -> running -> succeeded | failed | cancelled``; a job whose worker died goes back to ``queued`` once
(``requeued`` event) and then runs again, or ends ``failed``. Queued and running are always distinguishable.
"""

from __future__ import annotations

import enum
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


def now_ms() -> int:
    return int(time.time() * 1000)


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Job:
    id: str
    state: JobState
    model: str
    task: str
    backend: str
    queue: str
    request: dict[str, Any]
    trace_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    #: the W3C traceparent of the submit's span (tracing on): where the worker's job span continues the trace.
    traceparent: str | None = None
    attempts: int = 0
    worker_id: str | None = None
    enqueued_at_ms: int = field(default_factory=now_ms)
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    cancel_requested: bool = False
    idempotency_key: str | None = None
    fingerprint: str | None = None
    #: set when the job may run in one call with compatible queued jobs (:mod:`omnirt.jobs.batching`)
    batch_key: str | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    def to_dict(self) -> dict[str, Any]:
        """A shallow dict (nested values are shared, not copied: callers serialise it right away)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["state"] = self.state.value
        return data

    # Redis hash encoding: every value a string; JSON for the structured fields.
    _JSON_FIELDS = ("request", "result", "error")
    _INT_FIELDS = ("attempts", "enqueued_at_ms", "started_at_ms", "finished_at_ms")

    def to_hash(self) -> dict[str, str]:
        encoded: dict[str, str] = {}
        for key, value in self.to_dict().items():
            if value is None:
                continue
            if key in self._JSON_FIELDS:
                encoded[key] = json.dumps(value)
            elif isinstance(value, bool):
                encoded[key] = "1" if value else "0"
            else:
                encoded[key] = str(value)
        return encoded

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> Job:
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name not in raw:
                continue
            text = raw[name]
            if name in cls._JSON_FIELDS:
                values[name] = json.loads(text)
            elif name in cls._INT_FIELDS:
                values[name] = int(text)
            elif name == "cancel_requested":
                values[name] = text == "1"
            elif name == "state":
                values[name] = JobState(text)
            else:
                values[name] = text
        return cls(**values)
