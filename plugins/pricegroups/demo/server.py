"""DemoSite: the demo site served over HTTP on loopback from a background thread.

    site = DemoSite(default_scenario(), day=0)
    base_url = site.start()          # port 0: a free port
    ...
    site.set_day(1); site.stats(); site.add_event(Event("rate_limit", "valueway", day=1, count=3))
    site.stop()
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

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
        response = self.app.handle(self.command, url.path, url.query, body, dict(self.headers.items()))
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

    def __init__(self, scenario: Scenario | None = None, day: int = 0, api_key: str | None = None) -> None:
        if scenario is None:
            from pricegroups.demo.generate import default_scenario

            scenario = default_scenario()
        self.app = SiteApp(scenario, day, api_key)
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


class DemoSiteProcess:
    """The demo site in a child process (`python -m pricegroups demo-site`), driven over its admin endpoints.

    In a thread of the process that also scrapes, rendering the site's pages
    competes with parsing them for one interpreter lock, so a demo day would
    measure the site as well as the pipeline; a real chain's site runs on its
    own servers. Same control surface as DemoSite for what the demo needs.
    """

    def __init__(self, scenario: Scenario | None = None, day: int = 0, workdir: str | None = None) -> None:
        self._scenario = scenario
        self._day = day
        self._workdir = workdir
        self._process: Any = None
        self._url: str | None = None
        self._scenario_file: str | None = None

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        if self._url is not None:
            return self._url
        scenario_args: list[str] = []
        if self._scenario is not None:  # else the child builds the built-in scenario itself
            path = tempfile.NamedTemporaryFile(prefix="demo-scenario-", suffix=".json", dir=self._workdir,
                                               delete=False).name
            self._scenario.save(path)
            self._scenario_file = path
            scenario_args = ["--scenario", path]
        plugins = str(Path(__file__).resolve().parents[2])  # this very library, not another installed one
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [plugins, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "pricegroups", "demo-site", *scenario_args, "--port", str(port),
             "--host", host, "--day", str(self._day)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )
        first = self._process.stdout.readline()  # "demo site on http://host:port (day ...": it serves now
        if not first.startswith("demo site on "):
            self.stop()
            raise RuntimeError(f"the demo site did not start: {first!r}")
        self._url = first.split()[3]
        return self._url

    def set_day(self, day: int) -> None:
        self._admin("POST", "day", params={"day": day})
        self._day = day

    def stats(self) -> dict[str, Any]:
        """Request counts (admin requests excluded), as DemoSite.stats."""
        return self._admin("GET", "stats")

    def reset(self) -> None:
        self._admin("POST", "reset")

    def _admin(self, method: str, endpoint: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.base_url}/_admin/{endpoint}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=60)
            self._process.stdout.close()
            self._process = None
            self._url = None
        if self._scenario_file is not None:
            os.unlink(self._scenario_file)
            self._scenario_file = None

    @property
    def base_url(self) -> str:
        if self._url is None:
            raise RuntimeError("the demo site is not running")
        return self._url

    @property
    def day(self) -> int:
        return self._day
