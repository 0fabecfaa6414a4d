"""Running the API: gunicorn with threaded workers (WebSocket-capable) in a fleet, a threaded server embedded.

Fleet front ends are stateless: any number can run behind a load balancer, and restarting one loses nothing.
Embedded, one process holds the API and the worker threads, so it runs a single threaded server.

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


def redact_keys(text: str) -> str:
    """``text`` (a request line, a log message) with every ``api_key=`` query value replaced by ``[redacted]``."""
    return _QUERY_KEY.sub(r"\1[redacted]", text)


def banner(host: str, port: int, settings: Settings) -> str:
    base = f"http://{host}:{port}"
    auth = ' -H "Authorization: Bearer $OMNIRT_API_KEY"' if settings.api_keys else ""
    mode = "embedded (in-process workers, no Redis)" if settings.embedded else f"fleet (Redis {settings.redis_url})"
    return (
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


def serve_fleet(host: str, port: int, settings: Settings, *, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="omnirt-prometheus-"))

    def child_exit(server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)

    class FrontEnd(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", threads)
            self.cfg.set("timeout", 0)  # streams and sync generations are long; liveness comes from /healthz
            self.cfg.set("keepalive", 30)
            self.cfg.set("access_log_format", GUNICORN_ACCESS_LOG_FORMAT)  # no query string: it may hold a key
            self.cfg.set("child_exit", child_exit)

        def load(self) -> Any:
            from omnirt.api import create_app

            return create_app(Settings.from_env())

    print(banner(host, port, settings), flush=True)
    FrontEnd().run()
