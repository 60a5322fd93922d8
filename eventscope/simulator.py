"""The simulator: a seeded, simulated e-commerce company on EventBridge and its consumers' logs.

Owns the simulated company (producers, detail-types, order lifecycles, Lambda consumers and
what they subscribe to), the problems from the seed article that it plants on purpose, and
the rendering of what an observer would collect:

- bus events as EventBridge envelopes, exactly as a rule target receives them;
- consumer invocations as CloudWatch Logs records, exactly as ``filter_log_events`` returns
  them plus ``logGroupName``, in both of Lambda's log formats (TEXT and JSON), with AWS Lambda
  Powertools Logger lines whose ``correlation_id`` is the bus event id.

The company's event catalog, as its teams would write it (with the planted problems left
visible), is the folder `demo_catalog/` beside this module, installed with the package:
`DEMO_CATALOG`.

Everything is a pure function of (config, seed, start, size): no clock, no network, no boto3.
The only I/O is `write_ndjson` and the command line
(``python -m eventscope.simulator --events N --out DIR``).
"""

from __future__ import annotations

import argparse
import gzip as gzip_module
import heapq
import math
import random
import sys
import time
import unicodedata
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, NamedTuple

import orjson

# --------------------------------------------------------------------------- the company

#: The company's event catalog (data files installed with the package).
DEMO_CATALOG = Path(__file__).resolve().with_name("demo_catalog")

ORDERS = "com.shop.orders"
PAYMENTS = "com.shop.payments"
LOGISTICS = "com.shop.logistics"
FINANCE = "com.shop.finance"
WARRANTY = "com.shop.warranty"
CRM = "com.shop.crm"
INVENTORY = "com.shop.inventory"
FRAUD = "com.shop.fraud"

#: The core detail-types of an order's life and the source that emits each.
CORE_TYPES: dict[str, str] = {
    "OrderCreated": ORDERS,
    "OrderPaid": PAYMENTS,
    "InvoiceIssued": FINANCE,
    "OrderShipped": LOGISTICS,
    "OrderDelivered": LOGISTICS,
    "OrderCancelled": ORDERS,
    "OrderReturned": ORDERS,
    "RefundIssued": PAYMENTS,
    "WarrantyContractCreated": WARRANTY,
    "WarrantyContractCancelled": WARRANTY,
    "CustomerNotified": CRM,
    "OrderPlaced": ORDERS,
    "OrderPriorityChanged": ORDERS,
}

#: Emitted on the bus but missing from the company catalogue (planted: undocumented_event).
UNDOCUMENTED_TYPES: tuple[str, ...] = ("OrderPriorityChanged",)
#: Deprecated detail-types and their replacements (planted: deprecated_event).
DEPRECATED_TYPES: dict[str, str] = {"OrderPlaced": "OrderCreated"}


class ExtraType(NamedTuple):
    """A secondary detail-type, emitted around an anchor step of the lifecycle."""

    detail_type: str
    source: str
    anchor: str  # the core step it follows (or precedes, with a negative offset)
    probability: float
    offset_ms: tuple[int, int]


_MIN = 60_000
_HOUR = 60 * _MIN
_DAY = 24 * _HOUR

#: Secondary detail-types, added in this order when `CompanyConfig.detail_types` exceeds 12.
EXTRA_TYPES: tuple[ExtraType, ...] = (
    ExtraType("PaymentAuthorized", PAYMENTS, "OrderCreated", 0.95, (20_000, 4 * _MIN)),
    ExtraType("StockReserved", INVENTORY, "OrderCreated", 0.9, (5_000, 2 * _MIN)),
    ExtraType("FraudCheckCompleted", FRAUD, "OrderCreated", 0.9, (3_000, 90_000)),
    ExtraType("OrderConfirmed", ORDERS, "OrderPaid", 0.9, (2_000, 60_000)),
    ExtraType("PaymentCaptured", PAYMENTS, "OrderPaid", 0.9, (1_000, 30_000)),
    ExtraType("TaxCalculated", FINANCE, "OrderPaid", 0.8, (30_000, 10 * _MIN)),
    ExtraType("LedgerEntryPosted", FINANCE, "InvoiceIssued", 0.8, (_MIN, 30 * _MIN)),
    ExtraType("PickingStarted", LOGISTICS, "OrderShipped", 0.8, (-3 * _HOUR, -2 * _HOUR)),
    ExtraType("PackagePacked", LOGISTICS, "OrderShipped", 0.8, (-_HOUR, -20 * _MIN)),
    ExtraType("ShippingLabelCreated", LOGISTICS, "OrderShipped", 0.85, (-15 * _MIN, -_MIN)),
    ExtraType("CarrierAssigned", LOGISTICS, "OrderShipped", 0.8, (_MIN, 20 * _MIN)),
    ExtraType("ShipmentInTransit", LOGISTICS, "OrderShipped", 0.8, (2 * _HOUR, 12 * _HOUR)),
    ExtraType("OutForDelivery", LOGISTICS, "OrderDelivered", 0.8, (-5 * _HOUR, -_HOUR)),
    ExtraType("DeliveryAttempted", LOGISTICS, "OrderDelivered", 0.15, (-30 * _HOUR, -6 * _HOUR)),
    ExtraType("LoyaltyPointsAwarded", CRM, "OrderDelivered", 0.7, (_MIN, _HOUR)),
    ExtraType("ReviewRequested", CRM, "OrderDelivered", 0.7, (_DAY, 3 * _DAY)),
    ExtraType("StockReleased", INVENTORY, "OrderCancelled", 0.9, (_MIN, 10 * _MIN)),
    ExtraType("WarrantyQuoteRequested", WARRANTY, "OrderCreated", 0.4, (10_000, 5 * _MIN)),
)

MAX_DETAIL_TYPES = 12 + len(EXTRA_TYPES)

ErrorFrame = tuple[str, int, str, str]  # file, line, function, code


class ErrorSpec(NamedTuple):
    """An exception a consumer can raise, and the line it logs before raising, if any."""

    error_type: str
    message: str
    frames: tuple[ErrorFrame, ...]
    logged: str | None = None


LogFormat = Literal["text", "json"]


@dataclass(frozen=True)
class Consumer:
    """One Lambda consumer: its log format, sizing, subscriptions and ways of failing."""

    name: str
    log_format: LogFormat
    service: str
    memory_mb: int
    timeout_s: int
    base_duration_ms: float
    base_memory_mb: int
    types: tuple[str, ...]
    action: str  # what a successful invocation logs after "Processing <type>"
    errors: tuple[ErrorSpec, ...]
    tracing: bool = True


_APP = "/var/task/app.py"
_BOTO = "/var/lang/lib/python3.11/site-packages/botocore/client.py"
_BOTO_FRAMES: tuple[ErrorFrame, ...] = (
    (_BOTO, 565, "_api_call", "return self._make_api_call(operation_name, kwargs)"),
    (_BOTO, 1021, "_make_api_call", "raise error_class(parsed_response, operation_name)"),
)
_SAGEMAKER = "https://runtime.sagemaker.eu-west-1.amazonaws.com/endpoints/fraud-v3/invocations"

CONSUMERS: tuple[Consumer, ...] = (
    Consumer(
        "crm-notifier", "text", "crm", 256, 6, 140.0, 78,
        ("OrderCreated", "OrderShipped", "OrderDelivered", "OrderCancelled", "OrderReturned",
         "RefundIssued", "WarrantyContractCreated", "PaymentFailed"),
        "Customer notification queued",
        (ErrorSpec("ClientError", "An error occurred (Throttling) when calling the SendEmail "
                   "operation (reached max retries: 4): Maximum sending rate exceeded.",
                   ((_APP, 48, "handler", "ses.send_email(**message)"),
                    *_BOTO_FRAMES),
                   "SES refused the notification, letting Lambda retry"),),
    ),
    Consumer(
        "warranty-handler", "json", "warranty", 512, 6, 210.0, 96,
        ("OrderCreated",),
        "Warranty contract state synchronised with insurer",
        (ErrorSpec("InsurerApiError", "insurer API returned 502 Bad Gateway",
                   ((_APP, 72, "handler", "contract = insurer.create_contract(order_id, sku)"),
                    ("/var/task/insurer.py", 31, "create_contract",
                     "raise InsurerApiError(f\"insurer API returned {status} {reason}\")")),
                   "Insurer call failed for order"),),
    ),
    Consumer(
        "invoice-generator", "text", "finance", 512, 10, 320.0, 112,
        ("OrderPaid", "OrderCancelled", "OrderReturned", "RefundIssued"),
        "Invoice document rendered",
        (ErrorSpec("OperationalError", "connection to server at \"invoices.cluster.local\" "
                   "(10.0.3.17), port 5432 failed: timeout expired",
                   ((_APP, 22, "handler", "with db.transaction() as tx:"),
                    ("/var/task/db.py", 14, "transaction", "conn = pool.getconn()")),
                   None),),
    ),
    Consumer(
        "shipping-label", "json", "logistics", 256, 3, 95.0, 70,
        ("OrderPaid", "OrderCancelled", "OrderReturned"),
        "Shipping label requested from carrier",
        (ErrorSpec("CarrierUnavailableError", "carrier API 503 Service Unavailable",
                   ((_APP, 35, "handler", "label = carrier.create_label(order)"),
                    ("/var/task/carrier.py", 58, "create_label",
                     "raise CarrierUnavailableError(msg)")),
                   "Carrier API call failed: 503 Service Unavailable"),),
    ),
    Consumer(
        "analytics-sink", "text", "analytics", 128, 3, 35.0, 58,
        ("OrderCreated", "OrderPaid", "PaymentCaptured", "OrderCancelled", "OrderReturned",
         "OrderShipped", "OrderDelivered", "InvoiceIssued"),
        "Event written to analytics stream",
        (ErrorSpec("ClientError", "An error occurred (ProvisionedThroughputExceededException) when "
                   "calling the PutRecord operation: Rate exceeded for shard shardId-000000000001",
                   ((_APP, 19, "handler", "kinesis.put_record(StreamName=STREAM, Data=data, "
                                          "PartitionKey=order_id)"),
                    *_BOTO_FRAMES),
                   None),),
        tracing=False,
    ),
    Consumer(
        "fraud-check", "json", "fraud", 256, 3, 60.0, 66,
        ("OrderCreated", "OrderPaid", "PaymentFailed", "OrderCancelled", "OrderReturned"),
        "Fraud score computed",
        (ErrorSpec("ReadTimeoutError", "Read timeout on endpoint URL: "
                   f"\"{_SAGEMAKER}\"",
                   ((_APP, 41, "handler", "score = model.predict(features)"),
                    ("/var/task/model.py", 12, "predict",
                     "response = runtime.invoke_endpoint(**request)")),
                   "Fraud model call timed out"),),
    ),
)

#: The consumer the version bump of OrderPaid breaks, and the error it raises meanwhile.
VERSION_BUMP_VICTIM = "invoice-generator"
VERSION_BUMP_ERROR = ErrorSpec(
    "KeyError", "'totalAmount'",
    ((_APP, 31, "handler", "total = Decimal(detail[\"totalAmount\"])"),),
)
#: The consumer that is not idempotent when duplicate deliveries are planted.
NON_IDEMPOTENT_CONSUMER = "fraud-check"
#: The consumer that never subscribed to cancellations when that problem is planted.
WARRANTY_CONSUMER = "warranty-handler"


@dataclass(frozen=True)
class Plants:
    """The seed article's problems, planted on purpose; each can be switched off."""

    missing_warranty_cancellations: bool = True  # warranty-handler ignores OrderCancelled/Returned
    version_bump: bool = True  # OrderPaid v2 drops totalAmount, breaking invoice-generator
    duplicate_processing: bool = True  # fraud-check processes a duplicate delivery twice
    undocumented_event: bool = True  # OrderPriorityChanged is emitted, in no catalogue
    deprecated_event: bool = True  # OrderPlaced is still emitted and consumed
    pii_in_payload: bool = True  # customer e-mails and names travel in OrderCreated/OrderPlaced

    @classmethod
    def none(cls) -> Plants:
        """A company without any of the article's problems."""
        return cls(False, False, False, False, False, False)


@dataclass(frozen=True)
class CompanyConfig:
    """How the simulated company behaves: its size, its failure rates, its planted problems."""

    detail_types: int = 12  # 12 (core) up to MAX_DETAIL_TYPES (30) distinct detail-types
    event_bytes: int | None = None  # aim for envelopes of about this size (±20 %); None: natural
    orders_per_minute: float = 2.0
    error_rate: float = 0.01  # chance an invocation fails with an exception
    timeout_rate: float = 0.003  # chance an invocation times out
    retry_failure_rate: float = 0.3  # chance a retry of a transient failure fails again
    duplicate_rate: float = 0.01  # chance EventBridge delivers an event twice to a consumer
    extra_log_line_rate: float = 0.3  # chance a successful invocation logs a second app line
    version_bump_window: tuple[float, float] = (0.3, 0.6)  # bump, fix: fractions of the run
    plants: Plants = field(default_factory=Plants)
    account: str = "123456789012"
    region: str = "eu-west-1"

    @classmethod
    def demo(cls) -> CompanyConfig:
        """The demo/examples company: 12 detail-types, natural sizes, every problem planted."""
        return cls(duplicate_rate=0.03, error_rate=0.02, timeout_rate=0.006)

    @classmethod
    def bench(cls) -> CompanyConfig:
        """The benchmark company: 30 detail-types, ~1 KB envelopes, ~3 log records per event."""
        return cls(detail_types=MAX_DETAIL_TYPES, event_bytes=1024, orders_per_minute=6.0,
                   extra_log_line_rate=0.1)


PRESETS = {"demo": CompanyConfig.demo, "bench": CompanyConfig.bench}


def subscriptions(plants: Plants = Plants()) -> dict[str, tuple[str, ...]]:
    """Which detail-types each consumer's EventBridge rule matches, given the planted problems."""
    subs = {c.name: c.types for c in CONSUMERS}
    if not plants.missing_warranty_cancellations:
        subs[WARRANTY_CONSUMER] += ("OrderCancelled", "OrderReturned")
    if plants.deprecated_event:
        subs["analytics-sink"] += ("OrderPlaced",)
    return subs


def producers(config: CompanyConfig = CompanyConfig()) -> dict[str, tuple[str, ...]]:
    """Which detail-types each source can emit under this config."""
    result: dict[str, list[str]] = {}
    for detail_type in _emitted_types(config):
        result.setdefault(_source_of(detail_type), []).append(detail_type)
    return {source: tuple(types) for source, types in result.items()}


def _emitted_types(config: CompanyConfig) -> list[str]:
    plants = config.plants
    skipped = set()
    if plants.missing_warranty_cancellations:
        skipped.add("WarrantyContractCancelled")
    if not plants.undocumented_event:
        skipped.update(UNDOCUMENTED_TYPES)
    if not plants.deprecated_event:
        skipped.update(DEPRECATED_TYPES)
    core = [t for t in CORE_TYPES if t not in skipped]
    return core + [x.detail_type for x in _extras(config)]


def _extras(config: CompanyConfig) -> tuple[ExtraType, ...]:
    count = max(0, min(config.detail_types, MAX_DETAIL_TYPES) - 12)
    return EXTRA_TYPES[:count]


_EXTRA_SOURCES = {x.detail_type: x.source for x in EXTRA_TYPES}


def _source_of(detail_type: str) -> str:
    return CORE_TYPES.get(detail_type) or _EXTRA_SOURCES[detail_type]


# --------------------------------------------------------------------------- output items


class SimItem(NamedTuple):
    """One simulated observation: a bus event envelope or a CloudWatch Logs record."""

    kind: Literal["event", "log"]
    time_ms: int
    record: dict[str, Any]


DEFAULT_START = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


def simulate(
    config: CompanyConfig | None = None,
    *,
    seed: int = 0,
    start: datetime = DEFAULT_START,
    n_orders: int | None = None,
    n_events: int | None = None,
) -> Iterator[SimItem]:
    """Yield the company's bus events and consumer log records in time order.

    Give exactly one of `n_orders` (that many order lifecycles, run to completion) or
    `n_events` (exactly that many bus events; the last order may stop mid-life). The same
    arguments always yield the same items; memory stays flat however many are asked for.
    """
    if (n_orders is None) == (n_events is None):
        raise ValueError("give exactly one of n_orders or n_events")
    return _Simulation(config or CompanyConfig.demo(), seed, start, n_orders, n_events).run()


# --------------------------------------------------------------------------- ids and times

_TIME_CACHE: dict[int, tuple[str, str]] = {}


def _second_parts(second: int) -> tuple[str, str]:
    """('2024-05-01', '10:00:00') for an epoch second, cached."""
    parts = _TIME_CACHE.get(second)
    if parts is None:
        if len(_TIME_CACHE) > 20_000:
            _TIME_CACHE.clear()
        t = time.gmtime(second)
        parts = (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}",
                 f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}")
        _TIME_CACHE[second] = parts
    return parts


def iso_seconds(ms: int) -> str:
    """EventBridge's `time`: '2024-05-01T10:00:00Z'."""
    day, clock = _second_parts(ms // 1000)
    return f"{day}T{clock}Z"


def iso_millis(ms: int) -> str:
    """Lambda's timestamps: '2024-05-01T10:00:00.123Z'."""
    day, clock = _second_parts(ms // 1000)
    return f"{day}T{clock}.{ms % 1000:03d}Z"


def _powertools_time(ms: int) -> str:
    day, clock = _second_parts(ms // 1000)
    return f"{day} {clock},{ms % 1000:03d}+0000"


def _plain_time(ms: int) -> str:
    day, clock = _second_parts(ms // 1000)
    return f"{day}T{clock}"


def _stream_date(ms: int) -> str:
    return _second_parts(ms // 1000)[0].replace("-", "/")


def _uuid4(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def _to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


# --------------------------------------------------------------------------- orders

_FIRST = ("Ana", "Bruno", "Chloé", "Dmitri", "Emma", "Farid", "Greta", "Hiro", "Inês", "Jonas",
          "Kasia", "Liam", "Maëlle", "Nuno", "Olga", "Pedro", "Queenie", "Rui", "Sofia", "Tomás",
          "Uma", "Vera", "Wiktor", "Xavier", "Yara", "Zoë", "Łukasz", "Søren")
_LAST = ("Silva", "Schmidt", "Dubois", "Rossi", "García", "Kowalski", "Jansen", "Novak",
         "O'Brien", "Andersson", "Costa", "Müller", "Lefèvre", "Horvat", "Byrne", "Santos")
_CITIES = (("Lisboa", "PT", "1100-148"), ("Porto", "PT", "4000-322"), ("Madrid", "ES", "28013"),
           ("Berlin", "DE", "10115"), ("Paris", "FR", "75011"), ("Dublin", "IE", "D02 X285"),
           ("Milano", "IT", "20121"), ("Warszawa", "PL", "00-950"), ("Gdańsk", "PL", "80-001"))
_PRODUCTS = (
    ("LAP-13-AIR", "Ultrabook 13\"", "laptops", 1099.0, True),
    ("LAP-15-PRO", "Pro laptop 15\"", "laptops", 1899.0, True),
    ("PHN-X-128", "Smartphone X 128 GB", "phones", 799.0, True),
    ("PHN-LITE-64", "Smartphone Lite 64 GB", "phones", 299.0, True),
    ("TAB-11-WIFI", "Tablet 11\" Wi-Fi", "tablets", 549.0, True),
    ("TV-55-OLED", "OLED TV 55\"", "tv", 1399.0, True),
    ("HDP-NC-700", "Noise-cancelling headphones", "audio", 329.0, True),
    ("SPK-MINI", "Bluetooth mini speaker", "audio", 49.9, False),
    ("CBL-USBC-2M", "USB-C cable 2 m", "accessories", 14.9, False),
    ("CHG-65W", "65 W USB-C charger", "accessories", 39.9, False),
    ("CSE-PHN-X", "Phone case X", "accessories", 19.9, False),
    ("MSE-ERGO", "Ergonomic mouse", "accessories", 59.0, False),
    ("KBD-MECH", "Mechanical keyboard", "accessories", 129.0, False),
    ("WCH-S3", "Smartwatch S3", "wearables", 399.0, True),
    ("CAM-MIRR-24", "Mirrorless camera 24 MP", "cameras", 1249.0, True),
)
_STREETS = ("Rua Augusta", "Calle Mayor", "Hauptstraße", "Rue Oberkampf", "Via Torino",
            "ul. Długa", "Grafton Street")
_CARRIERS = ("DHL", "UPS", "CTT", "DPD", "GLS", "InPost")
_CANCEL_REASONS = ("customer_request", "payment_failed", "out_of_stock", "fraud_suspected")
_RETURN_REASONS = ("damaged", "not_as_described", "changed_mind", "wrong_item")
_NOTES = ("Leave the parcel with the neighbour at number 12 if nobody answers. Gift wrap "
          "requested, no invoice in the box. Customer asked for delivery after 18:00 on "
          "weekdays; the building has a concierge who can sign for parcels. ") * 40


class Order:
    """An order's state: who bought what, where it goes, whether it has a warranty, its plan.

    Compact (slots, product indexes, an array plan), because tens of thousands of orders are
    alive at once in a long run.
    """

    __slots__ = ("order_id", "seq", "created_ms", "customer_id", "name", "email", "city",
                 "lines", "total", "currency", "warranty_sku", "channel", "plants",
                 "plan_offsets", "plan_types")

    def __init__(self, rng: random.Random, seq: int, created_ms: int, plants: Plants) -> None:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        self.city = rng.randrange(len(_CITIES))
        self.lines = tuple((rng.randrange(len(_PRODUCTS)), 1 if rng.random() < 0.8 else 2)
                           for _ in range(1 + int(rng.random() ** 2 * 5)))
        self.total = round(sum(_PRODUCTS[p][3] * q for p, q in self.lines), 2)
        eligible = [_PRODUCTS[p][0] for p, _ in self.lines if _PRODUCTS[p][4]]
        self.order_id = f"ord-{_hex(rng, 16)}"
        self.seq = seq
        self.created_ms = created_ms
        self.customer_id = f"cus_{_hex(rng, 12)}"
        self.name = f"{first} {last}"
        self.email = f"{_ascii(first)}.{_ascii(last)}{rng.randrange(100)}@example.com"
        self.currency = "PLN" if _CITIES[self.city][1] == "PL" else "EUR"
        self.warranty_sku = eligible[0] if eligible and rng.random() < 0.35 else None
        self.channel = rng.choice(("web", "web", "web", "ios", "android"))
        self.plants = plants
        self.plan_offsets = array("q")
        self.plan_types = b""

    @property
    def address(self) -> dict[str, str]:
        city, country, postcode = _CITIES[self.city]
        return {"line1": f"{10 + self.seq % 90} {_STREETS[self.seq % len(_STREETS)]}",
                "city": city, "postalCode": postcode, "country": country}

    def money(self) -> dict[str, Any]:
        """The order's total as the catalog's `money` object."""
        return {"amount": self.total, "currency": self.currency}

    def items(self) -> list[dict[str, Any]]:
        """The order lines as they appear in fat events."""
        return [{"sku": sku, "name": name, "category": category, "quantity": quantity,
                 "unitPrice": price}
                for (sku, name, category, price, _), quantity
                in ((_PRODUCTS[p], q) for p, q in self.lines)]

    def set_plan(self, plan: Plan) -> None:
        self.plan_offsets = array("q", (offset for offset, _ in plan))
        self.plan_types = bytes(_TYPE_INDEX[detail_type] for _, detail_type in plan)

    def step(self, index: int) -> tuple[int, str] | None:
        """The plan's step `index` as (absolute time ms, detail-type), None past its end."""
        if index >= len(self.plan_types):
            return None
        return self.created_ms + self.plan_offsets[index], _TYPES[self.plan_types[index]]


_TYPES: tuple[str, ...] = tuple(CORE_TYPES) + tuple(x.detail_type for x in EXTRA_TYPES)
_TYPE_INDEX = {name: index for index, name in enumerate(_TYPES)}


def _ascii(text: str) -> str:
    """'Łukasz' -> 'lukasz', "O'Brien" -> 'obrien': the local part of a fake e-mail."""
    folded = unicodedata.normalize("NFKD", text.lower().replace("ł", "l").replace("ø", "o"))
    return "".join(c for c in folded if c.isascii() and c.isalnum())


Plan = list[tuple[int, str]]  # (offset from creation in ms, detail-type), sorted


def _plan_order(rng: random.Random, order: Order, extras: Sequence[ExtraType]) -> Plan:
    """The order's lifecycle: which detail-types it goes through, and when."""
    plants: Plants = order.plants
    steps: dict[str, int] = {"OrderCreated": 0}
    plan: Plan = [(0, "OrderCreated")]
    if plants.deprecated_event and rng.random() < 0.25:
        plan.append((rng.randint(50, 2_000), "OrderPlaced"))
    if order.warranty_sku:
        steps["WarrantyContractCreated"] = rng.randint(5 * _MIN, 20 * _MIN)
    cancelled = rng.random() < 0.07
    if not cancelled or rng.random() < 0.5:
        _plan_payment(rng, steps)
    if cancelled:
        _plan_cancellation(rng, steps)
    else:
        _plan_delivery(rng, steps, plants)
    if order.warranty_sku and not plants.missing_warranty_cancellations:
        _plan_warranty_cancellation(rng, steps)
    plan.extend((offset, name) for name, offset in steps.items() if name != "OrderCreated")
    plan.extend(_plan_extras(rng, steps, extras))
    plan.sort()
    return plan


def _plan_payment(rng: random.Random, steps: dict[str, int]) -> None:
    paid = rng.randint(_MIN, 30 * _MIN)
    steps["OrderPaid"] = paid
    steps["InvoiceIssued"] = paid + rng.randint(_MIN, 5 * _MIN)


def _plan_cancellation(rng: random.Random, steps: dict[str, int]) -> None:
    cancelled = steps.get("OrderPaid", 0) + rng.randint(5 * _MIN, 12 * _HOUR)
    steps["OrderCancelled"] = cancelled
    if "OrderPaid" in steps:
        steps["RefundIssued"] = cancelled + rng.randint(_HOUR, 2 * _DAY)


def _plan_delivery(rng: random.Random, steps: dict[str, int], plants: Plants) -> None:
    shipped = steps["OrderPaid"] + rng.randint(4 * _HOUR, 48 * _HOUR)
    delivered = shipped + rng.randint(_DAY, 4 * _DAY)
    steps["OrderShipped"] = shipped
    steps["OrderDelivered"] = delivered
    steps["CustomerNotified"] = delivered + rng.randint(_MIN, 10 * _MIN)
    if plants.undocumented_event and rng.random() < 0.05:
        steps["OrderPriorityChanged"] = steps["OrderPaid"] + rng.randint(10 * _MIN, 3 * _HOUR)
    if rng.random() < 0.06:
        returned = delivered + rng.randint(_DAY, 14 * _DAY)
        steps["OrderReturned"] = returned
        steps["RefundIssued"] = returned + rng.randint(_DAY, 3 * _DAY)


def _plan_warranty_cancellation(rng: random.Random, steps: dict[str, int]) -> None:
    ended = steps.get("OrderCancelled") or steps.get("OrderReturned")
    if ended is not None:
        steps["WarrantyContractCancelled"] = ended + rng.randint(5 * _MIN, 30 * _MIN)


def _plan_extras(rng: random.Random, steps: dict[str, int],
                 extras: Sequence[ExtraType]) -> Iterator[tuple[int, str]]:
    for extra in extras:
        anchor = steps.get(extra.anchor)
        if anchor is not None and rng.random() < extra.probability:
            yield max(1, anchor + rng.randint(*extra.offset_ms)), extra.detail_type


# --------------------------------------------------------------------------- event details


def _detail(detail_type: str, order: Order, rng: random.Random, version: str,
            t_ms: int) -> dict[str, Any]:
    builder = _DETAIL_BUILDERS.get(detail_type, _detail_generic)
    return builder(order, rng, version, t_ms, detail_type)


def _detail_created(order: Order, rng: random.Random, version: str, t_ms: int,
                    _t: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"orderId": order.order_id, "version": version}
    if order.plants.pii_in_payload:
        detail["customer"] = {"customerId": order.customer_id, "name": order.name,
                              "email": order.email}
        detail["shippingAddress"] = order.address
    else:
        detail["customer"] = {"customerId": order.customer_id}
    detail.update(channel=order.channel, total=order.money(), items=order.items(),
                  createdAt=iso_millis(t_ms))
    if order.warranty_sku:
        detail["addOns"] = [{"type": "extended-warranty", "sku": order.warranty_sku}]
    return detail


def _detail_placed(order: Order, rng: random.Random, version: str, t_ms: int,
                   _t: str) -> dict[str, Any]:
    detail = {"orderId": order.order_id, "version": version, "customerId": order.customer_id,
              "total": order.total, "currency": order.currency}
    if order.plants.pii_in_payload:
        detail["customerEmail"] = order.email
    return detail


def _detail_paid(order: Order, rng: random.Random, version: str, t_ms: int,
                 _t: str) -> dict[str, Any]:
    """Version 1 also carries the undeclared `totalAmount` (a string) that invoice-generator
    reads; version 2 drops it and renames `method` to `paymentMethod`."""
    detail: dict[str, Any] = {"orderId": order.order_id, "version": version,
                              "paymentId": f"pay-{_hex(rng, 14)}",
                              "customerId": order.customer_id, "amount": order.money()}
    method = rng.choice(("card", "card", "card", "paypal", "mbway", "blik"))
    if version == "2":
        detail["paymentMethod"] = method
    else:
        detail["totalAmount"] = f"{order.total:.2f}"
        detail["method"] = method
    detail["paidAt"] = iso_millis(t_ms)
    return detail


def _detail_invoice(order: Order, rng: random.Random, version: str, t_ms: int,
                    _t: str) -> dict[str, Any]:
    return {"orderId": order.order_id, "version": version,
            "invoiceNumber": f"INV-{order.seq:08d}", "total": order.money(),
            "taxAmount": round(order.total * 0.23 / 1.23, 2)}


def _detail_shipped(order: Order, rng: random.Random, version: str, t_ms: int,
                    _t: str) -> dict[str, Any]:
    return {"orderId": order.order_id, "version": version,
            "shipmentId": f"shp_{order.order_id[4:]}", "carrier": rng.choice(_CARRIERS),
            "trackingNumber": f"{rng.randrange(10**11, 10**12)}",
            "packages": 1 + len(order.items()) // 3, "shippedAt": iso_millis(t_ms)}


def _detail_delivered(order: Order, rng: random.Random, version: str, t_ms: int,
                      _t: str) -> dict[str, Any]:
    return {"orderId": order.order_id, "version": version,
            "shipmentId": f"shp_{order.order_id[4:]}", "deliveredAt": iso_millis(t_ms)}


def _detail_cancelled(order: Order, rng: random.Random, version: str, t_ms: int,
                      _t: str) -> dict[str, Any]:
    return {"orderId": order.order_id, "version": version,
            "reason": rng.choice(_CANCEL_REASONS),
            "cancelledBy": rng.choice(("customer", "system")), "cancelledAt": iso_millis(t_ms)}


def _detail_returned(order: Order, rng: random.Random, version: str, t_ms: int,
                     _t: str) -> dict[str, Any]:
    return {"orderId": order.order_id, "version": version, "returnId": f"ret_{_hex(rng, 12)}",
            "reason": rng.choice(_RETURN_REASONS), "skus": [i["sku"] for i in order.items()],
            "returnedAt": iso_millis(t_ms)}


def _detail_refund(order: Order, rng: random.Random, version: str, t_ms: int,
                   _t: str) -> dict[str, Any]:
    return {"orderId": order.order_id, "version": version, "refundId": f"ref-{_hex(rng, 12)}",
            "amount": order.money()}


def _detail_warranty(order: Order, rng: random.Random, version: str, t_ms: int,
                     detail_type: str) -> dict[str, Any]:
    detail: dict[str, Any] = {"orderId": order.order_id, "version": version,
                              "contractId": f"wc_{order.order_id[4:]}", "sku": order.warranty_sku}
    if detail_type == "WarrantyContractCreated":
        detail.update(provider="SafeGuard Insurance", durationMonths=24,
                      premium=round(order.total * 0.08, 2), currency=order.currency)
    else:
        detail["reason"] = "order_cancelled_or_returned"
    return detail


def _detail_notified(order: Order, rng: random.Random, version: str, t_ms: int,
                     _t: str) -> dict[str, Any]:
    return {"orderId": order.order_id, "version": version, "customerId": order.customer_id,
            "channel": "email", "template": "order-delivered"}


def _detail_priority(order: Order, rng: random.Random, version: str, t_ms: int,
                     _t: str) -> dict[str, Any]:
    return {"orderId": order.order_id, "version": version, "priority": "express",
            "previousPriority": "standard", "changedBy": "customer-service"}


def _detail_generic(order: Order, rng: random.Random, version: str, t_ms: int,
                    detail_type: str) -> dict[str, Any]:
    return {"orderId": order.order_id, "version": version, "occurredAt": iso_millis(t_ms),
            "reference": f"{detail_type[:3].lower()}_{_hex(rng, 12)}"}


_DETAIL_BUILDERS = {
    "OrderCreated": _detail_created,
    "OrderPlaced": _detail_placed,
    "OrderPaid": _detail_paid,
    "InvoiceIssued": _detail_invoice,
    "OrderShipped": _detail_shipped,
    "OrderDelivered": _detail_delivered,
    "OrderCancelled": _detail_cancelled,
    "OrderReturned": _detail_returned,
    "RefundIssued": _detail_refund,
    "WarrantyContractCreated": _detail_warranty,
    "WarrantyContractCancelled": _detail_warranty,
    "CustomerNotified": _detail_notified,
    "OrderPriorityChanged": _detail_priority,
}


def _pad_to(envelope: dict[str, Any], target: int, order: Order) -> None:
    """Grow a fat event towards `target` bytes: the order's items, then free-text notes."""
    size = len(orjson.dumps(envelope))
    detail = envelope["detail"]
    if size < target and "items" not in detail:
        detail["items"] = order.items()
        size = len(orjson.dumps(envelope))
    missing = target - size - len(',"notes":""')
    if missing > 0:
        detail["notes"] = _NOTES[:missing]


# --------------------------------------------------------------------------- log rendering


class Invocation(NamedTuple):
    """One attempt of a consumer at one delivered event, as the logs will show it."""

    consumer: Consumer
    request_id: str
    stream: str
    start_ms: int
    duration_ms: float
    outcome: Literal["ok", "error", "timeout"]
    error: ErrorSpec | None
    cold_start: bool
    init_ms: float
    memory_used_mb: int
    event_id: str
    detail_type: str
    order_id: str
    messages: tuple[str, ...]  # Powertools INFO messages of the handler
    trace_id: str | None


def _powertools_line(inv: Invocation, message: str, t_ms: int, line: int,
                     region: str, account: str) -> str:
    consumer = inv.consumer
    record = {
        "level": "INFO",
        "location": f"handler:{line}",
        "message": message,
        "timestamp": _powertools_time(t_ms),
        "service": consumer.service,
        "cold_start": inv.cold_start,
        "function_name": consumer.name,
        "function_memory_size": consumer.memory_mb,
        "function_arn": f"arn:aws:lambda:{region}:{account}:function:{consumer.name}",
        "function_request_id": inv.request_id,
        "correlation_id": inv.event_id,
        "detail_type": inv.detail_type,
        "order_id": inv.order_id,
    }
    if inv.trace_id:
        record["xray_trace_id"] = inv.trace_id
    return orjson.dumps(record).decode() + "\n"


def _traceback_text(frames: Sequence[ErrorFrame]) -> list[str]:
    """Traceback lines as Lambda's Python runtime logs them (indent as no-break spaces)."""
    lines: list[str] = []
    for path, lineno, func, code in frames:
        lines.append(f"\u00a0\u00a0File \"{path}\", line {lineno}, in {func}")
        lines.append(f"\u00a0\u00a0\u00a0\u00a0{code}")
    return lines


def _stack_trace_json(frames: Sequence[ErrorFrame]) -> list[str]:
    return [f"  File \"{path}\", line {lineno}, in {func}\n    {code}\n"
            for path, lineno, func, code in frames]


def _app_records(inv: Invocation, region: str, account: str) -> list[tuple[int, str]]:
    """The handler's own lines: Powertools INFO lines, then a logged error if it fails."""
    records = []
    t = inv.start_ms + 1
    for index, message in enumerate(inv.messages):
        records.append((t, _powertools_line(inv, message, t, 14 + 9 * index, region, account)))
        t += 1 + int(inv.duration_ms * 0.3)
    error = inv.error
    if inv.outcome == "error" and error is not None and error.logged:
        if inv.consumer.log_format == "text":
            line = f"[ERROR]\t{iso_millis(t)}\t{inv.request_id}\t{error.logged}\n"
        else:
            line = orjson.dumps({"timestamp": iso_millis(t), "level": "ERROR",
                                 "message": error.logged, "logger": "root",
                                 "requestId": inv.request_id}).decode()
        records.append((t, line))
    return records


def end_ms(inv: Invocation) -> int:
    """When the invocation ends (ms)."""
    return inv.start_ms + int(math.ceil(inv.duration_ms))


def render_text(inv: Invocation, region: str, account: str) -> list[tuple[int, str]]:
    """An invocation's records in Lambda's TEXT log format: (timestamp ms, message)."""
    rid, end = inv.request_id, end_ms(inv)
    records: list[tuple[int, str]] = []
    if inv.cold_start:
        records.append((inv.start_ms - int(inv.init_ms) - 1,
                        f"INIT_START Runtime Version: python:3.11.v38\tRuntime Version ARN: "
                        f"arn:aws:lambda:{region}::runtime:{_RUNTIME_HASH}\n"))
    records.append((inv.start_ms, f"START RequestId: {rid} Version: $LATEST\n"))
    records.extend(_app_records(inv, region, account))
    if inv.outcome == "error" and inv.error is not None:
        error = inv.error
        lines = [f"[ERROR] {error.error_type}: {error.message}",
                 "Traceback (most recent call last):"]
        records.append((end, "\n".join(lines + _traceback_text(error.frames))))
    if inv.outcome == "timeout":
        records.append((end, f"{iso_millis(end)} {rid} Task timed out after "
                             f"{inv.consumer.timeout_s:.2f} seconds\n"))
    records.append((end, f"END RequestId: {rid}\n"))
    records.append((end, _report_text(inv)))
    return records


_RUNTIME_HASH = "0f3b2a9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a"


def _report_text(inv: Invocation) -> str:
    parts = [f"REPORT RequestId: {inv.request_id}", f"Duration: {inv.duration_ms:.2f} ms",
             f"Billed Duration: {_billed(inv)} ms", f"Memory Size: {inv.consumer.memory_mb} MB",
             f"Max Memory Used: {inv.memory_used_mb} MB"]
    if inv.cold_start:
        parts.append(f"Init Duration: {inv.init_ms:.2f} ms")
    if inv.outcome == "timeout":
        parts.append("Status: timeout")
    return "\t".join(parts) + "\t\n"


def _billed(inv: Invocation) -> int:
    """Billed per millisecond, never past the function's timeout."""
    return min(int(math.ceil(inv.duration_ms)), inv.consumer.timeout_s * 1000)


_STATUS = {"ok": "success", "error": "error", "timeout": "timeout"}


def render_json(inv: Invocation, region: str, account: str) -> list[tuple[int, str]]:
    """An invocation's records in Lambda's JSON log format: (timestamp ms, message)."""
    rid, end, consumer = inv.request_id, end_ms(inv), inv.consumer
    records: list[tuple[int, str]] = []
    if inv.cold_start:
        t0 = inv.start_ms - int(inv.init_ms) - 1
        records.append((t0, _platform(t0, "platform.initStart", {
            "initializationType": "on-demand", "phase": "init",
            "runtimeVersion": "python:3.11.v38",
            "runtimeVersionArn": f"arn:aws:lambda:{region}::runtime:{_RUNTIME_HASH}",
            "functionName": consumer.name, "functionVersion": "$LATEST"})))
    records.append((inv.start_ms, _platform(inv.start_ms, "platform.start",
                                            {"requestId": rid, "version": "$LATEST"})))
    records.extend(_app_records(inv, region, account))
    if inv.outcome == "error" and inv.error is not None:
        error = inv.error
        records.append((end, orjson.dumps({
            "timestamp": _plain_time(end), "level": "ERROR", "errorMessage": error.message,
            "errorType": error.error_type, "requestId": rid,
            "stackTrace": _stack_trace_json(error.frames)}).decode()))
    records.append((end, _platform(end, "platform.runtimeDone", _runtime_done(inv))))
    records.append((end, _platform(end, "platform.report", _report_json(inv))))
    return records


def _platform(t_ms: int, kind: str, record: dict[str, Any]) -> str:
    return orjson.dumps({"time": iso_millis(t_ms), "type": kind, "record": record}).decode()


def _runtime_done(inv: Invocation) -> dict[str, Any]:
    record: dict[str, Any] = {"requestId": inv.request_id, "status": _STATUS[inv.outcome]}
    if inv.outcome == "timeout":
        record["errorType"] = "Sandbox.Timedout"
    record["metrics"] = {"durationMs": round(inv.duration_ms, 3), "producedBytes": 0}
    record["spans"] = [{"name": "responseLatency", "start": iso_millis(end_ms(inv)),
                        "durationMs": 0.12},
                       {"name": "responseDuration", "start": iso_millis(end_ms(inv)),
                        "durationMs": 0.03}]
    return record


def _report_json(inv: Invocation) -> dict[str, Any]:
    metrics: dict[str, Any] = {"durationMs": round(inv.duration_ms, 3),
                               "billedDurationMs": _billed(inv),
                               "memorySizeMB": inv.consumer.memory_mb,
                               "maxMemoryUsedMB": inv.memory_used_mb}
    if inv.cold_start:
        metrics["initDurationMs"] = round(inv.init_ms, 3)
    record: dict[str, Any] = {"requestId": inv.request_id, "metrics": metrics,
                              "status": _STATUS[inv.outcome]}
    if inv.outcome == "timeout":
        record["errorType"] = "Sandbox.Timedout"
    return record


# --------------------------------------------------------------------------- the simulation

_STEP, _LOG = 1, 0


class _Environment:
    """A Lambda execution environment: one log stream, one invocation at a time, recycled."""

    __slots__ = ("stream", "expires_ms", "busy")

    def __init__(self, stream: str, expires_ms: int) -> None:
        self.stream = stream
        self.expires_ms = expires_ms
        self.busy: list[tuple[int, int]] = []  # reserved (start, end) intervals, ms

    def free(self, start_ms: int, end_ms: int) -> bool:
        """Whether an invocation over [start, end] fits: warm, and not overlapping another."""
        self.busy = [(s, e) for s, e in self.busy if e >= start_ms - _HOUR]
        return self.expires_ms > start_ms and all(e < start_ms or s > end_ms
                                                  for s, e in self.busy)


class _Simulation:
    """The running simulation: one random stream, one time-ordered heap of pending items."""

    def __init__(self, config: CompanyConfig, seed: int, start: datetime,
                 n_orders: int | None, n_events: int | None) -> None:
        self.config = config
        self.rng = random.Random(seed)
        self.start_ms = _to_ms(start)
        self.n_orders = n_orders
        self.n_events = n_events
        self.extras = _extras(config)
        self.subs = self._subscribers()
        self.heap: list[tuple[int, int, int, Any]] = []
        self.seq = 0
        span_ms = self._expected_span_ms(seed)
        low, high = config.version_bump_window
        self.bump_ms = self.start_ms + int(span_ms * low)
        self.fix_ms = self.start_ms + int(span_ms * high)
        self.fleet = LambdaFleet(config, self.rng, self.fix_ms)

    def _subscribers(self) -> dict[str, list[Consumer]]:
        by_name = {c.name: c for c in CONSUMERS}
        result: dict[str, list[Consumer]] = {}
        for name, types in subscriptions(self.config.plants).items():
            for detail_type in types:
                result.setdefault(detail_type, []).append(by_name[name])
        return result

    def _expected_span_ms(self, seed: int) -> float:
        """How long order arrivals will last, to place the version bump inside the run."""
        orders: float | None = self.n_orders
        if orders is None:
            sample = random.Random(seed ^ 0x5EED)
            plans = [len(_plan_order(sample, Order(sample, i, 0, self.config.plants),
                                     self.extras)) for i in range(400)]
            orders = max(1.0, (self.n_events or 0) / (sum(plans) / len(plans)))
        return orders / self.config.orders_per_minute * _MIN

    def _push(self, t_ms: int, kind: int, payload: Any) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t_ms, self.seq, kind, payload))

    def run(self) -> Iterator[SimItem]:
        """Interleave order arrivals with the heap of pending steps and log records."""
        next_arrival, created, planned = self.start_ms, 0, 0
        heap = self.heap
        while True:
            if self._more_orders(created, planned) and (not heap or next_arrival <= heap[0][0]):
                plan = self._create_order(next_arrival, created, planned)
                created, planned = created + 1, planned + len(plan)
                next_arrival += max(1, int(self.rng.expovariate(
                    self.config.orders_per_minute / _MIN)))
                continue
            if not heap:
                return
            t_ms, _, kind, payload = heapq.heappop(heap)
            if kind == _LOG:
                yield SimItem("log", t_ms, payload)
            else:
                yield self._emit_step(t_ms, payload)

    def _more_orders(self, created: int, planned: int) -> bool:
        if self.n_orders is not None:
            return created < self.n_orders
        return planned < (self.n_events or 0)

    def _create_order(self, t_ms: int, seq: int, planned: int) -> Plan:
        order = Order(self.rng, seq, t_ms, self.config.plants)
        plan = _plan_order(self.rng, order, self.extras)
        if self.n_events is not None:
            plan = plan[: self.n_events - planned]
        order.set_plan(plan)
        self._push(t_ms + plan[0][0], _STEP, (order, 0))
        return plan

    def _emit_step(self, t_ms: int, payload: tuple[Order, int]) -> SimItem:
        order, index = payload
        _, detail_type = order.step(index)  # type: ignore[misc]
        envelope = self._envelope(detail_type, order, t_ms)
        self._deliver(envelope, order, t_ms)
        following = order.step(index + 1)
        if following is not None:
            self._push(following[0], _STEP, (order, index + 1))
        return SimItem("event", t_ms, envelope)

    def _envelope(self, detail_type: str, order: Order, t_ms: int) -> dict[str, Any]:
        version = "1"
        plants = self.config.plants
        if detail_type == "OrderPaid" and plants.version_bump and t_ms >= self.bump_ms:
            version = "2"
        envelope = {
            "version": "0",
            "id": _uuid4(self.rng),
            "detail-type": detail_type,
            "source": _source_of(detail_type),
            "account": self.config.account,
            "time": iso_seconds(t_ms),
            "region": self.config.region,
            "resources": [],
            "detail": _detail(detail_type, order, self.rng, version, t_ms),
        }
        if self.config.event_bytes:
            target = int(self.config.event_bytes * self.rng.uniform(0.8, 1.2))
            _pad_to(envelope, target, order)
        return envelope

    # ---- deliveries and invocations

    def _deliver(self, envelope: dict[str, Any], order: Order, t_ms: int) -> None:
        """EventBridge invokes every subscribed consumer asynchronously, sometimes twice."""
        for consumer in self.subs.get(envelope["detail-type"], ()):
            for record in self.fleet.deliver(consumer, envelope, t_ms):
                self._push(record["timestamp"], _LOG, record)


class LambdaFleet:
    """The company's Lambda consumers as running code: one call per attempt at an event.

    Shared by the offline simulation and the live demo (`collectors/demo.py`, where consumers
    poll SQS): decides an attempt's outcome (the planted version-bump failure until `fix_ms`,
    random errors and timeouts), keeps each function's execution environments (log streams,
    cold starts), and renders the attempt as CloudWatch Logs records.
    """

    def __init__(self, config: CompanyConfig, rng: random.Random, fix_ms: int,
                 observer: Callable[[Invocation], None] | None = None) -> None:
        self.config = config
        self.rng = rng
        self.fix_ms = fix_ms
        self.observer = observer  # told of every invocation (the demo tallies what it planted)
        self.environments: dict[str, list[_Environment]] = {c.name: [] for c in CONSUMERS}

    def deliver(self, consumer: Consumer, envelope: dict[str, Any],
                t_ms: int) -> list[dict[str, Any]]:
        """EventBridge's asynchronous invocation of one consumer for an event put at `t_ms`,
        sometimes delivered twice: every attempt's log records."""
        first = t_ms + self.rng.randint(15, 900)
        records = self.attempts(consumer, envelope, first, duplicate=False)
        if self.rng.random() < self.config.duplicate_rate:
            second = first + self.rng.randint(200, 20_000)
            records += self.attempts(consumer, envelope, second, duplicate=True)
        return records

    def attempts(self, consumer: Consumer, envelope: dict[str, Any], start_ms: int, *,
                 duplicate: bool) -> list[dict[str, Any]]:
        """One delivery: the first invocation and Lambda's up to two asynchronous retries."""
        request_id = self.new_request_id()
        failed_before = False
        records: list[dict[str, Any]] = []
        for attempt in range(3):
            inv = self.attempt(consumer, envelope, request_id, start_ms,
                               failed_before=failed_before, duplicate=duplicate)
            records += self.records(inv)
            if inv.outcome == "ok":
                break
            failed_before = True
            start_ms = end_ms(inv) + self.rng.randint(60_000, 90_000) * (attempt + 1)
        return records

    def new_request_id(self) -> str:
        """A Lambda request id for a new delivery (its retries reuse it)."""
        return _uuid4(self.rng)

    def attempt(self, consumer: Consumer, envelope: dict[str, Any], request_id: str,
                start_ms: int, *, failed_before: bool, duplicate: bool) -> Invocation:
        """The consumer's invocation on a delivered envelope, starting at `start_ms`."""
        outcome, error = self._outcome(consumer, envelope, start_ms, failed_before)
        inv = self._invocation(consumer, envelope, request_id, start_ms, outcome, error,
                               duplicate)
        if self.observer is not None:
            self.observer(inv)
        return inv

    def _outcome(self, consumer: Consumer, envelope: dict[str, Any], start_ms: int,
                 failed_before: bool) -> tuple[Literal["ok", "error", "timeout"], ErrorSpec | None]:
        if (consumer.name == VERSION_BUMP_VICTIM and envelope["detail"].get("version") == "2"
                and envelope["detail-type"] == "OrderPaid" and start_ms < self.fix_ms):
            return "error", VERSION_BUMP_ERROR
        config = self.config
        first_try_failure = config.error_rate + config.timeout_rate
        fail = config.retry_failure_rate if failed_before else first_try_failure
        draw = self.rng.random()
        if draw >= fail:
            return "ok", None
        if draw < fail * config.timeout_rate / max(config.error_rate + config.timeout_rate, 1e-9):
            return "timeout", None
        return "error", self.rng.choice(consumer.errors)

    def _invocation(self, consumer: Consumer, envelope: dict[str, Any], request_id: str,
                    start_ms: int, outcome: Literal["ok", "error", "timeout"],
                    error: ErrorSpec | None, duplicate: bool) -> Invocation:
        rng = self.rng
        duration = consumer.base_duration_ms * rng.lognormvariate(0.0, 0.45)
        if outcome == "timeout":
            duration = consumer.timeout_s * 1000 + rng.uniform(0.5, 4.0)
        elif outcome == "error":
            duration *= 0.6
        stream, cold = self._environment(consumer, start_ms, start_ms + int(duration) + 2)
        init_ms = rng.uniform(180.0, 900.0) if cold else 0.0
        start_ms += int(init_ms) + 1 if cold else 0  # the invoke waits for the init phase
        return Invocation(
            consumer, request_id, stream, start_ms, round(duration, 2), outcome, error, cold,
            init_ms,
            consumer.base_memory_mb + rng.randrange(0, 24) + (12 if cold else 0),
            envelope["id"], envelope["detail-type"], envelope["detail"]["orderId"],
            self._messages(consumer, envelope["detail-type"], outcome, duplicate),
            f"1-{start_ms // 1000:08x}-{_hex(rng, 24)}" if consumer.tracing else None,
        )

    def _messages(self, consumer: Consumer, detail_type: str, outcome: str,
                  duplicate: bool) -> tuple[str, ...]:
        first = f"Processing {detail_type}"
        if outcome != "ok":
            return (first,)
        idempotent = not (consumer.name == NON_IDEMPOTENT_CONSUMER
                          and self.config.plants.duplicate_processing)
        if duplicate and idempotent:
            # Powertools Idempotency answers a repeat with the stored result without running
            # the handler: no handler line, so the invocation logs no correlation id.
            return ()
        if self.rng.random() < self.config.extra_log_line_rate:
            return (first, consumer.action)
        return (first,)

    def _environment(self, consumer: Consumer, start_ms: int, end_ms: int) -> tuple[str, bool]:
        """A free warm environment's log stream, or a new environment's (a cold start).

        Like Lambda, an environment runs one invocation at a time, so the records of two
        invocations never interleave in one log stream.
        """
        pool = self.environments[consumer.name]
        first = self.rng.randrange(len(pool)) if pool else 0
        for env in pool[first:] + pool[:first]:
            if env.free(start_ms, end_ms):
                env.busy.append((start_ms, end_ms))
                return env.stream, False
        pool[:] = [env for env in pool if env.expires_ms > start_ms]
        stream = f"{_stream_date(start_ms)}/[$LATEST]{_hex(self.rng, 32)}"
        env = _Environment(stream, start_ms + self.rng.randint(_HOUR, 6 * _HOUR))
        env.busy.append((start_ms - 1_000, end_ms + 1_000))  # its init phase, then the invoke
        pool.append(env)
        return stream, True

    def records(self, inv: Invocation) -> list[dict[str, Any]]:
        """The invocation's CloudWatch Logs records, as `filter_log_events` returns them."""
        config = self.config
        render = render_text if inv.consumer.log_format == "text" else render_json
        group = f"/aws/lambda/{inv.consumer.name}"
        lag = self.rng.randint(150, 2500)
        return [{
            "logGroupName": group,
            "logStreamName": inv.stream,
            "timestamp": t_ms,
            "message": message,
            "ingestionTime": t_ms + lag,
            "eventId": f"{self.rng.getrandbits(184):056d}",
        } for t_ms, message in render(inv, config.region, config.account)]


# --------------------------------------------------------------------------- files


@dataclass
class WriteSummary:
    """What `write_ndjson` wrote."""

    events_path: Path
    logs_path: Path
    events: int = 0
    logs: int = 0
    seconds: float = 0.0


def write_ndjson(items: Iterable[SimItem], out_dir: str | Path, *, gzip: bool = False,
                 events_name: str = "events.ndjson",
                 logs_name: str = "logs.ndjson") -> WriteSummary:
    """Stream items into an events file and a logs file, one JSON object per line.

    With `gzip`, both names get a `.gz` suffix and are compressed (level 1, for speed).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gzip else ""
    summary = WriteSummary(out / (events_name + suffix), out / (logs_name + suffix))
    began = time.perf_counter()
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    with _open_out(summary.events_path, gzip) as events, _open_out(summary.logs_path, gzip) as logs:
        for item in items:
            if item.kind == "event":
                events.write(dumps(item.record, option=newline))
                summary.events += 1
            else:
                logs.write(dumps(item.record, option=newline))
                summary.logs += 1
    summary.seconds = time.perf_counter() - began
    return summary


def _open_out(path: Path, gzip: bool) -> Any:
    if gzip:
        return gzip_module.open(path, "wb", compresslevel=1)
    return open(path, "wb", buffering=1 << 20)


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m eventscope.simulator",
        description="Write a simulated company's EventBridge events and Lambda consumer logs "
                    "as NDJSON (events.ndjson, logs.ndjson).")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--events", type=int, help="exactly this many bus events")
    size.add_argument("--orders", type=int, help="this many complete order lifecycles")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gzip", action="store_true", help="write .ndjson.gz files")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--types", type=int, help=f"distinct detail-types, 12..{MAX_DETAIL_TYPES}")
    parser.add_argument("--event-bytes", type=int, help="target envelope size in bytes")
    parser.add_argument("--start", default=DEFAULT_START.isoformat(),
                        help="ISO time of the first order (default %(default)s)")
    parser.add_argument("--no-plants", action="store_true",
                        help="a company without the seed article's problems")
    parser.add_argument("--events-name", default="events.ndjson")
    parser.add_argument("--logs-name", default="logs.ndjson")
    return parser


def config_from_args(args: argparse.Namespace) -> CompanyConfig:
    """The company config the command-line options describe."""
    config = PRESETS[args.preset]()
    if args.types is not None:
        config = replace(config, detail_types=args.types)
    if args.event_bytes is not None:
        config = replace(config, event_bytes=args.event_bytes)
    if args.no_plants:
        config = replace(config, plants=Plants.none())
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """Generate the files and print one summary line to stderr."""
    args = _parser().parse_args(argv)
    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    items = simulate(config_from_args(args), seed=args.seed, start=start,
                     n_orders=args.orders, n_events=args.events)
    summary = write_ndjson(items, args.out, gzip=args.gzip, events_name=args.events_name,
                           logs_name=args.logs_name)
    rate = (summary.events + summary.logs) / max(summary.seconds, 1e-9)
    print(f"wrote {summary.events} events to {summary.events_path} and {summary.logs} log "
          f"records to {summary.logs_path} in {summary.seconds:.1f} s ({rate:,.0f} records/s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
