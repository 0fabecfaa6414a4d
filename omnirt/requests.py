"""Request builders, one per task: keyword arguments in, a :class:`GenerateRequest` out.

Keyword arguments beyond the named inputs go into ``config``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omnirt.contracts.types import AdapterRef, GenerateRequest


def _request(
    task: str,
    model: str,
    inputs: dict[str, Any],
    *,
    backend: str = "auto",
    adapters: list[AdapterRef] | None = None,
    config: dict[str, Any],
) -> GenerateRequest:
    return GenerateRequest(
        task=task,
        model=model,
        backend=backend,
        inputs={key: value for key, value in inputs.items() if value is not None},
        config={key: value for key, value in config.items() if value is not None},
        adapters=adapters,
    )


def text2image(
    model: str,
    prompt: str,
    negative_prompt: str | None = None,
    *,
    backend: str = "auto",
    adapters: list[AdapterRef] | None = None,
    **config: Any,
) -> GenerateRequest:
    return _request(
        "text2image",
        model,
        {"prompt": prompt, "negative_prompt": negative_prompt},
        backend=backend,
        adapters=adapters,
        config=config,
    )


def image2image(
    model: str,
    image: Any,
    prompt: str,
    negative_prompt: str | None = None,
    *,
    backend: str = "auto",
    adapters: list[AdapterRef] | None = None,
    **config: Any,
) -> GenerateRequest:
    return _request(
        "image2image",
        model,
        {"image": image, "prompt": prompt, "negative_prompt": negative_prompt},
        backend=backend,
        adapters=adapters,
        config=config,
    )


def inpaint(
    model: str,
    image: Any,
    mask: Any,
    prompt: str,
    negative_prompt: str | None = None,
    *,
    backend: str = "auto",
    adapters: list[AdapterRef] | None = None,
    **config: Any,
) -> GenerateRequest:
    return _request(
        "inpaint",
        model,
        {"image": image, "mask": mask, "prompt": prompt, "negative_prompt": negative_prompt},
        backend=backend,
        adapters=adapters,
        config=config,
    )


def edit(
    model: str,
    image: Any | Sequence[Any],
    prompt: str,
    *,
    backend: str = "auto",
    adapters: list[AdapterRef] | None = None,
    **config: Any,
) -> GenerateRequest:
    return _request(
        "edit", model, {"image": image, "prompt": prompt}, backend=backend, adapters=adapters, config=config
    )


def depth2image(
    model: str,
    image: Any,
    prompt: str,
    negative_prompt: str | None = None,
    *,
    backend: str = "auto",
    adapters: list[AdapterRef] | None = None,
    **config: Any,
) -> GenerateRequest:
    return _request(
        "depth2image",
        model,
        {"image": image, "prompt": prompt, "negative_prompt": negative_prompt},
        backend=backend,
        adapters=adapters,
        config=config,
    )


def text2video(
    model: str,
    prompt: str,
    negative_prompt: str | None = None,
    *,
    num_frames: int | None = None,
    fps: float | None = None,
    backend: str = "auto",
    adapters: list[AdapterRef] | None = None,
    **config: Any,
) -> GenerateRequest:
    return _request(
        "text2video",
        model,
        {"prompt": prompt, "negative_prompt": negative_prompt},
        backend=backend,
        adapters=adapters,
        config={"num_frames": num_frames, "fps": fps, **config},
    )


def image2video(
    model: str,
    image: Any,
    prompt: str | None = None,
    negative_prompt: str | None = None,
    *,
    num_frames: int | None = None,
    fps: float | None = None,
    backend: str = "auto",
    adapters: list[AdapterRef] | None = None,
    **config: Any,
) -> GenerateRequest:
    return _request(
        "image2video",
        model,
        {"image": image, "prompt": prompt, "negative_prompt": negative_prompt},
        backend=backend,
        adapters=adapters,
        config={"num_frames": num_frames, "fps": fps, **config},
    )


def text2audio(
    model: str,
    prompt: str,
    audio: Any | None = None,
    reference_text: str | None = None,
    *,
    backend: str = "auto",
    **config: Any,
) -> GenerateRequest:
    """``audio`` is a reference voice, for the models that clone one; it is optional."""
    return _request(
        "text2audio",
        model,
        {"prompt": prompt, "audio": audio, "reference_text": reference_text},
        backend=backend,
        config=config,
    )


def audio2text(model: str, audio: Any, *, backend: str = "auto", **config: Any) -> GenerateRequest:
    return _request("audio2text", model, {"audio": audio}, backend=backend, config=config)


def audio2video(
    model: str, image: Any, audio: Any, prompt: str | None = None, *, backend: str = "auto", **config: Any
) -> GenerateRequest:
    return _request(
        "audio2video", model, {"image": image, "audio": audio, "prompt": prompt}, backend=backend, config=config
    )
