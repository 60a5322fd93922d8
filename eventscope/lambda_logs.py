"""Reconstruction of consumer invocations from Lambda's CloudWatch Logs records.

This module owns the understanding of what Lambda and its runtimes write to a function's log
group, in both of Lambda's log formats, and turns a time-ordered stream of
`filter_log_events` records (plus their group name) into `eventscope.records.Invocation`s.
It is pure: no I/O, no boto3, no clock.

Lines understood (anything else, including garbage, is ignored without raising):

* text format: ``START``/``END``/``REPORT RequestId: ...`` (``REPORT`` maybe with ``Status:``
  and ``Error Type: ...``), ``<time> <rid> Task timed out after N seconds``,
  ``RequestId: <rid> Error: Runtime exited ...``, Python ``[LEVEL]\\t<time>\\t<rid>\\t<msg>``
  lines, an unhandled exception ``[ERROR] Type: msg\\nTraceback ...`` (one record, no request
  id), ``LAMBDA_WARNING: Unhandled exception ...``, Node ``<time>\\t<rid>\\tLEVEL\\t<msg>``
  (``Invoke Error``, ``Unhandled Promise Rejection`` and ``Uncaught Exception`` being the
  runtime's own) and Java log4j2 ``<date> <time> <rid> LEVEL <logger> - <msg>``;
  ``INIT_*``, ``RESTORE_*`` (SnapStart), ``EXTENSION`` and ``TELEMETRY`` lines say nothing;
* JSON format: ``platform.start``, ``platform.runtimeDone`` and ``platform.report`` (with
  ``status`` and ``errorType``; the init, restore, extension and subscription events carry no
  request id and say nothing), and the runtime's JSON app lines (``level``/``log_level``,
  ``requestId`` or Java's ``AWSRequestId``, ``errorType``, ``errorMessage``, or a ``message``
  object holding them: the runtime's record of an unhandled error);
* Powertools Logger lines in either format (``function_request_id``, ``correlation_id``,
  ``exception_name``).

Assembly rules:

* One invocation is open per (log group, log stream). ``START``/``platform.start`` opens one; a
  line bearing a request id that differs from the open one (or with nothing open) also opens
  one, because logs can start mid-invocation. Lines without a request id belong to the open
  invocation until its ``END``. A line bearing the request id of the invocation just closed in
  that stream (a straggler after its ``REPORT``) is ignored, except a timeout line (below).
* ``REPORT``/``platform.report`` completes the invocation: it is returned by `feed`, with
  ``complete=True`` and ``end_ms`` = the report's timestamp. An open invocation displaced by a
  new one in its stream (its ``REPORT`` never came) is returned at that point with
  ``complete=False``; `flush` returns the rest with ``complete=False``; for those ``end_ms`` is
  the ``END``/``platform.runtimeDone`` timestamp if one was seen, else None.
* ``outcome``: a status decides when there is one: ``platform.report``'s (or, before it,
  ``platform.runtimeDone``'s) ``status`` (``success``, ``error``/``failure``, ``timeout``) or a
  ``REPORT`` line's ``Status:``. Without one (text ``REPORT`` lines of successful, and of
  older, invocations carry none), Lambda's and the runtime's own signs decide: ``"timeout"``
  after a timeout line, ``"error"`` after an unhandled exception, a runtime exit, Node's
  ``Invoke Error`` or the runtime's error record; else ``"ok"``. Lines the function's code
  logs at ERROR/CRITICAL/FATAL (``logger.exception``, ``console.error``) are logged errors:
  their type and message are kept, but they never fail an invocation.
* A timeout line after its invocation's ``REPORT`` (older runtimes) turns an invocation that
  had no status into a timeout: `feed` returns it again, same key, complete, for the store to
  update. Read without its invocation (a later run or file), it comes out as a partial
  timeout with no end, which the store matches to the invocation it follows
  (`eventscope.store`).
* ``consumer`` is the function named in the stream when the group is shared (Lambda names a
  custom group's streams ``YYYY/MM/DD/<function>[<version>]<id>``), else the ``<name>`` of
  ``/aws/lambda/<name>``, else the group name (`consumer_name`).
* ``error_type`` is ``"Sandbox.Timedout"`` (Lambda's own name for an invocation timeout) for
  timeouts, unless the platform named another; for errors the failure's type (the unhandled
  exception class, Lambda's ``Error Type`` such as ``Runtime.ExitError``, JSON ``errorType``),
  else a logged one; for ok invocations the first logged type (``KeyError``, Powertools
  ``exception_name``), if any. A traceback's ``botocore.exceptions.ClientError`` is shortened
  to ``ClientError`` like ``type.__name__``. ``error_message`` is the first error message
  seen: an ERROR line's text (for a logged exception, what was logged, not the exception's
  own text), an unhandled exception's message, or the timeout line's
  ``Task timed out after 3.00 seconds``; capped at `eventscope.limits.ERROR_MESSAGE_CAP`.
* ``event_id`` is the first Powertools ``correlation_id`` seen (the EventBridge event id when
  the handler uses ``correlation_paths.EVENT_BRIDGE``); None when no line carries one.
* ``log_format`` is ``"json"`` once a platform event or a runtime JSON line is seen, else
  ``"text"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from eventscope.limits import ERROR_MESSAGE_CAP
from eventscope.records import Invocation, Outcome

LAMBDA_GROUP_PREFIX = "/aws/lambda/"
TIMEOUT_ERROR_TYPE = "Sandbox.Timedout"

LogFormat = Literal["text", "json"]
Kind = Literal["start", "end", "report", "log"]
StreamKey = tuple[str, str]

_ERROR_LEVELS = frozenset({"ERROR", "CRITICAL", "FATAL"})
_TEXT_LEVELS = frozenset({"[ERROR]", "[CRITICAL]", "[WARNING]", "[INFO]", "[DEBUG]"})
_NODE_LEVELS = frozenset({"ERROR", "FATAL", "WARN", "INFO", "DEBUG", "TRACE"})
_STATUSES: dict[str, Outcome] = {"success": "ok", "error": "error", "failure": "error",
                                  "timeout": "timeout"}
_NODE_FAILURES = ("Invoke Error", "Unhandled Promise Rejection", "Uncaught Exception")
_CONSUMER_CACHE = 100_000  # (group, stream) names remembered; cleared when over

_REPORT_DURATION = re.compile(r"RequestId: \S+\s+Duration: ([0-9.]+) ms")
_REPORT_MEMORY = re.compile(r"Max Memory Used: ([0-9]+) MB")
_REPORT_STATUS = re.compile(r"Status: (\w+)")
_REPORT_ERROR_TYPE = re.compile(r"Error Type: (\S+)")
_TIMEOUT_LINE = re.compile(r"\S+\s+(\S+)\s+(Task timed out after [0-9.]+ seconds)")
_RUNTIME_ERROR = re.compile(r"RequestId: (\S+)\s+Error: ([^\n\r]*)(?:[\n\r]+(\S+))?")
_WORD = re.compile(r"\S+")
_JAVA_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+)? +([0-9a-fA-F-]{8,}) +"
    r"(ERROR|FATAL|WARN|INFO|DEBUG|TRACE) +(?:\S+ +- +)?(.*)", re.DOTALL)
_EXCEPTION_TYPE = re.compile(r"[A-Za-z_][\w.]*")
_TRACEBACK = "Traceback (most recent call last):"


@dataclass(slots=True)
class _Line:
    """What one log message says about an invocation."""

    kind: Kind = "log"
    request_id: str | None = None
    log_format: LogFormat | None = None
    event_id: str | None = None
    error: bool = False  # logged at ERROR level (or a failure marker): type/message recorded
    failed: bool = False  # the runtime's own sign that the invocation failed
    timed_out: bool = False  # Lambda's "Task timed out" line
    status: Outcome | None = None  # a platform status or REPORT ``Status:``: decides
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float | None = None
    max_memory_mb: int | None = None
    ends: bool = False  # END or platform.runtimeDone: rid-less lines no longer belong

    def __reduce__(self) -> tuple[type[_Line], tuple[Any, ...]]:
        # Positional: parsed lines cross process boundaries in bulk (`eventscope.ingest`), and
        # the generic dataclass pickling costs several times more.
        return _Line, (self.kind, self.request_id, self.log_format, self.event_id, self.error,
                       self.failed, self.timed_out, self.status, self.error_type,
                       self.error_message, self.duration_ms, self.max_memory_mb, self.ends)


ParsedRecord = tuple[StreamKey, int, _Line]  # (log group, stream), timestamp, what it says


@dataclass(slots=True)
class _Draft:
    """An invocation being assembled from the records of one log stream."""

    request_id: str
    log_group: str
    log_stream: str
    start_ms: int
    log_format: LogFormat | None = None
    event_id: str | None = None
    end_ms: int | None = None
    ended: bool = False
    failed: bool = False
    timed_out: bool = False
    status: Outcome | None = None
    failure_type: str | None = None  # from a failure marker or a failed status
    logged_type: str | None = None  # from an error logged by the function's code
    timeout_type: str | None = None
    error_message: str | None = None
    duration_ms: float | None = None
    max_memory_mb: int | None = None


# --- public API -----------------------------------------------------------------------------


def consumer_name(log_group: str, log_stream: str = "") -> str:
    """The function that wrote to a log stream.

    In a custom log group, which several functions may share, Lambda names each stream
    ``YYYY/MM/DD/<function>[<version>]<environment id>``: the name there wins. In a group of
    its own the stream is ``YYYY/MM/DD/[<version>]<id>`` and the function is ``<name>`` of
    ``/aws/lambda/<name>``; any other group name is returned unchanged.
    """
    bracket = log_stream.find("[")
    if bracket > 0:
        name = log_stream[log_stream.rfind("/", 0, bracket) + 1 : bracket]
        if name:
            return name
    if log_group.startswith(LAMBDA_GROUP_PREFIX) and len(log_group) > len(LAMBDA_GROUP_PREFIX):
        return log_group[len(LAMBDA_GROUP_PREFIX) :]
    return log_group


class InvocationAssembler:
    """Reconstructs invocations from log records, one open invocation per log stream."""

    def __init__(self) -> None:
        self._open: dict[StreamKey, _Draft] = {}
        self._closed: dict[StreamKey, _Draft] = {}  # the invocation last completed per stream
        self._consumers: dict[StreamKey, str] = {}

    def feed(self, record: Mapping[str, Any]) -> list[Invocation]:
        """Take one record; return the invocations it completed (usually none or one)."""
        parsed = parse_log_record(record)
        return [] if parsed is None else self._apply(*parsed)

    def feed_parsed(self, parsed: ParsedRecord) -> list[Invocation]:
        """`feed` for a record already through `parse_log_record` (maybe in another process)."""
        return self._apply(*parsed)

    def flush(self) -> list[Invocation]:
        """End of input: the invocations still open, with ``complete=False``."""
        drafts = list(self._open.values())
        self._open.clear()
        return [self._build(draft, complete=False) for draft in drafts]

    # --- assembly ---------------------------------------------------------------------------

    def _apply(self, key: StreamKey, timestamp: int, line: _Line) -> list[Invocation]:
        done: list[Invocation] = []
        draft = self._open.get(key)
        if _opens_invocation(draft, line):
            if self._is_repeat(key, draft, line, timestamp):
                return self._late(key, line)
            if draft is not None:
                done.append(self._build(draft, complete=False))  # its REPORT never came
            draft = self._begin(key, line.request_id or "", timestamp)
        elif draft is None or (line.request_id is None and draft.ended):
            return done
        _absorb(draft, line, timestamp)
        if line.kind == "report":
            del self._open[key]
            self._closed[key] = draft
            done.append(self._build(draft, complete=True))
        return done

    def _late(self, key: StreamKey, line: _Line) -> list[Invocation]:
        """A straggler after its invocation's REPORT: ignored, except a timeout line (older
        runtimes write it after REPORT), which turns an invocation without a platform status
        into a timeout: it is returned again, complete, for the store to update."""
        closed = self._closed.get(key)
        if not line.timed_out or closed is None or closed.status is not None or closed.timed_out:
            return []
        _absorb_failure(closed, line)
        return [self._build(closed, complete=True)]

    def _is_repeat(self, key: StreamKey, draft: _Draft | None, line: _Line, timestamp: int) -> bool:
        """A START record seen twice, or a straggler of the invocation just completed here."""
        if line.kind == "start":
            return (
                draft is not None
                and draft.request_id == line.request_id
                and draft.start_ms == timestamp
            )
        closed = self._closed.get(key)
        return closed is not None and line.request_id == closed.request_id

    def _begin(self, key: StreamKey, request_id: str, timestamp: int) -> _Draft:
        draft = _Draft(request_id, key[0], key[1], timestamp)
        self._open[key] = draft
        return draft

    def _build(self, draft: _Draft, *, complete: bool) -> Invocation:
        outcome = _outcome(draft)
        where = (draft.log_group, draft.log_stream)
        consumer = self._consumers.get(where)
        if consumer is None:
            if len(self._consumers) > _CONSUMER_CACHE:
                self._consumers.clear()
            consumer = self._consumers[where] = consumer_name(*where)
        return Invocation(
            request_id=draft.request_id,
            consumer=consumer,
            log_group=draft.log_group,
            log_stream=draft.log_stream,
            start_ms=draft.start_ms,
            outcome=outcome,
            event_id=draft.event_id,
            end_ms=draft.end_ms,
            duration_ms=draft.duration_ms,
            error_type=_error_type(draft, outcome),
            error_message=draft.error_message,
            max_memory_mb=draft.max_memory_mb,
            complete=complete,
            log_format=draft.log_format or "text",
        )


def parse_log_record(record: Mapping[str, Any]) -> ParsedRecord | None:
    """The stateless half of `InvocationAssembler.feed`: where a record was logged, when, and
    what its message says; None when it says nothing an invocation is made of."""
    line = _parse_message(record.get("message"))
    if line is None:
        return None
    timestamp = _timestamp(record.get("timestamp"))
    if timestamp is None:
        return None
    return (record.get("logGroupName", ""), record.get("logStreamName", "")), timestamp, line


def parse_checked_record(record: Mapping[str, Any]) -> ParsedRecord | None:
    """`parse_log_record` for a record whose four fields are known to be there with their
    types (`eventscope.ingest_lines.checked_log_record`): read once each, no defaults."""
    line = _parse_message(record["message"])
    if line is None:
        return None
    return (record["logGroupName"], record["logStreamName"]), record["timestamp"], line


def assemble_invocations(records: Iterable[Mapping[str, Any]]) -> Iterator[Invocation]:
    """Every invocation in `records`: those completed in order, then the ones left open."""
    assembler = InvocationAssembler()
    for record in records:
        yield from assembler.feed(record)
    yield from assembler.flush()


# --- folding a line into a draft ------------------------------------------------------------


def _absorb(draft: _Draft, line: _Line, timestamp: int) -> None:
    """Fold what `line` says into `draft`."""
    if line.log_format is not None and draft.log_format != "json":
        draft.log_format = line.log_format
    if line.event_id is not None and draft.event_id is None:
        draft.event_id = line.event_id
    if line.ends or line.kind == "report":
        draft.ended = True
        draft.end_ms = timestamp
    if line.duration_ms is not None:
        draft.duration_ms = line.duration_ms
    if line.max_memory_mb is not None:
        draft.max_memory_mb = line.max_memory_mb
    if line.status is not None:
        draft.status = line.status  # a later status (REPORT after runtimeDone) wins
    if line.error or line.failed or line.timed_out or line.status not in (None, "ok"):
        _absorb_failure(draft, line)


def _absorb_failure(draft: _Draft, line: _Line) -> None:
    kind = line.error_type
    if line.timed_out or line.status == "timeout":
        draft.timed_out = draft.timed_out or line.timed_out
        if kind is not None and draft.timeout_type is None:
            draft.timeout_type = kind
    elif line.failed or line.status == "error":
        draft.failed = draft.failed or line.failed
        if kind is not None and draft.failure_type is None:
            draft.failure_type = kind
    elif kind is not None and draft.logged_type is None:
        draft.logged_type = kind
    if line.error_message and draft.error_message is None:
        draft.error_message = line.error_message[:ERROR_MESSAGE_CAP]


def _outcome(draft: _Draft) -> Outcome:
    """The platform's status when it gave one; else what Lambda's own lines say."""
    if draft.status is not None:
        return draft.status
    if draft.timed_out:
        return "timeout"
    return "error" if draft.failed else "ok"


def _error_type(draft: _Draft, outcome: Outcome) -> str | None:
    if outcome == "timeout":
        return draft.timeout_type or TIMEOUT_ERROR_TYPE
    if outcome == "error":
        return draft.failure_type or draft.logged_type
    return draft.logged_type or draft.failure_type  # what was logged, though it did not fail


def _opens_invocation(draft: _Draft | None, line: _Line) -> bool:
    """START always does; so does a request id other than the open invocation's."""
    if line.kind == "start":
        return True
    rid = line.request_id
    return rid is not None and (draft is None or draft.request_id != rid)


def _timestamp(value: Any) -> int | None:
    if type(value) is int:
        return value
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return None


# --- parsing one message --------------------------------------------------------------------


def _parse_message(message: Any) -> _Line | None:
    """What a raw log message says about an invocation; None when it says nothing we use."""
    if not isinstance(message, str):
        if not isinstance(message, (bytes, bytearray)):
            return None
        message = bytes(message).decode("utf-8", "replace")
    if not message:
        return None
    first = message[0]
    if first == "{":
        return _parse_json(message)
    if first == "[":
        return _parse_bracketed(message)
    if first == "S" and message.startswith("START RequestId: "):
        return _structural("start", _token(message, 17))
    if first == "E" and message.startswith("END RequestId: "):
        return _structural("end", _token(message, 15))
    if first == "R":
        return _parse_request_line(message)
    if first.isdigit():
        return _parse_timestamped(message)
    if first == "L" and message.startswith("LAMBDA_WARNING: Unhandled exception"):
        return _parse_lambda_warning(message)
    return None


def _structural(kind: Kind, request_id: str | None) -> _Line | None:
    """A text START or END line; without its request id it says nothing."""
    if request_id is None:
        return None
    return _Line(kind=kind, request_id=request_id, log_format="text", ends=kind == "end")


def _token(message: str, start: int) -> str | None:
    """The whitespace-delimited word at `start`, or None when there is none."""
    found = _WORD.match(message, start)
    return found.group() if found is not None else None


def _parse_request_line(message: str) -> _Line | None:
    """``REPORT RequestId: ...`` or the runtime's ``RequestId: <rid> Error: ...``."""
    if message.startswith("REPORT RequestId: "):
        return _parse_report(message)
    if message.startswith("RequestId: "):
        return _parse_runtime_error(message)
    return None


def _parse_report(message: str) -> _Line | None:
    rid = _token(message, 18)
    if rid is None:
        return None
    line = _Line(kind="report", request_id=rid, log_format="text")
    if (found := _REPORT_DURATION.search(message)) is not None:
        line.duration_ms = float(found.group(1))
    if (found := _REPORT_MEMORY.search(message)) is not None:
        line.max_memory_mb = int(found.group(1))
    if (found := _REPORT_STATUS.search(message)) is not None:
        _apply_status(line, found.group(1))
        if line.status != "ok" and (kind := _REPORT_ERROR_TYPE.search(message)) is not None:
            line.error_type = kind.group(1)
    return line


def _parse_runtime_error(message: str) -> _Line | None:
    """``RequestId: <rid> Error: Runtime exited with error: ...\\nRuntime.ExitError``."""
    found = _RUNTIME_ERROR.match(message)
    if found is None:
        return None
    return _Line(
        request_id=found.group(1),
        log_format="text",
        error=True,
        failed=True,
        error_message=found.group(2).strip() or None,
        error_type=found.group(3),
    )


def _apply_status(line: _Line, status: Any) -> None:
    """A platform status (``success``/``error``/``failure``/``timeout``) onto `line`."""
    if isinstance(status, str):
        line.status = _STATUSES.get(status.lower())


def _parse_bracketed(message: str) -> _Line | None:
    """Python runtime text lines: ``[LEVEL]\\t<time>\\t<rid>\\t<msg>`` or ``[ERROR] Type: msg``."""
    if message.startswith("[ERROR] "):
        return _parse_unhandled(message)
    parts = message.split("\t", 3)
    if len(parts) < 4 or parts[0] not in _TEXT_LEVELS:
        return None
    line = _Line(request_id=parts[2] or None, log_format="text")
    if parts[0][1:-1] in _ERROR_LEVELS:
        _set_error_text(line, parts[3])
    return line


def _set_error_text(line: _Line, text: str) -> None:
    """An ERROR-level free-text message, maybe ending with a Python traceback."""
    line.error = True
    line.error_message = text.rstrip("\r\n") or None
    if _TRACEBACK in text:
        line.error_type = _traceback_error_type(text)


def _traceback_error_type(text: str) -> str | None:
    """The class name (as ``type.__name__``) ending a formatted traceback: ``ClientError``."""
    lines = text.rstrip().splitlines()
    if not lines or not lines[-1] or lines[-1][0].isspace():
        return None
    qualified = _split_exception(lines[-1])[0]
    return qualified.rpartition(".")[2] if qualified else None


def _parse_unhandled(message: str) -> _Line:
    """The Python runtime's unhandled exception record: ``[ERROR] KeyError: 'x'\\nTraceback...``."""
    header = message[8:]
    cut = min((i for i in (header.find("\n"), header.find("\r")) if i >= 0), default=len(header))
    error_type, message_text = _split_exception(header[:cut].strip())
    return _Line(
        log_format="text", error=True, failed=True, error_type=error_type,
        error_message=message_text or None,
    )


def _split_exception(header: str) -> tuple[str | None, str]:
    """``"KeyError: 'x'"`` -> ``("KeyError", "'x'")``; text without a type -> ``(None, text)``."""
    kind, sep, rest = header.partition(": ")
    if sep and _EXCEPTION_TYPE.fullmatch(kind):
        return kind, rest.strip()
    if _EXCEPTION_TYPE.fullmatch(header):
        return header, ""
    return None, header


def _parse_lambda_warning(message: str) -> _Line:
    """``LAMBDA_WARNING: Unhandled exception ...``, the runtime's error record maybe after a CR."""
    _, sep, rest = message.partition("\r")
    inner = _parse_message(rest) if sep else None
    if inner is not None and inner.error:
        inner.failed = True
        return inner
    return _Line(error=True, failed=True)


def _parse_timestamped(message: str) -> _Line | None:
    """Lines that start with an ISO time: the timeout line, Node's ``time\\trid\\tLEVEL\\tmsg``."""
    if " Task timed out after " in message:
        found = _TIMEOUT_LINE.match(message)
        if found is None:
            return None
        return _Line(
            request_id=found.group(1),
            log_format="text",
            timed_out=True,
            error_message=found.group(2),
        )
    parts = message.split("\t", 3)
    if len(parts) < 4 or parts[2] not in _NODE_LEVELS:
        return _parse_java(message)
    line = _Line(request_id=parts[1] or None, log_format="text")
    if parts[2] in _ERROR_LEVELS:
        _set_node_error(line, parts[3])
    return line


def _parse_java(message: str) -> _Line | None:
    """A Java log4j2 line in Lambda's pattern: ``<date> <time> <rid> LEVEL <logger> - <msg>``."""
    found = _JAVA_LINE.match(message)
    if found is None:
        return None
    line = _Line(request_id=found.group(1), log_format="text")
    if found.group(2) in _ERROR_LEVELS:
        line.error = True
        line.error_message = found.group(3).rstrip("\r\n") or None
    return line


def _set_node_error(line: _Line, text: str) -> None:
    """Node's ``Invoke Error \\t{"errorType":..., "errorMessage":...}`` or a plain error line."""
    line.error = True
    line.failed = text.startswith(_NODE_FAILURES)  # the runtime's, not the function's
    _, sep, payload = text.partition("\t")
    obj = _loads(payload) if sep and payload.startswith("{") else None
    if obj is None:
        line.error_message = text.rstrip("\r\n") or None
    else:
        line.error_type = _str(obj.get("errorType"))
        line.error_message = _str(obj.get("errorMessage"))


# --- JSON lines -----------------------------------------------------------------------------


def _loads(text: str) -> dict[str, Any] | None:
    try:
        obj = orjson.loads(text)
    except (ValueError, TypeError):  # orjson.JSONDecodeError is a ValueError
        return None
    return obj if isinstance(obj, dict) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _text(value: Any) -> str | None:
    """A log message as text: strings as they are, structures as compact JSON."""
    if isinstance(value, str):
        return value.rstrip("\r\n") or None
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)


def _parse_json(message: str) -> _Line | None:
    obj = _loads(message)
    if obj is None:
        return None
    kind = obj.get("type")
    if isinstance(kind, str) and kind.startswith("platform.") and "record" in obj:
        return _parse_platform(kind, obj.get("record"))
    return _parse_json_app(obj)


def _parse_platform(kind: str, record: Any) -> _Line | None:
    """``platform.start``/``runtimeDone``/``report``; the init and extension events say nothing."""
    rid = _str(record.get("requestId")) if isinstance(record, dict) else None
    if rid is None:
        return None
    if kind == "platform.start":
        return _Line(kind="start", request_id=rid, log_format="json")
    if kind == "platform.runtimeDone":
        line = _Line(request_id=rid, log_format="json", ends=True)
    elif kind == "platform.report":
        line = _Line(kind="report", request_id=rid, log_format="json")
        _apply_metrics(line, record.get("metrics"))
    else:
        return None
    _apply_status(line, record.get("status"))
    if line.status == "error" or line.status == "timeout":
        line.error_type = _str(record.get("errorType"))
    return line


def _apply_metrics(line: _Line, metrics: Any) -> None:
    if not isinstance(metrics, dict):
        return
    duration = metrics.get("durationMs")
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        line.duration_ms = float(duration)
    memory = metrics.get("maxMemoryUsedMB")
    if isinstance(memory, (int, float)) and not isinstance(memory, bool):
        line.max_memory_mb = round(memory)


def _parse_json_app(obj: dict[str, Any]) -> _Line | None:
    """A runtime JSON app line, a Powertools line, or a runtime unhandled-error record."""
    lambda_rid = _str(obj.get("requestId")) or _str(obj.get("AWSRequestId"))  # Java: AWS...
    line = _Line(
        request_id=lambda_rid or _str(obj.get("function_request_id")),
        log_format="json" if lambda_rid else None,
        event_id=_str(obj.get("correlation_id")),
    )
    level = obj.get("level") or obj.get("log_level")
    if isinstance(level, str) and level.upper() in _ERROR_LEVELS:
        _set_json_error(line, obj)
    if line.request_id is None and line.event_id is None and not line.error:
        return None
    return line


def _set_json_error(line: _Line, obj: dict[str, Any]) -> None:
    """Error details from an ERROR-level JSON line, whatever logger wrote it."""
    line.error = True
    message = obj.get("message")
    if isinstance(message, dict) and ("errorType" in message or "errorMessage" in message):
        line.failed = True  # the runtime's own record of an unhandled error
        line.error_type = _str(message.get("errorType"))
        line.error_message = _text(message.get("errorMessage"))
        return
    line.error_type = _str(obj.get("exception_name")) or _str(obj.get("errorType"))
    line.error_message = _text(message) or _text(obj.get("errorMessage"))
    if line.error_type is None and isinstance(obj.get("exception"), str):
        line.error_type = _traceback_error_type(obj["exception"])
