"""`python -m sizing fit` and `status` against a real Prometheus server (Debian's build, tests/prometheus_server.py).

fit: three days of two backend pods, generated from known coefficients (tests/sizing/load_history.py), backfilled
with promtool at the 30 s step `fit` reads at, then read back over the HTTP API; the cAdvisor noise the rules drop
(the pod cgroup, the pause container) is in the data too. status, without this project's rules loaded: the known
live state of two pods, one above the near-limit threshold. (tests/monitoring/test_rules_prometheus.py
checks status against the rules' own records and alerts on its shared two-stack server.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sizing.config.capacity import UserMix
from sizing.config.loader import load_stack
from sizing.core.capacity import slots
from sizing.core.model import ROLES
from sizing.core.quantity import MIB_BYTES
from sizing.observe.contract import CONNECTED_USERS, LAST_TERMINATED, LIMITS, PROCESS_RSS, RESTARTS, WORKING_SET
from sizing.plan.build import build_plan
from tests.prometheus_server import Series
from tests.sizing.load_history import TRUE, PodHistory, pod_history
from tests.sizing.stacks import ROOT, assert_bad_input, run_cli

# Real programs (Debian's prometheus, promtool, alertmanager): the artifact layer, outside `make unit`.
pytestmark = pytest.mark.programs

DAYS = 3
STEP = 30.0
HISTORY = DAYS * 86400.0
TOLERANCE_MIB = 0.5  # as stated in tests/sizing/test_calibration.py and the README
KSM = {"job": "kube-state-metrics", "instance": "10.52.0.7:8080"}


@pytest.fixture(scope="module")
def prod():
    config = load_stack("prod", ROOT)
    return config, build_plan(config, "prod")


def _cadvisor(namespace: str, pod: str, working_set: Callable[[float], float | None]) -> list[Series]:
    """A backend pod's working set as the kubelet exports it: its container (scraped twice), plus the pod cgroup and
    the pause container, which `fit` must leave out or it counts the pod twice."""
    base = {"job": "kubelet", "metrics_path": "/metrics/cadvisor", "namespace": namespace, "pod": pod}

    def cgroup(t: float) -> float | None:
        value = working_set(t)
        return None if value is None else value + 600 * 1024

    return [
        Series(WORKING_SET, {**base, "container": "backend"}, working_set),
        # The same container scraped a second time (a second kubelet job): one value, not two.
        Series(WORKING_SET, {**base, "job": "kubelet-cadvisor", "container": "backend"}, working_set),
        Series(WORKING_SET, {**base, "container": ""}, cgroup),
        Series(WORKING_SET, {**base, "container": "POD"}, 600 * 1024),
    ]


def _app(namespace: str, pod: str, users: dict[str, Callable[[float], float | None]], rss: float) -> list[Series]:
    labels = {"job": f"{namespace}/backend", "namespace": namespace, "pod": pod, "container": "backend"}
    return [
        *(Series(CONNECTED_USERS, {**labels, "role": role}, users[role]) for role in ROLES),
        Series(PROCESS_RSS, labels, rss),
    ]


def _history_series(namespace: str, history: PodHistory) -> list[Series]:
    points = len(history.working_set_mib)

    def at(values: list[float], scale: float) -> Callable[[float], float]:
        # Offset t (seconds from now, ≤ 0 in the history) → the grid point; the live value is the newest point.
        return lambda t: values[max(0, min(points - 1, round((t + HISTORY) / STEP)))] * scale

    users = {role: at(history.users[role], 1) for role in ROLES}
    return [
        *_cadvisor(namespace, history.pod, at(history.working_set_mib, MIB_BYTES)),
        *_app(namespace, history.pod, users, 150 * MIB_BYTES),
    ]


@pytest.fixture
def history_server(prometheus_server, prod):
    config, _ = prod
    points = int(HISTORY / STEP) + 1
    histories = [pod_history(f"backend-{i}", points, STEP, seed=40 + i) for i in range(2)]
    series = [s for h in histories for s in _history_series(config.kubernetes.namespace, h)]
    return prometheus_server(series=series, history=HISTORY, step=STEP)


def _fit(*args: str) -> dict[str, Any]:
    result = run_cli("fit", "--stack", "prod", "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_fit_recovers_the_true_coefficients_from_a_real_server(history_server, tmp_path):
    saved = tmp_path / "export.json"
    data = _fit("--prometheus", history_server.url, "--since", f"{DAYS}d", "--save", str(saved))
    truth = {"base_mib": TRUE["base_mib"], **TRUE["per_role_mib"]}
    fitted = {"base_mib": data["coefficients"]["base_mib"], **data["coefficients"]["per_role_mib"]}
    intervals = {"base_mib": data["intervals"]["base_mib"], **data["intervals"]["per_role_mib"]}
    # Which backfilled sample each 30 s point reads depends on the server's clock, so whether a 95 % interval holds
    # the truth varies from run to run (one in twenty per coefficient): that is tested over 40 histories offline
    # (test_calibration.py). Here: the stated tolerance, and intervals that hold the fit and are narrower than it.
    for name, value in fitted.items():
        assert abs(value - truth[name]) <= TOLERANCE_MIB, (name, value, truth[name])
        low, high = intervals[name]
        assert low <= value <= high and high - low <= TOLERANCE_MIB, (name, intervals[name])
    # Every 30 s point of three days, of two pods: the step is the data's, nothing is read twice or skipped.
    expected = 2 * HISTORY / STEP
    assert 0.99 * expected <= data["samples"] <= expected + 2 * 60
    assert data["pods"] == 2 and data["days"] == pytest.approx(DAYS, abs=0.01)
    assert data["fitted"] == {"base_mib": 120, "per_role_mib": {k: round(v) for k, v in TRUE["per_role_mib"].items()}}

    # The export reads back offline to the same fit.
    export = json.loads(saved.read_text())
    assert export["step"] == STEP and set(export["results"]) == {"working_set", *ROLES}
    assert _fit("--from", str(saved)) == data


def test_fit_refusals_on_a_real_server(prometheus_server):
    """The stack's pods are not on this server (another namespace): too few samples. A path that is not the API
    (a 404) and a closed port are the connection's errors. Each is one line, exit 2."""
    server = prometheus_server(series=_cadvisor("elsewhere", "backend-0", lambda t: 200 * MIB_BYTES), history=3600.0)
    result = run_cli("fit", "--stack", "prod", "--prometheus", server.url, "--since", "1h")
    assert "too few samples to fit (0;" in assert_bad_input(result, "capacity.formula")
    for url in (server.url + "/no-such-prefix", "http://127.0.0.1:1"):
        result = run_cli("fit", "--stack", "prod", "--prometheus", url, "--since", "1h")
        assert_bad_input(result, "--prometheus")


# --- status, without the rules -------------------------------------------------------------------------------------

KILLED_AT = -3600.0
LIVE_LIMIT_MIB = 600  # kube-state-metrics reports it: someone raised the limit by hand; status shows what runs


def _live(value: float) -> Callable[[float], float]:
    return lambda t: value


@pytest.fixture
def live_state(prod):
    """backend-0: a medium experiment, its working set at 95 % of the limit kube-state-metrics reports;
    backend-1: a small one, well below the plan's limit (no kube-state-metrics series for it); backend-0 was
    OOM-killed an hour ago."""
    config, plan = prod
    small, medium = config.capacity.shapes["small"], config.capacity.shapes["medium"]
    pods = {
        "backend-0": {"users": medium, "working_set_mib": 0.95 * LIVE_LIMIT_MIB, "limit_mib": LIVE_LIMIT_MIB},
        "backend-1": {"users": small, "working_set_mib": 180.0, "limit_mib": None},
    }
    return config, plan, pods


@pytest.fixture
def status_server(prometheus_server, live_state):
    config, _, pods = live_state
    ns = config.kubernetes.namespace
    series: list[Series] = []
    for pod, state in pods.items():
        mix: UserMix = state["users"]
        users = {role: _live(getattr(mix, role)) for role in ROLES}
        series += _cadvisor(ns, pod, _live(state["working_set_mib"] * MIB_BYTES))
        series += _app(ns, pod, users, 150 * MIB_BYTES)
    ksm = {**KSM, "namespace": ns, "pod": "backend-0", "container": "backend"}
    series += [
        Series(LIMITS, {**ksm, "node": "gke-a", "resource": "memory", "unit": "byte"}, LIVE_LIMIT_MIB * MIB_BYTES),
        Series(RESTARTS, ksm, lambda t: 0.0 if t < KILLED_AT else 1.0),
        Series(LAST_TERMINATED, {**ksm, "reason": "OOMKilled"}, lambda t: None if t < KILLED_AT else 1.0),
    ]
    return prometheus_server(series=series, history=2 * 3600.0)


def test_status_reports_the_known_live_state(status_server, live_state):
    config, plan, pods = live_state
    result = run_cli("status", "--stack", "prod", "--prometheus", status_server.url, "--json")
    assert result.returncode == 1, result.stderr  # backend-0 is above the near-limit threshold
    data = json.loads(result.stdout)
    formula, threshold = config.capacity.formula, config.monitoring.alerts.memory_near_limit.threshold
    plan_limit = plan.workloads["backend"].pod_memory_limit_mib
    by_pod = {p["pod"]: p for p in data["pods"]}
    assert set(by_pod) == set(pods)
    limits = {}
    for name, state in pods.items():
        got = by_pod[name]
        limits[name] = state["limit_mib"] or plan_limit
        assert got["working_set_mib"] == pytest.approx(state["working_set_mib"], abs=0.05)
        assert got["predicted_mib"] == formula.memory_mib(state["users"])
        assert got["limit_mib"] == limits[name]
        assert got["users"] == {role: getattr(state["users"], role) for role in ROLES}
    assert by_pod["backend-0"]["limit_source"] == "kube-state-metrics" and by_pod["backend-1"]["limit_source"] == "plan"
    assert [p["pod"] for p in data["pods"] if p["near_limit"]] == ["backend-0"]
    expected_slots = {
        shape: sum(slots(limits[p], s["working_set_mib"], formula.users_mib(mix), threshold) for p, s in pods.items())
        for shape, mix in config.capacity.shapes.items()
    }
    assert data["slots"] == expected_slots
    assert expected_slots["small"] > 0  # backend-1 has room: the check is not of zeros
    assert data["oom_kills_24h"] == 1
    assert data["firing_alerts"] == []  # no rules loaded: nothing fires, and nothing breaks

    text = run_cli("status", "--stack", "prod", "--prometheus", status_server.url)
    assert text.returncode == 1
    assert "NEAR LIMIT" in text.stdout and "OOM kills in the last 24 h: 1" in text.stdout


def test_status_exits_3_when_no_formula_sized_pod_reports(prometheus_server, prod):
    """A Prometheus that scrapes kube-state-metrics but no backend (the app's series and cAdvisor's missing): the
    slots it would print are not known to be free, so it exits 3, which no script gating on 0 (or on 1, near the
    limit) takes as room for an experiment."""
    config, _ = prod
    ksm = {**KSM, "namespace": config.kubernetes.namespace, "pod": "backend-0", "container": "backend"}
    limit = Series(LIMITS, {**ksm, "node": "gke-a", "resource": "memory", "unit": "byte"}, LIVE_LIMIT_MIB * MIB_BYTES)
    server = prometheus_server(series=[limit], history=3600.0)
    result = run_cli("status", "--stack", "prod", "--prometheus", server.url, "--json")
    assert (result.returncode, result.stderr) == (3, "")
    assert json.loads(result.stdout)["pods"] == []
    text = run_cli("status", "--stack", "prod", "--prometheus", server.url)
    assert text.returncode == 3 and "no formula-sized pod reports a working set: monitoring is blind" in text.stdout


def test_status_needs_a_reachable_server():
    assert_bad_input(run_cli("status", "--stack", "prod", "--prometheus", "http://127.0.0.1:1"), "--prometheus")


def test_status_credentials_come_from_the_environment(status_server, monkeypatch: pytest.MonkeyPatch):
    """A token and basic auth at once is ambiguous: refused by name before any request."""
    monkeypatch.setenv("PROMETHEUS_BEARER_TOKEN", "t0ken")
    monkeypatch.setenv("PROMETHEUS_USERNAME", "ops")
    monkeypatch.setenv("PROMETHEUS_PASSWORD", "pw")
    result = run_cli("status", "--stack", "prod", "--prometheus", status_server.url)
    line = assert_bad_input(result, "PROMETHEUS_BEARER_TOKEN")
    assert "t0ken" not in line and "pw" not in line
