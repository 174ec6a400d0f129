"""The Monitoring component under mocks: what it ships, where, with which labels, and from which data."""

from __future__ import annotations

import pulumi

from components.monitoring.component import Monitoring, MonitoringArgs
from components.monitoring.dashboards import dashboard_json, dashboards
from components.monitoring.rules import rule_groups
from sizing.plan import build_plan

CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
COMPONENT = "hyperstudy:monitoring:Monitoring"


def _kind(mocks, kind: str) -> list:
    # A CustomResource registers as `kubernetes:<apiVersion>:<kind>`.
    return [r for r in mocks.resources if r.typ.startswith("kubernetes:") and r.typ.endswith(f":{kind}")]


@pulumi.runtime.test
def test_rules_ship_as_one_prometheus_rule_selected_by_the_release_label(mocks, ran, prod_config, prod_plan):
    component = Monitoring("hyperstudy", MonitoringArgs(config=prod_config, plan=prod_plan))
    assert component.cluster_rules is None

    def check(_):
        (rule,) = _kind(mocks, "PrometheusRule")
        assert rule.inputs["apiVersion"] == "monitoring.coreos.com/v1"
        assert rule.inputs["metadata"]["namespace"] == prod_config.kubernetes.namespace
        assert rule.inputs["metadata"]["labels"]["release"] == prod_config.monitoring.release
        assert rule.inputs["spec"] == {"groups": rule_groups(prod_config, prod_plan)}
        assert _kind(mocks, "ClusterRules") == []
        ran.append("rules")

    return pulumi.Output.all(component.prometheus_rule.urn).apply(check)


@pulumi.runtime.test
def test_managed_prometheus_gets_the_same_groups_cluster_wide(mocks, ran, prod_config, prod_plan):
    monitoring = prod_config.monitoring.model_copy(update={"managed_prometheus": True, "release": "kps"})
    config = prod_config.model_copy(update={"monitoring": monitoring})
    component = Monitoring("hyperstudy", MonitoringArgs(config=config, plan=prod_plan))
    assert component.cluster_rules is not None

    def check(_):
        (managed,) = _kind(mocks, "ClusterRules")
        (rule,) = _kind(mocks, "PrometheusRule")
        assert managed.inputs["apiVersion"] == "monitoring.googleapis.com/v1"
        assert "namespace" not in managed.inputs["metadata"]
        assert managed.inputs["spec"] == rule.inputs["spec"]
        assert rule.inputs["metadata"]["labels"]["release"] == "kps"
        ran.append("managed")

    return pulumi.Output.all(component.cluster_rules.urn).apply(check)


@pulumi.runtime.test
def test_dashboards_are_sidecar_configmaps_in_the_configured_namespace_and_folder(mocks, ran, prod_config, prod_plan):
    monitoring = prod_config.monitoring.model_copy(
        update={"dashboards_namespace": "grafana", "dashboards_folder": "Research platform"}
    )
    config = prod_config.model_copy(update={"monitoring": monitoring})
    component = Monitoring("hyperstudy", MonitoringArgs(config=config, plan=prod_plan))
    models = dashboards(config, prod_plan)
    assert sorted(component.dashboards) == sorted(models)

    def check(_):
        maps = mocks.of_type(CONFIG_MAP)
        assert len(maps) == len(models)
        for cm in maps:
            meta = cm.inputs["metadata"]
            assert meta["namespace"] == "grafana"
            assert meta["labels"]["grafana_dashboard"] == "1"
            assert meta["annotations"] == {"grafana_folder": "Research platform"}
            ((key, text),) = cm.inputs["data"].items()
            uid = key.removesuffix(".json")
            assert text == dashboard_json(models[uid])
            assert meta["name"] == f"{uid}-dashboard"
        ran.append("dashboards")

    return pulumi.Output.all(*(cm.urn for cm in component.dashboards.values())).apply(check)


@pulumi.runtime.test
def test_a_profile_switch_updates_dashboards_in_place(mocks, ran, prod_config, prod_plan):
    """Names stay, data changes: with the provider's mutable ConfigMaps that is an update, not a replacement."""
    baseline = prod_config.with_profile("baseline")
    first = Monitoring("optimized", MonitoringArgs(config=prod_config, plan=prod_plan))
    second = Monitoring("baseline", MonitoringArgs(config=baseline, plan=build_plan(baseline, "prod")))

    def check(_):
        by_component = {"optimized": {}, "baseline": {}}
        for cm in mocks.of_type(CONFIG_MAP):
            prefix = cm.name.split("-hyperstudy-")[0]
            by_component[prefix][cm.inputs["metadata"]["name"]] = cm.inputs["data"]
        assert by_component["optimized"].keys() == by_component["baseline"].keys()
        assert by_component["optimized"] != by_component["baseline"], "the heap ceilings differ between profiles"
        ran.append("in-place")

    urns = [cm.urn for cm in (*first.dashboards.values(), *second.dashboards.values())]
    return pulumi.Output.all(*urns).apply(check)


@pulumi.runtime.test
def test_every_child_is_parented_to_the_component(mocks, ran, prod_config, prod_plan):
    component = Monitoring("hyperstudy", MonitoringArgs(config=prod_config, plan=prod_plan))
    children = [component.prometheus_rule, *component.dashboards.values()]

    def check(urns):
        for urn in urns:
            assert f"{COMPONENT}$" in urn, urn
        ran.append("parents")

    return pulumi.Output.all(*(child.urn for child in children)).apply(check)
