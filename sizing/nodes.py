"""The node pool planner: how many nodes of one machine type hold a set of sized pods, and why.

One planner serves the stack's configured pool (`plan`) and every candidate of the cheapest-pool search
(`recommend`): `Demand` is the set of pods, computed once; `plan_pool` places it on one machine type and raises a
`ConfigError` naming the pod (or the setting) when that machine cannot hold it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from sizing.errors import ConfigError
from sizing.quantity import format_mib, format_millicores

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from sizing.catalogue import MachineType
    from sizing.config import StackConfig
    from sizing.plan import WorkloadPlan

Binding = Literal["memory", "cpu", "spread", "node_loss", "packing"]

# (name, replicas, memory MiB, CPU millicores) of one workload's pods.
_Pods = tuple[str, int, int, int]


class NodePlan(BaseModel):
    """The node pool: how many nodes typical load needs, how many peak load may need, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    machine_type: str = Field(description="machine type of every node")
    spot: bool = Field(description="spot nodes")
    allocatable_memory_mib: int = Field(description="GKE allocatable memory per node, MiB")
    allocatable_cpu_m: int = Field(description="GKE allocatable CPU per node, millicores")
    sustained_cpu_m: int | None = Field(
        None, description="a shared-core type's sustained CPU share, millicores: requests are planned up to it"
    )
    per_node_memory_mib: int = Field(description="requested on every node by the planned per-node pods, MiB")
    per_node_cpu_m: int = Field(description="requested on every node by the planned per-node pods, millicores")
    free_memory_mib: int = Field(description="allocatable memory left per node after overhead and per-node pods")
    free_cpu_m: int = Field(description="plannable CPU left per node after overhead and per-node pods")
    bounds: dict[str, int] = Field(description="lower bounds on the node count: memory, cpu, spread (and node_loss)")
    lower_bound: int = Field(description="the largest of the bounds")
    binding: Binding = Field(description="what sets the minimum: a bound, or packing when it needs more")
    min: int = Field(description="nodes for typical load (every pod at its request), the autoscaler minimum")
    peak: int = Field(description="nodes for peak load (every pod at its limit)")
    max: int = Field(
        description="autoscaler maximum: peak load, and at least min plus the surge nodes and nodes.max_nodes"
    )
    node_loss_required: bool = Field(False, description="the stack requires surviving a node's loss at min")
    survives_node_loss: bool = Field(description="every pod still schedules at its request after losing a node at min")
    placement: tuple[tuple[str, ...], ...] = Field(description="a placement of the pods on the minimum nodes")


class Demand:
    """The pods a pool must hold, split into per-node pods (DaemonSets) and placed ones, with their sums."""

    def __init__(self, workloads: Iterable[WorkloadPlan]) -> None:
        workloads = list(workloads)
        self.agents = [w for w in workloads if w.per_node]
        self.pods = [w for w in workloads if not w.per_node]
        self.agents_mib = sum(w.pod_memory_request_mib for w in self.agents)
        self.agents_m = sum(w.pod_cpu_request_m for w in self.agents)
        self.agents_limit_mib = sum(w.pod_memory_limit_mib for w in self.agents)
        self.typical: list[_Pods] = [
            (w.name, w.replicas, w.pod_memory_request_mib, w.pod_cpu_request_m) for w in self.pods
        ]
        self.peak_load: list[_Pods] = [
            (w.name, w.replicas, w.pod_memory_limit_mib, w.pod_cpu_request_m) for w in self.pods
        ]
        self.memory_mib = sum(w.replicas * w.pod_memory_request_mib for w in self.pods)
        self.cpu_m = sum(w.replicas * w.pod_cpu_request_m for w in self.pods)
        self.limits_mib = sum(w.replicas * w.pod_memory_limit_mib for w in self.pods)
        self.spread = max((w.replicas for w in self.pods), default=1)
        self.largest_limit_mib = max((w.pod_memory_limit_mib for w in self.pods), default=0)
        self.largest_cpu_m = max((w.pod_cpu_request_m for w in self.pods), default=0)


def _pack(
    workloads: list[_Pods], nodes: int, free_mib: int, free_m: int, stack: bool = False
) -> list[list[tuple[str, int]]] | None:
    """Place every pod on `nodes` nodes, the replicas of a workload on distinct nodes; None when it fails.

    Largest workloads first, each replica on the emptiest node that holds it (worst fit): it keeps nodes
    balanced, which is what the spread constraint and the scheduler's own scoring favour. With `stack`, a workload
    with more replicas than nodes places them in rounds of one per node: what its topology spread (max skew 1)
    allows once a node is gone.
    """
    mem, cpu = [free_mib] * nodes, [free_m] * nodes
    per_mib, per_m = 1 / free_mib, 1 / free_m
    pods: list[list[tuple[str, int]]] = [[] for _ in range(nodes)]
    everyone = range(nodes)
    order = sorted(workloads, key=lambda w: (-max(w[2] * per_mib, w[3] * per_m), w[0]))
    for name, replicas, mib, milli in order:
        if replicas > nodes and not stack:
            return None
        placed = 0
        while placed < replicas:
            count = min(nodes, replicas - placed)
            # How empty each node is, -1 where the pod does not fit; the emptiest first, ties to the lower index
            # (a reverse sort keeps equal keys in order).
            empty = [
                m * per_mib + c * per_m if m >= mib and c >= milli else -1.0 for m, c in zip(mem, cpu, strict=True)
            ]
            chosen = sorted(everyone, key=empty.__getitem__, reverse=True)[:count]
            if empty[chosen[-1]] < 0:
                return None
            for i in sorted(chosen):
                mem[i] -= mib
                cpu[i] -= milli
                pods[i].append((name, placed))
                placed += 1
    return pods


def _survives(demand: Demand, nodes: int, free_mib: int, free_m: int) -> bool:
    """Every pod, at its request, still schedules on the nodes left after losing one."""
    return nodes >= 2 and _pack(demand.typical, nodes - 1, free_mib, free_m, stack=True) is not None


def _smallest(start: int, holds: Callable[[int], bool]) -> int:
    """The smallest node count from `start` that holds, by doubling the step, then halving the gap.

    More nodes leave more room, so (for this packer, in practice) the counts that hold are every count above a
    threshold: the search asks O(log n) counts instead of each one. One node per pod, plus one to lose, always
    holds, so it ends.
    """
    if holds(start):
        return start
    failed, step = start, 1
    while not holds(failed + step):
        failed, step = failed + step, step * 2
    held = failed + step
    while held - failed > 1:
        middle = (failed + held) // 2
        if holds(middle):
            held = middle
        else:
            failed = middle
    return held


@dataclass(frozen=True)
class Room:
    """What one node of a machine type offers the placed pods, and the lower bounds on the node count."""

    allocatable_mib: int
    allocatable_m: int
    free_mib: int  # after overhead and the per-node pods at their requests
    free_m: int
    peak_free_mib: int  # after overhead and the per-node pods at their limits
    bounds: dict[str, int]

    @property
    def lower_bound(self) -> int:
        return max(self.bounds.values())


def room(config: StackConfig, demand: Demand, machine_type: str, machine: MachineType) -> Room:
    """The room `machine_type` offers `demand`; a `ConfigError` naming the pod or setting it cannot hold."""
    pool = config.nodes
    alloc_mib, alloc_m = machine.allocatable_memory_mib(), machine.allocatable_cpu_m()
    plannable_m = machine.plannable_cpu_m()
    free_mib, free_m = alloc_mib - pool.overhead.memory, plannable_m - pool.overhead.cpu
    where = f"one {machine_type} node"
    # A shared-core type's requests are planned up to its sustained share, not to what the kubelet admits.
    cpu_note = f", of which its sustained share {format_millicores(plannable_m)}" if plannable_m < alloc_m else ""
    if free_mib <= 0:
        raise ConfigError(
            config.key("nodes.overhead.memory"),
            f"leaves no memory on {where} ({format_mib(max(alloc_mib, 0))} allocatable)",
        )
    if free_m <= 0:
        raise ConfigError(
            config.key("nodes.overhead.cpu"),
            f"leaves no CPU on {where} ({format_millicores(max(alloc_m, 0))} allocatable{cpu_note})",
        )
    agents = demand.agents
    if agents and (free_mib - demand.agents_limit_mib <= 0 or free_m - demand.agents_m <= 0):
        raise ConfigError(
            config.key(agents[-1].config_path),
            f"the pods every node runs ({', '.join(w.name for w in agents)}: {format_mib(demand.agents_limit_mib)} "
            f"at their limits, {format_millicores(demand.agents_m)}) leave nothing on {where} "
            f"({format_mib(free_mib)} / {format_millicores(free_m)} after overhead{cpu_note})",
        )
    peak_free_mib = free_mib - demand.agents_limit_mib
    free_mib, free_m = free_mib - demand.agents_mib, free_m - demand.agents_m
    for w in demand.pods:
        if w.pod_memory_limit_mib > peak_free_mib:
            raise ConfigError(
                config.key(w.config_path),
                f"memory limit {format_mib(w.pod_memory_limit_mib)} is more than {where} offers "
                f"({format_mib(peak_free_mib)} after overhead)",
            )
        if w.pod_cpu_request_m > free_m:
            raise ConfigError(
                config.key(f"{w.config_path}.cpu_request"),
                f"{format_millicores(w.pod_cpu_request_m)} is more than {where} offers "
                f"({format_millicores(free_m)} after overhead{cpu_note})",
            )
    memory_bound = max(1, math.ceil(demand.memory_mib / free_mib))
    cpu_bound = max(1, math.ceil(demand.cpu_m / free_m))
    bounds = {"memory": memory_bound, "cpu": cpu_bound, "spread": demand.spread}
    if pool.survive_node_loss:
        # The requests must fit on the nodes left after one is lost.
        bounds["node_loss"] = max(memory_bound, cpu_bound) + 1
    return Room(alloc_mib, alloc_m, free_mib, free_m, peak_free_mib, bounds)


def plan_pool(
    config: StackConfig, demand: Demand, machine_type: str, machine: MachineType, spot: bool, space: Room | None = None
) -> NodePlan:
    """The node pool plan of `demand` on `machine_type`: its pods at their requests (typical) and limits (peak).

    A per-node workload (a DaemonSet) is not placed: it runs on every node, so its pod comes off each node's free
    memory and CPU like the overhead does, at its requests for the minimum and at its limits for the peak. With
    `nodes.survive_node_loss` the minimum also keeps every pod schedulable after losing any one node.
    """
    pool = config.nodes
    space = space or room(config, demand, machine_type, machine)
    free_mib, free_m, peak_free_mib = space.free_mib, space.free_m, space.peak_free_mib
    bounds, lower_bound = space.bounds, space.lower_bound

    def holds(nodes: int) -> bool:
        if _pack(demand.typical, nodes, free_mib, free_m) is None:
            return False
        return not pool.survive_node_loss or _survives(demand, nodes, free_mib, free_m)

    minimum = _smallest(lower_bound, holds)
    placement = _pack(demand.typical, minimum, free_mib, free_m)
    assert placement is not None
    peak = _smallest(
        max(minimum, math.ceil(demand.limits_mib / peak_free_mib)),
        lambda nodes: _pack(demand.peak_load, nodes, peak_free_mib, free_m) is not None,
    )
    binding: Binding = "packing" if minimum > lower_bound else next(k for k, v in bounds.items() if v == lower_bound)
    return NodePlan(
        machine_type=machine_type,
        spot=spot,
        allocatable_memory_mib=space.allocatable_mib,
        allocatable_cpu_m=space.allocatable_m,
        sustained_cpu_m=machine.sustained_cpu_m,
        per_node_memory_mib=demand.agents_mib,
        per_node_cpu_m=demand.agents_m,
        free_memory_mib=free_mib,
        free_cpu_m=free_m,
        bounds=bounds,
        lower_bound=lower_bound,
        binding=binding,
        min=minimum,
        peak=peak,
        max=max(peak, minimum + pool.surge_nodes, pool.max_nodes or 0),
        node_loss_required=pool.survive_node_loss,
        survives_node_loss=_survives(demand, minimum, free_mib, free_m),
        placement=tuple(
            (*(f"{name}-{replica}" for name, replica in node), *(w.name for w in demand.agents)) for node in placement
        ),
    )


def plan_nodes(config: StackConfig, workloads: Iterable[WorkloadPlan]) -> NodePlan:
    """The node pool plan of the stack's configured machine type."""
    pool = config.nodes
    return plan_pool(config, Demand(workloads), pool.machine_type, config.machine(), pool.spot)
