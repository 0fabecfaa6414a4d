"""How jobs and results look on the wire: the job record with links, results with artifact download URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import current_app, request

from omnirt.jobs.job import Job


def base_url() -> str:
    return request.host_url.rstrip("/")


def artifact_url(job_id: str, path: str) -> str | None:
    root = current_app.config["OMNIRT_SETTINGS"].artifact_dir.resolve() / job_id
    try:
        relative = Path(path).resolve().relative_to(root)
    except ValueError:
        return None
    return f"{base_url()}/v1/artifacts/{job_id}/{relative.as_posix()}"


def result_with_urls(job: Job) -> dict[str, Any] | None:
    if job.result is None:
        return None
    outputs = []
    for artifact in job.result.get("outputs", []):
        outputs.append({**artifact, "url": artifact_url(job.id, artifact["path"])})
    return {**job.result, "outputs": outputs, "job_id": job.id}


def links(job_id: str) -> dict[str, str]:
    root = f"{base_url()}/v1/jobs/{job_id}"
    websocket = root.replace("http://", "ws://").replace("https://", "wss://")
    return {"self": root, "events": f"{root}/events", "stream": f"{websocket}/stream", "cancel": root}


def job_to_dict(job: Job, *, events: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    data = job.to_dict()
    data.pop("fingerprint", None)
    data.pop("idempotency_key", None)
    data["job_id"] = job.id
    data["result"] = result_with_urls(job)
    data["links"] = links(job.id)
    if events is not None:
        data["events"] = events
    return data
