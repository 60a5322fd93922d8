"""PostgreSQL advisory locks that serialise the writers of one store, and no other store's.

Owns `lock_store`: the transaction-scoped lock a PostgreSQL store's writers take around work
that two processes must not do at once on the same store (creating or updating its schema,
creating day partitions, recomputing rollups). Several stores may live in one database, one
per schema (a team's staging and production, or the test suite's fresh schema per test): each
lock is keyed by the store's schema (`current_schema()`), so stores never wait for each other.

A process of an eventscope from before this module took the same work's lock on one key for
the whole database. So that it and a newer process on the same store still exclude each other
(a rolling upgrade), `lock_store` also takes that database-wide key, in shared mode: shared
holders never wait for one another, and an older process's exclusive request waits for them
all (and they for it).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

# The database-wide keys each kind of work was locked on before (bigint advisory keys).
SCHEMA_LOCK = 7461636865
PARTITIONS_LOCK = 7461636866
RECOMPUTE_LOCK = 7461636867


def lock_store(conn: Connection, key: int) -> None:
    """Take the store's lock `key` (one of the keys above) until the end of `conn`'s
    transaction: the database-wide key shared, then the (key, schema) pair exclusive,
    always in that order (a holder of the pair never waits for the database-wide key)."""
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock_shared({int(key)})")
    conn.exec_driver_sql(
        f"SELECT pg_advisory_xact_lock({int(key) & 0x7FFFFFFF}, "
        "hashtext(coalesce(current_schema(), '')))")
