"""Command line entry point. Each command lives in its own module and registers itself.

A command module exposes `register(subparsers)`, which adds a sub-parser whose
`func(args) -> int` runs it. Modules are imported only when the CLI starts, so
`import pricegroups` stays free of work.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pricegroups.errors import PricegroupsError

# command modules, in the order their help is listed
COMMAND_MODULES = [
    "pricegroups.commands.database",
    "pricegroups.commands.demo_site",
    "pricegroups.commands.demo_chains",
    "pricegroups.commands.chains",
    "pricegroups.commands.scrape",
    "pricegroups.commands.groups",
    "pricegroups.commands.check",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pricegroups", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except PricegroupsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
