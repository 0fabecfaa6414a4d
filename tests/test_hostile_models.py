"""Hostile requests against every registered model (issue 11): whatever a model is, a request with its inputs
missing, an unknown config key, a config value of the wrong type or a size past the limits is a 400 JSON error at
once, and no job is recorded. New models join the suite by registering.

Embedded and in front of the fleet (the ``api_url`` fixture of :mod:`tests.test_hostile_input`).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from omnirt.registry.registry import list_available_models
from tests.test_hostile_input import api_url, assert_rejected, post_json  # noqa: F401 - api_url is a fixture
from tests.test_hostile_jobs import png
from tests.test_speech import wav_bytes

SPECS = list_available_models(include_aliases=False)
AUDIO = "data:audio/wav;base64," + base64.b64encode(wav_bytes(b"\x00\x00" * 1600, 16000)).decode()


def body_for(spec: Any, *, inputs: dict[str, Any] | None = None, config: dict[str, Any] | None = None) -> dict:
    return {"task": spec.task, "model": spec.id, "inputs": inputs or {}, "config": config or {}, "async_run": True}


def valid_inputs(spec: Any) -> dict[str, Any]:
    """Valid inputs for the model, so that each request below fails on the one thing it gets wrong."""
    samples = {"image": png(16, 16), "mask": png(16, 16), "audio": AUDIO}
    return {name: samples.get(name, "a cat") for name in spec.capabilities.required_inputs}


@pytest.mark.parametrize("spec", SPECS, ids=[f"{spec.id}:{spec.task}" for spec in SPECS])
def test_every_model_refuses_bad_requests_before_a_job_exists(api_url: str, spec: Any) -> None:  # noqa: F811
    caps = spec.capabilities
    if caps.required_inputs:
        error = assert_rejected(api_url, lambda: post_json(api_url, "/v1/generate", body_for(spec)))
        assert caps.required_inputs[0] in error["message"]

    unknown = body_for(spec, inputs=valid_inputs(spec), config={"no_such_key": 1})
    error = assert_rejected(api_url, lambda: post_json(api_url, "/v1/generate", unknown))
    assert "no_such_key" in error["message"]

    if "seed" in caps.supported_config:
        typed = body_for(spec, inputs=valid_inputs(spec), config={"seed": "seven"})
        error = assert_rejected(api_url, lambda: post_json(api_url, "/v1/generate", typed))
        assert "seed" in error["message"]

    if "num_inference_steps" in caps.supported_config:
        huge = body_for(spec, inputs=valid_inputs(spec), config={"num_inference_steps": 10**9})
        error = assert_rejected(api_url, lambda: post_json(api_url, "/v1/generate", huge))
        assert "num_inference_steps" in error["message"]

    stray = body_for(spec, inputs={**valid_inputs(spec), "no_such_input": "x"})
    assert_rejected(api_url, lambda: post_json(api_url, "/v1/generate", stray))


def test_a_size_the_library_refuses_is_the_clients_error(tiny_model, engine) -> None:
    """Validation knows the common rule (multiples of 8); a pipeline with a stricter one (Wan: 16) refuses the rest
    in its own ``check_inputs``, and that is invalid input, not an internal error."""
    from omnirt.contracts.errors import InvalidInputError
    from omnirt.contracts.types import GenerateRequest

    request = GenerateRequest(
        task="text2video",
        model="wan2.1-t2v-14b",
        backend="cpu",
        inputs={"prompt": "a cat"},
        config={"model_path": str(tiny_model("wan2.1-t2v-14b")), "width": 24, "height": 24, "seed": 1},
    )
    with pytest.raises(InvalidInputError, match="divisible by 16"):
        engine.run(request)
