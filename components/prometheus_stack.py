"""kube-prometheus-stack, installed by the program when the stack asks for it (`monitoring.install_stack`).

A cluster the program has just created has no Prometheus operator, so its PrometheusRule and PodMonitors would
be refused ("no matches for kind") and the dashboards would have no Grafana. The Helm release brings the CRDs,
Prometheus, kube-state-metrics and a Grafana whose sidecar imports the dashboard ConfigMaps; everything that
needs them depends on this component. Its settings are wired to the stack's monitoring config, so the rules
and monitors carry the release label this Prometheus selects, and the sidecar reads the folder annotation the
dashboards carry.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
from pydantic import BaseModel, ConfigDict, Field

from components.monitoring.names import DASHBOARD_LABEL, FOLDER_ANNOTATION
from sizing.config import MonitoringConfig

CHART = "kube-prometheus-stack"
CHART_REPOSITORY = "https://prometheus-community.github.io/helm-charts"


class PrometheusStackArgs(BaseModel):
    """The stack's monitoring config: release name, namespaces, dashboard folder, chart version."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    monitoring: MonitoringConfig = Field(description="the stack's monitoring config")


def chart_values(monitoring: MonitoringConfig) -> dict[str, Any]:
    """Helm values: selectors that pick up our rules and monitors, and a sidecar that finds our dashboards."""
    return {
        "prometheus": {
            "prometheusSpec": {
                # Rules and monitors are selected by the `release` label (the chart's default, stated so a chart
                # upgrade cannot silently widen or narrow it), in every namespace the stacks deploy to.
                "ruleSelectorNilUsesHelmValues": True,
                "podMonitorSelectorNilUsesHelmValues": True,
                "ruleNamespaceSelector": {},
                "podMonitorNamespaceSelector": {},
            }
        },
        "grafana": {
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL,
                    "labelValue": "1",
                    "searchNamespace": [monitoring.dashboards_namespace],
                    "folderAnnotation": FOLDER_ANNOTATION,
                    "provider": {"foldersFromFilesStructure": True},
                }
            }
        },
    }


class PrometheusStack(pulumi.ComponentResource):
    """The kube-prometheus-stack Helm release the rules, monitors and dashboards of the stack rely on."""

    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: PrometheusStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hyperstudy:monitoring:PrometheusStack", name, None, opts)
        monitoring = args.monitoring
        self.release = k8s.helm.v3.Release(
            name,
            name=monitoring.release,
            chart=CHART,
            version=monitoring.stack_chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART_REPOSITORY),
            namespace=monitoring.prometheus_namespace,
            create_namespace=True,
            values=chart_values(monitoring),
            # A failed install or upgrade rolls back rather than leaving half a monitoring stack.
            atomic=True,
            cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"release": monitoring.release, "chart_version": monitoring.stack_chart_version})
