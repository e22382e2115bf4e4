"""Two workers, one file:// snapshot root: what one fetched, the other replays without a request.

Each worker is a separate OS process (as Celery workers on two machines would
be), sharing nothing but the database and the snapshot directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.scrape.conftest import day_date, store_id

ROOT = Path(__file__).resolve().parents[3]

# one chain scrape in a fresh interpreter; prints what the scrape log would hold
WORKER = """
import json, sys
import psycopg
from datetime import datetime
from pricegroups.scrape.service import scrape_chain
from pricegroups.settings import Settings

job = json.loads(sys.argv[1])
settings = Settings().with_overrides({"snapshot_root": job["root"], "requests_per_second": 0,
                                      "retry_backoff_s": 0.05, "http_timeout_s": 5, "http_retries": 3})
with psycopg.connect(job["db_url"]) as conn:
    report = scrape_chain(conn, job["run_id"], datetime.fromisoformat(job["at"]), job["chain"],
                          [job["store_id"]], settings)
outcome = report.outcomes[0]
print(json.dumps({"status": outcome.status, "from_snapshot": outcome.from_snapshot,
                  "http_requests": outcome.http_requests, "locator_requests": report.locator_requests,
                  "skus": sorted(item.sku for item in outcome.items), "error": outcome.error}))
"""


def run_worker(job: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    done = subprocess.run([sys.executable, "-c", WORKER, json.dumps(job)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_backfill_on_another_worker_replays_the_shared_snapshot(
    conn, db_url, demo_site, demo_chains, tmp_path
):
    chain = "freshmart"
    code = demo_site.scenario.chain(chain).stores[2].code
    shared = (tmp_path / "shared-snapshots").as_uri()  # what every worker's PRICEGROUPS_SNAPSHOT_ROOT says
    job = {"db_url": db_url, "root": shared, "chain": chain, "store_id": store_id(conn, chain, code),
           "at": day_date(demo_site, 0).isoformat()}

    first = run_worker({**job, "run_id": "worker-a"})
    assert first["status"] == "ok" and not first["from_snapshot"] and first["http_requests"] > 0

    demo_site.reset()
    demo_site.set_day(5)  # the site has moved on; the snapshot of day 0 has not
    second = run_worker({**job, "run_id": "worker-b"})
    assert demo_site.stats()["total"] == 0
    assert second["status"] == "ok" and second["from_snapshot"]
    assert second["http_requests"] == second["locator_requests"] == 0
    assert second["skus"] == first["skus"] and second["skus"]
