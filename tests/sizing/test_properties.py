"""Properties of the sizing model over random valid stacks (hypothesis, profile "sizing" from conftest.py)."""

from __future__ import annotations

import copy
import math
from typing import Any

from hypothesis import given, settings, strategies as st

from sizing.config.loader import parse_stack_config
from sizing.config.stack import StackConfig
from sizing.core.quantity import to_mib, to_millicores
from sizing.plan.build import build_plan, demand
from sizing.plan.pools import cheapest, search
from sizing.plan.sizes import size_workloads
from sizing.plan.types import Plan
from tests.sizing.stacks import runnable

NS = "hyperstudy-infra"
ROLES = ("participant_video", "participant_no_video", "experimenter")
SHAPES = ("small", "medium", "large")  # the document's names (monitoring.capacity_shape defaults to medium)
PROFILE = settings.get_profile("sizing")

# Bounds keep every generated stack valid and plannable: peak formula memory ≤ 300 + 12 experiments × 300 MiB,
# limit headroom ≤ 100 %, so a derived limit ≤ 8Gi, and static limits ≤ 2Gi: all below the 12.3 GiB free on the
# smallest machine drawn (e2-standard-4 / e2-highmem-2 with at most 1Gi of overhead). CPU ≤ 1000m < 1530m free.
MACHINES = ("e2-standard-4", "e2-standard-8", "e2-highmem-2")


def _memory_pair(draw: st.DrawFn) -> dict[str, str]:
    # Every runtime gets at least 1 MiB (fractions ≥ 0.5 of ≥ 4 MiB), and a Node.js limit of at least 32 MiB leaves
    # the 3 MiB young generation room beside the old space (≤ 0.9 of it; no native memory asked for below):
    # smaller limits are config errors.
    limit = draw(st.integers(32, 2048))
    request = draw(st.integers(1, limit))
    return {"request": f"{request}Mi", "limit": f"{limit}Mi"}


@st.composite
def stack_values(draw: st.DrawFn) -> dict[str, Any]:
    shapes = {name: draw(st.fixed_dictionaries({r: st.integers(0, 5) for r in ROLES})) for name in SHAPES}
    typical = draw(st.dictionaries(st.sampled_from(SHAPES), st.integers(0, 2), max_size=3))
    extra = draw(st.dictionaries(st.sampled_from(SHAPES), st.integers(0, 2), max_size=3))
    peak = {name: typical.get(name, 0) + extra.get(name, 0) for name in {*typical, *extra}}
    request_pct = draw(st.integers(0, 100))
    rounding = draw(
        st.one_of(
            st.just({"mode": "power_of_two"}),
            st.builds(lambda step: {"mode": "step", "step_mib": step}, st.integers(1, 256)),
        )
    )
    workloads: dict[str, Any] = {
        "backend": {
            "replicas": draw(st.integers(1, 10)),
            "cpu_request": f"{draw(st.integers(10, 1000))}m",
            "runtime": "nodejs",
            "sized_by": "formula",
            "spread": draw(st.sampled_from(["skew", "distinct"])),
            "memory": {"baseline": _memory_pair(draw)},
        }
    }
    for index in range(draw(st.integers(0, 4))):
        workloads[f"w{index}"] = {
            "replicas": draw(st.integers(1, 10)),
            "cpu_request": f"{draw(st.integers(10, 1000))}m",
            "runtime": draw(st.sampled_from(["nodejs", "redis", "go", "none"])),
            "spread": draw(st.sampled_from(["skew", "distinct"])),
            "memory": {"optimized": _memory_pair(draw), "baseline": _memory_pair(draw)},
        }
    return {
        "profile": draw(st.sampled_from(["optimized", "baseline"])),
        "capacity": {
            "formula": {
                "base_mib": draw(st.integers(32, 300)),
                # The experimenter costs memory so the alerting shape below has slots to count.
                "per_role_mib": draw(
                    st.fixed_dictionaries({r: st.integers(1 if r == "experimenter" else 0, 20) for r in ROLES})
                ),
            },
            "shapes": {**shapes, "one-experimenter": {"experimenter": 1}},
            "load": {"typical": typical, "peak": peak},
            "headroom": {"request_pct": request_pct, "limit_pct": draw(st.integers(request_pct, 100))},
            "rounding": rounding,
        },
        **runnable(workloads),
        "monitoring": {"capacity_shape": "one-experimenter"},
        "runtime": {
            "nodejs_heap_fraction": draw(st.sampled_from([0.5, 0.75, 0.9])),
            "nodejs_native_mib": 0,
            "redis_maxmemory_fraction": draw(st.sampled_from([0.5, 0.7, 0.9])),
            "go_memlimit_fraction": draw(st.sampled_from([0.5, 0.9, 0.95])),
        },
        "nodes": {
            "machine_type": draw(st.sampled_from(MACHINES)),
            "spot": draw(st.booleans()),
            # Above any floor these stacks have (tests/sizing/test_costdims.py proves the floor).
            "disk_size_gb": draw(st.integers(60, 500)),
            "overhead": {"memory": f"{draw(st.integers(0, 1024))}Mi", "cpu": f"{draw(st.integers(0, 400))}m"},
            "surge_nodes": draw(st.integers(1, 3)),
            "survive_node_loss": draw(st.booleans()),
        },
    }


def parse(values: dict[str, Any]) -> StackConfig:
    return parse_stack_config(values, NS)


def rounded_up(mib_exact_ceil: int, rounding: dict[str, Any]) -> int:
    """The reference rounding: smallest power of two / multiple of the step at or above the (whole) MiB."""
    whole = max(1, mib_exact_ceil)
    if rounding["mode"] == "power_of_two":
        return 2 ** math.ceil(math.log2(whole)) if whole & (whole - 1) else whole
    return -(-whole // rounding["step_mib"]) * rounding["step_mib"]


@settings(PROFILE)
@given(stack_values())
def test_limit_is_at_least_request(values: dict[str, Any]) -> None:
    config = parse(values)
    for profile in ("optimized", "baseline"):
        for w in size_workloads(config.with_profile(profile)).values():
            assert 0 < w.memory_request_mib <= w.memory_limit_mib, (profile, w.name)
            if w.runtime.memory_mib is not None:
                assert 0 <= w.runtime.memory_mib < w.memory_limit_mib, (profile, w.name)


@settings(PROFILE)
@given(stack_values())
def test_formula_sizes_are_the_rounded_formula(values: dict[str, Any]) -> None:
    config = parse(values).with_profile("optimized")
    capacity = values["capacity"]
    backend = size_workloads(config)["backend"]
    typical, peak = config.capacity.memory_mib("typical"), config.capacity.memory_mib("peak")
    # exact integer arithmetic: ⌈mib × (100 + pct) / 100⌉
    request_ceil = -(-typical * (100 + capacity["headroom"]["request_pct"]) // 100)
    limit_ceil = -(-peak * (100 + capacity["headroom"]["limit_pct"]) // 100)
    assert backend.memory_request_mib == rounded_up(request_ceil, capacity["rounding"])
    assert backend.memory_limit_mib == rounded_up(limit_ceil, capacity["rounding"])


@settings(PROFILE)
@given(stack_values(), st.sampled_from(SHAPES), st.integers(1, 3), st.booleans())
def test_more_users_never_lower_the_sizes(values: dict[str, Any], shape: str, more: int, typical_too: bool) -> None:
    before = size_workloads(parse(values).with_profile("optimized"))["backend"]
    grown = copy.deepcopy(values)
    load = grown["capacity"]["load"]
    load["peak"][shape] = load["peak"].get(shape, 0) + more
    if typical_too:
        load["typical"][shape] = load["typical"].get(shape, 0) + more
    after = size_workloads(parse(grown).with_profile("optimized"))["backend"]
    assert after.memory_limit_mib >= before.memory_limit_mib
    if typical_too:
        assert after.memory_request_mib >= before.memory_request_mib
    else:
        assert after.memory_request_mib == before.memory_request_mib


@settings(PROFILE)
@given(stack_values(), st.sampled_from(ROLES), st.integers(1, 5))
def test_heavier_users_never_lower_the_sizes(values: dict[str, Any], role: str, more: int) -> None:
    before = size_workloads(parse(values).with_profile("optimized"))["backend"]
    grown = copy.deepcopy(values)
    for shape in SHAPES:  # every experiment gets more users of the role: typical and peak both grow
        grown["capacity"]["shapes"][shape][role] += more
    after = size_workloads(parse(grown).with_profile("optimized"))["backend"]
    assert after.memory_request_mib >= before.memory_request_mib
    assert after.memory_limit_mib >= before.memory_limit_mib


def _canonical_cpu(text: str) -> bool:
    if text.endswith("m"):
        number = text[:-1]
        return number.isdigit() and not number.startswith("0") and int(number) % 1000 != 0
    return text.isdigit() and (text == "0" or not text.startswith("0"))


@settings(PROFILE)
@given(stack_values())
def test_every_emitted_quantity_is_canonical_and_whole(canonical_mib, values: dict[str, Any]) -> None:
    plan = build_plan(parse(values), "prop")
    data = plan.to_json()
    for name, w in plan.workloads.items():
        entry = data["workloads"][name]
        for text, mib in ((entry["memory_request"], w.memory_request_mib), (entry["memory_limit"], w.memory_limit_mib)):
            assert canonical_mib(text), text
            assert to_mib(text) == mib
        assert _canonical_cpu(entry["cpu_request"]), entry["cpu_request"]
        assert to_millicores(entry["cpu_request"]) == w.cpu_request_m
        for value in (*w.runtime.env.values(), *w.runtime.args):
            digits = "".join(c for c in value if c.isdigit() or c == ".")
            assert "." not in digits, value  # runtime settings are whole MiB


@settings(PROFILE)
@given(stack_values())
def test_node_plan_is_consistent_and_placement_fits(check_placement, values: dict[str, Any]) -> None:
    plan: Plan = build_plan(parse(values), "prop")
    n = plan.nodes
    assert n.lower_bound == max(n.bounds.values())
    distinct = [w.replicas for w in plan.workloads.values() if w.spread == "distinct"]
    assert n.bounds["spread"] == max(distinct, default=1)
    assert n.bounds["memory"] == max(1, math.ceil(plan.totals.memory_request_mib / n.free_memory_mib))
    assert n.lower_bound <= n.min <= n.peak <= n.max
    assert n.max >= n.min + values["nodes"]["surge_nodes"]
    assert (n.binding == "packing") == (n.min > n.lower_bound)
    if n.binding != "packing":
        assert n.bounds[n.binding] == n.lower_bound
    # A pool that must survive a node's loss does, at its minimum.
    assert n.node_loss_required == values["nodes"]["survive_node_loss"]
    if n.node_loss_required:
        assert n.survives_node_loss and n.min >= 2
    check_placement(plan)


@settings(PROFILE)
@given(stack_values())
def test_the_search_finds_the_cheapest_feasible_pool(values: dict[str, Any]) -> None:
    config = parse(values)
    found = search(config, demand(config))
    feasible = [o for o in found.options if o.feasible]
    best = cheapest(config, demand(config))
    # The pruned search (the plan's) and the full one (recommend's) agree, and nothing feasible is cheaper.
    assert found.best == best
    assert all(best.monthly_usd <= o.monthly_usd for o in feasible)
    assert {o.spot for o in feasible} <= ({False, True} if config.nodes.spot_allowed else {False})
    current = found.option(config.nodes.machine_type, config.nodes.spot)
    assert current.feasible and current.min == build_plan(config, "prop").nodes.min


@settings(PROFILE)
@given(stack_values())
def test_cost_is_nodes_times_node_price(values: dict[str, Any]) -> None:
    config = parse(values)
    plan = build_plan(config, "prop")
    c = plan.cost
    machine = config.machine()
    per_node = machine.price_usd_month(config.nodes.spot) + config.nodes.disk_size_gb * 0.10  # pd-balanced
    assert abs(c.node_usd_month - per_node) < 0.006
    assert abs(c.monthly_usd - plan.nodes.min * per_node) < 0.006
    assert abs(c.max_monthly_usd - plan.nodes.max * per_node) < 0.006
    # The baseline is the baseline profile on its own cheapest pool.
    baseline = build_plan(config.with_profile("baseline"), "prop")
    assert c.baseline_monthly_usd == baseline.cost.best_monthly_usd
    assert abs(c.savings_pct - 100 * (c.baseline_monthly_usd - c.monthly_usd) / c.baseline_monthly_usd) <= 0.05
    # The cheapest pool never costs more than the configured one, and the bill adds up.
    assert c.best_monthly_usd <= c.monthly_usd
    assert c.overpay_usd_month == round(c.monthly_usd - c.best_monthly_usd, 2) >= 0
    assert c.lines["nodes"] == c.monthly_usd
    assert abs(c.total_monthly_usd - sum(c.lines.values())) < 0.006
