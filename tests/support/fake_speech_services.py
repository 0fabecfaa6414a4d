"""Local fakes of the speech services OmniRT's adapters talk to, each speaking its real protocol (tests only):
vLLM-Omni's /v1/audio/speech, SoulX-Podcast's multipart /generate, an IndexTTS streaming service, and a Triton
gRPC server with a decoupled CosyVoice model. Audio is a tone as long as the text (0.04 s per character)."""

from __future__ import annotations

import io
import struct
import threading
import wave
from concurrent import futures
from typing import Any

import numpy as np


def tone(text: str, rate: int) -> np.ndarray:
    seconds = max(0.2, 0.04 * len(text))
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 0.4).astype(np.float32)


def pcm(samples: np.ndarray) -> bytes:
    return (samples * 32767).astype("<i2").tobytes()


def wav(samples: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm(samples))
    return buffer.getvalue()


class HttpSpeechServices:
    """vLLM-Omni, SoulX-Podcast and IndexTTS endpoints on one port; ``seen`` records each request."""

    def __init__(self, api_key: str | None = None) -> None:
        from flask import Flask, Response, jsonify, request
        from werkzeug.serving import make_server

        app = Flask("fake-speech")
        self.seen: dict[str, Any] = {}

        @app.post("/v1/audio/speech")
        def speech() -> Any:
            if api_key and request.headers.get("Authorization") != f"Bearer {api_key}":
                return jsonify({"error": {"message": "bad key"}}), 401
            body = request.get_json()
            self.seen["vllm"] = body
            audio = pcm(tone(body["input"], 24000))
            chunks = [audio[index : index + 4801] for index in range(0, len(audio), 4801)]  # odd splits on purpose
            return Response(iter(chunks), content_type="audio/pcm", headers={"x-audio-sample-rate": "24000"})

        @app.post("/generate")
        def generate() -> Any:
            self.seen["podcast"] = {
                "form": request.form.to_dict(flat=False),
                "files": [
                    wave.open(io.BytesIO(item.read())).getframerate() for item in request.files.getlist("prompt_audio")
                ],
            }
            return Response(wav(tone(request.form["dialogue_text"], 24000), 24000), content_type="audio/wav")

        @app.post("/v1/text2audio/indextts")
        def indextts() -> Any:
            body = request.get_json()
            self.seen["indextts"] = body
            audio = pcm(tone(body["text"], int(body.get("sample_rate", 16000))))
            chunks = [audio[index : index + 640] for index in range(0, len(audio), 640)]
            return Response(
                iter(chunks),
                content_type=f"audio/L16; rate={body.get('sample_rate', 16000)}",
                headers={"x-audio-sample-rate": str(body.get("sample_rate", 16000))},
            )

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


def _bytes_tensor(raw: bytes) -> list[bytes]:
    """Triton's BYTES wire format: 4-byte little-endian length, then the bytes, repeated."""
    items, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        items.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return items


class FakeTriton:
    """A Triton GRPCInferenceService whose decoupled model streams ``waveform`` chunks, then a final response."""

    def __init__(self, chunks: int = 3) -> None:
        import grpc
        from tritonclient.grpc import service_pb2, service_pb2_grpc

        self.seen: dict[str, Any] = {}
        outer = self

        class Servicer(service_pb2_grpc.GRPCInferenceServiceServicer):
            def ModelStreamInfer(self, requests: Any, context: Any) -> Any:
                for request in requests:
                    inputs = {
                        tensor.name: raw for tensor, raw in zip(request.inputs, request.raw_input_contents, strict=True)
                    }
                    text = _bytes_tensor(inputs["target_text"])[0].decode()
                    reference = np.frombuffer(inputs["reference_wav"], np.float32)
                    outer.seen = {
                        "model": request.model_name,
                        "text": text,
                        "reference_samples": reference.size,
                        "reference_len": struct.unpack("<i", inputs["reference_wav_len"])[0],
                        "reference_text": _bytes_tensor(inputs["reference_text"])[0].decode(),
                    }
                    audio = tone(text, 24000)
                    for part in np.array_split(audio, chunks):
                        yield self._response(service_pb2, request, part, final=False)
                    yield self._response(service_pb2, request, None, final=True)

            @staticmethod
            def _response(pb: Any, request: Any, part: np.ndarray | None, *, final: bool) -> Any:
                response = pb.ModelInferResponse(model_name=request.model_name, id=request.id)
                response.parameters["triton_final_response"].bool_param = final
                if part is not None:
                    output = response.outputs.add()
                    output.name, output.datatype = "waveform", "FP32"
                    output.shape.extend([1, part.size])
                    response.raw_output_contents.append(part.astype(np.float32).tobytes())
                return pb.ModelStreamInferResponse(infer_response=response)

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(Servicer(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=0)
