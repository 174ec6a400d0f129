"""kube-prometheus-stack, installed by the program when the stack asks for it (`monitoring.install_stack`).

A cluster the program has just created has no Prometheus operator, so its PrometheusRule and PodMonitors would
be refused ("no matches for kind") and the dashboards would have no Grafana. The component owns the monitoring
namespace, the Secrets the stack reads (the receivers' credentials, Grafana's admin login) and the Helm release.

Its values come from the plan and the config, never from the chart's defaults where those fail in production:
- every container is sized as the plan sizes it (`sizing.facts.charts` says which value takes which size), pinned to the
  stack's node pool, and the Go programs get GOMEMLIMIT like every Go runtime of the app;
- Prometheus and Alertmanager keep their data on persistent volumes, with size-based retention below the volume;
- Alertmanager routes by severity to the stack's receivers, their secrets read from a mounted Secret;
- what GKE manages or Dataplane V2 replaces (control plane, etcd, kube-proxy, CoreDNS) is not scraped, so its
  "down" alerts never fire; kube-state-metrics exports the node pool label the rules count the pool's nodes by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
from pydantic import ConfigDict, Field

from monitoring.alertmanager import RECEIVER_SECRET, alertmanager_config
from monitoring.names import DASHBOARD_LABEL, FOLDER_ANNOTATION
from sizing.config.monitoring import STACK_CHART, MonitoringConfig
from sizing.config.stack import StackConfig
from sizing.core.model import Model
from sizing.core.quantity import format_mib
from sizing.facts.charts import CHARTS
from sizing.plan.chart_values import sized_values
from sizing.plan.pool_name import GKE_NODE_POOL_LABEL
from sizing.plan.types import Plan, WorkloadPlan

CHART = CHARTS[STACK_CHART]
GRAFANA_ADMIN_SECRET = "grafana-admin"
GRAFANA_ADMIN_USER = "admin"
# The keys the Grafana chart reads the admin login from (grafana.admin.userKey / passwordKey).
GRAFANA_USER_KEY, GRAFANA_PASSWORD_KEY = "admin-user", "admin-password"
# Where the operator mounts a volumeClaimTemplate: one ReadWriteOnce claim per pod.
_ACCESS_MODES = ["ReadWriteOnce"]


class PrometheusStackArgs(Model):
    """The stack's monitoring config, the plan's sizes of the chart's pods, the node pool they are pinned to, and
    the receivers' secret values."""

    # pulumi.Output and resource fields: pydantic checks their type, not their content.
    model_config = ConfigDict(arbitrary_types_allowed=True)

    monitoring: MonitoringConfig = Field(description="the stack's `monitoring` config: release, storage, alerting")
    pods: dict[str, WorkloadPlan] = Field(
        description="the plan's chart workloads (Plan.chart_workloads): sizes and replicas of every pod the chart runs"
    )
    pool_name: str = Field(description="GKE node pool the pods are pinned to")
    secrets: dict[str, Any] = Field(
        default_factory=dict,
        description="secret config key → its secret value (a secret Output), for every secret a receiver reads",
    )

    @classmethod
    def derive(cls, config: StackConfig, plan: Plan, pool_name: str, secrets: dict[str, Any]) -> PrometheusStackArgs:
        return cls(monitoring=config.monitoring, pods=plan.chart_workloads, pool_name=pool_name, secrets=secrets)


def _claim(size_mib: int, storage_class: str) -> dict[str, Any]:
    return {
        "volumeClaimTemplate": {
            "spec": {
                "storageClassName": storage_class,
                "accessModes": _ACCESS_MODES,
                "resources": {"requests": {"storage": format_mib(size_mib)}},
            }
        }
    }


def retention_size(mib: int) -> str:
    """A size as Prometheus' retention.size reads it: GB and MB are powers of 1024 there."""
    return f"{mib // 1024}GB" if mib % 1024 == 0 else f"{mib}MB"


def chart_values(monitoring: MonitoringConfig, pods: Mapping[str, WorkloadPlan], pool_name: str) -> dict[str, Any]:
    """The Helm values: sizes from the plan (the chart's planned `pods`), volumes, receivers, GKE fit, and selectors
    and a dashboard sidecar wired to the stack's monitoring config."""
    storage = monitoring.storage
    values: dict[str, Any] = {
        "prometheus": {
            "prometheusSpec": {
                # Rules and monitors are selected by the `release` label (the chart's default, stated so a chart
                # upgrade cannot silently widen or narrow it), in every namespace the stacks deploy to.
                "ruleSelectorNilUsesHelmValues": True,
                "podMonitorSelectorNilUsesHelmValues": True,
                "ruleNamespaceSelector": {},
                "podMonitorNamespaceSelector": {},
                # The TSDB on a persistent disk: a node upgrade, scale-down or eviction moves the pod, not the data.
                "storageSpec": _claim(storage.prometheus.size, storage.prometheus.storage_class),
                "retention": storage.prometheus.retention,
                "retentionSize": retention_size(storage.prometheus.retention_size_mib),
            }
        },
        "alertmanager": {
            "alertmanagerSpec": {
                "storage": _claim(storage.alertmanager.size, storage.alertmanager.storage_class),
                "secrets": [RECEIVER_SECRET] if monitoring.alerting.secret_keys() else [],
            },
            "config": alertmanager_config(monitoring.alerting),
        },
        "grafana": {
            # The login comes from a Secret the program generates: the chart's default password is public.
            "admin": {
                "existingSecret": GRAFANA_ADMIN_SECRET,
                "userKey": GRAFANA_USER_KEY,
                "passwordKey": GRAFANA_PASSWORD_KEY,
            },
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": DASHBOARD_LABEL,
                    "labelValue": "1",
                    "searchNamespace": [monitoring.dashboards_namespace],
                    "folderAnnotation": FOLDER_ANNOTATION,
                    "provider": {"foldersFromFilesStructure": True},
                }
            },
        },
        # The rules count the pool's nodes (and price them) by this label; kube-state-metrics exports no node label
        # unless it is allowlisted.
        "kube-state-metrics": {"metricLabelsAllowlist": [f"nodes=[{GKE_NODE_POOL_LABEL}]"]},
        # GKE runs the control plane (no scrapeable controller manager, scheduler or etcd) and kube-dns instead of
        # CoreDNS; Dataplane V2 replaces kube-proxy. Scraping them only fires their "down" alerts forever; turning
        # them off drops those alerts and dashboards with them.
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "coreDns": {"enabled": False},
        # HyperStudyMemoryOvercommit is the same condition (Pending and Running pods' requests against the nodes
        # minus the largest): one alert per condition. KubeCPUOvercommit counts every CPU request of the cluster,
        # the lost node's own DaemonSet pods among them, against the nodes minus the largest: on a pool of two it
        # fires for good. The stack's CPU requests come from the config, and the plan checks that they survive a
        # node's loss with the overhead and per-node pods taken off every node (`nodes.survive_node_loss`); a
        # shortfall at run time delays rescheduling until the autoscaler adds a node, and where it cannot,
        # HyperStudyNodePoolAtMax fires.
        "defaultRules": {"disabled": {"KubeMemoryOvercommit": True, "KubeCPUOvercommit": True}},
        # Without admission webhooks there is no certificate Job to make the operator's TLS secret: serve plain
        # HTTP inside the cluster, or the operator never starts.
        "prometheusOperator": {"tls": {"enabled": False}},
    }
    sized_values(values, CHART, pods, pool_name)
    return values


class PrometheusStack(pulumi.ComponentResource):
    """The kube-prometheus-stack Helm release the rules, monitors and dashboards of the stack rely on, its namespace
    and the Secrets it reads."""

    namespace: k8s.core.v1.Namespace
    receiver_secret: k8s.core.v1.Secret | None
    grafana_password: random.RandomPassword
    grafana_admin: k8s.core.v1.Secret
    release: k8s.helm.v3.Release

    def __init__(self, name: str, args: PrometheusStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hyperstudy:monitoring:PrometheusStack", name, None, opts)
        monitoring = args.monitoring
        secret_keys = monitoring.alerting.secret_keys()
        namespace = monitoring.prometheus_namespace
        child = pulumi.ResourceOptions(parent=self)
        labels = {"app.kubernetes.io/part-of": "hyperstudy", "app.kubernetes.io/managed-by": "pulumi"}

        # node-exporter reads the host's /proc and /sys through hostPath and the host's network: the namespace
        # admits privileged pods, which no HyperStudy workload's namespace does.
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=namespace,
                labels={**labels, "pod-security.kubernetes.io/enforce": "privileged"},
            ),
            opts=child,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace])

        self.receiver_secret = None
        if secret_keys:
            self.receiver_secret = k8s.core.v1.Secret(
                f"{name}-receivers",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=RECEIVER_SECRET, namespace=namespace, labels=labels),
                string_data={key: pulumi.Output.secret(args.secrets[key]) for key in secret_keys},
                opts=in_namespace,
            )

        # Kept in the state (encrypted), shown with `pulumi stack output grafana_admin_password --show-secrets`.
        self.grafana_password = random.RandomPassword(f"{name}-grafana-admin", length=32, special=False, opts=child)
        self.grafana_admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_ADMIN_SECRET, namespace=namespace, labels=labels),
            string_data={
                GRAFANA_USER_KEY: GRAFANA_ADMIN_USER,
                GRAFANA_PASSWORD_KEY: pulumi.Output.secret(self.grafana_password.result),
            },
            opts=in_namespace,
        )

        self.release = k8s.helm.v3.Release(
            name,
            name=monitoring.release,
            chart=CHART.name,
            version=monitoring.stack_chart_version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=CHART.repository),
            namespace=namespace,
            values=chart_values(monitoring, args.pods, args.pool_name),
            # A failed install or upgrade rolls back rather than leaving half a monitoring stack.
            atomic=True,
            cleanup_on_fail=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.namespace, self.grafana_admin, *filter(None, [self.receiver_secret])],
            ),
        )
        self.register_outputs(
            {
                "release": monitoring.release,
                "chart_version": monitoring.stack_chart_version,
                "namespace": namespace,
                "receivers": sorted(monitoring.alerting.receivers),
            }
        )
