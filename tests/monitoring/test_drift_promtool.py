"""`promtool test rules` of the drift records and HyperStudyContainerRequestDrift: a day of use against prod's plan
for the `above` clauses, a week for the `below` ones, each beside a container just on the silent side of its
threshold. Every expected number comes from the plan, the alert's settings and the use the test gives.
"""

from __future__ import annotations

from typing import Any

import pytest

from monitoring import names
from monitoring.rules import DAY_STEPS, DRIFT_STEP, alert_settings, rule_groups
from sizing.core.durations import duration_seconds
from tests.monitoring.drift_world import Container, Segment, drift_rules, input_series, planned, render

pytestmark = pytest.mark.programs

MIB = 1048576
DAY = 1440  # minutes
DRIFT_STEP_MINUTES = duration_seconds(DRIFT_STEP) // 60
# promtool evaluates every group at this interval (the grid's): a query may hold only 10 k samples there, and a day of
# a minute's records of ten containers is 14 k.
EVALUATION_INTERVAL = "5m"
# The day test: 25 h of minutes; the high stretches start at HIGH_FROM, so the whole of each is inside the day before
# the evaluation and the share crosses its threshold more than the alert's `for` (1 h) before it.
DAY_END = 1500
HIGH_FROM = 1200
# The week test: 7 days and 2 hours, evaluated every 5 minutes (a minute's grid over a week is 10 k evaluations).
WEEK_END = 7 * DAY + 120


def above_points(minutes: int) -> int:
    """Points of the rules' 5-minute grid inside a stretch of `minutes` above the request, starting on the grid
    (evaluated every 5 minutes, a 5-minute rate is the stretch's own from its second point to its last; a gauge from
    its first to the one before its end)."""
    assert minutes % DRIFT_STEP_MINUTES == 0
    return minutes // DRIFT_STEP_MINUTES


def one_day(stack_config, stack_plan) -> tuple[list[Container], dict[tuple[str, str, str], float]]:
    """The containers of the day test, and the alerts they give: (pod namespace, container, resource) → share."""
    settings = alert_settings(stack_config, names.ALERT_REQUEST_DRIFT)
    t = settings.threshold
    ns = stack_config.kubernetes.namespace
    mon = stack_config.monitoring.prometheus_namespace
    low_for = HIGH_FROM

    def cpu(workload: str, pod: str, high_minutes: int, factor: float, container: str | None = None, namespace=ns):
        cpu_req, mem_req, mem_lim = planned(stack_config, stack_plan, workload, container)
        use = (
            Segment(low_for, cpu_req * 0.2, mem_req * 0.5),
            Segment(high_minutes, cpu_req * factor, mem_req * 0.5),
            Segment(DAY_END - low_for - high_minutes + 1, cpu_req * 0.2, mem_req * 0.5),
        )
        return Container(namespace, pod, container or workload, cpu_req, mem_req, mem_lim, use)

    def memory(workload: str, pod: str, high_minutes: int, factor: float):
        cpu_req, mem_req, mem_lim = planned(stack_config, stack_plan, workload)
        use = (
            Segment(low_for, cpu_req * 0.5, mem_req * 0.5),
            Segment(high_minutes, cpu_req * 0.5, mem_req * factor),
            Segment(DAY_END - low_for - high_minutes + 1, cpu_req * 0.5, mem_req * 0.5),
        )
        return Container(ns, pod, workload, cpu_req, mem_req, mem_lim, use)

    # The share of the day a fires-case needs: above_fraction × 1 440 minutes (144 by default).
    need = settings.above_fraction * DAY_STEPS
    over, under = (round(need) + 3) * DRIFT_STEP_MINUTES, (round(need) - 1) * DRIFT_STEP_MINUTES
    containers = [
        # CPU at twice the request for `over` minutes: above. pod-router for `under`: just short of the day's share.
        cpu("frontend", "frontend-7d9c5b8f6-x2k4q", over, 2),
        cpu("pod-router", "pod-router-6b7d8c9f5-bv9tn", under, 2),
        # Memory at twice the request: redis above, metrics-service just short.
        memory("redis", "redis-0", over, 2),
        memory("metrics-service", "metrics-service-5c6d7e8f9-m7wzr", under, 2),
        # The formula-sized backend's memory at three times its request all day: the formula's, not this alert's.
        memory("backend", "backend-0", DAY_END - HIGH_FROM, 3),
        # A chart's pod in its own namespace, and a sidecar that runs in two pods: one above, the other idle.
        cpu("prometheus", "prometheus-kube-prometheus-stack-prometheus-0", over, 2, namespace=mon),
        cpu("prometheus", "prometheus-kube-prometheus-stack-prometheus-0", over, 3, "config-reloader", namespace=mon),
        cpu("alertmanager", "alertmanager-kube-prometheus-stack-alertmanager-0", 1, 0.1, "config-reloader", mon),
    ]
    share = above_points(over) / DAY_STEPS
    expected = {
        (ns, "frontend", "cpu"): share,
        (ns, "redis", "memory"): share,
        (mon, "prometheus", "cpu"): share,
        (mon, "config-reloader", "cpu"): share,
    }
    assert above_points(under) < need <= above_points(over), "one case on each side of the threshold"
    assert t < 2, "twice the request is above the threshold"
    return containers, expected


def expected_alert(config, plan, labels: dict[str, str], value: float, figures: dict[str, float]) -> dict[str, Any]:
    rule = next(r for g in rule_groups(config, plan) for r in g["rules"] if r.get("alert") == names.ALERT_REQUEST_DRIFT)
    settings = alert_settings(config, names.ALERT_REQUEST_DRIFT)
    full = {**labels, "severity": settings.severity, "stack": plan.stack}
    return {
        "exp_labels": full,
        "exp_annotations": {k: render(v, full, value, figures) for k, v in rule["annotations"].items()},
    }


def figures_for(c: Container, resource: str, p95: float) -> dict[str, float]:
    if resource == "cpu":
        peak = max(s.cores for s in c.use)
        return {
            names.CONTAINER_CPU_P95_1D: p95,
            names.CONTAINER_CPU_MAX_1D: peak,
            names.CONTAINER_CPU_REQUEST: c.cpu_request,
        }
    peak = max(s.bytes for s in c.use)
    return {
        names.CONTAINER_MEMORY_P95_1D: p95,
        names.CONTAINER_MEMORY_MAX_1D: peak,
        names.CONTAINER_MEMORY_REQUEST: c.memory_request,
    }


def _expect_alerts(run_promtool, config, plan, containers: list[Container], end: int, alerts: list[dict]) -> None:
    """promtool: the containers' minute series until `end`, and at `end` exactly `alerts` of the drift alert."""
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": EVALUATION_INTERVAL,
        "tests": [
            {
                "interval": "1m",
                "input_series": input_series(containers, end),
                "alert_rule_test": [
                    {"eval_time": f"{end}m", "alertname": names.ALERT_REQUEST_DRIFT, "exp_alerts": alerts}
                ],
            }
        ],
    }
    run_promtool("test", "rules", "test.yml", files={"rules.yml": drift_rules(config, plan), "test.yml": test})


def test_drift_above_for_a_tenth_of_a_day(prod_config, prod_plan, run_promtool):
    containers, expected = one_day(prod_config, prod_plan)
    ns = prod_config.kubernetes.namespace
    # The figures are the largest pod's: config-reloader's in the Prometheus pod, not the idle one beside Alertmanager.
    by_name: dict[tuple[str, str], Container] = {}
    for c in sorted(containers, key=lambda c: max(s.cores for s in c.use)):
        by_name[c.namespace, c.container] = c
    alerts = []
    for (pod_namespace, container, resource), share in sorted(expected.items()):
        c = by_name[pod_namespace, container]
        # The stretch above is longer than the day's top 5 %: p95 and peak are its use.
        high = max(s.cores if resource == "cpu" else s.bytes for s in c.use)
        labels = {"namespace": ns, "pod_namespace": pod_namespace, "container": container}
        alerts.append(
            expected_alert(
                prod_config, prod_plan, {**labels, "reason": "above", "resource": resource}, share,
                figures_for(c, resource, high),
            )
        )  # fmt: skip
    _expect_alerts(run_promtool, prod_config, prod_plan, containers, DAY_END, alerts)


def one_week(stack_config, stack_plan) -> tuple[list[Container], dict[tuple[str, str, str], tuple[float, float]]]:
    """The containers of the week test, and the alerts they give: (pod namespace, container, resource) → (the week's
    highest daily figure ÷ request, that figure)."""
    settings = alert_settings(stack_config, names.ALERT_REQUEST_DRIFT)
    below = settings.below_ratio
    ns = stack_config.kubernetes.namespace
    mon = stack_config.monitoring.prometheus_namespace

    def steady(workload: str, pod: str, cpu: float, memory: float, namespace: str = ns, days: float = 7) -> Container:
        """Constant use at `cpu` and `memory` × the request, for the last `days` of the week."""
        cpu_req, mem_req, mem_lim = planned(stack_config, stack_plan, workload)
        start = WEEK_END - round(days * DAY) if days < 7 else 0
        use = (Segment(WEEK_END - start + 1, cpu_req * cpu, mem_req * memory),)
        return Container(namespace, pod, workload, cpu_req, mem_req, mem_lim, use, start)

    floor_cores = settings.below_min_cpu_m / 1000
    floor_bytes = settings.below_min_memory_mib * MIB
    containers = [
        # Both resources far under the request all week: below, both.
        steady("metrics-service", "metrics-service-5c6d7e8f9-m7wzr", 0.2, 0.3125),
        # CPU just under below_ratio: below; just over it: silent.
        steady("frontend", "frontend-7d9c5b8f6-x2k4q", below - 0.02, 0.75),
        steady("grafana", "kube-prometheus-stack-grafana-6f8d9c7b5-q8snp", below + 0.02, 0.8, mon),
        # Far under, but the request is too small to free the floor: silent.
        steady("kube-state-metrics", "kube-prometheus-stack-kube-state-metrics-5d6c7-c4hdl", 0.05, 0.625, mon),
        steady("redis", "redis-0", 0.6, 0.47),
        # Far under for the last 5 days only: not a week of history, silent.
        steady("pod-router", "pod-router-6b7d8c9f5-bv9tn", 0.2, 0.25, days=5),
        # The formula-sized backend's memory far under its request: the formula's, silent; its CPU near its request.
        steady("backend", "backend-0", 0.8, 0.05),
    ]
    by_name = {c.container: c for c in containers}
    assert by_name["kube-state-metrics"].cpu_request * (1 - 0.05) < floor_cores, "its CPU frees less than the floor"
    assert by_name["redis"].memory_request * (1 - 0.47) < floor_bytes, "its memory frees less than the floor"
    ms, fe = by_name["metrics-service"], by_name["frontend"]
    assert ms.cpu_request * 0.8 >= floor_cores and ms.memory_request * (1 - 0.3125) >= floor_bytes
    assert fe.cpu_request * (1 - below + 0.02) >= floor_cores
    expected = {
        (ns, "metrics-service", "cpu"): (0.2, ms.cpu_request * 0.2),
        (ns, "metrics-service", "memory"): (0.3125, ms.memory_request * 0.3125),
        (ns, "frontend", "cpu"): (below - 0.02, fe.cpu_request * (below - 0.02)),
    }
    return containers, expected


def test_drift_below_for_a_week(prod_config, prod_plan, run_promtool):
    containers, expected = one_week(prod_config, prod_plan)
    ns = prod_config.kubernetes.namespace
    alerts = []
    for (pod_namespace, container, resource), (ratio, used) in sorted(expected.items()):
        c = next(c for c in containers if c.container == container)
        labels = {"namespace": ns, "pod_namespace": pod_namespace, "container": container}
        alerts.append(
            expected_alert(
                prod_config, prod_plan, {**labels, "reason": "below", "resource": resource}, ratio,
                figures_for(c, resource, used),
            )
        )  # fmt: skip
    _expect_alerts(run_promtool, prod_config, prod_plan, containers, WEEK_END, alerts)
