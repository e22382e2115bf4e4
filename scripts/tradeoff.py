"""The grouping trade-off on the demo: wrong inferred prices against stores scraped, per setting.

Runs the main job (scripts/demo.py, the real DAG over the demo's simulated
days) once per value of `max_member_deviation` (budget at its default) and
once per value of `verify_budget_share` (deviation at its default), one after
the other (each run rebuilds the demo database), and prints one markdown table
row per run from the demo's RESULT line plus the share of all store-days that
were scraped. Takes a few minutes per run.

Usage: python scripts/tradeoff.py [--days 14] [--deviations 0.005,0.01,0.02] [--budgets 0.05,0.1,0.2]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_demo(days: int, env: dict[str, str]) -> dict[str, str]:
    """One demo run with extra environment; its RESULT line and summary line as a dict."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--days", str(days)],
        env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )
    (ROOT / "reports").mkdir(exist_ok=True)
    (ROOT / "reports" / f"tradeoff-{'-'.join(f'{k}={v}' for k, v in env.items())}.log").write_text(out.stdout)
    if out.returncode != 0:
        raise SystemExit(f"demo failed with {env}:\n{out.stderr[-2000:]}")
    figures: dict[str, str] = {}
    for line in out.stdout.splitlines():
        if line.startswith("RESULT ") or line.startswith("summary: "):
            figures.update(re.findall(r"(\w+)=([^,\s]+)", line))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--deviations", default="0.005,0.01,0.02")
    parser.add_argument("--budgets", default="0.05,0.1,0.2")
    args = parser.parse_args()
    # the defaults first: that row is the demo's own result, and the one a cut-short run still gives
    deviations = sorted((v for v in args.deviations.split(",") if v), key=lambda v: v != "0.01")
    variants = [("max_member_deviation", v) for v in deviations]
    variants += [("verify_budget_share", v) for v in args.budgets.split(",") if v and v != "0.1"]
    print("| setting | value | wrong inferred share | estimated (95% CI) | scraped, all days | "
          "scraped, last day | spot-check pages / all pages | groups / zones last day | ARI last day |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, value in variants:
        f = run_demo(args.days, {f"PRICEGROUPS_{name.upper()}": value})
        scraped = int(f["scrapes_total"]) / int(f["scrapes_if_every_store_daily"])
        print(f"| {name} | {value} | {f['wrong_inferred_share']} | {f.get('estimated_wrong_share', '?')} "
              f"({f.get('estimated_wrong_low', '?')}-{f.get('estimated_wrong_high', '?')}) | {scraped:.3f} | "
              f"{f['scraped_share_last_day']} | {f.get('spot_page_share', '?')} | "
              f"{f['groups_last_day']} / {f['true_zones_last_day']} | "
              f"{f['ari_last_day']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
