"""``POST /v1/generate``: queue a request; answer at once (async) or when the job ends (sync, with a timeout)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from omnirt.api.errors import error_response, json_object, status_for
from omnirt.api.presenters import job_to_dict, result_with_urls
from omnirt.api.services import backplane
from omnirt.api.submission import GenerateSubmissionSchema, submit, wait_for
from omnirt.jobs.job import Job, JobState
from omnirt.tracing import span

bp = Blueprint("generate", __name__)


def finished_response(job: Job) -> Any:
    """The answer for a job that ended (sync mode): its result, or its error with the matching status."""
    if job.state == JobState.SUCCEEDED:
        return jsonify(result_with_urls(job))
    return failed_response(job)


def failed_response(job: Job) -> Any:
    """The answer for a job that was cancelled (409) or failed (its error, with the status its code maps to)."""
    if job.state == JobState.CANCELLED:
        return error_response(409, "cancelled", "The job was cancelled.", {"job_id": job.id})
    error = job.error or {"code": "internal_error", "message": "The job failed.", "details": {}}
    return error_response(
        status_for(error["code"]), error["code"], error["message"], {**error.get("details", {}), "job_id": job.id}
    )


def accepted(job: Job, created: bool) -> Any:
    """The job record, 202 while it runs (or when just created), with ``Location`` to poll it."""
    response = jsonify(job_to_dict(job))
    response.status_code = 202 if created or not job.terminal else 200
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return response


@bp.post("/v1/generate")
def generate() -> Any:
    """Run a generation request.
    ---
    post:
      summary: Queue a request; wait for it (sync) or answer 202 with the job (async_run).
      parameters:
        - {in: header, name: Idempotency-Key, schema: {type: string}, required: false}
      requestBody:
        content:
          application/json:
            schema: GenerateSubmission
      responses:
        200: {description: The GenerateResult (sync), content: {application/json: {schema: GenerateResult}}}
        202: {description: The job record (async, or sync past its timeout), content: {application/json: {schema: Job}}}
        400: {description: Invalid request, content: {application/json: {schema: Error}}}
        403: {description: Model not enabled, content: {application/json: {schema: Error}}}
        409: {description: Job id reused with a different request, content: {application/json: {schema: Error}}}
        429: {description: Too many queued jobs, content: {application/json: {schema: Error}}}
    """
    with span("POST /v1/generate", kind="server", parent=request.headers, attributes=_http_attributes()) as current:
        return _generate(current)


def _http_attributes() -> dict[str, Any]:
    return {"http.request.method": request.method, "url.path": request.path, "http.route": "/v1/generate"}


def _generate(current: Any) -> Any:
    submission = GenerateSubmissionSchema().load(json_object())
    key = request.headers.get("Idempotency-Key") or None
    job, created = submit(backplane(), submission["request"], job_id=submission["job_id"], idempotency_key=key)
    if current is not None:
        current.set_attributes({"omnirt.job_id": job.id, "omnirt.model": job.model})
    if submission["async_run"]:
        return accepted(job, created)
    settings = current_app.config["OMNIRT_SETTINGS"]
    timeout = min(submission["timeout_s"] or settings.sync_timeout_s, settings.sync_timeout_s)
    finished = wait_for(backplane(), job.id, timeout)
    if finished is None or not finished.terminal:
        return accepted(finished or job, True)
    return finished_response(finished)
