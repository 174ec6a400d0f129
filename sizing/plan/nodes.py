"""The node pool planner: how many nodes of one machine type hold a set of sized pods, and why.

One planner serves the stack's configured pool (`plan`) and every candidate of the cheapest-pool search
(`recommend`): `Demand` is the set of pods, computed once; `plan_pool` places it on one machine type and raises a
`ConfigError` naming the pod (or the setting) when that machine cannot hold it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sizing.core.errors import ConfigError
from sizing.core.quantity import format_mib, format_millicores
from sizing.plan.placement import Free, Group, Placement, place, recoverable, spread_bound
from sizing.plan.types import Binding, NodePlan

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from sizing.config.stack import StackConfig
    from sizing.facts.catalogue import MachineType
    from sizing.plan.types import WorkloadPlan


# Node counts the minimum is searched for one by one above its lower bound (each count proven or found); past them
# the search doubles and halves, trusting that more nodes hold more.
LINEAR_SEARCH = 16


class Demand:
    """The pods a pool must hold, split into per-node pods (DaemonSets) and placed ones, with their sums."""

    def __init__(self, workloads: Iterable[WorkloadPlan]) -> None:
        workloads = list(workloads)
        self.agents = [w for w in workloads if w.per_node]
        self.pods = [w for w in workloads if not w.per_node]
        self.agents_mib = sum(w.pod_memory_request_mib for w in self.agents)
        self.agents_m = sum(w.pod_cpu_request_m for w in self.agents)
        self.agents_limit_mib = sum(w.pod_memory_limit_mib for w in self.agents)
        self.typical: tuple[Group, ...] = tuple(
            Group(w.name, w.replicas, w.pod_memory_request_mib, w.pod_cpu_request_m, w.spread) for w in self.pods
        )
        self.peak_load: tuple[Group, ...] = tuple(
            Group(w.name, w.replicas, w.pod_memory_limit_mib, w.pod_cpu_request_m, w.spread) for w in self.pods
        )
        self.memory_mib = sum(w.replicas * w.pod_memory_request_mib for w in self.pods)
        self.cpu_m = sum(w.replicas * w.pod_cpu_request_m for w in self.pods)
        self.limits_mib = sum(w.replicas * w.pod_memory_limit_mib for w in self.pods)
        self.spread = spread_bound(self.typical)
        self.largest_limit_mib = max((w.pod_memory_limit_mib for w in self.pods), default=0)
        self.largest_cpu_m = max((w.pod_cpu_request_m for w in self.pods), default=0)

    def names(self, placement: Placement) -> tuple[tuple[str, ...], ...]:
        """The placement's pods per node, and the per-node pods every node runs."""
        return tuple((*node, *(w.name for w in self.agents)) for node in placement.pods())


def _smallest(start: int, holds: Callable[[int], bool]) -> int:
    """The smallest node count from `start` that holds: one by one for `LINEAR_SEARCH` counts (so the answer is the
    smallest even where more nodes do not always hold more: a balanced spread over more nodes is another placement),
    then by doubling the step and halving the gap. One node per pod, plus one to lose, always holds, so it ends."""
    for nodes in range(start, start + LINEAR_SEARCH):
        if holds(nodes):
            return nodes
    failed, step = start + LINEAR_SEARCH - 1, 1
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
        # The requests must fit on the nodes left after one is lost, and a distinct workload's lost pod needs a node
        # without one of its own.
        bounds["node_loss"] = max(memory_bound, cpu_bound, demand.spread) + 1
    return Room(alloc_mib, alloc_m, free_mib, free_m, peak_free_mib, bounds)


def plan_pool(
    config: StackConfig, demand: Demand, machine_type: str, machine: MachineType, spot: bool, space: Room | None = None
) -> NodePlan:
    """The node pool plan of `demand` on `machine_type`: its pods at their requests (typical) and limits (peak),
    placed by the scheduler's rules (`sizing.plan.placement`).

    A per-node workload (a DaemonSet) is not placed: it runs on every node, so its pod comes off each node's free
    memory and CPU like the overhead does, at its requests for the minimum and at its limits for the peak. With
    `nodes.survive_node_loss` the minimum also keeps every pod schedulable after losing any one node.
    """
    pool = config.nodes
    space = space or room(config, demand, machine_type, machine)
    typical_room = Free(space.free_mib, space.free_m)
    bounds, lower_bound = space.bounds, space.lower_bound
    placements: dict[int, Placement] = {}
    unproven: list[int] = []

    def holds(nodes: int) -> bool:
        found, exact = place(demand.typical, nodes, typical_room, survive=pool.survive_node_loss)
        if not exact:
            unproven.append(nodes)
        if found is not None:
            placements[nodes] = found
        return found is not None

    minimum = _smallest(lower_bound, holds)
    placement = placements[minimum]
    peak_room = Free(space.peak_free_mib, space.free_m)
    peak = _smallest(
        max(minimum, math.ceil(demand.limits_mib / space.peak_free_mib)),
        lambda nodes: place(demand.peak_load, nodes, peak_room)[0] is not None,
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
        free_memory_mib=space.free_mib,
        free_cpu_m=space.free_m,
        bounds=bounds,
        lower_bound=lower_bound,
        binding=binding,
        min=minimum,
        min_proven=not any(nodes < minimum for nodes in unproven) and minimum - lower_bound < LINEAR_SEARCH,
        peak=peak,
        max=max(peak, minimum + pool.surge_nodes, pool.max_nodes or 0),
        node_loss_required=pool.survive_node_loss,
        survives_node_loss=recoverable(demand.typical, placement.counts, typical_room),
        placement=demand.names(placement),
    )


def plan_nodes(config: StackConfig, workloads: Iterable[WorkloadPlan]) -> NodePlan:
    """The node pool plan of the stack's configured machine type."""
    pool = config.nodes
    return plan_pool(config, Demand(workloads), pool.machine_type, config.machine(), pool.spot)
