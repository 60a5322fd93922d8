"""`collect all`: every collector as one long-running service, one thread per source.

Owns the loops (tap, consumer logs, bus rules, and bus logs when configured), their error
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
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
import orjson

from eventscope.errors import StoreError
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
    last_error: str | None = None

    def status(self) -> dict[str, Any]:
        return {**self.counters.as_dict(), "errors": self.errors}


def instance_name() -> str:
    """host:pid, naming this collector process in `collector_status`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_loop(loop: Loop, stop: threading.Event, error_pause: float = 5.0) -> None:
    """Repeat the loop's step until stop; errors are counted and waited out."""
    while not stop.is_set():
        try:
            loop.step()
            loop.state = "running"
        except (StoreError, botocore.exceptions.ClientError,
                botocore.exceptions.BotoCoreError) as exc:
            loop.errors += 1
            loop.state, loop.last_error = "failing", str(exc).splitlines()[0][:500]
            log.warning("%s: %s (retrying in %.0fs)", loop.name, loop.last_error, error_pause)
            stop.wait(error_pause)
            continue
        stop.wait(loop.pause_seconds)
    loop.state = "stopped"


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
    """Run every loop in its own thread until `stop`; heartbeat meanwhile; final status after."""
    instance = instance_name()
    threads = [threading.Thread(target=run_loop, args=(loop, stop), name=loop.name, daemon=True)
               for loop in loops]
    for thread in threads:
        thread.start()
    write_heartbeat(store, loops, instance)
    while not stop.wait(heartbeat_seconds):
        echo(heartbeat_line(loops))
        write_heartbeat(store, loops, instance)
    for thread in threads:
        thread.join()
    echo(heartbeat_line(loops))
    write_heartbeat(store, loops, instance)


def collector_loops(clients: dict[str, Any], store: Store, bus: str, tap_settings: Any,
                    logs_settings: Any, redact: Any, *, logs_every_s: float,
                    rules_every_s: float, bus_log_group: str | None = None) -> list[Loop]:
    """The loops of `collect all`: tap, consumer logs, rules (and bus logs when given).

    `clients` holds boto3 clients for "sqs", "logs" and "events".
    """
    from eventscope.collectors.logs_collector import LogsCounters, collect_bus_logs, collect_logs
    from eventscope.collectors.rules_collector import RulesCounters, snapshot_rules
    from eventscope.collectors.tap_collector import TapCounters, poll_once

    sqs, logs, events = clients["sqs"], clients["logs"], clients["events"]
    tap_c, logs_c, rules_c, bus_c = TapCounters(), LogsCounters(), RulesCounters(), LogsCounters()
    loops = [
        Loop("tap", lambda: poll_once(sqs, store, tap_settings, tap_c, redact), tap_c),
        Loop("logs", lambda: collect_logs(logs, store, logs_settings, logs_c), logs_c,
             logs_every_s),
        Loop("rules", lambda: rules_c.add(snapshot_rules(events, store, bus)), rules_c,
             rules_every_s),
    ]
    if bus_log_group:
        loops.append(Loop("bus-logs", lambda: collect_bus_logs(
            logs, store, bus_log_group, logs_settings, bus_c), bus_c, logs_every_s))
    return loops
