"""Retention: how long each kind of stored data is kept, and pruning what is older.

Owns the policy (days per kind), kept in the store's `meta` table with the "kept since"
horizon of each kind, so `eventscope prune`, the daily prune of `collect all` and the readers
(a finding whose window starts before a horizon says so) agree; the pure arithmetic of
horizons and of those reasons; and the pruning I/O: batched deletes, one transaction per
batch so a SQLite writer (a collector) waits at most one batch, and payloads cleared in
place (the event row stays, so counts, graphs and lifecycles still work); and forgetting
the per-source state of sources gone idle (`IDLE_CHECKPOINTS_MS`).

Horizons fall on UTC midnights: a kind kept N days keeps every row from the midnight at or
before now - N days (between N and N + 1 days), whole days as the rollups and PostgreSQL's day
partitions count them. Every deletion goes through `_expire`: the one place where a table
partitioned by day would drop its partitions instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from eventscope.errors import EventscopeError, StoreError
# PRUNED_DETAIL (what a cleared payload holds) is kept with the schema, and named here too
from eventscope.tables import (DAY_MS, PRUNED_DETAIL, checkpoints, deliveries, event_rollup,
                               event_rollup_day, event_rollup_hour, events, handling_rollup,
                               handling_rollup_day, handling_rollup_hour, invocation_rollup,
                               invocation_rollup_day, invocation_rollup_hour, invocations,
                               latency_rollup, latency_rollup_day, meta, quarantine, redactions,
                               rollup_dirty, upsert_dialect)

POLICY_KEY = "retention"  # in `meta`: the policy in effect (JSON days per kind)
KEPT_SINCE_KEY = "retention_kept_since"  # in `meta`: JSON {kind: epoch ms} of the last prune
PRUNED_AT_KEY = "retention_pruned_ms"  # in `meta`: when the last prune ran
TRIMMED_KEY = "retention_trimmed"  # in `meta`: {kind: horizon} of the kinds a prune removed
CLEARED_KEY = "retention_payloads_cleared"  # in `meta`: payloads before it are all cleared
BATCH_ROWS = 5_000
# Checkpoints holding the state of a source that comes and goes, forgotten once idle this
# long: the pushed logs' state per log stream (`eventscope.collectors.logs_push`), where
# Lambda starts a new stream per container, so states of dead streams would pile up. A day
# is past Lambda's longest retry of an asynchronous delivery (6 hours): nothing reads them.
IDLE_CHECKPOINTS_MS = {"logs-push": DAY_MS}

KINDS = ("payloads", "raw", "quarantine", "minute_rollups", "day_rollups")
WHAT = {"payloads": "payloads", "raw": "events, invocations and deliveries",
        "quarantine": "quarantined inputs", "minute_rollups": "per-minute summaries",
        "day_rollups": "daily summaries"}


class RetentionError(EventscopeError):
    """A retention policy that cannot be applied (a user's mistake: exit 2)."""


@dataclass(frozen=True)
class Policy:
    """Days each kind is kept."""

    payloads: int = 7
    raw: int = 30
    quarantine: int = 30
    minute_rollups: int = 30
    day_rollups: int = 400

    def days(self, kind: str) -> int:
        value: int = getattr(self, kind)
        return value

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def policy_problems(policy: Policy) -> list[str]:
    """What makes a policy unusable (empty when it is fine)."""
    problems = [f"{kind} must be kept at least 1 day (got {policy.days(kind)})"
                for kind in KINDS if policy.days(kind) < 1]
    if policy.payloads > policy.raw:
        problems.append(f"payloads ({policy.payloads} days) cannot outlive their events "
                        f"({policy.raw} days)")
    if policy.day_rollups < policy.raw:
        problems.append(f"daily summaries ({policy.day_rollups} days) must be kept at least as "
                        f"long as raw rows ({policy.raw} days)")
    elif policy.minute_rollups < policy.raw:
        problems.append(f"per-minute summaries ({policy.minute_rollups} days) must be kept at "
                        f"least as long as the raw rows they sum ({policy.raw} days)")
    if policy.day_rollups < policy.minute_rollups:
        problems.append(f"daily summaries ({policy.day_rollups} days) must be kept at least as "
                        f"long as per-minute ones ({policy.minute_rollups} days)")
    return problems


def with_overrides(policy: Policy, overrides: Mapping[str, int | None]) -> Policy:
    """The policy with the given kinds' days replaced (None: unchanged); checked. Per-minute
    summaries not given follow the others: kept at least as long as raw rows and no longer
    than daily summaries (so `--raw-days 60` alone is a whole policy)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    changed = replace(policy, **given)
    if "minute_rollups" not in given:
        changed = replace(changed, minute_rollups=min(
            max(changed.minute_rollups, changed.raw), changed.day_rollups))
    problems = policy_problems(changed)
    if problems:
        raise RetentionError("bad retention: " + "; ".join(problems))
    return changed


def day_of(ms: int) -> int:
    return ms - ms % DAY_MS


def horizons(policy: Policy, now_ms: int) -> dict[str, int]:
    """Per kind, the first time kept: rows before it are pruned (a UTC midnight)."""
    return {kind: day_of(now_ms - policy.days(kind) * DAY_MS) for kind in KINDS}


def iso_day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")


def window_notes(policy: Policy, trimmed: Mapping[str, int], since_ms: int | None,
                 needs: tuple[str, ...]) -> list[str]:
    """The plain reasons a finding over [since_ms, ...) that reads the `needs` kinds gives
    when its window starts before the horizon of rows retention removed (`trimmed`; no
    window start: the whole store is asked for). Empty when nothing it needs was removed."""
    notes = []
    for kind in needs:
        horizon = trimmed.get(kind)
        if horizon is None or (since_ms is not None and since_ms >= horizon):
            continue
        shown = ("minutes before then are counted by whole days only"
                 if kind == "minute_rollups" else "showing from then")
        notes.append(f"{WHAT[kind]} kept for {policy.days(kind)} days: this window starts "
                     f"before {iso_day(horizon)}; {shown}")
    return notes


# --- what the store records ------------------------------------------------------------------

def _meta_value(conn: Connection, key: str) -> Any:
    found = conn.execute(sa.select(meta.c.value).where(meta.c.key == key)).scalar()
    return None if found is None else orjson.loads(found)


def stored_policy(conn: Connection) -> Policy:
    """The policy the store records (`prune`, `record_policy`), else the defaults."""
    found = _meta_value(conn, POLICY_KEY)
    if not isinstance(found, dict):
        return Policy()
    known = {f.name for f in fields(Policy)}
    return replace(Policy(), **{k: int(v) for k, v in found.items()
                                if k in known and isinstance(v, int)})


def stored_kept_since(conn: Connection, key: str = KEPT_SINCE_KEY) -> dict[str, int]:
    """{kind: first time kept} as the last prune recorded it (empty: never pruned); with
    `key=TRIMMED_KEY`, only the kinds some prune removed rows of."""
    found = _meta_value(conn, key)
    if not isinstance(found, dict):
        return {}
    return {k: int(v) for k, v in found.items() if k in KINDS and isinstance(v, int)}


def raw_pruned_before(conn: Connection) -> int | None:
    """The raw rows' horizon: minutes before it lost their raw rows, so their rollups are
    final and never recomputed (`Store.refresh_rollups`)."""
    return stored_kept_since(conn).get("raw")


@dataclass(frozen=True)
class Retention:
    """What a reader needs to know: the policy, its horizons, when the last prune ran."""

    policy: Policy
    kept_since: dict[str, int]  # every kind's horizon at the last prune
    trimmed: dict[str, int]  # the kinds a prune removed rows of: before this, rows are gone
    pruned_ms: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"days": self.policy.as_dict(), "kept_since_ms": self.kept_since,
                "kept_since": {k: iso_day(v) for k, v in self.kept_since.items()},
                "trimmed_before": {k: iso_day(v) for k, v in self.trimmed.items()},
                "pruned_ms": self.pruned_ms}

    def notes(self, since_ms: int | None, needs: tuple[str, ...]) -> list[str]:
        return window_notes(self.policy, self.trimmed, since_ms, needs)

    def summary(self) -> str | None:
        """One line for readers: what is kept since when (None: never pruned)."""
        if self.pruned_ms is None or "raw" not in self.kept_since:
            return None
        p = self.policy
        return (f"Data kept since {iso_day(self.kept_since['raw'])} ({p.raw} days; "
                f"payloads {p.payloads} days, daily summaries {p.day_rollups} days)")


def read_retention(engine: Engine) -> Retention:
    """The store's retention (one read of `meta`)."""
    with engine.connect() as conn:
        pruned = _meta_value(conn, PRUNED_AT_KEY)
        return Retention(stored_policy(conn), stored_kept_since(conn),
                         stored_kept_since(conn, TRIMMED_KEY),
                         pruned if isinstance(pruned, int) else None)


def record_policy(engine: Engine, policy: Policy) -> None:
    """Make `policy` the store's (what `collect all`'s daily prune applies)."""
    with engine.begin() as conn:
        _put_meta(conn, {POLICY_KEY: policy.as_dict()})


def _put_meta(conn: Connection, values: Mapping[str, Any]) -> None:
    insert = upsert_dialect(conn.dialect).insert(meta)
    statement = insert.on_conflict_do_update(index_elements=[meta.c.key],
                                             set_={"value": insert.excluded.value})
    conn.execute(statement, [{"key": k, "value": orjson.dumps(v).decode()}
                             for k, v in values.items()])


# --- pruning -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One table's rows of one kind, aged by one time column."""

    kind: str
    table: sa.Table
    column: str


# Raw rows before the summaries: a summary is never older than what it sums.
TARGETS = (
    Target("raw", events, "time_ms"),
    Target("raw", invocations, "start_ms"),
    Target("raw", deliveries, "time_ms"),
    Target("raw", redactions, "redacted_ms"),
    Target("raw", rollup_dirty, "minute_ms"),  # marks of minutes whose raw rows are gone
    Target("quarantine", quarantine, "quarantined_ms"),
    *(Target("minute_rollups", t, "minute_ms")  # the hour sums go with the minutes they sum
      for t in (event_rollup, invocation_rollup, handling_rollup, latency_rollup,
                event_rollup_hour, invocation_rollup_hour, handling_rollup_hour)),
    *(Target("day_rollups", t, "minute_ms")
      for t in (event_rollup_day, invocation_rollup_day, handling_rollup_day,
                latency_rollup_day)),
)


@dataclass
class Freed:
    """What pruning one table did (or, in a dry run, would do)."""

    kind: str
    table: str
    action: str  # "deleted" or "payloads cleared"
    rows: int = 0
    batches: int = 0
    partitions: list[str] = field(default_factory=list)  # PostgreSQL day partitions dropped
    note: str = ""  # what was left for the next prune, and why


@dataclass
class PruneReport:
    """The outcome of one prune: per table what it freed, and the space it made."""

    dry_run: bool
    now_ms: int
    policy: Policy
    kept_since: dict[str, int]
    tables: list[Freed] = field(default_factory=list)
    space: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "now_ms": self.now_ms, "days": self.policy.as_dict(),
                "kept_since_ms": self.kept_since,
                "kept_since": {k: iso_day(v) for k, v in self.kept_since.items()},
                "rows": self.rows, "tables": [asdict(t) for t in self.tables],
                "space": self.space}


def prune(store: Any, policy: Policy | None = None, now_ms: int | None = None, *,
          dry_run: bool = False, batch_rows: int = BATCH_ROWS,
          between_batches: Callable[[], None] | None = None) -> PruneReport:
    """Apply `policy` (default: the store's) to `store` at `now_ms` (default: now).

    The rollups of minutes about to lose their raw rows are settled first; then the new
    horizons are recorded (so no refresh recomputes a minute from a half-deleted past), then
    each target's old rows are deleted `batch_rows` at a time, each batch its own
    transaction (`between_batches` runs after each, for tests), then payloads older than
    theirs are cleared. A dry run settles the summaries too (derived rows, as every reader
    does), then counts only and records nothing.
    """
    try:
        return _prune(store, policy, now_ms, dry_run, batch_rows, between_batches)
    except sa.exc.OperationalError as exc:  # the store down or locked: the user's to fix
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise StoreError(f"cannot prune store {store.url}: "
                         f"{first[0] if first else type(exc).__name__}") from None


def _prune(store: Any, policy: Policy | None, now_ms: int | None, dry_run: bool,
           batch_rows: int, between_batches: Callable[[], None] | None) -> PruneReport:
    engine: Engine = store.engine
    now = int(time.time() * 1000) if now_ms is None else now_ms
    with engine.connect() as conn:
        chosen = policy or stored_policy(conn)
        cleared = _meta_value(conn, CLEARED_KEY)
        trimmed = stored_kept_since(conn, TRIMMED_KEY)
    problems = policy_problems(chosen)
    if problems:
        raise RetentionError("bad retention: " + "; ".join(problems))
    cut = horizons(chosen, now)
    report = PruneReport(dry_run, now, chosen, cut)
    before = _space(engine)
    # payloads are cleared from where the last completed clearing stopped (older ones were
    # cleared then), never below the raw horizon (those rows are deleted)
    payloads_from = max(cleared if isinstance(cleared, int) else cut["raw"], cut["raw"])
    store.refresh_rollups(before=cut["raw"])  # derived rows only, as every reader does
    if dry_run:
        for target in TARGETS:
            report.tables.append(Freed(target.kind, target.table.name, "deleted",
                                       _count_older(engine, target, cut[target.kind])))
        report.tables.append(Freed("payloads", "events", "payloads cleared",
                                   _count_payloads(engine, payloads_from, cut["payloads"])))
        report.tables.append(_forget_idle_checkpoints(engine, now, dry_run=True))
        report.space = _space_report(engine, before, before, dry_run=True)
        return report
    with engine.begin() as conn:
        _put_meta(conn, {POLICY_KEY: chosen.as_dict(), KEPT_SINCE_KEY: cut})
    report.tables.extend(_delete_old(engine, target, cut[target.kind], batch_rows,
                                     between_batches) for target in TARGETS)
    report.tables.append(_clear_all_payloads(engine, payloads_from, cut["payloads"],
                                             batch_rows, between_batches))
    report.tables.append(_forget_idle_checkpoints(engine, now, dry_run=False))
    for freed in report.tables:  # a later horizon hides rows an earlier prune removed too
        if freed.rows and freed.kind in KINDS and freed.table != rollup_dirty.name:
            trimmed[freed.kind] = max(trimmed.get(freed.kind, 0), cut[freed.kind])
    with engine.begin() as conn:  # only once done: a prune cut short clears from the last
        _put_meta(conn, {PRUNED_AT_KEY: now, TRIMMED_KEY: trimmed,
                         CLEARED_KEY: max(payloads_from, cut["payloads"])})
    report.space = _space_report(engine, before, _space(engine, vacuum=True), dry_run=False)
    return report


def _delete_old(engine: Engine, target: Target, cutoff: int, batch_rows: int,
                between_batches: Callable[[], None] | None) -> Freed:
    """Delete the target's rows before `cutoff`: on a PostgreSQL table partitioned by day,
    whole day partitions first (`partitions.drop_before`); then what is left (all of it on
    SQLite, the default partition's rows on PostgreSQL), `batch_rows` per transaction."""
    freed = Freed(target.kind, target.table.name, "deleted")
    if engine.dialect.name == "postgresql" and not _drop_partitions(engine, target, cutoff,
                                                                    freed):
        return freed
    while True:
        began = time.perf_counter()
        with engine.begin() as conn:
            count = _expire(conn, target.table, target.column, cutoff, batch_rows)
        if count == 0:
            return freed
        freed.rows, freed.batches = freed.rows + count, freed.batches + 1
        _after_batch(engine, began, between_batches)


def _drop_partitions(engine: Engine, target: Target, cutoff: int, freed: Freed) -> bool:
    """Drop the target's day partitions before `cutoff`, counting the rows they held into
    `freed`; False when a long reader held the table past the lock timeout (nothing dropped,
    and no row-by-row delete either: the next prune drops them)."""
    from eventscope import partitions
    older = sa.select(sa.func.count()).select_from(target.table).where(
        target.table.c[target.column] < cutoff)
    try:
        with engine.begin() as conn:
            if not partitions.is_partitioned(conn, target.table.name):
                return True
            before = int(conn.execute(older).scalar_one())
            freed.partitions = partitions.drop_before(conn, target.table.name, cutoff)
            freed.rows += before - int(conn.execute(older).scalar_one())
    except sa.exc.OperationalError as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        freed.note = ("day partitions not dropped, a reader held the table "
                      f"({first[0] if first else 'lock timeout'}): the next prune drops them")
        return False
    return True


MAX_PAUSE_S = 0.1  # the longest sleep of SQLite's busy handler between a writer's retries


def _after_batch(engine: Engine, began: float,
                 between_batches: Callable[[], None] | None) -> None:
    """Let waiting writers in: on SQLite, rest as long as the batch took (at most
    MAX_PAUSE_S), or a writer whose busy handler sleeps between retries keeps finding the
    next batch holding the lock. PostgreSQL writers wait for rows, not for the store."""
    if between_batches is not None:
        between_batches()
    if engine.dialect.name == "sqlite":
        time.sleep(min(time.perf_counter() - began, MAX_PAUSE_S))


def _expire(conn: Connection, table: sa.Table, column: str, cutoff: int, limit: int) -> int:
    """Delete at most `limit` rows of `table` whose `column` is before `cutoff`; how many.

    The one place rows leave the store by age: for a PostgreSQL table partitioned by day,
    `_drop_partitions` has dropped the whole days before `cutoff` first (cutoffs are
    midnights), so only rows of the default partition are left for this."""
    if conn.dialect.name == "sqlite":
        keys: list[Any] = [sa.literal_column("rowid")]
    else:  # a row's ctid is unique within its table only, and partitions are tables
        keys = [sa.literal_column("tableoid"), sa.literal_column("ctid")]
    chosen = sa.select(*keys).select_from(table).where(table.c[column] < cutoff).limit(limit)
    key: Any = keys[0] if len(keys) == 1 else sa.tuple_(*keys)
    return int(conn.execute(table.delete().where(key.in_(chosen))).rowcount or 0)


def _clear_all_payloads(engine: Engine, start: int, cutoff: int, batch_rows: int,
                        between_batches: Callable[[], None] | None) -> Freed:
    """Clear the payloads of events in [start, cutoff), in (time, id) order, batch by batch."""
    freed = Freed("payloads", "events", "payloads cleared")
    after: tuple[int, str] | None = None
    e = events.c
    while True:
        query = sa.select(e.time_ms, e.id).where(e.time_ms >= start, e.time_ms < cutoff)
        if after is not None:
            query = query.where(sa.or_(e.time_ms > after[0],
                                       sa.and_(e.time_ms == after[0], e.id > after[1])))
        began = time.perf_counter()
        with engine.begin() as conn:
            chosen = conn.execute(query.order_by(e.time_ms, e.id).limit(batch_rows)).all()
            if not chosen:
                return freed
            after = (chosen[-1][0], chosen[-1][1])
            count = conn.execute(events.update().where(
                e.id.in_([row[1] for row in chosen]), e.detail != PRUNED_DETAIL).values(
                detail=PRUNED_DETAIL)).rowcount or 0
        freed.rows, freed.batches = freed.rows + int(count), freed.batches + 1
        _after_batch(engine, began, between_batches)


def _forget_idle_checkpoints(engine: Engine, now: int, dry_run: bool) -> Freed:
    """Delete (dry run: count) the checkpoints of `IDLE_CHECKPOINTS_MS`' collectors not
    updated for that long (one statement: a few rows a day per log stream)."""
    freed = Freed("idle_state", checkpoints.name, "deleted")
    idle = sa.or_(*(sa.and_(checkpoints.c.collector == collector,
                            checkpoints.c.updated_ms < now - idle_ms)
                    for collector, idle_ms in IDLE_CHECKPOINTS_MS.items()))
    with engine.begin() as conn:
        if dry_run:
            freed.rows = int(conn.execute(sa.select(sa.func.count()).select_from(checkpoints)
                                          .where(idle)).scalar_one())
        else:
            freed.rows = int(conn.execute(checkpoints.delete().where(idle)).rowcount or 0)
            freed.batches = 1
    return freed


def _count_older(engine: Engine, target: Target, cutoff: int) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(target.table).where(
            target.table.c[target.column] < cutoff)).scalar() or 0)


def _count_payloads(engine: Engine, start: int, cutoff: int) -> int:
    e = events.c
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(
            e.time_ms >= start, e.time_ms < cutoff, e.detail != PRUNED_DETAIL)).scalar() or 0)


# --- space: SQLite pages (cheap); PostgreSQL reuses space after (auto)vacuum ---------------

def _space(engine: Engine, vacuum: bool = False) -> dict[str, int]:
    """SQLite's page size, page count, free pages and auto_vacuum mode (empty elsewhere).
    With `vacuum` and an incremental auto_vacuum store, free pages are returned first."""
    if engine.dialect.name != "sqlite":
        return {}
    with engine.connect() as conn:  # no transaction: the driver's own statements
        sqlite_conn: Any = conn.connection.dbapi_connection

        def pragma(name: str) -> int:
            return int(sqlite_conn.execute(f"PRAGMA {name}").fetchone()[0])

        if vacuum and pragma("auto_vacuum") == 2:  # INCREMENTAL
            # a script runs the pragma to its end; one execute() frees a single page
            sqlite_conn.executescript("PRAGMA incremental_vacuum;")
        return {"page_size": pragma("page_size"), "page_count": pragma("page_count"),
                "freelist_count": pragma("freelist_count"), "auto_vacuum": pragma("auto_vacuum")}


def _space_report(engine: Engine, before: Mapping[str, int], after: Mapping[str, int], *,
                  dry_run: bool) -> dict[str, Any]:
    """The bytes pruning freed inside the file and returned to the file system, and what to
    do about the rest."""
    if engine.dialect.name != "sqlite":
        return {"freed_bytes": None,
                "advice": "PostgreSQL reuses the space of deleted rows after (auto)vacuum; "
                          "VACUUM FULL returns it to the file system"}
    if dry_run:
        return {"freed_bytes": None, "file_bytes": before["page_count"] * before["page_size"],
                "advice": "dry run: nothing deleted"}
    size = before["page_size"]
    used_before = before["page_count"] - before["freelist_count"]
    used_after = after["page_count"] - after["freelist_count"]
    freed = max(0, used_before - used_after) * size
    returned = max(0, before["page_count"] - after["page_count"]) * size
    free_now = after["freelist_count"] * size
    if after["auto_vacuum"] == 2:
        advice = "incremental auto_vacuum: free pages returned to the file system"
    elif after["auto_vacuum"] == 1:
        advice = "auto_vacuum: free pages returned to the file system"
    elif free_now:
        advice = (f"{free_now} bytes are free inside the file and reused by new rows; "
                  "VACUUM returns them to the file system (it rewrites the file: stop the "
                  "collectors first)")
    else:
        advice = "no free pages inside the file"
    return {"freed_bytes": freed, "returned_bytes": returned, "free_bytes": free_now,
            "file_bytes": after["page_count"] * size, "advice": advice}
