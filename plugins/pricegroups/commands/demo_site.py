"""`demo-site`: serve the demo chain site (docs/demo-site.md) until interrupted."""

from __future__ import annotations

import argparse
import signal
from datetime import date


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo-site", help="serve the simulated supermarket sites of a scenario")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (0: any free port; default 8765)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--scenario", help="scenario JSON file (docs/scenario.md); default: the built-in scenario")
    p.add_argument("--seed", type=int, help="seed of the built-in scenario (ignored with --scenario)")
    p.add_argument("--day", type=int, default=0, help="simulated day to start on (POST /_admin/day changes it)")
    p.add_argument("--epoch", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="the date of day 0 for dated paths /on/YYYY-MM-DD/ (default: the scenario's start date)")
    p.add_argument("--api-key", metavar="KEY",
                   help="make the chains' JSON API (the `api` app) answer only requests with X-Api-Key: KEY")
    p.add_argument("--write-scenario", metavar="FILE", help="write the scenario as JSON to FILE and exit")
    p.set_defaults(func=run_demo_site)


def run_demo_site(args: argparse.Namespace) -> int:
    from pricegroups.demo.generate import default_scenario
    from pricegroups.demo.scenario import Scenario
    from pricegroups.demo.server import DemoSite

    if args.scenario:
        scenario = Scenario.load(args.scenario)
    else:
        scenario = default_scenario() if args.seed is None else default_scenario(args.seed)
    if args.epoch:
        scenario = scenario.starting(args.epoch)
    if args.write_scenario:
        scenario.save(args.write_scenario)
        print(f"wrote {args.write_scenario}")
        return 0
    _stop_on_signals()  # before the first line is printed: whoever reads it may signal at once
    site = DemoSite(scenario, day=args.day, api_key=args.api_key)
    url = site.start(args.port, args.host)
    try:
        stores = sum(len(c.stores) for c in scenario.chains.values())
        print(f"demo site on {url} (day {args.day}, {len(scenario.chains)} chains, {stores} stores; "
              f"/on/YYYY-MM-DD/ serves the day since {scenario.start_date}); Ctrl-C stops it", flush=True)
        for chain in scenario.chains.values():
            app = f"  app: {chain.app}" + (" (X-Api-Key required)" if chain.app == "api" and args.api_key else "")
            print(f"  {chain.code:12} {chain.layout:7} {url}/{chain.code}/{app if chain.app else ''}", flush=True)
        site.serve_forever(args.port, args.host)
    except KeyboardInterrupt:
        site.stop()
    return 0


def _stop_on_signals() -> None:
    """Ctrl-C, SIGINT and SIGTERM stop the site cleanly, even when started in the background.

    A background job of a non-interactive shell (`make ... &`, nohup, CI
    runners) inherits SIGINT as ignored, and Python then keeps ignoring it.
    """
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
