"""The one way the API's blueprints reach the services behind them: the backplane this app was built with (job store,
events, sessions, avatars, workers, dispatcher), set by :func:`omnirt.api.create_app`."""

from __future__ import annotations

from typing import Any

from flask import current_app


def backplane() -> Any:
    """This app's :class:`omnirt.backplane.Backplane`."""
    return current_app.extensions["omnirt"]
