"""A generated company for the graph's scale tests: 40 teams, 200 event types, 300 consumers.

Not the demo's shop: a catalog folder (catalog.yaml, events/, consumers/) and a store with a few
events per type, invocations for most subscriptions and a bus-rules snapshot, written the way
the collectors write them. Every team owns five types under its own source; each consumer is
subscribed to two to five types of any team; most consumers' rules list their types, some use
a `prefix` on the detail-type and one is a catch-all archive rule with an `anything-but`.
Deterministic (seeded), so the tests name nodes by value.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from eventscope.records import BusEvent, Invocation
from eventscope.store import open_store, rule_snapshots, rule_targets

T0 = 1_764_000_000_000  # 2025-11-24
TEAMS = 40
TYPES_PER_TEAM = 5
CONSUMERS = 300
DOMAINS = ["orders", "payments", "invoicing", "shipping", "returns", "refunds", "carts",
           "coupons", "stock", "warehouse", "pricing", "catalogue", "search", "reviews",
           "loyalty", "customers", "accounts", "identity", "fraud", "risk", "tax", "ledger",
           "payouts", "sellers", "ads", "campaigns", "mail", "sms", "push", "support",
           "warranty", "insurance", "delivery", "pickup", "lockers", "subscriptions",
           "giftcards", "bundles", "recommendations", "analytics"]
NOUNS = ["Record", "Request", "Batch", "Schedule", "Profile"]
VERBS = ["Created", "Updated", "Approved", "Cancelled", "Expired"]
ARCHIVE = "company-archive"  # a catch-all archive target, in no catalog
PURPOSES = ["projector", "notifier", "sync", "auditor", "indexer", "exporter", "reconciler",
            "archiver"]


def domain_title(domain: str) -> str:
    return domain.capitalize()


@dataclass
class Company:
    """The generated company: type -> (source, owner team), consumer -> (team, types)."""

    types: dict[str, tuple[str, str]] = field(default_factory=dict)
    consumers: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    rules: dict[str, tuple[dict[str, object], str]] = field(default_factory=dict)


def company(seed: int = 16, teams: int = TEAMS, consumers: int = CONSUMERS) -> Company:
    """`teams` teams x 5 types, `consumers` consumers of 2-5 types each, one rule each."""
    rng = random.Random(seed)
    built = Company()
    for team in DOMAINS[:teams]:
        for index in range(TYPES_PER_TEAM):
            name = f"{domain_title(team)}{NOUNS[index]}{VERBS[(index + len(team)) % 5]}"
            built.types[name] = (f"com.company.{team}", team)
    names = sorted(built.types)
    for number in range(consumers):
        team = DOMAINS[number % teams]
        consumer = f"{team}-{PURPOSES[(number // teams) % len(PURPOSES)]}-{number:03d}"
        subscribed = sorted(rng.sample(names, rng.randint(2, 5)))
        built.consumers[consumer] = (team, subscribed)
        built.rules[f"{consumer}-rule"] = ({"detail-type": subscribed}, consumer)
    # a prefix rule (every type of the stock team) and a catch-all archive (all but search)
    stock_sink = next((name for name in built.consumers if name.startswith("stock-")), None)
    if stock_sink:
        built.rules["stock-everything"] = (
            {"source": ["com.company.stock"], "detail-type": [{"prefix": "Stock"}]}, stock_sink)
    built.rules["archive-all"] = (
        {"source": [{"anything-but": {"prefix": "com.company.search"}}]}, ARCHIVE)
    return built


def write_catalog(root: Path, built: Company) -> Path:
    """The company's catalog folder (teams, one file per type and per consumer)."""
    (root / "events").mkdir(parents=True, exist_ok=True)
    (root / "consumers").mkdir(exist_ok=True)
    teams = "\n".join(f"  {t}: {{email: {t}@company.example, slack: \"#team-{t}\"}}"
                      for t in DOMAINS[:TEAMS])
    (root / "catalog.yaml").write_text(f"name: company\nteams:\n{teams}\n")
    for name, (source, team) in built.types.items():
        (root / "events" / f"{name}.yaml").write_text(
            f"detail-type: {name}\nsource: {source}\nowner: {team}\nversions:\n"
            "  - version: \"1\"\n    schema: {type: object}\n")
    for name, (team, types) in built.consumers.items():
        subscriptions = "".join(f"  - event: {t}\n    source: {built.types[t][0]}\n"
                                for t in types)
        (root / "consumers" / f"{name}.yaml").write_text(
            f"name: {name}\nteam: {team}\nfunctions: [{name}]\nsubscriptions:\n{subscriptions}")
    return root


def write_store(url: str, built: Company, observed_share: float = 0.8) -> str:
    """Two events per type, one invocation per (event, subscribed consumer) for most
    consumers (some fail), and the rules snapshot of the bus `company`."""
    rng = random.Random(7)
    events, calls = [], []
    by_type: dict[str, list[BusEvent]] = {}
    for index, (name, (source, _)) in enumerate(sorted(built.types.items())):
        for copy in range(2):
            event = BusEvent(id=f"ev-{index}-{copy}", source=source, detail_type=name,
                             time_ms=T0 + index * 1000 + copy * 500,
                             detail=f'{{"id":"{index}-{copy}"}}', size_bytes=200,
                             version="1", correlation_key=f"k-{index}-{copy}")
            events.append(event)
            by_type.setdefault(name, []).append(event)
    for number, (consumer, (_, types)) in enumerate(sorted(built.consumers.items())):
        if rng.random() > observed_share:
            continue
        for kind in types:
            for event in by_type[kind]:
                failed = rng.random() < 0.1
                calls.append(Invocation(
                    request_id=f"r-{number}-{event.id}", consumer=consumer,
                    log_group=f"/aws/lambda/{consumer}", log_stream="2026/12/01/[$LATEST]x",
                    start_ms=event.time_ms + 100, outcome="error" if failed else "ok",
                    event_id=event.id, duration_ms=12.0, end_ms=event.time_ms + 112,
                    error_type="ValueError" if failed else None,
                    error_message="bad input" if failed else None, complete=True))
    store = open_store(url)
    store.write_batch(events, calls)
    snapshots, targets = [], []
    for rule, (pattern, consumer) in sorted(built.rules.items()):
        snapshots.append({"bus": "company", "rule_name": rule, "snapshot_ms": T0,
                          "arn": f"arn:aws:events:eu-west-1:123456789012:rule/company/{rule}",
                          "state": "ENABLED", "event_pattern": orjson.dumps(pattern).decode(),
                          "schedule_expression": None, "description": None,
                          "managed_by": None})
        targets.append({"bus": "company", "rule_name": rule, "snapshot_ms": T0,
                        "target_id": "1", "input_mode": "event",
                        "arn": f"arn:aws:lambda:eu-west-1:123456789012:function:{consumer}"})
    with store.engine.begin() as conn:
        conn.execute(rule_snapshots.insert(), snapshots)
        conn.execute(rule_targets.insert(), targets)
    store.engine.dispose()
    return url
