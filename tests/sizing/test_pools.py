"""sizing/plan/pools.py and the node-loss rule of sizing/plan/nodes.py: the cheapest-pool search over the catalogue."""

from __future__ import annotations

from typing import Any

import pytest

from sizing.core.errors import ConfigError
from sizing.facts.catalogue import MACHINE_TYPES
from sizing.plan.build import demand
from sizing.plan.pools import recommend
from sizing.plan.types import Recommendation
from tests.sizing.stacks import plan_of, synthetic


def recommend_of(parse, values: dict[str, Any]) -> Recommendation:
    config = parse(values)
    return recommend(config, "test", demand(config))


def test_every_machine_type_is_an_option_on_demand_and_spot(parse, prod_values) -> None:
    result = recommend_of(parse, prod_values)
    assert {(o.machine_type, o.spot) for o in result.options} == {
        (name, spot) for name in MACHINE_TYPES for spot in (False, True)
    }


def test_best_is_the_cheapest_feasible_option(parse, prod_values) -> None:
    result = recommend_of(parse, prod_values)
    feasible = [o for o in result.options if o.feasible]
    assert result.best == result.options[0]
    assert result.best.monthly_usd == min(o.monthly_usd for o in feasible)
    # ranked: the feasible ones by cost at min, then the rest
    assert [o.monthly_usd for o in feasible] == sorted(o.monthly_usd for o in feasible)
    assert result.options[: len(feasible)] == tuple(feasible)


def test_prod_runs_on_its_cheapest_safe_pool(parse, prod_values) -> None:
    result = recommend_of(parse, prod_values)
    assert result.current == result.best
    assert (result.best.machine_type, result.best.spot, result.best.min) == ("e2-standard-2", False, 2)
    assert result.overpay_usd_month == 0
    # e2-medium holds prod's pods too, but the node loss needs four of them (1.5 cores of requests on 520m each).
    medium = next(o for o in result.options if (o.machine_type, o.spot) == ("e2-medium", False))
    assert (medium.feasible, medium.min, medium.binding) == (True, 4, "node_loss")
    assert medium.monthly_usd > result.best.monthly_usd


def test_spot_is_excluded_unless_the_stack_allows_it(parse, prod_values) -> None:
    result = recommend_of(parse, prod_values)
    spot = [o for o in result.options if o.spot]
    assert not any(o.feasible for o in spot)
    # a spot option that the machine could hold is refused for spot alone, and priced all the same
    held = [o for o in spot if o.min is not None]
    assert held and all(o.reason.startswith("hyperstudy-infra:nodes.allow_spot:") for o in held)
    assert all(o.monthly_usd is not None for o in held)
    prod_values["nodes"]["allow_spot"] = True
    allowed = recommend_of(parse, prod_values)
    assert (allowed.best.machine_type, allowed.best.spot) == ("e2-standard-2", True)
    assert allowed.overpay_usd_month == pytest.approx(allowed.current.monthly_usd - allowed.best.monthly_usd)
    assert allowed.overpay_usd_month > 0


def test_a_machine_whose_free_memory_cannot_hold_the_largest_limit_is_infeasible(parse, prod_values) -> None:
    result = recommend_of(parse, prod_values)
    small = [o for o in result.options if o.machine_type == "e2-small"]
    assert [o.feasible for o in small] == [False, False]
    assert all(o.min is None and o.monthly_usd is None for o in small)
    assert small[0].reason.startswith(
        "hyperstudy-infra:workloads.backend: memory limit 512Mi is more than one e2-small node offers"
    )


def test_shared_core_types_are_held_to_their_sustained_share(parse) -> None:
    # e2-small sustains 500m: 200m of overhead leaves 300m, under one 400m request; e2-medium leaves 740m.
    values = synthetic({"api": (1, "400m", "64Mi", "64Mi")}, machine_type="e2-medium")
    result = recommend_of(parse, values)
    small = next(o for o in result.options if (o.machine_type, o.spot) == ("e2-small", False))
    assert not small.feasible
    assert "of which its sustained share 500m" in small.reason
    assert next(o for o in result.options if o.machine_type == "e2-medium").feasible


def test_nothing_feasible_names_the_constraint(parse, prod_values) -> None:
    prod_values["workloads"]["frontend"]["memory"]["optimized"] = {"request": "1Gi", "limit": "64Gi"}
    with pytest.raises(ConfigError) as err:
        recommend_of(parse, prod_values)
    assert err.value.key == "hyperstudy-infra:workloads.frontend"
    assert err.value.problem.startswith("memory limit 64Gi is more than one e2-standard-8 node offers")
    assert "largest machine type of the catalogue" in err.value.problem
    assert "\n" not in str(err.value)


def test_a_current_pool_that_cannot_hold_the_stack_is_shown_with_its_reason(parse, prod_values) -> None:
    prod_values["nodes"]["machine_type"] = "e2-small"
    result = recommend_of(parse, prod_values)
    assert not result.current.feasible and result.current.min is None
    assert result.overpay_usd_month is None
    assert result.best.machine_type == "e2-standard-2"


def test_surviving_a_node_loss_raises_the_minimum(parse, check_placement) -> None:
    # Two 2000 MiB pods on e2-medium (2460 MiB free): two nodes hold them, and neither survives losing one.
    values = synthetic({n: (1, "100m", "2000Mi", "2000Mi") for n in ("a", "b")})
    loose = plan_of(parse, values)
    assert (loose.nodes.min, loose.nodes.survives_node_loss) == (2, False)
    values["nodes"]["survive_node_loss"] = True
    safe = plan_of(parse, values)
    assert safe.nodes.bounds["node_loss"] == 3
    assert (safe.nodes.min, safe.nodes.binding, safe.nodes.survives_node_loss) == (3, "node_loss", True)
    check_placement(safe)


def test_surviving_replicas_share_the_nodes_left(parse) -> None:
    # Three 1000 MiB replicas (2460 MiB free per node). On two nodes they sit 2/1, and losing the node with two puts
    # 3000 MiB on the other. On three, after losing one, topology spread (max skew 1, Honor: the lost node is no
    # domain) lets its replica join another: 2000 MiB fits.
    values = synthetic({"api": (3, "100m", "1000Mi", "1000Mi")}, survive_node_loss=True)
    plan = plan_of(parse, values)
    assert (plan.nodes.min, plan.nodes.binding, plan.nodes.survives_node_loss) == (3, "node_loss", True)
    # Required anti-affinity leaves the lost node's replica nowhere to go but a fourth node.
    values["workloads"]["api"]["spread"] = "distinct"
    plan = plan_of(parse, values)
    assert (plan.nodes.bounds["node_loss"], plan.nodes.min, plan.nodes.binding) == (4, 4, "node_loss")


def test_surviving_a_node_loss_when_only_packing_allows_it(parse) -> None:
    # Three 1300 MiB pods: the sums allow two survivors (3900 ≤ 2 × 2460), but two never share a node.
    values = synthetic({n: (1, "100m", "1300Mi", "1300Mi") for n in ("a", "b", "c")}, survive_node_loss=True)
    plan = plan_of(parse, values)
    assert plan.nodes.bounds["node_loss"] == 3
    assert (plan.nodes.min, plan.nodes.binding) == (4, "packing")


def test_a_rollback_that_no_machine_holds_fails_the_plan_with_its_profile(parse, prod_values) -> None:
    prod_values["workloads"]["frontend"]["memory"]["baseline"] = {"request": "1Gi", "limit": "64Gi"}
    with pytest.raises(ConfigError) as err:
        plan_of(parse, prod_values)
    assert err.value.key == "hyperstudy-infra:workloads.frontend"
    assert err.value.problem.startswith("in the baseline profile (the rollback): memory limit 64Gi is more than")


def test_an_unproven_minimum_is_marked_in_the_recommendation(parse) -> None:
    """Where the placement search gives up below the minimum it found (a budget of 0 here), the table says the
    minimum holds but a smaller one was not ruled out."""
    import sizing.plan.placement as placement
    from sizing.cli.commands import render_recommendation

    # On e2-medium (2460 MiB free) these fill two nodes exactly, {1476, 984} and {984, 738, 738}; the greedy
    # placement (each on the emptiest node) strands the last 738 MiB, so only the search finds two.
    sizes = {"a": 1476, "b": 984, "c": 984, "d": 738, "e": 738}
    values = synthetic({name: (1, "10m", f"{mib}Mi", f"{mib}Mi") for name, mib in sizes.items()})
    assert plan_of(parse, values).nodes.min == 2
    config = parse(values)
    proven = recommend_of(parse, values)
    assert all(o.min_proven for o in proven.options if o.feasible)
    budget = placement.SEARCH_BUDGET
    try:
        placement.SEARCH_BUDGET = 0
        starved = recommend(config, "test", demand(config))
    finally:
        placement.SEARCH_BUDGET = budget
    unproven = [o for o in starved.options if o.feasible and not o.min_proven]
    assert unproven, "the greedy placement alone never fell short of the bound"
    text = render_recommendation(starved)
    assert f"{unproven[0].min}?" in text and "a smaller one was not ruled out" in text
