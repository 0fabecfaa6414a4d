"""``wrap_module``: try ``torch.compile`` on a component, fall back to eager, and record every attempt.

Compilation in torch is lazy: a bad graph fails on the first call, not when ``torch.compile`` returns. The wrapper
therefore guards the first forward: if the compiled call raises, the component goes back to eager for good, the
call is repeated eagerly, and the failure lands in the run's ``backend_timeline``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omnirt.runtime.backends import Backend

COMPILED_COMPONENTS = ("unet", "transformer", "transformer_2")


@dataclass
class BackendAttempt:
    level: str  # "compile" | "eager"
    ok: bool
    reason: str = ""
    selected: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "ok": self.ok, "reason": self.reason, "selected": self.selected}


@dataclass
class ModuleTimeline:
    module: str
    attempts: list[BackendAttempt] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "attempts": [attempt.to_dict() for attempt in self.attempts]}


def compile_enabled(backend: Backend, config: dict[str, Any]) -> tuple[bool, str]:
    """Whether to try compile, and why not. Default: on for CUDA, off elsewhere; config ``compile`` decides."""
    from omnirt.settings import Settings

    if Settings.value("disable_compile"):
        return False, "disabled by OMNIRT_DISABLE_COMPILE=1"
    if not backend.compile_available:
        return False, f"torch.compile is not available on {backend.name}"
    requested = config.get("compile")
    if requested is None:
        return (backend.name == "cuda"), "" if backend.name == "cuda" else f"off by default on {backend.name}"
    return bool(requested), "" if requested else "disabled by config.compile=false"


def compile_key(backend: Backend, config: dict[str, Any]) -> str:
    """The part of the warm-cache key that compilation contributes: compiled modules are set up at load time."""
    enabled, _ = compile_enabled(backend, config)
    return f"compile={config.get('compile_backend', 'inductor')}" if enabled else "eager"


def wrap_module(module: Any, tag: str, *, backend: Backend, config: dict[str, Any]) -> ModuleTimeline:
    """Set up ``module`` to run compiled if allowed, else eager. Returns its timeline (filled on first call)."""
    timeline = ModuleTimeline(module=tag)
    enabled, reason = compile_enabled(backend, config)
    if not enabled:
        timeline.attempts.append(BackendAttempt("compile", ok=False, reason=f"skipped: {reason}"))
        timeline.attempts.append(BackendAttempt("eager", ok=True, selected=True))
        return timeline

    import torch

    eager_forward = module.forward
    options: dict[str, Any] = {"backend": config.get("compile_backend", "inductor")}
    if options["backend"] == "inductor" and backend.name == "cuda":
        options["mode"] = "max-autotune-no-cudagraphs"
    try:
        compiled_forward = torch.compile(eager_forward, **options)
    except Exception as exc:  # noqa: BLE001 - any failure to compile means eager
        timeline.attempts.append(BackendAttempt("compile", ok=False, reason=_one_line(exc)))
        timeline.attempts.append(BackendAttempt("eager", ok=True, selected=True))
        return timeline

    def guarded_forward(*args: Any, **kwargs: Any) -> Any:
        try:
            output = compiled_forward(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - compile failures surface at the first call
            module.forward = eager_forward
            timeline.attempts[:] = [
                BackendAttempt("compile", ok=False, reason=_one_line(exc)),
                BackendAttempt("eager", ok=True, selected=True),
            ]
            return eager_forward(*args, **kwargs)
        module.forward = compiled_forward
        timeline.attempts[:] = [
            BackendAttempt("compile", ok=True, selected=True),
            BackendAttempt("eager", ok=False, reason="skipped: compile selected"),
        ]
        return output

    module.forward = guarded_forward
    timeline.attempts.append(BackendAttempt("compile", ok=True, reason="pending first call", selected=True))
    return timeline


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
