"""The Lambda entry points: the tap queue's SQS batches, and pushed CloudWatch Logs.

`handle` owns turning the mapping's batch into the tap collector's messages, storing them with the
same code as `collect tap`, and answering `batchItemFailures` (the mapping must enable
ReportBatchItemFailures): nothing when the batch committed, every message when the store
failed, so SQS delivers them again. The store comes from $EVENTSCOPE_DB (PostgreSQL in
practice) and the sample rate from $EVENTSCOPE_SAMPLE; PII is redacted as in every collector
(`eventscope.collectors.pii`: $EVENTSCOPE_PII_KEY, $EVENTSCOPE_PII). The rate is recorded in the
store with each batch, as `collect tap` does, so invocations collected from logs are sampled by it.

`handle_logs` takes a subscription filter's `awslogs` payload (`eventscope logs subscribe`) and
stores its invocations with `eventscope.collectors.logs_push.store_push`: the same parsing,
sampling and redaction as `collect logs`. A store error is raised, failing the invocation so
Lambda retries the asynchronous delivery; a payload that cannot be decoded is quarantined and
acknowledged.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from eventscope.collectors.pii import redaction_filter, settings_from_env
from eventscope.collectors.tap_collector import (TapSettings, classify_messages,
                                                 version_rules_from_env)
from eventscope.errors import StoreError
from eventscope.store import Store, open_store

log = logging.getLogger(__name__)
_STORE: Store | None = None


def handle(event: dict[str, Any], context: Any, store: Store | None = None,
           sample_rate: float | None = None) -> dict[str, Any]:
    """Store one SQS batch; the message ids the store could not take, for SQS to redeliver."""
    records = event.get("Records", [])
    if not records:
        return {"batchItemFailures": []}
    store = store or _default_store()
    rate = sample_rate if sample_rate is not None else float(
        os.environ.get("EVENTSCOPE_SAMPLE", "1"))
    queue = records[0].get("eventSourceARN", "sqs").rsplit(":", 1)[-1]
    settings = TapSettings(queue_url=queue, sample_rate=rate, origin=f"sqs:{queue}",
                           version_rules=version_rules_from_env())
    messages = [{"MessageId": r["messageId"], "Body": r.get("body", "")} for r in records]
    batch = classify_messages(messages, settings)
    try:
        redactor = redaction_filter(settings_from_env(store))
        events, extra = redactor(batch.events)
        batch.quarantined = redactor.quarantined(batch.quarantined)
        store.write_batch(events, (), batch.quarantined, None, extra, sample_rate=rate)
    except StoreError as exc:
        log.warning("store write failed, returning %d message(s) to SQS: %s", len(records), exc)
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
    return {"batchItemFailures": []}


def _default_store() -> Store:
    global _STORE
    if _STORE is None:
        _STORE = open_store(os.environ.get("EVENTSCOPE_DB"))
    return _STORE


def handle_logs(event: dict[str, Any], context: Any, store: Store | None = None
                ) -> dict[str, int]:
    """Store one pushed CloudWatch Logs payload; its counters. Store errors propagate."""
    from eventscope.collectors.logs_push import store_push

    store = store or _default_store()
    counters = store_push(event, store, settings_from_env(store))
    log.info("awslogs payload: %s", counters.as_dict())
    return counters.as_dict()
