"""kube-prometheus-stack: values that carry the plan's sizes, volumes, receivers and the GKE fit (pure), and the
component under mocks (namespace, Secrets, release, secret handling)."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest

from components.prometheus_stack import (
    CHART,
    GRAFANA_ADMIN_SECRET,
    PrometheusStack,
    PrometheusStackArgs,
    chart_values,
    retention_size,
)
from monitoring.alertmanager import RECEIVER_SECRET, SECRETS_DIR, alertmanager_config, secret_file
from monitoring.names import DASHBOARD_LABEL, FOLDER_ANNOTATION
from sizing.facts.charts import ValuesPath
from sizing.plan.build import build_plan
from sizing.plan.pool_name import GKE_NODE_POOL_LABEL, stack_pool_name

RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
NAMESPACE = "kubernetes:core/v1:Namespace"
SECRETS = {
    "heartbeat_url": "https://hc-ping.example/0f6c1c5e",
    "pagerduty_routing_key": "pd-routing-key-0123456789",
    "slack_webhook_url": "https://hooks.example/T0/B0",
}


def _at(values: dict[str, Any], path: ValuesPath) -> Any:
    for key in path:
        values = values[key]
    return values


@pytest.fixture(scope="module")
def values(prod_config, prod_plan) -> dict[str, Any]:
    return chart_values(prod_config.monitoring, prod_plan.chart_workloads, stack_pool_name(prod_config))


def test_every_container_of_the_inventory_gets_the_plans_sizes(values, prod_plan):
    for pod in CHART.pods:
        w = prod_plan.chart_workloads[pod.name]
        assert _at(values, pod.main.resources) == {
            "requests": {"cpu": w.cpu_request, "memory": w.memory_request},
            "limits": {"memory": w.memory_limit},
        }, pod.name
        for sidecar, planned in zip(pod.sidecars, w.sidecars, strict=True):
            assert _at(values, sidecar.resources)["limits"] == {"memory": planned.memory_limit}
        if pod.replicas is not None:
            assert _at(values, pod.replicas) == w.replicas


def test_go_programs_get_the_plans_gomemlimit(values, prod_plan):
    prometheus = values["prometheus"]["prometheusSpec"]["containers"]
    assert prometheus == [{"name": "prometheus", "env": [{"name": "GOMEMLIMIT", "value": "921MiB"}]}]
    assert values["alertmanager"]["alertmanagerSpec"]["containers"][0]["env"] == [
        {"name": "GOMEMLIMIT", "value": prod_plan.chart_workloads["alertmanager"].runtime.env["GOMEMLIMIT"]}
    ]
    assert values["grafana"]["env"] == {"GOMEMLIMIT": "230MiB"}
    assert values["kube-state-metrics"]["env"] == [{"name": "GOMEMLIMIT", "value": "115MiB"}]


def test_pods_are_pinned_to_the_pool_except_the_node_agent(values, prod_config):
    pool = {GKE_NODE_POOL_LABEL: stack_pool_name(prod_config)}
    for pod in CHART.pods:
        if pod.node_selector is None:
            assert pod.kind == "DaemonSet"  # node-exporter must run on every node it reports on
        else:
            assert _at(values, pod.node_selector) == pool, pod.name


def test_pods_the_plan_does_not_size_are_switched_off(values):
    for path in CHART.off:
        assert _at(values, path) is False
    # Without the webhooks' certificate Job the operator must not wait for a TLS secret nobody makes.
    assert values["prometheusOperator"]["tls"] == {"enabled": False}


def test_prometheus_keeps_its_data_on_a_volume_larger_than_its_retention(values, prod_config):
    spec = values["prometheus"]["prometheusSpec"]
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim == {
        "storageClassName": "standard-rwo",
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "20Gi"}},
    }
    assert (spec["retention"], spec["retentionSize"]) == ("15d", "16GB")
    assert values["alertmanager"]["alertmanagerSpec"]["storage"]["volumeClaimTemplate"]["spec"]["resources"] == {
        "requests": {"storage": "10Gi"}
    }


@pytest.mark.parametrize(("mib", "text"), [(16 * 1024, "16GB"), (16 * 1024 + 1, "16385MB"), (819, "819MB")])
def test_retention_size_is_written_as_prometheus_reads_it(mib, text):
    assert retention_size(mib) == text


def test_gke_hides_the_control_plane_and_dataplane_v2_has_no_kube_proxy(values):
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy", "coreDns"):
        assert values[component] == {"enabled": False}, component
    # One alert per condition: ours, not the chart's copy. KubeCPUOvercommit counts the lost node's own DaemonSet pods
    # as pods to move: on a pool of two it never stops firing (the plan checks CPU node loss itself).
    assert values["defaultRules"]["disabled"] == {"KubeMemoryOvercommit": True, "KubeCPUOvercommit": True}
    assert values["kube-state-metrics"]["metricLabelsAllowlist"] == ["nodes=[cloud.google.com/gke-nodepool]"]


def test_grafana_logs_in_with_the_generated_secret_not_the_charts_password(values):
    grafana = values["grafana"]
    assert grafana["admin"] == {
        "existingSecret": GRAFANA_ADMIN_SECRET,
        "userKey": "admin-user",
        "passwordKey": "admin-password",
    }
    assert "adminPassword" not in grafana


def test_alertmanager_routes_by_severity_and_reads_credentials_from_files(values, prod_config):
    am = values["alertmanager"]
    assert am["alertmanagerSpec"]["secrets"] == [RECEIVER_SECRET]
    config = am["config"]
    assert config == alertmanager_config(prod_config.monitoring.alerting)
    routes = [(r["matchers"], r["receiver"], r.get("continue", False)) for r in config["route"]["routes"]]
    assert routes == [
        (['alertname = "Watchdog"'], "heartbeat", False),
        (['alertname = "InfoInhibitor"'], "null", False),
        (['severity = "critical"'], "oncall", True),
        (['severity = "critical"'], "team-chat", False),
        (['severity = "warning"'], "team-chat", False),
        (['severity = "info"'], "team-chat", False),
    ]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["oncall"]["pagerduty_configs"][0]["routing_key_file"] == (
        f"{SECRETS_DIR}/{RECEIVER_SECRET}/pagerduty_routing_key"
    )
    assert receivers["team-chat"]["slack_configs"][0]["api_url_file"] == secret_file("slack_webhook_url")
    assert receivers["team-chat"]["slack_configs"][0]["channel"] == "#hyperstudy-alerts"
    # The chart's Watchdog to the dead-man's switch, its URL a file of the same Secret, every 30 s (half prod's 1m).
    assert receivers["heartbeat"] == {
        "name": "heartbeat",
        "webhook_configs": [{"url_file": secret_file("heartbeat_url"), "send_resolved": False}],
    }
    heartbeat = config["route"]["routes"][0]
    assert (heartbeat["group_wait"], heartbeat["group_interval"], heartbeat["repeat_interval"]) == ("0s", "30s", "30s")


def test_a_stack_without_receivers_mounts_no_secret(prod_config, prod_plan):
    monitoring = prod_config.monitoring.model_copy(update={"alerting": type(prod_config.monitoring.alerting)()})
    config = prod_config.model_copy(update={"monitoring": monitoring})
    values = chart_values(config.monitoring, build_plan(config, "prod").chart_workloads, "hyperstudy-abc123")
    assert values["alertmanager"]["alertmanagerSpec"]["secrets"] == []
    assert [r["name"] for r in values["alertmanager"]["config"]["receivers"]] == ["null"]


@pulumi.runtime.test
def test_release_is_pinned_named_and_placed_after_its_namespace_and_secrets(mocks, ran, prod_config, prod_plan):
    monitoring = prod_config.monitoring.model_copy(
        update={"release": "kps", "prometheus_namespace": "observability", "stack_chart_version": "75.15.0"}
    )
    config = prod_config.model_copy(update={"monitoring": monitoring})
    args = PrometheusStackArgs.derive(config, prod_plan, "hyperstudy-abc123", SECRETS)
    component = PrometheusStack("hyperstudy", args)

    def check(_):
        (release,) = mocks.of_type(RELEASE)
        inputs = release.inputs
        assert (inputs["chart"], inputs["version"], inputs["name"]) == (CHART.name, "75.15.0", "kps")
        assert inputs["namespace"] == "observability" and "createNamespace" not in inputs
        assert inputs["atomic"] is True
        (namespace,) = mocks.of_type(NAMESPACE)
        assert namespace.inputs["metadata"]["name"] == "observability"
        secrets = {s.inputs["metadata"]["name"]: s for s in mocks.of_type(SECRET)}
        assert set(secrets) == {RECEIVER_SECRET, GRAFANA_ADMIN_SECRET}
        assert all(s.inputs["metadata"]["namespace"] == "observability" for s in secrets.values())
        # Registered as secrets (the mocks record where), so every render redacts them.
        assert all(("stringData",) in s.secrets for s in secrets.values())
        assert secrets[RECEIVER_SECRET].inputs["stringData"] == SECRETS
        admin = secrets[GRAFANA_ADMIN_SECRET].inputs["stringData"]
        assert admin["admin-user"] == "admin" and admin["admin-password"].startswith("mock-password")
        # No secret value in the chart values, which Helm and the state keep in plaintext-readable form.
        text = json.dumps(inputs["values"])
        assert not any(value in text for value in SECRETS.values())
        assert "mock-password" not in text
        ran.append("release")

    return pulumi.Output.all(component.release.urn).apply(check)


@pulumi.runtime.test
def test_grafana_sidecar_finds_the_dashboards_where_monitoring_puts_them(mocks, ran, prod_config, prod_plan):
    monitoring = prod_config.monitoring.model_copy(update={"dashboards_namespace": "grafana"})
    config = prod_config.model_copy(update={"monitoring": monitoring})
    component = PrometheusStack(
        "hyperstudy", PrometheusStackArgs.derive(config, prod_plan, "hyperstudy-abc123", SECRETS)
    )

    def check(_):
        (release,) = mocks.of_type(RELEASE)
        sidecar = release.inputs["values"]["grafana"]["sidecar"]["dashboards"]
        assert sidecar["label"] == DASHBOARD_LABEL and sidecar["labelValue"] == "1"
        assert sidecar["folderAnnotation"] == FOLDER_ANNOTATION
        assert sidecar["searchNamespace"] == ["grafana"]
        spec = release.inputs["values"]["prometheus"]["prometheusSpec"]
        assert spec["ruleSelectorNilUsesHelmValues"] and spec["podMonitorSelectorNilUsesHelmValues"]
        ran.append("sidecar")

    return pulumi.Output.all(component.release.urn).apply(check)
