"""Running the API: gunicorn with threaded workers (WebSocket-capable) in a fleet, a threaded server embedded.

Fleet front ends are stateless: any number can run behind a load balancer, and restarting one loses nothing.
Embedded, one process holds the API and the worker threads, so it runs a single threaded server.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from omnirt.settings import Settings


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


def serve_embedded(host: str, port: int, settings: Settings) -> None:
    from werkzeug.serving import make_server

    from omnirt.api import create_app

    server = make_server(host, port, create_app(settings), threaded=True)
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
            self.cfg.set("child_exit", child_exit)

        def load(self) -> Any:
            from omnirt.api import create_app

            return create_app(Settings.from_env())

    print(banner(host, port, settings), flush=True)
    FrontEnd().run()
