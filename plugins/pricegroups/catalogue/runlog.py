"""Each catalogue step leaves its counts in runs.summary under its own name."""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

import psycopg


def record_step(cur: psycopg.Cursor, run_id: str, step: str, counts: Mapping[str, Any],
                context: Iterable[str] = ()) -> bool:
    """Merge {step: counts} into the run's summary; False when nothing was written.

    A re-run that changed nothing (every count outside `context` is zero) keeps the
    counts of the call that did the work, so a repeated step leaves the summary as
    it was. A run not registered in `runs` is left alone.
    """
    context = set(context)
    idle = not any(v for k, v in counts.items() if k not in context)
    cur.execute(
        """UPDATE runs SET summary = summary || jsonb_build_object(%s::text, %s::jsonb)
           WHERE run_id = %s AND NOT (%s AND summary ? %s)""",
        (step, json.dumps(dict(counts)), run_id, idle, step),
    )
    return cur.rowcount > 0
