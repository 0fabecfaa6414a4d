"""``GET /v1/artifacts/<job>/<name>``: artifact downloads with the right content type and Range support.

Only files under ``<artifact dir>/<job id>/`` are served; a name that escapes it is a 404.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, send_file

from omnirt.api.errors import ApiError
from omnirt.api.submission import JOB_ID_PATTERN

bp = Blueprint("artifacts", __name__)


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
    if not JOB_ID_PATTERN.match(job_id):
        raise ApiError(404, "not_found", "No such artifact.")
    root = (current_app.config["OMNIRT_SETTINGS"].artifact_dir.resolve() / job_id).resolve()
    path = (root / name).resolve()
    if root not in path.parents or not path.is_file() or "inputs" in path.relative_to(root).parts[:1]:
        raise ApiError(404, "not_found", "No such artifact.")
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return send_file(Path(path), mimetype=mime, conditional=True, etag=True, max_age=3600)
