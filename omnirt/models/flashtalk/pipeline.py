"""SoulX-FlashTalk 14B through its own resident WebSocket server (8 GPUs under torchrun), driven from a worker.

OmniRT does not re-implement FlashTalk: a worker either connects to an upstream FlashTalk server that is already
running (``OMNIRT_FLASHTALK_UPSTREAM=ws://host:port``, proxy mode), or launches and supervises one itself
(``OMNIRT_FLASHTALK_COMMAND``, e.g. ``torchrun --nproc_per_node=8 flashtalk_ws_server.py --port {port}``; resident
mode, see :mod:`omnirt.runtime.resident`). Each OmniRT session opens one upstream connection and speaks the
FlashTalk protocol on it: ``init``/``init_ok``, then one ``AUDI`` → one ``VIDX`` per chunk. The upstream server is
single-session, so one worker serves one FlashTalk session at a time (``OMNIRT_SESSION_CAPACITY=1`` on its queue).
"""

from __future__ import annotations

import base64
import json
import threading
from typing import Any

from omnirt.contracts.errors import DependencyUnavailableError, OmniRTError
from omnirt.models.avatar import AvatarPipeline, AvatarSession, SessionSpec, unpack_vidx
from omnirt.registry.registry import register_model
from omnirt.settings import Settings

PROMPT = "A person is talking. Only the foreground characters are moving, the background remains static."


class UpstreamError(OmniRTError):
    code = "upstream_error"
    http_status = 502


class FlashTalkUpstreamSession(AvatarSession):
    def __init__(self, url: str, spec: SessionSpec, image: bytes | None) -> None:
        from simple_websocket import Client

        self.spec = spec
        try:
            self.ws = Client.connect(url, max_message_size=50 * 2**20)
        except Exception as exc:
            raise UpstreamError(f"Cannot reach the FlashTalk server at {url}: {exc}") from exc
        init = {
            "type": "init",
            "prompt": spec.prompt or PROMPT,
            "seed": spec.seed,
            "width": spec.width,
            "height": spec.height,
            "fps": spec.fps,
            "slice_len": spec.slice_len,
        }
        if image:
            init["ref_image"] = base64.b64encode(image).decode("ascii")
        reply = self._json(self._exchange(json.dumps(init)))
        if reply.get("type") != "init_ok":
            raise UpstreamError(f"FlashTalk refused the session: {reply}")
        for key in ("slice_len", "fps", "width", "height"):
            if key in reply and reply[key] != getattr(spec, key):
                raise UpstreamError(f"FlashTalk runs {key}={reply[key]}, the session asked for {getattr(spec, key)}.")

    def _exchange(self, message: str | bytes) -> Any:
        self.ws.send(message)
        reply = self.ws.receive(timeout=300)
        if reply is None:
            raise UpstreamError("The FlashTalk server did not answer in time.")
        return reply

    @staticmethod
    def _json(reply: Any) -> dict[str, Any]:
        if not isinstance(reply, str):
            raise UpstreamError("Expected a JSON message from the FlashTalk server.")
        return json.loads(reply)

    def render(self, pcm: Any) -> list[bytes]:
        reply = self._exchange(b"AUDI" + pcm.astype("<i2").tobytes())
        if isinstance(reply, str):
            raise UpstreamError(f"FlashTalk error: {self._json(reply).get('message', reply)}")
        return unpack_vidx(reply)

    def close(self) -> None:
        try:
            self.ws.send(json.dumps({"type": "close"}))
            self.ws.close()
        except Exception:  # noqa: BLE001 - the upstream may be gone already
            pass


@register_model(
    id="soulx-flashtalk-14b",
    task="audio2video",
    weightless=True,
    execution_mode="persistent_worker",
    default_backend="auto",
    resource_hint={"min_vram_gb": 64, "vram_scope": "aggregate", "accelerator": "8x GPU or Ascend NPU"},
    required_inputs=("audio",),
    optional_inputs=("image", "prompt"),
    supported_config=("fps", "width", "height", "slice_len", "seed", "output_dir"),
    default_config={"fps": 25, "width": 416, "height": 704, "slice_len": 28, "seed": 9999},
    artifact_kind="video",
    tier="core",
    maturity="beta",
    realtime=True,
    streaming=True,
    resident=True,
    queue="flashtalk",
    supports_batching=False,
    service_adapter="realtime-avatar.ws.v1",
    backend_status={"cuda": "supported", "ascend": "supported"},
    summary="SoulX-FlashTalk 14B via its resident WebSocket server (proxy, or launched and supervised by the worker).",
)
class FlashTalk(AvatarPipeline):
    @staticmethod
    def upstream_configured() -> bool:
        """Whether this process knows a FlashTalk server to use or to launch."""
        return bool(Settings.value("flashtalk_upstream") or Settings.value("flashtalk_command"))

    def __init__(self, *, spec: Any, backend: Any, dtype: str, **_: Any) -> None:
        super().__init__(spec=spec, backend=backend, dtype=dtype)
        self.upstream = Settings.value("flashtalk_upstream")
        command = Settings.value("flashtalk_command")
        self.resident = None
        if not self.upstream and command:
            from omnirt.runtime.resident import ResidentProcess

            port = Settings.value("flashtalk_port")
            backoff = Settings.value("resident_backoff_s")
            self.resident = ResidentProcess(command, port=port, backoff_s=backoff)
        elif not self.upstream:
            raise DependencyUnavailableError(
                "soulx-flashtalk-14b needs OMNIRT_FLASHTALK_UPSTREAM (a running FlashTalk server) or "
                "OMNIRT_FLASHTALK_COMMAND (a command the worker launches, with {port})."
            )
        self._lock = threading.Lock()

    def url(self) -> str:
        if self.resident is not None:
            return f"ws://{self.resident.ensure_running()}/"
        return str(self.upstream)

    def open_session(self, spec: SessionSpec, image: bytes | None, avatars: Any = None) -> AvatarSession:
        with self._lock:
            url = self.url()
        try:
            return FlashTalkUpstreamSession(url, spec, image)
        except UpstreamError as exc:
            if self.resident is not None:
                exc.message += f"\nResident server output:\n{self.resident.log_tail()}"
            raise
