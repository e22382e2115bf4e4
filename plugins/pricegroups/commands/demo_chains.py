"""`demo-chains`: register the demo site's three chains, with their site profiles, in the database."""

from __future__ import annotations

import argparse

from pricegroups import db
from pricegroups.migrate import migrate
from pricegroups.demo.chains import register_demo_chains


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo-chains", help="register the demo site's chains (migrates first)")
    p.add_argument("--base-url", required=True, help="where the demo site answers, e.g. http://127.0.0.1:8765")
    p.add_argument("--dated", action="store_true",
                   help="each run sees the simulated day of its logical date (for a scheduler; docs/demo-site.md)")
    p.add_argument("--database-url", help="default: DATABASE_URL, else the embedded PostgreSQL")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with db.connect(args.database_url) as conn:
        migrate(conn)
        for code, chain_id in register_demo_chains(conn, args.base_url, args.dated).items():
            where = args.base_url.rstrip("/") + ("/on/{ds}" if args.dated else "")
            print(f"chain {code} (id {chain_id}) at {where}")
        conn.commit()
    return 0
