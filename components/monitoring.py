"""Ships the monitoring to the cluster: the rule groups as a PrometheusRule (`monitoring.prometheus_operator`) or as
GKE Managed Prometheus ClusterRules (`monitoring.managed_prometheus`), never both, and each dashboard as a ConfigMap the
Grafana sidecar imports, named after the stack's namespace so stacks sharing one Grafana keep their own.

With Managed Prometheus and receivers (or a heartbeat), it also writes the managed Alertmanager's config Secret; and
as Managed Prometheus evaluates no rule of its own, the groups carry the always-firing Watchdog there.

The PrometheusRule and ClusterRules kinds come from CRDs: kube-prometheus-stack (or GKE Managed Prometheus) must be
in the cluster first, or the API server answers "no matches for kind".
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pydantic import Field, model_validator

from monitoring import names
from monitoring.alertmanager import (
    MANAGED_CONFIG_KEY,
    MANAGED_CONFIG_NAMESPACE,
    MANAGED_CONFIG_SECRET,
    alertmanager_config,
    inline_credentials,
)
from monitoring.dashboards import dashboard_json, dashboards
from monitoring.rules import rule_groups
from sizing.config.monitoring import MonitoringConfig
from sizing.config.stack import StackConfig
from sizing.core.model import Model
from sizing.plan.types import Plan

RULE_NAME = "hyperstudy-memory"
PART_OF = "hyperstudy"


class MonitoringArgs(Model):
    """What the component ships and where: the rule groups and dashboards, built from the stack config and its plan
    by `derive` (every threshold and coefficient comes from them), the stack's namespace and `monitoring` settings,
    and the receivers' secret values."""

    namespace: str = Field(description="the stack's namespace: the PrometheusRule's, and the ClusterRules' name prefix")
    monitoring: MonitoringConfig = Field(
        description="the stack's `monitoring` config: which evaluators, release label, alerting, dashboards' place"
    )
    groups: list[dict[str, Any]] = Field(
        description="the rule groups (`monitoring.rules.rule_groups`): the PrometheusRule's or ClusterRules' spec"
    )
    dashboards: dict[str, str] = Field(
        description="dashboard uid → its JSON text (`monitoring.dashboards`): one sidecar ConfigMap each"
    )
    secrets: dict[str, Any] = Field(
        default_factory=dict,
        description="secret config key → its secret value (a secret Output): Managed Prometheus' receivers",
    )

    @model_validator(mode="after")
    def _receivers_have_their_secrets(self) -> MonitoringArgs:
        keys = self.monitoring.alerting.secret_keys()
        if self.monitoring.managed_prometheus and keys:
            missing = [key for key in keys if key not in self.secrets]
            if missing:
                raise ValueError(f"no value for the receivers' secrets {', '.join(missing)}")
        return self

    @classmethod
    def derive(cls, config: StackConfig, plan: Plan, secrets: dict[str, Any] | None = None) -> MonitoringArgs:
        """The rule groups and dashboards of the stack, built here: a config they refuse (an alerting shape without
        memory, a namespace too long for a dashboard uid) raises ConfigError before any resource is registered."""
        return cls(
            namespace=config.kubernetes.namespace,
            monitoring=config.monitoring,
            groups=rule_groups(config, plan),
            dashboards={uid: dashboard_json(model) for uid, model in dashboards(config, plan).items()},
            secrets=secrets or {},
        )


def configmap_name(uid: str) -> str:
    """The ConfigMap carrying a dashboard: `<uid>-dashboard`, so `<namespace>-<slug>-dashboard`."""
    return f"{uid}-dashboard"


def _labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": RULE_NAME,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


class Monitoring(pulumi.ComponentResource):
    """Prometheus rules and alerts, and the three Grafana dashboards, of one stack."""

    prometheus_rule: k8s.apiextensions.CustomResource | None
    cluster_rules: k8s.apiextensions.CustomResource | None
    managed_alertmanager: k8s.core.v1.Secret | None
    dashboards: dict[str, k8s.core.v1.ConfigMap]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hyperstudy:monitoring:Monitoring", name, None, opts)
        monitoring, groups = args.monitoring, args.groups

        # Who runs the rules: the prometheus-operator, GKE Managed Prometheus, or both (the config validation
        # guarantees at least one). Without the operator its CRD may be missing, so no PrometheusRule is shipped.
        self.prometheus_rule = None
        if monitoring.prometheus_operator:
            self.prometheus_rule = k8s.apiextensions.CustomResource(
                f"{name}-rules",
                api_version="monitoring.coreos.com/v1",
                kind="PrometheusRule",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=RULE_NAME,
                    namespace=args.namespace,
                    # kube-prometheus-stack's Prometheus only loads rules carrying its release label.
                    labels={**_labels("rules"), "release": monitoring.release},
                ),
                spec={"groups": groups},
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.cluster_rules = None
        if monitoring.managed_prometheus:
            # ClusterRules, not namespaced Rules: the overcommit and node-pool alerts read cluster-wide series.
            self.cluster_rules = k8s.apiextensions.CustomResource(
                f"{name}-managed-rules",
                api_version="monitoring.googleapis.com/v1",
                kind="ClusterRules",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{args.namespace}-{RULE_NAME}", labels=_labels("rules")),
                spec={"groups": groups},
                opts=pulumi.ResourceOptions(parent=self),
            )

        # Managed Prometheus' Alertmanager reads its whole config from one Secret and mounts no other: the receivers'
        # credentials go inline, and the config exists only as that Secret's (secret) data.
        self.managed_alertmanager = None
        if monitoring.managed_prometheus and (monitoring.alerting.receivers or monitoring.alerting.heartbeat):
            keys = monitoring.alerting.secret_keys()
            text = pulumi.Output.all(*(args.secrets[key] for key in keys)).apply(
                lambda values: yaml.safe_dump(
                    alertmanager_config(monitoring.alerting, inline_credentials(dict(zip(keys, values, strict=True)))),
                    sort_keys=False,
                )
            )
            self.managed_alertmanager = k8s.core.v1.Secret(
                f"{name}-managed-alertmanager",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=MANAGED_CONFIG_SECRET, namespace=MANAGED_CONFIG_NAMESPACE, labels=_labels("alerting")
                ),
                string_data={MANAGED_CONFIG_KEY: pulumi.Output.secret(text)},
                opts=pulumi.ResourceOptions(parent=self),
            )

        # uid is `<namespace>-<slug>`: ConfigMap and dashboard of one stack never replace another stack's.
        self.dashboards = {
            uid: k8s.core.v1.ConfigMap(
                f"{name}-{uid}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=configmap_name(uid),
                    namespace=monitoring.dashboards_namespace,
                    labels={**_labels("dashboard"), names.DASHBOARD_LABEL: "1"},
                    annotations={names.FOLDER_ANNOTATION: monitoring.dashboards_folder},
                ),
                data={f"{uid}.json": text},
                opts=pulumi.ResourceOptions(parent=self),
            )
            for uid, text in sorted(args.dashboards.items())
        }

        self.register_outputs(
            {
                "rule_groups": [group["name"] for group in groups],
                "managed_alertmanager": self.managed_alertmanager is not None,
                "dashboards": sorted(self.dashboards),
            }
        )
