"""The PostgreSQL store at scale, on a real server: the COPY write path stores what SQLite's
row-by-row path stores, new stores are partitioned by day (made ahead, a default partition
for the rest, whole days dropped by retention), and a store made before keeps working."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventscope import partitions, pg_write
from eventscope.records import BusEvent, Invocation, Quarantined
from eventscope.store import (Store, deliveries, events, invocations, metadata, open_store,
                              quarantine)
from eventscope.tables import DAY_MS
from tests.conftest import _PG_PROBLEM

pytestmark = pytest.mark.skipif(_PG_PROBLEM is not None,
                                reason=f"PostgreSQL not reachable: {_PG_PROBLEM}")
T0 = 1_764_547_200_000  # 2025-12-01 00:00 UTC


@pytest.fixture
def pg(pg_url: str) -> Iterator[Store]:
    store = open_store(pg_url)
    yield store
    store.engine.dispose()


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'lite.db'}")
    yield store
    store.engine.dispose()


def _rows(store: Store, table: sa.Table, leave_out: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    columns = [c for c in table.columns if c.name not in leave_out]
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(*columns)).all()
    return sorted((tuple(row) for row in found), key=repr)


def _snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {"events": _rows(store, events), "invocations": _rows(store, invocations),
            "quarantine": _rows(store, quarantine, ("quarantined_ms",))}


# --- the COPY path stores what the row-by-row path stores -----------------------------------

ODD_TEXT = st.sampled_from(["plain", "nul\x00inside", "lone \udc80 surrogate", "é ☃ 𝄞",
                            "tab\tnew\nline\\back", "", "\\N", "quote\"'"])


@st.composite
def batches(draw: st.DrawFn) -> list[tuple[list[BusEvent], list[Invocation],
                                           list[Quarantined]]]:
    """Batches of events (duplicates, redeliveries of an id with its time), invocations
    (partial then complete, ok then a failure learnt late, late timeout lines), odd text."""
    events_ = [BusEvent(id=f"e{n}", source="shop", detail_type=draw(st.sampled_from(["A", "B"])),
                        time_ms=T0 + draw(st.integers(0, 3 * DAY_MS)),
                        detail='{"note": %s}' % repr(draw(ODD_TEXT)),
                        size_bytes=draw(st.integers(1, 2000)),
                        version=draw(st.sampled_from(["1", None])),
                        correlation_key=draw(st.sampled_from([None, "o1", draw(ODD_TEXT)])))
               for n in range(draw(st.integers(0, 8)))]
    calls = []
    for _ in range(draw(st.integers(0, 10))):
        start = T0 + draw(st.integers(0, 3 * DAY_MS))
        outcome = draw(st.sampled_from(["ok", "error", "timeout"]))
        call = Invocation(f"r{draw(st.integers(0, 4))}", "fn", "/aws/lambda/fn", "s",
                          start, outcome,
                          draw(st.sampled_from([None, *(e.id for e in events_)])),
                          end_ms=start + 100, duration_ms=draw(st.sampled_from([None, 1.5])),
                          error_type=None if outcome == "ok" else "E",
                          error_message=draw(st.sampled_from([None, "boom", "nul\x00"])),
                          complete=draw(st.booleans()))
        calls.append(call)
        if draw(st.booleans()):  # the same key again: partial/complete, later a failure
            calls.append(replace(call, complete=True, outcome=draw(
                st.sampled_from(["ok", "error", "timeout"]))))
        if call.complete and call.outcome == "ok" and draw(st.booleans()):
            calls.append(replace(call, start_ms=call.end_ms + 1000, end_ms=None,  # type: ignore
                                 outcome="timeout", complete=False, duration_ms=None,
                                 error_type="Timeout", error_message="Task timed out"))
    quarantined = [Quarantined("file", f"line {n}", "invalid_json", draw(ODD_TEXT), b"{\x00")
                   for n in range(draw(st.integers(0, 2)))]
    items: list[Any] = draw(st.permutations(events_ + calls + quarantined))
    cuts = sorted(draw(st.sets(st.integers(0, len(items)), max_size=3)))
    parts = [items[a:b] for a, b in zip([0, *cuts], [*cuts, len(items)])]
    return [([x for x in p if isinstance(x, BusEvent)], [x for x in p if isinstance(x, Invocation)],
             [x for x in p if isinstance(x, Quarantined)]) for p in parts]


def _clear(*stores: Store) -> None:
    for store in stores:
        with store.engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                if table.name != "meta":
                    conn.execute(table.delete())


@settings(max_examples=40, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(written=batches())
def test_the_copy_path_stores_the_same_rows_as_sqlite(
        pg: Store, lite: Store, written: list[Any]) -> None:
    """Random batches written, twice, to SQLite (row by row) and PostgreSQL (COPY into
    staging): the same events, invocations and quarantine rows on both."""
    _clear(lite, pg)
    assert pg._copy
    for batch in written + written:
        lite.write_batch(*batch)
        pg.write_batch(*batch)
    assert _snapshot(pg) == _snapshot(lite)


def test_a_batch_written_again_adds_nothing(pg: Store) -> None:
    """Re-writing a batch (a redelivered SQS message, a re-read file) stores no row twice
    and reports nothing new."""
    evs = [BusEvent(f"e{n}", "shop", "A", T0 + n, "{}", 2) for n in range(50)]
    calls = [Invocation(f"r{n}", "fn", "/aws/lambda/fn", "s", T0 + n, "ok", f"e{n}",
                        complete=True) for n in range(50)]
    first = pg.write_batch(evs, calls)
    again = pg.write_batch(evs, calls)
    assert (first.events, first.invocations) == (50, 50)
    assert (again.events, again.invocations) == (0, 0)
    assert len(_rows(pg, events)) == 50 and len(_rows(pg, invocations)) == 50


def test_duplicate_keys_in_one_batch_fold_as_row_by_row_writes_would() -> None:
    """A partial row then its completion, and an ok then a failure, fold to the later row; a
    partial after a complete one leaves the complete one."""
    base = Invocation("r", "fn", "g", "s", 1, "ok", complete=False)
    done = replace(base, complete=True)
    failed = replace(done, outcome="error")
    assert pg_write.merge_invocations([base, done]) == [done]
    assert pg_write.merge_invocations([done, base]) == [done]
    assert pg_write.merge_invocations([done, failed, done]) == [failed]


# --- day partitions ---------------------------------------------------------------------------

def test_a_new_store_is_partitioned_by_day_with_a_default_partition(pg: Store) -> None:
    """events, invocations, deliveries and quarantine are partitioned, each with a default
    partition and today..+3 days made ahead; the detail column is lz4-compressed."""
    with pg.engine.connect() as conn:
        for table in partitions.TIME_COLUMNS:
            assert partitions.is_partitioned(conn, table)
            assert conn.exec_driver_sql(
                f"SELECT to_regclass('{table}_default') IS NOT NULL").scalar()
            today = partitions.day_of(int(time.time() * 1000))
            assert {today + n * DAY_MS for n in range(4)} <= partitions.existing_days(conn, table)
        assert conn.exec_driver_sql(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = 'events'::regclass "
            "AND attname = 'detail'").scalar() == "l"
        assert conn.exec_driver_sql(
            "SELECT value FROM meta WHERE key = 'layout'").scalar() == partitions.PARTITIONED


def test_partitions_compress_their_payloads_in_the_row(pg: Store) -> None:
    """Every partition, made with the store, later, for a late day or as the default, has
    toast_tuple_target set and its payload columns lz4 with storage MAIN; a detail past
    PostgreSQL's ~2 KB toast threshold is stored compressed, in the row (not in the TOAST
    table), and reads back identical."""
    old = 4_102_444_800_000 + 5  # 2100-01-01: the default partition first...
    pg.write_batch([BusEvent("e-moved", "shop", "A", old, "{}", 2)])
    with pg.engine.begin() as conn:  # ...then its day made: the row moves (the LIKE path)
        partitions.ensure_days(conn, "events", [partitions.day_of(old)])
    detail = '{"order": {"lines": [' + ", ".join(
        f'{{"sku": "SKU-{n:05d}", "qty": {n % 7}, "note": "standard shipping"}}'
        for n in range(60)) + "]}}"
    assert 2100 < len(detail) < 8000
    pg.write_batch([BusEvent("e-big", "shop", "A", old + 1, detail, len(detail))])
    lz4 = pg.engine.connect().exec_driver_sql(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
        "WHERE name = 'default_toast_compression'").scalar()
    with pg.engine.connect() as conn:
        for table, columns in partitions.COMPRESSED.items():
            leaves = conn.exec_driver_sql(
                "SELECT c.oid::regclass::text, c.reloptions FROM pg_inherits i JOIN pg_class c "
                "ON c.oid = i.inhrelid WHERE i.inhparent = %(t)s::regclass",
                {"t": table}).all()
            assert len(leaves) >= 5  # default + today..+3 (+ the late day for events)
            for name, options in leaves:
                assert f"toast_tuple_target={partitions.TOAST_TARGET}" in (options or []), name
                for column in columns:
                    storage, compression = conn.exec_driver_sql(
                        "SELECT attstorage, attcompression FROM pg_attribute WHERE attrelid = "
                        "%(n)s::regclass AND attname = %(c)s", {"n": name, "c": column}).one()
                    assert storage == "m", (name, column)
                    assert compression == ("l" if lz4 else ""), (name, column)
        assert partitions.partition_name("events", partitions.day_of(old)) in {
            n for n, _ in conn.exec_driver_sql(
                "SELECT c.relname, 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass").all()}
        stored, raw = conn.exec_driver_sql(
            "SELECT pg_column_size(detail), octet_length(detail) FROM events "
            "WHERE id = 'e-big'").one()
        assert stored < raw  # compressed
        assert conn.exec_driver_sql(
            "SELECT detail FROM events WHERE id = 'e-big'").scalar() == detail
        toast = conn.exec_driver_sql(
            "SELECT c.reltoastrelid::regclass::text FROM pg_class c WHERE c.oid = "
            "%(n)s::regclass", {"n": _partition_of(pg, "events", "time_ms", old + 1)}).scalar()
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {toast}").scalar() == 0  # in the row


def _partition_of(store: Store, table: str, column: str, value: int) -> str:
    with store.engine.connect() as conn:
        return str(conn.exec_driver_sql(
            f"SELECT tableoid::regclass::text FROM {table} WHERE {column} = {value}").scalar())


def test_partitions_exist_for_the_days_written(pg: Store) -> None:
    """A batch of last week's events and calls gets its days' partitions; each row lands in
    its day's partition."""
    now = int(time.time() * 1000)
    old = partitions.day_of(now) - 7 * DAY_MS + 123
    pg.write_batch([BusEvent("e-old", "shop", "A", old, "{}", 2)],
                   [Invocation("r-old", "fn", "g", "s", old + DAY_MS, "ok", complete=True)],
                   extra_rows={deliveries: [{**{c.name: None for c in deliveries.columns},
                                             "key": "k", "message_type": "X", "outcome": "ok",
                                             "time_ms": old}]})
    assert _partition_of(pg, "events", "time_ms", old) == partitions.partition_name(
        "events", old - old % DAY_MS)
    assert _partition_of(pg, "invocations", "start_ms", old + DAY_MS) == \
        partitions.partition_name("invocations", old - old % DAY_MS + DAY_MS)
    assert _partition_of(pg, "deliveries", "time_ms", old) == partitions.partition_name(
        "deliveries", old - old % DAY_MS)


def test_rows_outside_the_made_partitions_land_in_the_default_one(pg: Store) -> None:
    """A timestamp beyond the days made ahead (a clock far off) is stored, in the default
    partition; when its day's partition is made later, the row moves into it."""
    far = 4_102_444_800_000 + 5  # 2100-01-01
    pg.write_batch([BusEvent("e-far", "shop", "A", far, "{}", 2)])
    assert _partition_of(pg, "events", "time_ms", far) == "events_default"
    with pg.engine.begin() as conn:
        partitions.ensure_days(conn, "events", [far - far % DAY_MS])
    assert _partition_of(pg, "events", "time_ms", far) == partitions.partition_name(
        "events", far - far % DAY_MS)
    assert len(_rows(pg, events)) == 1


def test_drop_before_drops_exactly_the_whole_days_older_than_the_cutoff(pg: Store) -> None:
    """Partitions whose day ends at or before the cutoff go, with their rows; the cutoff's own
    day, later days and the default partition stay."""
    days = [T0 + n * DAY_MS for n in range(5)]
    with pg.engine.begin() as conn:
        partitions.ensure_days(conn, "events", days)
    pg.write_batch([BusEvent(f"e{n}", "shop", "A", day + 10, "{}", 2)
                    for n, day in enumerate(days)])
    pg.write_batch([BusEvent("e-default", "shop", "A", 4_102_444_800_000, "{}", 2)])
    with pg.engine.begin() as conn:
        dropped = partitions.drop_before(conn, "events", days[2] + 5)
    assert dropped == [partitions.partition_name("events", d) for d in days[:2]]
    ids = {row[0] for row in _rows(pg, events)}
    assert ids == {"e2", "e3", "e4", "e-default"}
    with pg.engine.begin() as conn:
        assert partitions.drop_before(conn, "events", days[2] + 5) == []


def test_redelivered_events_keep_one_row_across_the_wider_key(pg: Store) -> None:
    """The events key is (id, time) on a partitioned store: a redelivery (same id, same
    time) is stored once."""
    event = BusEvent("e1", "shop", "A", T0, "{}", 2)
    pg.write_batch([event, event])
    pg.write_batch([event])
    assert len(_rows(pg, events)) == 1


def test_a_quarantined_input_is_kept_once_on_a_partitioned_store(pg: Store) -> None:
    """The quarantine's key includes its day; the same input quarantined again is not
    stored twice."""
    item = Quarantined("file", "line 1", "invalid_json", "bad", b"{")
    assert pg.write_batch(quarantined=[item, item]).quarantined == 1
    assert pg.write_batch(quarantined=[item]).quarantined == 0


def test_a_store_made_before_the_partitioned_layout_still_opens_and_writes(pg_url: str) -> None:
    """An unpartitioned PostgreSQL store (made by an earlier eventscope) opens, takes COPY
    batches, and is left unpartitioned."""
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        metadata.create_all(conn)
    engine.dispose()
    store = open_store(pg_url)
    try:
        event = BusEvent("e1", "shop", "A", T0, "{}", 2)
        assert store.write_batch([event, event]).events == 1
        assert store.write_batch([event]).events == 0
        with store.engine.connect() as conn:
            assert not partitions.is_partitioned(conn, "events")
    finally:
        store.engine.dispose()


def _keys(store: Store) -> dict[str, str]:
    """Each partitioned table's primary key as PostgreSQL states it."""
    with store.engine.connect() as conn:
        return dict(conn.exec_driver_sql(
            "SELECT conrelid::regclass::text, conname || ' ' || pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE contype = 'p' AND "
            "connamespace = current_schema()::regnamespace AND conrelid IN "
            "(SELECT partrelid FROM pg_partitioned_table)").all())


ORDERED_KEYS = {"events": "pk_events PRIMARY KEY (id, time_ms)",
                "invocations": "pk_invocations PRIMARY KEY (request_id, start_ms)",
                "deliveries": "pk_deliveries PRIMARY KEY (key, time_ms)",
                "quarantine": "pk_quarantine PRIMARY KEY (key, quarantined_ms)"}


def test_partitioned_keys_lead_with_the_plain_key(pg: Store) -> None:
    """Each partitioned table's key is its plain key, then its time: its index answers a
    lookup by id alone (an invocation's event, a quarantined line's key), which a key led by
    the time column answered by reading the whole index of every partition."""
    assert _keys(pg) == ORDERED_KEYS
    with pg.engine.connect() as conn:
        plan = "\n".join(conn.exec_driver_sql(
            "EXPLAIN SELECT detail FROM events WHERE id = 'e1'").scalars())
    assert "Index Cond: (id = 'e1'::text)" in plan


def test_a_store_whose_keys_lead_with_time_gets_them_in_order_on_open(pg_url: str) -> None:
    """A partitioned store made when the keys were led by the time column is rebuilt once
    on open, rows kept; then it is up to date (opening it again only reads)."""
    store = open_store(pg_url)
    event = BusEvent("e1", "shop", "A", T0, "{}", 2)
    store.write_batch([event])
    with store.engine.begin() as conn:
        for table, key in ORDERED_KEYS.items():
            columns = key.split("(")[1].rstrip(")").split(", ")
            conn.exec_driver_sql(
                f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, ADD CONSTRAINT "
                f"{table}_pkey PRIMARY KEY ({columns[1]}, {columns[0]})")
    assert _keys(store)["events"] == "events_pkey PRIMARY KEY (time_ms, id)"
    store.engine.dispose()
    reopened = open_store(pg_url)
    try:
        assert _keys(reopened) == ORDERED_KEYS
        assert _rows(reopened, events)[0][0] == "e1"
        assert reopened.write_batch([event]).events == 0
        with reopened.engine.connect() as conn:
            assert partitions.keys_in_order(set(conn.exec_driver_sql(
                "SELECT relname FROM pg_class WHERE pg_table_is_visible(oid)").scalars()))
    finally:
        reopened.engine.dispose()


def test_a_partition_that_cannot_be_made_now_leaves_its_rows_in_the_default_one(
        pg: Store) -> None:
    """While a long reader holds the table, a new day's partition cannot be made (lock
    timeout): the batch is still stored, in the default partition, and the next batch
    after the reader makes the partition and moves the row."""
    old = partitions.day_of(int(time.time() * 1000)) - 20 * DAY_MS + 7
    reader = pg.engine.connect()
    try:
        reader.begin()
        reader.execute(sa.select(sa.func.count()).select_from(events)).scalar()
        pg.write_batch([BusEvent("e-old", "shop", "A", old, "{}", 2)])
    finally:
        reader.close()
    assert _partition_of(pg, "events", "time_ms", old) == "events_default"
    pg.write_batch([BusEvent("e-old-2", "shop", "A", old + 1, "{}", 2)])
    assert _partition_of(pg, "events", "time_ms", old) == partitions.partition_name(
        "events", old - old % DAY_MS)
    assert len(_rows(pg, events)) == 2


@given(times=st.lists(st.integers(-(2 ** 62), 2 ** 62)), now=st.integers(0, 2 ** 45))
def test_wanted_days_are_the_batch_days_near_now_and_the_days_ahead(
        times: list[int], now: int) -> None:
    """Every wanted day is a day's start within [today - BACKFILL_DAYS, today + AHEAD_DAYS];
    today..+AHEAD_DAYS are always there, and every batch day in that window is."""
    days = partitions.wanted_days(times, now)
    today = partitions.day_of(now)
    low, high = today - partitions.BACKFILL_DAYS * DAY_MS, today + partitions.AHEAD_DAYS * DAY_MS
    assert all(d % DAY_MS == 0 and low <= d <= high for d in days)
    assert {today + n * DAY_MS for n in range(partitions.AHEAD_DAYS + 1)} <= days
    assert {partitions.day_of(t) for t in times if low <= partitions.day_of(t) <= high} <= days
