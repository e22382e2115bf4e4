"""`check`: verify the DESIGN.md §6 invariants on the database (pricegroups.invariants)."""

from __future__ import annotations

import argparse

from pricegroups import db
from pricegroups.invariants import DEFAULT_EXAMPLES, InvariantResult, check_invariants


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check", help="check the DESIGN.md §6 invariants on the database (exit 1 on a violation)",
        description="Prints each invariant with PASS or FAIL and a few of its violations; "
                    "exits 1 when any fails. See docs/operations.md.")
    p.add_argument("--database-url", help="default: DATABASE_URL, else the embedded PostgreSQL")
    p.add_argument("--run", metavar="RUN_ID",
                   help="check event evidence, scrapes and observed prices of this run only")
    p.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES, metavar="N",
                   help=f"violations printed per invariant (default {DEFAULT_EXAMPLES})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    with db.connect(args.database_url) as conn:
        results = check_invariants(conn, args.run, args.examples)
    for result in results:
        print(format_result(result))
    failed = [r.name for r in results if not r.ok]
    print(f"{len(results) - len(failed)} of {len(results)} invariants hold"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def format_result(result: InvariantResult) -> str:
    """One invariant as the operator reads it: verdict, rule, examples, and what was not checked."""
    lines = [f"{'PASS' if result.ok else 'FAIL'} {result.name}: {result.description}"]
    if not result.ok:
        lines.append(f"    {result.count} violation(s)" + (", e.g.:" if result.violations else ""))
        lines.extend(f"    - {v}" for v in result.violations)
        if result.count > len(result.violations):
            lines.append(f"    ... and {result.count - len(result.violations)} more")
    lines.extend(f"    not checked: {note}" for note in result.skipped)
    return "\n".join(lines)
