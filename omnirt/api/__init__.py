"""The Flask front end: ``create_app`` builds the API; one blueprint per area, extensions set up with ``init_app``.

The API parses, validates against the registry, enqueues and relays; it never imports torch and never renders.
"""

from __future__ import annotations

import logging

from flask import Flask

from omnirt.settings import Settings, unknown_variables


def create_app(settings: Settings | None = None) -> Flask:
    from omnirt.api import artifacts, auth, avatar, errors, generate, health, jobs, openai, openapi, speech
    from omnirt.api.sock import sock
    from omnirt.backplane import Backplane
    from omnirt.telemetry import metrics
    from omnirt.workers.reaper import Reaper

    settings = settings or Settings.from_env()
    for warning in unknown_variables():
        logging.getLogger("omnirt").warning(warning)
    app = Flask("omnirt")
    app.config["OMNIRT_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 25}
    app.json.sort_keys = False

    backplane = Backplane(settings)
    app.extensions["omnirt"] = backplane
    errors.init_app(app)
    auth.init_app(app)
    sock.init_app(app)
    metrics.init_app(app, backplane)
    for blueprint in (health.bp, generate.bp, jobs.bp, artifacts.bp, openai.bp, speech.bp, avatar.bp, openapi.bp):
        app.register_blueprint(blueprint)
    if settings.embedded:
        backplane.dispatcher.start()
    else:
        backplane.background.append(Reaper(backplane).start())
    return app
