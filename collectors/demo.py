"""The demo: the simulated company live on an emulated AWS, collected by the real collectors.

Owns the demo's moving parts and their lifetime: moto's server on 127.0.0.1 (a free port),
the company's AWS resources (the bus, one rule and SQS queue per consumer from the
simulator's `subscriptions`, the consumers' log groups, an archive, the eventscope tap), the
backfill of history (past events with `put_events` and a `Time`, consumer log records with
`put_log_events`), the live company (a producer publishing at a rate, one thread per consumer
polling its queue and logging exactly as its Lambda function would, through the simulator's
`LambdaFleet`), the `collect all` loops against the emulator, and the dashboard subprocess.

Time: the company's order lifecycles last days, so the simulator's clock runs `TIME_SCALE`
times faster than the wall clock (an order is created, paid, shipped, delivered or returned
within minutes); everything put on the bus or in the logs carries wall-clock times.
"""

from __future__ import annotations

import heapq
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import botocore.exceptions
import orjson

from eventscope.collectors.clients import AwsSettings, make_client
from eventscope.collectors.service import collector_loops as service_loops
from eventscope.collectors.service import run_service, wait_in_slices
from eventscope.collectors.tap import find_tap_queue, install_tap
from eventscope.errors import EventscopeError
from eventscope.lifetime import PARENT_ENV
from eventscope.simulator import (
    CONSUMERS, DEMO_CATALOG, CompanyConfig, Consumer, Invocation, LambdaFleet, iso_millis,
    iso_seconds, simulate, subscriptions)
from eventscope.store import Store

log = logging.getLogger(__name__)

BUS = "shop-bus"
REGION = "eu-west-1"  # the simulated company's region; moto's default account matches it
TIME_SCALE = 720  # simulated seconds per wall-clock second: one simulated day in two minutes
EVENTS_PER_ORDER = 6.5  # measured on the demo company (bus events per order lifecycle)
DEFAULT_DB = "sqlite:///eventscope-demo.db"
RETRY_DELAY_S = (2, 5)  # Lambda retries asynchronous invocations after 1-2 min; compressed
DUPLICATE_DELAY_S = (1, 4)  # an at-least-once redelivery arrives this long after the first
LOG_BATCH = 5_000  # records per put_log_events (AWS allows 10,000 and 1 MiB)
_TIME_KEYS = ("createdAt", "paidAt", "capturedAt", "shippedAt", "deliveredAt", "cancelledAt",
              "returnedAt", "occurredAt")  # detail fields holding the event's time


class DemoError(EventscopeError):
    """The demo cannot start: port in use, emulator or dashboard failing."""


@dataclass(frozen=True)
class DemoOptions:
    """What `eventscope demo` was asked for."""

    rate: float = 3.0  # bus events per wall-clock second
    backfill_s: float = 3600.0
    db_url: str = DEFAULT_DB
    port: int = 8501
    duration_s: float | None = None  # None: until stopped
    dashboard: bool = True
    seed: int = 0
    catalog: Path = DEMO_CATALOG
    logs_every_s: float = 5.0


@dataclass
class DemoCounters:
    """What the demo did (its own account, independent of what eventscope collects)."""

    backfill_events: int = 0
    live_events: int = 0
    invocations: int = 0
    log_records: int = 0
    published: Counter[str] = field(default_factory=Counter)  # bus events per detail-type
    outcomes: Counter[str] = field(default_factory=Counter)  # "consumer type outcome [error]"
    successes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (consumer, event)
    skipped_repeats: int = 0  # repeats answered without running the handler (idempotent)
    collected: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def observe(self, inv: Invocation) -> None:
        """Tally one invocation (a LambdaFleet observer)."""
        error = f" {inv.error.error_type}" if inv.error is not None else ""
        with self.lock:
            self.invocations += 1
            self.outcomes[f"{inv.consumer.name} {inv.detail_type} {inv.outcome}{error}"] += 1
            if inv.outcome == "ok" and not inv.messages:
                self.skipped_repeats += 1
            elif inv.outcome == "ok":
                self.successes[(inv.consumer.name, inv.event_id)] += 1

    def processed_twice(self) -> dict[str, int]:
        """Per consumer: events it processed successfully more than once."""
        twice: Counter[str] = Counter(c for (c, _), n in self.successes.items() if n > 1)
        return dict(sorted(twice.items()))

    def as_dict(self) -> dict[str, Any]:
        return {"backfill_events": self.backfill_events, "live_events": self.live_events,
                "invocations": self.invocations, "log_records": self.log_records,
                "published": dict(sorted(self.published.items())),
                "outcomes": dict(sorted(self.outcomes.items())),
                "processed_twice": self.processed_twice(),
                "skipped_repeats": self.skipped_repeats, "collected": self.collected}


# --------------------------------------------------------------------------- time


@dataclass(frozen=True)
class Timeline:
    """Maps the simulator's clock onto the wall clock, and places the version bump."""

    wall0_ms: int  # wall time of the backfill's start (= simulated time zero)
    live_ms: int  # wall time the live company starts
    scale: float = TIME_SCALE

    def wall(self, sim_ms: int) -> int:
        return self.wall0_ms + int((sim_ms - self.wall0_ms) / self.scale)

    def sim(self, wall_ms: int) -> int:
        return self.wall0_ms + int((wall_ms - self.wall0_ms) * self.scale)

    def version_bump(self) -> tuple[int, int]:
        """Wall times OrderPaid v2 appears and invoice-generator is fixed.

        Inside the history when there is enough of it, else in the first minutes live.
        """
        history = self.live_ms - self.wall0_ms
        if history >= 10 * 60_000:
            return self.wall0_ms + int(history * 0.4), self.wall0_ms + int(history * 0.75)
        bump = self.live_ms + 30_000
        return bump, bump + 3 * 60_000


def company(options: DemoOptions, timeline: Timeline,
            horizon_s: float) -> tuple[CompanyConfig, int]:
    """The demo company's config and order count for `horizon_s` wall seconds of traffic."""
    orders_per_sim_minute = options.rate * 60 / EVENTS_PER_ORDER / timeline.scale
    n_orders = max(1, int(orders_per_sim_minute * horizon_s * timeline.scale / 60))
    span_ms = n_orders / orders_per_sim_minute * 60_000
    bump_ms, _ = timeline.version_bump()
    low = min(0.99, (timeline.sim(bump_ms) - timeline.wall0_ms) / span_ms)
    config = replace(CompanyConfig.demo(), orders_per_minute=orders_per_sim_minute,
                     version_bump_window=(low, 1.0))
    return config, n_orders


def bus_events(options: DemoOptions, timeline: Timeline,
               horizon_s: float) -> tuple[CompanyConfig, Iterator[tuple[int, dict[str, Any]]]]:
    """The company's bus events as (wall ms, envelope), in time order."""
    config, n_orders = company(options, timeline, horizon_s)
    start = datetime.fromtimestamp(timeline.wall0_ms / 1000, tz=timezone.utc)
    items = simulate(config, seed=options.seed, start=start, n_orders=n_orders)
    return config, ((timeline.wall(i.time_ms), i.record) for i in items if i.kind == "event")


def entry(envelope: dict[str, Any], wall_ms: int) -> dict[str, Any]:
    """The `put_events` entry of a simulated envelope, at wall time `wall_ms`."""
    detail = dict(envelope["detail"])
    for key in _TIME_KEYS:
        if key in detail:
            detail[key] = iso_millis(wall_ms)
    return {"EventBusName": BUS, "Source": envelope["source"],
            "DetailType": envelope["detail-type"], "Detail": orjson.dumps(detail).decode(),
            "Time": datetime.fromtimestamp(wall_ms / 1000, tz=timezone.utc)}


def delivered(put: dict[str, Any], event_id: str, wall_ms: int) -> dict[str, Any]:
    """The envelope EventBridge delivers for a put entry (what a rule target receives)."""
    return {"version": "0", "id": event_id, "detail-type": put["DetailType"],
            "source": put["Source"], "account": "123456789012", "time": iso_seconds(wall_ms),
            "region": REGION, "resources": [], "detail": orjson.loads(put["Detail"])}


def subscribers() -> dict[str, list[Consumer]]:
    """{detail-type: consumers whose rule matches it} for the planted company."""
    by_name = {c.name: c for c in CONSUMERS}
    found: dict[str, list[Consumer]] = defaultdict(list)
    for name, types in subscriptions().items():
        for detail_type in types:
            found[detail_type].append(by_name[name])
    return found


# --------------------------------------------------------------------------- the emulator


class Emulator:
    """moto's server on 127.0.0.1 and a free port, with dummy credentials for this process."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _speed_up_moto()
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo",
                          AWS_DEFAULT_REGION=REGION)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.settings = AwsSettings(region=REGION, endpoint_url=f"http://{host}:{port}")

    def client(self, service: str) -> Any:
        return make_client(service, self.settings)

    def stop(self) -> None:
        self.server.stop()


def _speed_up_moto() -> None:
    """Two same-result speed-ups of the emulator (this process only), each about tenfold.

    moto's put_events parses the same eight JSONPath expressions for every target of every
    event (parsed expressions are immutable, so they are cached); its SQS checks every
    message's visibility on each receive through datetime arithmetic for the current epoch
    milliseconds (`time.time()` gives the same number).
    """
    import functools

    import jsonpath_ng.ext
    import moto.sqs.models

    if not hasattr(jsonpath_ng.ext.parse, "cache_info"):
        jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)
    original = moto.sqs.models.unix_time_millis
    if getattr(original, "__name__", "") != "_epoch_millis":
        def _epoch_millis(dt: Any = None) -> float:
            return time.time() * 1000.0 if dt is None else original(dt)

        moto.sqs.models.unix_time_millis = _epoch_millis


@dataclass
class Resources:
    """The company's AWS resources in the emulator."""

    queues: dict[str, str]  # consumer -> its rule's SQS queue URL
    queue_arns: dict[str, str]


def create_resources(events: Any, sqs: Any, logs: Any) -> Resources:
    """Bus, archive, tap, one rule + queue per consumer (targets added later), log groups."""
    bus_arn = events.create_event_bus(Name=BUS)["EventBusArn"]
    events.create_archive(ArchiveName=f"{BUS}-archive", EventSourceArn=bus_arn,
                          RetentionDays=14, Description="every event of the shop bus")
    install_tap(sqs, events, BUS)
    queues, arns = {}, {}
    for name, types in subscriptions().items():
        url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
        queues[name] = url
        arns[name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        events.put_rule(Name=name, EventBusName=BUS, State="ENABLED",
                        EventPattern=orjson.dumps({"detail-type": list(types)}).decode(),
                        Description=f"{name}: the Lambda function's subscription")
        logs.create_log_group(logGroupName=f"/aws/lambda/{name}")
    return Resources(queues, arns)


def connect_consumers(events: Any, resources: Resources) -> None:
    """Point each consumer's rule at its queue (after the backfill, which bypasses queues)."""
    for name, arn in resources.queue_arns.items():
        events.put_targets(Rule=name, EventBusName=BUS, Targets=[{"Id": name, "Arn": arn}])


# --------------------------------------------------------------------------- logs


class LogWriter:
    """Writes consumers' records to CloudWatch Logs when their time comes, as Lambda would.

    An invocation's records are written together once its last record is due (a retry a
    minute after a failure, the end of a slow invocation wait until the wall clock reaches
    them), so every log stream grows in time order and no invocation is seen half-written.
    Each log stream is created once.
    """

    def __init__(self, logs: Any) -> None:
        self.logs = logs
        self.streams: set[tuple[str, str]] = set()
        # a heap of (the invocation's last timestamp, sequence, its records)
        self.waiting: list[tuple[int, int, list[dict[str, Any]]]] = []
        self.seq = 0
        self.lock = threading.Lock()
        self.written = 0

    def schedule(self, records: list[dict[str, Any]]) -> None:
        """Queue invocations' records (one invocation's records end with its REPORT)."""
        with self.lock:
            for invocation in _per_invocation(records):
                self.seq += 1
                last = max(r["timestamp"] for r in invocation)
                heapq.heappush(self.waiting, (last, self.seq, invocation))

    def flush_due(self, now_ms: int | None = None) -> int:
        """Write every queued invocation whose last record is at or before `now_ms`
        (default: the wall clock)."""
        limit = int(time.time() * 1000) if now_ms is None else now_ms
        due: list[dict[str, Any]] = []
        with self.lock:
            while self.waiting and self.waiting[0][0] <= limit:
                due += heapq.heappop(self.waiting)[2]
        return self.write(due)

    def flush_all(self) -> int:
        return self.flush_due(2**62)

    def run(self, stop: threading.Event, every_s: float = 0.5) -> None:
        """Flush due records until `stop`."""
        while not stop.wait(every_s):
            try:
                self.flush_due()
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                log.warning("logs: %s", exc)

    def write(self, records: list[dict[str, Any]]) -> int:
        """Put records now, grouped per stream in time order; the number written."""
        by_stream: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for record in records:
            by_stream[(record["logGroupName"], record["logStreamName"])].append(record)
        for key, group in by_stream.items():
            self._ensure(key)
            group.sort(key=lambda r: r["timestamp"])
            for start in range(0, len(group), LOG_BATCH):
                self.logs.put_log_events(
                    logGroupName=key[0], logStreamName=key[1],
                    logEvents=[{"timestamp": r["timestamp"], "message": r["message"]}
                               for r in group[start:start + LOG_BATCH]])
        with self.lock:
            self.written += len(records)
        return len(records)

    def _ensure(self, key: tuple[str, str]) -> None:
        with self.lock:
            if key in self.streams:
                return
        try:
            self.logs.create_log_stream(logGroupName=key[0], logStreamName=key[1])
        except botocore.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
        with self.lock:
            self.streams.add(key)


def _per_invocation(records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Split `LambdaFleet` records (invocation after invocation) at each REPORT record."""
    current: list[dict[str, Any]] = []
    for record in records:
        current.append(record)
        message = record["message"]
        if message.startswith("REPORT ") or '"type":"platform.report"' in message:
            yield current
            current = []
    if current:
        yield current


# --------------------------------------------------------------------------- producing


def put_batch(events: Any, batch: list[tuple[int, dict[str, Any]]]
              ) -> list[tuple[int, dict[str, Any]]]:
    """Publish up to 10 (wall ms, envelope); the delivered envelopes with the bus's ids."""
    entries = [entry(envelope, wall_ms) for wall_ms, envelope in batch]
    response = events.put_events(Entries=entries)
    sent = []
    for (wall_ms, _), put, result in zip(batch, entries, response["Entries"]):
        if "EventId" in result:
            sent.append((wall_ms, delivered(put, result["EventId"], wall_ms)))
        else:
            log.warning("put_events refused an entry: %s", result.get("ErrorMessage"))
    return sent


def backfill(events: Any, writer: LogWriter, fleet: LambdaFleet,
             stream: Iterator[tuple[int, dict[str, Any]]], until_ms: int,
             counters: DemoCounters, progress: Callable[[str], None],
             stop: threading.Event | None = None) -> tuple[int, dict[str, Any]] | None:
    """Publish the history before `until_ms` and log its invocations as Lambda would have.

    Log records reach CloudWatch in time order, as they would have (those timed after now,
    such as retries of late failures, wait in the writer for their time). Returns the first
    event at or after `until_ms` (the live producer's first), if any.
    """
    routes = subscribers()
    batch: list[tuple[int, dict[str, Any]]] = []
    following = None
    for wall_ms, envelope in stream:
        if wall_ms >= until_ms or (stop is not None and stop.is_set()):
            following = (wall_ms, envelope)
            break
        batch.append((wall_ms, envelope))
        if len(batch) == 10:
            writer.schedule(_deliver_all(events, fleet, batch, routes, counters))
            batch = []
            if len(writer.waiting) > 500:
                writer.flush_due(wall_ms)
            if counters.backfill_events % 2000 == 0:
                progress(f"backfill: {counters.backfill_events} events published")
    if batch:
        writer.schedule(_deliver_all(events, fleet, batch, routes, counters))
    writer.flush_due()
    return following


def _deliver_all(events: Any, fleet: LambdaFleet, batch: list[tuple[int, dict[str, Any]]],
                 routes: dict[str, list[Consumer]], counters: DemoCounters
                 ) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for wall_ms, envelope in put_batch(events, batch):
        counters.backfill_events += 1
        counters.published[envelope["detail-type"]] += 1
        for consumer in routes.get(envelope["detail-type"], ()):
            records += fleet.deliver(consumer, envelope, wall_ms)
    return records


def produce(events: Any, stream: Iterator[tuple[int, dict[str, Any]]],
            first: tuple[int, dict[str, Any]] | None, counters: DemoCounters,
            stop: threading.Event) -> None:
    """Publish each event when the wall clock reaches its time (batches of due events)."""
    pending = first
    while pending is not None and not stop.is_set():
        delay = pending[0] / 1000 - time.time()
        if delay > 0 and stop.wait(min(delay, 1.0)):
            return
        if delay > 1.0:
            continue
        batch = [pending]
        pending = next(stream, None)
        while pending is not None and len(batch) < 10 and pending[0] <= time.time() * 1000:
            batch.append(pending)
            pending = next(stream, None)
        for _, envelope in put_batch(events, batch):
            counters.live_events += 1
            counters.published[envelope["detail-type"]] += 1


# --------------------------------------------------------------------------- consuming


@dataclass
class _Delivery:
    request_id: str
    attempts: int = 0
    succeeded: bool = False
    duplicate: bool = False


class LiveConsumer:
    """One Lambda consumer polling its rule's queue, logging each invocation as Lambda would.

    At-least-once like EventBridge + Lambda: a failed invocation is retried (the message
    comes back after a short visibility timeout, same request id, at most three attempts);
    sometimes a processed event is delivered once more (a new request id).
    """

    def __init__(self, consumer: Consumer, queue_url: str, sqs: Any, fleet: LambdaFleet,
                 fleet_lock: threading.Lock, writer: LogWriter, config: CompanyConfig,
                 counters: DemoCounters, seed: int) -> None:
        self.consumer, self.queue_url, self.sqs = consumer, queue_url, sqs
        self.fleet, self.fleet_lock, self.writer = fleet, fleet_lock, writer
        self.config, self.counters = config, counters
        self.rng = random.Random(seed)
        self.seen: OrderedDict[str, _Delivery] = OrderedDict()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll()
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                log.warning("%s: %s", self.consumer.name, exc)
                stop.wait(1.0)

    def poll(self) -> int:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=1).get("Messages", [])
        for message in messages:
            self.handle(message)
        return len(messages)

    def handle(self, message: dict[str, Any]) -> None:
        envelope = orjson.loads(message["Body"])
        delivery = self._delivery(envelope["id"])
        with self.fleet_lock:
            inv = self.fleet.attempt(self.consumer, envelope, delivery.request_id,
                                     int(time.time() * 1000),
                                     failed_before=delivery.attempts > 0,
                                     duplicate=delivery.duplicate)
            records = self.fleet.records(inv)
        self.writer.schedule(records)
        delivery.attempts += 1
        receipt = message["ReceiptHandle"]
        if inv.outcome == "ok":
            delivery.succeeded = True
            if not delivery.duplicate and self.rng.random() < self.config.duplicate_rate:
                self._again(receipt, DUPLICATE_DELAY_S)
                return
        elif delivery.attempts < 3:
            self._again(receipt, RETRY_DELAY_S)
            return
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)

    def _delivery(self, event_id: str) -> _Delivery:
        known = self.seen.get(event_id)
        if known is None or known.succeeded or known.attempts >= 3:
            redelivery = known is not None
            known = _Delivery(self.fleet.new_request_id(), duplicate=redelivery)
            self.seen[event_id] = known
            while len(self.seen) > 50_000:
                self.seen.popitem(last=False)
        return known

    def _again(self, receipt: str, delay_s: tuple[int, int]) -> None:
        self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=receipt,
                                           VisibilityTimeout=self.rng.randint(*delay_s))

    def backlog(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                     "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(v) for v in attributes["Attributes"].values())


# --------------------------------------------------------------------------- collectors


def demo_pii_fields() -> dict[str, tuple[str, ...]] | None:
    """The PII fields the demo's collectors redact whatever their values look like: those of
    `EVENTSCOPE_CATALOG` when set (None: `settings_from_env` reads it), else the demo
    catalog's (customer names, shipping addresses), so the demo store holds none in clear."""
    from eventscope.collectors.pii import declared_pii_fields

    if os.environ.get("EVENTSCOPE_CATALOG"):
        return None
    return declared_pii_fields(str(DEMO_CATALOG))


def collector_loops(emulator: Emulator, store: Store, since_ms: int,
                    logs_every_s: float) -> list[Any]:
    """The `collect all` loops (tap, consumer logs, rules) against the emulator."""
    from eventscope.collectors.logs_collector import LogsSettings
    from eventscope.collectors.pii import redaction_filter, settings_from_env
    from eventscope.collectors.tap_collector import TapSettings, queue_visibility

    clients = {name: emulator.client(name) for name in ("sqs", "logs", "events")}
    queue_url, sample = find_tap_queue(clients["sqs"], BUS)
    tap = TapSettings(queue_url=queue_url, sample_rate=sample, wait_seconds=1,
                      visibility_seconds=queue_visibility(clients["sqs"], queue_url))
    redaction = settings_from_env(store, demo_pii_fields())
    logs = LogsSettings(since_ms=since_ms, redaction=redaction)
    return service_loops(clients, store, BUS, tap, logs, redaction_filter(redaction),
                         logs_every_s=logs_every_s, rules_every_s=60.0)


# --------------------------------------------------------------------------- contracts


def verify_contracts(db_url: str, catalog: Path) -> str:
    """`eventscope contracts verify` (schemas, examples and the stored events), as a CI job
    would run it; its results go to the store for the dashboard and `check`. Its summary."""
    done = subprocess.run(
        [sys.executable, "-m", "eventscope", "contracts", "verify", "--db", db_url,
         "--catalog", str(catalog)], capture_output=True, text=True, check=False)
    lines = (done.stdout.strip() or done.stderr.strip() or "no output").splitlines()
    return lines[-1]


# --------------------------------------------------------------------------- dashboard


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def launch_dashboard(db_url: str, catalog: Path | None, port: int) -> subprocess.Popen[bytes]:
    """`eventscope dashboard` on 127.0.0.1:`port` as a child process."""
    if not port_free(port):
        raise DemoError(f"port {port} on 127.0.0.1 is in use: pass --port")
    with_catalog = ["--catalog", str(catalog)] if catalog is not None else []
    return subprocess.Popen(
        [sys.executable, "-m", "eventscope", "dashboard", "--db", db_url, *with_catalog,
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        # it dies with the demo even by kill -9 (`lifetime`): it has its own session, out
        # of reach of the terminal's Ctrl-C, so that `stop_process` stops it as one group
        env=dict(os.environ, **{PARENT_ENV: str(os.getpid())}), start_new_session=True)


def wait_healthy(process: subprocess.Popen[bytes], port: int, timeout_s: float = 60.0) -> None:
    """Return once the dashboard answers its health check; DemoError if it cannot."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DemoError(f"the dashboard exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise DemoError(f"the dashboard did not answer on port {port} within {timeout_s:.0f} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group (the dashboard command and its streamlit), then
    SIGKILL if it is still there after 10 s."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------- the whole demo


def run_demo(options: DemoOptions, store: Store, stop: threading.Event,
             echo: Callable[[str], None] = print) -> DemoCounters:
    """Run the demo until `stop` is set or `duration_s` passes; stop everything cleanly."""
    if options.dashboard and not port_free(options.port):
        raise DemoError(f"port {options.port} on 127.0.0.1 is in use: pass --port")
    demo = _Demo(options, store, stop, echo)
    try:
        demo.start()
        wait_in_slices(stop, options.duration_s)
        return demo.finish()
    finally:
        demo.close()


class _Demo:
    """The running demo's parts, started in order and stopped in reverse."""

    def __init__(self, options: DemoOptions, store: Store, stop: threading.Event,
                 echo: Callable[[str], None]) -> None:
        self.options, self.store, self.stop, self.echo = options, store, stop, echo
        self.counters = DemoCounters()
        self.emulator = Emulator()
        self.stops = {name: threading.Event() for name in ("producer", "consumers", "collectors")}
        self.threads: list[threading.Thread] = []
        self.consumers: list[LiveConsumer] = []
        self.dashboard: subprocess.Popen[bytes] | None = None
        self.service: threading.Thread | None = None
        now_ms = int(time.time() * 1000)
        self.timeline = Timeline(now_ms - int(options.backfill_s * 1000), now_ms)
        self.writer = LogWriter(self.emulator.client("logs"))

    def start(self) -> None:
        options, echo = self.options, self.echo
        echo(f"AWS emulator (moto) on {self.emulator.settings.endpoint_url}")
        events, sqs = self.emulator.client("events"), self.emulator.client("sqs")
        resources = create_resources(events, sqs, self.writer.logs)
        self.service = _start_collectors(self.emulator, self.store, self._since_ms(),
                                         options.logs_every_s, self.stops["collectors"], echo)
        if options.dashboard:
            catalog = options.catalog if options.catalog.is_dir() else None
            if catalog is None:
                echo(f"no demo catalog at {options.catalog}: the dashboard runs without one")
            self.dashboard = launch_dashboard(options.db_url, catalog, options.port)
            wait_healthy(self.dashboard, options.port)
            echo(f"dashboard: http://127.0.0.1:{options.port}  (history is filling in; "
                 "Ctrl-C to stop)")
        horizon = options.backfill_s + (options.duration_s or 7 * 24 * 3600.0)
        config, stream = bus_events(options, self.timeline, horizon)
        fleet = LambdaFleet(config, random.Random(options.seed + 1),
                            self.timeline.version_bump()[1], observer=self.counters.observe)
        echo(f"bus {BUS}: backfilling {options.backfill_s / 3600:g} h of history")
        first = backfill(events, self.writer, fleet, stream, self.timeline.live_ms,
                         self.counters, echo, self.stop)
        echo(f"backfill: {self.counters.backfill_events} events, {self.counters.invocations} "
             f"invocations, {self.writer.written} log records")
        connect_consumers(events, resources)
        if options.catalog.is_dir():
            echo(f"contracts: {verify_contracts(options.db_url, options.catalog)}")
        self._start_company(resources, fleet, config, stream, first)
        echo(f"live: about {options.rate:g} events/s on {BUS}")

    def _start_company(self, resources: Resources, fleet: LambdaFleet, config: CompanyConfig,
                       stream: Iterator[tuple[int, dict[str, Any]]],
                       first: tuple[int, dict[str, Any]] | None) -> None:
        lock = threading.Lock()
        self.consumers = [
            LiveConsumer(c, resources.queues[c.name], self.emulator.client("sqs"), fleet, lock,
                         self.writer, config, self.counters, self.options.seed + i)
            for i, c in enumerate(CONSUMERS)]
        consuming = self.stops["consumers"]
        self.threads += [_thread(c.run, consuming, c.consumer.name) for c in self.consumers]
        self.threads.append(_thread(self.writer.run, consuming, "log-writer"))
        events = self.emulator.client("events")
        self.threads.append(_thread(lambda s: produce(events, stream, first, self.counters, s),
                                    self.stops["producer"], "producer"))

    def finish(self) -> DemoCounters:
        """Stop producing, let consumers finish (bounded runs), collect what is left."""
        self.stops["producer"].set()
        if self.options.duration_s is not None and not self.stop.is_set():
            _drain(self.consumers, deadline_s=30.0)
        self.stops["consumers"].set()
        for thread in self.threads:
            thread.join()
        self.writer.flush_all()
        self.counters.log_records = self.writer.written
        self.stops["collectors"].set()
        if self.service is not None:
            self.service.join()
        _final_pass(self.emulator, self.store, self._since_ms())
        self.counters.collected = self.store.counts()
        return self.counters

    def _since_ms(self) -> int:
        return self.timeline.wall0_ms - 60_000

    def close(self) -> None:
        for event in self.stops.values():
            event.set()
        if self.dashboard is not None:
            stop_process(self.dashboard)
        self.emulator.stop()


def _thread(target: Callable[[threading.Event], None], stop: threading.Event,
            name: str) -> threading.Thread:
    thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
    thread.start()
    return thread


def _start_collectors(emulator: Emulator, store: Store, since_ms: int, logs_every_s: float,
                      stop: threading.Event, echo: Callable[[str], None]) -> threading.Thread:
    loops = collector_loops(emulator, store, since_ms, logs_every_s)
    thread = threading.Thread(target=run_service, args=(loops, store, stop, 30.0, echo),
                              name="collectors", daemon=True)
    thread.start()
    return thread


def _drain(consumers: list[LiveConsumer], deadline_s: float) -> None:
    """Wait until every consumer's queue is empty (retries and redeliveries included)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if all(c.backlog() == 0 for c in consumers):
            return
        time.sleep(0.5)
    log.warning("consumer queues not empty after %.0f s", deadline_s)


def _final_pass(emulator: Emulator, store: Store, since_ms: int) -> None:
    """Collect what the stopped loops have not yet: the tap until empty, the logs once."""
    for loop in collector_loops(emulator, store, since_ms, 0.0):
        if loop.name == "tap":
            while loop.step():
                pass
        else:
            loop.step()
