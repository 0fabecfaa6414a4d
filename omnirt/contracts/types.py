"""The data OmniRT passes between its doors: requests, artifacts, run reports, stage events.

Plain dataclasses with ``to_dict``/``from_dict``; :mod:`omnirt.contracts.schemas` holds the marshmallow schemas that
validate them at every boundary. Field names follow the earlier OmniRT so that existing clients parse them.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = "1.0.0"


class TaskName(enum.StrEnum):
    TEXT2IMAGE = "text2image"
    IMAGE2IMAGE = "image2image"
    INPAINT = "inpaint"
    EDIT = "edit"
    DEPTH2IMAGE = "depth2image"
    TEXT2VIDEO = "text2video"
    IMAGE2VIDEO = "image2video"
    AUDIO2VIDEO = "audio2video"
    TEXT2AUDIO = "text2audio"
    AUDIO2TEXT = "audio2text"
    AVATAR_PREPARE = "avatar_prepare"


class BackendName(enum.StrEnum):
    AUTO = "auto"
    CUDA = "cuda"
    ASCEND = "ascend"
    CPU = "cpu"


class ArtifactKind(enum.StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    TEXT = "text"


class ExecutionMode(enum.StrEnum):
    MODULAR = "modular"
    LEGACY_CALL = "legacy_call"
    SUBPROCESS = "subprocess"
    PERSISTENT_WORKER = "persistent_worker"


TASKS = tuple(task.value for task in TaskName)
BACKENDS = tuple(backend.value for backend in BackendName)


@dataclass
class AdapterRef:
    """A weight adapter to apply on load: ``path`` is a local file or folder, or ``hf://org/repo/file``."""

    kind: str
    path: str
    scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GenerateRequest:
    task: str
    model: str
    backend: str = BackendName.AUTO.value
    inputs: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    adapters: list[AdapterRef] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "backend": self.backend,
            "inputs": dict(self.inputs),
            "config": dict(self.config),
            "adapters": None if self.adapters is None else [adapter.to_dict() for adapter in self.adapters],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerateRequest:
        from omnirt.contracts.schemas import GenerateRequestSchema

        return GenerateRequestSchema().load(data)

    @classmethod
    def from_file(cls, path: str | Path) -> GenerateRequest:
        """Load a request from a ``.json``, ``.yaml`` or ``.yml`` file."""
        path = Path(path)
        text = path.read_text()
        if path.suffix.lower() in {".yaml", ".yml"}:
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            from omnirt.contracts.errors import RequestValidationError

            raise RequestValidationError(f"Request file {path} must hold a mapping, got {type(data).__name__}.")
        return cls.from_dict(data)


@dataclass
class Artifact:
    kind: str
    path: str
    mime: str
    width: int | None = None
    height: int | None = None
    num_frames: int | None = None
    fps: float | None = None
    duration_s: float | None = None
    sample_rate: int | None = None
    sha256: str | None = None
    bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Artifact:
        from omnirt.contracts.schemas import ArtifactSchema

        return ArtifactSchema().load(data)


@dataclass
class StageEvent:
    event: str
    stage: str | None = None
    timestamp_ms: int = 0
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunReport:
    """Everything measured about one run. ``timings`` keys are ``<stage>_ms``."""

    task: str
    model: str
    backend: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    job_id: str | None = None
    trace_id: str | None = None
    device: str | None = None
    execution_mode: str = ExecutionMode.LEGACY_CALL.value
    timings: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    backend_timeline: list[dict[str, Any]] = field(default_factory=list)
    config_resolved: dict[str, Any] = field(default_factory=dict)
    cache_hits: list[str] = field(default_factory=list)
    device_placement: dict[str, str] = field(default_factory=dict)
    batch_size: int = 1
    batch_group_id: str | None = None
    queue_wait_ms: float | None = None
    worker_id: str | None = None
    error: str | None = None
    events: list[StageEvent] = field(default_factory=list)
    schema_version: str = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["events"] = [event.to_dict() for event in self.events]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunReport:
        from omnirt.contracts.schemas import RunReportSchema

        return RunReportSchema().load(data)


@dataclass
class GenerateResult:
    outputs: list[Artifact]
    metadata: RunReport

    def to_dict(self) -> dict[str, Any]:
        return {"outputs": [artifact.to_dict() for artifact in self.outputs], "metadata": self.metadata.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerateResult:
        from omnirt.contracts.schemas import GenerateResultSchema

        return GenerateResultSchema().load(data)
