"""Each catalogue step leaves its counts in runs.summary under its own name."""

from __future__ import annotations

import json
from typing import Any, Mapping

import psycopg


def record_step(cur: psycopg.Cursor, run_id: str, step: str, counts: Mapping[str, Any]) -> None:
    """Merge {step: counts} into the run's summary (a run not registered in `runs` is left alone)."""
    cur.execute(
        "UPDATE runs SET summary = summary || jsonb_build_object(%s::text, %s::jsonb) WHERE run_id = %s",
        (step, json.dumps(dict(counts)), run_id),
    )
