"""File ingest: recognising lines, batching into the store, quarantine, re-ingest."""

from __future__ import annotations

import gzip
import os
import shutil
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from eventscope import ingest, simulator
from eventscope.errors import InputError
from eventscope.ingest import LineOptions, classify_line, ingest_paths
from eventscope.records import BusEvent, Quarantined
from eventscope.redaction import RedactionSettings
from eventscope.sampling import scaled
from eventscope.store import (Store, event_rollup, events, handling_rollup, invocation_rollup,
                              invocations, open_store, quarantine, redactions)
from tests.conftest import DATA

EVENTS = str(DATA / "events" / "order-events.ndjson")
LOGS = str(DATA / "ingest" / "consumer-logs.ndjson")
BAD = str(DATA / "ingest" / "bad-lines.ndjson")


def test_lines_are_recognised_as_events_or_log_records() -> None:
    """An envelope becomes a BusEvent, a CloudWatch Logs record stays a dict."""
    event_line, log_line = (Path(p).read_bytes().splitlines()[0] for p in (EVENTS, LOGS))
    assert isinstance(classify_line(event_line, "f", 1), BusEvent)
    assert classify_line(log_line, "f", 1)["logGroupName"] == "/aws/lambda/crm-notifier"


def test_event_size_is_the_line_in_bytes() -> None:
    """An event's size is that of its envelope as received."""
    line = Path(EVENTS).read_bytes().splitlines()[0]
    assert classify_line(line, "f", 1).size_bytes == len(line)


def test_ingest_stores_events_and_invocations(store: Store) -> None:
    """Events and the invocations rebuilt from both log formats land in the store."""
    summary = ingest_paths(store, [EVENTS, LOGS])
    assert (summary.events_read, summary.events_stored) == (4, 4)
    assert (summary.log_records_read, summary.invocations_stored) == (8, 2)
    counts = store.counts()
    assert counts["invocations_by_outcome"] == {"ok": 1, "error": 1, "timeout": 0}
    assert counts["unattributed_invocations"] == 1


def test_reingesting_the_same_files_changes_nothing(store: Store) -> None:
    """A second ingest of the same files stores nothing new and reports duplicates."""
    ingest_paths(store, [EVENTS, LOGS, BAD])
    before = store.counts()
    again = ingest_paths(store, [EVENTS, LOGS, BAD])
    assert (again.events_stored, again.invocations_stored, again.event_duplicates) == (0, 0, 4)
    assert store.counts() == before


def test_bad_lines_are_quarantined_with_reasons(store: Store) -> None:
    """Every unusable line is quarantined with its reason and the good lines still land."""
    summary = ingest_paths(store, [BAD, EVENTS])
    assert dict(summary.quarantined) == {
        "invalid_json": 1, "not_an_object": 1, "missing_fields": 2, "not_utf8": 1,
        "unrecognised": 1}
    assert store.counts()["quarantined"] == 6
    assert store.counts()["events"] == 4


def test_quarantine_keeps_origin_line_and_raw_bytes() -> None:
    """A quarantined line records its file, line number, reason and raw bytes."""
    item = classify_line(b'{"message":"caf\xe9"}', "bad.ndjson", 5)
    assert isinstance(item, Quarantined)
    assert (item.origin, item.position, item.reason, item.raw) == (
        "bad.ndjson", "line 5", "not_utf8", b'{"message":"caf\xe9"}')


def test_gzipped_files_are_read(store: Store, tmp_path: Path) -> None:
    """A .gz file is decompressed on the fly."""
    packed = tmp_path / "events.ndjson.gz"
    with open(EVENTS, "rb") as source, gzip.open(packed, "wb") as target:
        shutil.copyfileobj(source, target)
    assert ingest_paths(store, [str(packed)]).events_stored == 4


def test_a_corrupt_gzip_file_is_an_input_error(store: Store, tmp_path: Path) -> None:
    """A file named .gz that is not gzip gives a clear error naming it."""
    fake = tmp_path / "events.ndjson.gz"
    fake.write_bytes(b"not gzip at all")
    with pytest.raises(InputError, match="events.ndjson.gz"):
        ingest_paths(store, [str(fake)])


def test_a_missing_file_fails_before_anything_is_written(store: Store) -> None:
    """When one named file is missing, nothing from the others is stored."""
    with pytest.raises(InputError, match="no such file"):
        ingest_paths(store, [EVENTS, "/nonexistent/file.ndjson"])
    assert store.counts()["events"] == 0


def test_blank_lines_are_skipped(store: Store, tmp_path: Path) -> None:
    """Blank lines and Windows line ends are neither stored nor quarantined."""
    path = tmp_path / "crlf.ndjson"
    path.write_bytes(b"\r\n".join(Path(EVENTS).read_bytes().splitlines()) + b"\r\n\r\n")
    summary = ingest_paths(store, [str(path)])
    assert (summary.events_stored, sum(summary.quarantined.values())) == (4, 0)


def test_log_context_carries_across_files(store: Store, tmp_path: Path) -> None:
    """An invocation whose records are split over two files is rebuilt whole."""
    lines = Path(LOGS).read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "a.ndjson", tmp_path / "b.ndjson"
    first.write_bytes(b"".join(lines[:3]))
    second.write_bytes(b"".join(lines[3:]))
    assert ingest_paths(store, [str(first), str(second)]).invocations_stored == 2
    assert store.counts()["invocations_by_outcome"]["error"] == 1


# --- parallel ingest ------------------------------------------------------------------------

KEY_SETTINGS = RedactionSettings(key=b"test-key")


def _mixed_input(tmp_path: Path) -> tuple[list[str], list[int]]:
    """The bench company's events and logs (PII included) in one file, with every bad line of
    `BAD` spliced in at known line numbers, and the logs in a second file."""
    written = simulator.write_ndjson(
        simulator.simulate(simulator.CompanyConfig.bench(), seed=3, n_events=1200), tmp_path)
    events = written.events_path.read_bytes().splitlines(keepends=True)
    bad = Path(BAD).read_bytes().splitlines(keepends=True)
    mixed, bad_lines = [], []
    for index, line in enumerate(events):
        if index % 200 == 150 and bad:
            mixed.append(bad.pop())
            bad_lines.append(len(mixed))
        mixed.append(line)
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"".join(mixed))
    return [str(path), str(written.logs_path)], bad_lines


def _table(store: Store, table: sa.Table, skip: tuple[str, ...] = ()) -> list[tuple[Any, ...]]:
    columns = [c for c in table.columns if c.name not in skip]
    with store.engine.connect() as conn:
        rows = [tuple(round(v, 6) if isinstance(v, float) else v for v in row)
                for row in conn.execute(sa.select(*columns))]
    return sorted(rows, key=repr)  # engines may sum floats in another order; None sorts too


def test_parallel_ingest_stores_exactly_what_ingest_in_one_process_stores(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Worker processes on many small blocks: the same summary and the same rows (events,
    invocations, quarantine, redactions, rollups) as parsing everything in this process."""
    paths, _ = _mixed_input(tmp_path)
    alone = open_store(f"sqlite:///{tmp_path / 'alone.db'}")
    expected = ingest_paths(alone, paths, redaction=KEY_SETTINGS, workers=0)
    monkeypatch.setattr(ingest, "BLOCK_BYTES", 16 * 1024)
    summary = ingest_paths(store, paths, redaction=KEY_SETTINGS, workers=2)
    assert summary.as_dict() == expected.as_dict()
    assert summary.events_stored > 1000 and summary.invocations_stored > 1000
    assert summary.as_dict()["quarantined"] == 6
    for table, skip in ((events, ()), (invocations, ()), (quarantine, ("quarantined_ms",)),
                        (redactions, ("redacted_ms",)), (event_rollup, ()),
                        (invocation_rollup, ()), (handling_rollup, ())):
        assert _table(store, table, skip) == _table(alone, table, skip), table.name
    assert _table(store, redactions, ("redacted_ms",)), "the bench company's e-mails"


def test_parallel_ingest_numbers_quarantined_lines_as_in_the_file(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad line's position is its line number in its file, whichever block it was in."""
    paths, bad_lines = _mixed_input(tmp_path)
    monkeypatch.setattr(ingest, "BLOCK_BYTES", 8 * 1024)
    ingest_paths(store, paths[:1], workers=2)
    positions = store.select_rows(sa.select(quarantine.c.origin, quarantine.c.position))
    assert sorted(int(row["position"].split()[1]) for row in positions) == bad_lines
    assert {row["origin"] for row in positions} == {paths[0]}


def test_default_workers_follow_the_cpus_this_process_may_use(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One worker per usable CPU (capped); none on a single CPU."""
    for cpus, expected in ((1, 0), (2, 2), (64, ingest.MAX_WORKERS)):
        monkeypatch.setattr(ingest.os, "sched_getaffinity", lambda _pid, n=cpus: set(range(n)))
        assert ingest.default_workers() == expected


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_parsing_workers_run_at_the_ingest_process_niceness(
        monkeypatch: pytest.MonkeyPatch, start_method: str) -> None:
    """Workers started as ingest starts them keep its priority: a niced worker starves behind
    other work on a busy machine while the writer waits for its blocks."""
    monkeypatch.setattr(ingest, "_process_context", lambda: get_context(start_method))
    with ingest.worker_pool(LineOptions(), 1) as pool:
        worker_niceness = pool.submit(os.nice, 0).result()
    assert worker_niceness == os.nice(0)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_fork_and_spawn_workers_give_the_same_summary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start_method: str) -> None:
    """fork (one-threaded callers) and spawn (the rest) workers: the same ingest summary."""
    paths, _ = _mixed_input(tmp_path)
    monkeypatch.setattr(ingest, "BLOCK_BYTES", 64 * 1024)
    monkeypatch.setattr(ingest, "_process_context", lambda: get_context(start_method))
    store = open_store(f"sqlite:///{tmp_path / start_method}.db")
    summary = ingest_paths(store, paths, redaction=KEY_SETTINGS, workers=2)
    alone = ingest_paths(open_store(f"sqlite:///{tmp_path / 'alone.db'}"), paths,
                         redaction=KEY_SETTINGS, workers=0)
    assert summary.as_dict() == alone.as_dict()


# --- sampling ------------------------------------------------------------------------------


def test_a_sampled_ingest_keeps_the_join_and_the_failure_rates(tmp_path: Path) -> None:
    """At a 10 % sample, invocations follow their events: `failures` does not pile them into
    a "no event type" row, and each consumer x type failure rate matches the unsampled one
    within sampling error (sampling is by event, so an event's retries go together)."""
    from eventscope.findings import summaries

    written = simulator.write_ndjson(simulator.simulate(
        simulator.CompanyConfig.demo(), seed=11, n_events=12_000), tmp_path)
    paths = [str(written.events_path), str(written.logs_path)]
    full = open_store(f"sqlite:///{tmp_path / 'full.db'}")
    sampled = open_store(f"sqlite:///{tmp_path / 'sampled.db'}")
    ingest_paths(full, paths, workers=0)
    summary = ingest_paths(sampled, paths, workers=0, sample_rate=0.1)
    assert sampled.sample_rate() == 0.1
    assert 0.07 < summary.events_stored / summary.events_read < 0.13
    assert summary.invocations_sampled_out > 0

    whole, part = (summaries.failure_rates(s.engine) for s in (full, sampled))
    untyped, typed = (part[part["detail_type"].isna() == flag]["invocations"].sum()
                      for flag in (True, False))
    assert untyped < typed  # not "most invocations in a no-event-type row"
    # Invocations without an event id are all kept, the others stand for 1 / rate each:
    scaled_share = untyped / (untyped + scaled(typed, 0.1))
    share_full = whole[whole["detail_type"].isna()]["invocations"].sum() / whole[
        "invocations"].sum()
    assert abs(scaled_share - share_full) < 0.01

    keys = ["consumer", "detail_type", "version"]
    both = whole.merge(part, on=keys, suffixes=("_full", "_sampled")).dropna(subset=["detail_type"])
    big = both[both["events_sampled"] >= 40]
    assert len(big) >= 5
    for row in big.itertuples():
        p, n = row.rate_full, row.events_sampled
        tolerance = 5 * (max(p * (1 - p), 0.01) / n) ** 0.5 * (row.invocations_full
                                                              / row.events_full) + 0.01
        assert abs(row.rate_sampled - p) <= tolerance, (row.consumer, row.detail_type, p,
                                                        row.rate_sampled)


def test_invocations_without_an_event_id_are_all_kept_when_sampling(store: Store) -> None:
    """At a rate that keeps no event, only the invocations with no event id remain."""
    summary = ingest_paths(store, [EVENTS, LOGS], workers=0, sample_rate=0.0)
    assert summary.events_stored == 0 and summary.events_sampled_out == 4
    assert store.counts()["invocations"] == store.counts()["unattributed_invocations"] == 1
    assert summary.invocations_sampled_out == 1


def test_ingest_follows_the_rate_the_tap_recorded(store: Store) -> None:
    """With no rate given, ingest samples at the store's rate, as the tap did."""
    store.record_sample_rate(0.0)
    summary = ingest_paths(store, [EVENTS, LOGS], workers=0)
    assert (summary.sample_rate, summary.events_stored) == (0.0, 0)


# --- outcomes learnt late ------------------------------------------------------------------

LATE = DATA / "lambda" / "late_timeout.ndjson"


def _outcomes(store: Store) -> dict[str, str]:
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(invocations.c.request_id, invocations.c.outcome)).all())


def test_a_timeout_line_after_report_makes_a_timeout_in_one_ingest(store: Store) -> None:
    """The re-emitted invocation updates the row written from its REPORT."""
    ingest_paths(store, [str(LATE)], workers=0)
    assert _outcomes(store) == {"e5f6a7b8-c9d0-4e1f-a2b3-c4d5e6f7a8b9": "timeout",
                                "f0e1d2c3-b4a5-4968-8776-655443322110": "ok"}
    assert store.counts()["invocations"] == 2


def test_a_timeout_line_ingested_after_its_invocation_updates_it(store: Store,
                                                                 tmp_path: Path) -> None:
    """A backfill: the timeout line comes in a later file than its REPORT; the rollups follow."""
    lines = LATE.read_bytes().splitlines(keepends=True)
    late = [line for line in lines if b"Task timed out" in line]
    (tmp_path / "a.ndjson").write_bytes(b"".join(line for line in lines if line not in late))
    (tmp_path / "b.ndjson").write_bytes(b"".join(late))
    ingest_paths(store, [str(tmp_path / "a.ndjson")], workers=0)
    assert set(_outcomes(store).values()) == {"ok"}
    ingest_paths(store, [str(tmp_path / "b.ndjson")], workers=0)
    assert sorted(_outcomes(store).values()) == ["ok", "timeout"]
    with store.engine.connect() as conn:
        rolled = dict(conn.execute(sa.select(invocation_rollup.c.outcome,
                                             sa.func.sum(invocation_rollup.c.invocations))
                                   .group_by(invocation_rollup.c.outcome)).all())
    assert rolled == {"ok": 1, "timeout": 1}


def test_the_ingest_command_samples_at_the_rate_it_is_given(tmp_path: Path) -> None:
    """`eventscope ingest --sample-rate` keeps a part of the events, says so, and records the
    rate in the store for later runs."""
    from click.testing import CliRunner

    from eventscope.cli import main
    from eventscope.store import open_store

    url = f"sqlite:///{tmp_path / 'sampled.db'}"
    source = str(Path(__file__).parent.parent / "examples" / "events.ndjson")
    result = CliRunner().invoke(main, ["ingest", source, "--db", url, "--sample-rate", "0.5",
                                       "--workers", "0", "--json"])
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    assert summary["sample_rate"] == 0.5
    assert 0 < summary["events_sampled_out"] < summary["events_read"]
    store = open_store(url)
    assert store.sample_rate() == 0.5
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    assert stored == summary["events_read"] - summary["events_sampled_out"]
    refused = CliRunner().invoke(main, ["ingest", source, "--db", url, "--sample-rate", "0"])
    assert refused.exit_code == 2
