"""`monitoring`: who evaluates the rules, where the dashboards go, every alert's threshold, Alertmanager's
receivers (sizing/config/alerting.py) and the installed stack's sizes and volumes
(sizing/config/monitoring_stack.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from sizing.config.alerting import AlertingConfig
from sizing.config.monitoring_stack import StackComponents, StackStorage
from sizing.core.errors import PathError
from sizing.core.model import DEFAULTED, Duration, Model
from sizing.facts.charts import CHARTS


class Alert(Model):
    """Threshold and pending time of one alert."""

    threshold: float = Field(ge=0, description="alert threshold (a ratio, a count or a fraction; see the README)")
    for_: Duration = Field(alias="for", description="how long the condition must hold before the alert fires")
    severity: Literal["critical", "warning", "info"] = Field("warning", description="severity label")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class RequestDriftAlert(Alert):
    """HyperStudyContainerRequestDrift's settings: `threshold` is the ratio of the request a container runs above
    (GKE's underprovisioned rule: 1.5) for at least `above_fraction` of a day, `below_ratio` the ratio of the request
    its day's p95 (CPU) or peak (memory) stays under for a week."""

    above_fraction: float = Field(
        0.1, gt=0, le=1, description="the share of the last day a container must run above `threshold` × its request"
    )
    below_ratio: float = Field(
        0.5,
        gt=0,
        lt=1,
        description="a container runs well below its request when, on every day of the last week, its CPU p95 or its "
        "memory peak stays under this ratio of the request",
    )
    below_min_cpu_m: int = Field(
        25,
        ge=0,
        description="and only when the CPU request exceeds the week's highest daily p95 by at least this, millicores "
        "(the VPA recommender's CPU floor: a smaller request frees nothing worth a change)",
    )
    below_min_memory_mib: int = Field(
        32,
        ge=0,
        description="and only when the memory request exceeds the week's highest daily peak by at least this, MiB",
    )


def _alert(threshold: float, for_: str, description: str, severity: str = "warning"):
    return Field(
        default_factory=lambda: Alert(threshold=threshold, for_=for_, severity=severity), description=description
    )


class AlertsConfig(Model):
    """Every alert's threshold, pending time and severity."""

    memory_near_limit: Alert = _alert(0.9, "5m", "HyperStudyMemoryNearLimit: working set ÷ limit above this ratio")
    oom_killed: Alert = _alert(0, "0m", "HyperStudyContainerOOMKilled: more OOM restarts than this in 10m", "critical")
    prediction_drift: Alert = _alert(
        0.25, "30m", "HyperStudyMemoryPredictionDrift: |working set ÷ formula − 1| above this ratio"
    )
    capacity_low: Alert = _alert(1, "10m", "HyperStudyCapacityLow: fewer slots of monitoring.capacity_shape than this")
    memory_overcommit: Alert = _alert(
        0, "10m", "HyperStudyMemoryOvercommit: requests above what survives losing a node by more than this, bytes"
    )
    node_pool_at_max: Alert = _alert(0, "15m", "HyperStudyNodePoolAtMax: nodes within this many of the plan's max")
    heap_near_limit: Alert = _alert(0.9, "5m", "HyperStudyHeapNearLimit: Node heap ÷ its configured maximum above this")
    # Rendered only for a stack with capacity.schedule. The not-ready alert's `for` is added to the shortest
    # lead_minutes of the windows: the scale-up's own lead is the time the pods have to become ready.
    scheduled_capacity_not_ready: Alert = _alert(
        0,
        "0m",
        "HyperStudyScheduledCapacityNotReady: desired − ready backend replicas above this for the shortest "
        "lead_minutes plus `for`",
        "critical",
    )
    scheduled_scaling_failed: Alert = _alert(
        0,
        "2m",
        "HyperStudyScheduledScalingFailed: a scaler CronJob's latest run failed, or more of its pods than this failed",
    )
    workload_unavailable: Alert = _alert(
        0,
        "2m",
        "HyperStudyWorkloadUnavailable: an app workload's ready (available) ÷ desired replicas at or below this ratio",
        "critical",
    )

    request_drift: RequestDriftAlert = Field(
        default_factory=lambda: RequestDriftAlert(threshold=1.5, for_="1h"),
        description="HyperStudyContainerRequestDrift: a container above `threshold` × its request for `above_fraction` "
        "of a day, or under `below_ratio` × its request for a week",
    )

    @model_validator(mode="after")
    def _ratios_can_fire(self) -> AlertsConfig:
        # A usage ratio never exceeds 1 for long (the kernel or the runtime acts first): a threshold ≥ 1 never fires.
        for name in ("memory_near_limit", "heap_near_limit"):
            if not 0 < getattr(self, name).threshold < 1:
                raise PathError(f"{name}.threshold", "must be between 0 and 1 (a ratio of the limit)")
        # Every replica ready is a ratio of 1: a threshold of 1 or more fires on a healthy workload.
        if not self.workload_unavailable.threshold < 1:
            raise PathError("workload_unavailable.threshold", "must be below 1 (a ratio of the desired replicas)")
        # At or under the request is what a request is for: only running above it is drift.
        if not self.request_drift.threshold > 1:
            raise PathError("request_drift.threshold", "must be above 1 (a ratio of the request a container exceeds)")
        return self


# The placeholder of `monitoring.runbook_url` the alert's name replaces.
RUNBOOK_ALERT = "{alert}"


class MonitoringConfig(Model):
    """Prometheus rules, alerts and Grafana dashboards generated from the sizing model."""

    release: str = Field(
        "kube-prometheus-stack",
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$",
        description="`release` label kube-prometheus-stack selects rules and monitors by (a label value)",
    )
    prometheus_operator: bool = Field(
        description="ship PrometheusRule and PodMonitors (needs the prometheus-operator CRDs, kube-prometheus-stack); "
        "default: true unless managed_prometheus is (one rule evaluator, or every alert fires twice)",
        json_schema_extra={DEFAULTED: True},
    )
    install_stack: bool = Field(
        False,
        description="install kube-prometheus-stack with the program (Helm release `release` in prometheus_namespace); "
        "a cluster the program creates has none",
    )
    stack_chart_version: str = Field(
        "75.15.0", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$", description="kube-prometheus-stack chart version, pinned"
    )
    prometheus_namespace: str = Field(
        "monitoring",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="namespace Prometheus scrapes from: the workloads' NetworkPolicies admit it on the metrics port",
    )
    managed_prometheus: bool = Field(False, description="also ship the groups as GKE Managed Prometheus `Rules`")
    capacity_shape: str = Field("medium", description="experiment shape HyperStudyCapacityLow counts slots of")
    dashboards_namespace: str = Field(
        "monitoring", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", description="namespace of the Grafana sidecar"
    )
    dashboards_folder: str = Field("HyperStudy", min_length=1, description="Grafana folder of the dashboards")
    runbook_url: str = Field(
        f"https://github.com/hyperstudy/hyperstudy-infra/blob/main/docs/runbooks/{RUNBOOK_ALERT}.md",
        pattern=r"^https?://[^{}]*\{alert\}[^{}]*$",
        description="where each alert's runbook is, `{alert}` standing for the alert's name (e.g. "
        "https://ops.example.org/runbooks/{alert}/ for a copy of this docs site): every alert's runbook_url",
    )
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="thresholds and pending times")
    alerting: AlertingConfig = Field(
        default_factory=AlertingConfig, description="Alertmanager receivers and routes by severity"
    )
    components: StackComponents = Field(
        default_factory=StackComponents,
        description="sizes of every container of the installed stack (install_stack), planned like the app",
    )
    storage: StackStorage = Field(
        default_factory=StackStorage, description="persistent volumes of the installed Prometheus and Alertmanager"
    )

    @model_validator(mode="before")
    @classmethod
    def _runbook_url_names_the_alert(cls, data: Any) -> Any:
        url = data.get("runbook_url") if isinstance(data, Mapping) else None
        if isinstance(url, str) and url.startswith(("http://", "https://")) and RUNBOOK_ALERT not in url:
            raise PathError(
                "runbook_url",
                f"must contain {RUNBOOK_ALERT} where the alert's name goes (a page per alert), e.g. "
                f"https://ops.example.org/runbooks/{RUNBOOK_ALERT}/",
            )
        return data

    @model_validator(mode="before")
    @classmethod
    def _one_rule_evaluator_by_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "prometheus_operator" not in data:
            return {**data, "prometheus_operator": not data.get("managed_prometheus", False)}
        return data

    @model_validator(mode="after")
    def _components_fit_the_chart(self) -> MonitoringConfig:
        self.components.check_against(CHARTS[STACK_CHART])
        if self.managed_prometheus and self.prometheus_operator:
            raise PathError(
                "prometheus_operator",
                "and managed_prometheus both evaluate every rule, so every alert would fire twice: choose one",
            )
        if (self.alerting.receivers or self.alerting.heartbeat) and not (self.install_stack or self.managed_prometheus):
            raise PathError(
                "alerting",
                "configures the Alertmanager the program installs (install_stack) or Managed Prometheus' "
                "(managed_prometheus): with neither, the cluster's own Alertmanager is configured where it runs",
            )
        return self


# The chart `monitoring.install_stack` installs.
STACK_CHART = "kube-prometheus-stack"
