"""The live capacity of a stack: `python -m sizing status`, the document's capacity `/status` from Prometheus.

Computed from the raw contract series (cAdvisor, kube-state-metrics, the backend's users per role), so it works
against any Prometheus that holds them, whether or not this project's rules are loaded: each formula-sized pod's
working set, the *config's* formula on its current users, its limit (kube-state-metrics, else the plan) and the
room left under the near-limit threshold; the experiment slots by the same definition as the slots record
(`sizing.core.capacity.slots`); OOM kills in the last 24 h; the HyperStudy alerts firing now.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from pydantic import Field

from sizing.config.capacity import UserMix
from sizing.config.stack import formula_workloads
from sizing.core.capacity import slots
from sizing.core.model import ROLES, Model
from sizing.core.quantity import MIB_BYTES
from sizing.observe.calibration import queries
from sizing.observe.contract import LAST_TERMINATED, LIMITS, RESTARTS
from sizing.observe.promql import CONTAINER, POD, eq, namespace_matcher, regex, selector, statefulset_pod_regex

if TYPE_CHECKING:
    from sizing.config.stack import StackConfig
    from sizing.observe.prometheus import Prometheus
    from sizing.plan.types import Plan

OOM_WINDOW = "24h"
ALERTS = 'ALERTS{alertstate="firing", alertname=~"HyperStudy.+"}'


class PodStatus(Model):
    """One formula-sized pod now."""

    pod: str = Field(description="pod name")
    working_set_mib: float = Field(description="working set of its containers, MiB")
    predicted_mib: int = Field(description="the config's formula on its current users, MiB")
    limit_mib: float = Field(description="its memory limit, MiB")
    limit_source: str = Field(description="kube-state-metrics, or the plan when it exports none")
    users: dict[str, int] = Field(description="connected users per role")
    headroom_mib: float = Field(description="threshold × limit − working set, MiB (negative: above the threshold)")
    near_limit: bool = Field(description="working set above the near-limit threshold of the limit")


class Status(Model):
    """The stack's formula-sized pods, slots, OOM kills and firing alerts now."""

    stack: str = Field(description="stack name")
    namespace: str = Field(description="the stack's namespace")
    threshold: float = Field(description="the near-limit threshold (monitoring.alerts.memory_near_limit)")
    pods: list[PodStatus] = Field(description="each formula-sized pod")
    slots: dict[str, int] = Field(description="experiments of each shape the pods can still admit")
    oom_kills_24h: int = Field(description="container restarts after an OOM kill in the namespace, last 24 h")
    firing_alerts: list[dict[str, Any]] = Field(description="HyperStudy alerts firing for this stack")

    @property
    def near_limit(self) -> bool:
        return any(p.near_limit for p in self.pods)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump()


def _by_pod(result: list[dict[str, Any]]) -> dict[str, float]:
    # NaN (a stale or broken gauge) is no value: the pod is shown without it, not as a crash.
    found = {s["metric"]["pod"]: float(s["value"][1]) for s in result if "pod" in s.get("metric", {})}
    return {pod: value for pod, value in found.items() if math.isfinite(value)}


def status(client: Prometheus, config: StackConfig, plan: Plan, stack: str) -> Status:
    """Query the live state of the stack from `client`."""
    exprs = queries(config)
    namespace = config.kubernetes.namespace
    ns, pods = namespace_matcher(namespace), regex("pod", statefulset_pod_regex(formula_workloads(config)))
    by, container = ", ".join(POD), ", ".join(CONTAINER)
    working_set = _by_pod(client.query(exprs["working_set"]))
    users = {role: _by_pod(client.query(exprs[role])) for role in ROLES}
    # kube-state-metrics replicas or jobs report a container twice: one value per container, then the pod's sum.
    limits_expr = f"sum by ({by}) (max by ({container}) ({selector(LIMITS, ns, pods, eq('resource', 'memory'))}))"
    limits = _by_pod(client.query(limits_expr))
    restarts = f"max by ({container}) (increase({selector(RESTARTS, ns)}[{OOM_WINDOW}]))"
    last_oom = selector(LAST_TERMINATED, ns, eq("reason", "OOMKilled"))
    killed = f"max by ({container}) (max_over_time({last_oom}[{OOM_WINDOW}]))"
    oom = client.query(f"sum(({restarts} > 0) and on ({container}) ({killed} == 1)) or vector(0)")
    threshold = config.monitoring.alerts.memory_near_limit.threshold
    formula = config.capacity.formula
    planned = {w.name: w.pod_memory_limit_mib for w in plan.workloads.values()}
    found = []
    for pod, ws_bytes in sorted(working_set.items()):
        mix = {role: round(users[role].get(pod, 0)) for role in ROLES}
        workload = pod.rsplit("-", 1)[0]
        limit_bytes = limits.get(pod)
        limit_mib = limit_bytes / MIB_BYTES if limit_bytes else float(planned.get(workload, 0))
        ws_mib = ws_bytes / MIB_BYTES
        found.append(
            PodStatus(
                pod=pod,
                working_set_mib=round(ws_mib, 1),
                predicted_mib=formula.memory_mib(UserMix(**mix)),
                limit_mib=round(limit_mib, 1),
                limit_source="kube-state-metrics" if limit_bytes else "plan",
                users=mix,
                headroom_mib=round(threshold * limit_mib - ws_mib, 1),
                near_limit=limit_mib > 0 and ws_mib > threshold * limit_mib,
            )
        )
    shapes = {
        name: formula.users_mib(mix) for name, mix in config.capacity.shapes.items() if formula.users_mib(mix) > 0
    }
    free = {
        name: sum(
            slots(round(p.limit_mib), working_set[p.pod] / MIB_BYTES, size, threshold) for p in found if p.limit_mib
        )
        for name, size in shapes.items()
    }
    alerts = [
        {"alertname": a["metric"].get("alertname"), "severity": a["metric"].get("severity"), "labels": a["metric"]}
        for a in client.query(ALERTS)
        if a["metric"].get("namespace") == namespace or a["metric"].get("stack") == stack
    ]
    return Status(
        stack=stack,
        namespace=namespace,
        threshold=threshold,
        pods=found,
        slots=free,
        oom_kills_24h=round(float(oom[0]["value"][1])) if oom else 0,
        firing_alerts=sorted(alerts, key=lambda a: (str(a["alertname"]), sorted(a["labels"].items()))),
    )
