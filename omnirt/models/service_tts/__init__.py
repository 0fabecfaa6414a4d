"""Service-backed voices: real clients of vLLM-Omni, SoulX-Podcast, IndexTTS (HTTP) and CosyVoice (Triton gRPC)."""

from omnirt.models.service_tts import cosyvoice, http_services  # noqa: F401 - each registers its voices
