"""The installed monitoring stack in the plan: every pod sized from config, DaemonSets per node, sidecars in their
pod, totals and nodes that hold them; its config's refusals (one line naming the key)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sizing.core.errors import ConfigError
from sizing.core.quantity import to_mib
from sizing.facts.charts import KUBE_PROMETHEUS_STACK
from sizing.plan.build import build_plan
from sizing.plan.types import Plan

NS = "hyperstudy-infra"


def _plan(parse, values: dict[str, Any]) -> Plan:
    return build_plan(parse(values), "test")


def _error(parse, values: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        build_plan(parse(values), "test")
    return err.value


def test_every_pod_of_the_chart_inventory_is_planned_with_the_configured_sizes(prod_optimized: Plan, prod_values):
    components = prod_values["monitoring"]["components"]
    stack = {n for n, w in prod_optimized.chart_workloads.items() if w.source == KUBE_PROMETHEUS_STACK.name}
    assert stack == {pod.name for pod in KUBE_PROMETHEUS_STACK.pods}
    for pod in KUBE_PROMETHEUS_STACK.pods:
        w = prod_optimized.chart_workloads[pod.name]
        sizes = components[pod.main.sizes]
        assert (w.memory_request, w.memory_limit) == (
            sizes["memory"]["optimized"]["request"],
            sizes["memory"]["optimized"]["limit"],
        )
        assert w.cpu_request == sizes["cpu_request"]
        assert w.source == "kube-prometheus-stack"
        assert [c.name for c in w.sidecars] == [s.container for s in pod.sidecars]
        for sidecar, planned in zip(pod.sidecars, w.sidecars, strict=True):
            assert planned.memory_request == components[sidecar.sizes]["memory"]["optimized"]["request"]
        assert w.pod_memory_request_mib == to_mib(sizes["memory"]["optimized"]["request"]) + sum(
            to_mib(components[s.sizes]["memory"]["optimized"]["request"]) for s in pod.sidecars
        )


def test_go_programs_get_gomemlimit_from_their_limit(prod_optimized: Plan) -> None:
    prometheus = prod_optimized.chart_workloads["prometheus"]
    assert prometheus.runtime.env == {"GOMEMLIMIT": "921MiB"}  # ⌊0.9 × 1024⌋
    assert prod_optimized.chart_workloads["alertmanager"].runtime.env == {"GOMEMLIMIT": "115MiB"}


def test_a_daemonset_runs_on_every_node_at_the_minimum(prod_optimized: Plan) -> None:
    exporter = prod_optimized.chart_workloads["node-exporter"]
    assert exporter.per_node and exporter.replicas == prod_optimized.nodes.min
    assert all(node.count("node-exporter") == 1 for node in prod_optimized.nodes.placement)


def test_without_install_stack_nothing_is_added(prod_values, parse, prod_optimized: Plan) -> None:
    prod_values["monitoring"]["install_stack"] = False
    prod_values["monitoring"].pop("alerting")  # receivers configure the installed Alertmanager only
    plan = _plan(parse, prod_values)
    assert not any(w.source == KUBE_PROMETHEUS_STACK.name for w in plan.chart_workloads.values())
    assert plan.totals.memory_request_mib == prod_optimized.totals.memory_request_mib - 1088
    assert plan.nodes.per_node_memory_mib == 0


def test_defaults_size_a_stack_that_names_no_components(prod_values, parse) -> None:
    del prod_values["monitoring"]["components"]
    plan = _plan(parse, prod_values)
    assert plan.chart_workloads["prometheus"].memory_limit == "1Gi"
    assert plan.chart_workloads["node-exporter"].memory_request == "32Mi"


def test_the_baseline_profile_keeps_the_stack_unless_it_says_otherwise(prod_values, parse) -> None:
    prod_values["profile"] = "baseline"
    assert _plan(parse, prod_values).chart_workloads["prometheus"].memory_limit == "1Gi"
    prod_values["monitoring"]["components"]["prometheus"]["memory"]["baseline"] = {"request": "1Gi", "limit": "2Gi"}
    assert _plan(parse, prod_values).chart_workloads["prometheus"].memory_limit == "2Gi"


def test_the_stack_counts_towards_the_node_bounds(prod_values, parse) -> None:
    # The chart renders no spread for kube-state-metrics: three replicas may share a node, so they bind nothing.
    prod_values["monitoring"]["components"]["kube-state-metrics"]["replicas"] = 3
    plan = _plan(parse, prod_values)
    assert plan.chart_workloads["kube-state-metrics"].spread == "none"
    # Their 40m more CPU is what binds: 1540m of requests no longer fit the one node left after a loss (1510m).
    assert plan.nodes.bounds["spread"] == 1 and plan.nodes.bounds["cpu"] == 2
    assert (plan.nodes.min, plan.nodes.binding) == (3, "node_loss")
    assert plan.chart_workloads["node-exporter"].replicas == 3
    # Prometheus' requests count in the memory bound: 9 GiB more than two nodes' free memory hold.
    prod_values["monitoring"]["components"]["prometheus"] |= {
        "replicas": 2,
        "memory": {"optimized": {"request": "4600Mi", "limit": "4600Mi"}},
    }
    plan = _plan(parse, prod_values)
    assert plan.nodes.bounds["memory"] == 3 and plan.nodes.min >= 3


def test_a_sidecar_bigger_than_a_node_names_its_own_key(prod_values, parse) -> None:
    prod_values["monitoring"]["components"]["config-reloader"]["memory"]["optimized"] = {
        "request": "32Mi",
        "limit": "5Gi",
    }
    err = _error(parse, prod_values)
    assert err.key == f"{NS}:monitoring.components.prometheus"
    assert "more than one e2-standard-2 node offers" in err.problem


def test_per_node_pods_that_fill_a_node_are_refused(prod_values, parse) -> None:
    prod_values["monitoring"]["components"]["node-exporter"]["memory"]["optimized"] = {"request": "5Gi", "limit": "6Gi"}
    err = _error(parse, prod_values)
    assert err.key == f"{NS}:monitoring.components.node-exporter"
    assert "leave nothing on one e2-standard-2 node" in err.problem


@pytest.mark.parametrize(
    ("component", "replicas", "problem"),
    [
        ("node-exporter", 2, "must be omitted: node-exporter runs on every node (a DaemonSet)"),
        ("config-reloader", 1, "must be omitted: config-reloader runs in its pods (a sidecar)"),
        ("grafana", 2, "2 is above 1, the most grafana can run"),
        ("prometheus-operator", 1, "must be omitted: the chart runs exactly one prometheus-operator"),
    ],
)
def test_replicas_the_chart_cannot_run_are_refused(prod_values, parse, component, replicas, problem) -> None:
    prod_values["monitoring"]["components"][component]["replicas"] = replicas
    with pytest.raises(ConfigError) as err:
        parse(prod_values)
    assert err.value.key == f"{NS}:monitoring.components.{component}.replicas"
    assert err.value.problem == problem


def test_an_unknown_component_is_an_unknown_key(prod_values, parse) -> None:
    prod_values["monitoring"]["components"]["thanos"] = copy.deepcopy(
        prod_values["monitoring"]["components"]["grafana"]
    )
    with pytest.raises(ConfigError) as err:
        parse(prod_values)
    assert (err.value.key, err.value.problem) == (f"{NS}:monitoring.components.thanos", "unknown key")


@pytest.mark.parametrize(
    ("storage", "key", "problem"),
    [
        (
            {"prometheus": {"size": "20Gi", "retention_size": "20Gi"}},
            "monitoring.storage.prometheus.retention_size",
            "20Gi is not below the volume size 20Gi: Prometheus would fill the disk before deleting history",
        ),
        ({"prometheus": {"retention": "two weeks"}}, "monitoring.storage.prometheus.retention", None),
        ({"alertmanager": {"size": "10GB"}}, "monitoring.storage.alertmanager.size", None),
    ],
)
def test_storage_refusals(prod_values, parse, storage, key, problem) -> None:
    prod_values["monitoring"]["storage"] = storage
    with pytest.raises(ConfigError) as err:
        parse(prod_values)
    assert err.value.key == f"{NS}:{key}"
    if problem is not None:
        assert err.value.problem == problem


def test_retention_size_defaults_below_the_volume(prod_values, parse) -> None:
    prod_values["monitoring"]["storage"] = {"prometheus": {"size": "50Gi"}}
    storage = parse(prod_values).monitoring.storage.prometheus
    assert storage.retention_size_mib == 40 * 1024 < storage.size
