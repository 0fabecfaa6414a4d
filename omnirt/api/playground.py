"""The playground: the browser page that ``make run`` opens (Talk, Generate, Fleet), served as static files.

The page is plain HTML, CSS and JavaScript in ``omnirt/api/static/playground/`` (no build step, nothing from a CDN,
so it works offline); everything it shows comes from the public API, which its script calls like any other client.

Routes: ``GET /playground`` (the page), ``GET /playground/<asset>`` (its script and style sheet, by name),
``GET /playground/config.json`` (what the page preselects: the default avatar model), and ``GET /`` redirecting a
browser to the page. A WebSocket upgrade on ``/`` is not a browser navigation: werkzeug matches the FlashTalk route's
websocket rule (:mod:`omnirt.api.avatar`) for upgrades and this plain rule otherwise, so OpenTalking's
``ws://host:port/`` keeps working.

API keys: with keys configured these routes need one like every other route, but a browser navigation cannot send
a header, so they also accept the cookie ``omnirt_api_key`` (:data:`omnirt.api.auth.COOKIE_KEY`; only this
blueprint's routes read it, and the page sets it with ``Path=/playground``). Without a valid key they answer 401 with
a small HTML form that asks for the key, sets the cookie and opens the page. The page's script then sends
``Authorization: Bearer`` on every API call and ``?api_key=`` on WebSocket URLs.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, request, send_file

from omnirt.api.auth import COOKIE_KEY
from omnirt.api.errors import ApiError
from omnirt.avatars import names

bp = Blueprint("playground", __name__)

STATIC = Path(__file__).parent / "static" / "playground"
PAGE = "/playground"
ASSETS = {  # the files the page loads, with their content types (not left to the host's mimetypes table)
    "app.js": "text/javascript",
    "style.css": "text/css",
}

KEY_FORM = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>OmniRT playground: API key</title>
<style>
body{{margin:0;min-height:100vh;display:grid;place-items:center;background:#0f172a;color:#e2e8f0;
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}}
form{{background:#1e293b;padding:28px 32px;border-radius:14px;width:min(380px,90vw);box-shadow:0 10px 40px #0006}}
h1{{font-size:19px;margin:0 0 6px}} p{{margin:0 0 16px;color:#94a3b8}} .bad{{color:#fca5a5}}
input{{width:100%;box-sizing:border-box;padding:10px 12px;border-radius:8px;border:1px solid #334155;
background:#0f172a;color:inherit;font:inherit;margin-bottom:14px}}
button{{width:100%;padding:10px;border:0;border-radius:8px;background:#6366f1;color:#fff;font:inherit;
font-weight:600;cursor:pointer}}
</style></head>
<body><form id="key-form">
<h1>OmniRT playground</h1>
<p>This server needs an API key (one of <code>--api-key-file</code> / <code>OMNIRT_API_KEYS</code>).</p>
{notice}
<input id="key" name="key" type="password" autocomplete="current-password" placeholder="API key" required autofocus>
<button type="submit">Open the playground</button>
</form>
<script>
document.getElementById("key-form").addEventListener("submit", (event) => {{
  event.preventDefault();
  const key = document.getElementById("key").value.trim();
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = "{cookie}=" + encodeURIComponent(key) + "; Path={page}; SameSite=Strict" + secure;
  location.replace("{page}");
}});
</script></body></html>
"""


@bp.get("/")
def root() -> Any:
    """A browser at the server's root gets the playground (WebSocket upgrades on `/` are FlashTalk sessions).
    ---
    get:
      responses: {302: {description: Redirect to /playground}}
    """
    return redirect(PAGE, code=302)


@bp.get(PAGE)
@bp.get(f"{PAGE}/")
def page() -> Any:
    """The playground page: Talk, Generate, Fleet.
    ---
    get:
      responses:
        200: {description: The page (text/html)}
        401: {description: "With API keys configured and no valid key (header or cookie): an HTML form asking for it"}
    """
    return _static("index.html", "text/html")


@bp.get(f"{PAGE}/config.json")
def config() -> Any:
    """What the page preselects: the server's default avatar model.
    ---
    get:
      responses: {200: {description: "{default_avatar_model}"}}
    """
    return jsonify({"default_avatar_model": names.REFERENCE})


@bp.get(f"{PAGE}/<name>")
def asset(name: str) -> Any:
    """One of the page's files (`app.js`, `style.css`).
    ---
    get:
      parameters: [{in: path, name: name, required: true, schema: {type: string}}]
      responses: {200: {description: The file}, 404: {description: No such file}}
    """
    if name not in ASSETS:
        raise ApiError(404, "not_found", f"The playground has no file '{name}'.")
    return _static(name, ASSETS[name])


def _static(name: str, mimetype: str) -> Response:
    response = send_file(STATIC / name, mimetype=mimetype, conditional=True, etag=True, max_age=0)
    response.headers["Cache-Control"] = "no-cache"  # revalidate (ETag): an upgraded server serves its own page
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.after_request
def _key_form(response: Response) -> Response:
    """A 401 on a page route (no valid key: :mod:`omnirt.api.auth` refused it) becomes the form that asks for one."""
    if response.status_code != 401:
        return response
    notice = ""
    if request.cookies.get(COOKIE_KEY):
        notice = '<p class="bad">The key this browser sent was not accepted; enter another.</p>'
    body = KEY_FORM.format(notice=notice, cookie=COOKIE_KEY, page=html.escape(PAGE))
    form = Response(body, status=401, mimetype="text/html")
    for header in ("WWW-Authenticate",):
        if header in response.headers:
            form.headers[header] = response.headers[header]
    form.headers["Cache-Control"] = "no-store"
    return form
