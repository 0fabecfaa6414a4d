"""Test setup: one torch thread, no hub access, and tiny random-weight models built once per session."""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``tiny_model("sd15")`` -> folder of a tiny random-weight sd15, built on first use and shared.
    ``tiny_model("sd21", "depth2image")`` -> the folder of a task with weights of its own (``sd21-depth``)."""
    from omnirt.models.tiny_common import make_tiny
    from omnirt.registry.registry import get_model

    root = tmp_path_factory.mktemp("tiny-models")
    built: dict[str, Path] = {}

    def build(model_id: str, task: str | None = None) -> Path:
        name = get_model(model_id, task).weights_name
        if name not in built:
            built[name] = make_tiny(model_id, root / name, task)
        return built[name]

    return build


@pytest.fixture(scope="session")
def sample_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x64 RGB PNG with a gradient (a real picture, not a flat colour)."""
    import numpy as np
    from PIL import Image

    path = tmp_path_factory.mktemp("media") / "input.png"
    ramp = np.linspace(0, 255, 64, dtype=np.uint8)
    pixels = np.stack([np.tile(ramp, (64, 1)), np.tile(ramp[:, None], (1, 64)), np.full((64, 64), 90, np.uint8)], -1)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="session")
def sample_mask(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x64 mask: white (repaint) in the centre square."""
    import numpy as np
    from PIL import Image

    path = tmp_path_factory.mktemp("media") / "mask.png"
    pixels = np.zeros((64, 64), np.uint8)
    pixels[16:48, 16:48] = 255
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture()
def engine(tmp_path: Path):
    from omnirt.workers.engine import Engine

    return Engine(output_dir=tmp_path / "outputs", models_dir=tmp_path / "models")


# -- Service fixtures: the same contracts, embedded and as a fleet (real Redis, real Celery workers) ---------------


@pytest.fixture(scope="session")
def service_dirs(tmp_path_factory: pytest.TempPathFactory, tiny_model: Callable[[str], Path]) -> dict[str, Path]:
    """A models dir holding a tiny sd15 (as make-tiny writes it), an artifact dir and a log dir."""
    models = tiny_model("sd15").parent
    return {
        "models": models,
        "artifacts": tmp_path_factory.mktemp("artifacts"),
        "logs": tmp_path_factory.mktemp("logs"),
    }


@pytest.fixture(scope="session")
def service_env(service_dirs: dict[str, Path]) -> dict[str, str]:
    env = {
        "OMNIRT_MODELS_DIR": str(service_dirs["models"]),
        "OMNIRT_ARTIFACT_DIR": str(service_dirs["artifacts"]),
        "OMNIRT_PLUGINS": "omnirt.bench.noop",
    }
    os.environ.update(env)
    import omnirt.bench.noop  # noqa: F401 - registers bench-noop in this process too

    return env


@pytest.fixture(scope="session")
def fleet_redis() -> Iterator[Any]:
    from tests.support.servers import RedisServer

    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fleet_worker(fleet_redis: Any, service_env: dict[str, str], service_dirs: dict[str, Path]) -> Iterator[Any]:
    """One warm worker on the experimental and core CPU queues (diffusion test models, voices) for the session.
    It batches up to 4 jobs, but only jobs whose front end gave them a batch key (``max_batch_size`` above 1 there;
    the test servers' default is 1)."""
    from omnirt.backplane import Backplane
    from tests.support.servers import Worker

    worker = Worker(
        fleet_redis.url,
        ["omnirt.experimental.cpu", "omnirt.core.cpu"],
        {**service_env, "OMNIRT_MAX_BATCH_SIZE": "4", "OMNIRT_BATCH_WINDOW_MS": "0"},
        service_dirs["logs"],
        "session-worker",
    )
    worker.wait_ready(Backplane(service_settings(fleet_redis.url, service_dirs)))
    yield worker
    worker.stop()


def service_settings(redis_url: str | None, dirs: dict[str, Path], **overrides: Any) -> Any:
    """The test server's settings: the environment's (a test may set a variable first), then these values."""
    from dataclasses import replace

    from omnirt.settings import Settings

    values = {
        "redis_url": redis_url,
        "artifact_dir": dirs["artifacts"],
        "heartbeat_interval_s": 0.3,
        "heartbeat_ttl_s": 2.5,  # above the longest call that holds the GIL (pocketsphinx decodes a sentence at once)
        "sse_keepalive_s": 1.0,
        "sync_timeout_s": 60.0,
        **overrides,
    }
    return replace(Settings.from_env(), **values)


@pytest.fixture(params=["embedded", "fleet"])
def service(
    request: pytest.FixtureRequest, service_env: dict[str, str], service_dirs: dict[str, Path]
) -> Iterator[Any]:
    """The API on a real port, embedded or in front of the fleet. ``service.start(**overrides)`` makes more."""
    from tests.support.servers import ApiServer

    redis_url = None
    if request.param == "fleet":
        redis_url = request.getfixturevalue("fleet_redis").url
        request.getfixturevalue("fleet_worker")
    servers: list[ApiServer] = []

    class Service:
        mode = request.param

        def start(self, **overrides: Any) -> ApiServer:
            server = ApiServer(service_settings(redis_url, service_dirs, **overrides))
            servers.append(server)
            return server

    handle = Service()
    handle.api = handle.start()
    handle.url = handle.api.url
    yield handle
    for server in servers:
        server.stop()
