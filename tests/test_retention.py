"""Retention and `eventscope prune` on real SQLite and PostgreSQL stores.

Prune removes exactly what is older than each kind's horizon and nothing newer, clears
payloads but keeps their events, keeps summaries longer than raw rows (and never recomputes
a pruned minute from what is left), counts only on a dry run, frees nothing the second time,
lets another writer in between batches, records what it kept for readers, and findings over
a window starting before a horizon say so.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventscope import retention
from eventscope.cli import main
from eventscope.collectors.service import prune_loop, run_loop
from eventscope.findings import load, read
from eventscope.records import BusEvent, Invocation, Quarantined
from eventscope.retention import PRUNED_DETAIL, Policy, horizons, prune
from eventscope.store import Store, open_store
from eventscope.tables import (DAY_MS, HOUR_MS, checkpoints, deliveries, event_rollup,
                               event_rollup_day, event_rollup_hour, events, invocation_rollup_day,
                               invocations, meta, metadata, quarantine, redactions)

NOW = 1_781_517_600_000  # 2026-06-15T10:00:00Z
DETAIL = '{"orderId":"o-1","amount":3}'


def event(id_: str, time_ms: int, kind: str = "OrderCreated") -> BusEvent:
    return BusEvent(id=id_, source="com.shop.orders", detail_type=kind, time_ms=time_ms,
                    detail=DETAIL, size_bytes=120, correlation_key="o-1", version="1")


def invocation(request_id: str, start_ms: int, event_id: str | None = None) -> Invocation:
    return Invocation(request_id=request_id, consumer="billing-fn",
                      log_group="/aws/lambda/billing-fn", log_stream="s", start_ms=start_ms,
                      outcome="ok", event_id=event_id, end_ms=start_ms + 5, duration_ms=5.0,
                      complete=True)


def delivery(key: str, time_ms: int) -> dict[str, Any]:
    return {"key": key, "event_id": None, "bus": "shop", "rule_arn": "arn:r",
            "target_arn": "arn:t", "message_type": "INVOCATION_ATTEMPT_SUCCESS",
            "outcome": "ok", "attempt": 1, "time_ms": time_ms, "error_code": None,
            "error_message": None}


def redaction(event_id: str, at_ms: int) -> dict[str, Any]:
    return {"event_id": event_id, "json_path": "$.detail.email", "detail_type": "OrderCreated",
            "detector": "email", "replaced": True, "redacted_ms": at_ms}


def quarantined(store: Store, position: str, at_ms: int) -> None:
    """A quarantined input as if stored at `at_ms` (the store stamps the time of writing)."""
    store.write_batch(quarantined=[Quarantined("f.ndjson", position, "invalid_json", "bad",
                                               b"{")])
    with store.engine.begin() as conn:
        conn.execute(quarantine.update().where(quarantine.c.position == position)
                     .values(quarantined_ms=at_ms))


def column(store: Store, table: sa.Table, name: str) -> list[Any]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(sa.select(table.c[name])).scalars())


def wipe(store: Store) -> None:
    with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if table is meta:
                conn.execute(meta.delete().where(meta.c.key.like("retention%")))
            else:
                conn.execute(table.delete())


# --- the policy and its horizons (pure) -----------------------------------------------------

def test_horizons_are_midnights_keeping_at_least_the_days_asked() -> None:
    """Each kind keeps from the UTC midnight at or before now - days: N to N+1 days."""
    cut = horizons(Policy(payloads=7, raw=30), NOW)
    assert cut["payloads"] == 1_780_876_800_000  # 2026-06-08T00:00Z
    assert cut["raw"] == 1_778_889_600_000  # 2026-05-16T00:00Z
    assert all(h % DAY_MS == 0 and NOW - h >= Policy().days(k) * DAY_MS for k, h in cut.items())


@pytest.mark.parametrize("policy, problem", [
    (Policy(payloads=0), "payloads must be kept at least 1 day"),
    (Policy(payloads=31, raw=30), "payloads (31 days) cannot outlive their events"),
    (Policy(raw=40, minute_rollups=30), "per-minute summaries (30 days) must be kept"),
    (Policy(minute_rollups=30, day_rollups=20), "daily summaries (20 days) must be kept"),
])
def test_a_policy_that_cannot_hold_is_refused_with_its_reason(policy: Policy,
                                                              problem: str) -> None:
    """Each impossible combination is named; the defaults are fine."""
    assert any(problem in p for p in retention.policy_problems(policy))
    assert retention.policy_problems(Policy()) == []


def test_minute_summaries_not_given_follow_raw_rows_and_daily_summaries() -> None:
    """`--raw-days 60` alone (as the deploy stack's prune command gives it) keeps per-minute
    summaries 60 days; daily ones kept 20 days cap them; given explicitly, they are checked."""
    assert retention.with_overrides(Policy(), {"raw": 60}).minute_rollups == 60
    assert retention.with_overrides(Policy(), {"payloads": 3, "raw": 10, "day_rollups": 20}
                                    ).minute_rollups == 20
    with pytest.raises(retention.RetentionError, match="per-minute summaries"):
        retention.with_overrides(Policy(), {"raw": 60, "minute_rollups": 30})


@given(since=st.none() | st.integers(0, 2 * NOW), horizon=st.integers(0, 2 * NOW))
def test_a_window_note_appears_exactly_when_the_window_starts_before_removed_rows(
        since: int | None, horizon: int) -> None:
    """A note names the days kept and the horizon's date iff since < horizon (or no since)."""
    notes = retention.window_notes(Policy(), {"raw": horizon}, since, ("raw", "payloads"))
    expected = since is None or since < horizon
    assert bool(notes) == expected
    if expected:
        assert notes == [f"events, invocations and deliveries kept for 30 days: this window "
                         f"starts before {retention.iso_day(horizon)}; showing from then"]


# --- prune on a real store -----------------------------------------------------------------

# a time: an age, or a millisecond around one of the drawn policy's horizons
TIMES = (st.integers(0, 450 * DAY_MS).map(lambda age: ("ago", age))
         | st.tuples(st.sampled_from(retention.KINDS), st.integers(-1, 1)))
POLICIES = st.builds(
    lambda p, r, m, d: Policy(payloads=p, raw=p + r, quarantine=p + r, minute_rollups=p + r + m,
                              day_rollups=p + r + m + d),
    st.integers(1, 10), st.integers(0, 30), st.integers(0, 30), st.integers(0, 400))


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policy=POLICIES, event_ages=st.lists(TIMES, max_size=12),
       invocation_ages=st.lists(TIMES, max_size=12), other_ages=st.lists(TIMES, max_size=6))
def test_prune_removes_exactly_what_is_older_than_each_horizon(
        store: Store, policy: Policy, event_ages: list[tuple[str, int]],
        invocation_ages: list[tuple[str, int]], other_ages: list[tuple[str, int]]) -> None:
    """Rows older than their kind's horizon go, newer ones stay; payloads of events between
    the raw and payload horizons are cleared with the rows kept; daily summaries still count
    every event ever written that is newer than theirs."""
    wipe(store)
    cut = horizons(policy, NOW)

    def at(drawn: tuple[str, int]) -> int:
        return NOW - drawn[1] if drawn[0] == "ago" else cut[drawn[0]] + drawn[1]

    times, starts, others = ([at(d) for d in drawn]
                             for drawn in (event_ages, invocation_ages, other_ages))
    store.write_batch(events_=[event(f"e{i}", t) for i, t in enumerate(times)],
                      invocations_=[invocation(f"r{i}", t, f"e{i}") for i, t in enumerate(starts)],
                      extra_rows={
                          deliveries: [delivery(f"d{i}", t) for i, t in enumerate(others)],
                          redactions: [redaction(f"e{i}", t) for i, t in enumerate(others)]})
    for i, t in enumerate(others):
        quarantined(store, f"line {i}", t)
    report = prune(store, policy, NOW, batch_rows=3)
    store.refresh_rollups()  # as readers do: the minutes after the raw horizon too

    assert column(store, events, "time_ms") == sorted(t for t in times if t >= cut["raw"])
    assert column(store, invocations, "start_ms") == sorted(t for t in starts if t >= cut["raw"])
    assert column(store, deliveries, "time_ms") == sorted(t for t in others if t >= cut["raw"])
    assert column(store, redactions, "redacted_ms") == sorted(
        t for t in others if t >= cut["raw"])
    assert column(store, quarantine, "quarantined_ms") == sorted(
        t for t in others if t >= cut["quarantine"])
    with store.engine.connect() as conn:
        details = dict(conn.execute(sa.select(events.c.time_ms, events.c.detail)).all())
    assert all((d == PRUNED_DETAIL) == (t < cut["payloads"]) for t, d in details.items())
    assert all(m >= cut["minute_rollups"] for m in column(store, event_rollup, "minute_ms"))
    with store.engine.connect() as conn:
        in_days = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(
            event_rollup_day.c.events), 0))).scalar()
    assert in_days == sum(1 for t in times if t >= cut["day_rollups"])
    assert report.rows == (sum(t < cut["raw"] for t in times)
                           + sum(t < cut["raw"] for t in starts)
                           + 2 * sum(t < cut["raw"] for t in others)
                           + sum(t < cut["quarantine"] for t in others)
                           + sum(cut["raw"] <= t < cut["payloads"] for t in times)
                           + sum(t.rows for t in report.tables
                                 if t.kind in ("minute_rollups", "day_rollups")
                                 or t.table == "rollup_dirty"))


def test_payloads_are_cleared_but_their_events_still_count_and_join(store: Store) -> None:
    """An event past the payload horizon keeps its row, type, order key and invocations; no
    reader of payloads takes the cleared one for a sample; the dashboard says it was pruned."""
    old = NOW - 10 * DAY_MS
    store.write_batch(events_=[event("old", old), event("new", NOW - 1000)],
                      invocations_=[invocation("r1", old + 50, "old")])
    prune(store, Policy(), NOW)
    assert column(store, events, "id") == ["new", "old"]
    assert load.load_event_details(store.engine, ["old"]) == {"old": PRUNED_DETAIL}
    assert read.find_orders(store.engine, "o-1") == ["o-1"]
    life = read.lifecycle(store.engine, "o-1")
    assert [e["id"] for e in life["events"]] == ["old", "new"]
    assert list(load.load_samples(store.engine)["id"]) == ["new"]
    assert [row[0] for row in store.iter_events()] == ["new"]
    from eventscope.dashboard import views
    assert views.shown_payload(PRUNED_DETAIL, (), reveal=True) == (
        "text", "(payload pruned: older than the payloads this store keeps)")


def test_summaries_outlive_raw_rows_and_are_never_recomputed_from_what_is_left(
        store: Store) -> None:
    """40-day-old invocations leave the raw table but stay in the daily summaries, also after
    a late invocation lands in their pruned minute and the rollups are refreshed."""
    old = NOW - 40 * DAY_MS
    store.write_batch(events_=[event("e1", old)],
                      invocations_=[invocation(f"r{i}", old + i, "e1") for i in range(3)])
    prune(store, Policy(), NOW)
    assert column(store, invocations, "start_ms") == []

    def in_days() -> int:
        with store.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.sum(
                invocation_rollup_day.c.invocations))).scalar() or 0)

    assert in_days() == 3
    store.write_batch(invocations_=[invocation("late", old + 10, "e1")])
    store.refresh_rollups()
    assert in_days() == 3
    assert load.load_call_totals(store.engine)["invocations"].sum() == 3


def test_dry_run_counts_what_a_prune_then_removes_and_changes_nothing(store: Store) -> None:
    """The dry run's counts equal the real run's; between them, nothing moved or recorded."""
    store.write_batch(events_=[event(f"e{i}", NOW - i * 5 * DAY_MS) for i in range(10)])
    dry = prune(store, Policy(), NOW, dry_run=True)
    assert len(column(store, events, "id")) == 10
    assert column(store, events, "time_ms") and retention.read_retention(
        store.engine).pruned_ms is None
    real = prune(store, Policy(), NOW)
    assert {(t.table, t.action): t.rows for t in dry.tables if t.table != "rollup_dirty"} == {
        (t.table, t.action): t.rows for t in real.tables if t.table != "rollup_dirty"}
    assert dry.rows > 0


def test_a_second_prune_frees_nothing(store: Store) -> None:
    """Pruning is idempotent: the same policy at the same time removes nothing more."""
    store.write_batch(events_=[event(f"e{i}", NOW - i * 3 * DAY_MS) for i in range(20)],
                      invocations_=[invocation(f"r{i}", NOW - i * 3 * DAY_MS) for i in range(20)])
    assert prune(store, Policy(), NOW).rows > 0
    assert prune(store, Policy(), NOW).rows == 0


def store_url_is_sqlite(store: Store) -> bool:
    return store.engine.dialect.name == "sqlite"


def test_a_prune_cut_short_is_finished_by_the_next(store: Store) -> None:
    """A prune that stops after its first batch (the process killed, the store gone) leaves
    the rest, payloads included, to the next prune: none is skipped for good."""
    store.write_batch(events_=[event(f"e{i}", NOW - (10 + i) * DAY_MS) for i in range(30)])

    def killed() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prune(store, Policy(), NOW, batch_rows=2, between_batches=killed)
    # SQLite: stopped after one batch of 2 deletes; PostgreSQL dropped the old days whole,
    # then stopped in the first batch of payload clearing
    assert len(column(store, events, "id")) == (28 if store_url_is_sqlite(store) else 21)
    prune(store, Policy(), NOW)
    cut = horizons(Policy(), NOW)
    with store.engine.connect() as conn:
        kept = conn.execute(sa.select(events.c.time_ms, events.c.detail)).all()
    assert sorted(t for t, _ in kept) == sorted(
        NOW - (10 + i) * DAY_MS for i in range(30) if NOW - (10 + i) * DAY_MS >= cut["raw"])
    assert {d for _, d in kept} == {PRUNED_DETAIL}


def test_another_writer_gets_in_between_batches(store: Store, store_url: str) -> None:
    """Each batch is its own transaction: between batches a second connection that waits at
    most 0.2 s for a lock can write and read (one transaction for the whole prune would
    keep it out on SQLite). 500 days back: on PostgreSQL those rows sit in the default
    partition, deleted in batches like SQLite's (whole days are dropped, not batched)."""
    store.write_batch(events_=[event(f"e{i}", NOW - 500 * DAY_MS - i) for i in range(50)])
    if store_url.startswith("sqlite"):
        other = sa.create_engine(store_url, connect_args={"timeout": 0.2})
    else:
        other = sa.create_engine(store_url)
    writes: list[int] = []

    def write_and_read() -> None:
        with other.begin() as conn:
            if other.dialect.name == "postgresql":
                conn.exec_driver_sql("SET LOCAL lock_timeout = '200ms'")
            conn.execute(events.insert().values(
                id=f"w{len(writes)}", source="s", detail_type="t", time_ms=NOW, resources="[]",
                detail="{}", size_bytes=2))
            writes.append(conn.execute(sa.select(sa.func.count()).select_from(events)).scalar())

    try:
        report = prune(store, Policy(), NOW, batch_rows=10, between_batches=write_and_read)
    finally:
        other.dispose()
    assert [t.batches for t in report.tables
            if t.action == "deleted" and t.table == "events"] == [5]
    assert len(writes) >= 5 and writes[0] == 41  # 50 - 10 deleted + the first write


def test_prune_records_the_retention_and_horizons_for_readers(store: Store) -> None:
    """After a prune the store says what it keeps since when, and which kinds lost rows."""
    store.write_batch(events_=[event("old", NOW - 35 * DAY_MS)])
    prune(store, Policy(raw=31, minute_rollups=31), NOW)
    kept = read.retention(store.engine)
    assert kept["days"]["raw"] == 31
    assert kept["kept_since"]["raw"] == "2026-05-15"
    assert set(kept["trimmed_before"]) == {"raw", "minute_rollups"}
    assert read.retention_summary(store.engine) == (
        "Data kept since 2026-05-15 (31 days; payloads 7 days, daily summaries 400 days)")


def test_findings_over_a_window_before_the_horizon_say_so(store: Store) -> None:
    """A raw-row finding asked from before the raw horizon carries the reason; from after
    it, none; the rollup-backed whole-store view of failures only once daily summaries
    were pruned."""
    store.write_batch(events_=[event("old", NOW - 35 * DAY_MS)],
                      invocations_=[invocation("r", NOW - 35 * DAY_MS, "old")])
    prune(store, Policy(), NOW)
    assert read.retention_notes(store.engine, NOW - 40 * DAY_MS, read.RAW) == [
        "events, invocations and deliveries kept for 30 days: this window starts before "
        "2026-05-16; showing from then"]
    assert read.retention_notes(store.engine, NOW - DAY_MS, read.RAW) == []
    assert read.retention_notes(store.engine, None, read.rollup_needs(None)) == []
    assert read.rollup_needs(NOW) == ("minute_rollups", "day_rollups")
    assert read.rollup_needs(NOW - NOW % DAY_MS) == ("day_rollups",)


def test_idle_log_stream_states_are_forgotten_and_other_checkpoints_kept(store: Store) -> None:
    """The pushed logs' per-stream state (collector `logs-push`) not updated for over a day
    goes; a fresh one stays, and so does every other collector's checkpoint however old (a
    polling cursor must never be lost). The dry run counts what the prune then deletes."""
    from eventscope.collectors.logs_push import COLLECTOR

    stale, fresh, cursor = (COLLECTOR, "g:dead"), (COLLECTOR, "g:live"), ("logs", "g")
    store.write_batch(checkpoints_={stale: "{}", fresh: "{}", cursor: "123"})
    with store.engine.begin() as conn:
        for (collector, key), age in ((stale, DAY_MS + 1), (fresh, DAY_MS - 1),
                                      (cursor, 400 * DAY_MS)):
            conn.execute(checkpoints.update().where(checkpoints.c.collector == collector,
                                                    checkpoints.c.key == key)
                         .values(updated_ms=NOW - age))
    counted = {t.table: t.rows for t in prune(store, Policy(), NOW, dry_run=True).tables}
    assert counted["checkpoints"] == 1
    assert {t.table: t.rows for t in prune(store, Policy(), NOW).tables}["checkpoints"] == 1
    with store.engine.connect() as conn:
        left = set(conn.execute(sa.select(checkpoints.c.collector, checkpoints.c.key)).all())
    assert left == {fresh, cursor}


def test_an_empty_store_has_nothing_to_prune(store: Store) -> None:
    """Every table: zero rows, and a report of zero."""
    report = prune(store, Policy(), NOW)
    assert report.rows == 0 and {t.rows for t in report.tables} == {0}


# --- the command -----------------------------------------------------------------------------

@pytest.fixture
def run() -> Iterator[Any]:
    runner = CliRunner()
    yield lambda *args: runner.invoke(main, list(args))


def test_prune_command_on_an_empty_store_says_there_is_nothing_to_prune(
        store_url: str, run: Any) -> None:
    """Exit 0 and one plain sentence after the retention in effect."""
    open_store(store_url).engine.dispose()
    result = run("prune", "--db", store_url)
    assert result.exit_code == 0, result.output
    assert "nothing to prune: the store holds nothing older than its retention" in result.output


def test_prune_command_prints_per_table_what_it_freed(store_url: str, run: Any) -> None:
    """Rows per table; on SQLite the bytes freed in the file; --json the same as data."""
    import time
    now = int(time.time() * 1000)
    opened = open_store(store_url)
    opened.write_batch(events_=[event("old", now - 50 * DAY_MS), event("mid", now - 9 * DAY_MS)],
                       invocations_=[invocation("r", now - 50 * DAY_MS, "old")])
    opened.engine.dispose()
    dry = run("prune", "--db", store_url, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    counted = {(t["table"], t["action"]): t["rows"] for t in json.loads(dry.output)["tables"]}
    assert counted[("events", "deleted")] == 1 and counted[("events", "payloads cleared")] == 1
    result = run("prune", "--db", store_url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:4] == ["events", "raw", "1", "deleted"] for line in lines)
    assert any(line.split()[:3] == ["invocations", "raw", "1"] for line in lines)
    assert any(line.split()[:4] == ["events", "payloads", "1", "payloads"] for line in lines)
    if store_url.startswith("sqlite"):
        assert "bytes inside the file" in result.output
    else:
        assert "after (auto)vacuum" in result.output
    again = json.loads(run("prune", "--db", store_url, "--json").output)
    assert again["rows"] == 0


@pytest.mark.parametrize("args, message", [
    (["--payload-days", "40"], "error: bad retention: payloads (40 days) cannot outlive"),
    (["--raw-days", "60", "--minute-rollup-days", "30"],
     "error: bad retention: per-minute summaries (30 days)"),
    (["--raw-days", "60", "--rollup-days", "50"], "error: bad retention: daily summaries"),
])
def test_prune_command_refuses_a_retention_that_cannot_hold(
        store_url: str, run: Any, args: list[str], message: str) -> None:
    """Exit 2 and one `error:` line; nothing is recorded."""
    open_store(store_url).engine.dispose()
    result = run("prune", "--db", store_url, *args)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()]
    assert result.output.startswith(message)


def test_prune_command_usage_errors_exit_2(tmp_path: Any, run: Any) -> None:
    """Zero days is a usage error; a store that does not exist is one `error:` line."""
    assert run("prune", "--raw-days", "0").exit_code == 2
    missing = run("prune", "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.exit_code == 2 and missing.output.startswith("error: no store at")


def test_days_given_to_prune_become_the_stores_retention(store_url: str, run: Any) -> None:
    """`collect all`'s daily prune applies what `prune` was last given; a dry run records
    nothing."""
    open_store(store_url).engine.dispose()
    assert run("prune", "--db", store_url, "--raw-days", "45", "--dry-run").exit_code == 0
    opened = open_store(store_url)
    assert retention.read_retention(opened.engine).policy == Policy()
    assert run("prune", "--db", store_url, "--raw-days", "45").exit_code == 0
    assert retention.read_retention(opened.engine).policy == Policy(raw=45, minute_rollups=45)
    opened.engine.dispose()


def test_failures_and_latency_json_carry_the_retention_reason(store_url: str,
                                                              run: Any) -> None:
    """`--since` before the raw horizon: the reason in --json and a `note:` before the table."""
    import time
    now = int(time.time() * 1000)
    opened = open_store(store_url)
    opened.write_batch(events_=[event("old", now - 40 * DAY_MS)],
                       invocations_=[invocation("r", now - 40 * DAY_MS, "old")])
    prune(opened, Policy(), now)
    opened.engine.dispose()
    latency = json.loads(run("latency", "--db", store_url, "--since", "60d", "--json").output)
    assert latency["retention"][0].startswith("events, invocations and deliveries kept for 30 "
                                              "days: this window starts before ")
    assert json.loads(run("latency", "--db", store_url, "--since", "1d", "--json").output)[
        "retention"] == []
    failures = json.loads(run("failures", "--db", store_url, "--since", "60d",
                              "--json").output)
    assert [n[:37] for n in failures["retention"]] == ["per-minute summaries kept for 30 days"]
    table = run("latency", "--db", store_url, "--since", "60d")
    assert table.output.startswith("note: events, invocations and deliveries kept for 30 days")
    check = json.loads(run("check", "--db", store_url, "--json").output)
    assert check["retention"][0].startswith("events, invocations and deliveries kept for 30 ")


def test_whole_store_findings_say_what_retention_removed(store_url: str, run: Any) -> None:
    """subscriptions, duplicates and undocumented carry the reasons in --json (and as `note:`
    lines before a table) once a prune removed what they read."""
    import time
    now = int(time.time() * 1000)
    opened = open_store(store_url)
    opened.write_batch(events_=[event("old", now - 40 * DAY_MS), event("mid", now - 10 * DAY_MS)],
                       invocations_=[invocation("r", now - 40 * DAY_MS, "old")])
    prune(opened, Policy(), now)
    opened.engine.dispose()
    raw = "events, invocations and deliveries kept for 30 days: this window starts before "
    for command in (["subscriptions"], ["duplicates"]):
        notes = json.loads(run(*command, "--db", store_url, "--json").output)["retention"]
        assert [n[:len(raw)] for n in notes] == [raw], command
    catalog = str(Path(retention.__file__).parent / "demo_catalog")
    notes = json.loads(run("undocumented", "--db", store_url, "--catalog", catalog,
                           "--json").output)["retention"]
    assert [n[:30] for n in notes] == ["payloads kept for 7 days: this"]
    assert run("duplicates", "--db", store_url).output.startswith(f"note: {raw}")


def test_a_store_locked_by_another_writer_is_an_error_not_a_crash(tmp_path: Any) -> None:
    """A prune that cannot get the write lock raises StoreError (one `error:` line, exit 2
    in the command; logged and retried in `collect all`)."""
    from eventscope.errors import StoreError
    url = f"sqlite:///{tmp_path / 'store.db'}"
    opened = open_store(url)
    opened.write_batch(events_=[event("old", NOW - 40 * DAY_MS)])
    opened.refresh_rollups()  # so the prune's first write is its own
    opened.engine.dispose()
    impatient = Store(sa.create_engine(url, connect_args={"timeout": 0.1}))
    holder = sa.create_engine(url)
    with holder.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        with pytest.raises(StoreError, match="cannot prune store .*database is locked"):
            prune(impatient, Policy(), NOW)
        conn.exec_driver_sql("ROLLBACK")
    holder.dispose()
    impatient.engine.dispose()


# --- collect all's daily prune ---------------------------------------------------------------

def test_the_daily_prune_loop_applies_the_stored_retention_and_survives_failures(
        store: Store) -> None:
    """The loop's first step prunes with the store's recorded policy; a failing prune is
    counted and retried, never fatal."""
    retention.record_policy(store.engine, Policy(payloads=1, raw=2, minute_rollups=2))
    store.write_batch(events_=[event("old", NOW - 3 * DAY_MS), event("new", NOW)])
    loop = prune_loop(store, every_s=3600, clock=lambda: NOW)
    stop = threading.Event()
    original = loop.step
    calls: list[int] = []

    def step() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise retention.RetentionError("bad retention: simulated")
        original()
        stop.set()

    loop.step = step
    run_loop(loop, stop, error_pause=0)
    assert (loop.errors, loop.state, loop.counters.prunes) == (1, "stopped", 1)
    assert loop.counters.rows_pruned >= 1
    assert column(store, events, "id") == ["new"]


def test_minute_summaries_go_at_their_horizon_and_daily_ones_stay(store: Store) -> None:
    """Minute rows of pruned minutes go with the per-minute horizon, and the hour rows
    summing them with them; day rows stay."""
    old = NOW - 3 * DAY_MS
    store.write_batch(events_=[event("old", old)])
    store.refresh_rollups()
    assert column(store, event_rollup_hour, "minute_ms") == [old - old % HOUR_MS]
    prune(store, Policy(payloads=1, raw=2, minute_rollups=2, day_rollups=10), NOW)
    assert column(store, event_rollup, "minute_ms") == []
    assert column(store, event_rollup_hour, "minute_ms") == []
    assert column(store, event_rollup_day, "minute_ms") == [old - old % DAY_MS]


# --- the dashboard -----------------------------------------------------------------------------

def test_the_dashboard_sidebar_says_what_is_kept_since_when(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a prune that removed rows, the sidebar carries `Data kept since ...` and, for the
    whole-store window, the raw rows' reason; before any prune it carries neither."""
    import time

    from tests.dashboard_harness import page
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    monkeypatch.delenv("EVENTSCOPE_CATALOG", raising=False)
    now = int(time.time() * 1000)
    opened = open_store(url)
    opened.write_batch(events_=[event("old", now - 40 * DAY_MS), event("new", now - 1000)],
                       invocations_=[invocation("r", now - 1000, "new")])

    def captions() -> list[str]:
        at = page("overview")
        assert not at.exception
        return [c.value for c in at.sidebar.caption]

    assert not any("kept" in c for c in captions())
    prune(opened, Policy(), now)
    opened.engine.dispose()
    import streamlit as st
    st.cache_data.clear()  # the dashboard's reads live 30 s: a later visit sees the prune
    shown = captions()
    day = retention.iso_day(horizons(Policy(), now)["raw"])
    assert f"Data kept since {day} (30 days; payloads 7 days, daily summaries 400 days)" in shown
    assert ("events, invocations and deliveries kept for 30 days: this window starts before "
            f"{day}; showing from then") in shown


def test_expiry_deletes_only_old_rows_of_a_day_partitioned_table(store: Store) -> None:
    """On PostgreSQL a row is named by (tableoid, ctid): the same ctid in another day's
    partition is another row and stays (until `_expire` drops partitions instead)."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("partitions are PostgreSQL's")
    table = sa.Table("by_day", sa.MetaData(), sa.Column("time_ms", sa.BigInteger))
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE by_day (time_ms bigint) PARTITION BY RANGE (time_ms)")
        for day in range(2):
            conn.exec_driver_sql(f"CREATE TABLE by_day_{day} PARTITION OF by_day FOR VALUES "
                                 f"FROM ({day * DAY_MS}) TO ({(day + 1) * DAY_MS})")
        conn.execute(table.insert(), [{"time_ms": day * DAY_MS + i}
                                      for day in range(2) for i in range(10)])
    with store.engine.begin() as conn:
        assert retention._expire(conn, table, "time_ms", DAY_MS, 100) == 10
        assert conn.execute(sa.select(sa.func.min(table.c.time_ms), sa.func.count())).one() == (
            DAY_MS, 10)


@pytest.mark.parametrize("days", [(7, 30, 400), (3, 60, 90), (1, 1, 1)])
def test_the_deploy_stacks_prune_command_runs_as_given(store_url: str, run: Any,
                                                       days: tuple[int, int, int]) -> None:
    """The stack's PruneCommand output (`eventscope.deploy.PRUNE_COMMAND`) with any days
    the template accepts (payloads <= raw <= rollups) is a whole retention for `prune`."""
    from eventscope import deploy
    values = dict(zip(("PayloadRetentionDays", "RawRetentionDays", "RollupRetentionDays"),
                      map(str, days)))
    words = deploy.PRUNE_COMMAND.split()
    args = [values.get(w[2:-1], w) if w.startswith("${") else w for w in words]
    assert args[0] == "eventscope"
    open_store(store_url).engine.dispose()
    result = run(*args[1:], "--db", store_url)
    assert result.exit_code == 0, result.output
    opened = open_store(store_url)
    policy = retention.read_retention(opened.engine).policy
    opened.engine.dispose()
    assert (policy.payloads, policy.raw, policy.day_rollups) == days


def test_an_incremental_auto_vacuum_store_gets_its_space_back_at_once(tmp_path: Any) -> None:
    """SQLite made with auto_vacuum=INCREMENTAL: the pages prune frees go back to the file
    system (the file shrinks); without it they stay free inside the file, and it says so."""
    import sqlite3
    sizes = {}
    for mode in ("INCREMENTAL", "NONE"):
        path = tmp_path / f"{mode}.db"
        with sqlite3.connect(path) as conn:
            conn.execute(f"PRAGMA auto_vacuum={mode}")
            conn.execute("VACUUM")  # the mode takes effect on an empty file
        opened = open_store(f"sqlite:///{path}")
        opened.write_batch(events_=[BusEvent(
            id=f"e{i}", source="s", detail_type="t", time_ms=NOW - 40 * DAY_MS + i,
            detail='{"blob":"' + "x" * 3000 + '"}', size_bytes=3000) for i in range(300)])
        report = prune(opened, Policy(), NOW)
        opened.engine.dispose()
        sizes[mode] = report.space
    assert sizes["INCREMENTAL"]["returned_bytes"] > 500_000
    assert sizes["INCREMENTAL"]["free_bytes"] == 0
    assert sizes["INCREMENTAL"]["advice"].startswith("incremental auto_vacuum")
    assert sizes["NONE"]["returned_bytes"] == 0
    assert sizes["NONE"]["free_bytes"] == sizes["NONE"]["freed_bytes"] > 500_000
    assert "VACUUM returns them" in sizes["NONE"]["advice"]


def test_prune_drops_whole_day_partitions_on_postgresql_and_deletes_the_rest(
        store: Store) -> None:
    """A new PostgreSQL store is partitioned by day: prune drops the days before the raw
    horizon whole (named in the report), deletes older rows that sit in the default partition
    row by row, counts both, and keeps every newer row."""
    if store.engine.dialect.name != "postgresql":
        pytest.skip("day partitions are PostgreSQL's; SQLite deletes in batches (tests above)")
    from eventscope import partitions
    policy = Policy()
    cut = horizons(policy, NOW)
    old_days = [cut["raw"] - 3 * DAY_MS + 1_000, cut["raw"] - DAY_MS + 5]
    too_old = NOW - 500 * DAY_MS  # before the partitions made ahead: the default partition
    kept = [cut["raw"], NOW - 1_000]
    times = [*old_days, too_old, *kept]
    store.write_batch(events_=[event(f"e{i}", t) for i, t in enumerate(times)],
                      invocations_=[invocation(f"r{i}", t, f"e{i}") for i, t in enumerate(times)])
    with store.engine.connect() as conn:
        assert partitions.is_partitioned(conn, "events")
    report = prune(store, policy, NOW)
    by_table = {(f.table, f.action): f for f in report.tables}
    for table in ("events", "invocations"):
        freed = by_table[(table, "deleted")]
        assert freed.rows == 3 and len(freed.partitions) == 2, freed
        assert freed.note == ""
    assert column(store, events, "time_ms") == kept
    assert column(store, invocations, "start_ms") == kept
