"""Values no store engine can hold, made storable: the write path's last line of defence.

Owns the pure functions `Store.write_batch` runs over every row before it writes, so one value
never takes a batch down on either engine:

- text with NUL (PostgreSQL refuses it) or lone surrogates (neither engine's driver can encode
  it as UTF-8) is *escaped*: NUL becomes the six characters ``\\u0000`` and a lone surrogate
  ``\\udXXX`` (Python's ``backslashreplace``), the same stored value on both engines;
- an integer outside 64 bits (neither engine's INTEGER/BIGINT holds it) cannot be escaped
  without changing its meaning: the row is *refused* with the reason `value_out_of_range`,
  and the store quarantines it (see `Store.write_batch`).

Everything else passes untouched; the check is a fast scan (`in`, `isascii`), so clean rows
cost little.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields, replace
from typing import Any, TypeVar

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
OUT_OF_RANGE = "value_out_of_range"
T = TypeVar("T")


class Unstorable(ValueError):
    """A value no engine can store and no escape can keep (an integer beyond 64 bits)."""

    reason = OUT_OF_RANGE


def needs_escape(text: str) -> bool:
    """True when the text holds NUL or a lone surrogate."""
    return "\x00" in text or not (text.isascii() or _encodes(text))


def escape_text(text: str) -> str:
    """The text with NUL as ``\\u0000`` and lone surrogates as ``\\udXXX``; clean text as is."""
    if not needs_escape(text):
        return text
    return (text.encode("utf-8", "backslashreplace").decode("utf-8")
            .replace("\x00", "\\u0000"))


def clean_value(value: Any, column: str = "?") -> Any:
    """A storable value: text escaped, an out-of-range integer refused (`Unstorable`)."""
    if type(value) is str:
        return escape_text(value)
    if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
        raise Unstorable(f"{column}: integer {str(value)[:40]} does not fit in 64 bits")
    return value


def _tuple_is_clean(row: Sequence[Any]) -> bool:
    for value in row:
        kind = type(value)
        if kind is str:  # `needs_escape` inline: this runs for every value written
            if "\x00" in value or not (value.isascii() or _encodes(value)):
                return False
        elif kind is int and not INT64_MIN <= value <= INT64_MAX:
            return False
    return True


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def rows_are_clean(rows: Iterable[Sequence[Any]]) -> bool:
    """Whether every row (a tuple of values) is storable as it is: the common case, checked
    in one pass with no per-row call of `clean_tuple`."""
    return all(map(_tuple_is_clean, rows))


def clean_tuple(row: tuple[Any, ...], names: Sequence[str]) -> tuple[Any, ...]:
    """The row (values in `names` order) made storable; `Unstorable` when it cannot be."""
    if _tuple_is_clean(row):
        return row
    return tuple(clean_value(value, name) for value, name in zip(row, names))


def clean_mapping(row: Mapping[str, Any]) -> dict[str, Any]:
    """A dict row made storable; `Unstorable` when it cannot be."""
    return {name: clean_value(value, name) for name, value in row.items()}


def clean_record(record: T) -> T:
    """A dataclass record (an `Invocation`, a `Quarantined`) made storable."""
    names = [f.name for f in fields(record)]  # type: ignore[arg-type]
    values = [getattr(record, name) for name in names]
    if _tuple_is_clean(values):
        return record
    return replace(record, **{n: clean_value(v, n) for n, v in zip(names, values)})  # type: ignore[type-var]
