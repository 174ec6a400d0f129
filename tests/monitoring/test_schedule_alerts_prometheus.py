"""The scheduled windows' alerts on a real Prometheus server (Debian's 2.42, tests/prometheus_server.py), read over the
HTTP API: HyperStudyScheduledCapacityNotReady and HyperStudyScheduledScalingFailed of a staging-like stack with
planned windows (`scheduled_config` in conftest.py: `other_config` on 2 backend replicas, the weekly teaching lab's
scale-up setting 3; its CronJobs `backend-teaching-lab-up` and `-down` are the only ones the plan runs).

The stack's whole rules file is loaded, time compressed (every `for:` becomes 0.5 s, so "longer than the windows'
shortest lead" is "longer than 0.5 s" here; the real pending time is proven by the promtool cases and test_rules.py).
kube-state-metrics is scraped twice, under kube-prometheus-stack's job and another (two replicas or two jobs), with
the series and labels kube-state-metrics 2.x exports, so a rule that forgets to deduplicate fails here with
Prometheus' own error. Cases move the live target between states with `set_live`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest

from monitoring import names, rules
from sizing.config.stack import StackConfig
from sizing.observe import contract
from sizing.plan.types import Plan
from tests.prometheus_server import (
    COMPRESSED_FOR_SECONDS,
    COMPRESSED_INTERVAL_SECONDS,
    Alert,
    PrometheusServer,
    Series,
)

# Real programs (Debian's prometheus, promtool, alertmanager): the artifact layer, outside `make unit`.
pytestmark = pytest.mark.programs

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
# The CronJobs the plan's actions run (the open day's replicas fit the configured 2: it has none).
LAB_UP_CRONJOB = "backend-teaching-lab-up"
LAB_DOWN_CRONJOB = "backend-teaching-lab-down"
# Seconds an alert is given to show itself, or to stay silent: twice the compressed `for:` and an evaluation more.
BEYOND_FOR = 2 * COMPRESSED_FOR_SECONDS + COMPRESSED_INTERVAL_SECONDS


def ksm(metric: str, value: float, **labels: str) -> list[Series]:
    """A kube-state-metrics series as both scrapes export it, its value served live (no history)."""
    return [Series(metric, {**scrape, **labels}, ((0.0, float(value)),)) for scrape in KSM_SCRAPES]


def statefulset(name: str, desired: int, ready: int, namespace: str) -> list[Series]:
    own = {"namespace": namespace, "statefulset": name}
    return [*ksm(contract.STATEFULSET_REPLICAS, desired, **own), *ksm(contract.STATEFULSET_READY, ready, **own)]


def job(
    name: str,
    namespace: str,
    *,
    failed: bool = False,
    pods_failed: int = 0,
    succeeded: int = 0,
    started: float | None = None,
) -> list[Series]:
    """A Job as kube-state-metrics 2.x exports it (internal/store/job.go): `kube_job_failed` per condition status
    once the Job has a Failed condition, `kube_job_status_failed` per known reason (0/1) once it failed, else one
    series counting the failed pods; `kube_job_status_start_time` (a Unix time; a minute ago unless given)."""
    own = {"namespace": namespace, "job_name": name}
    series = [
        *ksm(contract.JOB_PODS_SUCCEEDED, succeeded, **own),
        *ksm(contract.JOB_START_TIME, time.time() - 60 if started is None else started, **own),
    ]
    if failed:
        for status in ("true", "false", "unknown"):
            series += ksm(contract.JOB_FAILED, 1 if status == "true" else 0, condition=status, **own)
        for reason in ("BackoffLimitExceeded", "DeadlineExceeded", "Evicted"):
            series += ksm(contract.JOB_PODS_FAILED, 1 if reason == "DeadlineExceeded" else 0, reason=reason, **own)
    else:
        series += ksm(contract.JOB_PODS_FAILED, pods_failed, **own)
    return series


def cronjob(
    name: str,
    namespace: str,
    *,
    next_run: float | None = None,
    suspended: bool = False,
    last_run: float | None = None,
    last_success: float | None = None,
) -> list[Series]:
    """A CronJob as kube-state-metrics 2.x exports it (internal/store/cronjob.go): `kube_cronjob_spec_suspend` always,
    `kube_cronjob_next_schedule_time` (a Unix time; an hour from now unless given) only while not suspended, and the
    scheduled time of its latest run and the time a Job of it last succeeded once there are any."""
    own = {"namespace": namespace, "cronjob": name}
    series = ksm(contract.CRONJOB_SUSPENDED, 1 if suspended else 0, **own)
    if not suspended:
        series += ksm(contract.CRONJOB_NEXT_SCHEDULE_TIME, time.time() + 3600 if next_run is None else next_run, **own)
    if last_run is not None:
        series += ksm(contract.CRONJOB_LAST_SCHEDULE_TIME, last_run, **own)
    if last_success is not None:
        series += ksm(contract.CRONJOB_LAST_SUCCESS_TIME, last_success, **own)
    return series


def scheduled_world(namespace: str) -> list[Series]:
    """The backend at its configured 2 replicas, all ready, and both CronJobs of the plan, on time."""
    return [
        *statefulset("backend", 2, 2, namespace),
        *cronjob(LAB_UP_CRONJOB, namespace),
        *cronjob(LAB_DOWN_CRONJOB, namespace),
    ]


@pytest.fixture(scope="module")
def stack(scheduled_stack_config: StackConfig, scheduled_stack_plan: Plan) -> tuple[StackConfig, Plan]:
    schedule = scheduled_stack_plan.schedule
    assert schedule is not None and schedule.workload == "backend" and schedule.base_replicas == 2
    assert {w.name: w.backend_replicas for w in schedule.windows}["teaching-lab"] == 3
    assert rules.expected_cronjobs(scheduled_stack_plan) == (LAB_UP_CRONJOB, LAB_DOWN_CRONJOB)
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
    name = alert["labels"]["alertname"]
    settings = rules.alert_settings(config, name)
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
    assert COMPRESSED_FOR_SECONDS == 0.5
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


def test_scaling_failed_judges_each_cronjob_by_its_latest_run(prometheus_server, stack):
    """The teaching lab's scale-up fails (its Job gives up) and the open day's keeps failing while it retries: both
    fire `failed`. The next run of the teaching lab's scale-up succeeds while last week's failed Job is still kept
    (a week's TTL): it resolves at once, where the previous rule (any failed Job of the CronJob) fired for the week.
    A run with no success and no Job to say why fires `unfinished` once past its deadlines; failed Jobs of other
    CronJobs, workloads or namespaces never fire."""
    config, plan = stack
    ns = config.kubernetes.namespace
    now = time.time()
    due = now - 20 * 60  # the runs at stake were due 20 minutes ago: past their 10 minutes of deadlines
    noise = [
        *statefulset("backend", 2, 2, ns),
        *cronjob(LAB_DOWN_CRONJOB, ns, last_run=due - 86400, last_success=due - 86400 + 30),
        *job(LAB_DOWN, ns, pods_failed=1, succeeded=1, started=due - 86400),  # a pod failed, the retry succeeded
        *job("backend-nightly-up-29412345", ns, failed=True, started=due),  # no window of this stack
        *job("redis-teaching-lab-up-29412345", ns, failed=True, started=due),  # another workload's
        *job(LAB_UP, OTHER_NS, failed=True, started=due),  # another stack's
        *cronjob(LAB_UP_CRONJOB, OTHER_NS, last_run=due),
    ]
    week_ago = due - 7 * 86400
    healthy = [*noise, *cronjob(LAB_UP_CRONJOB, ns, last_run=week_ago, last_success=week_ago + 30)]
    server = prometheus_server(rules=rules.rules_file(config, plan), series=healthy, history=600.0)
    settled(server)
    assert server.alerts(SCALING_FAILED) == [], "no run of this stack's windows failed"

    # The teaching lab's run due 20 minutes ago gave up (its deadline); the open day's keeps failing while it retries.
    failing = [
        *noise,
        *cronjob(LAB_UP_CRONJOB, ns, last_run=due, last_success=week_ago + 30),
        *job(LAB_UP, ns, failed=True, started=due + 5),
        *cronjob("backend-open-day-up", ns, last_run=due),  # its first run: no success ever
        *job(OPEN_DAY_UP, ns, pods_failed=2, started=due + 5),
    ]
    server.set_live(failing)
    lab = firing(server, SCALING_FAILED, job_name=LAB_UP)
    failed = {"namespace": ns, "job_name": LAB_UP, "cronjob": LAB_UP_CRONJOB, "window": "teaching-lab"}
    check_metadata(lab, config, plan, {**failed, "reason": "failed"})
    assert lab["value"] == 1
    assert lab["annotations"]["summary"] == f"Scaler {LAB_UP_CRONJOB} of window teaching-lab failed: Job {LAB_UP}"
    retrying = firing(server, SCALING_FAILED, job_name=OPEN_DAY_UP)
    open_day = {"namespace": ns, "job_name": OPEN_DAY_UP, "cronjob": "backend-open-day-up", "window": "open-day"}
    check_metadata(retrying, config, plan, {**open_day, "reason": "failed"})
    assert retrying["value"] == 2, "its failed pods"
    settled(server)
    # One alert per failing run: not also `unfinished`, though neither run succeeded within its deadlines.
    assert sorted(a["labels"]["job_name"] for a in server.alerts(SCALING_FAILED)) == sorted([LAB_UP, OPEN_DAY_UP])

    # The teaching lab's next run (due now) succeeds; its failed Job stays (a week's TTL): resolved. The open day's
    # Job is deleted by hand with no run since: `unfinished`, the run still has no success.
    next_run = time.time() - 30
    server.set_live(
        [
            *noise,
            *cronjob(LAB_UP_CRONJOB, ns, last_run=next_run, last_success=next_run + 20),
            *job(LAB_UP, ns, failed=True, started=due + 5),
            *job(f"{LAB_UP_CRONJOB}-29412365", ns, succeeded=1, started=next_run + 1),
            *cronjob("backend-open-day-up", ns, last_run=due),
        ]
    )
    unfinished = firing(server, SCALING_FAILED, reason="unfinished")
    check_metadata(
        unfinished,
        config,
        plan,
        {"namespace": ns, "cronjob": "backend-open-day-up", "window": "open-day", "reason": "unfinished"},
    )
    assert unfinished["value"] >= 20 * 60, "seconds since the run was due"
    assert "has not succeeded within 10m" in unfinished["annotations"]["description"]
    server.wait_until(
        lambda: [a["labels"]["reason"] for a in server.alerts(SCALING_FAILED)] == ["unfinished"],
        what="the teaching lab's failure resolved by its next run's success",
    )

    # The open day's scale-up run by hand succeeds: that counts as its latest run's success too.
    server.set_live(
        [
            *noise,
            *cronjob(LAB_UP_CRONJOB, ns, last_run=next_run, last_success=next_run + 20),
            *job(LAB_UP, ns, failed=True, started=due + 5),
            *cronjob("backend-open-day-up", ns, last_run=due, last_success=time.time()),
        ]
    )
    server.wait_until(lambda: server.alerts(SCALING_FAILED) == [], what=f"{SCALING_FAILED} resolved")
    settled(server)
    assert server.alerts(SCALING_FAILED) == []


def test_scaling_failed_fires_when_a_scaler_cronjob_does_not_run(prometheus_server, stack):
    """A scale-up that never runs: its CronJob missed the run (due 15 minutes ago, never started), is suspended, or
    is gone. Each fires with its CronJob, window and reason; other workloads' and other namespaces' CronJobs, a run
    due 5 minutes ago (still within its starting deadline), and a kube-state-metrics that reports nothing, do not."""
    config, plan = stack
    ns = config.kubernetes.namespace
    now = time.time()
    noise = [
        *cronjob("redis-teaching-lab-up", ns, next_run=now - 900),  # another workload's
        *cronjob("backend-nightly-up", ns, suspended=True),  # no window of this stack
        *cronjob(LAB_UP_CRONJOB, OTHER_NS, next_run=now - 900),  # another stack's
        *cronjob(LAB_DOWN_CRONJOB, OTHER_NS, suspended=True),
    ]
    late = [
        *statefulset("backend", 2, 2, ns),
        *cronjob(LAB_UP_CRONJOB, ns, next_run=now - 300),  # the controller may still start it
        *cronjob(LAB_DOWN_CRONJOB, ns),
        *noise,
    ]
    server = prometheus_server(rules=rules.rules_file(config, plan), series=late, history=600.0)
    settled(server)
    assert server.alerts(SCALING_FAILED) == [], "every CronJob of the plan there, none overdue past its deadline"
    lab = {"namespace": ns, "cronjob": LAB_UP_CRONJOB, "window": "teaching-lab"}

    # The controller was down past the starting deadline: the run due 15 minutes ago never started.
    server.set_live([*statefulset("backend", 2, 2, ns), *cronjob(LAB_UP_CRONJOB, ns, next_run=now - 900),
                     *cronjob(LAB_DOWN_CRONJOB, ns), *noise])  # fmt: skip
    missed = firing(server, SCALING_FAILED, reason="missed")
    check_metadata(missed, config, plan, {**lab, "reason": "missed"})
    assert missed["value"] >= 900, "seconds since it was due"
    assert missed["annotations"]["summary"] == f"Scaler {LAB_UP_CRONJOB} of window teaching-lab missed a run"
    assert "never started" in missed["annotations"]["description"]

    # Suspended (kube-state-metrics then drops its next schedule time): `suspended`, and the miss resolves.
    server.set_live([*statefulset("backend", 2, 2, ns), *cronjob(LAB_UP_CRONJOB, ns, suspended=True),
                     *cronjob(LAB_DOWN_CRONJOB, ns), *noise])  # fmt: skip
    suspended = firing(server, SCALING_FAILED, reason="suspended")
    check_metadata(suspended, config, plan, {**lab, "reason": "suspended"})
    server.wait_until(
        lambda: [a["labels"]["reason"] for a in server.alerts(SCALING_FAILED)] == ["suspended"], what="miss resolved"
    )

    # The scale-down CronJob deleted, the scale-up back on time: `missing` for the scale-down only.
    server.set_live([*statefulset("backend", 2, 2, ns), *cronjob(LAB_UP_CRONJOB, ns), *noise])
    missing = firing(server, SCALING_FAILED, reason="missing")
    check_metadata(missing, config, plan, {**lab, "cronjob": LAB_DOWN_CRONJOB, "reason": "missing"})
    assert missing["annotations"]["summary"] == f"Scaler {LAB_DOWN_CRONJOB} of window teaching-lab does not exist"
    server.wait_until(
        lambda: [a["labels"]["reason"] for a in server.alerts(SCALING_FAILED)] == ["missing"], what="resumed"
    )

    # kube-state-metrics reports nothing of the namespace (its scrape gone): not taken for every CronJob deleted.
    server.set_live(noise)
    server.wait_until(lambda: server.alerts(SCALING_FAILED) == [], what=f"{SCALING_FAILED} resolved")
    settled(server)
    assert server.alerts(SCALING_FAILED) == []
