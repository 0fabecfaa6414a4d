"""``GET /v1/artifacts/<job>/<name>``: artifact downloads with the right content type and Range support.

Only regular files whose real path (every symlink followed) lies under ``<real artifact dir>/<job id>/`` are served,
and never a job's ``inputs/``. Anything else is a 404: a name that escapes with ``..``, a job folder or file that is a
symlink leading elsewhere, a NUL byte, a name too long for the filesystem.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, send_file

from omnirt.api.errors import ApiError
from omnirt.api.submission import JOB_ID_PATTERN

bp = Blueprint("artifacts", __name__)
MAX_NAME_CHARS = 1024  # artifact names are short (``image-0.png``); longer ones are refused unread


@bp.get("/v1/artifacts/<job_id>/<path:name>")
def download(job_id: str, name: str) -> Any:
    """Download an artifact (supports Range).
    ---
    get:
      parameters:
        - {in: path, name: job_id, required: true, schema: {type: string}}
        - {in: path, name: name, required: true, schema: {type: string}}
        - {in: header, name: Range, schema: {type: string}}
      responses:
        200: {description: The file}
        206: {description: Part of the file}
        404: {description: No such artifact, content: {application/json: {schema: Error}}}
    """
    path = _artifact_path(current_app.config["OMNIRT_SETTINGS"].artifact_dir, job_id, name)
    if path is None:
        raise ApiError(404, "not_found", "No such artifact.")
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return send_file(path, mimetype=mime, conditional=True, etag=True, max_age=3600)


def _artifact_path(artifact_dir: Path, job_id: str, name: str) -> Path | None:
    """The real path of artifact ``name`` of ``job_id`` when it may be served, else None."""
    if not JOB_ID_PATTERN.match(job_id) or "\x00" in name or len(name) > MAX_NAME_CHARS:
        return None
    root = Path(os.path.realpath(artifact_dir)) / job_id  # the job folder itself is not resolved: no symlink out
    try:
        path = Path(os.path.realpath(root / name))
        if root not in path.parents or not path.is_file():
            return None
    except (OSError, ValueError):
        return None
    return None if path.relative_to(root).parts[0] == "inputs" else path
