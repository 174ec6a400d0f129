"""The bill's options as search dimensions: boot disk type and size down to the floor (sizing/plan/bill.py
`boot_disk_floor`), and `cost.commitment` priced from the catalogue's committed-use discounts, never for spot."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from sizing.core.model import DISK_TYPES
from sizing.facts.catalogue import (
    BOOT_DISK_MIN_GB,
    COMMITMENT_DISCOUNTS,
    DISK_USD_GB_MONTH,
    GKE_MAX_PODS_PER_NODE,
    MACHINE_TYPES,
    BootDiskFacts,
    gke_ephemeral_allocatable_gib,
)
from sizing.plan.bill import boot_disk_floor, node_price
from sizing.plan.build import demand
from sizing.plan.pools import recommend, search
from tests.sizing.stacks import assert_bad_input, plan_error, plan_of, run_cli, synthetic


def _with(values: dict[str, Any], section: str, **fields: Any) -> dict[str, Any]:
    return {**values, section: {**values.get(section, {}), **fields}}


@pytest.mark.parametrize("term", ["1y", "3y"])
def test_a_commitment_discounts_the_machines_of_the_node_line_by_the_catalogues_figure(parse, prod_values, term):
    plan = plan_of(parse, _with(prod_values, "cost", commitment=term))
    machine = MACHINE_TYPES["e2-standard-2"].on_demand_usd_month
    disk = 100 * DISK_USD_GB_MONTH["pd-balanced"]
    committed = machine * (1 - COMMITMENT_DISCOUNTS["e2"][term]) + disk
    c, n = plan.cost, plan.nodes
    assert c.node_usd_month == pytest.approx(committed, abs=0.005)
    assert c.monthly_usd == pytest.approx(n.min * committed, abs=0.005)
    assert c.lines["nodes"] == c.monthly_usd
    # Nodes above the minimum are not committed: on demand.
    assert c.max_monthly_usd == pytest.approx(n.min * committed + (n.max - n.min) * (machine + disk), abs=0.005)
    assert c.commitment is not None and c.commitment.committed_nodes == n.min
    assert c.commitment.saves_usd_month == pytest.approx(n.min * machine * COMMITMENT_DISCOUNTS["e2"][term], abs=0.01)
    years = {"1y": "1 year", "3y": "3 years"}[term]
    assert years in c.commitment.binds and years in c.line_details["nodes"]
    assert plan.to_json()["cost"]["commitment"]["term"] == term


def test_without_a_commitment_the_plan_has_no_commitment_key(prod_plan) -> None:
    assert prod_plan.cost.commitment is None
    assert "commitment" not in prod_plan.to_json()["cost"]


def test_a_spot_pool_with_a_commitment_is_one_config_line_naming_the_key(write_stack, prod_values) -> None:
    values = _with(_with(prod_values, "nodes", spot=True), "cost", commitment="1y")
    line = assert_bad_input(
        run_cli("--project-dir", str(write_stack(values)), "plan", "--stack", "test"), "cost.commitment"
    )
    assert "spot" in line


@pytest.mark.parametrize(
    ("section", "fields", "key"),
    [
        ("cost", {"commitment": "2y"}, "cost.commitment"),
        ("catalogue", {"commitment_discounts": {"e2": {"1y": 1.5}}}, "catalogue.commitment_discounts.e2.1y"),
        ("catalogue", {"commitment_discounts": {"e2": {"5y": 0.7}}}, "catalogue.commitment_discounts.e2"),
        ("catalogue", {"boot_disk": {"images_gib": 0}}, "catalogue.boot_disk.images_gib"),
    ],
)
def test_bad_bill_options_are_one_line_naming_the_key(write_stack, prod_values, section, fields, key) -> None:
    project = write_stack(_with(prod_values, section, **fields))
    assert_bad_input(run_cli("--project-dir", str(project), "plan", "--stack", "test"), key)


def test_a_commitment_for_a_series_the_catalogue_has_no_discount_for_names_where_to_add_it(write_stack, prod_values):
    n2 = {"vcpu": 2, "memory": "8Gi", "on_demand_usd_month": 70.0, "spot_usd_month": 20.0}
    values = _with(prod_values, "catalogue", machine_types={"n2-standard-2": n2})
    values = _with(_with(values, "nodes", machine_type="n2-standard-2"), "cost", commitment="3y")
    line = assert_bad_input(
        run_cli("--project-dir", str(write_stack(values)), "plan", "--stack", "test"), "cost.commitment"
    )
    assert "catalogue.commitment_discounts.n2" in line


def test_spot_is_never_discounted(parse, prod_values) -> None:
    config = parse(_with(_with(prod_values, "nodes", allow_spot=True), "cost", commitment="3y"))
    price = node_price(config, "e2-standard-2", spot=True, commitment="3y")
    assert (price.discount, price.commitment) == (0.0, "none")
    result = recommend(config, "test", demand(config))
    spot = [o for o in result.bill.options if o.spot]
    assert spot and all(o.commitment == "none" for o in spot)
    for o in spot:
        machine = MACHINE_TYPES[o.machine_type].spot_usd_month
        assert o.monthly_usd == pytest.approx(
            o.min * (machine + o.disk_size_gb * DISK_USD_GB_MONTH[o.disk_type]), abs=0.005
        )
    # ... while the plan's own search (cost.best) prices spot undiscounted too.
    assert all(o.commitment == "none" for o in result.options if o.spot)


@pytest.mark.parametrize(("disk_gb", "allocatable_gib"), [(10, 4.0), (20, 8.0), (100, 49.0), (300, 170.0)])
def test_the_ephemeral_storage_gke_leaves_pods(disk_gb, allocatable_gib) -> None:
    # The disk less 10 % (eviction) and min(50 %, 6 GiB + 35 %, 100 GiB) (system): worked by hand.
    assert gke_ephemeral_allocatable_gib(disk_gb) == pytest.approx(allocatable_gib)


def test_the_floor_is_the_smallest_disk_that_holds_images_logs_and_empty_dirs(prod_config, prod_plan) -> None:
    pods = list(prod_plan.pool_workloads.values())
    floor = boot_disk_floor(prod_config, pods)
    facts = BootDiskFacts()
    containers = facts.system_containers + sum((1 if w.per_node else w.replicas) * (1 + len(w.sidecars)) for w in pods)
    scratch_mib = sum(
        w.replicas * sum(v.size_limit for v in prod_config.workloads[w.name].app.scratch)
        for w in prod_plan.workloads.values()
    )
    need = facts.images_gib + containers * facts.container_log_mib / 1024 + scratch_mib / 1024
    assert floor.need_gib == pytest.approx(need, abs=0.005)
    assert floor.size_gb >= BOOT_DISK_MIN_GB
    assert gke_ephemeral_allocatable_gib(floor.size_gb) >= need > gke_ephemeral_allocatable_gib(floor.size_gb - 1)
    # More pods, a larger floor: the floor follows the stack.
    more = boot_disk_floor(prod_config, [*pods, *[w.model_copy(update={"replicas": 40}) for w in pods[:1]]])
    assert more.size_gb > floor.size_gb


def test_a_node_holds_the_logs_of_no_more_pods_than_it_can_schedule(prod_config, prod_plan) -> None:
    """A large stack's floor counts what one node can run: its DaemonSets' pods and at most GKE's 110 pods in all,
    those with the most logs and scratch first; not every pod of the stack on one node (which asked 405 GB of a
    5,210-pod stack)."""
    pods = list(prod_plan.pool_workloads.values())
    facts = BootDiskFacts()
    frontend = prod_plan.workloads["frontend"]

    def scratch(w) -> int:
        app = prod_config.workloads.get(w.name)
        return sum(v.size_limit for v in app.app.scratch) if app is not None and w.source == "app" else 0

    def floor_with(replicas: int):
        return boot_disk_floor(prod_config, [*pods, frontend.model_copy(update={"replicas": replicas})])

    many = floor_with(5000)
    more = floor_with(10_000)
    assert (many.size_gb, many.need_gib) == (more.size_gb, more.need_gib), "a node's share does not grow with the stack"
    daemons = [w for w in pods if w.per_node]
    footprints = sorted(
        [
            ((1 + len(w.sidecars)) * facts.container_log_mib + scratch(w), 1 + len(w.sidecars), scratch(w))
            for w in [*pods, frontend.model_copy(update={"replicas": 5000})]
            if not w.per_node
            for _ in range(w.replicas)
        ],
        reverse=True,
    )[: GKE_MAX_PODS_PER_NODE - len(daemons)]
    containers = facts.system_containers + sum(1 + len(w.sidecars) for w in daemons) + sum(f[1] for f in footprints)
    need = facts.images_gib + containers * facts.container_log_mib / 1024 + sum(f[2] for f in footprints) / 1024
    assert many.need_gib == pytest.approx(need, abs=0.005)
    assert f"a node runs {GKE_MAX_PODS_PER_NODE} pods at most" in many.detail
    assert many.size_gb < 100  # the default disk holds it


def test_a_boot_disk_below_the_floor_fails_the_plan_naming_the_key(parse, prod_values, prod_config, prod_plan):
    floor = boot_disk_floor(prod_config, list(prod_plan.pool_workloads.values())).size_gb
    err = plan_error(parse, _with(prod_values, "nodes", disk_size_gb=floor - 1))
    assert err.key.endswith(":nodes.disk_size_gb") and f"{floor} GB" in err.problem
    assert plan_of(parse, _with(prod_values, "nodes", disk_size_gb=floor)).cost.monthly_usd > 0


CATALOGUES = [
    # pd-ssd priced below the others: the disk dimension must find it.
    ({"disk_usd_gb_month": {"pd-ssd": 0.01}}, "pd-ssd", "3y"),
    # a 1y discount deeper than the 3y one: the term dimension must find it.
    ({"commitment_discounts": {"e2": {"1y": 0.6, "3y": 0.1}}}, "pd-standard", "1y"),
    # a t2d 1y discount deeper than its 3y one (e2 keeps the built-in ones).
    ({"commitment_discounts": {"t2d": {"1y": 0.95}}}, "pd-standard", "3y"),
]


@pytest.mark.parametrize(("catalogue", "disk_type", "term"), CATALOGUES)
@pytest.mark.parametrize("allow_spot", [False, True])
def test_the_bill_search_finds_the_cheapest_option_over_every_dimension(
    parse, catalogue, disk_type, term, allow_spot
) -> None:
    values = synthetic(
        {"api": (3, "300m", "600Mi", "900Mi"), "worker": (2, "500m", "1Gi", "1500Mi")},
        disk_size_gb=80,
        allow_spot=allow_spot,
    )
    config = parse({**values, "catalogue": catalogue})
    plans = search(config, demand(config)).plans
    floor = boot_disk_floor(config, list(demand(config).pods) + list(demand(config).agents)).size_gb
    disk_prices = {**DISK_USD_GB_MONTH, **catalogue.get("disk_usd_gb_month", {})}
    discounts = {
        s: {**COMMITMENT_DISCOUNTS.get(s, {}), **catalogue.get("commitment_discounts", {}).get(s, {})}
        for s in {*COMMITMENT_DISCOUNTS, *catalogue.get("commitment_discounts", {})}
    }
    # Every combination, priced here from the catalogue: machine × pricing × term × disk type × size.
    priced = {}
    for name, plan in plans.items():
        series = name.split("-")[0]
        for spot, each, kind, size in itertools.product(
            (False, True) if allow_spot else (False,), ("none", "1y", "3y"), DISK_TYPES, (floor, floor + 7, 80)
        ):
            if (spot and each != "none") or (each != "none" and each not in discounts.get(series, {})):
                continue
            machine = MACHINE_TYPES[name].price_usd_month(spot) * (
                1 - (0 if each == "none" else discounts[series][each])
            )
            priced[(name, spot, each, kind, size)] = round(plan.min * (machine + size * disk_prices[kind]), 2)
    result = recommend(config, "test", demand(config)).bill
    plain = min(v for k, v in priced.items() if k[2] == "none")
    committed = min(v for k, v in priced.items() if k[2] != "none")
    assert result.cheapest.monthly_usd == plain
    key = (
        result.cheapest.machine_type,
        result.cheapest.spot,
        "none",
        result.cheapest.disk_type,
        result.cheapest.disk_size_gb,
    )
    assert priced[key] == plain
    if committed < plain:
        assert result.committed is not None and result.committed.monthly_usd == committed
        assert {"1y": "1 year", "3y": "3 years"}[result.committed.commitment] in result.committed_binds
    else:
        assert result.committed is None
    # The synthetic catalogue's point is found: its disk type at the floor's size, and e2's deeper term.
    assert (result.cheapest.disk_type, result.cheapest.disk_size_gb) == (disk_type, floor)
    e2 = next(o for o in result.options if o.machine_type == "e2-standard-2" and o.commitment != "none")
    assert (e2.commitment, e2.disk_type) == (term, disk_type)
    if "t2d" in catalogue.get("commitment_discounts", {}):
        t2d = next(o for o in result.options if o.machine_type == "t2d-standard-1" and o.commitment != "none")
        assert t2d.commitment == "1y"
    assert all(o.disk_size_gb >= floor for o in result.options)
    assert all(
        math.isclose(o.monthly_usd, priced[(o.machine_type, o.spot, o.commitment, o.disk_type, o.disk_size_gb)])
        for o in result.options
    )
