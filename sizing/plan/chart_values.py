"""Helm values that carry the plan: every container's resources (or its controller's sizing flags), replicas,
runtime memory setting and node pool, for any chart of the inventory (`sizing/facts/charts.py`). Plain data: no pulumi.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sizing.facts.charts import Chart, ChartContainer, ChartPod, ValuesPath
from sizing.plan.pool_name import GKE_NODE_POOL_LABEL
from sizing.plan.types import WorkloadPlan


def _get(values: dict[str, Any], path: ValuesPath) -> Any:
    node: Any = values
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _set(values: dict[str, Any], path: ValuesPath, value: Any) -> None:
    node = values
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _resources(cpu: str, request: str, limit: str) -> dict[str, Any]:
    # No CPU limit, as for the app: the request guarantees the share, a quota would only throttle bursts.
    return {"requests": {"cpu": cpu, "memory": request}, "limits": {"memory": limit}}


def _env(pod: ChartPod, w: WorkloadPlan) -> Any:
    env = w.runtime.env
    assert pod.env is not None
    if pod.env.shape == "map":
        return dict(env)
    listed = [{"name": k, "value": v} for k, v in env.items()]
    if pod.env.shape == "list":
        return listed
    # The operator merges a container of the same name into the one it generates.
    return [{"name": pod.main.container, "env": listed}]


def _size(values: dict[str, Any], container: ChartContainer, cpu: str, request: str, limit: str) -> None:
    if container.resources is not None:
        _set(values, container.resources, _resources(cpu, request, limit))
        return
    flags = container.resource_flags
    assert flags is not None
    existing = _get(values, flags.path) or []
    _set(values, flags.path, [*existing, *flags.flags(cpu, request, limit)])


def sized_values(values: dict[str, Any], chart: Chart, pods: Mapping[str, WorkloadPlan], pool_name: str) -> None:
    """Every container's resources, replicas, runtime memory setting and node pool, from the chart's planned `pods`
    (`Plan.chart_workloads`); off what the plan does not hold, on what the program relies on. Pods of the chart the
    plan does not run (none planned) are skipped."""
    for pod in chart.pods:
        w = pods.get(pod.name)
        if w is None:
            continue
        _size(values, pod.main, w.cpu_request, w.memory_request, w.memory_limit)
        for sidecar, sized in zip(pod.sidecars, w.sidecars, strict=True):
            _size(values, sidecar, sized.cpu_request, sized.memory_request, sized.memory_limit)
        if pod.replicas is not None and not pod.per_host:
            _set(values, pod.replicas, w.replicas)
        if pod.node_selector is not None:
            _set(values, pod.node_selector, {GKE_NODE_POOL_LABEL: pool_name})
        if pod.env is not None and w.runtime.env:
            _set(values, pod.env.path, _env(pod, w))
    for path in chart.off:
        _set(values, path, False)
    for path in chart.on:
        _set(values, path, True)
