"""The run log: every step of a run leaves its counts in runs.summary, one layout for all.

    summary.steps.<step>.<part> = counts

`part` names one task instance's share of a step: "all" for a step done by one
task, a key of its batch for a mapped step (`chain:<first store id>` for a
scrape batch, `groups:<first group id>`, `pairs:<first pair>`), so that no two
instances of one run write over each other and the summary adds up every one.
The DAG's summary task (pipeline.summary) reads nothing else.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

import psycopg

ALL = "all"


def record_step(target: psycopg.Connection | psycopg.Cursor, run_id: str, step: str, counts: Mapping[str, Any],
                part: str = ALL, context: Iterable[str] | None = None) -> bool:
    """Set summary.steps.<step>.<part> of the run to `counts`; False when nothing was written.

    Written in the caller's transaction (commit is the caller's). With `context`
    (the names of counts that describe the input, not work done), a repeated call
    that did no work (every other count zero) keeps the counts of the call that
    did, so a re-run leaves the summary as it was. A run not in `runs` is left alone.
    """
    idle = context is not None and not any(v for k, v in counts.items() if k not in set(context))
    cursor = target.execute(
        """UPDATE runs SET summary = jsonb_set(
               jsonb_set(summary, '{steps}', coalesce(summary->'steps', '{}'::jsonb)),
               ARRAY['steps', %(step)s],
               coalesce(summary #> ARRAY['steps', %(step)s], '{}'::jsonb)
                   || jsonb_build_object(%(part)s::text, %(counts)s::jsonb))
           WHERE run_id = %(run)s AND NOT (%(idle)s AND summary #> ARRAY['steps', %(step)s, %(part)s] IS NOT NULL)""",
        {"step": step, "part": part, "counts": json.dumps(dict(counts), default=str), "run": run_id, "idle": idle},
    )
    return cursor.rowcount > 0


def step_parts(summary: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{step: {part: counts}} from a runs.summary."""
    return dict((summary or {}).get("steps") or {})


def step_totals(summary: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{step: its parts' numeric counts added up} from a runs.summary."""
    return {step: add_up(parts.values()) for step, parts in step_parts(summary).items()}


def add_up(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The numeric counts of a step's parts added up key by key (lists, flags and names left out)."""
    total: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, Mapping):
            for k, v in part.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    total[k] = total.get(k, 0) + v
    return total
