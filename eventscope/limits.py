"""Documented limits for untrusted input, shared by every write path."""

from __future__ import annotations

MAX_LINE_BYTES = 1024 * 1024  # one NDJSON line; EventBridge's own event limit is 256 KB
MAX_JSON_DEPTH = 64  # nesting of objects and arrays in one line
QUARANTINE_RAW_CAP = 8 * 1024  # bytes of a refused input kept in the quarantine table
# Bytes read past that cap before PII redaction, so a value the cap would cut is still whole
# when redaction looks at it (an e-mail is at most 254 characters); the store cuts to the cap
# after redaction.
QUARANTINE_PII_MARGIN = 512
QUARANTINE_READ = QUARANTINE_RAW_CAP + QUARANTINE_PII_MARGIN
ERROR_MESSAGE_CAP = 2000  # characters of an invocation's first error message kept
