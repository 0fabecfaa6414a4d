"""Structured logs: ``--log-format json`` / ``OMNIRT_LOG_FORMAT=json`` writes one JSON object per line with time,
level, logger, message, and the ``job_id``, ``trace_id`` or ``session_id`` of the work the line was written for.
(The fleet's worker process is checked in tests/test_tracing.py.)"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import requests
from click.testing import CliRunner

from omnirt.tracing import configure_logging, log_context
from tests.conftest import service_settings
from tests.support.servers import ApiServer, wait_until


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    handler = configure_logging("json", logging.INFO, stream=stream)
    yield stream
    root.removeHandler(handler)
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_each_line_is_an_object_with_the_context_ids(json_log: io.StringIO) -> None:
    logger = logging.getLogger("omnirt.test")
    logger.info("outside")
    with log_context(job_id="job-1", trace_id="4bf92f3577b34da6a3ce929d0e0e4736"):
        logger.warning("inside %s", "a job")
        with log_context(session_id="sess-1"):
            logger.info("inside a session")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    outside, job, session, failed = lines(json_log)
    assert set(outside) == {"time", "level", "logger", "message"} and outside["message"] == "outside"
    assert outside["time"].endswith("Z") and outside["logger"] == "omnirt.test"
    assert job == {**job, "level": "WARNING", "message": "inside a job", "job_id": "job-1"}
    assert job["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and "session_id" not in job
    assert session["session_id"] == "sess-1" and session["job_id"] == "job-1"
    assert "ValueError: boom" in failed["exception"] and "job_id" not in failed


def test_an_embedded_job_logs_its_ids(
    json_log: io.StringIO, service_env: dict[str, str], service_dirs: dict[str, Path]
) -> None:
    server = ApiServer(service_settings(None, service_dirs))
    try:
        body = {"task": "text2image", "model": "bench-noop", "inputs": {"prompt": "logs"}, "async_run": True}
        job = requests.post(f"{server.url}/v1/generate", json=body, timeout=30).json()
        wait_until(lambda: requests.get(f"{server.url}/v1/jobs/{job['id']}", timeout=10).json()["state"] == "succeeded")
        mine = wait_until(lambda: [line for line in lines(json_log) if line.get("job_id") == job["id"]], timeout=10)
        assert all(line["trace_id"] == job["trace_id"] for line in mine), mine
        assert any("running bench-noop" in line["message"] for line in mine)
    finally:
        server.stop()


def test_the_cli_takes_a_log_format(monkeypatch: pytest.MonkeyPatch) -> None:
    from omnirt.cli import main
    from omnirt.settings import Settings

    monkeypatch.setenv("OMNIRT_LOG_FORMAT", "text")
    runner = CliRunner()
    refused = runner.invoke(main, ["serve", "--log-format", "xml"])
    assert refused.exit_code == 2 and "xml" in refused.output
    with mock.patch.dict(os.environ):  # the worker command exports its settings (for its Celery children)
        result = runner.invoke(
            main, ["worker", "--redis-url", "redis://x", "--device", "cpu", "--log-format", "json", "--dry-run"]
        )
        assert result.exit_code == 0, result.output
        assert Settings.value("log_format") == "json"  # the Celery child's setup_logging signal reads it
    with pytest.raises(ValueError):
        configure_logging("xml")
