"""OmniRT's exception hierarchy. Each error carries a stable ``code`` that every door (Python, CLI, HTTP) reports."""

from __future__ import annotations

from typing import Any


class OmniRTError(RuntimeError):
    """Base class. ``code`` is stable and machine-readable; ``details`` is JSON-serialisable context."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class RequestValidationError(OmniRTError, ValueError):
    """The request is malformed or does not fit the model; ``details["issues"]`` lists every problem."""

    code = "invalid_request"
    http_status = 400


class ModelNotRegisteredError(OmniRTError, LookupError):
    code = "model_not_found"
    http_status = 404


class BackendUnavailableError(OmniRTError):
    code = "backend_unavailable"
    http_status = 503


class WeightsNotFoundError(OmniRTError):
    code = "weights_not_found"
    http_status = 503


class WeightFormatError(OmniRTError):
    code = "weight_format"
    http_status = 400


class WeightsInvalidError(OmniRTError):
    """A weights file that cannot be used: unreadable, not the expected network, mismatched tensors, or a pickle
    that would run code when loaded."""

    code = "weights_invalid"
    http_status = 400


class DependencyUnavailableError(OmniRTError):
    code = "dependency_unavailable"
    http_status = 503


class InsufficientMemoryError(OmniRTError):
    code = "insufficient_memory"
    http_status = 503

    def __init__(self, model: str, estimated_gb: float, available_gb: float, hint: str) -> None:
        super().__init__(
            f"Model '{model}' needs about {estimated_gb:.2f} GB but only {available_gb:.2f} GB is available. {hint}",
            details={"model": model, "estimated_gb": estimated_gb, "available_gb": available_gb, "hint": hint},
        )


class InvalidInputError(OmniRTError, ValueError):
    """What the client sent cannot be used: a degenerate or undecodable image, an empty or corrupt WAV, an adapter
    that is not a LoRA. Raised inside a job, it ends the job ``failed`` with a client-error code."""

    code = "invalid_input"
    http_status = 400


class JobTimeoutError(OmniRTError):
    """The job ran past its time limit (``time_limit_s``, :mod:`omnirt.registry.limits`) and was stopped."""

    code = "timeout"
    http_status = 504


class JobCancelledError(OmniRTError):
    """Raised at a step or chunk boundary when the job was asked to stop."""

    code = "cancelled"
    http_status = 409


class ModelNotEnabledError(OmniRTError):
    """The model is registered but this server's tier policy or model list does not enable it."""

    code = "model_not_enabled"
    http_status = 403


class TooManyQueuedError(OmniRTError):
    """Back-pressure: the queue already holds ``OMNIRT_MAX_QUEUED_JOBS`` jobs; the client should retry later."""

    code = "too_many_queued"
    http_status = 429
    retry_after_s = 5


class JobConflictError(OmniRTError):
    """A job id (idempotency key) already names a job with a different request."""

    code = "conflict"
    http_status = 409
