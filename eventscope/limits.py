"""Documented limits for untrusted input, shared by every write path."""

from __future__ import annotations

MAX_LINE_BYTES = 1024 * 1024  # one NDJSON line; EventBridge's own event limit is 256 KB
MAX_JSON_DEPTH = 64  # nesting of objects and arrays in one line
QUARANTINE_RAW_CAP = 8 * 1024  # bytes of a refused input kept in the quarantine table
ERROR_MESSAGE_CAP = 2000  # characters of an invocation's first error message kept
