"""The containers a plan sizes, each once, where its pods run: the one inventory `rightsize` measures
(sizing/observe/rightsize.py) and the drift rules and dashboard watch (monitoring/).

The app's workloads run their main container, named after the workload, and their sidecars in the stack's
namespace; each chart pod its main container (named by the chart's inventory, sizing/facts/charts.py) and sidecars
in the namespace the program installs the chart in, or in the stack's for a pod that runs there whoever installs the
chart (cert-manager's HTTP-01 solver). A sidecar run in several pods under one size (the config reloader of
Prometheus and Alertmanager) is one container.
"""

from __future__ import annotations

from dataclasses import dataclass

from sizing.config.monitoring import STACK_CHART
from sizing.config.stack import StackConfig
from sizing.facts.charts import CERT_MANAGER, CERT_MANAGER_NAMESPACE, CHARTS
from sizing.plan.types import ContainerPlan, Plan, WorkloadPlan


@dataclass(frozen=True)
class PlannedContainer:
    """One container the plan sizes: the namespace its pods run in, its name there, its sizes, and the workload
    whose pods run it (the first, for a sidecar of several)."""

    namespace: str
    container: str
    sizes: WorkloadPlan | ContainerPlan
    workload: WorkloadPlan


def chart_namespace(config: StackConfig, chart: str) -> str:
    """Where the program installs a chart: kube-prometheus-stack in `monitoring.prometheus_namespace`, cert-manager
    in its own namespace."""
    return {STACK_CHART: config.monitoring.prometheus_namespace, CERT_MANAGER.name: CERT_MANAGER_NAMESPACE}[chart]


def planned_containers(config: StackConfig, plan: Plan) -> tuple[PlannedContainer, ...]:
    """Every container the plan sizes, once each, ordered by namespace and container."""
    found: dict[tuple[str, str], PlannedContainer] = {}
    for name, workload in plan.pool_workloads.items():
        namespace, main = config.kubernetes.namespace, name
        if name in plan.chart_workloads:
            pod = next(p for p in CHARTS[workload.source].pods if p.name == name)
            main = pod.main.container
            if not pod.without_install:
                namespace = chart_namespace(config, workload.source)
        found.setdefault((namespace, main), PlannedContainer(namespace, main, workload, workload))
        for sidecar in workload.sidecars:
            found.setdefault((namespace, sidecar.name), PlannedContainer(namespace, sidecar.name, sidecar, workload))
    return tuple(found[key] for key in sorted(found))
