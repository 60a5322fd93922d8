"""Faults, bad and huge input: every case asserts nothing lost (each line is stored or
quarantined with its reason), nothing duplicated, and a bounded cost: a line without end costs
memory independent of its length; a binary file, a closed stdin and a directory are one
`error:` line (exit 2); ingest workers die with their parent; times outside a sane range and
integers beyond 64 bits; replay echoes; a partial replay; hostile payloads and CSV formulas."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eventscope.cli import main
from eventscope.decoding import decode_object
from eventscope.events import RejectedRecord, parse_time_ms
from eventscope.limits import MAX_LINE_BYTES, QUARANTINE_RAW_CAP
from eventscope.store import events as events_table, open_store, quarantine

NOW = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def envelope(event_id: str, detail: dict[str, Any] | None = None,
             when: str = NOW) -> dict[str, Any]:
    return {"version": "0", "id": event_id, "detail-type": "OrderPlaced",
            "source": "com.shop.orders", "account": "123456789012", "time": when,
            "region": "us-east-1", "resources": [],
            "detail": detail if detail is not None else {"orderId": f"ord-{event_id}"}}


def line(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode() + b"\n"


def ingest(*args: str, stdin: Any = None, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """`eventscope ingest` in its own process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "eventscope", "ingest", *args], stdin=stdin,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "EVENTSCOPE_PII_KEY": "k", **(env or {})})


def stored(url: str) -> tuple[list[str], list[tuple[str, str]]]:
    store = open_store(url)
    try:
        ids = sorted(r["id"] for r in store.select_rows(events_table.select()))
        refused = sorted((r["position"], r["reason"])
                         for r in store.select_rows(quarantine.select()))
    finally:
        store.engine.dispose()
    return ids, refused


def _run_measured(args: list[str]) -> tuple[int, float]:
    """Exit code and peak RSS (MB) of one `eventscope ingest` run in a fresh child."""
    code = (
        "import resource, subprocess, sys\n"
        f"r = subprocess.run({[sys.executable, '-m', 'eventscope', 'ingest', *args]!r},"
        " capture_output=True)\n"
        "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300,
                         check=True, env={**os.environ, "EVENTSCOPE_PII_KEY": "k"}).stdout
    returncode, rss_kb = out.split()
    return int(returncode), int(rss_kb) / 1024


def test_a_line_without_end_costs_memory_independent_of_its_length(tmp_path: Path) -> None:
    """A 64 MiB line (a minified export without newlines) between two events: both events
    stored, the line quarantined as too_large, and peak memory within a few MB of a run
    over a small file (it would be ~2x the line if it were read whole)."""
    small, huge = tmp_path / "small.ndjson", tmp_path / "huge.ndjson"
    small.write_bytes(line(envelope("a")) + line(envelope("b")))
    with huge.open("wb") as out:
        out.write(line(envelope("a")))
        out.write(b'{"detail": "')
        chunk = b"x" * (1 << 20)
        for _ in range(64):
            out.write(chunk)
        out.write(b'"}\n')
        out.write(line(envelope("b")))
    code, base_mb = _run_measured([str(small), "--db", f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 0
    code, huge_mb = _run_measured([str(huge), "--db", f"sqlite:///{tmp_path / 'h.db'}",
                                   "--workers", "0"])
    assert code == 0
    assert huge_mb - base_mb < 24, (base_mb, huge_mb)
    ids, refused = stored(f"sqlite:///{tmp_path / 'h.db'}")
    assert ids == ["a", "b"] and refused == [("line 2", "too_large")]


@pytest.mark.parametrize("tail", [b"", b"\n"])
def test_an_overlong_last_line_is_quarantined_once(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "x.ndjson"
    path.write_bytes(line(envelope("a")) + b"{" + b" " * (MAX_LINE_BYTES + 10) + b"}" + tail)
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = ingest(str(path), "--db", url)
    assert result.returncode == 0, result.stderr
    assert stored(url) == (["a"], [("line 2", "too_large")])


def test_a_binary_file_is_refused_with_one_error_line(tmp_path: Path) -> None:
    """20 MB of random bytes: exit 2, one `error:` line, nothing quarantined from it."""
    path = tmp_path / "photo.ndjson"
    path.write_bytes(os.urandom(20 * 1024 * 1024))
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = ingest(str(path), "--db", url)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    assert "not text" in lines[0] and b"Traceback" not in result.stderr
    assert stored(url) == ([], [])


@settings(max_examples=300)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(4096, 65536))
def test_random_bytes_are_always_refused_as_binary(seed: int, size: int) -> None:
    """Whatever the random bytes: a few short lines of them decode as UTF-8 by chance (a
    file refused only when all its first lines failed let one in about every fifteen), but
    they hold a sliver of the probed bytes, so the input is binary."""
    import random

    from eventscope.errors import InputError
    from eventscope.ingest import check_text
    data = random.Random(seed).randbytes(size)
    with pytest.raises(InputError, match="is not text"):
        check_text("photo.ndjson", data)


@settings(max_examples=100)
@given(bad=st.lists(st.binary(min_size=1, max_size=40), max_size=4),
       at=st.lists(st.integers(0, 5), max_size=4))
def test_ndjson_with_a_few_bad_lines_is_never_refused(bad: list[bytes], at: list[int]) -> None:
    """Envelopes with up to four short undecodable lines among them are text: read, the bad
    lines quarantined."""
    from eventscope.ingest import check_text
    lines = [line(envelope(f"e{i}")) for i in range(5)]
    for junk, where in zip(bad, at):
        lines.insert(where, junk.replace(b"\n", b"") + b"\xff\n")
    check_text("events.ndjson", b"".join(lines))


def test_a_text_file_with_a_few_bad_lines_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\xff\xfe\x00junk\n" + line(envelope("a")) + b"\x80\x81\n")
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert ingest(str(path), "--db", url).returncode == 0
    ids, refused = stored(url)
    assert ids == ["a"] and [reason for _, reason in refused] == ["not_utf8", "not_utf8"]


def test_a_closed_stdin_is_one_error_line(tmp_path: Path) -> None:
    code = ("import os, sys, subprocess; os.close(0); "
            f"r = subprocess.run([sys.executable, '-m', 'eventscope', 'ingest', '-', '--db', "
            f"'sqlite:///{tmp_path / 's.db'}'], capture_output=True, stdin=None); "
            "sys.stdout.write(str(r.returncode) + '|' + r.stderr.decode())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                         stdin=subprocess.DEVNULL).stdout.decode()
    returncode, stderr = out.split("|", 1)
    assert returncode == "2" and stderr.startswith("error: stdin") and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_a_directory_is_named_a_directory(tmp_path: Path) -> None:
    result = ingest(str(tmp_path), "--db", f"sqlite:///{tmp_path / 's.db'}")
    assert result.returncode == 2
    assert result.stderr.decode().strip() == f"error: {tmp_path} is a directory: name the " \
                                             "NDJSON files in it"


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ingest_workers_die_when_ingest_is_killed(tmp_path: Path) -> None:
    """kill -9 of `ingest -` while its two parsing workers are busy: no worker survives."""
    process = subprocess.Popen(
        [sys.executable, "-m", "eventscope", "ingest", "-", "--workers", "2", "--db",
         f"sqlite:///{tmp_path / 's.db'}"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env={**os.environ, "EVENTSCOPE_PII_KEY": "k"})
    assert process.stdin is not None
    try:
        body = b"".join(line(envelope(f"e{i}")) for i in range(12_000))  # ~3 blocks
        process.stdin.write(body)
        process.stdin.flush()  # and the pipe stays open: ingest waits for more
        deadline = time.monotonic() + 60
        while len(workers := _children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) >= 2, "the workers never started"
    finally:
        process.kill()
        process.wait()
    deadline = time.monotonic() + 10
    while (alive := {w for w in workers if Path(f"/proc/{w}").exists()
                     and "Z" not in (Path(f"/proc/{w}/stat").read_text().split()[2:3] or [""])})\
            and time.monotonic() < deadline:
        time.sleep(0.1)
    for worker in alive:  # clean up before failing
        os.kill(worker, signal.SIGKILL)
    assert alive == set()


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z",
                                  "2099-01-01T00:00:00Z", "9999-12-31T23:59:59+00:00"])
def test_times_outside_a_sane_range_are_invalid(when: str) -> None:
    with pytest.raises(RejectedRecord) as refused:
        parse_time_ms(when)
    assert refused.value.reason == "invalid_time"


def test_a_day_of_clock_skew_is_accepted() -> None:
    now_ms = 1_800_000_000_000
    assert parse_time_ms("2027-01-15T08:00:00Z", now_ms) == now_ms
    assert parse_time_ms("2027-01-16T07:00:00Z", now_ms) > now_ms  # 23 h ahead: accepted
    with pytest.raises(RejectedRecord):
        parse_time_ms("2027-01-16T09:00:00Z", now_ms)  # 25 h ahead


def test_ingest_quarantines_bad_times_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "t.ndjson"
    path.write_bytes(line(envelope("old", when="0001-01-01T00:00:00Z"))
                     + line(envelope("ok")) + line(envelope("future", when="2099-01-01T00:00:00Z")))
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert ingest(str(path), "--db", url).returncode == 0
    assert stored(url) == (["ok"], [("line 1", "invalid_time"), ("line 3", "invalid_time")])


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=-(10**40), max_value=10**40))
@example(-(2**63))
@example(-(2**63) - 1)  # 19 digits below 64 bits: once missed (only 20-digit runs were looked at)
@example(-(10**19) + 1)
@example(2**64 - 1)
@example(2**64)
def test_integers_round_trip_exactly(number: int) -> None:
    """Within 64 bits a number stays a number; beyond, its exact digits as a string."""
    decoded = decode_object(b'{"n": ' + str(number).encode() + b', "s": "x"}')["n"]
    if -(2**63) <= number <= 2**64 - 1:
        assert decoded == number and type(decoded) is int
    else:
        assert decoded == str(number)


def test_a_25_digit_order_id_is_stored_exactly(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson"
    path.write_bytes(b'{"version":"0","id":"big","detail-type":"OrderPlaced","source":"s",'
                     b'"time":"' + NOW.encode() + b'","detail":{"orderId":'
                     b'1234567890123456789012345,"n":[99999999999999999999]}}\n')
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert ingest(str(path), "--db", url).returncode == 0
    store = open_store(url)
    row = store.select_rows(events_table.select())[0]
    store.engine.dispose()
    assert orjson.loads(row["detail"]) == {"orderId": "1234567890123456789012345",
                                           "n": ["99999999999999999999"]}
    assert row["correlation_key"] == "1234567890123456789012345"


def test_ingest_skips_and_counts_replay_echoes(tmp_path: Path) -> None:
    """An echo of `eventscope replay` (marked detail) or of an archive replay is not new
    traffic: not stored, counted."""
    marked = envelope("echo", {"orderId": "o", "_eventscopeReplay": {"request": "r",
                                                                     "originalId": "a"}})
    archived = {**envelope("echo2"), "replay-name": "r1"}
    path = tmp_path / "e.ndjson"
    path.write_bytes(line(envelope("a")) + line(marked) + line(archived))
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = ingest(str(path), "--db", url, "--json")
    summary = json.loads(result.stdout)
    assert summary["replay_echoes"] == 2 and summary["events_stored"] == 1
    assert stored(url) == (["a"], [])


def test_hostile_payloads_are_stored_verbatim_and_shown_as_text(tmp_path: Path,
                                                                monkeypatch: Any) -> None:
    """HTML, script and markdown in a payload: stored as sent, and the lifecycle page shows
    them only inside JSON / text elements, never as markdown or HTML."""
    from tests.dashboard_harness import page

    hostile = {"orderId": "o-h", "note": "<script>alert(1)</script> **bold** [x](javascript:1)",
               "html": "<img src=x onerror=alert(1)>"}
    path = tmp_path / "h.ndjson"
    path.write_bytes(line(envelope("h", hostile)))
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert ingest(str(path), "--db", url).returncode == 0
    monkeypatch.setenv("EVENTSCOPE_DB", url)
    at = page("lifecycle", order="o-h")
    assert not at.exception
    assert "<script>" in str(at.json[0].value)
    for element in (*at.markdown, *at.caption, *at.title, *at.header, *at.subheader):
        assert "<script>" not in element.value and "onerror" not in element.value
        assert "javascript:" not in element.value


def test_csv_output_neutralises_formulas(tmp_path: Path) -> None:
    """Cells starting with = + - @ (a formula to a spreadsheet) are prefixed so they stay text."""
    import csv
    import io

    det = {"orderId": "=HYPERLINK(\"http://evil\")"}
    path = tmp_path / "f.ndjson"
    path.write_bytes(line({**envelope("f", det), "detail-type": "=cmd|' /C calc'!A0",
                           "source": "@SUM(1+1)"}))
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert ingest(str(path), "--db", url).returncode == 0
    result = CliRunner().invoke(main, ["graph", "--db", url, "--csv"])
    assert result.exit_code == 0, result.output
    cells = [cell for row in csv.reader(io.StringIO(result.output)) for cell in row]
    assert "'=cmd|' /C calc'!A0" in cells and "'@SUM(1+1)" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]


@pytest.mark.parametrize("start", [QUARANTINE_RAW_CAP - 30, QUARANTINE_RAW_CAP - 8,
                                   QUARANTINE_RAW_CAP - 1])
def test_a_card_number_cut_by_the_quarantine_cap_leaves_no_digits(tmp_path: Path,
                                                                  start: int) -> None:
    """A malformed line whose card number straddles the kept 8 KiB: redaction sees the whole
    number before the store cuts the line, so not even its first digits are kept."""
    card = "4111111111111111"
    text = '{"broken": "' + "x" * (start - 13) + " " + card + '" ' + "y" * 100 + "\n"
    assert text.index(card) == start
    (tmp_path / "in.ndjson").write_text(text)
    url = f"sqlite:///{tmp_path / 's.db'}"
    result = ingest(str(tmp_path / "in.ndjson"), "--db", url)
    assert result.returncode == 0, result.stderr
    store = open_store(url)
    try:
        raw, = [r["raw"] for r in store.select_rows(quarantine.select())]
    finally:
        store.engine.dispose()
    assert len(raw) <= QUARANTINE_RAW_CAP
    assert b"x" * 100 in raw and b"41111111" not in raw and raw[start:start + 4] != b"4111"
