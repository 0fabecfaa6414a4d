"""CosyVoice 3 served by NVIDIA Triton (TensorRT-LLM), through Triton's gRPC streaming inference.

A real ``tritonclient.grpc`` client of the decoupled ``cosyvoice3`` model: inputs ``reference_wav`` (FP32,
16 kHz), ``reference_wav_len`` (INT32), ``reference_text`` and ``target_text`` (BYTES); each streamed response
carries a ``waveform`` chunk (FP32, 24 kHz), relayed as it arrives. The server comes from
``OMNIRT_COSYVOICE_TRITON`` (``host:port``, default ``127.0.0.1:8001``); the model name from
``OMNIRT_COSYVOICE_MODEL`` (``cosyvoice3``).
"""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError, RequestValidationError
from omnirt.models.contracts import speech_contract
from omnirt.models.service_tts.common import ServiceUnavailableError
from omnirt.models.speech import TextToSpeechPipeline
from omnirt.registry.registry import register_model
from omnirt.settings import Settings

CHUNK_TIMEOUT_S = 200.0


@register_model(
    id="cosyvoice3-triton-trtllm",
    task="text2audio",
    weightless=True,
    **speech_contract(
        "text2audio",
        defaults={},
        optional_inputs=("audio", "reference_text"),
        tier="core",
        maturity="beta",
        summary="CosyVoice 3 on Triton/TRT-LLM, streamed over gRPC; zero-shot voice from a reference clip.",
        supports_batching=False,
    ),
)
class CosyVoiceTriton(TextToSpeechPipeline):
    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        try:
            import tritonclient.grpc  # noqa: F401 - checked here, used per request
        except ImportError as exc:
            raise DependencyUnavailableError("tritonclient[grpc] is not installed (the services extra).") from exc
        self.address = Settings.value("cosyvoice_triton")
        self.model_name = Settings.value("cosyvoice_model")

    @property
    def sample_rate(self) -> int:
        return 24000

    def synthesize(self, text: str, config: dict[str, Any], inputs: dict[str, Any]) -> Iterator[Any]:
        import numpy as np
        import tritonclient.grpc as grpcclient
        from tritonclient.utils import InferenceServerException, np_to_triton_dtype

        from omnirt.runtime.audio import load_audio

        if inputs.get("audio") is None:
            raise RequestValidationError(
                "cosyvoice3-triton-trtllm clones a voice: input 'audio' (a reference) is required."
            )
        reference = load_audio(inputs["audio"], sample_rate=16000).astype(np.float32).reshape(1, -1)
        tensors = []
        for name, value in (
            ("reference_wav", reference),
            ("reference_wav_len", np.array([[reference.shape[1]]], dtype=np.int32)),
            ("reference_text", np.array([[str(inputs.get("reference_text") or "").encode()]], dtype=object)),
            ("target_text", np.array([[text.encode()]], dtype=object)),
        ):
            tensor = grpcclient.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
            tensor.set_data_from_numpy(value)
            tensors.append(tensor)
        responses: queue.Queue = queue.Queue()
        client = grpcclient.InferenceServerClient(url=self.address)
        try:
            client.start_stream(callback=lambda result, error: responses.put((result, error)))
            parameters = {"seed": int(config["seed"])} if config.get("seed") is not None else None
            client.async_stream_infer(
                self.model_name,
                tensors,
                request_id=uuid.uuid4().hex,
                outputs=[grpcclient.InferRequestedOutput("waveform")],
                enable_empty_final_response=True,
                parameters=parameters,
            )
            while True:
                try:
                    result, error = responses.get(timeout=CHUNK_TIMEOUT_S)
                except queue.Empty:
                    raise ServiceUnavailableError(f"CosyVoice sent nothing for {CHUNK_TIMEOUT_S:g} s.") from None
                if error is not None:
                    raise ServiceUnavailableError(f"CosyVoice on Triton {self.address}: {error}")
                final = result.get_response().parameters.get("triton_final_response")
                waveform = result.as_numpy("waveform")
                if waveform is not None and waveform.size:
                    yield waveform.astype(np.float32).reshape(-1)
                if final is not None and final.bool_param:
                    return
        except InferenceServerException as exc:
            raise ServiceUnavailableError(f"CosyVoice on Triton {self.address}: {exc}") from exc
        finally:
            client.stop_stream(cancel_requests=True)
            client.close()
