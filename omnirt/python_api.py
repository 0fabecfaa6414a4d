"""The Python API: ``generate``, ``validate``, ``pipeline``, ``list_available_models``, ``describe_model``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omnirt.contracts.schemas import load_request
from omnirt.contracts.types import GenerateRequest, GenerateResult
from omnirt.models.base import CancelCheck, EventSink
from omnirt.registry.registry import get_model
from omnirt.registry.spec import ModelSpec
from omnirt.registry.validation import ValidationResult, validate_request

RequestLike = GenerateRequest | dict[str, Any] | str | Path


def as_request(request: RequestLike) -> GenerateRequest:
    """Accept a request object, a dict, or the path of a JSON/YAML request file."""
    if isinstance(request, GenerateRequest):
        return request
    if isinstance(request, dict):
        return load_request(request)
    if isinstance(request, (str, Path)):
        return GenerateRequest.from_file(request)
    return load_request(
        {
            key: getattr(request, key)
            for key in ("task", "model", "backend", "inputs", "config", "adapters")
            if hasattr(request, key)
        }
    )


def generate(
    request: RequestLike,
    *,
    backend: str | None = None,
    on_event: EventSink | None = None,
    should_cancel: CancelCheck | None = None,
) -> GenerateResult:
    """Validate and run ``request`` in this process. Raises :class:`RequestValidationError` on a bad request."""
    from omnirt.workers.engine import get_default_engine

    return get_default_engine().run(
        as_request(request), backend=backend, on_event=on_event, should_cancel=should_cancel
    )


def validate(request: RequestLike, *, backend: str | None = None) -> ValidationResult:
    return validate_request(as_request(request), backend=backend)


def describe_model(model_id: str, *, task: str | None = None) -> ModelSpec:
    return get_model(model_id, task)


class ModelPipeline:
    """``omnirt.pipeline("sd15")(prompt=..., num_inference_steps=2)``: keywords split into inputs and config."""

    def __init__(self, model: str, *, task: str | None = None, backend: str | None = None) -> None:
        self.spec = get_model(model, task)
        self.backend = backend

    def build_request(self, **kwargs: Any) -> GenerateRequest:
        caps = self.spec.capabilities
        inputs_allowed = set(caps.required_inputs) | set(caps.optional_inputs)
        config_allowed = set(caps.supported_config) | {"preset"}
        inputs = {key: value for key, value in kwargs.items() if key in inputs_allowed}
        config = {key: value for key, value in kwargs.items() if key in config_allowed and key not in inputs}
        unknown = sorted(set(kwargs) - set(inputs) - set(config) - {"adapters"})
        if unknown:
            raise ValueError(
                f"Unknown pipeline call arguments for {self.spec.id}: {', '.join(unknown)}. "
                f"Inputs: {', '.join(sorted(inputs_allowed))}. Config: {', '.join(sorted(config_allowed))}."
            )
        return GenerateRequest(
            task=self.spec.task,
            model=self.spec.id,
            backend=self.backend or "auto",
            inputs=inputs,
            config=config,
            adapters=kwargs.get("adapters"),
        )

    def validate(self, **kwargs: Any) -> ValidationResult:
        return validate(self.build_request(**kwargs), backend=self.backend)

    def __call__(self, **kwargs: Any) -> GenerateResult:
        return generate(self.build_request(**kwargs), backend=self.backend)


def pipeline(model: str, *, task: str | None = None, backend: str | None = None) -> ModelPipeline:
    """A callable for one model; raises :class:`ModelNotRegisteredError` for an unknown id."""
    return ModelPipeline(model, task=task, backend=backend)
