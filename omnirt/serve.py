"""Running the API: gunicorn with event-driven (gevent) workers in a fleet, a threaded server embedded.

Fleet front ends are stateless: any number can run behind a load balancer, and restarting one loses nothing.
Embedded, one process holds the API and the worker threads (and torch), so it runs a single threaded server.

Long-lived streams (SSE job events, the WebSocket routes of flask-sock, streamed speech) must not starve the
requests that health checks and submits need. A fleet front end therefore runs gunicorn's ``gevent`` worker class:
each gunicorn worker monkey-patches the standard library when it starts (before it loads the app), so every
connection is a greenlet and a stream waiting on its next event holds a few kilobytes, not a thread out of a fixed
pool. What the API blocks on cooperates under the patch: redis-py sockets (the event relay's ``XREAD BLOCK``, session
channels), kombu/Celery publishing, ``queue.Queue`` and ``threading`` (greenlets), and simple-websocket's reader
thread and selector. ``OMNIRT_FRONTEND_WORKER_CLASS=gthread`` brings back the threaded workers (``--threads`` per
worker; each open stream holds one), for comparison (``omnirt bench streams``). The master raises its open-file
limit to the hard limit, since each stream is a socket.

Request lines are logged without API keys: the embedded server's access log redacts ``api_key=`` (WebSocket clients
send keys in the query), and gunicorn's access log format leaves the query string out.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any

from omnirt.settings import Settings

_QUERY_KEY = re.compile(r"((?:^|[?&;\s])api(?:_|%5f)key=)[^&;\s\"']*", re.IGNORECASE)
# gunicorn's default access log format with "%(r)s" (the request line, query included) as method, path, protocol
GUNICORN_ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(f)s" "%(a)s"'
FRONTEND_WORKER_CLASSES = ("gevent", "gthread")


def redact_keys(text: str) -> str:
    """``text`` (a request line, a log message) with every ``api_key=`` query value replaced by ``[redacted]``."""
    return _QUERY_KEY.sub(r"\1[redacted]", text)


def banner(host: str, port: int, settings: Settings) -> str:
    """What ``omnirt serve`` prints: the playground's URL first (the page ``make run`` opens), then curl lines."""
    base = f"http://{host}:{port}"
    auth = ' -H "Authorization: Bearer $OMNIRT_API_KEY"' if settings.api_keys else ""
    mode = "embedded (in-process workers, no Redis)" if settings.embedded else f"fleet (Redis {settings.redis_url})"
    key_hint = " (it asks for an API key)" if settings.api_keys else ""
    return (
        f"Playground: {base}/playground{key_hint}\n"
        f"OmniRT API on {base} - {mode}\n"
        f"  curl -s{auth} {base}/readyz\n"
        f"  curl -s{auth} {base}/v1/generate -H 'Content-Type: application/json' \\\n"
        '       -d \'{"task": "text2image", "model": "sd15", "inputs": {"prompt": "a cat"}}\'\n'
        f"  then download outputs[0].url; API description at {base}/openapi.json"
    )


def make_embedded_server(host: str, port: int, app: Any) -> Any:
    """A threaded werkzeug server for ``app`` whose access and error log lines never show an API key."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class RedactingRequestHandler(WSGIRequestHandler):
        def log(self, type: str, message: str, *args: Any) -> None:
            super().log(type, redact_keys(message), *(redact_keys(a) if isinstance(a, str) else a for a in args))

    return make_server(host, port, app, threaded=True, request_handler=RedactingRequestHandler)


def serve_embedded(host: str, port: int, settings: Settings) -> None:
    from omnirt.api import create_app

    server = make_embedded_server(host, port, create_app(settings))
    print(banner(host, server.server_port, settings), flush=True)
    server.serve_forever()


def _child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook: a dead worker's Prometheus files are merged into the totals, not left to count as live."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def frontend_config(host: str, port: int, settings: Settings, *, workers: int, threads: int) -> dict[str, Any]:
    """The gunicorn settings of a fleet front end: ``settings.frontend_worker_class`` workers (gevent unless told)."""
    worker_class = settings.frontend_worker_class
    if worker_class not in FRONTEND_WORKER_CLASSES:
        raise ValueError(f"OMNIRT_FRONTEND_WORKER_CLASS must be one of {', '.join(FRONTEND_WORKER_CLASSES)}")
    config: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": worker_class,
        "timeout": 0,  # streams and sync generations are long; liveness comes from /healthz
        "keepalive": 30,
        "access_log_format": GUNICORN_ACCESS_LOG_FORMAT,  # no query string: it may hold a key
        "child_exit": _child_exit,
        "control_socket_disable": True,  # one fixed path per user: several front ends on a host would share it
    }
    if worker_class == "gevent":
        config["worker_connections"] = settings.frontend_connections
    else:
        config["threads"] = threads
    return config


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit (children inherit it); returns the new limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    unlimited = resource.RLIM_INFINITY
    if soft == unlimited or (hard != unlimited and soft >= hard):
        return soft
    target = hard if hard != unlimited else max(soft, 1 << 16)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def serve_fleet(host: str, port: int, settings: Settings, *, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="omnirt-prometheus-"))
    config = frontend_config(host, port, settings, workers=workers, threads=threads)
    raise_open_file_limit()

    class FrontEnd(BaseApplication):
        def load_config(self) -> None:
            for name, value in config.items():
                self.cfg.set(name, value)

        def load(self) -> Any:
            from omnirt.api import create_app

            return create_app(Settings.from_env())

    print(banner(host, port, settings), flush=True)
    FrontEnd().run()
