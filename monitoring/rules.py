"""Prometheus recording rules and alerts of a stack, built from its config and sizing plan.

`rule_groups(config, plan)` is the `spec.groups` of a PrometheusRule (and of GKE Managed Prometheus `Rules`);
`rules_file(config, plan)` the same as a plain rules file for `promtool`. Every coefficient, size, price and
threshold comes from the config or the plan; every metric and rule name from `names`; every matcher from
`selectors`. Series are selected by metric name and the stack's namespace, never by `job`; every recorded series,
the cluster-level ones included, carries the stack's `namespace` label. Plain data: no pulumi import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import yaml

from monitoring import names
from monitoring.selectors import Selectors, build_selectors
from sizing.config.monitoring import RUNBOOK_ALERT, Alert
from sizing.config.stack import StackConfig
from sizing.core.durations import duration_seconds, duration_text
from sizing.core.errors import ConfigError
from sizing.core.model import ROLES
from sizing.core.quantity import MIB_BYTES
from sizing.observe import contract
from sizing.observe.promql import CONTAINER, POD, by, dedup, eq, longest_first, number, quote, regex, selector
from sizing.plan.scaler_jobs import ACTIVE_DEADLINE_SECONDS, RUN_DEADLINE_SECONDS, STARTING_DEADLINE_SECONDS
from sizing.plan.types import Plan

RECORDING_GROUP = "hyperstudy-recording"
DAILY_GROUP = "hyperstudy-daily"
ALERTS_GROUP = "hyperstudy-alerts"
# The recording and alerting groups evaluate at the scrape interval: each evaluation sees the newest sample.
RECORDING_INTERVAL = names.SCRAPE_INTERVAL
ALERTS_INTERVAL = names.SCRAPE_INTERVAL
DAILY_INTERVAL = "5m"
OOM_WINDOW = "10m"
DAILY_WINDOW = "1d"

WORKLOAD = ("namespace", "workload")
NODE = ("node",)


def _percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def _per_pod(series: str) -> str:
    """Summed over a pod's real containers, each deduplicated first."""
    return f"sum by ({by(POD)}) ({dedup(series)})"


def _indent(text: str, spaces: int = 2) -> str:
    return "\n".join(" " * spaces + line if line else line for line in text.splitlines())


def runbook_url(config: StackConfig, alert: str) -> str:
    """The alert's runbook page: `monitoring.runbook_url` with the alert's name in place of `{alert}`."""
    return config.monitoring.runbook_url.replace(RUNBOOK_ALERT, alert)


def _record(name: str, expr: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {"record": name, "expr": expr}
    if labels:
        rule["labels"] = labels
    return rule


def _alert(
    config: StackConfig, stack: str, name: str, settings: Alert, expr: str, summary: str, description: str
) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": settings.for_,
        # `stack` says which Pulumi stack to plan and deploy from (the runbooks' `make plan STACK=<stack>`).
        "labels": {"severity": settings.severity, "stack": stack},
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": runbook_url(config, name),
        },
    }


# --- Backend: the capacity formula against the pods that serve experiments. ---


def _backend_series(s: Selectors) -> dict[str, str]:
    users = s.app(contract.CONNECTED_USERS, s.backend_pods)
    return {
        "working_set": _per_pod(s.cadvisor(contract.WORKING_SET, s.backend_pods)),
        "limit": _per_pod(s.ksm(contract.LIMITS, s.backend_pods, eq("resource", "memory"))),
        # A backend pod is known once it is scraped: a prom-client gauge with labels exports no sample until
        # set, so the default process metric anchors pods that have no users yet.
        "anchor": (
            f"group by ({by(POD)}) ({users})\nor group by ({by(POD)}) ({s.app(contract.PROCESS_RSS, s.backend_pods)})"
        ),
    }


def predicted_expr(config: StackConfig, s: Selectors) -> str:
    """(base + Σ per_role_mib × users{role}) × MiB per backend pod; a role without series counts 0."""
    formula = config.capacity.formula
    series = _backend_series(s)
    lines = [number(formula.base_mib)]
    for i, role in enumerate(ROLES):
        users = s.app(contract.CONNECTED_USERS, s.backend_pods, eq("role", role))
        term = (
            f"{number(getattr(formula.per_role_mib, role))} * (\n"
            f"  sum by ({by(POD)}) ({users})\n"
            f"  or on ({by(POD)}) 0 * (\n{_indent(series['anchor'], 4)}\n  )\n)"
        )
        joiner = "+" if i == 0 else f"+ on ({by(POD)})"
        lines.append(f"{joiner} {term}")
    body = _indent("\n".join(lines))
    return f"(\n{body}\n) * {MIB_BYTES}"


def shape_bytes(config: StackConfig) -> dict[str, int]:
    """Memory one more experiment of each shape costs (no base), bytes; shapes whose users need none are left out."""
    formula = config.capacity.formula
    sizes = {name: formula.users_mib(mix) * MIB_BYTES for name, mix in sorted(config.capacity.shapes.items())}
    return {name: size for name, size in sizes.items() if size > 0}


def with_stack_namespace(expr: str, s: Selectors) -> str:
    """`expr` labelled `namespace="<the stack's namespace>"`: a cluster-level series has no namespace of its own, and
    two stacks sharing one Prometheus would otherwise record the same series (and overwrite each other's samples)."""
    return f'label_replace(\n{_indent(expr)},\n  "namespace", {quote(s.namespace)}, "", ""\n)'


def _stack_zero(s: Selectors) -> str:
    """0 labelled with the stack's namespace: what a sum over no series at all stands for."""
    return f'label_replace(vector(0), "namespace", {quote(s.namespace)}, "", "")'


def slots_expr(s: Selectors, size: int, threshold: float) -> str:
    """Σ over backend pods of max(0, ⌊(threshold × limit − working set) ÷ shape bytes⌋): `sizing.core.capacity.slots`.

    Counted under the near-limit threshold, so an experiment that fits never trips HyperStudyMemoryNearLimit; 0
    when no backend pod reports at all (nothing can be admitted where no pod runs), so HyperStudyCapacityLow fires
    rather than going silent with its series.
    """
    series = _backend_series(s)
    # The threshold as the fraction it is written as (0.9 → 9 / 10): limit × 9 is exact, and so is the division
    # wherever the room ends on a whole byte, where 0.9 × limit in floating point may fall a byte short of it.
    ratio = Fraction(repr(float(threshold)))
    return (
        "sum by (namespace) (\n"
        "  clamp_min(\n"
        "    floor(\n"
        "      (\n"
        f"{_indent(series['limit'], 8)}\n"
        f"        * {ratio.numerator} / {ratio.denominator}\n"
        f"        - on ({by(POD)})\n"
        f"{_indent(series['working_set'], 8)}\n"
        "      )\n"
        f"      / {size}\n"
        "    ),\n"
        "    0\n"
        "  )\n"
        ")\n"
        f"or\n{_stack_zero(s)}"
    )


def _backend_rules(config: StackConfig, s: Selectors) -> list[dict[str, Any]]:
    series = _backend_series(s)
    formula = config.capacity.formula
    rules = [_record(names.PREDICTED, predicted_expr(config, s))]
    threshold = config.monitoring.alerts.memory_near_limit.threshold
    rules += [
        _record(names.SLOTS, slots_expr(s, size, threshold), {"shape": name})
        for name, size in shape_bytes(config).items()
    ]
    rules.append(
        _record(
            names.PREDICTION_ACCURACY,
            f"{series['working_set']}\n/ on ({by(POD)})\n({selector(names.PREDICTED, s.ns)} > 0)",
        )
    )
    by_role = [
        f"sum by (namespace, role) ({s.app(contract.CONNECTED_USERS, s.backend_pods, eq('role', role))})"
        f" * {number(getattr(formula.per_role_mib, role))} * {MIB_BYTES}"
        for role in ROLES
    ]
    rules.append(_record(names.MEMORY_BY_ROLE, "\nor\n".join(by_role)))
    return rules


# --- Workloads: working set, requests and limits per workload. ---


def _workload_sum(series: str, s: Selectors) -> str:
    return f"sum by ({by(WORKLOAD)}) (\n  {s.with_workload(dedup(series))}\n)"


def _workload_rules(s: Selectors) -> list[dict[str, Any]]:
    memory = eq("resource", "memory")
    ws, req, lim = (
        selector(n, s.ns) for n in (names.WORKLOAD_WORKING_SET, names.WORKLOAD_REQUESTS, names.WORKLOAD_LIMITS)
    )
    on = f"/ on ({by(WORKLOAD)})"
    container_limit = f"({dedup(s.ksm(contract.LIMITS, memory))} > 0)"
    return [
        # Per container, the unit the kernel OOM-kills: the near-limit alert and the dashboard count the same thing.
        _record(
            names.CONTAINER_LIMIT_UTILISATION,
            f"{dedup(s.cadvisor(contract.WORKING_SET))}\n/ on ({by(CONTAINER)})\n{container_limit}",
        ),
        _record(names.WORKLOAD_WORKING_SET, _workload_sum(s.cadvisor(contract.WORKING_SET, s.workload_pods), s)),
        _record(names.WORKLOAD_REQUESTS, _workload_sum(s.ksm(contract.REQUESTS, s.workload_pods, memory), s)),
        _record(names.WORKLOAD_LIMITS, _workload_sum(s.ksm(contract.LIMITS, s.workload_pods, memory), s)),
        _record(names.REQUEST_UTILISATION, f"{ws}\n{on}\n({req} > 0)"),
        _record(names.LIMIT_UTILISATION, f"{ws}\n{on}\n({lim} > 0)"),
        _record(
            names.EFFICIENCY,
            f"sum by (namespace) ({ws})\n/ on (namespace)\n(sum by (namespace) ({req}) > 0)",
        ),
    ]


# --- Cost: nodes priced from the plan. ---


def pool_nodes(s: Selectors) -> str:
    """One series per node of the stack's pool (`{node}` 1), by the node pool label kube-state-metrics exports once
    it is allowlisted: on a shared cluster the other pools' nodes are someone else's."""
    labels = s.ksm(contract.NODE_LABELS, eq(names.NODE_POOL_LABEL, s.pool), namespaced=False)
    return f"max by ({by(NODE)}) ({labels})"


def on_pool_nodes(expr: str, s: Selectors) -> str:
    """`expr` (a vector with a `node` label) kept for the nodes of the stack's pool only."""
    return f"{expr}\n* on (node) group_left ()\n{pool_nodes(s)}"


def active_pods() -> str:
    """`{namespace, pod}` 1 for every Pending or Running pod: what the scheduler still holds room for. A Succeeded or
    Failed pod keeps its requests in kube-state-metrics until it is deleted, but no longer on a node."""
    phase = selector(contract.POD_PHASE, regex("phase", "Pending|Running"))
    return f"(max by ({by(POD)}) ({phase}) == 1)"


def pool_pods(s: Selectors) -> str:
    """`{namespace, pod}` 1 for every pod scheduled on a node of the stack's pool."""
    scheduled = f"max by ({by((*POD, 'node'))}) ({selector(contract.POD_INFO)})"
    return f"max by ({by(POD)}) (\n{_indent(on_pool_nodes(scheduled, s))}\n)"


def memory_requests(*matchers: str) -> str:
    """Memory requests, one value per container however many kube-state-metrics replicas report it."""
    return dedup(selector(contract.REQUESTS, eq("resource", "memory"), *matchers))


def nodes_expr(s: Selectors) -> str:
    """The nodes of the stack's pool, each once however many kube-state-metrics replicas or jobs report it; 0 when
    the pool has none (or kube-state-metrics does not export the pool label)."""
    return with_stack_namespace(f"count(\n  {pool_nodes(s)}\n)\nor vector(0)", s)


def pool_upgrading_expr(s: Selectors) -> str:
    """`{}` 1 while the stack's pool is being upgraded: GKE's surge upgrade adds a node of the new version, then
    cordons and drains the old ones one at a time, so from the surge node's arrival to the last old node's removal
    the pool runs two kubelet versions, and while a node drains it is cordoned. Either one counts (a node-pool update
    that keeps the version still cordons each node it replaces); each node once, however many kube-state-metrics
    replicas or jobs report it."""
    info = s.ksm(contract.NODE_INFO, namespaced=False)
    versions = on_pool_nodes(f"max by (node, kubelet_version) ({info})", s)
    cordoned = on_pool_nodes(f"max by ({by(NODE)}) ({s.ksm(contract.NODE_UNSCHEDULABLE, namespaced=False)})", s)
    return (
        f"count(\n  count by (kubelet_version) (\n{_indent(versions, 4)}\n  )\n) > 1\n"
        f"or\ncount(\n{_indent(cordoned)}\n  == 1\n) > 0"
    )


def pool_allocatable_expr(s: Selectors) -> str:
    """Σ allocatable memory over the pool's nodes: what its nodes are paid for."""
    allocatable = s.ksm(contract.NODE_ALLOCATABLE, eq("resource", "memory"), namespaced=False)
    per_node = on_pool_nodes(f"max by ({by(NODE)}) ({allocatable})", s)
    return with_stack_namespace(f"sum(\n{_indent(per_node)}\n)\nor vector(0)", s)


def _part(expr: str, part: str) -> str:
    return f'label_replace(\n{_indent(expr)},\n  "role", {quote(part)}, "", ""\n)'


def backend_held_expr(s: Selectors) -> str:
    """Σ over backend pods of the larger of the pod's memory request and its formula memory: what it holds. A pod's
    request counts, as every other pod's does, only while it is Pending or Running on the pool's nodes."""
    predicted = selector(names.PREDICTED, s.ns)
    on_pool = (
        f"{memory_requests(s.ns, s.backend_pods)}\n* on ({by(POD)}) group_left ()\n{pool_pods(s)}\n"
        f"* on ({by(POD)}) group_left ()\n{active_pods()}"
    )
    requested = f"sum by ({by(POD)}) (\n{_indent(on_pool)}\n)"
    on = f"on ({by(POD)})"
    return f"sum by (namespace) (\n  ({requested} >= {on} {predicted})\n  or {on} {predicted}\n  or {on} {requested}\n)"


def other_pool_requests_expr(s: Selectors) -> str:
    """The memory requests of every Pending or Running pod on the pool's nodes but the backend's."""
    on_pool = (
        f"{memory_requests()}\n* on ({by(POD)}) group_left ()\n{pool_pods(s)}\n"
        f"* on ({by(POD)}) group_left ()\n{active_pods()}"
    )
    if s.has_backend:
        on_pool = f"(\n{_indent(on_pool)}\n)\nunless on ({by(POD)})\n{memory_requests(s.ns, s.backend_pods)}"
    return with_stack_namespace(f"sum(\n{_indent(on_pool)}\n)\nor vector(0)", s)


def pool_memory_parts_expr(config: StackConfig, s: Selectors) -> str:
    """The pool's allocatable memory split into parts that add up to it (or to what is held, if that is more):

    - each role: its users' share of the capacity formula on the backend pods (`per_role_mib` × users);
    - `backend_base`: the formula's base of every backend pod;
    - `backend_idle`: what the backend pods hold beyond the formula (their request, where above the prediction);
    - `other_workloads`: the memory requests of every other Pending or Running pod on the pool's nodes;
    - `unused`: allocatable memory no pod holds.
    """
    other = selector(names.OTHER_POOL_REQUESTS, s.ns)
    taken = other
    parts = []
    if s.has_backend:
        predicted, held = selector(names.PREDICTED, s.ns), selector(names.BACKEND_HELD, s.ns)
        base = config.capacity.formula.base_mib * MIB_BYTES
        parts += [
            f"sum by (namespace, role) ({selector(names.MEMORY_BY_ROLE, s.ns)})",
            _part(f"count by (namespace) ({predicted}) * {base}", "backend_base"),
            _part(f"clamp_min({held} - on (namespace) sum by (namespace) ({predicted}), 0)", "backend_idle"),
        ]
        taken = f"({other} + on (namespace) ({held} or {_stack_zero(s)}))"
    pool = selector(names.POOL_ALLOCATABLE, s.ns)
    parts += [_part(other, "other_workloads"), _part(f"clamp_min({pool} - on (namespace) {taken}, 0)", "unused")]
    return "\nor\n".join(parts)


def _cost_rules(config: StackConfig, s: Selectors, plan: Plan) -> list[dict[str, Any]]:
    # Every cluster-level series is read back by the stack's namespace: the other stacks' copies are not ours.
    cost = selector(names.COST, s.ns)
    parts = selector(names.POOL_MEMORY_BY_PART, s.ns)
    rules = [
        _record(names.NODES, nodes_expr(s)),
        _record(names.COST, cost_expr(plan, s)),
        _record(names.POOL_ALLOCATABLE, pool_allocatable_expr(s)),
    ]
    if s.has_backend:
        rules.append(_record(names.BACKEND_HELD, backend_held_expr(s)))
    rules += [
        _record(names.OTHER_POOL_REQUESTS, other_pool_requests_expr(s)),
        _record(names.POOL_MEMORY_BY_PART, pool_memory_parts_expr(config, s)),
        # Each part's share of the memory the pool holds, times the pool's cost: the parts add up to the cost.
        _record(
            names.COST_BY_ROLE,
            f"{parts}\n/ on (namespace) group_left ()\n(sum by (namespace) ({parts}) > 0)\n"
            f"* on (namespace) group_left ()\n{cost}",
        ),
    ]
    rules.append(_record(names.BILL, bill_expr(plan, s)))
    baseline = plan.cost.baseline_monthly_usd
    rules.append(_record(names.SAVINGS, f"{number(baseline)} - {cost}"))
    if baseline > 0:
        rules.append(_record(names.SAVINGS_RATIO, f"{selector(names.SAVINGS, s.ns)} / {number(baseline)}"))
    observed = plan.cost.observed_baseline_monthly_usd
    if observed is not None:
        # The observed bill was a node bill: it is compared with the pool's cost, as the plan does.
        rules.append(_record(names.OBSERVED_SAVINGS, f"{number(observed)} - {cost}"))
        rules.append(
            _record(names.OBSERVED_SAVINGS_RATIO, f"{selector(names.OBSERVED_SAVINGS, s.ns)} / {number(observed)}")
        )
    return rules


def cost_expr(plan: Plan, s: Selectors) -> str:
    """The pool's monthly cost at its running node count. With a commitment (`CostPlan.commitment`) the committed
    nodes are paid at the committed price even while fewer run, and nodes above them at the on-demand price."""
    nodes, c = selector(names.NODES, s.ns), plan.cost.commitment
    if c is None:
        return f"{nodes} * {number(plan.cost.node_usd_month)}"
    n = number(c.committed_nodes)
    return (
        f"clamp_max({nodes}, {n}) * {number(plan.cost.node_usd_month)}\n"
        f"+ clamp_min({nodes} - {n}, 0) * {number(c.on_demand_node_usd_month)}\n"
        f"+ clamp_min({n} - {nodes}, 0) * {number(c.machine_usd_month)}"
    )


def bill_expr(plan: Plan, s: Selectors) -> str:
    """The whole monthly bill at the pool's node count: the pool's cost, the lines that do not scale with it, and
    the per-node ones (external addresses, the NAT gateway up to its cap), priced by the plan (`CostPlan.rates`)."""
    r = plan.cost.rates
    nodes, cost = selector(names.NODES, s.ns), selector(names.COST, s.ns)
    expr = f"{cost} + {number(r.fixed_usd_month)}"
    if r.node_ip_usd_month:
        expr += f"\n+ on (namespace)\n{nodes} * {number(r.node_ip_usd_month)}"
    if r.nat_vm_usd_month:
        expr += f"\n+ on (namespace)\nclamp_max({nodes} * {number(r.nat_vm_usd_month)}, {number(r.nat_cap_usd_month)})"
    return expr


def _daily_rules(config: StackConfig, s: Selectors) -> list[dict[str, Any]]:
    ws = selector(names.WORKLOAD_WORKING_SET, s.ns)
    cost = selector(names.COST, s.ns)
    return [
        _record(names.COST_MAX_1D, f"max_over_time({cost}[{DAILY_WINDOW}])"),
        _record(names.COST_AVG_1D, f"avg_over_time({cost}[{DAILY_WINDOW}])"),
        _record(names.WORKING_SET_MAX_1D, f"max_over_time({ws}[{DAILY_WINDOW}])"),
        _record(names.WORKING_SET_AVG_1D, f"avg_over_time({ws}[{DAILY_WINDOW}])"),
        *_daily_drift_rules(config, s),
    ]


# --- Requested vs used per container: the drift from the plan's sizes. ---

# The labels of a per-container record: the stack's namespace (every record carries it), the pod's own namespace (a
# chart's pods run in the chart's) and the container.
DRIFT = ("namespace", "pod_namespace", "container")
DRIFT_RATE_WINDOW = "5m"
# The share of the day above the request is counted on this grid: a day of it is DAY_STEPS points (288), absent ones
# (no pod of the container ran) counted as not above, so a Job that ran ten minutes cannot be "above most of the day".
# Every 5 minutes rather than every sample: 10 % of a day is 29 points, and a query holds 288 points per container at
# once (a Prometheus holds 50 M by default; promtool's tests 10 k).
DRIFT_STEP = "5m"
DAY_STEPS = duration_seconds(DAILY_WINDOW) // duration_seconds(DRIFT_STEP)
# "For a week": the day records cover the 7 days before now when read back over 6 days (each covers the day before
# its own time), and the record must have existed 6 days ago, so the container has at least 6 days of history.
WEEK_OF_DAYS = "6d"
# HyperStudyContainerRequestDrift's `reason` and `resource` labels.
DRIFT_ABOVE, DRIFT_BELOW = "above", "below"
CPU, MEMORY = "cpu", "memory"


def in_stack_namespace(expr: str, s: Selectors) -> str:
    """A per-container series moved into the stack's namespace, its own kept as `pod_namespace`: the chart pods'
    namespaces are not the stack's, and every record is read back (by the alerts, the dashboards) by the stack's."""
    own = f'label_replace(\n{_indent(expr)},\n  "pod_namespace", "$1", "namespace", "(.*)"\n)'
    return with_stack_namespace(own, s)


def _max_per_container(series: list[str], s: Selectors) -> str:
    """The largest over a container's pods (each pod's container deduplicated first), for every planned container:
    its pods share one size, which must hold the largest of them."""
    parts = [f"max by (namespace, container) (\n  {dedup(one)}\n)" for one in series]
    return in_stack_namespace("\nor\n".join(parts), s)


def _drift_rules(s: Selectors) -> list[dict[str, Any]]:
    """The per-container base, recorded at the scrape interval like the per-container limit utilisation: instant
    queries over a few dozen series (prod: 20 containers in 3 namespaces), the CPU counter's rate over a 5 m window
    read once per scrape here rather than 1 440 times a day by every daily evaluation."""
    rate = [f"rate({one}[{DRIFT_RATE_WINDOW}])" for one in s.planned(contract.CPU_USAGE)]
    cpu, memory = eq("resource", CPU), eq("resource", MEMORY)
    return [
        _record(names.CONTAINER_CPU_USAGE, _max_per_container(rate, s)),
        _record(names.CONTAINER_MEMORY_USAGE, _max_per_container(s.planned(contract.WORKING_SET), s)),
        _record(names.CONTAINER_CPU_REQUEST, _max_per_container(s.planned(contract.REQUESTS, cpu), s)),
        _record(names.CONTAINER_MEMORY_REQUEST, _max_per_container(s.planned(contract.REQUESTS, memory), s)),
        _record(names.CONTAINER_MEMORY_LIMIT, _max_per_container(s.planned(contract.LIMITS, memory), s)),
    ]


def _ratio(numerator: str, denominator: str) -> str:
    return f"{numerator}\n/ on ({by(DRIFT)})\n({denominator} > 0)"


def above_request_expr(usage: str, request: str, threshold: float) -> str:
    """The share of the last day `usage` was above `threshold` × `request`, on the DRIFT_STEP grid."""
    above = f"{usage} > bool on ({by(DRIFT)}) ({request} * {number(threshold)})"
    return f"sum_over_time((\n  {above}\n)[{DAILY_WINDOW}:{DRIFT_STEP}]) / {DAY_STEPS}"


def _daily_drift_rules(config: StackConfig, s: Selectors) -> list[dict[str, Any]]:
    """A day of the per-container base, every DAILY_INTERVAL: each reads 2 880 recorded samples per container (a day
    at the scrape interval), the share above the request 288 subquery steps of two recorded series; prod's 20
    containers make some 0.3 M samples every 5 minutes (about 1 k a second), where a query engine reads millions a
    second, and nothing here reads cAdvisor's raw series."""
    threshold = config.monitoring.alerts.request_drift.threshold
    ns = s.ns
    cpu, memory = selector(names.CONTAINER_CPU_USAGE, ns), selector(names.CONTAINER_MEMORY_USAGE, ns)
    cpu_request = selector(names.CONTAINER_CPU_REQUEST, ns)
    memory_request = selector(names.CONTAINER_MEMORY_REQUEST, ns)
    memory_max = selector(names.CONTAINER_MEMORY_MAX_1D, ns)
    return [
        _record(names.CONTAINER_CPU_P95_1D, f"quantile_over_time(0.95, {cpu}[{DAILY_WINDOW}])"),
        _record(names.CONTAINER_CPU_MAX_1D, f"max_over_time({cpu}[{DAILY_WINDOW}])"),
        _record(names.CONTAINER_MEMORY_P95_1D, f"quantile_over_time(0.95, {memory}[{DAILY_WINDOW}])"),
        _record(names.CONTAINER_MEMORY_MAX_1D, f"max_over_time({memory}[{DAILY_WINDOW}])"),
        # Against the request and limit set now: what the render set from the plan.
        _record(names.CONTAINER_CPU_P95_REQUEST_1D, _ratio(selector(names.CONTAINER_CPU_P95_1D, ns), cpu_request)),
        _record(names.CONTAINER_MEMORY_MAX_REQUEST_1D, _ratio(memory_max, memory_request)),
        _record(names.CONTAINER_MEMORY_MAX_LIMIT_1D, _ratio(memory_max, selector(names.CONTAINER_MEMORY_LIMIT, ns))),
        _record(names.CONTAINER_CPU_ABOVE_REQUEST_1D, above_request_expr(cpu, cpu_request, threshold)),
        _record(names.CONTAINER_MEMORY_ABOVE_REQUEST_1D, above_request_expr(memory, memory_request, threshold)),
    ]


def _labelled(expr: str, **labels: str) -> str:
    for name, value in labels.items():
        expr = f'label_replace(\n{_indent(expr)},\n  {quote(name)}, {quote(value)}, "", ""\n)'
    return expr


def request_drift_expr(config: StackConfig, s: Selectors) -> str:
    """Each planned container above its request for most of a day, or well below it for a week, labelled `reason`
    (above, below) and `resource` (cpu, memory):

    - above: the share of the last day it ran above `threshold` × its request is at least `above_fraction` (GKE's
      underprovisioned rule, 150 % for 10 % of the time, over one day rather than GKE's 15); the value is that share;
    - below: on every day of the last week its CPU p95 (memory: its peak, which a memory request must hold) stayed
      under `below_ratio` × its request, the request held at least `below_min_cpu_m` (`below_min_memory_mib`) more
      than the week's highest day needed, and the container has 6 days of history at least; the value is the
      week's highest day ÷ the request.

    The formula-sized workloads' memory is left out: the capacity formula sizes it, HyperStudyMemoryPredictionDrift
    watches it and `python -m sizing fit` re-fits it.
    """
    settings = config.monitoring.alerts.request_drift
    ns = s.ns
    on = f"on ({by(DRIFT)})"

    def below(ratio: str, usage: str, request: str, floor: float) -> str:
        highest_ratio = f"max_over_time({selector(ratio, ns)}[{WEEK_OF_DAYS}])"
        highest = f"max_over_time({selector(usage, ns)}[{WEEK_OF_DAYS}])"
        return (
            f"{highest_ratio} < {number(settings.below_ratio)}\n"
            f"and {on}\n({selector(request, ns)} - {on} {highest}) >= {number(floor)}\n"
            f"and {on}\n{selector(ratio, ns)} offset {WEEK_OF_DAYS}"
        )

    def above(share: str) -> str:
        return f"{selector(share, ns)} >= {number(settings.above_fraction)}"

    parts = [
        _labelled(above(names.CONTAINER_CPU_ABOVE_REQUEST_1D), reason=DRIFT_ABOVE, resource=CPU),
        _labelled(
            below(
                names.CONTAINER_CPU_P95_REQUEST_1D,
                names.CONTAINER_CPU_P95_1D,
                names.CONTAINER_CPU_REQUEST,
                settings.below_min_cpu_m / 1000,
            ),
            reason=DRIFT_BELOW,
            resource=CPU,
        ),
    ]
    memory = [
        above(names.CONTAINER_MEMORY_ABOVE_REQUEST_1D),
        below(
            names.CONTAINER_MEMORY_MAX_REQUEST_1D,
            names.CONTAINER_MEMORY_MAX_1D,
            names.CONTAINER_MEMORY_REQUEST,
            settings.below_min_memory_mib * MIB_BYTES,
        ),
    ]
    if s.has_backend:
        formula = selector(
            names.CONTAINER_MEMORY_REQUEST,
            ns,
            eq("pod_namespace", s.namespace),
            regex("container", f"^({'|'.join(s.backend)})$"),
        )
        memory = [f"(\n{_indent(expr)}\n)\nunless {on}\n{formula}" for expr in memory]
    parts += [
        _labelled(memory[0], reason=DRIFT_ABOVE, resource=MEMORY),
        _labelled(memory[1], reason=DRIFT_BELOW, resource=MEMORY),
    ]
    return "\nor\n".join(parts)


# --- Alerts. ---


def memory_overcommit_expr(s: Selectors, threshold: float) -> str:
    """kubernetes-mixin's KubeMemoryOvercommit on the metric contract's series: Σ memory requests − (Σ allocatable −
    the largest node's allocatable) above `threshold`, i.e. the cluster's requests do not fit after losing its
    largest node; silent on a one-node cluster (nothing survives a node loss there).

    Requests are counted cluster-wide, each container once (`max by (namespace, pod, container)`), allocatable
    each node once (`max by (node)`), so kube-state-metrics replicas or jobs do not double them. The result
    carries the stack's namespace like the cluster-level records, so two stacks' alerts stay distinct.
    """
    memory = eq("resource", "memory")
    requests = f"sum(\n    {memory_requests()}\n    * on ({by(POD)}) group_left ()\n    {active_pods()}\n  )"
    allocatable = s.ksm(contract.NODE_ALLOCATABLE, memory, namespaced=False)
    survivors = f"(sum(max by ({by(NODE)}) ({allocatable})) - on () max({allocatable}))"
    condition = f"(\n  {requests}\n  - on () {survivors}\n) > {number(threshold)}\nand on ()\n{survivors} > 0"
    return with_stack_namespace(condition, s)


def workload_unavailable_expr(config: StackConfig, s: Selectors, threshold: float) -> str | None:
    """Each app workload whose ready (StatefulSet) or available (Deployment) replicas ÷ desired replicas are at or
    below `threshold` (0: none ready), while it asks for any; labelled `workload` (and `statefulset` or
    `deployment`), each series deduplicated over kube-state-metrics replicas or jobs. None without app workloads."""
    parts = []
    kinds = (
        ("StatefulSet", "statefulset", contract.STATEFULSET_READY, contract.STATEFULSET_REPLICAS),
        ("Deployment", "deployment", contract.DEPLOYMENT_AVAILABLE, contract.DEPLOYMENT_REPLICAS),
    )
    for kind, label, ready_metric, desired_metric in kinds:
        workloads = sorted(n for n, w in config.workloads.items() if w.app.kind == kind)
        if not workloads:
            continue
        which = regex(label, f"^({'|'.join(longest_first(workloads))})$")
        identity = ("namespace", label)
        ready = dedup(s.ksm(ready_metric, which), identity)
        desired = dedup(s.ksm(desired_metric, which), identity)
        ratio = f"{ready}\n/ on ({by(identity)})\n({desired} > 0)\n<= {number(threshold)}"
        parts.append(f'label_replace(\n{_indent(ratio)},\n  "workload", "$1", {quote(label)}, "(.+)"\n)')
    return "\nor\n".join(parts) or None


# V8's young generation (new, new_large_object) and its read-only snapshot space are outside what
# --max-old-space-size caps; every other space (old, code, map, large_object, code_large_object, and the shared and
# trusted spaces of newer V8) is the old generation it caps.
OLD_GENERATION = regex("space", "new|new_large_object|read_only").replace("=~", "!~", 1)


def heap_expr(s: Selectors, plan: Plan, threshold: float) -> str | None:
    """Each Node.js workload's old generation in use against its own --max-old-space-size from the plan."""
    parts = []
    for name in sorted(plan.workloads):
        runtime = plan.workloads[name].runtime
        if runtime.kind != "nodejs" or not runtime.memory_mib:
            continue
        spaces = s.app(contract.NODEJS_HEAP_SPACE_USED, s.workload_pod_matcher(name), OLD_GENERATION)
        heap = f"sum by ({by(POD)}) ({dedup(spaces, (*POD, 'space'))})"
        parts.append(f"{heap}\n/ ({runtime.memory_mib} * {MIB_BYTES})\n> {number(threshold)}")
    return "\nor\n".join(parts) or None


# --- Scheduled capacity (capacity.schedule): the scaler CronJobs and their Jobs, and the replicas they ask for. ---

STATEFULSET = ("namespace", "statefulset")
JOB = ("namespace", "job_name")
CRONJOB = ("namespace", "cronjob")
# A scaler CronJob counts as having missed a run once its next schedule time is this far in the past: twice the
# CronJobs' startingDeadlineSeconds (sizing/plan/scaler_jobs.py), after which the controller no longer starts the
# run at all, so a run it starts late but within its deadline never counts.
SCALER_MISSED_AFTER_SECONDS = 2 * STARTING_DEADLINE_SECONDS
# The `reason` label of HyperStudyScheduledScalingFailed: why the scaler did not do its job.
SCALER_FAILED, SCALER_UNFINISHED = "failed", "unfinished"
SCALER_MISSED, SCALER_SUSPENDED, SCALER_MISSING = "missed", "suspended", "missing"


def scheduled_not_ready_for(config: StackConfig) -> str:
    """The not-ready alert's pending time: the shortest scale-up lead of the windows (the time the pods have to
    become ready before a window starts), plus the alert's own `for` (0m by default: it fires at the start)."""
    lead = min(window.lead_minutes for window in config.capacity.schedule)
    own = config.monitoring.alerts.scheduled_capacity_not_ready.for_
    return duration_text(lead * 60 + duration_seconds(own))


def _scaled(plan: Plan) -> tuple[str, str]:
    """The workload the windows scale, and the windows as a regex alternation, longest first."""
    schedule = plan.schedule
    assert schedule is not None
    return schedule.workload, "|".join(longest_first(w.name for w in schedule.windows))


def scaler_job_regex(plan: Plan) -> str:
    """The scaler Jobs of the plan's windows, the window as group 1: `<workload>-<window>-<up|down>-<suffix>`, the
    CronJob's name (components/schedule.py) and what its controller appends (a run started by hand from the
    CronJob: whatever name it was given after that prefix). Windows longest first, so `lab-up` is tried before
    `lab` in `backend-lab-up-up-…`."""
    workload, windows = _scaled(plan)
    return f"^{workload}-({windows})-(?:up|down)-.+$"


def scaler_cronjob_regex(plan: Plan) -> str:
    """The scaler CronJobs of the plan's windows, the window as group 1: `<workload>-<window>-<up|down>`."""
    workload, windows = _scaled(plan)
    return f"^{workload}-({windows})-(?:up|down)$"


def _job_cronjob_regex(plan: Plan) -> str:
    """A scaler Job's name with its CronJob's as group 1 (the same names as `scaler_job_regex`)."""
    workload, windows = _scaled(plan)
    return f"^({workload}-(?:{windows})-(?:up|down))-.+$"


def expected_cronjobs(plan: Plan) -> tuple[str, ...]:
    """The CronJobs the plan's actions run (components/schedule.py: `<workload>-<action>`), in the plan's order;
    none for windows the configured replicas hold, or a one-off window that has passed."""
    schedule = plan.schedule
    assert schedule is not None
    return tuple(f"{schedule.workload}-{action.name}" for action in schedule.actions)


def scheduled_not_ready_expr(s: Selectors, workload: str, base_replicas: int, threshold: float) -> str:
    """The formula-sized StatefulSet's desired replicas (what the scaler sets) − its ready ones, above `threshold`,
    while the desired replicas are above the configured `base_replicas` (a scale-up holds them there): a pod not
    ready outside the windows is not a window starting short. Each deduplicated over kube-state-metrics replicas or
    jobs."""
    statefulset = eq("statefulset", workload)
    desired = dedup(s.ksm(contract.STATEFULSET_REPLICAS, statefulset), STATEFULSET)
    ready = dedup(s.ksm(contract.STATEFULSET_READY, statefulset), STATEFULSET)
    on = f"on ({by(STATEFULSET)})"
    return f"{desired}\n- {on}\n{ready}\n> {number(threshold)}\nand {on}\n{desired}\n> {base_replicas}"


def _reason(expr: str, reason: str) -> str:
    return f'label_replace(\n{_indent(expr)},\n  "reason", {quote(reason)}, "", ""\n)'


def latest_run_unsettled_expr(s: Selectors, plan: Plan) -> str:
    """`{namespace, cronjob}` the scheduled time of the CronJob's latest run, for each scaler CronJob whose latest run
    has not succeeded (yet): no Job of the CronJob completed successfully at or after that time. A CronJob that never
    succeeded has no success time at all (kube-state-metrics exports none until one has): its latest run counts too.
    Any Job of the CronJob counts as a success, a run by hand (`kubectl create job --from=cronjob/…`) included."""
    cronjobs = regex("cronjob", scaler_cronjob_regex(plan))
    scheduled = dedup(s.ksm(contract.CRONJOB_LAST_SCHEDULE_TIME, cronjobs), CRONJOB)
    succeeded = dedup(s.ksm(contract.CRONJOB_LAST_SUCCESS_TIME, cronjobs), CRONJOB)
    on = f"on ({by(CRONJOB)})"
    return f"{scheduled}\nunless {on}\n(\n  {succeeded}\n  >= {on}\n  {scheduled}\n)"


def _with_cronjob(expr: str, plan: Plan) -> str:
    """A Job's series labelled with its CronJob (`cronjob`, from `job_name`)."""
    return f'label_replace(\n{_indent(expr)},\n  "cronjob", "$1", "job_name", {quote(_job_cronjob_regex(plan))}\n)'


def scheduled_scaling_failed_expr(s: Selectors, plan: Plan, threshold: float) -> str:
    """Every way a scaler CronJob of the windows does not do its job, each labelled with the CronJob (`cronjob`), its
    window and the `reason`. Each CronJob is judged by its latest run, so a later success resolves it:

    - `failed`: the latest run has not succeeded and one of its Jobs (started at or after the run's scheduled time)
      failed (its Failed condition: back-off limit or deadline), or its failed pods exceed `threshold` while none has
      succeeded (it is still retrying); also labelled `job_name`;
    - `unfinished`: the latest run has not succeeded RUN_DEADLINE_SECONDS after its scheduled time (the latest it
      could, started at the end of its starting deadline with its whole active deadline), and no Job of it says why
      (deleted, or never reported); the value is how many seconds ago it was due;
    - `missed`: its next schedule time lies more than SCALER_MISSED_AFTER_SECONDS in the past, so the controller did
      not start a due run within its starting deadline (the controller or the API server was down) and never will;
      the value is how many seconds ago it was due;
    - `suspended`: the CronJob is suspended, so no run starts;
    - `missing`: a CronJob the plan's actions run does not exist, while kube-state-metrics reports the StatefulSet
      it scales (so a kube-state-metrics that reports nothing at all is not taken for every CronJob gone).
    """
    schedule = plan.schedule
    assert schedule is not None
    jobs = regex("job_name", scaler_job_regex(plan))
    failed = f"{dedup(s.ksm(contract.JOB_FAILED, jobs, eq('condition', 'true')), JOB)} == 1"
    pods = f"{dedup(s.ksm(contract.JOB_PODS_FAILED, jobs), JOB)} > {number(threshold)}"
    succeeded = f"{dedup(s.ksm(contract.JOB_PODS_SUCCEEDED, jobs), JOB)} > 0"
    job_failed = f"{failed}\nor\n(\n  {pods}\n  unless on ({by(JOB)})\n  {succeeded}\n)"
    unsettled = latest_run_unsettled_expr(s, plan)
    on_cronjob = f"on ({by(CRONJOB)})"
    started = _with_cronjob(dedup(s.ksm(contract.JOB_START_TIME, jobs), JOB), plan)
    latest_jobs = f"{started}\n>= {on_cronjob} group_left ()\n(\n{_indent(unsettled)}\n)"
    latest_failed = f"{_with_cronjob(job_failed, plan)}\nand on ({by(JOB)})\n(\n{_indent(latest_jobs)}\n)"
    overdue = f"time() - (\n{_indent(unsettled)}\n) > {RUN_DEADLINE_SECONDS}"
    unfinished = f"{overdue}\nunless {on_cronjob}\n(\n{_indent(latest_failed)}\n)"
    cronjobs = regex("cronjob", scaler_cronjob_regex(plan))
    next_run = dedup(s.ksm(contract.CRONJOB_NEXT_SCHEDULE_TIME, cronjobs), CRONJOB)
    suspended = dedup(s.ksm(contract.CRONJOB_SUSPENDED, cronjobs), CRONJOB)
    parts = [
        _reason(latest_failed, SCALER_FAILED),
        _reason(unfinished, SCALER_UNFINISHED),
        _reason(f"time() - {next_run} > {SCALER_MISSED_AFTER_SECONDS}", SCALER_MISSED),
        _reason(f"{suspended} == 1", SCALER_SUSPENDED),
    ]
    expected = expected_cronjobs(plan)
    if expected:
        # absent() of one CronJob's series: its labels are the selector's equality matchers (namespace, cronjob).
        absent = "\nor\n".join(f"absent({s.ksm(contract.CRONJOB_SUSPENDED, eq('cronjob', name))})" for name in expected)
        reported = dedup(s.ksm(contract.STATEFULSET_REPLICAS, eq("statefulset", schedule.workload)), STATEFULSET)
        parts.append(_reason(f"(\n{_indent(absent)}\n)\nand on (namespace)\n{reported}", SCALER_MISSING))
    body = "\nor\n".join(parts)
    return f'label_replace(\n{_indent(body)},\n  "window", "$1", "cronjob", {quote(scaler_cronjob_regex(plan))}\n)'


def _reason_text(texts: dict[str, str]) -> str:
    """A Go template choosing the text of the alert's `reason` label (the last one for any other)."""
    *first, (_, last) = texts.items()
    branches = "".join(
        f"{{{{ {'if' if i == 0 else 'else if'} eq $labels.reason {quote(reason)} }}}}{text}"
        for i, (reason, text) in enumerate(first)
    )
    return f"{branches}{{{{ else }}}}{last}{{{{ end }}}}"


# --- The alerts: one spec per alert, in the order they are rendered. ---


@dataclass(frozen=True)
class Stack:
    """What an alert's text and expression are built from: the stack's config, its plan and its selectors."""

    config: StackConfig
    plan: Plan
    s: Selectors


Text = Callable[[Stack, float], str]


@dataclass(frozen=True)
class AlertSpec:
    """One alert: its name, the `monitoring.alerts` key that holds its threshold, `for:` and severity, and builders
    of its expression, summary and description from the stack and that threshold. The rules render `ALERTS` in
    order; the tests read the same table for the settings of each alert."""

    name: str
    setting: str
    expr: Callable[[Stack, float], str | None]  # None: the stack has nothing for it to watch
    summary: Text
    description: Text
    applies: Callable[[Stack], bool] = lambda stack: True
    # The `for:` when it is not the setting's own (the scheduled not-ready alert adds the windows' shortest lead).
    pending: Callable[[Stack], str] | None = None


def _memory_near_limit(x: Stack, t: float) -> str:
    return f"{selector(names.CONTAINER_LIMIT_UTILISATION, x.s.ns)} > {number(t)}"


def _oom_killed(x: Stack, t: float) -> str:
    restarts = f"increase({x.s.ksm(contract.RESTARTS)}[{OOM_WINDOW}])"
    reason = f"min_over_time({x.s.ksm(contract.LAST_TERMINATED, eq('reason', 'OOMKilled'))}[{OOM_WINDOW}])"
    return f"{dedup(restarts)} > {number(t)}\nand on ({by(CONTAINER)})\n{dedup(reason)} == 1"


def _prediction_drift(x: Stack, t: float) -> str:
    # Only above the prediction, and only while the pod serves users: below it costs money, not experiments, and an
    # idle pod tests nothing but the base.
    return (
        f"{selector(names.PREDICTION_ACCURACY, x.s.ns)} - 1 > {number(t)}\nand on ({by(POD)})\n"
        f"sum by ({by(POD)}) ({x.s.app(contract.CONNECTED_USERS, x.s.backend_pods)}) > 0"
    )


def _node_pool_at_max(x: Stack, t: float) -> str:
    # A surge upgrade adds a node for its duration: that node is not the autoscaler's answer to load.
    at = x.plan.nodes.max - t
    return f"{selector(names.NODES, x.s.ns)} >= {number(at)}\nunless on ()\n(\n{_indent(pool_upgrading_expr(x.s))}\n)"


def _has_schedule(x: Stack) -> bool:
    return x.plan.schedule is not None


def _not_ready_description(x: Stack, t: float) -> str:
    schedule = x.plan.schedule
    assert schedule is not None
    windows = ", ".join(w.name for w in schedule.windows)
    lead = min(window.lead_minutes for window in x.config.capacity.schedule)
    pending = scheduled_not_ready_for(x.config)
    return (
        "StatefulSet {{ $labels.namespace }}/{{ $labels.statefulset }} has had {{ $value | humanize }} fewer ready "
        f"replicas than desired for {pending} (alert above {number(t)}), while a scale-up holds it above its "
        f"configured {schedule.base_replicas}; its scheduled windows ({windows}) scale it up {lead} minutes or more "
        "ahead, so a scale-up's pods were not ready by the window's start (nodes did not come: quota, spot "
        "stock-out, the pool's max) and its experiments wait."
    )


def _scaling_failed_summary(x: Stack, t: float) -> str:
    return "Scaler {{ $labels.cronjob }} of window {{ $labels.window }} " + _reason_text(
        {
            SCALER_FAILED: "failed: Job {{ $labels.job_name }}",
            SCALER_UNFINISHED: "did not finish its latest run",
            SCALER_MISSED: "missed a run",
            SCALER_SUSPENDED: "is suspended",
            SCALER_MISSING: "does not exist",
        }
    )


def _scaling_failed_description(x: Stack, t: float) -> str:
    schedule = x.plan.schedule
    assert schedule is not None
    missed_after = duration_text(SCALER_MISSED_AFTER_SECONDS)
    deadlines = (
        f"{duration_text(RUN_DEADLINE_SECONDS)} (its {STARTING_DEADLINE_SECONDS} s starting and "
        f"{ACTIVE_DEADLINE_SECONDS} s active deadlines)"
    )
    return (
        "CronJob {{ $labels.namespace }}/{{ $labels.cronjob }} sets the replicas of "
        + schedule.workload
        + " for the scheduled window {{ $labels.window }}, and "
        + _reason_text(
            {
                SCALER_FAILED: "the Job {{ $labels.job_name }} of its latest run failed (or its pods keep failing): "
                "the replicas it sets never arrived",
                SCALER_UNFINISHED: "its latest run, due {{ $value | humanizeDuration }} ago, has not succeeded within "
                f"{deadlines}: the replicas it sets never arrived",
                SCALER_MISSED: f"a run it was due for more than {missed_after} ago never started (the CronJob "
                "controller did not create its Job within the starting deadline): the replicas it sets never "
                "arrived",
                SCALER_SUSPENDED: "it is suspended: none of its runs start",
                SCALER_MISSING: "it does not exist: none of its runs start",
            }
        )
        + ". A scale-up: the window starts short of its replicas; a scale-down: the pool stays larger and costs more."
    )


def _scheduled_not_ready(x: Stack, t: float) -> str:
    schedule = x.plan.schedule
    assert schedule is not None
    return scheduled_not_ready_expr(x.s, schedule.workload, schedule.base_replicas, t)


def figure(metric: str, unit: str) -> str:
    """A Go template printing `metric` of the alert's container (a record of the same labels), humanized: `cores`
    as Kubernetes writes CPU (250m), `bytes` in binary prefixes (64MiB)."""
    labels = ", ".join(f"{label}=%q" for label in DRIFT)
    args = " ".join(f"$labels.{label}" for label in DRIFT)
    shown = "humanize" if unit == "cores" else "humanize1024"
    suffix = "" if unit == "cores" else "B"
    return (
        f'{{{{ with printf "{metric}{{{labels}}}" {args} | query }}}}'
        f"{{{{ . | first | value | {shown} }}}}{suffix}{{{{ end }}}}"
    )


def _drift_text(texts: dict[tuple[str, str], str]) -> str:
    """A Go template choosing the text of the alert's `reason` and `resource` labels."""
    branches = "".join(
        f"{{{{ {'if' if i == 0 else 'else if'} and (eq $labels.reason {quote(reason)}) "
        f"(eq $labels.resource {quote(resource)}) }}}}{text}"
        for i, ((reason, resource), text) in enumerate(texts.items())
    )
    return f"{branches}{{{{ end }}}}"


def _drift_summary(x: Stack, t: float) -> str:
    return (
        "Container {{ $labels.container }} ({{ $labels.pod_namespace }}) runs "
        "{{ if eq $labels.reason " + quote(DRIFT_ABOVE) + " }}above{{ else }}well below{{ end }} "
        "its {{ $labels.resource }} request"
    )


def _drift_description(x: Stack, t: float) -> str:
    settings = x.config.monitoring.alerts.request_drift
    value = "{{ $value | humanizePercentage }}"

    def figures(resource: str) -> tuple[str, str, str]:
        if resource == CPU:
            metrics, unit = (
                (names.CONTAINER_CPU_P95_1D, names.CONTAINER_CPU_MAX_1D, names.CONTAINER_CPU_REQUEST),
                "cores",
            )
        else:
            metrics = (names.CONTAINER_MEMORY_P95_1D, names.CONTAINER_MEMORY_MAX_1D, names.CONTAINER_MEMORY_REQUEST)
            unit = "bytes"
        p95, peak, request = (figure(metric, unit) for metric in metrics)
        return p95, peak, request

    def above(resource: str) -> str:
        p95, peak, request = figures(resource)
        return (
            f"ran above {_percent(t)} of its {resource} request for {value} of the last day (alert from "
            f"{_percent(settings.above_fraction)} of the day): used p95 {p95}, peak {peak} over the day, requested "
            f"{request}. "
        )

    def below(resource: str, daily: str) -> str:
        p95, peak, request = figures(resource)
        return (
            f"used under {_percent(settings.below_ratio)} of its {resource} request on every day of the last week: "
            f"its highest daily {daily} was {value} of the request. Requested {request}; used today p95 {p95}, peak "
            f"{peak}. "
        )

    texts = {
        (DRIFT_ABOVE, CPU): above(CPU) + "Nothing throttles it (no CPU limit), but the scheduler reserved less than "
        "it takes: under contention it runs on the other pods' share, and the plan packs the pool on requests that "
        "are short.",
        (DRIFT_ABOVE, MEMORY): above(MEMORY) + "Under node memory pressure the kubelet evicts the pods furthest above "
        "their memory request first, and the plan packs the pool on requests that are short.",
        (DRIFT_BELOW, CPU): below(CPU, "p95") + "The pool holds CPU for it that it does not use, and CPU requests "
        "decide how many nodes the pool needs.",
        (DRIFT_BELOW, MEMORY): below(MEMORY, "peak") + "The pool holds memory for it that it does not use.",
    }
    return (
        "Container {{ $labels.container }} of namespace {{ $labels.pod_namespace }} "
        + _drift_text(texts)
        + f" Re-size it from its history: python -m sizing rightsize --stack {x.plan.stack}."
    )


ALERTS: tuple[AlertSpec, ...] = (
    AlertSpec(
        names.ALERT_MEMORY_NEAR_LIMIT,
        "memory_near_limit",
        _memory_near_limit,
        lambda x, t: "Container {{ $labels.container }} of {{ $labels.pod }} is near its memory limit",
        lambda x, t: (
            "Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} uses "
            "{{ $value | humanizePercentage }} of its memory limit (alert above " + _percent(t) + "); "
            "at the limit the kernel OOM-kills it."
        ),
    ),
    AlertSpec(
        names.ALERT_OOM_KILLED,
        "oom_killed",
        _oom_killed,
        lambda x, t: "Container {{ $labels.container }} of {{ $labels.pod }} was OOM-killed",
        lambda x, t: (
            "Container {{ $labels.container }} of pod {{ $labels.namespace }}/{{ $labels.pod }} restarted "
            f"in the last {OOM_WINDOW} and its last termination was OOMKilled: it reached its memory limit."
        ),
    ),
    AlertSpec(
        names.ALERT_PREDICTION_DRIFT,
        "prediction_drift",
        _prediction_drift,
        lambda x, t: "Backend pod {{ $labels.pod }} uses more memory than the capacity formula predicts",
        lambda x, t: (
            "Backend pod {{ $labels.namespace }}/{{ $labels.pod }} uses "
            "{{ $value | humanizePercentage }} more memory than the capacity formula predicts for its "
            "connected users (alert above " + _percent(t) + "): its limit and the slots rest on the formula, "
            "whose coefficients may no longer match the backend."
        ),
        applies=lambda x: x.s.has_backend,
    ),
    AlertSpec(
        names.ALERT_CAPACITY_LOW,
        "capacity_low",
        lambda x, t: f"{selector(names.SLOTS, x.s.ns, eq('shape', x.config.monitoring.capacity_shape))} < {number(t)}",
        lambda x, t: f"Few {x.config.monitoring.capacity_shape} experiments still fit on the backend pods",
        lambda x, t: (
            f"The backend pods of {x.config.kubernetes.namespace} can admit "
            + "{{ $value | humanize }} more "
            + f"{x.config.monitoring.capacity_shape} experiments below the near-limit threshold "
            f"(alert below {number(t)}; 0 also when no backend pod reports its memory)."
        ),
        applies=lambda x: x.s.has_backend,
    ),
    AlertSpec(
        names.ALERT_MEMORY_OVERCOMMIT,
        "memory_overcommit",
        lambda x, t: memory_overcommit_expr(x.s, t),
        lambda x, t: "Memory requests would not fit after losing a node",
        lambda x, t: (
            "The cluster's memory requests exceed by {{ $value | humanize1024 }}B what its nodes hold "
            "without the largest one: a node failure or drain would leave pods Pending."
        ),
    ),
    AlertSpec(
        names.ALERT_NODE_POOL_AT_MAX,
        "node_pool_at_max",
        _node_pool_at_max,
        lambda x, t: "The node pool is at its autoscaling maximum",
        lambda x, t: (
            "The node pool "
            + x.s.pool
            + " runs {{ $value | humanize }} nodes; its autoscaling maximum is "
            + f"{x.plan.nodes.max}: one more pod that does not fit stays Pending. (Silent while the pool upgrades: a "
            "node cordoned, or two kubelet versions.)"
        ),
    ),
    AlertSpec(
        names.ALERT_HEAP_NEAR_LIMIT,
        "heap_near_limit",
        lambda x, t: heap_expr(x.s, x.plan, t),
        lambda x, t: "Node.js old generation of {{ $labels.pod }} is near its --max-old-space-size",
        lambda x, t: (
            "Pod {{ $labels.namespace }}/{{ $labels.pod }} holds {{ $value | humanizePercentage }} of its V8 "
            "old-generation ceiling in the old spaces (alert above " + _percent(t) + "); at the ceiling "
            "Node.js aborts with 'heap out of memory'."
        ),
    ),
    AlertSpec(
        names.ALERT_SCHEDULED_CAPACITY_NOT_READY,
        "scheduled_capacity_not_ready",
        _scheduled_not_ready,
        lambda x, t: (
            "{{ $labels.statefulset }} has fewer ready replicas than it asks for: a scheduled window may start short"
        ),
        _not_ready_description,
        applies=_has_schedule,
        pending=lambda x: scheduled_not_ready_for(x.config),
    ),
    AlertSpec(
        names.ALERT_SCHEDULED_SCALING_FAILED,
        "scheduled_scaling_failed",
        lambda x, t: scheduled_scaling_failed_expr(x.s, x.plan, t),
        _scaling_failed_summary,
        _scaling_failed_description,
        applies=_has_schedule,
    ),
    AlertSpec(
        names.ALERT_WORKLOAD_UNAVAILABLE,
        "workload_unavailable",
        lambda x, t: workload_unavailable_expr(x.config, x.s, t),
        lambda x, t: "{{ $labels.workload }} is unavailable: {{ $value | humanizePercentage }} of its pods ready",
        lambda x, t: (
            "Workload {{ $labels.namespace }}/{{ $labels.workload }} has {{ $value | humanizePercentage }} "
            f"of its desired replicas ready (alert at or below {_percent(t)}): what it serves is down or degraded. "
            "On a lost node a StatefulSet's pod (redis-0, backend-N) comes back only once the Node object is "
            "deleted: see the runbook."
        ),
    ),
    AlertSpec(
        names.ALERT_REQUEST_DRIFT,
        "request_drift",
        lambda x, t: request_drift_expr(x.config, x.s),
        _drift_summary,
        _drift_description,
    ),
)
SETTINGS: dict[str, str] = {spec.name: spec.setting for spec in ALERTS}


def alert_settings(config: StackConfig, alert: str) -> Alert:
    """The `monitoring.alerts` entry of an alert: its threshold, `for:` and severity."""
    return getattr(config.monitoring.alerts, SETTINGS[alert])


def _alerts(config: StackConfig, plan: Plan, s: Selectors) -> list[dict[str, Any]]:
    stack = Stack(config, plan, s)
    rules = []
    for spec in ALERTS:
        if not spec.applies(stack):
            continue
        settings = alert_settings(config, spec.name)
        t = settings.threshold
        expr = spec.expr(stack, t)
        if expr is None:
            continue
        if spec.pending is not None:
            settings = settings.model_copy(update={"for_": spec.pending(stack)})
        summary, description = spec.summary(stack, t), spec.description(stack, t)
        rules.append(_alert(config, plan.stack, spec.name, settings, expr, summary, description))
    if config.monitoring.managed_prometheus:
        rules.append(watchdog(config, plan.stack, s))
    return rules


def watchdog(config: StackConfig, stack: str, s: Selectors) -> dict[str, Any]:
    """The heartbeat for an evaluator that has none of its own (Managed Prometheus; kube-prometheus-stack ships one):
    always firing, so that the dead-man's switch it is routed to pages when it stops arriving. Severity `none`, as
    kube-prometheus-stack's: it must never reach a person's receiver."""
    return {
        "alert": names.WATCHDOG,
        "expr": f'label_replace(vector(1), "namespace", {quote(s.namespace)}, "", "")',
        "labels": {"severity": "none", "stack": stack},
        "annotations": {
            "summary": "The alerting pipeline works (this alert always fires)",
            "description": "Always firing while the rules of {{ $labels.namespace }} are evaluated and their alerts "
            "reach Alertmanager: it is sent to the dead-man's switch (monitoring.alerting.heartbeat), which pages "
            "when it stops arriving.",
            "runbook_url": runbook_url(config, names.WATCHDOG),
        },
    }


def rule_groups(config: StackConfig, plan: Plan) -> list[dict[str, Any]]:
    """The rule groups of the stack: `spec.groups` of a PrometheusRule, or `groups` of a rules file."""
    s = build_selectors(config, plan)
    if s.has_backend and config.monitoring.capacity_shape not in shape_bytes(config):
        raise ConfigError(
            "monitoring.capacity_shape",
            f"experiment shape {config.monitoring.capacity_shape!r} has no users that need memory: no slots to count",
        )
    recording = [
        *(_backend_rules(config, s) if s.has_backend else []),
        *_workload_rules(s),
        *_cost_rules(config, s, plan),
        *_drift_rules(s),
    ]
    return [
        {"name": RECORDING_GROUP, "interval": RECORDING_INTERVAL, "rules": recording},
        {"name": DAILY_GROUP, "interval": DAILY_INTERVAL, "rules": _daily_rules(config, s)},
        {"name": ALERTS_GROUP, "interval": ALERTS_INTERVAL, "rules": _alerts(config, plan, s)},
    ]


def recorded_names(groups: list[dict[str, Any]]) -> set[str]:
    """Every series name the groups record."""
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as literal blocks, so the rendered file reads like hand-written rules."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _str)


def rules_file(config: StackConfig, plan: Plan) -> str:
    """The groups as a Prometheus rules file (YAML, keys sorted): what `promtool check rules` reads."""
    return yaml.dump(
        {"groups": rule_groups(config, plan)},
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=120,
    )
