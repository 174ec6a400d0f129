"""The Monitoring component under mocks: what it ships, where, with which labels, and from which data."""

from __future__ import annotations

import typing
from pathlib import Path

import pulumi
import pytest
import yaml

from components.monitoring import Monitoring, MonitoringArgs
from monitoring.alertmanager import alertmanager_config
from monitoring.dashboards import dashboard_json, dashboards
from monitoring.names import WATCHDOG
from monitoring.rules import rule_groups
from sizing.config.loader import load_stack
from sizing.config.stack import StackConfig
from sizing.core.errors import ConfigError
from sizing.plan.build import build_plan
from sizing.plan.types import Plan

ROOT = Path(__file__).resolve().parents[2]
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
COMPONENT = "hyperstudy:monitoring:Monitoring"


def with_rules_backends(config: StackConfig, *, operator: bool, managed: bool, **more: object) -> StackConfig:
    """The config with the rules shipped to the prometheus-operator and/or Managed Prometheus."""
    update: dict[str, object] = {"prometheus_operator": operator, "managed_prometheus": managed, **more}
    if not operator:
        # Installing kube-prometheus-stack needs the operator, and receivers configure its Alertmanager.
        update |= {"install_stack": False, "alerting": type(config.monitoring.alerting)()}
    changed = config.model_copy(update={"monitoring": config.monitoring.model_copy(update=update)})
    # model_copy skips validation: validate, so the combination is one a stack file could hold.
    return StackConfig.model_validate(changed.model_dump(by_alias=True))


def types(annotation: object) -> set[object]:
    """A field's type and every type it is made of (`dict[str, Plan] | None` → dict, str, Plan, None)."""
    return {annotation, *(t for arg in typing.get_args(annotation) for t in types(arg))}


def _kind(mocks, kind: str) -> list:
    # A CustomResource registers as `kubernetes:<apiVersion>:<kind>`.
    return [r for r in mocks.resources if r.typ.startswith("kubernetes:") and r.typ.endswith(f":{kind}")]


@pulumi.runtime.test
def test_rules_ship_as_one_prometheus_rule_selected_by_the_release_label(mocks, ran, prod_config, prod_plan):
    assert prod_config.monitoring.prometheus_operator and not prod_config.monitoring.managed_prometheus
    component = Monitoring("hyperstudy", MonitoringArgs.derive(prod_config, prod_plan))
    assert component.cluster_rules is None
    assert component.prometheus_rule is not None

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
    config = with_rules_backends(prod_config, operator=False, managed=True)
    component = Monitoring("hyperstudy", MonitoringArgs.derive(config, prod_plan))
    assert component.cluster_rules is not None and component.prometheus_rule is None

    def check(_):
        (managed,) = _kind(mocks, "ClusterRules")
        assert managed.inputs["apiVersion"] == "monitoring.googleapis.com/v1"
        assert "namespace" not in managed.inputs["metadata"]
        # The same groups the PrometheusRule of an operator stack carries, and the Watchdog kube-prometheus-stack
        # ships there but Managed Prometheus does not: last, always firing, severity none.
        groups = managed.inputs["spec"]["groups"]
        *same, watchdog = groups[-1]["rules"]
        operator_groups = rule_groups(prod_config, prod_plan)
        assert [*groups[:-1], {**groups[-1], "rules": same}] == operator_groups
        assert not any(r.get("alert") == WATCHDOG for g in operator_groups for r in g["rules"])
        assert watchdog["alert"] == WATCHDOG and "for" not in watchdog
        assert watchdog["expr"] == 'label_replace(vector(1), "namespace", "hyperstudy", "", "")'
        assert watchdog["labels"] == {"severity": "none", "stack": "prod"}
        assert watchdog["annotations"]["runbook_url"].endswith("/docs/runbooks/Watchdog.md")
        ran.append("managed")

    return pulumi.Output.all(component.cluster_rules.urn).apply(check)


@pulumi.runtime.test
def test_without_the_operator_only_managed_prometheus_rules_ship(mocks, ran, prod_config, prod_plan):
    """No prometheus-operator, so maybe no PrometheusRule CRD: the groups ship as ClusterRules alone."""
    config = with_rules_backends(prod_config, operator=False, managed=True)
    component = Monitoring("hyperstudy", MonitoringArgs.derive(config, prod_plan))
    assert component.prometheus_rule is None and component.cluster_rules is not None

    def check(_):
        assert _kind(mocks, "PrometheusRule") == []
        (managed,) = _kind(mocks, "ClusterRules")
        assert managed.inputs["spec"] == {"groups": rule_groups(config, prod_plan)}
        assert len(mocks.of_type(CONFIG_MAP)) == 3, "the dashboards ship either way"
        ran.append("managed only")

    urns = [component.cluster_rules.urn, *(cm.urn for cm in component.dashboards.values())]
    return pulumi.Output.all(*urns).apply(check)


@pytest.mark.parametrize(("operator", "managed"), [(True, False), (False, True)], ids=["operator", "managed"])
@pulumi.runtime.test
def test_each_rules_backend_switch_ships_its_own_object(mocks, ran, operator, managed, prod_config, prod_plan):
    config = with_rules_backends(prod_config, operator=operator, managed=managed)
    component = Monitoring("hyperstudy", MonitoringArgs.derive(config, prod_plan))
    assert (component.prometheus_rule is not None) == operator
    assert (component.cluster_rules is not None) == managed

    def check(_):
        assert len(_kind(mocks, "PrometheusRule")) == int(operator)
        assert len(_kind(mocks, "ClusterRules")) == int(managed)
        ran.append("switch")

    rules = [r.urn for r in (component.prometheus_rule, component.cluster_rules) if r is not None]
    return pulumi.Output.all(*rules, *(cm.urn for cm in component.dashboards.values())).apply(check)


@pulumi.runtime.test
def test_dashboards_are_sidecar_configmaps_in_the_configured_namespace_and_folder(mocks, ran, prod_config, prod_plan):
    monitoring = prod_config.monitoring.model_copy(
        update={"dashboards_namespace": "grafana", "dashboards_folder": "Research platform"}
    )
    config = prod_config.model_copy(update={"monitoring": monitoring})
    component = Monitoring("hyperstudy", MonitoringArgs.derive(config, prod_plan))
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
    first = Monitoring("optimized", MonitoringArgs.derive(prod_config, prod_plan))
    second = Monitoring("baseline", MonitoringArgs.derive(baseline, build_plan(baseline, "prod")))

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
    operator = Monitoring("operator", MonitoringArgs.derive(prod_config, prod_plan))
    config = with_rules_backends(prod_config, operator=False, managed=True)
    managed = Monitoring("managed", MonitoringArgs.derive(config, prod_plan))
    assert operator.prometheus_rule is not None and managed.cluster_rules is not None
    children = [operator.prometheus_rule, managed.cluster_rules, *operator.dashboards.values()]

    def check(urns):
        for urn in urns:
            assert f"{COMPONENT}$" in urn, urn
        ran.append("parents")

    assert managed.prometheus_rule is None

    return pulumi.Output.all(*(child.urn for child in children)).apply(check)


@pulumi.runtime.test
def test_two_stacks_sharing_one_grafana_keep_their_own_configmaps_and_uids(mocks, ran, prod_config, prod_plan):
    """prod and staging (namespace hyperstudy-staging) both ship to the `monitoring` namespace: nothing collides."""
    staging = load_stack("staging", ROOT)
    assert staging.kubernetes.namespace == "hyperstudy-staging"
    assert staging.monitoring.dashboards_namespace == prod_config.monitoring.dashboards_namespace
    prod = Monitoring("prod", MonitoringArgs.derive(prod_config, prod_plan))
    secrets = {"slack_webhook_url": "https://hooks.example/staging", "heartbeat_url": "https://hc-ping.example/s"}
    other = Monitoring("staging", MonitoringArgs.derive(staging, build_plan(staging, "staging"), secrets))
    assert sorted(prod.dashboards) == ["hyperstudy-capacity", "hyperstudy-cost", "hyperstudy-memory"]
    assert sorted(other.dashboards) == [
        "hyperstudy-staging-capacity",
        "hyperstudy-staging-cost",
        "hyperstudy-staging-memory",
    ]

    def check(_):
        maps = mocks.of_type(CONFIG_MAP)
        assert len(maps) == 6
        names = {(cm.inputs["metadata"]["namespace"], cm.inputs["metadata"]["name"]) for cm in maps}
        assert len(names) == 6, "two ConfigMaps would overwrite each other"
        assert ("monitoring", "hyperstudy-memory-dashboard") in names
        assert ("monitoring", "hyperstudy-staging-memory-dashboard") in names
        keys = [key for cm in maps for key in cm.inputs["data"]]
        assert len(set(keys)) == 6, "the sidecar writes each dashboard to a file named by its key"
        ran.append("shared grafana")

    urns = [cm.urn for cm in (*prod.dashboards.values(), *other.dashboards.values())]
    return pulumi.Output.all(*urns).apply(check)


def test_derive_refuses_what_the_rules_or_dashboards_refuse_before_any_resource(mocks, prod_config, prod_plan):
    kubernetes = prod_config.kubernetes.model_copy(update={"namespace": "a-namespace-far-too-long-for-uids"})
    with pytest.raises(ConfigError, match=r"kubernetes\.namespace"):
        MonitoringArgs.derive(prod_config.model_copy(update={"kubernetes": kubernetes}), prod_plan)
    assert mocks.resources == []


def test_the_args_carry_what_derive_built_from_config_and_plan_and_neither_of_them():
    """The component gets the built rule groups and dashboards and the settings that place them, not the whole
    StackConfig and Plan: what it ships cannot read a size of its own from them."""
    staging = load_stack("staging", ROOT)
    plan = build_plan(staging, "staging")
    args = MonitoringArgs.derive(staging, plan, {"slack_webhook_url": "s", "heartbeat_url": "h"})
    assert args.groups == rule_groups(staging, plan)
    assert args.dashboards == {uid: dashboard_json(m) for uid, m in dashboards(staging, plan).items()}
    assert (args.namespace, args.monitoring) == ("hyperstudy-staging", staging.monitoring)
    assert args.secrets == {"slack_webhook_url": "s", "heartbeat_url": "h"}
    carried = {t for field in MonitoringArgs.model_fields.values() for t in types(field.annotation)}
    assert not {StackConfig, Plan} & carried


@pulumi.runtime.test
def test_managed_prometheus_alertmanager_gets_the_receivers_inline_as_a_secret(mocks, ran, prod_config, prod_plan):
    """GMP's Alertmanager mounts no Secret of ours: its config Secret holds the routes and the credentials."""
    config = with_rules_backends(prod_config, operator=False, managed=True)
    config = config.model_copy(
        update={"monitoring": config.monitoring.model_copy(update={"alerting": prod_config.monitoring.alerting})}
    )
    secrets = {
        "pagerduty_routing_key": "pd-key-51f0",
        "slack_webhook_url": "https://hooks.example/T1/B1",
        "heartbeat_url": "https://hc-ping.example/0f6c",
    }
    component = Monitoring("hyperstudy", MonitoringArgs.derive(config, prod_plan, secrets))
    assert component.managed_alertmanager is not None

    def check(_):
        (secret,) = mocks.of_type("kubernetes:core/v1:Secret")
        meta = secret.inputs["metadata"]
        assert (meta["namespace"], meta["name"]) == ("gmp-public", "alertmanager")
        assert ("stringData",) in secret.secrets
        text = secret.inputs["stringData"]["alertmanager.yaml"]
        am = yaml.safe_load(text)
        receivers = {r["name"]: r for r in am["receivers"]}
        assert receivers["team-chat"]["slack_configs"][0]["api_url"] == secrets["slack_webhook_url"]
        assert receivers["oncall"]["pagerduty_configs"][0]["routing_key"] == secrets["pagerduty_routing_key"]
        assert receivers["heartbeat"]["webhook_configs"] == [{"url": secrets["heartbeat_url"], "send_resolved": False}]
        assert "_file" not in text
        assert am["route"] == alertmanager_config(prod_config.monitoring.alerting)["route"]
        ran.append("managed alertmanager")

    return pulumi.Output.all(component.managed_alertmanager.urn).apply(check)


@pulumi.runtime.test
def test_without_receivers_the_managed_alertmanager_is_left_alone(mocks, ran, prod_config, prod_plan):
    config = with_rules_backends(prod_config, operator=False, managed=True)
    component = Monitoring("hyperstudy", MonitoringArgs.derive(config, prod_plan))
    assert component.managed_alertmanager is None

    def check(_):
        assert mocks.of_type("kubernetes:core/v1:Secret") == []
        ran.append("no secret")

    return pulumi.Output.all(*(cm.urn for cm in component.dashboards.values())).apply(check)


@pulumi.runtime.test
def test_a_heartbeat_alone_writes_the_managed_alertmanager(mocks, ran, prod_config, prod_plan):
    """No receiver yet, but a dead-man's switch: the Watchdog the ClusterRules carry must reach it."""
    config = with_rules_backends(prod_config, operator=False, managed=True)
    alerting = type(config.monitoring.alerting).model_validate({"heartbeat": {"url_secret": "heartbeat_url"}})
    config = config.model_copy(update={"monitoring": config.monitoring.model_copy(update={"alerting": alerting})})
    with pytest.raises(ValueError, match="no value for the receivers' secrets heartbeat_url"):
        MonitoringArgs.derive(config, prod_plan)
    secrets = {"heartbeat_url": "https://hc-ping.example/only"}
    component = Monitoring("hyperstudy", MonitoringArgs.derive(config, prod_plan, secrets))
    assert component.managed_alertmanager is not None

    def check(_):
        (secret,) = mocks.of_type("kubernetes:core/v1:Secret")
        am = yaml.safe_load(secret.inputs["stringData"]["alertmanager.yaml"])
        assert am["receivers"] == [
            {"name": "null"},
            {"name": "heartbeat", "webhook_configs": [{"url": secrets["heartbeat_url"], "send_resolved": False}]},
        ]
        assert am["route"]["routes"][0]["receiver"] == "heartbeat"
        assert am["route"]["routes"][0]["matchers"] == [f'alertname = "{WATCHDOG}"']
        ran.append("heartbeat alone")

    return pulumi.Output.all(component.managed_alertmanager.urn).apply(check)
