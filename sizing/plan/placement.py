"""Where kube-scheduler may put a pool's pods: the constraints the render gives each workload, and a solver that
finds a placement on a given number of identical nodes, or proves there is none.

The rules are the scheduler's, for the objects `components.workload` renders (one source: `WorkloadPlan.spread`):

- `skew`: `topologySpreadConstraints` on `kubernetes.io/hostname` with `maxSkew: 1`, `whenUnsatisfiable:
  DoNotSchedule` and `nodeTaintsPolicy: Honor`. Every node of the pool is a domain (the pods' nodeSelector names the
  pool; a tainted node, such as one lost and NotReady, is none). A pod may only go to a node holding no more of its
  workload than the emptiest domain, so the workload's pods are balanced over the nodes: each holds ⌊r/n⌋ or ⌈r/n⌉.
  Five replicas on two nodes sit 3/2; on one node, any number.
- `distinct`: required pod anti-affinity on `kubernetes.io/hostname`: at most one pod of the workload per node.
- `none`: no constraint (one replica, or a chart's pod: its chart renders none), only free.

Every pod needs its memory and CPU request free on its node. A placement at n nodes is a count per node and workload.

Losing a node (`recoverable`): the pods elsewhere stay where they are (nothing moves a running pod); the lost node's
pods are rescheduled onto the others, under the same rules over the nodes left (Honor: the lost node is no domain).

The solver first tries a greedy placement (largest workloads first, each pod on the emptiest node that takes it,
which is what the default scoring favours); when that fails it searches every placement up to node symmetry, within
a step budget. `Placement.exact` says whether the answer is proven: a placement found is always valid; "none" is
proven when the search ends within its budget, which it always does for small stacks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sizing.core.model import Spread

# Work of the exhaustive search before it gives up (the greedy answer then stands), counted in node × workload
# cells looked at (each step looks at every cell, each candidate at every node): about 0.1 s. Small stacks (a handful
# of workloads on a few nodes) finish far within it; a stack of hundreds of workloads relies on the greedy placement.
SEARCH_BUDGET = 200_000


@dataclass(frozen=True)
class Group:
    """The identical pods of one workload: how many, what each requests, and how they may share nodes."""

    name: str
    replicas: int
    memory_mib: int
    cpu_m: int
    spread: Spread

    @property
    def constrained(self) -> Spread:
        """The constraint that binds: a single pod has nothing to spread from."""
        return self.spread if self.replicas > 1 else "none"


@dataclass(frozen=True)
class Free:
    """What one node has free for the placed pods (every node alike)."""

    memory_mib: int
    cpu_m: int


Counts = tuple[tuple[int, ...], ...]  # counts[node][group]


class _OutOfBudget(Exception):
    pass


@dataclass(frozen=True)
class Placement:
    """Pods per node and workload, in the order of the groups it was asked for."""

    groups: tuple[Group, ...]
    counts: Counts

    def pods(self) -> tuple[tuple[str, ...], ...]:
        """The pods of each node as `<workload>-<i>`, replicas numbered round the nodes that hold them."""
        names: list[list[str]] = [[] for _ in self.counts]
        for g, group in enumerate(self.groups):
            left = [node[g] for node in self.counts]
            index = 0
            while index < group.replicas:
                for n in range(len(left)):
                    if left[n]:
                        left[n] -= 1
                        names[n].append(f"{group.name}-{index}")
                        index += 1
        return tuple(tuple(node) for node in names)


def spread_bound(groups: Sequence[Group]) -> int:
    """The fewest nodes the constraints alone allow: a distinct workload needs a node per replica."""
    return max((g.replicas for g in groups if g.constrained == "distinct"), default=1)


def place(
    groups: Sequence[Group], nodes: int, free: Free, survive: bool = False, budget: int | None = None
) -> tuple[Placement | None, bool]:
    """A placement of `groups` on `nodes` nodes (with `survive`, one from which any single node's loss is
    recoverable), and whether the answer is exact: (placement, True), (None, True) when none exists, (None, False)
    when the search ran out of budget before finding one or proving there is none."""
    groups = tuple(groups)
    if nodes < 1 or (survive and nodes < 2):
        return None, True
    greedy = _greedy(groups, nodes, free)
    if greedy is not None and (not survive or recoverable(groups, greedy, free)):
        return Placement(groups, greedy), True
    try:
        found = _search(groups, nodes, free, survive, [SEARCH_BUDGET if budget is None else budget])
    except _OutOfBudget:
        return None, False
    return (None if found is None else Placement(groups, found)), True


# --- The greedy placement. -------------------------------------------------------------------------------------


def _order(groups: Sequence[Group], free: Free) -> list[int]:
    """Largest pods first (by the larger share of a node they take), constrained before free at equal size."""
    return sorted(
        range(len(groups)),
        key=lambda g: (
            -max(groups[g].memory_mib / free.memory_mib, groups[g].cpu_m / free.cpu_m),
            groups[g].constrained == "none",
            groups[g].name,
        ),
    )


def _greedy(groups: Sequence[Group], nodes: int, free: Free) -> Counts | None:
    memory, cpu = [free.memory_mib] * nodes, [free.cpu_m] * nodes
    counts = [[0] * len(groups) for _ in range(nodes)]
    per_mib, per_m = 1 / free.memory_mib, 1 / free.cpu_m

    def emptiest(group: Group, count: int, among: Sequence[int]) -> list[int] | None:
        # How empty each node is, the emptiest first, ties to the lower index; None if fewer than `count` fit one pod.
        fits = [n for n in among if memory[n] >= group.memory_mib and cpu[n] >= group.cpu_m]
        if len(fits) < count:
            return None
        return sorted(fits, key=lambda n: (-(memory[n] * per_mib + cpu[n] * per_m), n))[:count]

    def put(g: int, n: int) -> None:
        memory[n] -= groups[g].memory_mib
        cpu[n] -= groups[g].cpu_m
        counts[n][g] += 1

    everyone = range(nodes)
    for g in _order(groups, free):
        group = groups[g]
        kind = group.constrained
        if kind == "distinct" and group.replicas > nodes:
            return None
        if kind == "skew":
            # Full rounds put one pod on every node; the rest go one each to the emptiest nodes.
            for _ in range(group.replicas // nodes):
                if emptiest(group, nodes, everyone) is None:
                    return None
                for n in everyone:
                    put(g, n)
            chosen = emptiest(group, group.replicas % nodes, everyone)
            if chosen is None:
                return None
            for n in chosen:
                put(g, n)
        elif kind == "distinct":
            chosen = emptiest(group, group.replicas, everyone)
            if chosen is None:
                return None
            for n in chosen:
                put(g, n)
        else:
            for _ in range(group.replicas):
                chosen = emptiest(group, 1, everyone)
                if chosen is None:
                    return None
                put(g, chosen[0])
    return tuple(tuple(node) for node in counts)


# --- The exhaustive search. ------------------------------------------------------------------------------------


def _partitions(total: int, parts: int, largest: int) -> Iterator[tuple[int, ...]]:
    """Non-increasing tuples of `parts` non-negative integers summing to `total`, none above `largest`."""
    if parts == 0:
        if total == 0:
            yield ()
        return
    for first in range(min(total, largest), -1, -1):
        if first * parts < total:
            break
        for rest in _partitions(total - first, parts - 1, first):
            yield (first, *rest)


def _additions(
    kind: Spread, replicas: int, nodes: int, classes: list[list[int]], held: Sequence[int]
) -> Iterator[list[int]]:
    """Pods of one group to add per node, one representative per symmetry: `classes` are lists of interchangeable
    node indexes, `held` the group's pods already on each node (0 when placing from scratch)."""
    if kind == "none":
        yield from _spread_free(replicas, classes, nodes)
        return
    if kind == "distinct":
        # One pod on each chosen node, only on nodes without one yet.
        yield from _choose_ones(replicas, [[n for n in c if held[n] == 0] for c in classes], nodes)
        return
    # skew: the final column is balanced, each node at ⌊t/n⌋ or ⌈t/n⌉ and never below what it holds.
    total = sum(held) + replicas
    low, extra = divmod(total, nodes)
    base = [low - held[n] for n in range(nodes)]
    if any(b < -1 or (b == -1 and held[n] != low + 1) for n, b in enumerate(base)):
        return
    forced = [n for n in range(nodes) if base[n] == -1]  # already at ⌈t/n⌉: must be among the high ones
    if len(forced) > extra:
        return
    free = [[n for n in c if base[n] >= 0] for c in classes]
    for chosen in _choose_ones(extra - len(forced), free, nodes):
        yield [max(base[n], 0) + chosen[n] if base[n] >= 0 else 0 for n in range(nodes)]


def _choose_ones(count: int, classes: list[list[int]], nodes: int) -> Iterator[list[int]]:
    """A 0/1 per node with `count` ones, one representative per symmetry: within a class, the first k nodes."""
    sizes = [len(c) for c in classes]

    def walk(i: int, left: int, taken: list[int]) -> Iterator[list[int]]:
        if i == len(classes):
            if left == 0:
                out = [0] * nodes
                for c, k in zip(classes, taken, strict=True):
                    for n in c[:k]:
                        out[n] = 1
                yield out
            return
        if left > sum(sizes[i:]):
            return
        for k in range(min(left, sizes[i]), -1, -1):
            yield from walk(i + 1, left - k, [*taken, k])

    yield from walk(0, count, [])


def _spread_free(count: int, classes: list[list[int]], nodes: int) -> Iterator[list[int]]:
    """Any number per node summing to `count`, one representative per symmetry: non-increasing within a class."""

    def walk(i: int, left: int, parts: list[tuple[int, ...]]) -> Iterator[list[int]]:
        if i == len(classes):
            if left == 0:
                out = [0] * nodes
                for c, part in zip(classes, parts, strict=True):
                    for n, k in zip(c, part, strict=True):
                        out[n] = k
                yield out
            return
        size = len(classes[i])
        for share in range(left, -1, -1):
            for part in _partitions(share, size, share):
                yield from walk(i + 1, left - share, [*parts, part])

    yield from walk(0, count, [])


def _classes(state: Sequence[Sequence[int]], nodes: Sequence[int]) -> list[list[int]]:
    """`nodes` grouped by identical contents: such nodes are interchangeable for everything still to place."""
    found: dict[tuple[int, ...], list[int]] = {}
    for n in nodes:
        found.setdefault(tuple(state[n]), []).append(n)
    return list(found.values())


def _search(groups: Sequence[Group], nodes: int, free: Free, survive: bool, budget: list[int]) -> Counts | None:
    order = _order(groups, free)
    state = [[0] * len(groups) for _ in range(nodes)]
    memory, cpu = [free.memory_mib] * nodes, [free.cpu_m] * nodes

    cells = nodes * len(groups)
    per_mib, per_m = 1 / free.memory_mib, 1 / free.cpu_m

    def walk(i: int) -> Counts | None:
        budget[0] -= cells
        if budget[0] < 0:
            raise _OutOfBudget
        if i == len(order):
            counts = tuple(tuple(node) for node in state)
            return counts if not survive or recoverable(groups, counts, free) else None
        g = order[i]
        group = groups[g]
        if group.constrained == "distinct" and group.replicas > nodes:
            return None
        # Emptiest nodes first, as the greedy placement (and the scheduler's scoring) would choose.
        classes = sorted(_classes(state, range(nodes)), key=lambda c: -(memory[c[0]] * per_mib + cpu[c[0]] * per_m))
        for add in _additions(group.constrained, group.replicas, nodes, classes, [0] * nodes):
            # Every candidate looked at costs its cells, fitting or not: a wide stack has candidates without end.
            budget[0] -= nodes
            if budget[0] < 0:
                raise _OutOfBudget
            if not _shift(state, memory, cpu, g, group, add, 1):
                continue
            found = walk(i + 1) if not survive or _may_recover(groups, state, memory, cpu) else None
            _shift(state, memory, cpu, g, group, add, -1)
            if found is not None:
                return found
        return None

    return walk(0)


def _shift(
    state: list[list[int]], memory: list[int], cpu: list[int], g: int, group: Group, add: Sequence[int], sign: int
) -> bool:
    """Add (sign 1) the pods `add` of group g to the nodes, if each fits the room its node has left, or take them
    back (sign -1). False, and nothing changed, when one does not fit."""
    if sign > 0 and any(
        k and (k * group.memory_mib > memory[n] or k * group.cpu_m > cpu[n]) for n, k in enumerate(add)
    ):
        return False
    for n, k in enumerate(add):
        state[n][g] += sign * k
        memory[n] -= sign * k * group.memory_mib
        cpu[n] -= sign * k * group.cpu_m
    return True


def _may_recover(groups: Sequence[Group], state: Sequence[Sequence[int]], memory: list[int], cpu: list[int]) -> bool:
    """A test a partial placement must pass to ever survive a node's loss: every pod placed so far fits the room
    some other node has left. Room only shrinks as pods are added, so a pod that fits nowhere now never will."""
    nodes = len(state)
    for n in range(nodes):
        for g, count in enumerate(state[n]):
            if count and not any(
                memory[k] >= groups[g].memory_mib and cpu[k] >= groups[g].cpu_m for k in range(nodes) if k != n
            ):
                return False
    return True


# --- Scaling a running workload. --------------------------------------------------------------------------------


def scale_up(groups: Sequence[Group], counts: Counts, free: Free, group: int) -> Counts:
    """One more pod of `groups[group]` on a running placement, as kube-scheduler and the cluster autoscaler place it:
    the pods already there stay; the new one may go to a node with its room and, by its constraint, holding no more
    of its workload than the node that holds fewest (skew) or none (distinct); of those, the emptiest (the default
    scoring's least-allocated). When no node takes it, it is Pending and the autoscaler adds a node, where it goes
    (a pod alone always fits a node: `sizing.plan.nodes.room` checks every pod against one)."""
    g = groups[group]
    state = [list(node) for node in counts]
    used = [
        (
            sum(c * x.memory_mib for c, x in zip(node, groups, strict=True)),
            sum(c * x.cpu_m for c, x in zip(node, groups, strict=True)),
        )
        for node in state
    ]
    lowest = min((node[group] for node in state), default=0)
    allowed = {"skew": lambda n: state[n][group] == lowest, "distinct": lambda n: state[n][group] == 0}
    rule = allowed.get(g.constrained, lambda n: True)
    fits = [
        n
        for n in range(len(state))
        if rule(n) and used[n][0] + g.memory_mib <= free.memory_mib and used[n][1] + g.cpu_m <= free.cpu_m
    ]
    if fits:
        target = min(fits, key=lambda n: ((used[n][0] / free.memory_mib + used[n][1] / free.cpu_m), n))
    else:
        state.append([0] * len(groups))
        target = len(state) - 1
    state[target][group] += 1
    return tuple(tuple(node) for node in state)


# --- Losing a node. --------------------------------------------------------------------------------------------


def recoverable(groups: Sequence[Group], counts: Counts, free: Free) -> bool:
    """Whether, whichever one node is lost, its pods all reschedule onto the nodes left, the pods there staying put."""
    if len(counts) < 2:
        return False
    seen: set[tuple[int, ...]] = set()
    for lost, node in enumerate(counts):
        if node in seen:
            continue  # a node with the same contents is lost the same way
        seen.add(node)
        if not _reschedules(groups, counts, lost, free):
            return False
    return True


def _reschedules(groups: Sequence[Group], counts: Counts, lost: int, free: Free) -> bool:
    # A search of its own budget: running out of it counts as "does not reschedule" (the plan then adds a node
    # rather than promise a recovery it has not found).
    budget = [SEARCH_BUDGET]
    left = [list(node) for n, node in enumerate(counts) if n != lost]
    memory = [free.memory_mib - sum(c * g.memory_mib for c, g in zip(node, groups, strict=True)) for node in left]
    cpu = [free.cpu_m - sum(c * g.cpu_m for c, g in zip(node, groups, strict=True)) for node in left]
    displaced = [g for g in _order(groups, free) if counts[lost][g]]
    nodes = len(left)
    cells = nodes * len(groups)

    def walk(i: int) -> bool:
        budget[0] -= cells
        if budget[0] < 0:
            return False
        if i == len(displaced):
            return True
        g = displaced[i]
        group = groups[g]
        held = [node[g] for node in left]
        for add in _additions(group.constrained, counts[lost][g], nodes, _classes(left, range(nodes)), held):
            budget[0] -= nodes
            if budget[0] < 0:
                return False
            if not _shift(left, memory, cpu, g, group, add, 1):
                continue
            done = walk(i + 1)
            _shift(left, memory, cpu, g, group, add, -1)
            if done:
                return True
        return False

    return walk(0)
