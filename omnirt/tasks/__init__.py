"""Celery: the app and its configuration (``app``), queue routing (``routing``), and the task definitions
(``generate``). ``celery -A omnirt ...`` finds the app through :mod:`omnirt`."""
