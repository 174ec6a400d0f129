"""The Prometheus server harness itself (tests/prometheus_server.py): backfilled history and live scrapes join into one
series, rules run over both with time compressed, a series left out of the live set goes stale, and the server is
gone after its teardown, even a failing one or one that ignores SIGTERM.

One server with 26 h of history serves the tests of history, rules and staleness (each changes only its own series'
live value); the others start their own, quick ones.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import time

import pytest
import yaml

from tests import prometheus_server as harness
from tests.prometheus_server import (
    COMPRESSED_FOR,
    COMPRESSED_FOR_SECONDS,
    COMPRESSED_INTERVAL,
    COMPRESSED_INTERVAL_SECONDS,
    PrometheusError,
    Series,
    compress_rules,
    openmetrics,
    pid_running,
    prometheus_factory,
    start_prometheus,
)

HOUR = 3600.0
STUDY = {"namespace": "study", "pod": "backend-0"}
# Scraped with their own job and instance, as kube-prometheus-stack's targets are; the memory ratio has neither.
SESSIONS = Series(
    "hyperstudy_sessions_active",
    {**STUDY, "job": "backend", "instance": "10.0.0.7:8080"},
    lambda t: 10.0 if t < -24 * HOUR else 5.0 if t < -HOUR else 4.0 if t < 0 else 6.0,
)
RESTARTS = Series(
    "kube_pod_container_status_restarts_total",
    {**STUDY, "container": "backend", "job": "kube-state-metrics", "instance": "10.0.0.9:8080"},
    lambda t: 500.0 + t / 60,  # one restart a minute, history and live alike
)
MEMORY = Series("hyperstudy_memory_ratio", STUDY, 0.5)
GONE = Series(SESSIONS.metric, {**SESSIONS.labels, "pod": "backend-1", "instance": "10.0.0.8:8080"}, 2.0)

RULES = textwrap.dedent(
    """
    groups:
    - name: restarts
      interval: 1m
      rules:
      - record: pod:restarts:increase10m
        expr: increase(kube_pod_container_status_restarts_total[10m])
    - name: memory
      rules:
      - alert: MemoryHigh
        expr: hyperstudy_memory_ratio > 0.9
        for: 5m
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.pod }} in {{ $labels.namespace }} at {{ $value | humanizePercentage }} of its limit"
    """
)


@pytest.fixture(scope="module")
def server(prometheus_binaries, tmp_path_factory):
    with start_prometheus(
        tmp_path_factory.mktemp("prometheus"),
        rules=RULES,
        series=[SESSIONS, RESTARTS, MEMORY, GONE],
        history=26 * HOUR,
        binaries=prometheus_binaries,
    ) as running:
        yield running


def test_backfilled_gauge_is_queryable_in_history_and_live_now(server):
    now = server.now
    sessions = str(SESSIONS)
    assert server.value(sessions, time=now - 25 * HOUR) == 10
    assert server.value(sessions, time=now - 2 * HOUR) == 5
    assert server.value(sessions, time=now - 60) == 4
    (live,) = server.query(sessions)
    assert live.value == 6
    assert live.labels == {"__name__": SESSIONS.metric, **SESSIONS.labels}
    # One series end to end: the scrape kept the series' own job and instance.
    assert server.value('count(count_over_time(hyperstudy_sessions_active{pod="backend-0"}[26h]))') == 1


def test_recording_rule_over_a_counter_joins_history_and_live(server):
    (record,) = server.query("pod:restarts:increase10m")
    assert record.labels == {"__name__": "pod:restarts:increase10m", **RESTARTS.labels}
    # Ten restarts in ten minutes; extrapolation to the window's edges moves it by less than one 60 s history step.
    assert record.value == pytest.approx(10, abs=1)
    window = "kube_pod_container_status_restarts_total[10m]"
    assert server.value(f"resets({window})") == 0
    assert server.value("timestamp(kube_pod_container_status_restarts_total)") > server.now
    # A labelless series (no job, no instance) keeps exactly its labels too.
    assert server.query("hyperstudy_memory_ratio")[0].labels == {"__name__": MEMORY.metric, **STUDY}


def test_compressed_alert_goes_pending_then_firing_with_its_annotations(server):
    assert server.alerts("MemoryHigh") == []

    def firing():
        return [a for a in server.alerts("MemoryHigh") if a["state"] == "firing"]

    changed = server.set_live(
        [*(s for s in server.live if s.key != MEMORY.key), dataclasses.replace(MEMORY, samples=0.97)]
    )
    (alert,) = server.wait_until(firing, timeout=10, what="MemoryHigh firing")
    # The rule engine's own record of the states (ALERTS, one series per state), not a poll that a short pending
    # state could slip through: pending first, then firing.
    states = server.query_range('ALERTS{alertname="MemoryHigh"}', changed - 1, time.time(), 0.05)
    since = {labels["alertstate"]: points[0][0] for labels, points in states}
    assert "pending" in since
    assert since["pending"] < since["firing"]
    assert alert["labels"] == {"alertname": "MemoryHigh", "severity": "warning", **STUDY}
    assert alert["annotations"]["summary"] == "backend-0 in study at 97% of its limit"
    assert alert["value"] == 0.97
    (rule,) = [r for g in server.rules() if g["name"] == "memory" for r in g["rules"]]
    assert rule["duration"] == COMPRESSED_FOR_SECONDS  # `for: 5m`, compressed


def test_series_left_out_of_the_live_set_goes_stale(server):
    assert server.value(str(GONE)) == 2
    server.set_live([s for s in server.live if s.key != GONE.key])
    # Gone at once, not after the 5 m lookback: the push wrote a stale marker, as a scrape does.
    assert server.query(str(GONE)) == []
    assert server.value(str(GONE), time=server.now - 60) == 2
    assert server.value(SESSIONS.metric) == 6


def test_teardown_stops_the_server_even_when_the_test_fails(prometheus_binaries, tmp_path):
    failing = pytest.raises(RuntimeError, match="the test failed")
    with failing, prometheus_factory(tmp_path, prometheus_binaries) as start:
        server = start(wait=False)
        pid = server.pid
        assert pid_running(pid)
        assert server.value("vector(1)") == 1
        raise RuntimeError("the test failed")
    assert not pid_running(pid)


# A stand-in for the server that answers /-/ready and ignores SIGTERM: stop() must fall back to SIGKILL.
STUBBORN = """\
import http.server, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
port = int(next(a for a in sys.argv if a.startswith("--web.listen-address=")).rsplit(":", 1)[1])
class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever()
"""


def test_a_server_ignoring_sigterm_is_killed(prometheus_binaries, tmp_path, monkeypatch):
    fake = tmp_path / "prometheus"
    fake.write_text(f"#!{sys.executable}\n{STUBBORN}")
    fake.chmod(0o755)
    monkeypatch.setattr(harness, "STOP_TIMEOUT", 0.5)
    server = start_prometheus(tmp_path / "run", binaries=prometheus_binaries._replace(prometheus=fake), wait=False)
    pid = server.pid
    started = time.monotonic()
    server.stop()
    assert not pid_running(pid)
    assert 0.5 <= time.monotonic() - started < 5
    assert server.process.returncode == -9


def test_rule_errors_and_bad_queries_raise_with_the_servers_message(prometheus_server):
    rules = {
        "groups": [
            {
                "name": "clash",
                "rules": [{"record": "clash", "expr": '{__name__=~"a|b"}'}],
            }
        ]
    }
    server = prometheus_server(rules=rules, series=[Series("a", {}, 1.0), Series("b", {}, 2.0)], wait=False)
    with pytest.raises(PrometheusError, match="same labelset"):
        server.wait_for_rules_evaluated()
    with pytest.raises(PrometheusError, match="parse error"):
        server.query("sum(")


def test_a_rules_file_the_server_refuses_fails_the_start_with_its_log(prometheus_server):
    rules = {"groups": [{"name": "broken", "rules": [{"record": "r", "expr": "sum("}]}]}
    with pytest.raises(PrometheusError, match=r"(?s)prometheus exited.*unclosed left parenthesis"):
        prometheus_server(rules=rules, wait=False)


def test_rules_load_unmodified_without_compression(prometheus_server):
    server = prometheus_server(rules=RULES, compress=False, wait=False)
    groups = {g["name"]: g for g in server.wait_until(server.rules, what="rules loaded")}
    assert groups["restarts"]["interval"] == 60
    assert groups["memory"]["interval"] == COMPRESSED_INTERVAL_SECONDS  # the harness's global evaluation_interval
    assert groups["memory"]["rules"][0]["duration"] == 300


def test_compression_shortens_only_what_takes_time():
    rules = {
        "groups": [
            {
                "name": "g",
                "interval": "5m",
                "rules": [
                    {"alert": "Slow", "expr": "up == 0", "for": "1h30m", "keep_firing_for": "10m"},
                    {"alert": "Now", "expr": "up == 0", "for": "0s"},
                    {"alert": "Bare", "expr": "up == 0"},
                    {"record": "r", "expr": "up"},
                ],
            }
        ]
    }
    (group,) = yaml.safe_load(compress_rules(rules))["groups"]
    assert group["interval"] == COMPRESSED_INTERVAL
    slow, now, bare, record = group["rules"]
    assert (slow["for"], slow["keep_firing_for"]) == (COMPRESSED_FOR, COMPRESSED_FOR)
    assert now["for"] == "0s"
    assert "for" not in bare and "for" not in record
    assert yaml.safe_load(compress_rules(rules, for_="7s"))["groups"][0]["rules"][0]["for"] == "7s"


def test_history_is_written_as_openmetrics_promtool_reads(prometheus_binaries, tmp_path):
    series = [
        Series("x_total", {"v": 'a"b\\c\nd'}, lambda t: None if -700 < t < -500 else 1.5),
        Series("y", {}, [(-120.0, 1.0), (0.0, 2.0)]),
    ]
    text = openmetrics(series, now=1000.0, history=900, step=300, history_end=30)
    assert text == textwrap.dedent(
        """\
        # TYPE x_total unknown
        x_total{v="a\\"b\\\\c\\nd"} 1.5 100.000
        x_total{v="a\\"b\\\\c\\nd"} 1.5 700.000
        # TYPE y unknown
        y 1.0 880.000
        # EOF
        """
    )
    (tmp_path / "history.om").write_text(text)
    backfill = subprocess.run(
        [prometheus_binaries.promtool, "tsdb", "create-blocks-from", "openmetrics", "history.om", "tsdb"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert backfill.returncode == 0, backfill.stderr
    # One block: ULID, min and max time, duration, then its samples, chunks and series.
    (block,) = [line.split() for line in backfill.stdout.splitlines()[1:]]
    assert (block[4], block[6]) == ("3", "2")
    with pytest.raises(ValueError, match="history must end"):
        openmetrics([Series("z", {}, [(-10.0, 1.0)])], now=0, history=900, step=30, history_end=30)
    with pytest.raises(ValueError, match="given twice"):
        harness._check_unique([series[1], Series("y", {}, 3.0)])


def test_missing_binaries_fail_in_ci_and_skip_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "BIN", tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="install-prometheus"):
        harness.require_binaries()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="install-prometheus"):
        harness.require_binaries()
