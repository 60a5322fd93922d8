"""`collect all`: every collector as one long-running service, one thread per source.

Owns the loops (tap, consumer logs, bus rules, bus logs when configured, and the daily
prune that applies the store's retention), their error
handling (a failing source is counted, reported and retried, never fatal), the heartbeat
(one line on the terminal and one `collector_status` row per loop), and graceful stop:
when `stop` is set each loop finishes its current batch, commits, and the service returns.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import botocore.exceptions
import orjson

from eventscope.collectors.backoff import MAX_PAUSE_SECONDS, Backoff
from eventscope import retention
from eventscope.errors import EventscopeError, StoreError
from eventscope.store import Store

log = logging.getLogger(__name__)


@dataclass
class Loop:
    """One source: a step to repeat, the pause between steps, and its counters."""

    name: str
    step: Callable[[], Any]
    counters: Any  # a dataclass with as_dict()
    pause_seconds: float = 0.0
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    state: str = "running"
    errors: int = 0
    restarts: int = 0  # steps ended by an unexpected exception (the loop went on)
    last_error: str | None = None

    def status(self) -> dict[str, Any]:
        return {**self.counters.as_dict(), "errors": self.errors, "restarts": self.restarts}


def instance_name() -> str:
    """host:pid, naming this collector process in `collector_status`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_loop(loop: Loop, stop: threading.Event, error_pause: float = 5.0,
             max_pause: float = MAX_PAUSE_SECONDS) -> None:
    """Repeat the loop's step until stop; any error is counted, reported and retried.

    After a failure the loop is `failing` (heartbeat, `collector_status`) and waits
    `error_pause`, doubling while failures go on, up to `max_pause`. Expected failures (the
    store or AWS) are logged as one line; anything else is logged by type and first line
    only (no traceback: a value in it may be a payload's) and counted in `restarts`, and the
    loop carries on: no error ends a loop but `stop`.
    """
    backoff = Backoff(first=error_pause, cap=max_pause)
    while not stop.is_set():
        try:
            loop.step()
        except (EventscopeError, botocore.exceptions.ClientError,
                botocore.exceptions.BotoCoreError) as exc:
            _failed(loop, str(exc), backoff, stop)
            continue
        except Exception as exc:  # noqa: BLE001 - a loop must outlive its bugs, reported
            loop.restarts += 1
            _failed(loop, f"{type(exc).__name__}: {exc}", backoff, stop)
            continue
        loop.state = "running"
        backoff.reset()
        stop.wait(loop.pause_seconds)
    if loop.state != "failing":
        loop.state = "stopped"


def _failed(loop: Loop, message: str, backoff: Backoff, stop: threading.Event) -> None:
    loop.errors += 1
    loop.state = "failing"
    loop.last_error = (message.splitlines() or [""])[0][:500]
    pause = backoff.next_pause()
    log.warning("%s: %s (retrying in %.0fs)", loop.name, loop.last_error, pause)
    stop.wait(pause)


def failing_loops(loops: list[Loop]) -> list[str]:
    """The names of loops whose last step failed (the service exits 1 when any did)."""
    return [loop.name for loop in loops if loop.state == "failing"]


def heartbeat_line(loops: list[Loop]) -> str:
    """One terminal line with every loop's counters that are not zero."""
    parts = []
    for loop in loops:
        shown = " ".join(f"{k}={v}" for k, v in loop.status().items() if v)
        parts.append(f"{loop.name}[{loop.state}] {shown}".rstrip())
    return "heartbeat " + time.strftime("%H:%M:%S") + " | " + " | ".join(parts)


def write_heartbeat(store: Store, loops: list[Loop], instance: str) -> None:
    """One `collector_status` row per loop; a store that is down is only logged."""
    now = int(time.time() * 1000)
    for loop in loops:
        try:
            store.put_status({"collector": loop.name, "instance": instance,
                              "started_ms": loop.started_ms, "heartbeat_ms": now,
                              "state": loop.state,
                              "counters": orjson.dumps(loop.status()).decode(),
                              "last_error": loop.last_error})
        except StoreError as exc:
            log.warning("heartbeat not stored: %s", exc)


def run_service(loops: list[Loop], store: Store, stop: threading.Event,
                heartbeat_seconds: float = 30.0,
                echo: Callable[[str], None] = print) -> None:
    """Run every loop in its own thread until `stop`; heartbeat meanwhile; final status after.

    A loop's thread that ended although `stop` is not set (an error `run_loop` could not
    catch) is reported `failing` at the next heartbeat and started again.
    """
    instance = instance_name()
    threads = {loop.name: _start(loop, stop) for loop in loops}
    write_heartbeat(store, loops, instance)
    while not wait_in_slices(stop, heartbeat_seconds):
        for loop in loops:
            if not threads[loop.name].is_alive() and not stop.is_set():
                loop.state, loop.restarts = "failing", loop.restarts + 1
                loop.last_error = loop.last_error or "the loop's thread ended; restarted"
                log.warning("%s: thread ended, restarting", loop.name)
                threads[loop.name] = _start(loop, stop)
        echo(heartbeat_line(loops))
        write_heartbeat(store, loops, instance)
    for thread in threads.values():
        thread.join()
    echo(heartbeat_line(loops))
    write_heartbeat(store, loops, instance)


SIGNAL_SLICE_SECONDS = 0.5


def wait_in_slices(stop: threading.Event, timeout: float | None) -> bool:
    """`stop.wait(timeout)` for a main thread whose SIGTERM/SIGINT handler sets `stop`.

    Python runs a signal handler only when the main thread executes bytecode, and the kernel
    may deliver a signal sent to the process to any of its threads. A main thread blocked in
    one long wait then never runs the handler: `eventscope demo` ignored a SIGTERM for good
    that way, and `collect all` for up to a heartbeat. So the wait is cut into slices of at
    most `SIGNAL_SLICE_SECONDS`; True when `stop` is set, False when `timeout` passed.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = SIGNAL_SLICE_SECONDS if deadline is None else deadline - time.monotonic()
        if left <= 0:
            return stop.is_set()
        if stop.wait(min(left, SIGNAL_SLICE_SECONDS)):
            return True


def _start(loop: Loop, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=run_loop, args=(loop, stop), name=loop.name, daemon=True)
    thread.start()
    return thread


def collector_loops(clients: dict[str, Any], store: Store, bus: str, tap_settings: Any,
                    logs_settings: Any, redact: Any, *, logs_every_s: float,
                    rules_every_s: float, bus_log_group: str | None = None) -> list[Loop]:
    """The loops of `collect all`: tap, consumer logs, rules (and bus logs when given).

    `clients` holds boto3 clients for "sqs", "logs" and "events".
    """
    from eventscope.collectors.logs_collector import LogsCounters, collect_bus_logs, collect_logs
    from eventscope.collectors.rules_collector import RulesCounters, snapshot_rules
    from eventscope.collectors.tap_collector import TapCounters, poll_or_raise, watch_dlq

    sqs, logs, events = clients["sqs"], clients["logs"], clients["events"]
    tap_c, logs_c, rules_c, bus_c = TapCounters(), LogsCounters(), RulesCounters(), LogsCounters()
    loops = [
        Loop("tap", lambda: poll_or_raise(sqs, store, tap_settings, tap_c, redact), tap_c),
        Loop("logs", lambda: collect_logs(logs, store, logs_settings, logs_c), logs_c,
             logs_every_s),
        Loop("rules", lambda: rules_c.add(snapshot_rules(events, store, bus)), rules_c,
             rules_every_s),
    ]
    if getattr(tap_settings, "dlq_url", None):
        dlq_c = TapCounters()  # only its dlq_messages (and aws_errors) move
        loops.append(Loop("dlq", lambda: watch_dlq(sqs, store, tap_settings, dlq_c), dlq_c,
                          tap_settings.dlq_every_seconds))
    if bus_log_group:
        loops.append(Loop("bus-logs", lambda: collect_bus_logs(
            logs, store, bus_log_group, logs_settings, bus_c), bus_c, logs_every_s))
    return loops


PRUNE_EVERY_SECONDS = 24 * 3600.0


@dataclass
class PruneCounters:
    """What the daily prune did since the service started."""

    prunes: int = 0
    rows_pruned: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def prune_loop(store: Store, every_s: float = PRUNE_EVERY_SECONDS,
               clock: Callable[[], int] | None = None) -> Loop:
    """The loop applying the store's retention (`eventscope.retention`, as `eventscope
    prune` does): a first prune when the service starts, then one every `every_s`; `clock`
    gives now in epoch ms (tests). A failed prune is logged and retried like any step."""
    counters = PruneCounters()

    def step() -> None:
        report = retention.prune(store, now_ms=clock() if clock else None)
        counters.prunes += 1
        counters.rows_pruned += report.rows
        log.info("prune: %d rows older than the retention removed", report.rows)

    return Loop("prune", step, counters, every_s)
