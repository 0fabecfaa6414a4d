"""Celery: the app and its configuration (``app``), queue routing (``routing``), how work is sent and each process's
backplane (``dispatch``), and the task definitions (``generate``, ``session``). ``celery -A omnirt ...`` finds the app
through :mod:`omnirt`."""
