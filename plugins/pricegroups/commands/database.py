"""`migrate` and `db-url`: set up and locate the pricegroups database."""

from __future__ import annotations

import argparse

from pricegroups import db
from pricegroups.migrate import migrate


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("migrate", help="apply pending SQL migrations (idempotent)")
    p.add_argument("--database-url", help="default: DATABASE_URL, else the embedded PostgreSQL")
    p.set_defaults(func=run_migrate)
    p = subparsers.add_parser("db-url", help="print the database URL in use (starts the embedded server)")
    p.set_defaults(func=run_db_url)


def run_migrate(args: argparse.Namespace) -> int:
    with db.connect(args.database_url) as conn:
        applied = migrate(conn)
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(map(str, applied)) if applied else ''}")
    return 0


def run_db_url(args: argparse.Namespace) -> int:
    print(db.database_url())
    return 0
