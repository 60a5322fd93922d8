"""File ingest: NDJSON files of bus events and consumer log records into the store.

Owns reading the inputs in blocks of whole lines, fanning the blocks out to worker processes
(`eventscope.ingest_lines.parse_block`: decoding, classifying, PII redaction), and, back in
this process and in input order, assembling invocations from the parsed log records, batching
and writing (one write in flight on a background thread), and the run's summary.

Sampling: at the store's sample rate (`Store.sample_rate`, recorded by the tap collector,
or one given here), events are kept by `eventscope.sampling`'s hash of their id and
invocations by the same hash of their event id (those without one are all kept), so the
stored sample keeps the join between the two; what was dropped is counted in the summary.
"""

from __future__ import annotations

import gc
import gzip
import itertools
import marshal
import os
import signal
import sys
import threading
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import IO, Any

from eventscope.errors import EventscopeError, InputError
from eventscope.events import DEFAULT_CORRELATION_PATHS, VersionRule
from eventscope.ingest_lines import (Block, LineOptions, ParsedBlock, classify_line,  # noqa: F401
                                     parse_block)
from eventscope.lambda_logs import InvocationAssembler
from eventscope.lifetime import die_with_parent
from eventscope.limits import MAX_LINE_BYTES
from eventscope.records import EVENT_COLUMNS, Invocation, Quarantined
from eventscope.redaction import RedactionSettings, scrub_invocations
from eventscope.sampling import check_rate, sample_invocations
from eventscope.store import MINUTE_MS, Store, WriteResult, redactions

_TIME = EVENT_COLUMNS.index("time_ms")

BATCH_ROWS = 50_000  # events + invocations per write transaction
BLOCK_BYTES = 1 << 20  # input handed to a worker at once (whole lines, so a little more)
SKIP_BYTES = 1 << 20  # piece of an overlong line read (and dropped) at once
BINARY_PROBE_LINES = 5  # first lines whose bytes, mostly undecodable, make an input binary
TEXT_SHARE = 0.1  # of those lines' bytes, what must be text for an input to be read
MAX_WORKERS = 8
# How far behind the oldest row of the newest batch a minute must be before a bulk ingest
# settles its rollups: Lambda's asynchronous retries come one and two minutes apart (plus
# their duration), so minutes older than this are not touched again by time-ordered input.
SETTLE_MS = 10 * 60_000


@dataclass
class IngestSummary:
    """What one ingest run read, stored, found already stored, and refused."""

    lines: int = 0
    events_read: int = 0
    events_stored: int = 0
    events_sampled_out: int = 0
    replay_echoes: int = 0
    log_records_read: int = 0
    invocations_built: int = 0
    invocations_stored: int = 0
    unattributed_invocations: int = 0
    invocations_sampled_out: int = 0
    sample_rate: float = 1.0
    quarantined: Counter[str] = field(default_factory=Counter)
    rollup_minutes_refreshed: int = 0  # minutes recomputed, all refreshes of the run together

    @property
    def event_duplicates(self) -> int:
        return self.events_read - self.events_sampled_out - self.events_stored

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines, "events_read": self.events_read,
            "events_stored": self.events_stored, "event_duplicates": self.event_duplicates,
            "log_records_read": self.log_records_read,
            "invocations_built": self.invocations_built,
            "invocations_stored": self.invocations_stored,
            "invocations_already_stored": (self.invocations_built - self.invocations_sampled_out
                                           - self.invocations_stored),
            "unattributed_invocations": self.unattributed_invocations,
            "sample_rate": self.sample_rate,
            "events_sampled_out": self.events_sampled_out,
            "replay_echoes": self.replay_echoes,
            "invocations_sampled_out": self.invocations_sampled_out,
            "quarantined": sum(self.quarantined.values()),
            "quarantined_by_reason": dict(sorted(self.quarantined.items())),
        }


def default_workers() -> int:
    """Parsing processes when none is asked for: one per CPU this process may use, and none
    (parse here) on a single CPU, where a worker would only add the cost of handing over."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return min(available, MAX_WORKERS) if available > 1 else 0


def ingest_paths(
    store: Store,
    paths: Sequence[str],
    correlation_paths: Sequence[str] = DEFAULT_CORRELATION_PATHS,
    on_progress: Callable[[int], None] | None = None,
    redaction: RedactionSettings | None = None,
    workers: int | None = None,
    sample_rate: float | None = None,
    version_rules: Mapping[tuple[str, str], VersionRule] | None = None,
) -> IngestSummary:
    """Ingest NDJSON files (`.gz` too, `-` for stdin) and return what happened.

    `redaction` replaces PII in events before they are stored and records it in
    `redactions`; `workers` processes parse in parallel (default: one per CPU; 0 parses here);
    `version_rules` (`Catalog.version_rules`) say where each catalogued type's version is.
    Inputs of a single block are always parsed here: starting processes would cost more.
    `sample_rate` keeps that fraction of events and their invocations and becomes the
    store's rate; by default the store's own rate applies (1 unless a tap recorded one).
    """
    check_readable(paths)
    if sample_rate is None:
        sample_rate = store.sample_rate()
    else:
        store.record_sample_rate(check_rate(sample_rate))
    options = LineOptions(tuple(correlation_paths), redaction, sample_rate, version_rules)
    summary = IngestSummary(sample_rate=sample_rate)
    workers = default_workers() if workers is None else workers
    with (_collection_paused(), _Batcher(store, summary, redaction, paths[-1]) as batcher,
          closing(_parse_all(_blocks(paths, on_progress), options, workers)) as parsed_blocks):
        for parsed in parsed_blocks:
            batcher.add(parsed)
        batcher.finish()
    # The rest, and what other writers left: overview pages read current rollups.
    summary.rollup_minutes_refreshed += store.refresh_rollups()
    return summary


class _Batcher:
    """Collects one ingest run's parsed blocks and writes them in large transactions.

    Log records are assembled into invocations here, in input order. One write runs in a
    background thread while the next blocks arrive (SQLite and the drivers release the GIL
    while they work), and at most one write is in flight, so memory stays at two batches
    whatever the input size.

    Rollups: once the last input is being read, each write is followed by a refresh of the
    dirty minutes more than `SETTLE_MS` older than its batch's oldest row (time-ordered input
    rarely touches them again), and the run ends with one refresh of the rest; so a minute
    is recomputed once, or twice when it shares an event with a minute past a settle point
    (the refresh of that one recomputes it again: a refresh cannot tell which of the rows it
    reads are new). Minutes of earlier inputs wait for the last one (it may reach back to
    them: an events file, then its logs).
    """

    def __init__(self, store: Store, summary: IngestSummary,
                 redaction: RedactionSettings | None = None, last_origin: str = "") -> None:
        self.store, self.summary, self.redaction = store, summary, redaction
        self.last_origin, self.settling = last_origin, False
        self.events: list[tuple[Any, ...]] = []
        self.redactions: list[dict[str, Any]] = []
        self.invocations: list[Invocation] = []
        self.quarantined: list[Quarantined] = []
        self.assembler = InvocationAssembler()
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self.pending: Future[tuple[WriteResult, int]] | None = None

    def __enter__(self) -> _Batcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.shutdown(wait=True)

    def add(self, parsed: ParsedBlock) -> None:
        summary = self.summary
        self.settling = self.settling or parsed.origin == self.last_origin
        summary.lines += parsed.lines
        summary.events_read += len(parsed.event_rows) + parsed.events_sampled_out
        summary.events_sampled_out += parsed.events_sampled_out
        summary.replay_echoes += parsed.replay_echoes
        summary.log_records_read += parsed.log_records
        summary.quarantined.update(item.reason for item in parsed.quarantined)
        self.events += parsed.event_rows
        self.redactions += parsed.redaction_rows
        self.quarantined += parsed.quarantined
        feed, invocations = self.assembler.feed_parsed, self.invocations
        for facts in parsed.log_facts:
            if done := feed(facts):
                invocations += done
        if len(self.events) + len(self.invocations) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Hand the collected batch to the writer once the previous write has committed."""
        self.summary.invocations_built += len(self.invocations)
        self.invocations, dropped = sample_invocations(self.invocations, self.summary.sample_rate)
        self.summary.invocations_sampled_out += dropped
        self.summary.unattributed_invocations += sum(
            1 for invocation in self.invocations if invocation.event_id is None)
        extra = {redactions: self.redactions} if self.redactions else None
        if self.redaction is not None:  # as `collect logs` does
            self.invocations = scrub_invocations(self.invocations, self.redaction)
        settled = settled_before(self.events, self.invocations) if self.settling else None
        self.wait()
        self.pending = self.writer.submit(self._write, self.events, self.invocations,
                                          self.quarantined, extra, settled)
        self.events, self.redactions, self.invocations, self.quarantined = [], [], [], []

    def _write(self, events: list[tuple[Any, ...]], invocations: list[Invocation],
               quarantined: list[Quarantined], extra: dict[Any, Any] | None,
               settled: int | None) -> tuple[WriteResult, int]:
        """One batch, then the rollups of the minutes it settled: refreshed here, while the
        next batch is parsed, rather than all at the end."""
        written = self.store.write_batch(events, invocations, quarantined, None, extra,
                                           settle=False)
        refreshed = (self.store.refresh_rollups(before=settled, defer_days=True)
                     if settled is not None else 0)
        return written, refreshed

    def finish(self) -> None:
        """Write what is left, including invocations still open at the end of the input."""
        self.invocations.extend(self.assembler.flush())
        self.flush()
        self.wait()

    def wait(self) -> None:
        if self.pending is not None:
            written, refreshed = self.pending.result()
            self.summary.rollup_minutes_refreshed += refreshed
            self.summary.events_stored += written.events
            self.summary.invocations_stored += written.invocations
            self.pending = None


def settled_before(event_rows: Sequence[tuple[Any, ...]], invocations: Sequence[Invocation]
                   ) -> int | None:
    """The minute before which a batch's rollups may be settled: `SETTLE_MS` before the
    minute of its oldest event or invocation (None for an empty batch)."""
    oldest: int | None = min((int(row[_TIME]) for row in event_rows), default=None)
    if invocations:
        first_call = min(invocation.start_ms for invocation in invocations)
        oldest = first_call if oldest is None else min(oldest, first_call)
    if oldest is None:
        return None
    return oldest - oldest % MINUTE_MS - SETTLE_MS


# --- parsing, here or in worker processes ---------------------------------------------------


def _parse_all(blocks: Iterator[Block], options: LineOptions, workers: int
               ) -> Generator[ParsedBlock, None, None]:
    """Every block parsed, in input order: in worker processes once there are two blocks."""
    head = list(itertools.islice(blocks, 2))
    if workers < 1 or len(head) < 2:
        return (parse_block(block, options) for block in itertools.chain(head, blocks))
    return _parse_in_workers(itertools.chain(head, blocks), options, workers)


def _parse_in_workers(blocks: Iterable[Block], options: LineOptions, workers: int
                      ) -> Generator[ParsedBlock, None, None]:
    """Blocks parsed by a pool of processes, a bounded number ahead, results in input order."""
    with worker_pool(options, workers) as pool:
        ahead: deque[Future[tuple[ParsedBlock, bytes]]] = deque()
        try:
            for block in blocks:
                ahead.append(pool.submit(_parse_here, block))
                if len(ahead) > 2 * workers:
                    yield _unpacked(ahead.popleft().result())
            while ahead:
                yield _unpacked(ahead.popleft().result())
        except BrokenProcessPool as exc:
            raise EventscopeError(f"an ingest worker process died: {exc}") from None
        finally:
            for future in ahead:
                future.cancel()


def worker_pool(options: LineOptions, workers: int) -> ProcessPoolExecutor:
    """The parsing processes, started as `_start_worker` sets them up."""
    return ProcessPoolExecutor(workers, mp_context=_process_context(),
                               initializer=_start_worker, initargs=(options, os.getpid()))


def _process_context() -> BaseContext:
    """fork while this process runs one thread (a child then cannot inherit a lock held
    mid-operation, and scripts without a `__main__` guard work); spawn otherwise."""
    if threading.active_count() == 1 and "fork" in get_all_start_methods():
        return get_context("fork")
    return get_context("spawn")


_worker_options = LineOptions()


def _start_worker(options: LineOptions, parent: int | None = None) -> None:
    """In each worker: die with the parent, however it dies (`lifetime.die_with_parent`); remember
    the options; leave Ctrl-C to the parent, which stops the pool; no cyclic garbage
    collection (parsing makes no cycles, and the collector would walk every object of a block
    many times). Workers keep the parent's priority: niced, they starved behind other work on
    a busy machine while the writer waited for their blocks."""
    global _worker_options
    die_with_parent(parent)
    _worker_options = options
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()


def _parse_here(block: Block) -> tuple[ParsedBlock, bytes]:
    """A block parsed in a worker, its event rows marshalled apart: plain tuples of strings and
    numbers cross the process boundary faster that way than pickled (`_unpacked`)."""
    parsed = parse_block(block, _worker_options)
    rows = marshal.dumps(parsed.event_rows)
    parsed.event_rows = []
    return parsed, rows


def _unpacked(packed: tuple[ParsedBlock, bytes]) -> ParsedBlock:
    parsed, rows = packed
    parsed.event_rows = marshal.loads(rows)
    return parsed


@contextmanager
def _collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while batches of acyclic records pile up: the collector
    would walk every held record again and again (a fifth of ingest's time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- reading ----------------------------------------------------------------------------------


def check_readable(paths: Sequence[str]) -> None:
    """Fail before writing anything when a named input is missing, a directory or not a
    regular file, or when stdin is named but closed."""
    for path in paths:
        if path == "-":
            if sys.stdin is None or sys.stdin.closed:
                raise InputError("stdin (-) is closed: pipe NDJSON into it or name files")
            continue
        found = Path(path)
        if found.is_dir():
            raise InputError(f"{path} is a directory: name the NDJSON files in it")
        if not found.exists():
            raise InputError(f"no such file: {path}")


def total_size(paths: Sequence[str]) -> int:
    """Bytes on disk of the named files (stdin counts as 0), for a progress bar."""
    return sum(Path(path).stat().st_size for path in paths if path != "-")


def _blocks(paths: Sequence[str], on_progress: Callable[[int], None] | None
            ) -> Iterator[Block]:
    for path in paths:
        yield from _file_blocks(path, on_progress)


def _file_blocks(path: str, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    """A file's content in blocks of whole lines, each with the number of its first line.

    Memory stays bounded whatever the lines' length: a line longer than `MAX_LINE_BYTES` is
    cut to one byte over the limit (so it is quarantined as `too_large`) and the rest of it
    skipped in bounded reads. A file whose first lines are all undecodable is refused
    (`InputError`) before any of its lines is handed on.
    """
    with _open_input(path) as (stream, raw_file):
        line_no, position = 1, 0
        try:
            while data := stream.read(BLOCK_BYTES):
                if not data.endswith(b"\n"):
                    data = _finish_last_line(stream, data)
                if line_no == 1:
                    check_text(path, data)
                yield Block(path, line_no, data)
                line_no += data.count(b"\n")
                if on_progress is not None and raw_file is not None:
                    now = raw_file.tell()
                    on_progress(now - position)
                    position = now
        except (gzip.BadGzipFile, EOFError, OSError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from None


def _finish_last_line(stream: IO[bytes] | gzip.GzipFile, data: bytes) -> bytes:
    """`data` with its unfinished last line completed from the stream, at most one byte over
    `MAX_LINE_BYTES`; the rest of a longer line is read in bounded pieces and dropped."""
    start = data.rfind(b"\n") + 1
    room = MAX_LINE_BYTES + 1 - (len(data) - start)
    rest = stream.readline(max(room, 0) + 1) if room > 0 else b""
    if rest.endswith(b"\n") or (room > 0 and len(rest) <= room):
        return data + rest  # the line ended (or the input did) within the limit
    kept = (data[:start + MAX_LINE_BYTES + 1] if room <= 0
            else data + rest[:room])  # one byte over the limit: refused as too large
    while (piece := stream.readline(SKIP_BYTES)) and not piece.endswith(b"\n"):
        pass  # the rest of the overlong line, never held whole
    return kept + b"\n"


def check_text(path: str, data: bytes) -> None:
    """Refuse an input whose first `BINARY_PROBE_LINES` non-blank lines are binary: lines of
    UTF-8 text without NUL bytes hold less than `TEXT_SHARE` of their bytes (a few short
    lines of random bytes decode by chance; a text file's bad lines are the exception)."""
    lines = [line for line in data.split(b"\n", BINARY_PROBE_LINES * 4)[:BINARY_PROBE_LINES * 4]
             if line.strip()][:BINARY_PROBE_LINES]
    total = sum(len(line) for line in lines)
    if lines and sum(len(line) for line in lines if _is_text(line)) < TEXT_SHARE * total:
        raise InputError(f"{path} is not text (its first {len(lines)} line(s) are mostly not "
                         "UTF-8 or hold NUL bytes): not NDJSON, nothing read from it")


def _is_text(line: bytes) -> bool:
    if line.find(b"\0") >= 0:
        return False
    probe = line[:MAX_LINE_BYTES]
    try:
        probe.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut by the cap, on a line that reached it
        return len(line) >= MAX_LINE_BYTES and exc.start >= len(probe) - 3
    return True


@contextmanager
def _open_input(path: str) -> Iterator[tuple[IO[bytes] | gzip.GzipFile, IO[bytes] | None]]:
    if path == "-":
        yield sys.stdin.buffer, None
        return
    try:
        raw_file = open(path, "rb")
    except OSError as exc:
        raise InputError(f"cannot open {path}: {exc.strerror}") from None
    with raw_file:
        if path.endswith(".gz"):
            with gzip.open(raw_file, "rb") as unzipped:
                yield unzipped, raw_file
        else:
            yield raw_file, raw_file
