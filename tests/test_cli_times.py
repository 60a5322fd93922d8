"""The one time/duration grammar of every command (`eventscope.durations`), as properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventscope.cli.options import DURATION, TIME
from eventscope.durations import UNIT_MS, duration_ms, is_duration, since_ms

NOW = 1_700_000_000_000
BOUNDED = settings(max_examples=200, deadline=None)


@BOUNDED
@given(st.integers(0, 10**6), st.sampled_from(sorted(UNIT_MS)), st.sampled_from(["", " "]))
def test_a_duration_is_its_number_times_its_unit(n: int, unit: str, space: str) -> None:
    text = f"{space}{n}{space}{unit}{space}"
    assert is_duration(text)
    assert duration_ms(text) == n * UNIT_MS[unit]
    assert since_ms(text, NOW) == NOW - n * UNIT_MS[unit]


def test_the_units_are_seconds_to_weeks() -> None:
    assert [duration_ms(t) for t in ("90s", "15m", "2h", "1d", "1w")] == [
        90_000, 900_000, 7_200_000, 86_400_000, 604_800_000]


@BOUNDED
@given(st.text(max_size=40))
def test_any_text_is_a_time_or_a_value_error(text: str) -> None:
    """Never anything but ValueError, whatever is typed."""
    for parse in (lambda t: since_ms(t, NOW), duration_ms):
        try:
            value = parse(text)
        except ValueError as exc:
            assert repr(text) in str(exc) or "out of range" in str(exc)
        else:
            assert isinstance(value, int)


@BOUNDED
@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=2)),
                                               timezone(timedelta(hours=-5, minutes=-30))])),
       st.sampled_from(["seconds", "milliseconds"]))
def test_an_iso_time_is_its_instant(moment: datetime, timespec: str) -> None:
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if timespec == "seconds":
        moment = moment.replace(microsecond=0)
    expected = int(moment.timestamp()) * 1000 + moment.microsecond // 1000
    assert since_ms(moment.isoformat(timespec=timespec), NOW) == expected


def test_an_iso_time_without_an_offset_is_utc() -> None:
    assert since_ms("2024-05-01", NOW) == since_ms("2024-05-01T00:00:00+00:00", NOW)
    assert since_ms("2024-05-01T12:00:00Z", NOW) == since_ms("2024-05-01T14:00:00+02:00", NOW)


@pytest.mark.parametrize(("kind", "text"), [(TIME, "yesterday"), (TIME, "1 week"),
                                            (DURATION, "2024-01-01"), (DURATION, "-5m"),
                                            (DURATION, "1.5h")])
def test_the_click_types_turn_a_bad_value_into_a_usage_error(kind: click.ParamType,
                                                             text: str) -> None:
    with pytest.raises(click.BadParameter) as caught:
        kind.convert(text, None, None)
    assert caught.value.exit_code == 2
