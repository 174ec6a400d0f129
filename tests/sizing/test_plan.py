"""sizing/plan/ and sizing/facts/catalogue.py: workload sizes, runtime settings, the node plan and the cost."""

from __future__ import annotations

import math

import pytest

from sizing.core.errors import ConfigError
from sizing.facts.catalogue import DISK_USD_GB_MONTH, MACHINE_TYPES, MachineType
from sizing.plan.types import Plan
from tests.sizing.stacks import plan_error, plan_of, synthetic

NS = "hyperstudy-infra"

# The memory optimisation document: (request, limit) per workload in each profile; pod-router's limit is re-derived
# (old space 48 + young generation 3 + native 56 = 107 MiB, in the next 16 MiB step): the document's 64Mi held only
# its old space.
OPTIMIZED = {
    "backend": ("256Mi", "512Mi"),
    "frontend": ("32Mi", "128Mi"),
    "redis": ("32Mi", "128Mi"),
    "pod-router": ("64Mi", "112Mi"),
    "traefik": ("64Mi", "128Mi"),
    "metrics-service": ("64Mi", "128Mi"),
}
BASELINE = {
    "backend": ("512Mi", "1Gi"),
    "frontend": ("256Mi", "512Mi"),
    "redis": ("256Mi", "512Mi"),
    "pod-router": ("256Mi", "512Mi"),
    "traefik": ("64Mi", "128Mi"),
    "metrics-service": ("64Mi", "128Mi"),
}
REPLICAS = {"backend": 2, "frontend": 2, "redis": 1, "pod-router": 2, "traefik": 2, "metrics-service": 1}


# --- workload sizes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("plan_fixture", "expected"), [("prod_optimized", OPTIMIZED), ("prod_baseline", BASELINE)])
def test_prod_sizes_reproduce_the_document(request, plan_fixture: str, expected) -> None:
    plan: Plan = request.getfixturevalue(plan_fixture)
    sizes = {name: (w.memory_request, w.memory_limit) for name, w in plan.workloads.items()}
    assert sizes == expected
    assert {name: w.replicas for name, w in plan.workloads.items()} == REPLICAS


@pytest.mark.parametrize(("plan_fixture", "app_requests_mib"), [("prod_optimized", 928), ("prod_baseline", 2496)])
def test_totals_are_replicas_times_sizes(request, plan_fixture: str, app_requests_mib: int) -> None:
    plan: Plan = request.getfixturevalue(plan_fixture)
    app = plan.workloads.values()
    assert sum(w.replicas * w.memory_request_mib for w in app) == app_requests_mib  # the document's app
    assert sum(w.replicas for w in app) == 10
    # Every pod on the pool counts: the app's and the monitoring stack's, sidecars inside their pods.
    ws = plan.pool_workloads.values()
    assert plan.totals.memory_request_mib == sum(w.replicas * w.pod_memory_request_mib for w in ws)
    assert plan.totals.memory_limit_mib == sum(w.replicas * w.pod_memory_limit_mib for w in ws)
    assert plan.totals.cpu_request_m == sum(w.replicas * w.pod_cpu_request_m for w in ws)
    # 5 monitoring pods and a node-exporter per node (2), 3 cert-manager pods, its solver for prod's one host and
    # its startup check.
    assert plan.totals.pods == sum(w.replicas for w in ws) == 10 + 7 + 5
    assert plan.totals.memory_request_mib == app_requests_mib + 1088 + 256


def test_backend_derivation(prod_optimized: Plan) -> None:
    backend = prod_optimized.workloads["backend"]
    d = backend.derivation
    assert d is not None
    assert (d.typical_mib, d.peak_mib) == (165, 300)
    assert d.request_unrounded_mib == pytest.approx(165 * 1.15) == pytest.approx(189.75)
    assert d.limit_unrounded_mib == pytest.approx(300 * 1.25) == pytest.approx(375)
    assert backend.explain().splitlines() == [
        "request: 100 + 8×5 + 25×1 = 165 MiB ×1.15 = 189.75 MiB → power of two → 256Mi",
        "limit: 100 + 15×10 + 25×2 = 300 MiB ×1.25 = 375 MiB → power of two → 512Mi",
    ]


def test_baseline_profile_uses_the_configured_sizes_for_formula_workloads(prod_baseline: Plan) -> None:
    backend = prod_baseline.workloads["backend"]
    assert backend.derivation is None
    assert backend.explain() == "sized in config"
    assert all(w.derivation is None for w in prod_baseline.workloads.values())


def test_only_formula_workloads_carry_a_derivation(prod_optimized: Plan) -> None:
    derived = {name for name, w in prod_optimized.workloads.items() if w.derivation is not None}
    assert derived == {"backend"}


@pytest.mark.parametrize(
    ("rounding", "request_mib", "limit_mib", "name"),
    [
        ({"mode": "step", "step_mib": 64}, 192, 384, "step 64 MiB"),  # 189.75 → 190 → 192; 375 → 384
        ({"mode": "step", "step_mib": 100}, 200, 400, "step 100 MiB"),
        ({"mode": "step", "step_mib": 1}, 190, 375, "step 1 MiB"),
        ({"mode": "power_of_two"}, 256, 512, "power of two"),
    ],
)
def test_rounding_modes(prod_values, parse, rounding, request_mib: int, limit_mib: int, name: str) -> None:
    prod_values["capacity"]["rounding"] = rounding
    backend = plan_of(parse, prod_values).workloads["backend"]
    assert (backend.memory_request_mib, backend.memory_limit_mib) == (request_mib, limit_mib)
    assert backend.derivation.rounding == name


def test_whole_headroom_is_not_pushed_up_by_float_noise(prod_values, parse) -> None:
    # 200 × 1.1 = 220.00000000000003 in floats: it must round as 220, i.e. to 224 with a 32 MiB step.
    prod_values["capacity"].update(
        formula={
            "base_mib": 200,
            "per_role_mib": {"participant_video": 0, "participant_no_video": 0, "experimenter": 0},
        },
        headroom={"request_pct": 10, "limit_pct": 10},
        rounding={"mode": "step", "step_mib": 4},
    )
    # Only the base counts; the alerting shape still needs memory for its slots, so the experimenter keeps some.
    prod_values["capacity"]["formula"]["per_role_mib"]["experimenter"] = 25
    prod_values["capacity"]["shapes"]["idle"] = {}
    prod_values["capacity"]["load"] = {"typical": {"idle": 1}, "peak": {"idle": 1}}
    # 0.75 of 220 leaves 55 MiB beside the old space, one short of the native memory: half of it leaves plenty.
    prod_values["runtime"]["nodejs_heap_fraction"] = 0.5
    backend = plan_of(parse, prod_values).workloads["backend"]
    assert (backend.memory_request_mib, backend.memory_limit_mib) == (220, 220)


def test_a_formula_limit_without_room_beside_the_heap_names_what_sets_it(prod_values, parse) -> None:
    prod_values["capacity"]["formula"]["base_mib"] = 10
    prod_values["capacity"]["load"] = {"typical": {"small": 1}, "peak": {"small": 1}}
    err = plan_error(parse, prod_values)
    assert err.key == f"{NS}:workloads.backend"
    assert err.problem.endswith(
        "raise capacity.headroom.limit_pct or the peak load, or lower runtime.nodejs_heap_fraction"
    )


# --- runtime settings ----------------------------------------------------------------------------------------


def test_prod_runtime_settings(prod_optimized: Plan, prod_baseline: Plan) -> None:
    w = prod_optimized.workloads
    assert w["backend"].runtime.env == {"NODE_OPTIONS": "--max-old-space-size=384"}  # 512 × 0.75
    # Its old space as configured; V8's default young generation (48 MiB) would not fit beside it: capped.
    assert w["pod-router"].runtime.env == {"NODE_OPTIONS": "--max-old-space-size=48 --max-semi-space-size=1"}
    assert w["metrics-service"].runtime.env == {"NODE_OPTIONS": "--max-old-space-size=69 --max-semi-space-size=1"}
    assert w["redis"].runtime.args == ("--maxmemory", "89mb", "--maxmemory-policy", "allkeys-lru")  # ⌊128 × 0.7⌋
    assert w["traefik"].runtime.env == {"GOMEMLIMIT": "115MiB"}  # ⌊128 × 0.9⌋
    assert w["frontend"].runtime.memory_mib is None
    assert w["frontend"].runtime.describe() == "-"
    assert prod_baseline.workloads["backend"].runtime.env == {"NODE_OPTIONS": "--max-old-space-size=768"}
    assert prod_baseline.workloads["redis"].runtime.args[1] == "358mb"  # ⌊512 × 0.7⌋


@pytest.mark.parametrize("plan_fixture", ["prod_optimized", "prod_baseline"])
def test_every_runtime_ceiling_is_below_the_limit(request, plan_fixture: str) -> None:
    plan: Plan = request.getfixturevalue(plan_fixture)
    for w in plan.workloads.values():
        if w.runtime.memory_mib is not None:
            assert 0 < w.runtime.memory_mib < w.memory_limit_mib, w.name


def test_nodejs_limits_split_into_old_space_young_generation_and_native(prod_optimized: Plan) -> None:
    w = prod_optimized.workloads
    router = w["pod-router"].runtime.node_memory
    assert router is not None
    assert (router.old_space_mib, router.young_generation_mib, router.native_mib) == (48, 3, 61)
    assert router.semi_space_capped and router.fits
    assert router.old_space_mib + router.young_generation_mib + router.native_mib == w["pod-router"].memory_limit_mib
    # The backend's 512Mi holds V8's default young generation (3 × 16 MiB) beside its 384 MiB old space: no flag.
    backend = w["backend"].runtime.node_memory
    assert backend is not None and not backend.semi_space_capped
    assert (backend.old_space_mib, backend.young_generation_mib, backend.native_mib) == (384, 48, 80)
    assert "--max-semi-space-size" not in w["backend"].runtime.env["NODE_OPTIONS"]
    assert w["redis"].runtime.node_memory is None


def test_semi_space_is_capped_only_where_the_default_does_not_fit(prod_values, parse) -> None:
    # With no native memory to leave room for, the default young generation fits beside pod-router's old space.
    prod_values["runtime"] = {"nodejs_native_mib": 0}
    w = plan_of(parse, prod_values).workloads
    assert w["pod-router"].runtime.env == {"NODE_OPTIONS": "--max-old-space-size=48"}  # 48 + 48 + 0 ≤ 112
    prod_values["runtime"] = {"nodejs_native_mib": 20, "nodejs_semi_space_mib": 4}
    w = plan_of(parse, prod_values).workloads
    assert w["pod-router"].runtime.env == {"NODE_OPTIONS": "--max-old-space-size=48 --max-semi-space-size=4"}


@pytest.mark.parametrize(
    ("memory", "smallest"),
    [
        # The document's 64Mi: 48 + 3 leaves 13 MiB of the 56 the process needs beside its heap.
        ({"request": "64Mi", "limit": "64Mi", "old_space": "48Mi"}, "107Mi"),
        # Without an old space of its own, 0.75 of the limit: the smallest limit whose quarter holds 3 + 56.
        ({"request": "64Mi", "limit": "64Mi"}, "233Mi"),
    ],
)
def test_a_nodejs_limit_without_room_beside_the_heap_is_refused(prod_values, parse, memory, smallest) -> None:
    prod_values["workloads"]["pod-router"]["memory"]["optimized"] = memory
    err = plan_error(parse, prod_values)
    assert err.key == f"{NS}:workloads.pod-router.memory.optimized.limit"
    assert f"the limit must be at least {smallest}: or give it a smaller old_space" in err.problem
    limit = int(smallest.removesuffix("Mi"))
    prod_values["workloads"]["pod-router"]["memory"]["optimized"]["limit"] = smallest
    fits = plan_of(parse, prod_values).workloads["pod-router"].runtime.node_memory
    assert fits is not None and fits.fits and fits.limit_mib == limit
    prod_values["workloads"]["pod-router"]["memory"]["optimized"]["limit"] = f"{limit - 1}Mi"
    assert plan_error(parse, prod_values).key == err.key  # the smallest: one MiB less is refused


def test_old_space_is_a_nodejs_setting(prod_values, parse) -> None:
    prod_values["workloads"]["redis"]["memory"]["optimized"]["old_space"] = "64Mi"
    with pytest.raises(ConfigError) as raised:
        parse(prod_values)
    assert raised.value.key == f"{NS}:workloads.redis.memory.optimized.old_space"
    prod_values["workloads"]["redis"]["memory"]["optimized"].pop("old_space")
    prod_values["workloads"]["pod-router"]["memory"]["optimized"]["old_space"] = "112Mi"
    with pytest.raises(ConfigError) as raised:
        parse(prod_values)
    assert raised.value.key == f"{NS}:workloads.pod-router.memory.optimized.old_space"


def test_runtime_fractions_and_policy_are_configurable(prod_values, parse) -> None:
    prod_values["runtime"] = {
        "nodejs_heap_fraction": 0.5,
        "redis_maxmemory_fraction": 0.5,
        "redis_eviction_policy": "noeviction",
        "go_memlimit_fraction": 0.5,
    }
    w = plan_of(parse, prod_values).workloads
    assert w["backend"].runtime.describe() == "NODE_OPTIONS=--max-old-space-size=256"
    assert w["redis"].runtime.describe() == "--maxmemory 64mb --maxmemory-policy noeviction"
    assert w["traefik"].runtime.describe() == "GOMEMLIMIT=64MiB"


def test_runtime_ceiling_is_never_zero(prod_values, parse) -> None:
    # The fraction is valid on its own (0 < f < 1); under a 128Mi limit it rounds to `--maxmemory 0mb`, which
    # Redis reads as no limit at all. The plan refuses it and names the key to change.
    prod_values["runtime"] = {"redis_maxmemory_fraction": 0.001}
    with pytest.raises(ConfigError) as raised:
        plan_of(parse, prod_values)
    assert raised.value.key == "hyperstudy-infra:runtime.redis_maxmemory_fraction"
    assert "workloads.redis" in raised.value.problem and "0 MiB" in raised.value.problem


# --- catalogue -----------------------------------------------------------------------------------------------


def gke_allocatable_mib(memory_mib: int) -> int:
    """GKE's published reservation: 255 MiB under 1 GiB, else 25 % of the first 4 GiB, 20 % of the next 4,
    10 % of the next 8, 6 % of the next 112, 2 % above; minus the 100 MiB eviction threshold; floored."""
    if memory_mib < 1024:
        return memory_mib - 255 - 100
    tiers = [(4096, 0.25), (4096, 0.20), (8192, 0.10), (112 * 1024, 0.06), (math.inf, 0.02)]
    reserved, start = 0.0, 0
    for size, fraction in tiers:
        reserved += max(0, min(memory_mib, start + size) - start) * fraction
        start += size
    return math.floor(memory_mib - reserved - 100)


@pytest.mark.parametrize(
    ("machine_type", "memory_mib", "cpu_m"),
    [
        # Shared-core types: GKE reserves 1060m of their 2 vCPUs, and requests are planned up to the sustained share.
        ("e2-small", 1436, 940),
        ("e2-medium", 2972, 940),
        ("e2-standard-2", 6248, 1930),
        ("e2-standard-4", 13621, 3920),
        ("t2d-standard-1", 2972, 940),
    ],
)
def test_gke_allocatable_of_the_documented_machines(machine_type: str, memory_mib: int, cpu_m: int) -> None:
    machine = MACHINE_TYPES[machine_type]
    assert machine.allocatable_memory_mib() == memory_mib
    assert machine.allocatable_cpu_m() == cpu_m


@pytest.mark.parametrize(
    ("machine_type", "plannable_m"), [("e2-small", 500), ("e2-medium", 940), ("e2-standard-2", 1930)]
)
def test_shared_core_types_are_planned_up_to_their_sustained_share(machine_type: str, plannable_m: int) -> None:
    # e2-small sustains 0.5 of its 2 vCPUs: above 500m of requests its pods would live on burst credit.
    assert MACHINE_TYPES[machine_type].plannable_cpu_m() == plannable_m


@pytest.mark.parametrize("machine_type", sorted(MACHINE_TYPES))
def test_gke_allocatable_memory_follows_the_tiers(machine_type: str) -> None:
    machine = MACHINE_TYPES[machine_type]
    assert machine.allocatable_memory_mib() == gke_allocatable_mib(machine.memory_mib)


@pytest.mark.parametrize(("memory_mib", "expected"), [(768, 413), (1024, 668), (256 * 1024, 249_878)])
def test_gke_allocatable_memory_edges(memory_mib: int, expected: int) -> None:
    machine = MachineType(vcpu=2, memory_mib=memory_mib, on_demand_usd_month=1, spot_usd_month=1)
    assert machine.allocatable_memory_mib() == expected == gke_allocatable_mib(memory_mib)


@pytest.mark.parametrize(("vcpu", "cpu_m"), [(1, 940), (2, 1930), (4, 3920), (8, 7910), (16, 15890)])
def test_gke_allocatable_cpu_tiers(vcpu: int, cpu_m: int) -> None:
    # 6 % of the first core, 1 % of the second, 0.5 % of the next two, 0.25 % of every core above four
    machine = MachineType(vcpu=vcpu, memory_mib=8192, on_demand_usd_month=1, spot_usd_month=1)
    assert machine.allocatable_cpu_m() == cpu_m


# --- node plan -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("plan_fixture", ["prod_optimized", "prod_baseline"])
def test_prod_node_plan_invariants(request, plan_fixture: str, check_placement) -> None:
    plan: Plan = request.getfixturevalue(plan_fixture)
    n = plan.nodes
    assert n.machine_type == "e2-standard-2"
    assert (n.allocatable_memory_mib, n.allocatable_cpu_m) == (6248, 1930)
    # Overhead 1 GiB / 400m, and node-exporter's 32 MiB / 20m on every node.
    assert (n.free_memory_mib, n.free_cpu_m) == (6248 - 1024 - 32, 1930 - 400 - 20)
    placed = [w for w in plan.pool_workloads.values() if not w.per_node]
    memory = max(1, math.ceil(sum(w.replicas * w.pod_memory_request_mib for w in placed) / n.free_memory_mib))
    cpu = max(1, math.ceil(sum(w.replicas * w.pod_cpu_request_m for w in placed) / n.free_cpu_m))
    # Prod requires surviving a node's loss: the requests fit on one node fewer.
    spread = max([w.replicas for w in placed if w.spread == "distinct"], default=1)
    assert n.bounds == {"memory": memory, "cpu": cpu, "spread": spread, "node_loss": max(memory, cpu, spread) + 1}
    assert n.node_loss_required
    assert n.lower_bound == max(n.bounds.values())
    assert n.lower_bound <= n.min <= n.peak <= n.max
    assert n.max >= n.min + 1  # surge_nodes: 1
    # Every replicated workload is spread by skew: two replicas may share the node left after a loss.
    assert {w.spread for w in placed if w.replicas > 1} == {"skew"}
    assert (n.min, n.max, n.binding) == (2, 3, "node_loss")
    assert n.survives_node_loss
    check_placement(plan)


def test_memory_bound(parse, check_placement) -> None:
    # e2-medium: 2972 - 512 = 2460 MiB free; three 2000 MiB pods need three nodes, one replica each
    plan = plan_of(parse, synthetic({n: (1, "100m", "2000Mi", "2000Mi") for n in ("a", "b", "c")}))
    assert plan.nodes.bounds == {"memory": 3, "cpu": 1, "spread": 1}
    assert (plan.nodes.min, plan.nodes.binding) == (3, "memory")
    check_placement(plan)


def test_spread_bound(parse, check_placement) -> None:
    values = synthetic({"web": (4, "50m", "64Mi", "128Mi"), "db": (1, "50m", "64Mi", "128Mi")})
    # skew (the default) lets four small replicas share one node: nothing to spread them from.
    plan = plan_of(parse, values)
    assert plan.nodes.bounds == {"memory": 1, "cpu": 1, "spread": 1}
    assert plan.nodes.min == 1 and plan.nodes.placement[0].count("web-0") == 1
    check_placement(plan)
    # distinct (required anti-affinity) needs a node per replica.
    values["workloads"]["web"]["spread"] = "distinct"
    plan = plan_of(parse, values)
    assert plan.nodes.bounds == {"memory": 1, "cpu": 1, "spread": 4}
    assert (plan.nodes.min, plan.nodes.binding) == (4, "spread")
    check_placement(plan)


def test_skew_balances_replicas_over_every_node(parse, check_placement) -> None:
    # Five 1000 MiB replicas and a 2000 MiB pod on e2-medium (2460 MiB free). Every node of the pool is a domain of
    # the spread, so the replicas are balanced over all of them: on 3 nodes 2/2/1, on 4 2/1/1/1, on 5 one each, and
    # the big pod never fits beside one (3000 MiB). Only on 6 nodes does one stay empty for it: kube-scheduler, given
    # 3, 4 or 5 nodes, leaves a pod Pending, whichever it places first.
    values = synthetic({"api": (5, "50m", "1000Mi", "1000Mi"), "big": (1, "50m", "2000Mi", "2000Mi")})
    plan = plan_of(parse, values)
    assert (plan.nodes.lower_bound, plan.nodes.min, plan.nodes.min_proven) == (3, 6, True)
    columns = sorted(sum(p.startswith("api-") for p in node) for node in plan.nodes.placement)
    assert columns == [0, 1, 1, 1, 1, 1]
    check_placement(plan)
    # distinct says the same thing another way: a node per replica, and the big pod on a sixth.
    values["workloads"]["api"]["spread"] = "distinct"
    assert plan_of(parse, values).nodes.min == 6


def test_cpu_bound(parse, check_placement) -> None:
    # e2-medium: 940 - 200 = 740m free: four 350m pods, two per node
    plan = plan_of(parse, synthetic({n: (1, "350m", "64Mi", "64Mi") for n in ("a", "b", "c", "d")}))
    assert plan.nodes.bounds == {"memory": 1, "cpu": 2, "spread": 1}
    assert (plan.nodes.min, plan.nodes.binding) == (2, "cpu")
    check_placement(plan)


def test_packing_bound(parse, check_placement) -> None:
    # 3 × 1300 MiB = 3900 MiB needs 2 nodes by the sum, but two of them never share a 2460 MiB node
    plan = plan_of(parse, synthetic({n: (1, "100m", "1300Mi", "1300Mi") for n in ("a", "b", "c")}))
    assert plan.nodes.lower_bound == 2
    assert (plan.nodes.min, plan.nodes.binding) == (3, "packing")
    check_placement(plan)


def test_peak_sets_max_when_limits_need_more_nodes(parse, check_placement) -> None:
    plan = plan_of(parse, synthetic({n: (1, "100m", "500Mi", "2000Mi") for n in ("a", "b", "c")}))
    n = plan.nodes
    assert (n.min, n.peak, n.max) == (1, 3, 3)
    assert not n.survives_node_loss  # one node: nothing left after losing it
    check_placement(plan)


@pytest.mark.parametrize(("surge", "expected_max"), [(1, 3), (5, 7)])
def test_surge_nodes_raise_max_above_min(prod_values, parse, surge: int, expected_max: int) -> None:
    prod_values["nodes"]["surge_nodes"] = surge
    plan = plan_of(parse, prod_values)
    assert (plan.nodes.min, plan.nodes.peak, plan.nodes.max) == (2, 2, expected_max)


def test_zero_surge_nodes_is_refused(prod_values, parse) -> None:
    # Node upgrades surge (nothing is drained first), so the pool always needs room for at least one more node.
    prod_values["nodes"]["surge_nodes"] = 0
    with pytest.raises(ConfigError) as raised:
        parse(prod_values)
    assert raised.value.key == "hyperstudy-infra:nodes.surge_nodes"


def test_survives_node_loss_counts_what_the_lost_node_held(parse, check_placement) -> None:
    # e2-medium, 2460 MiB free. a: 2 × 1000 MiB (skew), b: 1 × 400 MiB: on two nodes a sits 1/1 and b beside one;
    # losing either node moves its pods onto the other: 2400 MiB, which fits.
    fits = plan_of(
        parse,
        synthetic({"a": (2, "100m", "1000Mi", "1000Mi"), "b": (1, "100m", "400Mi", "400Mi")}, survive_node_loss=True),
    )
    assert (fits.nodes.min, fits.nodes.survives_node_loss) == (2, True)
    check_placement(fits)
    # b of 1100 MiB: on two nodes, losing b's node puts 2100 MiB beside the other a (3100 MiB): a third node. On
    # three, a sits 1/1/0 and b on the empty one: any node lost, its pods move where they still fit.
    values = synthetic({"a": (2, "100m", "1000Mi", "1000Mi"), "b": (1, "100m", "1100Mi", "1100Mi")})
    loose = plan_of(parse, values)
    assert (loose.nodes.min, loose.nodes.survives_node_loss) == (2, False)
    values["nodes"]["survive_node_loss"] = True
    tight = plan_of(parse, values)
    assert (tight.nodes.min, tight.nodes.binding, tight.nodes.survives_node_loss) == (3, "node_loss", True)
    check_placement(tight)


# --- cost ----------------------------------------------------------------------------------------------------


def test_prod_cost(prod_optimized: Plan, prod_baseline: Plan) -> None:
    per_node = MACHINE_TYPES["e2-standard-2"].on_demand_usd_month + 100 * DISK_USD_GB_MONTH["pd-balanced"]
    for plan in (prod_optimized, prod_baseline):
        c = plan.cost
        assert c.node_usd_month == pytest.approx(per_node, abs=0.005)
        assert c.monthly_usd == pytest.approx(plan.nodes.min * per_node, abs=0.005)
        assert c.max_monthly_usd == pytest.approx(plan.nodes.max * per_node, abs=0.005)
        assert c.baseline_monthly_usd == pytest.approx(prod_baseline.nodes.min * per_node, abs=0.005)
    # both profiles need two nodes (the spread of two replicas binds): no saving in node cost
    assert prod_optimized.cost.savings_pct == 0.0


def test_spot_and_disk_pricing(prod_values, parse) -> None:
    prod_values["nodes"].update(spot=True, disk_type="pd-ssd", disk_size_gb=50)
    plan = plan_of(parse, prod_values)
    per_node = MACHINE_TYPES["e2-standard-2"].spot_usd_month + 50 * DISK_USD_GB_MONTH["pd-ssd"]
    assert plan.nodes.spot
    assert plan.cost.node_usd_month == pytest.approx(per_node, abs=0.005)
    assert plan.cost.monthly_usd == pytest.approx(plan.nodes.min * per_node, abs=0.005)


def test_savings_against_the_baseline(parse) -> None:
    # Optimized, three 1000 MiB pods pack two per e2-medium (2460 MiB free): 2 nodes. The baseline's three 2000 MiB
    # pods would need three e2-medium; its own cheapest pool is one e2-highmem-2 (13109 MiB free).
    values = synthetic({n: (1, "100m", "1000Mi", "1000Mi", "2000Mi", "2000Mi") for n in ("a", "b", "c")})
    plan = plan_of(parse, values)
    disk = 100 * DISK_USD_GB_MONTH["pd-balanced"]
    assert plan.nodes.min == 2
    assert plan.cost.monthly_usd == pytest.approx(
        2 * (MACHINE_TYPES["e2-medium"].on_demand_usd_month + disk), abs=0.005
    )
    assert plan.cost.baseline.model_dump() == {"machine_type": "e2-highmem-2", "spot": False, "min": 1, "max": 2}
    highmem = MACHINE_TYPES["e2-highmem-2"].on_demand_usd_month + disk
    assert plan.cost.baseline_monthly_usd == pytest.approx(highmem, abs=0.005)
    c = plan.cost
    assert c.savings_pct == pytest.approx(
        100 * (c.baseline_monthly_usd - c.monthly_usd) / c.baseline_monthly_usd, abs=0.05
    )
    # the baseline profile of the same stack: its cheapest pool is what the optimized plan calls its baseline
    baseline = plan_of(parse, {**values, "profile": "baseline"})
    assert baseline.cost.best_monthly_usd == plan.cost.baseline_monthly_usd
    assert baseline.cost.baseline == baseline.cost.best


def test_the_cheapest_pool_for_the_same_pods(parse) -> None:
    # The same three 1000 MiB pods fit one e2-standard-2 (5736 MiB free): the configured e2-medium pair overpays.
    plan = plan_of(parse, synthetic({n: (1, "100m", "1000Mi", "1000Mi") for n in ("a", "b", "c")}))
    disk = 100 * DISK_USD_GB_MONTH["pd-balanced"]
    assert plan.cost.best.model_dump() == {"machine_type": "e2-standard-2", "spot": False, "min": 1, "max": 2}
    assert plan.cost.best_monthly_usd == pytest.approx(MACHINE_TYPES["e2-standard-2"].on_demand_usd_month + disk)
    assert plan.cost.overpay_usd_month == pytest.approx(plan.cost.monthly_usd - plan.cost.best_monthly_usd)
    assert plan.cost.overpay_usd_month > 0


# --- plan-time errors ----------------------------------------------------------------------------------------


def test_overhead_above_allocatable_memory(prod_values, parse) -> None:
    prod_values["nodes"]["overhead"]["memory"] = "7Gi"
    err = plan_error(parse, prod_values)
    assert err.key.endswith("nodes.overhead.memory")
    assert err.problem == "leaves no memory on one e2-standard-2 node (6248Mi allocatable)"
    assert "\n" not in str(err)


def test_overhead_above_allocatable_cpu(prod_values, parse) -> None:
    prod_values["nodes"]["overhead"]["cpu"] = "2"
    err = plan_error(parse, prod_values)
    assert err.key.endswith("nodes.overhead.cpu")
    assert err.problem == "leaves no CPU on one e2-standard-2 node (1930m allocatable)"


def test_workload_limit_above_a_node(prod_values, parse) -> None:
    prod_values["workloads"]["frontend"]["memory"]["optimized"]["limit"] = "6Gi"
    err = plan_error(parse, prod_values)
    assert err.key.endswith("workloads.frontend")
    # 6248 allocatable − 1024 overhead − 64 node-exporter at its limit.
    assert err.problem == "memory limit 6Gi is more than one e2-standard-2 node offers (5160Mi after overhead)"


def test_workload_limit_equal_to_a_node_fits(prod_values, parse, check_placement) -> None:
    prod_values["workloads"]["frontend"]["memory"]["optimized"]["limit"] = "5160Mi"
    plan = plan_of(parse, prod_values)
    # At peak the node also holds node-exporter at its limit (64 MiB), not only at its request.
    assert plan.workloads["frontend"].memory_limit_mib == plan.nodes.free_memory_mib + 32 - 64
    check_placement(plan)


def test_workload_limit_one_mib_above_a_node(prod_values, parse) -> None:
    prod_values["workloads"]["frontend"]["memory"]["optimized"]["limit"] = "5161Mi"
    err = plan_error(parse, prod_values)
    assert err.key.endswith("workloads.frontend")
    assert err.problem.startswith("memory limit 5161Mi is more than one e2-standard-2 node offers")


def test_workload_cpu_above_a_node(prod_values, parse) -> None:
    prod_values["workloads"]["redis"]["cpu_request"] = "2"
    err = plan_error(parse, prod_values)
    assert err.key.endswith("workloads.redis.cpu_request")
    assert err.problem == "2 is more than one e2-standard-2 node offers (1510m after overhead)"


def test_formula_request_above_limit(prod_values, parse) -> None:
    prod_values["capacity"]["headroom"]["request_pct"] = 300  # 165 × 4 = 660 → 1Gi, above the 512Mi limit
    err = plan_error(parse, prod_values)
    assert err.key.endswith("workloads.backend")
    assert err.problem.startswith("formula gives request 1Gi above limit 512Mi")


def test_plan_errors_name_the_namespaced_key(prod_values, parse) -> None:
    prod_values["nodes"]["overhead"]["memory"] = "7Gi"
    assert plan_error(parse, prod_values).key == f"{NS}:nodes.overhead.memory"


def test_machine_with_no_allocatable_memory_is_a_config_error(prod_values, parse, monkeypatch) -> None:
    monkeypatch.setitem(
        MACHINE_TYPES, "e2-tiny", MachineType(vcpu=1, memory_mib=256, on_demand_usd_month=1, spot_usd_month=1)
    )
    prod_values["nodes"]["machine_type"] = "e2-tiny"
    prod_values["nodes"]["overhead"]["memory"] = "0"
    err = plan_error(parse, prod_values)
    assert err.key.endswith("nodes.overhead.memory")


# --- JSON ----------------------------------------------------------------------------------------------------


def test_plan_json_matches_the_plan(prod_optimized: Plan) -> None:
    data = prod_optimized.to_json()
    assert (data["stack"], data["profile"]) == ("prod", "optimized")
    for name, w in prod_optimized.workloads.items():
        entry = data["workloads"][name]
        assert (entry["memory_request"], entry["memory_limit"]) == OPTIMIZED[name]
        assert (entry["memory_request_mib"], entry["memory_limit_mib"]) == (w.memory_request_mib, w.memory_limit_mib)
        assert entry["runtime"]["setting"] == w.runtime.describe()
    assert data["workloads"]["backend"]["derivation"] == prod_optimized.workloads["backend"].explain().splitlines()
    assert data["workloads"]["frontend"]["derivation"] is None
    assert data["totals"]["memory_request_mib"] == 928 + 1088 + 256
    assert data["nodes"]["placement"] == [list(node) for node in prod_optimized.nodes.placement]
