"""Exceptions for problems a user can cause: bad input files, bad URLs, unreachable stores.

The CLI turns every `EventscopeError` into one clear line on stderr and a non-zero exit;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class EventscopeError(Exception):
    """A problem the user can fix; its message is one line that says what and where."""


class StoreError(EventscopeError):
    """The store cannot be opened or written: bad URL, unreachable server, newer schema."""


class InputError(EventscopeError):
    """An input file or stream cannot be read at all (missing, unreadable, not gzip)."""
