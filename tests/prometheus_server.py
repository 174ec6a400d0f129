"""A real Prometheus server for rule tests: Debian's 2.42 build, unpacked into .bin/ by tools/install-prometheus.

This module owns one server's whole life on 127.0.0.1, each in its own directory: synthetic history written as
OpenMetrics and backfilled with `promtool tsdb create-blocks-from openmetrics` before the server starts, the live
series' current values pushed from this process to the server's remote-write receiver, the rules file (time
compressed or as given), a client of the HTTP API, and the stop by PID. The pytest fixtures over it are in
tests/conftest.py.

Time is given as offsets in seconds from the server's `now`, fixed when the history is written: history covers
[now - history, now - history_end], the live set is pushed with every value at offsets ≥ 0 (the time since `now`).

Why a push and not a scrape: 2.42 throttles target discovery to 5 s and has no flag for it, so a scrape target costs
every server 5-6 s before its first sample and every change of the live set a scrape interval; a push is stored
when its request returns. A push samples the live set as a scrape would (every series at one time stamp, a series
gone from the set marked stale at once), and rules, queries and alerts are the server's own.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, TypedDict, TypeVar

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".bin"

# The live set is pushed this often (a scrape interval), and at once whenever it changes.
PUSH_INTERVAL = 1.0
# History stops this long before `now`: the TSDB accepts appends only after its newest block's end, and rule
# outputs and scrapes are appended at wall-clock time, after `now`.
HISTORY_END = 30.0
# Compressed time: every group runs each COMPRESSED_INTERVAL and every non-zero `for:` lasts COMPRESSED_FOR, so an
# alert goes pending at the first evaluation that sees its condition and fires two evaluations later. The seconds
# are for the tests' waits.
COMPRESSED_INTERVAL_SECONDS = 0.25
COMPRESSED_FOR_SECONDS = 0.5
COMPRESSED_INTERVAL = "250ms"
COMPRESSED_FOR = "500ms"
# Every wait is bounded.
START_TIMEOUT = 20.0
WAIT_TIMEOUT = 15.0
HTTP_TIMEOUT = 5.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40
# Longer histories are backfilled a TSDB block (2 h) at a time (`openmetrics_blocks`).
LONG_HISTORY = 86400.0
BLOCK_MS = 2 * 3600 * 1000

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")
# Prometheus' staleness marker, a NaN with its own bit pattern (model/value.StaleNaN).
STALE_NAN = struct.pack("<Q", 0x7FF0000000000002)

Samples = Callable[[float], float | None] | Sequence[tuple[float, float]] | float
T = TypeVar("T")


class PrometheusError(RuntimeError):
    """The server failed, or its API answered an error (the message is the server's)."""


class WaitTimeout(PrometheusError, TimeoutError):
    """A bounded wait ran out."""


class Binaries(NamedTuple):
    prometheus: Path
    promtool: Path


class Sample(NamedTuple):
    labels: dict[str, str]
    value: float


class Alert(TypedDict):
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str
    value: float
    active_at: str


@dataclass(frozen=True)
class Series:
    """One series: its metric name, labels, and values over time.

    `samples` is either a function of the offset from `now` (seconds; None: no sample), sampled on the history grid
    and at every live scrape; or (offset, value) pairs, the history as given, the pair at offset 0 (if any) being the
    live value; or a constant.
    """

    metric: str
    labels: Mapping[str, str]
    samples: Samples

    def __post_init__(self) -> None:
        if not METRIC_NAME.fullmatch(self.metric):
            raise ValueError(f"invalid metric name {self.metric!r}")
        for name in self.labels:
            if not LABEL_NAME.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"invalid label name {name!r} on {self.metric}")
        object.__setattr__(self, "labels", dict(self.labels))
        if not callable(self.samples) and not isinstance(self.samples, int | float):
            pairs = tuple((float(t), float(v)) for t, v in self.samples)
            if any(b[0] <= a[0] for a, b in itertools.pairwise(pairs)):
                raise ValueError(f"{self}: sample offsets must increase")
            object.__setattr__(self, "samples", pairs)

    def __str__(self) -> str:
        return self.metric + _labels_text(self.labels)

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        return self.metric, tuple(sorted(self.labels.items()))

    def history(self, start: float, end: float, step: float) -> list[tuple[float, float]]:
        """(offset, value) pairs of the backfill: on the step grid in [start, end], or the given pairs up to end."""
        if isinstance(self.samples, tuple):
            late = [t for t, _ in self.samples if end < t < 0 or t > 0]
            if late:
                raise ValueError(f"{self}: history must end by offset {end:g} s; the live value is at offset 0")
            return [(t, v) for t, v in self.samples if t <= end]
        grid = [-k * step for k in range(math.ceil(-end / step), math.floor(-start / step) + 1)]
        points = ((t, self.value_at(t)) for t in reversed(grid))
        return [(t, v) for t, v in points if v is not None]

    def value_at(self, offset: float) -> float | None:
        """The value at `offset` from `now`: what the live set pushes at that time."""
        if callable(self.samples):
            value = self.samples(offset)
            return None if value is None else float(value)
        if isinstance(self.samples, tuple):
            return next((v for t, v in self.samples if t == 0), None) if offset >= 0 else None
        return float(self.samples)


def default_step(history: float) -> float:
    """The backfill's step: 30 s, or 60 s past 6 h, where promtool's time (it reads the file once per 2 h block)
    matters more than resolution."""
    return 30.0 if history <= 6 * 3600 else 60.0


def openmetrics(series: Iterable[Series], now: float, history: float, step: float, history_end: float) -> str:
    """The series' history as an OpenMetrics file for promtool, families contiguous, samples in time order.

    Every family is declared `unknown`: OpenMetrics' suffix rules (a counter named without `_total`, its samples
    with it) do not apply to it, so any metric name backfills as written.
    """
    lines: list[str] = []
    declared: set[str] = set()
    for one in sorted(series, key=lambda s: s.metric):
        points = one.history(-history, -history_end, step)
        if not points:
            continue
        if one.metric not in declared:
            declared.add(one.metric)
            lines.append(f"# TYPE {one.metric} unknown")
        name = str(one)
        lines.extend(f"{name} {_number(value)} {round(now + offset, 3):.3f}" for offset, value in points)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def openmetrics_blocks(
    series: Iterable[Series], now: float, history: float, step: float, history_end: float
) -> list[str]:
    """The history as one OpenMetrics file per 2 h TSDB block: promtool reads its whole input once per block it
    writes, so two weeks in one file cost 168 passes over all of it, and in block-sized files one."""
    blocks: dict[int, list[str]] = {}
    for one in sorted(series, key=lambda s: s.metric):
        name = str(one)
        for offset, value in one.history(-history, -history_end, step):
            stamp = round(now + offset, 3)
            blocks.setdefault(int(stamp * 1000) // BLOCK_MS, []).append(
                f"{one.metric}\0{name} {_number(value)} {stamp:.3f}"
            )
    files = []
    for _, lines in sorted(blocks.items()):
        out: list[str] = []
        declared: set[str] = set()
        for line in lines:
            metric, text = line.split("\0", 1)
            if metric not in declared:
                declared.add(metric)
                out.append(f"# TYPE {metric} unknown")
            out.append(text)
        files.append("\n".join([*out, "# EOF"]) + "\n")
    return files


def write_request(series: Iterable[Series], offset: float, stamp_ms: int, stale: Iterable[Series] = ()) -> bytes:
    """A remote-write request (snappy-compressed protobuf `prometheus.WriteRequest`) of the series' values at `offset`,
    all stamped `stamp_ms` (unix milliseconds), and a staleness marker for each of `stale`, as a scrape writes for a
    series that is gone."""
    body = bytearray()
    for one in series:
        value = one.value_at(offset)
        if value is not None:
            body += _field(1, _timeseries(one, _sample(struct.pack("<d", value), stamp_ms)))
    for one in stale:
        body += _field(1, _timeseries(one, _sample(STALE_NAN, stamp_ms)))
    return _snappy(bytes(body))


def _timeseries(one: Series, sample: bytes) -> bytes:
    return _label_pairs(one.key) + _field(2, sample)


@functools.lru_cache(maxsize=65536)
def _label_pairs(key: tuple[str, tuple[tuple[str, str], ...]]) -> bytes:
    """A series' labels as protobuf fields, `__name__` among them, sorted by name as the TSDB keeps them (encoded
    once: the live set is pushed every second)."""
    metric, labels = key
    pairs = sorted([*labels, ("__name__", metric)])
    return b"".join(_field(1, _field(1, name.encode()) + _field(2, value.encode())) for name, value in pairs)


def _sample(value: bytes, stamp_ms: int) -> bytes:
    return b"\x09" + value + b"\x10" + _varint(stamp_ms)  # double value = 1; int64 timestamp = 2


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append(number & 0x7F | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _snappy(data: bytes) -> bytes:
    """Snappy's block format with the data as one literal: valid for any decoder, no compression needed here."""
    if not data:
        return b"\x00"
    n = len(data) - 1
    if n < 60:
        tag = bytes([n << 2])
    else:
        size = (n.bit_length() + 7) // 8
        tag = bytes([(59 + size) << 2]) + n.to_bytes(size, "little")
    return _varint(len(data)) + tag + data


def compress_rules(
    rules: str | Mapping[str, Any], interval: str = COMPRESSED_INTERVAL, for_: str = COMPRESSED_FOR
) -> str:
    """The rules file with every group evaluated each `interval` and every non-zero `for:` (and `keep_firing_for:`)
    shortened to `for_`, so an alert goes pending → firing within seconds."""
    data = _rules_data(rules)
    for group in data["groups"]:
        group["interval"] = interval
        for rule in group.get("rules") or []:
            if "alert" not in rule:
                continue
            for key in ("for", "keep_firing_for"):
                if not _zero_duration(rule.get(key, "0")):
                    rule[key] = for_
    return yaml.safe_dump(data, sort_keys=False, width=1000)


def require_binaries() -> Binaries:
    """prometheus and promtool from .bin/: a failure in CI (CI=true) when missing, elsewhere a skip with the reason."""
    found = Binaries(BIN / "prometheus", BIN / "promtool")
    missing = [str(path) for path in found if not (path.is_file() and os.access(path, os.X_OK))]
    if not missing:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"{', '.join(missing)} missing: run tools/install-prometheus")
    pytest.skip(f"{', '.join(missing)} not found: run tools/install-prometheus to run the Prometheus server tests")


class LivePusher:
    """The live set, pushed to the server's remote-write receiver every PUSH_INTERVAL from a thread, and at once by
    `push()`. A series pushed before and absent now (left out of the set, or its function now None) gets a staleness
    marker."""

    def __init__(self, series: Sequence[Series], now: float) -> None:
        self.now = now
        self.url = ""
        self._lock = threading.Lock()
        self._pushed: dict[tuple, Series] = {}
        self._last_ms = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: PrometheusError | None = None
        self.set(series)

    @property
    def series(self) -> tuple[Series, ...]:
        with self._lock:
            return self._series

    def set(self, series: Sequence[Series]) -> None:
        _check_unique(series)
        with self._lock:
            self._series = tuple(series)

    def push(self) -> float:
        """Push the live set's values now; the time stamp (unix seconds) once the server has stored them."""
        with self._lock:
            stamp_ms = max(round(time.time() * 1000), self._last_ms + 1)
            offset = stamp_ms / 1000 - self.now
            present = {one.key: one for one in self._series if one.value_at(offset) is not None}
            gone = [one for key, one in self._pushed.items() if key not in present]
            body = write_request(self._series, offset, stamp_ms, gone)
            request = urllib.request.Request(
                f"{self.url}/api/v1/write",
                data=body,
                method="POST",
                headers={
                    "Content-Encoding": "snappy",
                    "Content-Type": "application/x-protobuf",
                    "X-Prometheus-Remote-Write-Version": "0.1.0",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT):
                    pass
            except urllib.error.HTTPError as error:
                message = error.read().decode(errors="replace").strip()
                raise PrometheusError(f"push refused: HTTP {error.code}: {message}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                raise PrometheusError(f"push to {self.url}: {error}") from None
            self._pushed = present
            self._last_ms = stamp_ms
            return stamp_ms / 1000

    def start(self, url: str, wait: bool = True) -> None:
        """Push every PUSH_INTERVAL until `close()`, the first push now (with `wait`, before returning); a failure in
        the thread ends the pushes and is kept in `error`."""
        self.url = url
        if wait:
            self.push()

        def run() -> None:
            delay = PUSH_INTERVAL if wait else 0.0
            while not self._stop.wait(delay):
                delay = PUSH_INTERVAL
                try:
                    self.push()
                except PrometheusError as error:
                    self.error = error
                    return

        self._thread = threading.Thread(target=run, name=f"push-{url}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT)


class PrometheusServer:
    """A running server and its client. Build it with `start_prometheus`; `stop()` (or leaving its `with`) ends it."""

    # The servers of this process that are running, whose log tails a failing test's report shows.
    running: set[PrometheusServer] = set()  # noqa: RUF012

    def __init__(self, workdir: Path, binaries: Binaries, now: float, groups: list[str], pusher: LivePusher) -> None:
        self.workdir = workdir
        self.binaries = binaries
        self.now = now
        self.groups = groups
        self.pusher = pusher
        self.log_path = workdir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not started"
        return self.process.pid

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"PrometheusServer({self.url or 'not started'}, {self.workdir})"

    # Life

    def _launch(self, tries: int = 3) -> None:
        for attempt in range(1, tries + 1):
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            argv = [
                str(self.binaries.prometheus),
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-remote-write-receiver",
            ]
            # The server gets SIGTERM if this process dies without its teardown (a killed pytest worker). The signal
            # follows the thread that started the server, so start servers from the test's own thread.
            setpriv = shutil.which("setpriv")
            if setpriv:
                argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.workdir
                )
            self.started_at = time.time()
            PrometheusServer.running.add(self)
            try:
                self.wait_until(self._ready, START_TIMEOUT, "the server to be ready (/-/ready)")
                return
            except PrometheusError:
                # Another process may take the free port between our probe and the server's bind.
                if attempt < tries and "address already in use" in self.log_tail():
                    self._stop_process()
                    continue
                raise

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=HTTP_TIMEOUT) as response:
                return response.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def stop(self) -> None:
        """Stop the pushes, then the server. Safe to call twice; `pid` stays readable."""
        try:
            self.pusher.close()
        finally:
            self._stop_process()

    def _stop_process(self) -> None:
        """SIGTERM by PID, SIGKILL if it still runs after 10 s."""
        process = self.process
        try:
            if process is not None and process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signal.SIGKILL)
                    process.wait(timeout=STOP_TIMEOUT)
        finally:
            PrometheusServer.running.discard(self)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _fail(self, message: str, error: type[PrometheusError] = PrometheusError) -> PrometheusError:
        return error(f"{message}\n--- {self.log_path} (last {LOG_TAIL_LINES} lines) ---\n{self.log_tail()}")

    # Client

    def api(self, path: str, **params: Any) -> Any:
        """GET /api/v1/<path>: its `data`; the server's error as PrometheusError."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            try:
                body = json.load(error)
            except ValueError:
                raise PrometheusError(f"GET {url}: HTTP {error.code} {error.reason}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            raise self._fail(f"GET {url}: {error}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType', 'error')}: {body.get('error')} (GET {url})")
        return body["data"]

    def query(self, expr: str, time: float | None = None) -> list[Sample]:
        """An instant query (at `time`, unix seconds; default now): its vector, or a scalar as one unlabelled sample."""
        data = self.api("query", query=expr, time=time, timeout=f"{HTTP_TIMEOUT:g}s")
        kind, result = data["resultType"], data["result"]
        if kind == "vector":
            return [Sample(item["metric"], float(item["value"][1])) for item in result]
        if kind == "scalar":
            return [Sample({}, float(result[1]))]
        raise PrometheusError(f"{expr!r} gives a {kind}; query_range reads series over time")

    def value(self, expr: str, time: float | None = None) -> float | None:
        """The single value of an instant query; None when it is empty, an error when it has several series."""
        samples = self.query(expr, time)
        if len(samples) > 1:
            raise PrometheusError(f"{expr!r} gives {len(samples)} series, not one: {samples}")
        return samples[0].value if samples else None

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[tuple[dict[str, str], list]]:
        """A range query: (labels, [(unix seconds, value), ...]) per series."""
        data = self.api("query_range", query=expr, start=start, end=end, step=step, timeout=f"{HTTP_TIMEOUT:g}s")
        return [(item["metric"], [(float(t), float(v)) for t, v in item["values"]]) for item in data["result"]]

    def alerts(self, name: str | None = None) -> list[Alert]:
        """The active alerts (pending and firing) from /api/v1/alerts, only those called `name` if given."""
        found = [
            Alert(
                labels=item["labels"],
                annotations=item.get("annotations", {}),
                state=item["state"],
                value=float(item["value"]),
                active_at=item.get("activeAt", ""),
            )
            for item in self.api("alerts")["alerts"]
        ]
        return [a for a in found if name is None or a["labels"].get("alertname") == name]

    def rules(self) -> list[dict[str, Any]]:
        """The rule groups as /api/v1/rules gives them: name, file, interval, lastEvaluation, rules (health, ...)."""
        return self.api("rules")["groups"]

    def wait_until(
        self, predicate: Callable[[], T], timeout: float = WAIT_TIMEOUT, what: str = "", interval: float = 0.1
    ) -> T:
        """Poll `predicate` until it returns something truthy, and return that; WaitTimeout after `timeout` s, or
        PrometheusError at once if the server has exited."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise self._fail(f"prometheus exited (code {code}) while waiting for {what or predicate}")
            if self.pusher.error is not None:
                raise self._fail(
                    f"the live set's pushes stopped while waiting for {what or predicate}: {self.pusher.error}"
                )
            last = predicate()
            if last:
                return last
            if time.monotonic() >= deadline:
                raise self._fail(
                    f"timed out after {timeout:g} s waiting for {what or predicate}; last: {last!r:.500}", WaitTimeout
                )
            time.sleep(interval)

    def wait_for_rules_evaluated(self, after: float | None = None, timeout: float = WAIT_TIMEOUT) -> list[dict]:
        """Wait until every group of the rules file has been evaluated entirely after `after` (default: now), every
        rule healthy; the groups. A rule's error fails at once with its lastError."""
        after = time.time() if after is None else after
        if not self.groups:
            return []

        def evaluated() -> list[dict] | None:
            groups = self.rules()
            missing = sorted(set(self.groups) - {g["name"] for g in groups})
            if missing:
                raise self._fail(f"rule groups not loaded: {missing}")
            for group in groups:
                for rule in group["rules"]:
                    if rule["health"] == "err" or rule.get("lastError"):
                        raise self._fail(f"rule {rule['name']} in group {group['name']}: {rule.get('lastError')}")
                # A group queries at its scheduled tick, up to one interval before its wall-clock start: starting an
                # interval after `after` means it saw everything stored by then.
                if _unix(group["lastEvaluation"]) < after + group["interval"]:
                    return None
                if any(rule["health"] != "ok" for rule in group["rules"]):
                    return None
            return groups

        return self.wait_until(evaluated, timeout, f"every rule group evaluated after {after:.3f}")

    @property
    def live(self) -> tuple[Series, ...]:
        """The live set pushed now."""
        return self.pusher.series

    def set_live(self, series: Sequence[Series]) -> float:
        """Replace the live set: these series are pushed from now on and any other is marked stale; returns once the
        server has stored the new set, with its time stamp."""
        self.pusher.set(series)
        return self.pusher.push()


def start_prometheus(
    workdir: Path,
    *,
    rules: str | Mapping[str, Any] | None = None,
    series: Sequence[Series] = (),
    live: Sequence[Series] | None = None,
    history: float = 3600.0,
    step: float | None = None,
    history_end: float = HISTORY_END,
    compress: bool = True,
    wait: bool = True,
    binaries: Binaries | None = None,
) -> PrometheusServer:
    """Backfill `series` over [now - history, now - history_end], load `rules` (time compressed unless `compress` is
    False), start the server, push `live` (default: `series`) and keep pushing it; with `wait`, return once every rule
    group has run after the first push. Stopped again if the start fails."""
    binaries = binaries or require_binaries()
    _check_unique(series)
    if not 0 < history_end < history:
        raise ValueError(f"need 0 < history_end ({history_end}) < history ({history})")
    step = step or default_step(history)
    workdir.mkdir(parents=True, exist_ok=True)
    groups: list[str] = []
    rule_files: list[str] = []
    if rules is not None:
        text = compress_rules(rules) if compress else _rules_text(rules)
        groups = [g["name"] for g in yaml.safe_load(text)["groups"]]
        (workdir / "rules.yml").write_text(text)
        rule_files = [str(workdir / "rules.yml")]

    now = round(time.time(), 3)
    (workdir / "tsdb").mkdir(exist_ok=True)
    if history <= LONG_HISTORY:
        chunks = [openmetrics(series, now, history, step, history_end)]
    else:
        chunks = openmetrics_blocks(series, now, history, step, history_end)
    for index, data in enumerate(chunks):
        if data.strip() == "# EOF":
            continue
        name = f"history-{index}.om"
        (workdir / name).write_text(data)
        backfill = subprocess.run(
            [str(binaries.promtool), "tsdb", "create-blocks-from", "openmetrics", "-q", name, "tsdb"],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if backfill.returncode != 0:
            raise PrometheusError(f"promtool backfill failed:\n{backfill.stdout}\n{backfill.stderr}")
        (workdir / name).unlink()

    server = PrometheusServer(workdir, binaries, now, groups, LivePusher(series if live is None else live, now))
    try:
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(_config(rule_files)))
        server._launch()
        server.pusher.start(server.url, wait=wait)
        if wait and groups:
            server.wait_for_rules_evaluated(after=time.time())
    except BaseException:
        server.stop()
        raise
    return server


def _config(rule_files: list[str]) -> dict[str, Any]:
    """The server's configuration: the rules, evaluated every compressed interval unless a group sets its own; no
    scrape (the live set is pushed)."""
    return {"global": {"evaluation_interval": COMPRESSED_INTERVAL}, "rule_files": rule_files}


@contextlib.contextmanager
def prometheus_factory(root: Path, binaries: Binaries | None = None) -> Iterator[Callable[..., PrometheusServer]]:
    """A `start_prometheus` whose servers live in subdirectories of `root` and all stop when the block ends, however
    it ends: what the `prometheus_server` fixture yields."""
    with contextlib.ExitStack() as stack:
        numbers = itertools.count(1)

        def start(**options: Any) -> PrometheusServer:
            server = start_prometheus(root / f"prometheus-{next(numbers)}", binaries=binaries, **options)
            stack.callback(server.stop)
            return server

        yield start


def pid_running(pid: int) -> bool:
    """Whether a process with this PID exists and has not been reaped (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _check_unique(series: Iterable[Series]) -> None:
    seen: set = set()
    for one in series:
        if one.key in seen:
            raise ValueError(f"series {one} given twice")
        seen.add(one.key)


def _labels_text(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in sorted(labels.items())) + "}"


def _escape(value: str) -> str:
    """A label value as both text formats quote it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _rules_data(rules: str | Mapping[str, Any]) -> dict[str, Any]:
    data = yaml.safe_load(rules) if isinstance(rules, str) else json.loads(json.dumps(rules))
    if not isinstance(data, dict) or not isinstance(data.get("groups"), list):
        raise ValueError("a rules file is a mapping with a `groups:` list")
    return data


def _rules_text(rules: str | Mapping[str, Any]) -> str:
    return rules if isinstance(rules, str) else yaml.safe_dump(_rules_data(rules), sort_keys=False, width=1000)


def _zero_duration(text: Any) -> bool:
    text = str(text).strip()
    parts = DURATION_PART.findall(text)
    if text != "0" and "".join(n + unit for n, unit in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return all(int(n) == 0 for n, _ in parts)


def _unix(stamp: str) -> float:
    """RFC 3339 with nanoseconds, as Go writes it, to unix seconds (Python's parser stops at microseconds)."""
    match = RFC3339.fullmatch(stamp)
    if not match:
        raise ValueError(f"not an RFC 3339 time: {stamp!r}")
    base, fraction, zone = match.groups()
    whole = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone)).timestamp()
    return whole + (float("0." + fraction) if fraction else 0.0)
