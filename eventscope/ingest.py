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
from eventscope.records import Invocation, Quarantined
from eventscope.redaction import RedactionSettings, scrub_invocations
from eventscope.sampling import check_rate, sample_invocations
from eventscope.store import Store, WriteResult, redactions

BATCH_ROWS = 50_000  # events + invocations per write transaction
BLOCK_BYTES = 1 << 20  # input handed to a worker at once (whole lines, so a little more)
MAX_WORKERS = 8
# Parsing workers run at a lower priority: the ingest process's writer is what limits the rate,
# and workers only ever run a bounded way ahead of it, so they should never take its core.
WORKER_NICENESS = 10


@dataclass
class IngestSummary:
    """What one ingest run read, stored, found already stored, and refused."""

    lines: int = 0
    events_read: int = 0
    events_stored: int = 0
    events_sampled_out: int = 0
    log_records_read: int = 0
    invocations_built: int = 0
    invocations_stored: int = 0
    unattributed_invocations: int = 0
    invocations_sampled_out: int = 0
    sample_rate: float = 1.0
    quarantined: Counter[str] = field(default_factory=Counter)

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
    with (_collection_paused(), _Batcher(store, summary, redaction) as batcher,
          closing(_parse_all(_blocks(paths, on_progress), options, workers)) as parsed_blocks):
        for parsed in parsed_blocks:
            batcher.add(parsed)
        batcher.finish()
    store.refresh_rollups()  # and what other writers left: overview pages read current rollups
    return summary


class _Batcher:
    """Collects one ingest run's parsed blocks and writes them in large transactions.

    Log records are assembled into invocations here, in input order. One write runs in a
    background thread while the next blocks arrive (SQLite and the drivers release the GIL
    while they work), and at most one write is in flight, so memory stays at two batches
    whatever the input size.
    """

    def __init__(self, store: Store, summary: IngestSummary,
                 redaction: RedactionSettings | None = None) -> None:
        self.store, self.summary, self.redaction = store, summary, redaction
        self.events: list[tuple[Any, ...]] = []
        self.redactions: list[dict[str, Any]] = []
        self.invocations: list[Invocation] = []
        self.quarantined: list[Quarantined] = []
        self.assembler = InvocationAssembler()
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")
        self.pending: Future[WriteResult] | None = None

    def __enter__(self) -> _Batcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.shutdown(wait=True)

    def add(self, parsed: ParsedBlock) -> None:
        summary = self.summary
        summary.lines += parsed.lines
        summary.events_read += len(parsed.event_rows) + parsed.events_sampled_out
        summary.events_sampled_out += parsed.events_sampled_out
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
        self.wait()
        self.pending = self.writer.submit(self._write, self.events, self.invocations,
                                          self.quarantined, extra)
        self.events, self.redactions, self.invocations, self.quarantined = [], [], [], []

    def _write(self, events: list[tuple[Any, ...]], invocations: list[Invocation],
               quarantined: list[Quarantined], extra: dict[Any, Any] | None) -> WriteResult:
        """One batch, then its rollups: refreshed here, while the next batch is parsed, rather
        than all at the end."""
        written = self.store.write_batch(events, invocations, quarantined, None, extra)
        self.store.refresh_rollups()
        return written

    def finish(self) -> None:
        """Write what is left, including invocations still open at the end of the input."""
        self.invocations.extend(self.assembler.flush())
        self.flush()
        self.wait()

    def wait(self) -> None:
        if self.pending is not None:
            written = self.pending.result()
            self.summary.events_stored += written.events
            self.summary.invocations_stored += written.invocations
            self.pending = None


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
    with ProcessPoolExecutor(workers, mp_context=_process_context(),
                             initializer=_start_worker, initargs=(options,)) as pool:
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


def _process_context() -> BaseContext:
    """fork while this process runs one thread (a child then cannot inherit a lock held
    mid-operation, and scripts without a `__main__` guard work); spawn otherwise."""
    if threading.active_count() == 1 and "fork" in get_all_start_methods():
        return get_context("fork")
    return get_context("spawn")


_worker_options = LineOptions()


def _start_worker(options: LineOptions) -> None:
    """In each worker: remember the options; leave Ctrl-C to the parent, which stops the pool;
    no cyclic garbage collection (parsing makes no cycles, and the collector would walk every
    object of a block many times); a lower priority than the writer (`WORKER_NICENESS`)."""
    global _worker_options
    _worker_options = options
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.disable()
    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)


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
    """Fail before writing anything when a named input file does not exist."""
    for path in paths:
        if path != "-" and not Path(path).is_file():
            raise InputError(f"no such file: {path}")


def total_size(paths: Sequence[str]) -> int:
    """Bytes on disk of the named files (stdin counts as 0), for a progress bar."""
    return sum(Path(path).stat().st_size for path in paths if path != "-")


def _blocks(paths: Sequence[str], on_progress: Callable[[int], None] | None
            ) -> Iterator[Block]:
    for path in paths:
        yield from _file_blocks(path, on_progress)


def _file_blocks(path: str, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    """A file's content in blocks of whole lines, each with the number of its first line."""
    with _open_input(path) as (stream, raw_file):
        line_no, position = 1, 0
        try:
            while data := stream.read(BLOCK_BYTES):
                if not data.endswith(b"\n"):
                    data += stream.readline()  # finish the last line
                yield Block(path, line_no, data)
                line_no += data.count(b"\n")
                if on_progress is not None and raw_file is not None:
                    now = raw_file.tell()
                    on_progress(now - position)
                    position = now
        except (gzip.BadGzipFile, EOFError, OSError) as exc:
            raise InputError(f"cannot read {path}: {exc}") from None


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
