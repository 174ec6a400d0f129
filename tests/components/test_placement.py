"""The planner against kube-scheduler's rules, read off the render: on small random stacks, the plan's minimum node
count is the smallest count on which a brute-force search finds every pod a place under the constraints the
`Workload` component renders (its pod template's topology spread and pod anti-affinity), and losing any one node
leaves every pod somewhere to go when the stack requires it. The brute force knows nothing of sizing.plan.placement: it
enumerates every count of every workload on every node, and replays a lost node's pods one at a time by the
scheduler's own filter (a pod may go to node j when count_j + 1 − the smallest count over the domains ≤ maxSkew,
the domains being the nodes the constraint's nodeTaintsPolicy admits).

A planner that reads `skew` as `distinct` (one replica per node) fails the comparison: the guard that the test can.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from components.workload import HOSTNAME_TOPOLOGY, Workload, WorkloadArgs
from sizing.config.loader import parse_stack_config
from sizing.facts.workloads import WorkloadSpec
from sizing.plan.nodes import Demand, plan_nodes
from sizing.plan.placement import Free, place, scale_up
from sizing.plan.sizes import size_workloads
from sizing.plan.types import NodePlan, WorkloadPlan
from tests.sizing.stacks import generic_app, runnable

STACKS = 200
SEED = 15


@dataclass(frozen=True)
class Rendered:
    """One workload as the render constrains it."""

    name: str
    replicas: int
    memory_mib: int
    cpu_m: int
    max_skew: int | None  # a DoNotSchedule hostname spread over the pool's nodes
    honor_taints: bool  # a tainted (lost) node is no domain of the spread
    one_per_node: bool  # required pod anti-affinity on the hostname, selecting its own pods


def _stack(rng: random.Random) -> dict[str, Any]:
    workloads = {}
    for index in range(rng.randint(1, 3)):
        request = rng.choice([300, 500, 700, 900, 1200, 1600])
        workloads[f"w{index}"] = {
            "replicas": rng.randint(1, 3),
            "cpu_request": f"{rng.choice([50, 100, 200, 300])}m",
            "spread": rng.choice(["skew", "distinct"]),
            "memory": {"optimized": {"request": f"{request}Mi", "limit": f"{request}Mi"},
                       "baseline": {"request": f"{request}Mi", "limit": f"{request}Mi"}},
        }  # fmt: skip
    return {
        "capacity": {"load": {"typical": {"small": 1}, "peak": {"medium": 1}}},
        **runnable(workloads),
        # e2-medium: 2460 MiB and 740m free per node after this overhead.
        "nodes": {"machine_type": "e2-medium", "overhead": {"memory": "512Mi", "cpu": "200m"},
                  "survive_node_loss": rng.random() < 0.5},
    }  # fmt: skip


def _rendered(plan: WorkloadPlan) -> Rendered:
    """What the component renders for the workload's pods, as the scheduler reads it."""
    args = WorkloadArgs(
        name=plan.name,
        plan=plan,
        spec=WorkloadSpec.model_validate(generic_app()),  # a Deployment whose runtime ("none") matches these plans
        image="example.org/app:1.0",
        namespace="test",
        instance="test",
        release="kube-prometheus-stack",
        prometheus_namespace="monitoring",
        prometheus_operator=True,
        managed_prometheus=False,
        node_pool="pool",
    )
    template = Workload._pod_template(args)
    labels = template.metadata.labels
    spec = template.spec
    max_skew, honor = None, False
    for constraint in spec.topology_spread_constraints or []:
        assert constraint.topology_key == HOSTNAME_TOPOLOGY and constraint.when_unsatisfiable == "DoNotSchedule"
        assert constraint.label_selector.match_labels.items() <= labels.items(), "the spread selects its own pods"
        max_skew, honor = constraint.max_skew, constraint.node_taints_policy == "Honor"
    one_per_node = False
    anti = spec.affinity.pod_anti_affinity if spec.affinity is not None else None
    for term in (anti.required_during_scheduling_ignored_during_execution if anti else None) or []:
        assert term.topology_key == HOSTNAME_TOPOLOGY
        assert term.label_selector.match_labels.items() <= labels.items(), "the anti-affinity selects its own pods"
        one_per_node = True
    return Rendered(
        plan.name, plan.replicas, plan.pod_memory_request_mib, plan.pod_cpu_request_m, max_skew, honor, one_per_node
    )


def _columns(w: Rendered, nodes: int) -> Iterator[tuple[int, ...]]:
    """Every count of the workload per node its constraints allow as a final state: a spread's counts within
    maxSkew of each other (reachable one pod at a time: `test_balanced_columns_are_what_the_filter_reaches`)."""
    for column in itertools.product(range(w.replicas + 1), repeat=nodes):
        if sum(column) != w.replicas:
            continue
        if w.one_per_node and max(column) > 1:
            continue
        if w.max_skew is not None and max(column) - min(column) > w.max_skew:
            continue
        yield column


def _fits(ws: list[Rendered], counts: list[list[int]], free: tuple[int, int]) -> bool:
    for node in counts:
        if sum(c * w.memory_mib for c, w in zip(node, ws, strict=True)) > free[0]:
            return False
        if sum(c * w.cpu_m for c, w in zip(node, ws, strict=True)) > free[1]:
            return False
    return True


def _allowed(w: Rendered, g: int, counts: list[list[int]], target: int, lost: int) -> bool:
    """The scheduler's filter for one more pod of workload g on node `target`, with node `lost` NotReady."""
    if w.one_per_node and counts[target][g] >= 1:
        return False
    if w.max_skew is not None:
        domains = [n for n in range(len(counts)) if n != lost or not w.honor_taints]
        lowest = min(0 if n == lost else counts[n][g] for n in domains)
        if counts[target][g] + 1 - lowest > w.max_skew:
            return False
    return True


def _recovers(ws: list[Rendered], counts: list[list[int]], lost: int, free: tuple[int, int]) -> bool:
    """The lost node's pods, one at a time in every order and onto every node the filter allows, all placed."""
    state = [list(node) if n != lost else [0] * len(ws) for n, node in enumerate(counts)]
    pending = [g for g, c in enumerate(counts[lost]) for _ in range(c)]

    def walk(left: list[int]) -> bool:
        if not left:
            return True
        for i, g in enumerate(left):
            if g in left[:i]:
                continue  # the same workload's pods are interchangeable
            for target in range(len(state)):
                if target == lost or not _allowed(ws[g], g, state, target, lost):
                    continue
                state[target][g] += 1
                ok = _fits(ws, [state[target]], free) and walk(left[:i] + left[i + 1 :])
                state[target][g] -= 1
                if ok:
                    return True
        return False

    return walk(pending)


def brute_force_minimum(ws: list[Rendered], free: tuple[int, int], survive: bool, limit: int = 12) -> int:
    for nodes in range(1, limit + 1):
        per_workload = [list(_columns(w, nodes)) for w in ws]
        for choice in itertools.product(*per_workload):
            counts = [[column[n] for column in choice] for n in range(nodes)]
            if not _fits(ws, counts, free):
                continue
            if survive and not (nodes >= 2 and all(_recovers(ws, counts, lost, free) for lost in range(nodes))):
                continue
            return nodes
    raise AssertionError("no placement on up to {limit} nodes")


def _placement_keeps_the_rendered_constraints(ws: list[Rendered], plan: NodePlan) -> None:
    names = {w.name: g for g, w in enumerate(ws)}
    counts = [[0] * len(ws) for _ in plan.placement]
    for n, node in enumerate(plan.placement):
        for pod in node:
            counts[n][names[pod.rsplit("-", 1)[0]]] += 1
    for g, w in enumerate(ws):
        column = [node[g] for node in counts]
        assert column in [list(c) for c in _columns(w, len(counts))], (w, column)
    assert _fits(ws, counts, (plan.free_memory_mib, plan.free_cpu_m))


Planner = Callable[[Any, list[WorkloadPlan]], NodePlan]


def _real(config, workloads: list[WorkloadPlan]) -> NodePlan:
    return plan_nodes(config, workloads)


def _distinct_for_skew(config, workloads: list[WorkloadPlan]) -> NodePlan:
    """The wrong planner: every spread workload placed one replica per node, whatever the render says."""
    wrong = [w.model_copy(update={"spread": "distinct"}) if w.spread == "skew" else w for w in workloads]
    return plan_nodes(config, wrong)


def compare(planner: Planner, stacks: int = STACKS) -> list[str]:
    """The stacks on which the planner's minimum is not the brute force's, or its placement breaks a constraint."""
    rng = random.Random(SEED)
    problems = []
    for index in range(stacks):
        values = _stack(rng)
        config = parse_stack_config(values, "hyperstudy-infra")
        workloads = list(size_workloads(config).values())
        ws = [_rendered(w) for w in workloads]
        plan = planner(config, workloads)
        free = (plan.free_memory_mib, plan.free_cpu_m)
        expected = brute_force_minimum(ws, free, config.nodes.survive_node_loss)
        if plan.min != expected:
            problems.append(f"stack {index}: planner {plan.min}, brute force {expected}: {values['workloads']}")
            continue
        try:
            _placement_keeps_the_rendered_constraints(ws, plan)
        except AssertionError as err:
            problems.append(f"stack {index}: placement {plan.placement} breaks {err}")
    return problems


def test_the_planner_places_as_the_scheduler_does_on_200_random_stacks():
    assert compare(_real) == []


def test_a_planner_that_reads_skew_as_distinct_fails_the_comparison():
    problems = compare(_distinct_for_skew)
    assert problems, "the comparison cannot tell skew from distinct"


@pytest.mark.parametrize("nodes", [1, 2, 3])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4, 5])
def test_balanced_columns_are_what_the_filter_reaches(nodes: int, replicas: int):
    """The brute force takes a spread's final states as the columns within maxSkew 1; the scheduler places pods
    one at a time, each where count + 1 − min ≤ 1. Over every order, the two are the same set."""
    w = Rendered("w", replicas, 1, 1, 1, True, False)
    reached: set[tuple[int, ...]] = set()

    def walk(column: list[int], left: int) -> None:
        if left == 0:
            reached.add(tuple(column))
            return
        for n in range(nodes):
            if column[n] + 1 - min(column) <= 1:
                column[n] += 1
                walk(column, left - 1)
                column[n] -= 1

    walk([0] * nodes, replicas)
    assert reached == set(_columns(w, nodes))


def test_honor_lets_a_lost_nodes_replica_join_a_survivor_and_ignore_does_not():
    """The rendered nodeTaintsPolicy matters: with Ignore the lost (tainted, NotReady) node still counts as a domain
    holding none, so a survivor already holding a replica may not take another (skew 2)."""
    ws = [Rendered("api", 2, 100, 100, 1, True, False)]
    counts = [[1], [1]]
    assert _recovers(ws, counts, 0, (1000, 1000))
    ignore = [Rendered("api", 2, 100, 100, 1, False, False)]
    assert not _recovers(ignore, counts, 0, (1000, 1000))


def test_a_scale_up_adds_each_pod_where_the_filter_allows_and_a_node_only_when_none_does():
    """The schedule's scale-up (sizing.plan.placement.scale_up) against the render's constraints, pod by pod: the
    new pod lands on a node the scheduler's filter admits and that has its room; a node is added only when no node
    does."""
    rng = random.Random(SEED + 1)
    added = checked = 0
    for _ in range(100):
        config = parse_stack_config(_stack(rng), "hyperstudy-infra")
        workloads = list(size_workloads(config).values())
        ws = [_rendered(w) for w in workloads]
        plan = _real(config, workloads)
        free = Free(plan.free_memory_mib, plan.free_cpu_m)
        groups = Demand(workloads).typical
        found, _ = place(groups, plan.min, free, survive=config.nodes.survive_node_loss)
        counts = [list(node) for node in found.counts]
        g = rng.randrange(len(ws))
        for _ in range(rng.randint(1, 4)):
            after = [list(node) for node in scale_up(groups, tuple(map(tuple, counts)), free, g)]
            (target,) = [n for n in range(len(after)) if n >= len(counts) or after[n][g] != counts[n][g]]
            admitted = [
                n
                for n in range(len(counts))
                if _allowed(ws[g], g, counts, n, lost=-1)
                and _fits(ws, [[c + (i == g) for i, c in enumerate(counts[n])]], (free.memory_mib, free.cpu_m))
            ]
            if target < len(counts):
                assert target in admitted
            else:
                assert admitted == [] and len(after) == len(counts) + 1
                added += 1
            counts = after
            checked += 1
    assert checked >= 100 and added >= 5  # the cases exist: pods that join nodes, and pods that need a new one
