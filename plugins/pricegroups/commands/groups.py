"""`groups reset|show` (groups in the database) and `group` (one offline round on CSV files)."""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from pathlib import Path

from pricegroups import db
from pricegroups.settings import load_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("groups", help="show or reset the store groups in the database")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    reset = actions.add_parser("reset", help="put every store of a chain alone in a group of its own")
    reset.add_argument("--chain", help="chain code (default: every chain)")
    reset.add_argument("--database-url", help="default: DATABASE_URL, else the embedded PostgreSQL")
    reset.set_defaults(func=run_reset)
    show = actions.add_parser("show", help="print groups, anchors, members and when each was last verified")
    show.add_argument("--chain", help="chain code (default: every chain)")
    show.add_argument("--database-url", help="default: DATABASE_URL, else the embedded PostgreSQL")
    show.set_defaults(func=run_show)

    g = subparsers.add_parser(
        "group", help="one grouping round on a CSV price dump (same engine and rules as the DAG)",
        description="One maintenance round (health checks, then one merge pass) on PRICES.csv. Start from "
                    "--state-in (what an earlier round knew) or --groups (every store unverified) or nothing "
                    "(every store ungrouped). A store with current rows in PRICES.csv was scraped this round; "
                    "with --state-in, a store absent from it was not (as in the DAG). See docs/grouping.md.")
    g.add_argument("--prices", required=True, type=Path, help="PRICES.csv: chain,store,product,price,was_price,on_special,scraped_at")
    g.add_argument("--out", type=Path, help="GROUPS.csv to write: chain,store,anchor")
    start = g.add_mutually_exclusive_group()
    start.add_argument("--groups", type=Path, help="a previous GROUPS.csv (default: every store ungrouped)")
    start.add_argument("--state-in", type=Path, metavar="DIR",
                       help="a state directory written by --state-out: start from it instead of --groups")
    g.add_argument("--state-out", type=Path, metavar="DIR",
                   help="write the state after the round: DIR/groups.csv, DIR/stores.csv, DIR/rows.csv")
    g.add_argument("--effective-out", type=Path, metavar="FILE",
                   help="EFFECTIVE.csv to write: chain,store,product,price,on_special,source for every store")
    g.add_argument("--as-of", help="ISO 8601 time of the round (default: newest scraped_at in PRICES.csv)")
    g.add_argument("--window-hours", type=int, help="current pricing window (default 72)")
    g.add_argument("--max-member-deviation", type=float,
                   help="largest share of a store's prices that may be its own deviations (default 0.01)")
    g.add_argument("--events", type=Path, help="EVENTS.csv to write: one row per decision with its evidence")
    g.set_defaults(func=run_group)


def run_reset(args: argparse.Namespace) -> int:
    from pricegroups.grouping.admin import reset_groups

    with db.connect(args.database_url) as conn:
        moved = reset_groups(conn, args.chain, at=datetime.now(timezone.utc), run_id="cli:groups-reset")
    print(f"reset: {moved} store(s) moved into groups of their own")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from pricegroups.grouping.admin import error_estimates, show_groups
    from pricegroups.grouping.verification import format_estimate
    from pricegroups.settings import ESTIMATE_DAYS

    with db.connect(args.database_url) as conn:
        views = show_groups(conn, args.chain)
        estimates, newest = error_estimates(conn, args.chain)
    for chain in sorted({v.chain for v in views}):
        if chain in estimates:
            print(f"{chain}: served prices {format_estimate(estimates[chain])} "
                  f"(random verifications, {ESTIMATE_DAYS} days to {_when(newest)})")
        else:
            print(f"{chain}: served prices: no random verification measured in the last {ESTIMATE_DAYS} days")
    for v in views:
        print(f"{v.chain} group {v.group_id}: anchor {v.anchor} (scraped {_when(v.anchor_scraped_at)}), "
              f"{len(v.members)} member(s)")
        for m in v.members:
            overrides = f"  overrides {m.overrides}" if m.overrides is not None else ""
            check = (f"  last check {m.wrong}/{m.checked} wrong ({_when(m.measured_at)})"
                     if m.checked is not None else "")
            print(f"    {m.code}  verified {_when(m.verified_at)}  scraped {_when(m.scraped_at)}{overrides}{check}")
    stores = sum(1 + len(v.members) for v in views)
    print(f"{len(views)} group(s), {stores} store(s)")
    return 0


def run_group(args: argparse.Namespace) -> int:
    from pricegroups.errors import ConfigError
    from pricegroups.grouping.offline import parse_as_of, run_round

    overrides = {}
    if args.window_hours is not None:
        overrides["window_hours"] = args.window_hours
    if args.max_member_deviation is not None:
        overrides["max_member_deviation"] = args.max_member_deviation
    settings = load_settings(overrides)
    if not (args.out or args.state_out or args.effective_out or args.events):
        raise ConfigError("nothing to write: give --out, --state-out, --effective-out or --events")
    as_of = parse_as_of(args.as_of) if args.as_of else None
    summary = run_round(args.prices, args.out, settings, args.groups, as_of, args.events,
                        state_in=args.state_in, state_out=args.state_out, effective_out=args.effective_out)
    print(" ".join(f"{k}={v}" for k, v in summary.as_counts().items()))
    return 0


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="minutes") if value else "never"
