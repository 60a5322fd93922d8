"""Invocations reconstructed from real-shaped Lambda CloudWatch Logs records (tests/data/lambda)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventscope.lambda_logs import (
    InvocationAssembler,
    assemble_invocations,
    consumer_name,
    parse_log_record,
)
from eventscope.limits import ERROR_MESSAGE_CAP
from eventscope.records import Invocation

LAMBDA_DATA = Path(__file__).parent / "data" / "lambda"

GROUP = "/aws/lambda/warranty-handler"
STREAM = "2024/05/01/[$LATEST]0f3c1d2e4b5a69788796a5b4c3d2e1f0"
RID = "5b0d3c1e-7a42-4f0e-9d3b-2c8e6f1a9b70"
RID2 = "c7e1a9d4-2b6f-4e83-a5c0-9f1d3b7e6a25"
T = 1714560000000  # 2024-05-01T10:40:00.000Z


def load(name: str) -> list[dict[str, Any]]:
    """The records of one fixture file, as filter_log_events returns them."""
    with open(LAMBDA_DATA / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def assemble(name: str) -> list[Invocation]:
    return list(assemble_invocations(load(name)))


def by_request(invocations: list[Invocation], request_id: str) -> Invocation:
    (found,) = [inv for inv in invocations if inv.request_id == request_id]
    return found


def record(message: Any, ts: int, stream: str = STREAM, group: str = GROUP) -> dict[str, Any]:
    """One filter_log_events record for the inline tests."""
    return {
        "logGroupName": group,
        "logStreamName": stream,
        "timestamp": ts,
        "message": message,
        "ingestionTime": ts + 900,
        "eventId": str(38247284375028329239582345098234509823450982345098234509 + ts),
    }


def start(rid: str, ts: int) -> dict[str, Any]:
    return record(f"START RequestId: {rid} Version: $LATEST\n", ts)


def end(rid: str, ts: int) -> dict[str, Any]:
    return record(f"END RequestId: {rid}\n", ts)


def report(rid: str, ts: int, extra: str = "") -> dict[str, Any]:
    return record(
        f"REPORT RequestId: {rid}\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
        f"Memory Size: 256 MB\tMax Memory Used: 70 MB\t{extra}\n",
        ts,
    )


def error_line(rid: str, ts: int, message: str) -> dict[str, Any]:
    return record(f"[ERROR]\t2024-05-01T10:40:00.000Z\t{rid}\t{message}\n", ts)


# --- consumer_name ---------------------------------------------------------------------------


def test_consumer_name_is_the_function_name_of_a_lambda_group() -> None:
    assert consumer_name("/aws/lambda/warranty-handler") == "warranty-handler"


def test_consumer_name_leaves_other_groups_unchanged() -> None:
    assert consumer_name("/ecs/warranty-worker") == "/ecs/warranty-worker"
    assert consumer_name("/aws/lambda/") == "/aws/lambda/"


# --- text format -----------------------------------------------------------------------------


def test_text_format_invocations_complete_with_report_metrics() -> None:
    """START/END/REPORT make one complete invocation; INIT_START, XRAY and print() are noise."""
    first = Invocation(
        request_id="34ba5ace-f086-4ff7-8698-e95fb8d058ea",
        consumer="invoice-mailer",
        log_group="/aws/lambda/invoice-mailer",
        log_stream="2024/05/01/[$LATEST]97da1b729ffe1d996861072c1e753a93",
        start_ms=1714557600412,
        outcome="ok",
        end_ms=1714557600600,
        duration_ms=187.44,
        max_memory_mb=71,
        complete=True,
        log_format="text",
    )
    second = replace(
        first,
        request_id="8c21aecb-5116-49d7-8ace-b86f95b686c5",
        start_ms=1714557605020,
        end_ms=1714557605043,
        duration_ms=23.1,
        max_memory_mb=72,
    )
    assert assemble("text_ok.ndjson") == [first, second]


def test_powertools_correlation_id_becomes_the_event_id() -> None:
    invocations = assemble("text_powertools.ndjson")
    assert [inv.event_id for inv in invocations] == [
        "f33b82db-7842-4e8c-b814-9a02fe866910",
        "f1adedbc-5c91-4e93-be10-8dd1d5424a1f",
        "2ffd0cec-c14c-45c8-bf78-0056b2cde10d",
    ]


def test_powertools_warning_leaves_the_invocation_ok() -> None:
    invocation = by_request(
        assemble("text_powertools.ndjson"), "e920bd18-2908-4675-b4e5-97a5c50314f2"
    )
    assert (invocation.outcome, invocation.error_type, invocation.error_message) == (
        "ok",
        None,
        None,
    )


def test_powertools_logged_exception_is_recorded_but_leaves_the_invocation_ok() -> None:
    """A handled error logged with `logger.exception`: no failure marker, REPORT has no Status."""
    invocation = by_request(
        assemble("text_powertools.ndjson"), "ba39b4d7-f781-4349-ad16-7aa80159f55c"
    )
    assert invocation == Invocation(
        request_id="ba39b4d7-f781-4349-ad16-7aa80159f55c",
        consumer="warranty-handler",
        log_group="/aws/lambda/warranty-handler",
        log_stream="2024/05/01/[$LATEST]fb70d9dd38f7053d3f406ac50f947e6d",
        start_ms=1714557674001,
        outcome="ok",
        event_id="2ffd0cec-c14c-45c8-bf78-0056b2cde10d",
        end_ms=1714557674021,
        duration_ms=19.02,
        error_type="ValidationError",
        error_message="Could not register warranty",
        max_memory_mb=84,
        complete=True,
        log_format="text",
    )


def test_text_unhandled_exception_without_request_id_fails_the_open_invocation() -> None:
    assert assemble("text_unhandled_exception.ndjson") == [
        Invocation(
            request_id="b91312f4-48dc-4120-b4ae-8a8d3ff54d72",
            consumer="warranty-handler",
            log_group="/aws/lambda/warranty-handler",
            log_stream="2024/05/01/[$LATEST]6905c512dbe98143997d9504af0735e0",
            start_ms=1714557720000,
            outcome="error",
            event_id="b9d0ea57-f5aa-44b8-ba79-d7c34ced1367",
            end_ms=1714557720011,
            duration_ms=10.64,
            error_type="KeyError",
            error_message="'warrantyTerm'",
            max_memory_mb=79,
            complete=True,
            log_format="text",
        )
    ]


def test_text_timeout_line_and_report_status_timeout_give_a_timeout() -> None:
    assert assemble("text_timeout.ndjson") == [
        Invocation(
            request_id="784536be-3165-4e1e-a234-c725bbe147e5",
            consumer="stock-reserver",
            log_group="/aws/lambda/stock-reserver",
            log_stream="2024/05/01/[$LATEST]8bab59cc4a314145c28f11473285ed5d",
            start_ms=1714557780000,
            outcome="timeout",
            event_id="f539a3d3-535c-4976-8117-3186d15bfff8",
            end_ms=1714557783012,
            duration_ms=3000.0,
            error_type="Sandbox.Timedout",
            error_message="Task timed out after 3.00 seconds",
            max_memory_mb=58,
            complete=True,
            log_format="text",
        )
    ]


def test_report_status_timeout_alone_gives_a_timeout() -> None:
    records = [start(RID, T), end(RID, T + 3001), report(RID, T + 3001, "Status: timeout\t")]
    (invocation,) = assemble_invocations(records)
    assert (invocation.outcome, invocation.error_type, invocation.error_message) == (
        "timeout",
        "Sandbox.Timedout",
        None,
    )


def test_text_runtime_exit_gives_an_error_with_lambdas_error_type() -> None:
    assert assemble("text_runtime_exit.ndjson") == [
        Invocation(
            request_id="9f64d70e-b03f-40fc-92fd-ea51c8d38c9d",
            consumer="pdf-renderer",
            log_group="/aws/lambda/pdf-renderer",
            log_stream="2024/05/01/[$LATEST]f82e464fa078057c54c621ae90363682",
            start_ms=1714557840000,
            outcome="error",
            event_id=None,
            end_ms=1714557848842,
            duration_ms=8841.2,
            error_type="Runtime.ExitError",
            error_message="Runtime exited with error: signal: killed",
            max_memory_mb=512,
            complete=True,
            log_format="text",
        )
    ]


def test_python_error_log_line_is_recorded_without_failing_the_invocation() -> None:
    records = [
        start(RID, T),
        error_line(RID, T + 5, "Provider said 503"),
        end(RID, T + 9),
        report(RID, T + 9),
    ]
    (invocation,) = assemble_invocations(records)
    assert (invocation.outcome, invocation.error_type, invocation.error_message) == (
        "ok",
        None,
        "Provider said 503",
    )


def test_python_logged_exception_takes_its_type_from_the_traceback() -> None:
    message = (
        "Could not cancel warranty\nTraceback (most recent call last):\n"
        '  File "/var/task/app.py", line 10, in handler\n    cancel(detail)\n'
        "botocore.exceptions.ClientError: An error occurred (ThrottlingException)"
    )
    records = [start(RID, T), error_line(RID, T + 5, message), end(RID, T + 9), report(RID, T + 9)]
    (invocation,) = assemble_invocations(records)
    assert (invocation.error_type, invocation.error_message) == ("ClientError", message)


def test_node_text_invoke_error_line_gives_type_and_message() -> None:
    message = (
        f"2024-05-01T10:40:00.005Z\t{RID}\tERROR\tInvoke Error \t"
        '{"errorType":"TypeError","errorMessage":"Cannot read properties of undefined",'
        '"stack":[]}\n'
    )
    records = [start(RID, T), record(message, T + 5), end(RID, T + 9), report(RID, T + 9)]
    (invocation,) = assemble_invocations(records)
    assert (invocation.outcome, invocation.error_type, invocation.error_message) == (
        "error",
        "TypeError",
        "Cannot read properties of undefined",
    )


# --- JSON format -----------------------------------------------------------------------------


def test_json_format_platform_events_give_a_complete_ok_invocation() -> None:
    assert assemble("json_ok.ndjson") == [
        Invocation(
            request_id="bf65419c-c3e2-4d75-a110-bc5ddda5dfe8",
            consumer="order-projector",
            log_group="/aws/lambda/order-projector",
            log_stream="2024/05/01/[$LATEST]164208c45a187b208d2d2f465fe32315",
            start_ms=1714557900403,
            outcome="ok",
            event_id=None,
            end_ms=1714557900435,
            duration_ms=31.905,
            error_type=None,
            error_message=None,
            max_memory_mb=88,
            complete=True,
            log_format="json",
        )
    ]


def test_json_unhandled_python_error_after_lambda_warning_gives_its_type_and_message() -> None:
    invocation = by_request(assemble("json_error.ndjson"), "c2d12090-dc98-414c-be7a-1a29cc7bae89")
    assert invocation == Invocation(
        request_id="c2d12090-dc98-414c-be7a-1a29cc7bae89",
        consumer="order-projector",
        log_group="/aws/lambda/order-projector",
        log_stream="2024/05/01/[$LATEST]ca8eb9756f48e1d7841e7ba88a6b8efb",
        start_ms=1714557960000,
        outcome="error",
        event_id=None,
        end_ms=1714557960020,
        duration_ms=18.93,
        error_type="UnicodeDecodeError",
        error_message="'utf-8' codec can't decode byte 0x80 in position 7: invalid start byte",
        max_memory_mb=90,
        complete=True,
        log_format="json",
    )


def test_json_error_whose_message_is_an_object_gives_its_type_and_message() -> None:
    invocation = by_request(assemble("json_error.ndjson"), "8fcb4a4c-6841-468a-a7d9-eb041b39fa3b")
    assert (
        invocation.consumer,
        invocation.outcome,
        invocation.error_type,
        invocation.error_message,
    ) == (
        "notification-sender",
        "error",
        "ConditionalCheckFailedException",
        "The conditional request failed",
    )


def test_json_platform_status_error_gives_the_platform_error_type() -> None:
    invocation = by_request(assemble("json_error.ndjson"), "71f6fc7c-92eb-49aa-9a57-fbe671aaf87e")
    assert (
        invocation.outcome,
        invocation.error_type,
        invocation.error_message,
        invocation.duration_ms,
        invocation.max_memory_mb,
    ) == ("error", "Runtime.ExitError", None, 2871.33, 512)


def test_json_platform_status_timeout_gives_a_timeout() -> None:
    assert assemble("json_timeout.ndjson") == [
        Invocation(
            request_id="3c8a90eb-0b42-4ee3-9f78-e71171fb14d6",
            consumer="order-projector",
            log_group="/aws/lambda/order-projector",
            log_stream="2024/05/01/[$LATEST]b9ede86e43d0305b4ee5ca909919430c",
            start_ms=1714558020000,
            outcome="timeout",
            event_id=None,
            end_ms=1714558023002,
            duration_ms=3000.0,
            error_type="Sandbox.Timedout",
            error_message=None,
            max_memory_mb=97,
            complete=True,
            log_format="json",
        )
    ]


def test_json_format_powertools_error_under_platform_success_stays_ok() -> None:
    """platform.report says success: the Powertools ERROR line is a logged error only."""
    logged = Invocation(
        request_id="3d479ff2-f73c-443a-bf70-71f2110949d9",
        consumer="loyalty-accrual",
        log_group="/aws/lambda/loyalty-accrual",
        log_stream="2024/05/01/[$LATEST]02182b5c167df9caf0e9edf4a099905c",
        start_ms=1714558080390,
        outcome="ok",
        event_id="cee73850-464b-4ad3-94f1-35049054f738",
        end_ms=1714558080458,
        duration_ms=66.98,
        error_type="ClientError",
        error_message="Failed to accrue points",
        max_memory_mb=101,
        complete=True,
        log_format="json",
    )
    succeeded = replace(
        logged,
        request_id="e31839fe-9812-43b5-af20-b2122a5badcd",
        start_ms=1714558087100,
        outcome="ok",
        event_id="e8898bae-6ce7-4532-a157-42e70b2d8270",
        end_ms=1714558087132,
        duration_ms=31.07,
        error_type=None,
        error_message=None,
    )
    assert assemble("json_powertools.ndjson") == [logged, succeeded]


# --- interleaving, retries, partial logs -----------------------------------------------------


def test_interleaved_streams_of_one_function_are_kept_apart() -> None:
    invocations = assemble("interleaved.ndjson")
    warranty = [inv for inv in invocations if inv.consumer == "warranty-handler"]
    assert [(inv.request_id, inv.log_stream, inv.event_id, inv.outcome) for inv in warranty] == [
        (
            "e49b4a3c-becf-411d-a163-dae88d1d2157",
            "2024/05/01/[$LATEST]fdbaf2b94a61506f0287a19befb46e15",
            "22299a0c-0802-4479-836b-f4ea3b18e003",
            "ok",
        ),
        (
            "1a1e739d-233c-48c8-8119-9980ebff8abb",
            "2024/05/01/[$LATEST]60e2fe02506f428f1158670c2af59068",
            "4d8aa83e-2ed8-4b14-86c7-311666176f00",
            "ok",  # a Powertools ERROR line, no failure marker, REPORT without Status
        ),
        (
            "926a3f29-3f36-44a8-88a0-ae652e5f21d5",
            "2024/05/01/[$LATEST]fdbaf2b94a61506f0287a19befb46e15",
            "c4234a38-0279-4358-bf4b-b564f6ee0cbd",
            "ok",
        ),
    ]


def test_interleaved_functions_each_get_their_own_consumer() -> None:
    invocations = assemble("interleaved.ndjson")
    assert [(inv.consumer, inv.request_id, inv.end_ms) for inv in invocations] == [
        ("warranty-handler", "e49b4a3c-becf-411d-a163-dae88d1d2157", 1714558140032),
        ("warranty-handler", "1a1e739d-233c-48c8-8119-9980ebff8abb", 1714558140034),
        ("invoice-mailer", "8dcbda29-fea6-43c0-b319-b42931aa8216", 1714558140042),
        ("warranty-handler", "926a3f29-3f36-44a8-88a0-ae652e5f21d5", 1714558140061),
    ]


def test_retries_of_one_event_are_separate_invocations_keyed_by_start() -> None:
    rid = "4ce69c0f-706f-4fd9-86a6-c03b62c60105"
    event = "159ae979-3d99-4184-a936-1dc99f1a1f87"
    invocations = assemble("retries.ndjson")
    assert [
        (inv.request_id, inv.event_id, inv.start_ms, inv.outcome, inv.error_type, inv.error_message)
        for inv in invocations
    ] == [
        (
            rid,
            event,
            1714558200000,
            "error",
            "ConnectionError",
            "Warranty provider unreachable: https://api.warranty-provider.example/v2/claims",
        ),
        (
            rid,
            event,
            1714558261482,
            "timeout",
            "Sandbox.Timedout",
            "Task timed out after 3.00 seconds",
        ),
        (rid, event, 1714558385599, "ok", None, None),
    ]


def test_logs_starting_mid_invocation_open_it_at_the_first_request_id_line() -> None:
    invocations = assemble("mid_invocation.ndjson")
    assert by_request(invocations, "0df647d0-904d-4345-901e-4311e165cee4") == Invocation(
        request_id="0df647d0-904d-4345-901e-4311e165cee4",
        consumer="stock-reserver",
        log_group="/aws/lambda/stock-reserver",
        log_stream="2024/05/01/[$LATEST]dbae1aff607900737256bdb96f00d3c1",
        start_ms=1714558500000,
        outcome="ok",
        event_id="49835008-611d-4454-979b-2e484b719089",
        end_ms=1714558500014,
        duration_ms=412.05,
        max_memory_mb=61,
        complete=True,
        log_format="text",
    )


def test_json_logs_starting_at_runtime_done_still_give_an_invocation() -> None:
    invocation = by_request(
        assemble("mid_invocation.ndjson"), "cae8b862-393c-4d31-9176-7abb8d2b9b0f"
    )
    assert (invocation.start_ms, invocation.end_ms, invocation.outcome, invocation.complete) == (
        1714558500020,
        1714558500021,
        "ok",
        True,
    )


def test_open_invocations_are_flushed_incomplete_at_end_of_input() -> None:
    stream = "2024/05/01/[$LATEST]433164acfdec38a2fd10a0d32b23ac4c"
    assert assemble("incomplete.ndjson")[0] == Invocation(
        request_id="fca03082-c04e-42da-9ac4-e354d649da84",
        consumer="warranty-handler",
        log_group="/aws/lambda/warranty-handler",
        log_stream=stream,
        start_ms=1714558560000,
        outcome="ok",
        event_id="3ecdd5eb-7e49-4c4f-8605-4db54e304e4d",
        complete=False,
        log_format="text",
    )


def test_end_without_report_leaves_the_invocation_incomplete_with_end_time() -> None:
    invocation = assemble("incomplete.ndjson")[1]
    assert (
        invocation.request_id,
        invocation.end_ms,
        invocation.complete,
        invocation.duration_ms,
    ) == (
        "310bc5f3-35c3-4808-9fbb-75c96981f14c",
        1714558560031,
        False,
        None,
    )


def test_feed_returns_the_invocation_when_its_report_arrives() -> None:
    assembler = InvocationAssembler()
    returned = [
        assembler.feed(rec) for rec in (start(RID, T), end(RID, T + 12), report(RID, T + 12))
    ]
    assert [len(batch) for batch in returned] == [0, 0, 1]
    assert returned[2][0].complete is True
    assert assembler.flush() == []


def test_a_new_request_id_in_a_stream_closes_the_open_invocation_incomplete() -> None:
    assembler = InvocationAssembler()
    assembler.feed(start(RID, T))
    displaced = assembler.feed(start(RID2, T + 60_000))
    assert [(inv.request_id, inv.complete) for inv in displaced] == [(RID, False)]
    assert [inv.request_id for inv in assembler.flush()] == [RID2]


def test_a_straggler_line_of_a_completed_invocation_is_ignored() -> None:
    records = [start(RID, T), end(RID, T + 9), report(RID, T + 9), error_line(RID, T + 10, "late")]
    assert [(inv.request_id, inv.outcome) for inv in assemble_invocations(records)] == [(RID, "ok")]


def test_a_repeated_start_record_is_ignored() -> None:
    records = [start(RID, T), start(RID, T), end(RID, T + 9), report(RID, T + 9)]
    assert [(inv.request_id, inv.complete) for inv in assemble_invocations(records)] == [
        (RID, True)
    ]


def test_lines_without_request_id_after_end_are_not_attached() -> None:
    records = [
        start(RID, T),
        end(RID, T + 9),
        record("[ERROR] KeyError: 'x'", T + 9),
        report(RID, T + 9),
    ]
    (invocation,) = assemble_invocations(records)
    assert invocation.outcome == "ok"


# --- error details ---------------------------------------------------------------------------


def test_the_first_error_message_is_kept() -> None:
    records = [
        start(RID, T),
        error_line(RID, T + 1, "first"),
        error_line(RID, T + 2, "second"),
        end(RID, T + 3),
        report(RID, T + 3),
    ]
    (invocation,) = assemble_invocations(records)
    assert invocation.error_message == "first"


def test_the_error_message_is_capped() -> None:
    records = [
        start(RID, T),
        error_line(RID, T + 1, "x" * 50_000),
        end(RID, T + 3),
        report(RID, T + 3),
    ]
    (invocation,) = assemble_invocations(records)
    assert invocation.error_message == "x" * ERROR_MESSAGE_CAP


def test_a_timeout_after_an_error_is_a_timeout_keeping_the_first_message() -> None:
    records = [
        start(RID, T),
        error_line(RID, T + 1, "Inventory API returned 503"),
        record(f"2024-05-01T10:40:03.001Z {RID} Task timed out after 3.00 seconds\n\n", T + 3001),
        end(RID, T + 3001),
        report(RID, T + 3001, "Status: timeout\t"),
    ]
    (invocation,) = assemble_invocations(records)
    assert (invocation.outcome, invocation.error_type, invocation.error_message) == (
        "timeout",
        "Sandbox.Timedout",
        "Inventory API returned 503",
    )


# --- garbage ---------------------------------------------------------------------------------


def test_garbage_and_print_lines_leave_only_the_real_invocation() -> None:
    assert [(inv.request_id, inv.outcome, inv.complete) for inv in assemble("garbage.ndjson")] == [
        ("bba6d109-bc3f-45e9-98f2-ebbcea09055e", "ok", True)
    ]


def leading_garbage() -> list[dict[str, Any]]:
    """The records of garbage.ndjson before its one real START line."""
    records = load("garbage.ndjson")
    first_start = next(
        i for i, rec in enumerate(records) if str(rec["message"]).startswith("START RequestId: b")
    )
    return records[:first_start]


@pytest.mark.parametrize("garbage", leading_garbage(), ids=lambda rec: repr(rec["message"])[:40])
def test_a_garbage_message_opens_no_invocation(garbage: dict[str, Any]) -> None:
    assembler = InvocationAssembler()
    assert assembler.feed(garbage) == []
    assert assembler.flush() == []


# --- more runtimes and features: Node.js, Java, SnapStart, extensions ------------------------


def outcomes_of(name: str) -> list[tuple[str, str, str | None, str | None, bool, str]]:
    return [(inv.consumer, inv.outcome, inv.error_type, inv.error_message, inv.complete,
             inv.log_format) for inv in assemble(name)]


def test_node_json_console_error_under_success_is_logged_and_a_handler_error_fails() -> None:
    """console.error with status success stays ok; the runtime's error record and
    platform.report status error give the error with its type."""
    assert outcomes_of("node_json.ndjson") == [
        ("shipment-notifier", "ok", None, "Carrier webhook answered 502, queued for retry",
         True, "json"),
        ("shipment-notifier", "error", "TypeError",
         "Cannot read properties of undefined (reading 'carrier')", True, "json"),
    ]


def test_node_text_console_error_is_logged_and_invoke_error_fails() -> None:
    """Node's text lines: an ERROR line of the code is recorded; "Invoke Error" (the runtime's
    own record of a thrown error) fails the invocation though REPORT has no Status."""
    assert outcomes_of("node_text.ndjson") == [
        ("shipment-notifier", "ok", None, "Carrier webhook answered 502, queued for retry",
         True, "text"),
        ("shipment-notifier", "error", "TypeError",
         "Cannot read properties of undefined (reading 'carrier')", True, "text"),
    ]


def test_java_log4j_error_is_logged_and_report_status_error_decides() -> None:
    """log4j2 lines in Lambda's pattern give request id and logged errors; REPORT's
    ``Status: error`` with ``Error Type: Runtime.OutOfMemory`` fails the other invocation."""
    assert outcomes_of("java_text.ndjson") == [
        ("invoice-archiver", "ok", None, "S3 PutObject throttled, retrying once", True, "text"),
        ("invoice-archiver", "error", "Runtime.OutOfMemory", None, True, "text"),
    ]


def test_java_json_lines_name_their_request_with_aws_request_id() -> None:
    (invocation,) = assemble("java_json.ndjson")
    assert (invocation.request_id, invocation.outcome, invocation.error_message) == (
        "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f", "ok", "S3 PutObject throttled, retrying once")


@pytest.mark.parametrize("name", ["snapstart_text.ndjson", "snapstart_json.ndjson"])
def test_snapstart_restore_records_open_nothing(name: str) -> None:
    """RESTORE_START/RESTORE_REPORT and platform.restore* precede one ok invocation."""
    invocations = assemble(name)
    assert [(inv.consumer, inv.outcome, inv.complete) for inv in invocations] == [
        ("price-quoter", "ok", True)]
    assert invocations[0].start_ms == min(r["timestamp"] for r in load(name)
                                          if "start" in r["message"].lower()
                                          and "RequestId" in r["message"]
                                          or "platform.start" in r["message"])


def test_extension_lines_are_not_invocations() -> None:
    """EXTENSION/TELEMETRY lines and an extension's own output leave one ok invocation."""
    assert outcomes_of("extensions_text.ndjson") == [
        ("loyalty-accrual", "ok", None, None, True, "text")]


def test_platform_extension_with_an_error_type_does_not_fail_an_invocation() -> None:
    """platform.extension and telemetrySubscription carry no request id; the invocation's
    own runtimeDone/report status (timeout) decides."""
    assert outcomes_of("extensions_json.ndjson") == [
        ("loyalty-accrual", "timeout", "Sandbox.Timedout", None, True, "json")]


def test_a_timeout_line_after_report_re_emits_the_invocation_as_a_timeout() -> None:
    """Older runtimes: the same invocation (same key) comes out again, now a timeout."""
    first, again, other = assemble("late_timeout.ndjson")
    assert (first.request_id, first.start_ms, first.outcome) == (
        again.request_id, again.start_ms, "ok")
    assert (again.outcome, again.error_type, again.error_message, again.complete) == (
        "timeout", "Sandbox.Timedout", "Task timed out after 3.00 seconds", True)
    assert other.outcome == "ok"


def test_a_late_timeout_does_not_override_a_platform_status() -> None:
    """A status given by the platform decides: a stray timeout line after it changes nothing."""
    records = [start(RID, T), end(RID, T + 9), report(RID, T + 9, "Status: error\t"),
               record(f"2024-05-01T10:40:00.010Z {RID} Task timed out after 3.00 seconds\n",
                      T + 10)]
    assert [inv.outcome for inv in assemble_invocations(records)] == ["error"]


def test_functions_sharing_a_log_group_are_named_from_their_streams() -> None:
    assert [inv.consumer for inv in assemble("shared_group.ndjson")] == [
        "warranty-handler", "invoice-mailer"]


def test_consumer_name_prefers_the_function_named_in_the_stream() -> None:
    stream = "2024/05/02/invoice-mailer[$LATEST]0123abcd"
    assert consumer_name("/shop/order-consumers", stream) == "invoice-mailer"
    assert consumer_name("/aws/lambda/other", stream) == "invoice-mailer"
    assert consumer_name("/aws/lambda/a", "2024/05/02/[$LATEST]0123abcd") == "a"
    assert consumer_name("/shop/order-consumers", "no-brackets") == "/shop/order-consumers"


def test_report_status_success_overrides_a_failure_marker() -> None:
    """A status on REPORT decides even against the runtime's own failure lines."""
    records = [start(RID, T), record("[ERROR] KeyError: 'x'\nTraceback (most recent call last):",
                                     T + 1),
               end(RID, T + 9), report(RID, T + 9, "Status: success\t")]
    (invocation,) = assemble_invocations(records)
    assert (invocation.outcome, invocation.error_type) == ("ok", "KeyError")


# --- properties: any input -------------------------------------------------------------------

FIXTURE_RECORDS = [rec for path in sorted(LAMBDA_DATA.glob("*.ndjson")) for rec in load(path.name)]
_messages = st.one_of(
    st.sampled_from([rec["message"] for rec in FIXTURE_RECORDS]),
    st.text(max_size=200),
    st.binary(max_size=200),
    st.sampled_from(["START RequestId: ", "REPORT RequestId: x\tStatus: ", "[ERROR] ", "{",
                     '{"type":"platform.report","record":{"requestId":1}}',
                     ('{"type":"platform.report","record":{"requestId":"r","status":7,'
                      '"metrics":{"durationMs":"x"}}}'), "LAMBDA_WARNING: Unhandled exception\r",
                     "2024-05-01 10:40:00 ", "1\t2\tERROR\tInvoke Error \t{", "RequestId: "]),
    st.none(), st.integers(), st.lists(st.integers(), max_size=2),
)
_any_record = st.fixed_dictionaries(
    {"message": _messages},
    optional={"logGroupName": st.sampled_from([GROUP, "/shop/shared", "", "/aws/lambda/"]),
              "logStreamName": st.sampled_from([STREAM, "2024/05/01/fn[$LATEST]ab", "", "[", "/["]),
              "timestamp": st.one_of(st.integers(min_value=-2**63, max_value=2**63),
                                     st.text(max_size=5), st.none(), st.floats())})


@settings(max_examples=150, deadline=None)
@given(st.lists(_any_record, max_size=40))
def test_any_records_never_raise_in_the_parser_or_the_assembler(records: list[dict[str, Any]]
                                                                ) -> None:
    """Random messages (fixture lines, text, bytes, fragments, non-strings) never raise."""
    for rec in records:
        parse_log_record(rec)
    invocations = list(assemble_invocations(records))
    assert all(inv.outcome in ("ok", "error", "timeout") for inv in invocations)


@settings(max_examples=100, deadline=None)
@given(st.permutations(range(len(FIXTURE_RECORDS))), st.integers(min_value=0, max_value=40))
def test_interleavings_of_real_records_never_raise_and_keep_one_row_per_key(
        order: list[int], cut: int) -> None:
    """Real records in any order (and a prefix cut off) assemble without raising; every
    invocation key comes out complete at most once, except a late timeout's re-emission."""
    records = [FIXTURE_RECORDS[i] for i in order][cut:]
    invocations = list(assemble_invocations(records))
    complete: dict[tuple[str, int], list[str]] = {}
    for inv in invocations:
        assert inv.consumer and inv.request_id
        if inv.complete:
            complete.setdefault((inv.request_id, inv.start_ms), []).append(inv.outcome)
    for outcomes in complete.values():
        assert len(outcomes) == 1 or (len(outcomes) == 2 and outcomes[1] == "timeout")
