"""Database states built once per test session and cloned per test.

A state is a database left by some expensive work (e.g. a few simulated days
through the pipeline), named and built from a parent state. The first process
of the session that needs it builds it, under an advisory lock, so the other
pytest-xdist worker waits for it instead of building it again; every user then
gets a clone of its own (`CREATE DATABASE ... TEMPLATE`, milliseconds). A
state's facts (small JSON: store codes a later step needs, the run id) are its
database's comment, so any worker reads them without connecting to it.

State databases are named `pgt_state_<session>_<name>`; the session id is made
once by the controlling pytest process and inherited by its workers, which
drop nothing: the controller drops the session's states when it finishes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import psycopg
from psycopg import sql

from pricegroups import db
from tests.databases import create_database, drop_database

SESSION_VARIABLE = "PRICEGROUPS_TEST_SESSION"
PREFIX = "pgt_state_"

Facts = dict[str, Any]
Build = Callable[[str, Facts], Facts]  # (url of a clone of the parent, the parent's facts) -> the state's facts

_clones = itertools.count()


def new_session() -> str:
    """A fresh session id (for the controlling process; workers inherit it through the environment)."""
    os.environ[SESSION_VARIABLE] = uuid.uuid4().hex[:8]
    return os.environ[SESSION_VARIABLE]


def session_id() -> str:
    return os.environ.get(SESSION_VARIABLE) or new_session()


def shared_directory() -> Path:
    """A directory every worker of the session sees; its existence tells the controller to clean up."""
    return Path(tempfile.gettempdir()) / f"pricegroups-tests-{session_id()}"


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Step:
    """How a state is made: from `parent` (None: the migrated template) by `build`."""

    name: str
    parent: str | None
    build: Build


@dataclass
class States:
    """The named states of one session on one server."""

    server_url: str
    template: str
    steps: dict[str, Step] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shared_directory().mkdir(parents=True, exist_ok=True)

    def define(self, step: Step) -> None:
        self.steps[step.name] = step

    def database(self, name: str) -> str:
        return f"{PREFIX}{session_id()}_{name}"

    def facts(self, name: str) -> Facts:
        """The state's facts, building it (and its ancestors) first when no process has yet."""
        found = self._read_facts(name)
        if found is not None:
            return found
        step = self.steps[name]
        parent_facts = self.facts(step.parent) if step.parent else {}
        source = self.database(step.parent) if step.parent else self.template
        target = self.database(name)
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            admin.execute("SELECT pg_advisory_lock(%s)", (_lock_key(target),))
            try:
                found = self._read_facts(name)  # built by another worker while this one waited
                if found is None:
                    found = self._build(admin, step, source, target, parent_facts)
            finally:
                admin.execute("SELECT pg_advisory_unlock(%s)", (_lock_key(target),))
        return found

    def _build(self, admin: psycopg.Connection, step: Step, source: str, target: str, parent: Facts) -> Facts:
        building = target + "_build"
        create_database(admin, building, source)
        facts = step.build(db.with_database(self.server_url, building), dict(parent))
        # the comment marks the state complete: it is set on the final name, after the rename
        admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(target)))
        admin.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(target), sql.Literal(json.dumps(facts))))
        return facts

    def _read_facts(self, name: str) -> Facts | None:
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            row = admin.execute(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", (self.database(name),)
            ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    @contextmanager
    def clone(self, name: str) -> Iterator[tuple[str, Facts]]:
        """(url, facts) of a copy of the state of the caller's own, dropped afterwards."""
        facts = self.facts(name)
        copy = f"pgt_{os.getpid()}_c{next(_clones)}_{name}"[:63]
        with psycopg.connect(self.server_url, autocommit=True) as admin:
            create_database(admin, copy, self.database(name))
        try:
            yield db.with_database(self.server_url, copy), facts
        finally:
            with psycopg.connect(self.server_url, autocommit=True) as admin:
                drop_database(admin, copy)


def clean_up(server_url: Callable[[], str]) -> None:
    """Drop the session's state databases and shared files (the controller, once its workers are done);
    nothing to do, and no server started, when no test used a state."""
    directory = shared_directory()
    if not directory.exists():
        return
    with psycopg.connect(server_url(), autocommit=True) as admin:
        names = [r[0] for r in admin.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (f"{PREFIX}{session_id()}_",))]
        for name in names:
            drop_database(admin, name)
    shutil.rmtree(directory, ignore_errors=True)
