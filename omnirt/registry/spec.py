"""What the registry knows about a model: ``ModelSpec`` (identity, loading) and ``ModelCapabilities`` (contract)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Tier(enum.StrEnum):
    CORE = "core"
    ADJACENT = "adjacent"
    EXPERIMENTAL = "experimental"


class Maturity(enum.StrEnum):
    STABLE = "stable"
    BETA = "beta"
    EXPERIMENTAL = "experimental"


TIERS = tuple(tier.value for tier in Tier)

# Primary task when a model id is asked for without a task.
TASK_PRIORITY = (
    "text2image",
    "image2image",
    "inpaint",
    "edit",
    "depth2image",
    "text2video",
    "image2video",
    "audio2video",
    "text2audio",
    "audio2text",
    "avatar_prepare",
)


@dataclass(frozen=True)
class ModelCapabilities:
    required_inputs: tuple[str, ...] = ()
    optional_inputs: tuple[str, ...] = ()
    supported_config: tuple[str, ...] = ()
    default_config: dict[str, Any] = field(default_factory=dict)
    supported_schedulers: tuple[str, ...] = ()
    adapter_kinds: tuple[str, ...] = ()
    artifact_kind: str = ""
    maturity: str = Maturity.EXPERIMENTAL.value
    summary: str = ""
    example: str = ""
    alias_of: str | None = None
    supports_batching: bool = True
    domain: str = "digital-human"
    chain_role: str = ""
    realtime: bool = False
    tier: str = Tier.EXPERIMENTAL.value
    streaming: bool = False
    resident: bool = False
    service_adapter: str = ""
    backend_status: dict[str, str] = field(default_factory=dict)
    queue: str | None = None
    prepared_avatars: bool = False  # realtime avatar models that render prepared avatars from the avatar store
    #: config key -> the values this model accepts for it (checked before a job exists; types compared strictly)
    config_choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """One (model id, task) entry. ``pipeline_cls`` runs it; ``hub_id`` is where its weights live upstream."""

    id: str
    task: str
    pipeline_cls: type
    capabilities: ModelCapabilities
    hub_id: str | None = None
    default_backend: str = "auto"
    resource_hint: dict[str, Any] = field(default_factory=dict)
    execution_mode: str = "legacy_call"
    weightless: bool = False  # runs without a weights folder (service clients, the dispatch benchmark model)
    # The models-dir folder of a task whose weights differ from the id's other tasks (sd21's depth2image: sd21-depth).
    weights_folder: str | None = None

    @property
    def tier(self) -> str:
        return self.capabilities.tier

    @property
    def is_alias(self) -> bool:
        return self.capabilities.alias_of is not None

    @property
    def canonical_id(self) -> str:
        return self.capabilities.alias_of or self.id

    @property
    def weights_name(self) -> str:
        """The name its weights go by: the models-dir folder, the tiny builder's key, the warm-cache key."""
        return self.weights_folder or self.canonical_id

    @property
    def status(self) -> str:
        visibility = "public" if self.tier in (Tier.CORE.value, Tier.ADJACENT.value) else "preview"
        return f"{visibility}/{self.capabilities.maturity}"
