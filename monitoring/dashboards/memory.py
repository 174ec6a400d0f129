"""HyperStudy / Memory Monitoring: usage vs requests and limits, every planned container's CPU and memory against its
request and limit, efficiency, Node.js heap, pressure, OOM kills."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, gauge, stat, timeseries

from monitoring import names
from monitoring.dashboards.common import (
    TITLES,
    Color,
    Query,
    Section,
    Unit,
    build_dashboard,
    dashboard_selectors,
    efficiency_gauge,
    gauge_panel,
    over_rate_interval,
    stat_panel,
    thresholds,
    tile_width,
    timeseries_panel,
)
from monitoring.selectors import Selectors, container_plans
from sizing.config.stack import StackConfig
from sizing.core.quantity import MIB_BYTES
from sizing.observe import contract
from sizing.observe.promql import CONTAINER, POD, dedup, eq, number, selector
from sizing.plan.types import ContainerPlan, Plan, WorkloadPlan

SLUG = "memory"  # the uid is `<namespace>-memory`
TITLE = TITLES[SLUG]


def _workloads(plan: Plan) -> list[WorkloadPlan]:
    return [plan.workloads[name] for name in sorted(plan.workloads)]


def _near_limit(config: StackConfig) -> float:
    return config.monitoring.alerts.memory_near_limit.threshold


def _over_near_limit(config: StackConfig, s: Selectors) -> str:
    """The containers above the near-limit threshold: what HyperStudyMemoryNearLimit fires for."""
    return f"{selector(names.CONTAINER_LIMIT_UTILISATION, s.ns)} > {number(_near_limit(config))}"


def _last_oom_killed(s: Selectors) -> str:
    return dedup(s.ksm(contract.LAST_TERMINATED, eq("reason", "OOMKilled")))


OOM_TILE_WINDOW = "24h"


def oom_killed_in_window(s: Selectors, window: str = OOM_TILE_WINDOW) -> str:
    """Containers that restarted in `window` and were OOMKilled in it: a kill turns the tile red for `window`, not
    until the pod is deleted (kube-state-metrics keeps the last termination reason as long as the container)."""
    restarts = dedup(f"increase({s.ksm(contract.RESTARTS)}[{window}])")
    reason = dedup(f"max_over_time({s.ksm(contract.LAST_TERMINATED, eq('reason', 'OOMKilled'))}[{window}])")
    return f"({restarts} > 0) and on ({', '.join(CONTAINER)}) ({reason} == 1)"


def _oom_kills(s: Selectors) -> str:
    """Restarts in the interval of containers whose last termination was OOMKilled, as HyperStudyContainerOOMKilled."""
    restarts = dedup(f"increase({over_rate_interval(s.ksm(contract.RESTARTS))})")
    return f"({restarts} > 0) and on ({', '.join(CONTAINER)}) ({_last_oom_killed(s)} == 1)"


# --- Overview ---
def namespace_working_set_stat(plan: Plan, s: Selectors) -> stat.Panel:
    requests = plan.totals.memory_request_mib * MIB_BYTES
    limits = plan.totals.memory_limit_mib * MIB_BYTES
    return stat_panel(
        "Working set (namespace)",
        f"Σ working set of every workload (`{names.WORKLOAD_WORKING_SET}`). Yellow above the plan's Σ requests "
        f"({plan.totals.memory_request_mib} MiB), red above its Σ limits ({plan.totals.memory_limit_mib} MiB).",
        Unit.BYTES,
        Query(f"sum({selector(names.WORKLOAD_WORKING_SET, s.ns)})", "working set"),
        thresholds(Color.GREEN, (requests, Color.YELLOW), (limits, Color.RED)),
        height=6,
    )


def near_limit_count_stat(config: StackConfig, s: Selectors) -> stat.Panel:
    return stat_panel(
        "Containers near their limit",
        f"Containers whose working set is above {_near_limit(config):.0%} of their memory limit "
        f"(`{names.CONTAINER_LIMIT_UTILISATION}`): each is a {names.ALERT_MEMORY_NEAR_LIMIT} pending or firing.",
        Unit.COUNT,
        Query(f"count({_over_near_limit(config, s)}) or vector(0)", "containers"),
        thresholds(Color.GREEN, (1, Color.RED)),
        height=6,
        decimals=0,
    )


def oom_killed_stat(s: Selectors) -> stat.Panel:
    return stat_panel(
        f"Containers OOM-killed ({OOM_TILE_WINDOW})",
        f"Containers that restarted in the last {OOM_TILE_WINDOW} after an OOM kill (`{contract.RESTARTS}`, "
        f"`{contract.LAST_TERMINATED}`); the tile turns green {OOM_TILE_WINDOW} after the last kill.",
        Unit.COUNT,
        Query(f"count({oom_killed_in_window(s)}) or vector(0)", "containers"),
        thresholds(Color.GREEN, (1, Color.RED)),
        height=6,
        decimals=0,
    )


def overview(config: StackConfig, plan: Plan, s: Selectors) -> Section:
    return Section(
        "Overview",
        [
            efficiency_gauge(s),
            namespace_working_set_stat(plan, s),
            near_limit_count_stat(config, s),
            oom_killed_stat(s),
        ],
    )


# --- Efficiency ---
def request_utilisation_gauge(config: StackConfig, s: Selectors, workload: WorkloadPlan, width: int) -> gauge.Panel:
    """Working set ÷ request of one workload; the gauge ends at its limit, red where the near-limit alert fires."""
    limit_ratio = workload.memory_limit_mib / workload.memory_request_mib
    red = _near_limit(config) * limit_ratio
    steps = [(red, Color.RED)]
    if red > 1:
        steps.append((1, Color.YELLOW))
    return gauge_panel(
        f"{workload.name}: working set ÷ request",
        f"`{names.REQUEST_UTILISATION}` of {workload.name}: plan request {workload.memory_request}, limit "
        f"{workload.memory_limit} per pod, so the gauge ends at the limit ({limit_ratio:g}× the request). Yellow "
        f"above the request, red at {_near_limit(config):.0%} of the limit ({names.ALERT_MEMORY_NEAR_LIMIT}).",
        Unit.RATIO,
        Query(selector(names.REQUEST_UTILISATION, s.ns, eq("workload", workload.name)), workload.name),
        thresholds(Color.GREEN, *steps),
        min_value=0,
        max_value=limit_ratio,
        width=width,
    )


def request_utilisation_timeseries(s: Selectors) -> timeseries.Panel:
    return timeseries_panel(
        "Working set ÷ request by workload",
        f"`{names.REQUEST_UTILISATION}`: above 100 % a workload uses more than it reserves on its node.",
        Unit.RATIO,
        [Query(selector(names.REQUEST_UTILISATION, s.ns), "{{workload}}")],
        width=24,
        threshold_config=thresholds(Color.GREEN, (1, Color.YELLOW)),
        threshold_lines=True,
        min_value=0,
    )


def efficiency(config: StackConfig, plan: Plan, s: Selectors) -> Section:
    workloads = _workloads(plan)
    width = tile_width(len(workloads))
    return Section(
        "Efficiency",
        [*(request_utilisation_gauge(config, s, w, width) for w in workloads), request_utilisation_timeseries(s)],
    )


# --- Usage against requests and limits ---
def workload_usage_timeseries(s: Selectors, workload: WorkloadPlan, width: int) -> timeseries.Panel:
    """Working set, its daily peak, request and limit of one workload, each summed over the workload's pods."""
    match = (s.ns, eq("workload", workload.name))
    return timeseries_panel(
        f"{workload.name}: usage vs request and limit",
        f"Σ over the {workload.name} pods (plan: {workload.replicas} × {workload.memory_request} request, "
        f"{workload.replicas} × {workload.memory_limit} limit): working set (`{names.WORKLOAD_WORKING_SET}`), "
        f"its 1-day maximum (`{names.WORKING_SET_MAX_1D}`), requests and limits from kube-state-metrics.",
        Unit.BYTES,
        [
            Query(selector(names.WORKLOAD_WORKING_SET, *match), "working set"),
            Query(selector(names.WORKING_SET_MAX_1D, *match), "working set, 1d max"),
            Query(selector(names.WORKLOAD_REQUESTS, *match), "request"),
            Query(selector(names.WORKLOAD_LIMITS, *match), "limit"),
        ],
        width=width,
        min_value=0,
    )


def daily_working_set_timeseries(s: Selectors) -> timeseries.Panel:
    return timeseries_panel(
        "Working set, 1-day average by workload",
        f"`{names.WORKING_SET_AVG_1D}`: the typical load a request should cover.",
        Unit.BYTES,
        [Query(selector(names.WORKING_SET_AVG_1D, s.ns), "{{workload}}")],
        width=24,
        min_value=0,
    )


def usage(plan: Plan, s: Selectors) -> Section:
    workloads = _workloads(plan)
    width = tile_width(len(workloads), minimum=8, maximum=12)
    return Section(
        "Usage vs requests and limits",
        [*(workload_usage_timeseries(s, w, width) for w in workloads), daily_working_set_timeseries(s)],
    )


# --- Requested vs used per container ---
def container_drift_timeseries(
    config: StackConfig, s: Selectors, namespace: str, container: str, sized: ContainerPlan | WorkloadPlan
) -> timeseries.Panel:
    """One planned container's day of use against its request and limit (the drift records), with
    HyperStudyContainerRequestDrift's thresholds as lines."""
    drift = config.monitoring.alerts.request_drift
    # The app's pods run in the stack's namespace: the dashboard's variable, as every other query's.
    own = s.namespace if namespace == config.kubernetes.namespace else namespace
    match = (s.ns, eq("pod_namespace", own), eq("container", container))
    on = "on (namespace, pod_namespace, container)"
    cpu_peak = (
        f"{selector(names.CONTAINER_CPU_MAX_1D, *match)}\n/ {on}\n{selector(names.CONTAINER_CPU_REQUEST, *match)}"
    )
    return timeseries_panel(
        f"{container} ({namespace}): used ÷ requested",
        f"The largest {container} pod over the last day, against the plan's request (CPU {sized.cpu_request}, memory "
        f"{sized.memory_request}) and memory limit ({sized.memory_limit}) as kube-state-metrics reports them. "
        f"Above {drift.threshold:g}× the request for {drift.above_fraction:.0%} of a day, or each day's CPU p95 "
        f"(memory peak) under {drift.below_ratio:g}× it for a week: {names.ALERT_REQUEST_DRIFT}.",
        Unit.RATIO,
        [
            Query(selector(names.CONTAINER_CPU_P95_REQUEST_1D, *match), "CPU p95 ÷ request"),
            Query(cpu_peak, "CPU peak ÷ request"),
            Query(selector(names.CONTAINER_MEMORY_MAX_REQUEST_1D, *match), "memory peak ÷ request"),
            Query(selector(names.CONTAINER_MEMORY_MAX_LIMIT_1D, *match), "memory peak ÷ limit"),
        ],
        width=8,
        threshold_config=thresholds(Color.ORANGE, (drift.below_ratio, Color.GREEN), (drift.threshold, Color.RED)),
        threshold_lines=True,
        min_value=0,
    )


def requested_vs_used(config: StackConfig, plan: Plan, s: Selectors) -> Section:
    return Section(
        "Requested vs used per container",
        [container_drift_timeseries(config, s, *planned) for planned in container_plans(config, plan)],
    )


# --- Node.js heap ---
def _nodejs(plan: Plan) -> list[WorkloadPlan]:
    return [w for w in _workloads(plan) if w.runtime.kind == "nodejs" and w.runtime.memory_mib]


def heap_ceiling_timeseries(config: StackConfig, plan: Plan, s: Selectors) -> timeseries.Panel:
    """Heap in use per pod ÷ the plan's --max-old-space-size of its workload (pods matched by name, as the rules)."""
    threshold = config.monitoring.alerts.heap_near_limit.threshold
    queries = []
    ceilings = []
    for w in _nodejs(plan):
        ceiling = w.runtime.memory_mib * MIB_BYTES
        used = dedup(s.app(contract.NODEJS_HEAP_USED, s.workload_pod_matcher(w.name)), POD)
        queries.append(Query(f"{used} / {ceiling}", f"{{{{pod}}}} ({w.name})"))
        ceilings.append(f"{w.name} {w.runtime.memory_mib} MiB")
    return timeseries_panel(
        "Heap used ÷ heap ceiling",
        f"`{contract.NODEJS_HEAP_USED}` ÷ the plan's --max-old-space-size ({', '.join(ceilings)}). Past "
        f"{threshold:.0%} ({names.ALERT_HEAP_NEAR_LIMIT}) V8 spends its time in GC and then aborts.",
        Unit.RATIO,
        queries,
        threshold_config=thresholds(Color.GREEN, (threshold, Color.RED)),
        threshold_lines=True,
        min_value=0,
    )


def heap_total_timeseries(config: StackConfig, s: Selectors) -> timeseries.Panel:
    threshold = config.monitoring.alerts.heap_near_limit.threshold
    used = dedup(s.app(contract.NODEJS_HEAP_USED, s.workload_pods), POD)
    total = dedup(s.app(contract.NODEJS_HEAP_TOTAL, s.workload_pods), POD)
    return timeseries_panel(
        "Heap used ÷ heap allocated",
        f"`{contract.NODEJS_HEAP_USED}` ÷ `{contract.NODEJS_HEAP_TOTAL}` per pod: "
        "how full the heap V8 has allocated is.",
        Unit.RATIO,
        [Query(f"{used} / {total}", "{{pod}}")],
        threshold_config=thresholds(Color.GREEN, (threshold, Color.RED)),
        threshold_lines=True,
        min_value=0,
    )


def heap(config: StackConfig, plan: Plan, s: Selectors) -> Section:
    panels: list[timeseries.Panel] = []
    if _nodejs(plan):
        panels.append(heap_ceiling_timeseries(config, plan, s))
    panels.append(heap_total_timeseries(config, s))
    return Section("Node.js heap", panels)


# --- Pressure and OOM kills ---
def memory_pressure_timeseries(config: StackConfig, s: Selectors) -> timeseries.Panel:
    threshold = _near_limit(config)
    return timeseries_panel(
        "Memory pressure: working set above the alert threshold of the limit",
        f"`{names.CONTAINER_LIMIT_UTILISATION}` of the containers above {threshold:.0%} of their limit, the "
        f"{names.ALERT_MEMORY_NEAR_LIMIT} threshold (config monitoring.alerts.memory_near_limit). Empty is good.",
        Unit.RATIO,
        [Query(_over_near_limit(config, s), "{{pod}} / {{container}}")],
        threshold_config=thresholds(Color.GREEN, (threshold, Color.RED)),
        threshold_lines=True,
        min_value=0,
    )


def oom_kills_timeseries(s: Selectors) -> timeseries.Panel:
    return timeseries_panel(
        "OOM kills",
        f"Restarts (`{contract.RESTARTS}`) of containers whose last termination was OOMKilled "
        f"(`{contract.LAST_TERMINATED}`), per interval ({names.ALERT_OOM_KILLED}).",
        Unit.COUNT,
        [Query(_oom_kills(s), "{{pod}} / {{container}}")],
        threshold_config=thresholds(Color.RED),
        bars=True,
        min_value=0,
    )


def pressure(config: StackConfig, s: Selectors) -> Section:
    return Section("Memory pressure and OOM kills", [memory_pressure_timeseries(config, s), oom_kills_timeseries(s)])


def build(config: StackConfig, plan: Plan) -> dashboard.Dashboard:
    s = dashboard_selectors(config, plan)
    return build_dashboard(
        SLUG,
        "Memory of the HyperStudy workloads against the sizing plan: usage vs requests and limits, efficiency, "
        "every planned container's CPU and memory against its request, Node.js heap, pressure and OOM kills"
        f" (plan {plan.stack}, profile {plan.profile}).",
        ["memory"],
        "now-6h",
        config,
        [
            overview(config, plan, s),
            efficiency(config, plan, s),
            usage(plan, s),
            requested_vs_used(config, plan, s),
            heap(config, plan, s),
            pressure(config, s),
        ],
    )


__all__ = ["SLUG", "TITLE", "build"]
