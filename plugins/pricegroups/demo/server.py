"""DemoSite: the demo site served over HTTP on loopback from a background thread.

    site = DemoSite(default_scenario(), day=0)
    base_url = site.start()          # port 0: a free port
    ...
    site.set_day(1); site.stats(); site.add_event(Event("rate_limit", "valueway", day=1, count=3))
    site.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from pricegroups.demo.model import Event
from pricegroups.demo.scenario import Scenario
from pricegroups.demo.site import SiteApp

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: a scraper's Session reuses its connection
    disable_nagle_algorithm = True  # else small writes wait on delayed ACKs: ~40 ms per response
    server_version = "DemoChainSite/1"
    app: SiteApp  # set on the subclass made per server

    def _respond(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.app.handle(self.command, url.path, url.query, body)
        if response.delay:
            time.sleep(response.delay)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_DELETE = do_HEAD = do_PUT = _respond

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class DemoSite:
    """The demo site in a background thread; the control methods also work before start()."""

    def __init__(self, scenario: Scenario | None = None, day: int = 0) -> None:
        if scenario is None:
            from pricegroups.demo.generate import default_scenario

            scenario = default_scenario()
        self.app = SiteApp(scenario, day)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve on host:port (0: a free port) and return the base URL, e.g. http://127.0.0.1:41234."""
        if self._server is not None:
            return self.base_url
        handler = type("Handler", (_Handler,), {"app": self.app})
        self._server = _Server((host, port), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-site", daemon=True)
        self._thread.start()
        log.info("demo site serving %s (day %d)", self.base_url, self.app.day)
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = self._thread = None

    def serve_forever(self, port: int, host: str = "127.0.0.1") -> None:
        """Serve in the calling thread until interrupted (the CLI command)."""
        self.start(port, host)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> "DemoSite":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the demo site is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def scenario(self) -> Scenario:
        """The scenario being served, including events added at run time (the ground truth)."""
        return self.app.scenario

    @property
    def day(self) -> int:
        return self.app.day

    def set_day(self, day: int) -> None:
        self.app.set_day(day)

    def add_event(self, *events: Event) -> None:
        self.app.add_event(*events)

    def clear_events(self) -> None:
        self.app.clear_events()

    def stats(self) -> dict[str, Any]:
        return self.app.stats()

    def reset(self) -> None:
        self.app.reset()
