"""The Flask front end: ``create_app`` builds the API; one blueprint per area, extensions set up with ``init_app``.

The API parses, validates against the registry, enqueues and relays; it never imports torch and never renders.
"""

from __future__ import annotations

import logging

from flask import Flask

from omnirt.settings import Settings, unknown_variables


def create_app(settings: Settings | None = None) -> Flask:
    from omnirt.api import (
        artifacts,
        auth,
        avatar,
        errors,
        generate,
        health,
        jobs,
        openai,
        openapi,
        playground,
        realtime,
        speech,
        videos,
        webrtc,
    )
    from omnirt.api.sock import sock
    from omnirt.tasks.dispatch import connect
    from omnirt.telemetry import metrics
    from omnirt.tracing import configure_tracing
    from omnirt.workers.reaper import Reaper

    settings = settings or Settings.from_env()
    configure_tracing("omnirt-api")  # only when the OTEL_* variables ask for it (omnirt.tracing)
    for warning in unknown_variables():
        logging.getLogger("omnirt").warning(warning)
    app = Flask("omnirt")
    app.config["OMNIRT_SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 25}
    app.json.sort_keys = False

    backplane = connect(settings)
    app.extensions["omnirt"] = backplane
    errors.init_app(app)
    auth.init_app(app)
    sock.init_app(app)
    metrics.init_app(app, backplane)
    blueprints = (
        health,
        generate,
        jobs,
        artifacts,
        openai,
        videos,
        realtime,
        speech,
        avatar,
        webrtc,
        openapi,
        playground,
    )
    for blueprint in blueprints:
        app.register_blueprint(blueprint.bp)
    if settings.embedded:
        backplane.dispatcher.start()
    else:
        backplane.background.append(Reaper(backplane).start())
    return app
