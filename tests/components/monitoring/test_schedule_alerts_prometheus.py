"""The scheduled windows' alerts on a real Prometheus server (Debian's 2.42, tests/prometheus_server.py), read over the
HTTP API: HyperStudyScheduledCapacityNotReady and HyperStudyScheduledScalingFailed of a staging-like stack with
planned windows (`scheduled_config` in conftest.py: `other_config` on 2 backend replicas, the weekly teaching lab's
scale-up setting 3).

The stack's whole rules file is loaded, time compressed (every `for:` becomes 2 s, so "longer than the windows'
shortest lead" is "longer than 2 s" here; the real pending time is proven by the promtool cases and test_rules.py).
kube-state-metrics is scraped twice, under kube-prometheus-stack's job and another (two replicas or two jobs), with
the series and labels kube-state-metrics 2.x exports, so a rule that forgets to deduplicate fails here with
Prometheus' own error. Cases move the live target between states with `set_live`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest

from components.monitoring import names, rules
from sizing.config import StackConfig
from sizing.plan import Plan
from tests.prometheus_server import COMPRESSED_FOR, Alert, PrometheusServer, Series

NOT_READY = names.ALERT_SCHEDULED_CAPACITY_NOT_READY
SCALING_FAILED = names.ALERT_SCHEDULED_SCALING_FAILED
# Two kube-state-metrics scrapes of the same objects: kube-prometheus-stack's, and a second replica's.
KSM_SCRAPES = (
    {"job": "kube-state-metrics", "instance": "10.52.0.7:8080"},
    {"job": "ksm-replica", "instance": "10.52.0.8:8080"},
)
OTHER_NS = "other-stack"
# A CronJob's runs are named `<cronjob>-<minutes since the epoch>`.
LAB_UP = "backend-teaching-lab-up-29412345"
OPEN_DAY_UP = "backend-open-day-up-29412400"
LAB_DOWN = "backend-teaching-lab-down-29411000"
# Seconds past the compressed `for:` (2 s) an alert is given to show itself, or to stay silent.
BEYOND_FOR = 4.0


def ksm(metric: str, value: float, **labels: str) -> list[Series]:
    """A kube-state-metrics series as both scrapes export it, its value served live (no history)."""
    return [Series(metric, {**scrape, **labels}, ((0.0, float(value)),)) for scrape in KSM_SCRAPES]


def statefulset(name: str, desired: int, ready: int, namespace: str) -> list[Series]:
    own = {"namespace": namespace, "statefulset": name}
    return [*ksm(names.STATEFULSET_REPLICAS, desired, **own), *ksm(names.STATEFULSET_READY, ready, **own)]


def job(name: str, namespace: str, *, failed: bool = False, pods_failed: int = 0, succeeded: int = 0) -> list[Series]:
    """A Job as kube-state-metrics 2.x exports it (internal/store/job.go): `kube_job_failed` per condition status
    once the Job has a Failed condition, `kube_job_status_failed` per known reason (0/1) once it failed, else one
    series counting the failed pods."""
    own = {"namespace": namespace, "job_name": name}
    series = [*ksm(names.JOB_PODS_SUCCEEDED, succeeded, **own)]
    if failed:
        for status in ("true", "false", "unknown"):
            series += ksm(names.JOB_FAILED, 1 if status == "true" else 0, condition=status, **own)
        for reason in ("BackoffLimitExceeded", "DeadlineExceeded", "Evicted"):
            series += ksm(names.JOB_PODS_FAILED, 1 if reason == "DeadlineExceeded" else 0, reason=reason, **own)
    else:
        series += ksm(names.JOB_PODS_FAILED, pods_failed, **own)
    return series


@pytest.fixture(scope="module")
def stack(scheduled_stack_config: StackConfig, scheduled_stack_plan: Plan) -> tuple[StackConfig, Plan]:
    schedule = scheduled_stack_plan.schedule
    assert schedule is not None and schedule.workload == "backend" and schedule.base_replicas == 2
    assert {w.name: w.backend_replicas for w in schedule.windows}["teaching-lab"] == 3
    return scheduled_stack_config, scheduled_stack_plan


def settled(server: PrometheusServer, beyond: float = BEYOND_FOR) -> None:
    """Every group evaluated `beyond` seconds after now: longer than any compressed `for:` (every rule healthy)."""
    server.wait_for_rules_evaluated(after=time.time() + beyond, timeout=beyond + 15)


def ours(server: PrometheusServer, name: str, namespace: str) -> list[Alert]:
    return [a for a in server.alerts(name) if a["labels"].get("namespace") == namespace]


def firing(server: PrometheusServer, name: str, **labels: str) -> Alert:
    def found() -> list[Alert]:
        return [
            a
            for a in server.alerts(name)
            if a["state"] == "firing" and all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    (alert,) = server.wait_until(found, what=f"{name} {labels} firing")
    return alert


def check_metadata(alert: Alert, config: StackConfig, plan: Plan, labels: Mapping[str, str]) -> None:
    """Exactly the expected labels, the config's severity, the plan's stack, annotations that render."""
    key = {NOT_READY: "scheduled_capacity_not_ready", SCALING_FAILED: "scheduled_scaling_failed"}
    name = alert["labels"]["alertname"]
    settings = getattr(config.monitoring.alerts, key[name])
    assert alert["labels"] == {"alertname": name, **labels, "severity": settings.severity, "stack": plan.stack}
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    for text in annotations.values():
        assert text and "<no value>" not in text and "{{" not in text and "%!" not in text, alert
    assert annotations["runbook_url"] == rules.runbook_url(config, name)


def test_not_ready_fires_when_desired_exceeds_ready_longer_than_its_for(prometheus_server, stack):
    config, plan = stack
    ns = config.kubernetes.namespace
    # Not this alert's business: another StatefulSet of the stack and the backend of another namespace, both short.
    noise = [*statefulset("redis", 1, 0, ns), *statefulset("backend", 3, 1, OTHER_NS)]
    # The teaching lab's scale-up has brought every pod up: desired 3, ready 3.
    ready = [*statefulset("backend", 3, 3, ns), *noise]
    server = prometheus_server(rules=rules.rules_file(config, plan), series=ready, history=600.0)
    settled(server)
    assert server.alerts(NOT_READY) == [], "ready replicas as desired, and nothing else of the stack is watched"

    # A node did not come: desired 3, ready 2, longer than the (compressed) pending time.
    short_since = time.time()
    server.set_live([*statefulset("backend", 3, 2, ns), *noise])
    alert = firing(server, NOT_READY, namespace=ns)
    check_metadata(alert, config, plan, {"namespace": ns, "statefulset": "backend"})
    assert alert["value"] == 1, "one replica short"
    description = alert["annotations"]["description"]
    assert description.startswith(f"StatefulSet {ns}/backend has had 1 fewer ready replicas than desired for 12m")
    assert "teaching-lab, open-day" in description
    # It went pending at the change (not before) and fired after the compressed pending time.
    assert COMPRESSED_FOR == "2s"
    active_at = server.value(f'ALERTS_FOR_STATE{{alertname="{NOT_READY}", namespace="{ns}"}}')
    assert active_at is not None and active_at >= short_since - 1.0
    pending = f'ALERTS{{alertname="{NOT_READY}", alertstate="pending", namespace="{ns}"}}'
    assert server.query_range(pending, short_since, time.time(), 0.5), "pending before firing"
    assert [a["labels"]["namespace"] for a in server.alerts(NOT_READY)] == [ns]

    # The pod becomes ready: the alert resolves.
    server.set_live(ready)
    server.wait_until(lambda: ours(server, NOT_READY, ns) == [], what=f"{NOT_READY} resolved")
    settled(server)
    assert server.alerts(NOT_READY) == []

    # After the window, at its configured 2 replicas, a pod not ready is not a window starting short: silent.
    server.set_live([*statefulset("backend", 2, 1, ns), *noise])
    settled(server)
    assert server.alerts(NOT_READY) == [], "desired at the configured replicas: no scale-up to be short of"
    # A scale-up to 3 with the same pod still not ready is.
    server.set_live([*statefulset("backend", 3, 1, ns), *noise])
    assert firing(server, NOT_READY, namespace=ns)["value"] == 2


def test_scaling_failed_fires_for_the_windows_scaler_jobs_only(prometheus_server, stack):
    config, plan = stack
    ns = config.kubernetes.namespace
    series = [
        *job(LAB_DOWN, ns, pods_failed=1, succeeded=1),  # a pod failed, the retry succeeded: scaled
        *job("backend-nightly-up-29412345", ns, failed=True),  # no window of this stack
        *job("redis-teaching-lab-up-29412345", ns, failed=True),  # another workload's
        *job(LAB_UP, OTHER_NS, failed=True),  # another stack's
    ]
    server = prometheus_server(rules=rules.rules_file(config, plan), series=series, history=600.0)
    settled(server)
    assert server.alerts(SCALING_FAILED) == [], "no scaler Job of this stack's windows failed"

    # The teaching lab's scale-up gave up (its deadline), and the open day's keeps failing while it retries.
    server.set_live([*series, *job(LAB_UP, ns, failed=True), *job(OPEN_DAY_UP, ns, pods_failed=2)])
    lab = firing(server, SCALING_FAILED, job_name=LAB_UP)
    check_metadata(lab, config, plan, {"namespace": ns, "job_name": LAB_UP, "window": "teaching-lab"})
    assert lab["value"] == 1
    assert lab["annotations"]["summary"] == f"Scaler Job {LAB_UP} of window teaching-lab failed"
    retrying = firing(server, SCALING_FAILED, job_name=OPEN_DAY_UP)
    check_metadata(retrying, config, plan, {"namespace": ns, "job_name": OPEN_DAY_UP, "window": "open-day"})
    assert retrying["value"] == 2, "its failed pods"
    settled(server)
    assert sorted(a["labels"]["job_name"] for a in server.alerts(SCALING_FAILED)) == sorted([LAB_UP, OPEN_DAY_UP])

    # The failed Job is deleted once handled (or by its TTL) and the retry succeeds: silent again.
    server.set_live([*series, *job(OPEN_DAY_UP, ns, pods_failed=2, succeeded=1)])
    server.wait_until(lambda: server.alerts(SCALING_FAILED) == [], what=f"{SCALING_FAILED} resolved")
