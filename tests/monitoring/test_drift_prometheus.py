"""HyperStudyContainerRequestDrift on a real Prometheus server (Debian's 2.42, tests/prometheus_server.py): prod's
drift records and alert, time compressed (every group each 0.25 s, `for:` 0.5 s).

The server records the per-container base from cAdvisor and kube-state-metrics series it is pushed live (with ten
minutes of history, for the 5-minute rate); the day before it is backfilled as the base records the recording group
would have written (a sample a minute), and the week before as the daily records, since a server that just started has
recorded neither. The server computes the daily records from that day itself, so the test first checks that what it
computes now is what the backfilled week says, then which alerts fire: a container on each side of every threshold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from monitoring import names
from monitoring.rules import DAY_STEPS, alert_settings
from sizing.observe import contract
from tests.monitoring.drift_world import KSM_JOBS, drift_rules, planned
from tests.prometheus_server import COMPRESSED_FOR_SECONDS, COMPRESSED_INTERVAL_SECONDS, Series

pytestmark = pytest.mark.programs

HOUR, DAY = 3600.0, 86400.0
HISTORY = 6 * DAY + 2 * HOUR  # the week clause reads 6 days of daily records, and one 6 days ago
# The backfill's grid: a minute, so the raw counters' last samples before the server starts (20 s or so after the
# backfill's `now`) are still inside a 5-minute rate's window.
STEP = 60.0
RAW_HISTORY = 600.0  # cAdvisor's and kube-state-metrics' own series: enough for a 5-minute rate
BEYOND_FOR = 2 * COMPRESSED_FOR_SECONDS + 4 * COMPRESSED_INTERVAL_SECONDS


@dataclass(frozen=True)
class Case:
    """A container's use as multiples of its request over time (seconds before now → ratio), and from when it ran."""

    workload: str
    pod: str
    namespace: str
    cpu: Callable[[float], float]
    memory: Callable[[float], float]
    container: str | None = None
    since: float = HISTORY  # seconds of history

    @property
    def name(self) -> str:
        return self.container or self.workload


def last(seconds: float, high: float, low: float) -> Callable[[float], float]:
    """`high` for the last `seconds`, `low` before."""
    return lambda offset: high if offset > -seconds else low


def steady(value: float) -> Callable[[float], float]:
    return lambda offset: value


def cases(config, plan) -> list[Case]:
    ns, mon = config.kubernetes.namespace, config.monitoring.prometheus_namespace
    below = alert_settings(config, names.ALERT_REQUEST_DRIFT).below_ratio
    return [
        # Above 1.5 × the request for the last 3 h (12.5 % of the day): CPU, memory, a chart's pod.
        Case("frontend", "frontend-7d9c5b8f6-x2k4q", ns, last(3 * HOUR, 2, 0.2), steady(0.75)),
        Case("redis", "redis-0", ns, steady(0.6), last(3 * HOUR, 2, 0.5)),
        Case("prometheus", "prometheus-kube-prometheus-stack-prometheus-0", mon, last(3 * HOUR, 2, 0.2), steady(0.8)),
        # Above for 2 h 10 min (9 % of the day): just short.
        Case("traefik", "traefik-6c7d8e9f5-c4hdl", ns, last(130 * 60, 2, 0.2), steady(0.8)),
        # Far under all week: below, both resources. Just under below_ratio: below; just over it: silent.
        Case("metrics-service", "metrics-service-5c6d7e8f9-m7wzr", ns, steady(0.2), steady(0.3125)),
        Case("pod-router", "pod-router-6b7d8c9f5-bv9tn", ns, steady(below - 0.02), steady(0.8)),
        Case("grafana", "kube-prometheus-stack-grafana-6f8d9c7b5-q8snp", mon, steady(below + 0.02), steady(0.8)),
        # Far under, but the request frees less than the floor: silent.
        Case("kube-state-metrics", "kube-prometheus-stack-kube-state-metrics-5d6c7-c4hdl", mon, steady(0.05),
             steady(0.8)),
        # Far under for 5 days only: silent.
        Case("alertmanager", "alertmanager-kube-prometheus-stack-alertmanager-0", mon, steady(0.2), steady(0.3),
             since=5 * DAY),
        # The formula-sized backend's memory far above its request all day: the formula's alert, not this one.
        Case("backend", "backend-0", ns, steady(0.8), steady(3)),
    ]  # fmt: skip


def recent(offset: float) -> bool:
    return offset >= -RAW_HISTORY


def record(metric: str, labels: dict[str, str], value: Callable[[float], float | None]) -> Series:
    return Series(metric, labels, value)


def world(config, plan) -> tuple[list[Series], list[Series]]:
    """(history: the base records of the day and the daily records of the week, backfilled; raw: cAdvisor's and
    kube-state-metrics' series, ten minutes of them and live)."""
    stack_ns = config.kubernetes.namespace
    history: list[Series] = []
    raw: list[Series] = []
    for case in cases(config, plan):
        cpu_req, mem_req, mem_lim = planned(config, plan, case.workload, case.container)
        labels = {"namespace": stack_ns, "pod_namespace": case.namespace, "container": case.name}

        def ran(value: Callable[[float], float], case: Case = case) -> Callable[[float], float | None]:
            """The base records: for the day the daily group reads (and an hour), while the container ran."""
            return lambda offset: value(offset) if offset >= -min(case.since, DAY + HOUR) else None

        def daily(value: float, case: Case = case) -> Callable[[float], float | None]:
            """A daily record: every 5 minutes (the daily group's interval) while the container ran."""
            return lambda offset: value if offset >= -case.since and round(offset) % 300 == 0 else None

        cpu = ran(lambda o, c=case, r=cpu_req: c.cpu(o) * r)
        memory = ran(lambda o, c=case, r=mem_req: c.memory(o) * r)
        history += [
            record(names.CONTAINER_CPU_USAGE, labels, cpu),
            record(names.CONTAINER_MEMORY_USAGE, labels, memory),
            record(names.CONTAINER_CPU_REQUEST, labels, ran(lambda o, r=cpu_req: r)),
            record(names.CONTAINER_MEMORY_REQUEST, labels, ran(lambda o, r=mem_req: r)),
            record(names.CONTAINER_MEMORY_LIMIT, labels, ran(lambda o, r=mem_lim: r)),
        ]
        # The daily records the steady cases had all week: a day of constant use.
        if case.cpu(-DAY) == case.cpu(0) and case.memory(-DAY) == case.memory(0):
            history += [
                record(names.CONTAINER_CPU_P95_1D, labels, daily(case.cpu(0) * cpu_req)),
                record(names.CONTAINER_CPU_P95_REQUEST_1D, labels, daily(case.cpu(0))),
                record(names.CONTAINER_MEMORY_MAX_1D, labels, daily(case.memory(0) * mem_req)),
                record(names.CONTAINER_MEMORY_MAX_REQUEST_1D, labels, daily(case.memory(0))),
            ]
        # What the server records the base from, live: its use now.
        now_cpu, now_memory = case.cpu(0) * cpu_req, case.memory(0) * mem_req
        own = {"namespace": case.namespace, "pod": case.pod, "container": case.name}
        kubelet = {"job": "kubelet", "instance": "10.128.0.2:10250", "node": "gke-pool-0", "id": f"/{case.pod}"}
        raw += [
            Series(contract.CPU_USAGE, {**kubelet, **own}, lambda o, v=now_cpu: 1e6 + v * o if recent(o) else None),
            Series(contract.WORKING_SET, {**kubelet, **own}, lambda o, v=now_memory: v if recent(o) else None),
            # cAdvisor's pod cgroup: every container of the pod and more.
            Series(contract.WORKING_SET, {**kubelet, **own, "container": ""}, lambda o: 9e9 if recent(o) else None),
        ]
        for i, job in enumerate(KSM_JOBS):
            ksm = {"job": job, "instance": f"10.4.1.{7 + i}:8080", **own}
            raw += [
                Series(contract.REQUESTS, {**ksm, "resource": "cpu", "unit": "core"}, cpu_req),
                Series(contract.REQUESTS, {**ksm, "resource": "memory", "unit": "byte"}, mem_req),
                Series(contract.LIMITS, {**ksm, "resource": "memory", "unit": "byte"}, mem_lim),
            ]
    return history, raw


def test_the_drift_alert_fires_and_stays_silent_on_a_real_server(prometheus_server, prod_config, prod_plan):
    config, plan = prod_config, prod_plan
    ns, mon = config.kubernetes.namespace, config.monitoring.prometheus_namespace
    settings = alert_settings(config, names.ALERT_REQUEST_DRIFT)
    history, raw = world(config, plan)
    server = prometheus_server(
        rules=drift_rules(config, plan), series=[*history, *raw], live=raw, history=HISTORY, step=STEP
    )

    def value(metric: str, namespace: str, container: str) -> float | None:
        return server.value(f'{metric}{{namespace="{ns}", pod_namespace="{namespace}", container="{container}"}}')

    # The base the server records from the live series is the backfilled day's last value: one history.
    frontend = planned(config, plan, "frontend")
    got = server.wait_until(lambda: value(names.CONTAINER_CPU_USAGE, ns, "frontend"), what="the base recorded")
    assert got == pytest.approx(2 * frontend[0], rel=1e-6)
    assert value(names.CONTAINER_MEMORY_REQUEST, mon, "prometheus") == planned(config, plan, "prometheus")[1]
    # The daily records it computes from the backfilled day are the backfilled week's.
    assert value(names.CONTAINER_CPU_P95_REQUEST_1D, ns, "metrics-service") == pytest.approx(0.2, rel=1e-6)
    assert value(names.CONTAINER_MEMORY_MAX_REQUEST_1D, ns, "metrics-service") == pytest.approx(0.3125, rel=1e-6)
    # 3 h above of the day's 288 points is 36 of them (one more or less as the grid falls); 2 h 10 min is 26.
    share = value(names.CONTAINER_CPU_ABOVE_REQUEST_1D, ns, "frontend")
    assert share is not None and 35 / DAY_STEPS <= share <= 37 / DAY_STEPS
    short = value(names.CONTAINER_CPU_ABOVE_REQUEST_1D, ns, "traefik")
    assert short is not None and short < settings.above_fraction

    def firing() -> dict[tuple[str, str, str, str], float]:
        found = {}
        for alert in server.alerts(names.ALERT_REQUEST_DRIFT):
            if alert["state"] == "firing":
                lab = alert["labels"]
                found[lab["pod_namespace"], lab["container"], lab["reason"], lab["resource"]] = alert["value"]
        return found

    expected = {
        (ns, "frontend", "above", "cpu"),
        (ns, "redis", "above", "memory"),
        (mon, "prometheus", "above", "cpu"),
        (ns, "metrics-service", "below", "cpu"),
        (ns, "metrics-service", "below", "memory"),
        (ns, "pod-router", "below", "cpu"),
    }
    server.wait_until(lambda: set(firing()) >= expected, what="the drift alerts firing")
    time.sleep(BEYOND_FOR)
    got = firing()
    assert set(got) == expected, (
        "and no other: just short of the day's share, over below_ratio, under the floor, short of a week, the formula's"
    )
    assert got[ns, "pod-router", "below", "cpu"] == pytest.approx(settings.below_ratio - 0.02, rel=1e-6)
    assert got[ns, "metrics-service", "below", "memory"] == pytest.approx(0.3125, rel=1e-6)
    (alert,) = [
        a
        for a in server.alerts(names.ALERT_REQUEST_DRIFT)
        if a["labels"]["container"] == "redis" and a["state"] == "firing"
    ]
    assert alert["labels"]["namespace"] == ns and alert["labels"]["severity"] == "warning"
    description = alert["annotations"]["description"]
    assert description.startswith(f"Container redis of namespace {ns} ran above 150% of its memory request for ")
    memory = planned(config, plan, "redis")[1] // 1048576
    assert f"peak {2 * memory}MiB over the day, requested {memory}MiB." in description
    assert "python -m sizing rightsize --stack prod" in description
    for text in alert["annotations"].values():
        assert "<no value>" not in text and "{{" not in text and "%!" not in text
