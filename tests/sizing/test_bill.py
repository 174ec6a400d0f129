"""sizing/plan/bill.py: every line of a stack's monthly bill, priced from the catalogue and the stack's own
resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sizing.config.loader import load_stack
from sizing.core.errors import ConfigError
from sizing.facts.catalogue import DISK_USD_GB_MONTH, HOURS_PER_MONTH, MACHINE_TYPES, ServicePrices
from sizing.plan.bill import bill, node_usd_month, rates
from sizing.plan.build import build_plan
from sizing.plan.types import LINES

ROOT = Path(__file__).resolve().parents[2]
PRICES = ServicePrices()


def lines_of(parse, values: dict[str, Any], nodes: int | None = None) -> dict[str, float]:
    config = parse(values)
    count = build_plan(config, "test").nodes.min if nodes is None else nodes
    return {line.name: line.usd_month for line in bill(config, config.nodes.machine_type, config.nodes.spot, count)}


def details_of(parse, values: dict[str, Any]) -> dict[str, str]:
    config = parse(values)
    return {line.name: line.detail for line in bill(config, config.nodes.machine_type, config.nodes.spot, 2)}


def monthly(hourly: float) -> float:
    return round(hourly * HOURS_PER_MONTH, 2)


def test_prod_bill_line_by_line(parse, prod_values) -> None:
    lines = lines_of(parse, prod_values)
    assert tuple(lines) == LINES
    node = MACHINE_TYPES["e2-standard-2"].on_demand_usd_month + 100 * DISK_USD_GB_MONTH["pd-balanced"]
    assert lines["nodes"] == pytest.approx(2 * node, abs=0.005)
    # the zonal cluster's $73.00 fee is covered by the free-tier credit
    assert lines["cluster_fee"] == 0
    # one forwarding rule (Traefik's LoadBalancer); the address it uses costs nothing more
    assert lines["load_balancer"] == monthly(PRICES.forwarding_rules_first5_usd_hour)
    # two private nodes behind Cloud NAT, and its address
    assert lines["nat"] == pytest.approx(monthly(2 * PRICES.nat_vm_usd_hour + PRICES.external_ip_usd_hour), abs=0.01)
    # redis 1Gi, Prometheus 20Gi and Alertmanager 10Gi, on pd-balanced
    assert lines["volumes"] == pytest.approx(31 * DISK_USD_GB_MONTH["pd-balanced"])
    assert lines["node_ips"] == 0
    plan = build_plan(parse(prod_values), "prod")
    assert plan.cost.lines == lines
    assert plan.cost.total_monthly_usd == pytest.approx(sum(lines.values()), abs=0.01)


def test_the_free_tier_credit_is_the_stacks_choice_and_zonal_only(parse, prod_values) -> None:
    prod_values["cost"]["free_tier_credit"] = False
    assert lines_of(parse, prod_values)["cluster_fee"] == monthly(PRICES.cluster_fee_usd_hour)
    prod_values["cost"]["free_tier_credit"] = True
    prod_values["cluster"]["location"] = "us-central1"
    assert lines_of(parse, prod_values)["cluster_fee"] == monthly(PRICES.cluster_fee_usd_hour)
    assert "zonal clusters only" in details_of(parse, prod_values)["cluster_fee"]


def test_prices_are_overridable_per_stack(parse, prod_values) -> None:
    prod_values["catalogue"] = {"prices": {"cluster_fee_usd_hour": 0.2, "forwarding_rules_first5_usd_hour": 0.03}}
    lines = lines_of(parse, prod_values)
    assert lines["cluster_fee"] == pytest.approx(monthly(0.2) - PRICES.free_tier_credit_usd_month)
    assert lines["load_balancer"] == monthly(0.03)


def test_a_referenced_cluster_bills_neither_its_fee_nor_its_nat() -> None:
    config = load_stack("staging", ROOT)
    lines = {line.name: line.usd_month for line in bill(config, "e2-medium", True, 2)}
    assert (lines["cluster_fee"], lines["nat"], lines["node_ips"]) == (0, 0, 0)
    assert lines["load_balancer"] == monthly(PRICES.forwarding_rules_first5_usd_hour)
    # no monitoring stack installed: only redis' claim, on the default StorageClass
    assert lines["volumes"] == pytest.approx(DISK_USD_GB_MONTH["pd-balanced"])


def test_public_nodes_pay_for_their_addresses_and_need_no_nat(parse, prod_values) -> None:
    prod_values["cluster"]["private_nodes"] = False
    lines = lines_of(parse, prod_values, nodes=3)
    assert lines["nat"] == 0
    assert lines["node_ips"] == pytest.approx(3 * monthly(PRICES.external_ip_usd_hour), abs=0.01)


def test_nat_is_capped_at_32_nodes(parse, prod_values) -> None:
    lines = lines_of(parse, prod_values, nodes=40)
    assert lines["nat"] == pytest.approx(monthly(PRICES.nat_max_usd_hour + PRICES.external_ip_usd_hour), abs=0.01)


def test_an_unused_reserved_address_costs_more(parse, prod_values) -> None:
    # The program reserves the ingress address in every stack; without Traefik nothing uses it.
    del prod_values["workloads"]["traefik"], prod_values["images"]["traefik"]
    assert lines_of(parse, prod_values)["load_balancer"] == monthly(PRICES.external_ip_unused_usd_hour)


def test_volumes_follow_their_storage_class(parse, prod_values) -> None:
    prod_values["monitoring"]["storage"]["prometheus"]["storage_class"] = "premium-rwo"
    lines = lines_of(parse, prod_values)
    assert lines["volumes"] == pytest.approx(11 * DISK_USD_GB_MONTH["pd-balanced"] + 20 * DISK_USD_GB_MONTH["pd-ssd"])


def test_an_unknown_storage_class_must_be_mapped_to_be_priced(parse, prod_values) -> None:
    prod_values["monitoring"]["storage"]["prometheus"]["storage_class"] = "fast-local"
    with pytest.raises(ConfigError) as err:
        parse(prod_values)
    assert err.value.key == "hyperstudy-infra:monitoring.storage.prometheus.storage_class"
    assert "catalogue.storage_classes" in err.value.problem
    prod_values["catalogue"] = {"storage_classes": {"fast-local": "pd-ssd"}}
    assert lines_of(parse, prod_values)["volumes"] == pytest.approx(
        11 * DISK_USD_GB_MONTH["pd-balanced"] + 20 * DISK_USD_GB_MONTH["pd-ssd"]
    )


@pytest.mark.parametrize("private_nodes", [True, False])
@pytest.mark.parametrize("nodes", [0, 1, 2, 31, 32, 33, 40])
def test_the_rates_reproduce_the_bill_at_any_node_count(parse, prod_values, nodes: int, private_nodes: bool) -> None:
    # The rules price the running pool from these terms: they must total what the plan bills.
    prod_values["cluster"]["private_nodes"] = private_nodes
    config = parse(prod_values)
    r = rates(config, "e2-standard-2", False)
    total = sum(line.usd_month for line in bill(config, "e2-standard-2", False, nodes))
    node = node_usd_month(config, "e2-standard-2", False)
    priced = (
        r.fixed_usd_month + nodes * (node + r.node_ip_usd_month) + min(nodes * r.nat_vm_usd_month, r.nat_cap_usd_month)
    )
    assert priced == pytest.approx(total, abs=0.02)
