"""Store-backed findings for whole-store and time-window views, read from the rollups.

Each entry point reads rollup totals through `eventscope.findings.load` (as the writers
left them: readers never refresh), maps functions to catalog consumers, and runs the pure
analysis; raw rows are read only to drill down into what a total names (the final failures,
an error's first message and example). Counts are exact; p50/p95 durations are
duration-bucket estimates; windows have minute resolution. Per-event counts are per
function: when one catalog consumer owns several functions that handled the same event, that
event counts once per function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
from sqlalchemy.engine import Engine

from eventscope.catalog.model import Catalog
from eventscope.findings import failures, lifecycle, load
from eventscope.findings.check import EXAMPLES, CheckSummaries
from eventscope.findings.duplicates import duplicates_from_pairs
from eventscope.findings.frames import resolve_consumers
from eventscope.findings.subscriptions import missed_cancellations, missing_from


def consumer_names(functions: pd.Series, catalog: Catalog | None) -> dict[str, str]:
    """{function: catalog consumer owning it, else the function itself}."""
    names = {}
    for function in functions.dropna().unique():
        owner = catalog.consumer_for_function(function) if catalog else None
        names[function] = owner.name if owner else function
    return names


def with_consumers(totals: pd.DataFrame, catalog: Catalog | None) -> pd.DataFrame:
    """Totals keyed by function with `function` kept and `consumer` the catalog consumer."""
    result = totals.assign(function=totals["consumer"])
    if catalog is not None and not result.empty:
        result["consumer"] = result["function"].map(consumer_names(result["function"], catalog))
    return result


def _select(totals: pd.DataFrame, consumers: Sequence[str],
            detail_types: Sequence[str]) -> pd.DataFrame:
    if consumers:
        totals = totals[totals["consumer"].isin(consumers) | totals["function"].isin(consumers)]
    if detail_types:
        totals = totals[totals["detail_type"].isin(detail_types)]
    return totals


def failure_rates(engine: Engine, catalog: Catalog | None = None, since_ms: int | None = None,
                  until_ms: int | None = None, consumers: Sequence[str] = (),
                  detail_types: Sequence[str] = (), bucket_ms: int | None = None,
                  calls: pd.DataFrame | None = None, handling: pd.DataFrame | None = None
                  ) -> pd.DataFrame:
    """`failures.failure_rates`' frame over the store or a window, from the rollups (or from
    `calls` / `handling` totals already read for that window and bucket)."""
    if calls is None:
        calls = load.load_call_totals(engine, since_ms, until_ms, bucket_ms)
    if handling is None:
        handling = load.load_handling_totals(engine, since_ms, until_ms, bucket_ms)
    return failures.rates_from_totals(
        _select(with_consumers(calls, catalog), consumers, detail_types),
        _select(with_consumers(handling, catalog), consumers, detail_types), bucket_ms)


def final_failures(engine: Engine, catalog: Catalog | None = None, since_ms: int | None = None,
                   until_ms: int | None = None, consumers: Sequence[str] = (),
                   detail_types: Sequence[str] = (), calls: pd.DataFrame | None = None,
                   owners: Mapping[str, str] | None = None,
                   latest: int | None = None) -> pd.DataFrame:
    """`failures.final_failures`' frame, counted in SQL from the pairs the rollup says failed
    finally (`load.load_final_failures`; `calls`: call totals already read, to find the
    functions and the consumers owning them; `owners`: `shared_owners` already found). With
    `latest`, its first `latest` rows only, read from each function's newest failed
    invocations (`load.load_latest_final_failures`: a bounded read whatever the store's
    size). Consumers that own no function stored: no rows."""
    functions = _functions(engine, catalog, consumers, calls)
    if consumers and not functions:
        return failures.newest_first(load.frame([], load.FINAL_FAILURE_COLUMNS))
    if owners is None:
        owners = (shared_owners(engine, catalog) if calls is None
                  else renamed_functions(calls["consumer"], catalog))
    if latest is None:
        found = load.load_final_failures(engine, functions, since_ms, until_ms, owners)
    else:
        found = load.load_latest_final_failures(
            engine, functions or load.load_functions(engine), latest, since_ms, until_ms,
            owners, detail_types)
    if catalog is not None and not owners:  # else the statement named them already
        found["consumer"] = found["consumer"].map(consumer_names(found["consumer"], catalog))
    if detail_types:
        found = found[found["detail_type"].isin(detail_types)]
    found = failures.newest_first(found)
    return found if latest is None else found.head(latest)


def final_failure_examples(engine: Engine, catalog: Catalog | None = None,
                           since_ms: int | None = None, until_ms: int | None = None,
                           handling: pd.DataFrame | None = None,
                           owners: Mapping[str, str] | None = None
                           ) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """What `check` grades of final failures, in a bounded read: (each consumer x type's
    `check.EXAMPLES` final failures first tried last, at least; their counts per consumer x
    type from the handling rollup, `events`) -- or, when two functions share a consumer
    (the rollup counts per function), (every final failure, None). `handling`: the window's
    handling totals already read; `owners`: `shared_owners` already found."""
    if owners is None:
        owners = shared_owners(engine, catalog)
    if owners:
        return final_failures(engine, catalog, since_ms, until_ms, owners=owners), None
    found = load.load_final_failures(engine, (), since_ms, until_ms, newest=EXAMPLES)
    if catalog is not None:
        found["consumer"] = found["consumer"].map(consumer_names(found["consumer"], catalog))
    if handling is None:
        handling = load.load_handling_totals(engine, since_ms, until_ms)
    named = with_consumers(handling, catalog)
    counts = named[named["detail_type"].notna()].groupby(
        ["consumer", "detail_type"], as_index=False)["final_failures"].sum()
    return (failures.newest_first(found),
            counts[counts["final_failures"] > 0].rename(columns={"final_failures": "events"})
            .reset_index(drop=True))


def renamed_functions(functions: Iterable[str], catalog: Catalog | None) -> dict[str, str]:
    """{function: the catalog consumer owning it} of every function the catalog renames, when
    two of the `functions` end up named alike (one consumer's attempts of one event are then
    one pair, whichever of its functions made them); empty when no two do."""
    names = consumer_names(pd.Series(list(functions), dtype=object), catalog)
    if len(set(names.values())) == len(names):
        return {}
    return {function: name for function, name in names.items() if function != name}


def shared_owners(engine: Engine, catalog: Catalog | None) -> dict[str, str]:
    """`renamed_functions` of every function the store's invocation rollup names: what the
    drill-downs (final failures, duplicates, cancelled orders) merge into one consumer."""
    return renamed_functions(load.load_functions(engine), catalog)


def _functions(engine: Engine, catalog: Catalog | None, consumers: Sequence[str],
               calls: pd.DataFrame | None = None) -> list[str]:
    if not consumers:
        return []
    named = with_consumers(load.load_call_totals(engine) if calls is None else calls, catalog)
    return sorted(set(_select(named, consumers, ())["function"]))


def top_errors(engine: Engine, catalog: Catalog | None = None, since_ms: int | None = None,
               until_ms: int | None = None, consumers: Sequence[str] = (),
               detail_types: Sequence[str] = (), limit: int = 10,
               calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """`failures.top_errors`' frame: groups from the rollup (or the window's `calls` totals
    already read), message and example from the first invocations of each group (index
    reads)."""
    if calls is None:
        calls = load.load_call_totals(engine, since_ms, until_ms)
    calls = _select(with_consumers(calls, catalog), consumers, detail_types)
    groups = failures.top_error_groups(calls, limit)
    owners = calls.groupby("consumer")["function"].agg(lambda s: sorted(set(s)))
    unnamed = {v: k for k, v in failures.UNNAMED_ERRORS.items()}
    for index, row in groups.iterrows():
        detail_type = None if pd.isna(row["detail_type"]) else row["detail_type"]
        message, example = load.load_error_example(
            engine, owners[row["consumer"]], detail_type, row["error_type"],
            unnamed.get(row["error_type"]), int(row["first_ms"]), int(row["last_ms"]))
        groups.at[index, "first_message"] = message
        groups.at[index, "example_event_id"] = example
    return groups


def error_invocations(engine: Engine, catalog: Catalog | None, consumer: str,
                      detail_type: str | None, error_type: str, since_ms: int | None = None,
                      until_ms: int | None = None, limit: int = 20,
                      calls: pd.DataFrame | None = None) -> pd.DataFrame:
    """The latest `limit` invocations of one top-error group (consumer x type x error type,
    as `top_errors` names it) in the window, newest first, with the log group and stream of
    their log lines (index reads on the consumer's functions)."""
    functions = _functions(engine, catalog, [consumer], calls)
    if not functions:
        return load.frame([], load.ERROR_INVOCATION_COLUMNS)
    unnamed = {v: k for k, v in failures.UNNAMED_ERRORS.items()}
    found = load.load_error_invocations(engine, functions, detail_type, error_type,
                                        unnamed.get(error_type), since_ms, until_ms, limit)
    return resolve_consumers(found.assign(function=found["consumer"]), catalog)


def observed_summaries(engine: Engine, catalog: Catalog | None = None,
                       since_ms: int | None = None, until_ms: int | None = None,
                       totals: Sequence[pd.DataFrame | None] = (None, None, None)
                       ) -> dict[str, Any]:
    """What `graph.build_graph_from_summaries` needs, from the rollups (or from the
    window's (event, call, handling) `totals` already read)."""
    from eventscope.findings import graph  # networkx: imported by the graph's readers only
    emitted_totals, calls, handling = totals
    if emitted_totals is None:
        emitted_totals = load.load_event_totals(engine, since_ms, until_ms)
    if calls is None:
        calls = load.load_call_totals(engine, since_ms, until_ms)
    if handling is None:
        handling = load.load_handling_totals(engine, since_ms, until_ms)
    return graph.summaries_from_totals(emitted_totals, with_consumers(calls, catalog),
                                       with_consumers(handling, catalog))


def build_graph(engine: Engine, catalog: Catalog | None = None,
                subscriptions: pd.DataFrame | None = None, since_ms: int | None = None,
                until_ms: int | None = None,
                totals: Sequence[pd.DataFrame | None] = (None, None, None),
                rules: list[dict[str, Any]] | None = None) -> Any:
    """`graph.build_graph`'s graph of the store (or a window), from the rollups (or from the
    window's (event, call, handling) `totals` already read), with the bus `rules`
    (`read.bus_rules`) matched against its types."""
    from eventscope.findings import graph
    return graph.build_graph_from_summaries(
        observed_summaries(engine, catalog, since_ms, until_ms, totals), catalog,
        subscriptions, rules)


def handled_kinds(engine: Engine, catalog: Catalog | None = None, since_ms: int | None = None,
                  until_ms: int | None = None, calls: pd.DataFrame | None = None
                  ) -> pd.DataFrame:
    """One row per consumer x function x event kind handled, `start_ms` its last start
    (`first_ms` its first), invocations, in the window when given: an
    attempts-shaped stand-in for analyses that only ask who handled what, and when last."""
    if calls is None:
        calls = load.load_call_totals(engine, since_ms, until_ms)
    calls = with_consumers(calls, catalog)
    return calls.groupby(["consumer", "function", "source", "detail_type", "version"],
                         dropna=False).agg(start_ms=("last_ms", "max"),
                                           first_ms=("first_ms", "min"),
                                           invocations=("invocations", "sum")).reset_index()


def duplicates(engine: Engine, catalog: Catalog | None = None, since_ms: int | None = None,
               until_ms: int | None = None, handling: pd.DataFrame | None = None,
               owners: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """`duplicates.duplicates_by_consumer`'s list: counts of events from the rollup
    (`handling`: the window's handling totals, when already read), the rest from the pairs
    delivered or processed more than once, counted in SQL (`load.load_duplicate_pairs`, of
    the pairs first tried in [since_ms, until_ms) when given; `owners`: `shared_owners`
    already found)."""
    if owners is None:
        owners = shared_owners(engine, catalog)
    pairs = load.load_duplicate_pairs(engine, (), since_ms, until_ms, owners)
    if catalog is not None and not owners:  # else the statement named them already
        pairs["consumer"] = pairs["consumer"].map(consumer_names(pairs["consumer"], catalog))
    if handling is None:
        handling = load.load_handling_totals(engine, since_ms, until_ms)
    totals = with_consumers(handling, catalog).groupby("consumer")["events"].sum()
    found = duplicates_from_pairs(pairs)
    for item in found:
        item["events"] = int(totals.get(item["consumer"], 0))
    return found


def observed_missing_subscriptions(engine: Engine, catalog: Catalog | None = None,
                                   since_ms: int | None = None, until_ms: int | None = None,
                                   latest: int | None = None,
                                   owners: Mapping[str, str] | None = None
                                   ) -> list[dict[str, Any]]:
    """`subscriptions.observed_missing` over the orders that have a cancellation only (one
    in [since_ms, until_ms) when given; the order's earlier events count wherever they are;
    only the `latest` cancellations when given; `owners`: `shared_owners` already found)."""
    cancels = sorted(lifecycle.cancellation_types(catalog))
    if not (shared_owners(engine, catalog) if owners is None else owners):
        missed = load.load_missed_cancellations(engine, cancels, since_ms, until_ms, latest)
        if catalog is not None:
            missed["consumer"] = missed["consumer"].map(consumer_names(missed["consumer"],
                                                                       catalog))
        return missed_cancellations(missed)
    # two functions share a consumer: what one of them handled, the consumer handled
    found, first_seen, handled = load.load_cancellation_summary(
        engine, cancels, since_ms, until_ms, latest)
    first_seen = with_consumers(first_seen, catalog).groupby(
        ["consumer", "correlation_key"], as_index=False)["time_ms"].min()
    return missing_from(found, first_seen, with_consumers(handled, catalog))


def check_summaries(engine: Engine, catalog: Catalog | None = None,
                    subscriptions: pd.DataFrame | None = None, since_ms: int | None = None,
                    until_ms: int | None = None,
                    latest_cancellations: int | None = None) -> CheckSummaries:
    """Everything `check.run_check_summaries` grades, from rollups and drill-downs: over the
    whole store, or the window [since_ms, until_ms) (failures, duplicates, handling,
    cancellations and emitted kinds; payload samples and dead letters are the store's
    latest); the orders of the `latest_cancellations` cancellations only, when given. The
    rollups are read as the writers left them (never refreshed here), each rollup total
    once; the three drill-downs (final failures' counts and examples, duplicates, cancelled
    orders) read at the same time as the rollup totals, each on its own connection (SQLite
    releases the GIL while it reads), with the functions sharing a consumer found once."""
    owners = shared_owners(engine, catalog)
    with ThreadPoolExecutor(max_workers=3) as pool:
        observed = pool.submit(observed_missing_subscriptions, engine, catalog, since_ms,
                               until_ms, latest_cancellations, owners)
        handling = load.load_handling_totals(engine, since_ms, until_ms)
        finals = pool.submit(final_failure_examples, engine, catalog, since_ms, until_ms,
                             handling, owners)
        repeats = pool.submit(duplicates, engine, catalog, since_ms, until_ms, handling,
                              owners)
        calls = load.load_call_totals(engine, since_ms, until_ms)
        rates = failure_rates(engine, catalog, since_ms, until_ms, calls=calls,
                              handling=handling)
        type_summary = load.load_type_summary_rollup(engine, since_ms, until_ms)
        handled = handled_kinds(engine, catalog, since_ms, until_ms, calls)
        samples = load.load_samples(engine)
        examples, counts = finals.result()
        return CheckSummaries(
            rates=rates, final_failures=examples, final_failure_counts=counts,
            duplicates=repeats.result(), observed_missing=observed.result(),
            type_summary=type_summary, handled=handled, samples=samples,
            subscriptions=subscriptions, dead_letters=load.load_dead_letters(engine))
