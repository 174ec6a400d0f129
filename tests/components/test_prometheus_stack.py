"""The kube-prometheus-stack release under mocks: pinned, named and placed from config, wired to our objects."""

from __future__ import annotations

import pulumi

from components.monitoring.names import DASHBOARD_LABEL, FOLDER_ANNOTATION
from components.prometheus_stack import CHART, PrometheusStack, PrometheusStackArgs

RELEASE = "kubernetes:helm.sh/v3:Release"


@pulumi.runtime.test
def test_release_is_pinned_named_and_placed_from_config(mocks, ran, prod_config):
    monitoring = prod_config.monitoring.model_copy(
        update={"release": "kps", "prometheus_namespace": "observability", "stack_chart_version": "75.15.0"}
    )
    component = PrometheusStack("hyperstudy", PrometheusStackArgs(monitoring=monitoring))

    def check(_):
        (release,) = mocks.of_type(RELEASE)
        inputs = release.inputs
        assert (inputs["chart"], inputs["version"], inputs["name"]) == (CHART, "75.15.0", "kps")
        assert inputs["namespace"] == "observability" and inputs["createNamespace"] is True
        assert inputs["atomic"] is True
        ran.append("release")

    return pulumi.Output.all(component.release.urn).apply(check)


@pulumi.runtime.test
def test_grafana_sidecar_finds_the_dashboards_where_monitoring_puts_them(mocks, ran, prod_config):
    monitoring = prod_config.monitoring.model_copy(update={"dashboards_namespace": "grafana"})
    component = PrometheusStack("hyperstudy", PrometheusStackArgs(monitoring=monitoring))

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
