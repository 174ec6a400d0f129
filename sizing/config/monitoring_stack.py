"""The monitoring stack the program installs (`monitoring.install_stack`), as config: the size of every container it
runs on the pool, Prometheus' and Alertmanager's volumes, and retention.

Which pods and containers the chart runs, and where its values take each size, is a fact of the chart
(`sizing.facts.charts`); how much memory and CPU each gets is the stack's choice, here, with defaults for a small
cluster. The plan turns both into planned workloads (`sizing.plan`), so the node pool holds them like the app.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from sizing.config.chart_sizes import ChartComponents, ContainerSizes, component
from sizing.core import quantity
from sizing.core.errors import PathError
from sizing.core.model import Duration, MiB, Model


class StackComponents(ChartComponents):
    """Every container of kube-prometheus-stack that runs on the pool, by the name the plan lists it under.

    Defaults are sized for a small cluster (a few nodes, a few hundred pods): upstream kube-prometheus's requests
    are a starting point for large ones, and measured small clusters run Prometheus at ~200 MiB idle.
    """

    prometheus: ContainerSizes = component("the Prometheus server", "200m", "512Mi", "1Gi")
    alertmanager: ContainerSizes = component("Alertmanager", "20m", "64Mi", "128Mi")
    grafana: ContainerSizes = component("Grafana", "50m", "128Mi", "256Mi")
    prometheus_operator: ContainerSizes = component(
        "the Prometheus operator", "50m", "64Mi", "128Mi", alias="prometheus-operator"
    )
    kube_state_metrics: ContainerSizes = component(
        "kube-state-metrics", "20m", "64Mi", "128Mi", alias="kube-state-metrics"
    )
    node_exporter: ContainerSizes = component(
        "node-exporter, one pod per node", "20m", "32Mi", "64Mi", alias="node-exporter"
    )
    config_reloader: ContainerSizes = component(
        "the config reloader in every Prometheus and Alertmanager pod", "10m", "32Mi", "64Mi", alias="config-reloader"
    )
    grafana_sidecar: ContainerSizes = component(
        "each of Grafana's two sidecars (dashboards, datasources)", "10m", "64Mi", "128Mi", alias="grafana-sidecar"
    )


class Volume(Model):
    """A persistent volume per pod: a PersistentVolumeClaim from the storage class."""

    size: MiB = Field(
        description="capacity requested (Kubernetes quantity), rounded up to whole GiB by the disk driver"
    )
    storage_class: str = Field(
        "standard-rwo",
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
        description="StorageClass (GKE's standard-rwo: pd-balanced, created in the pod's zone)",
    )

    @model_validator(mode="after")
    def _has_room(self) -> Volume:
        if self.size <= 0:
            raise PathError("size", "must be more than 0")
        return self


# Prometheus needs room beyond its size-based retention: the WAL and head chunks count towards it only once
# written, and compaction writes a new block before it deletes the old ones.
DEFAULT_RETENTION_FRACTION = 0.8


class PrometheusStorage(Volume):
    """Prometheus' TSDB volume and how much history it keeps."""

    size: MiB = Field("20Gi", validate_default=True, description="capacity of the TSDB volume")
    retention: Duration = Field("15d", description="delete blocks older than this")
    retention_size: MiB | None = Field(
        None,
        description=f"delete the oldest blocks above this size (None: {DEFAULT_RETENTION_FRACTION:.0%} of the "
        "volume); must stay below the volume size",
    )

    @model_validator(mode="after")
    def _retention_fits_volume(self) -> PrometheusStorage:
        if self.retention_size is not None and not 0 < self.retention_size < self.size:
            raise PathError(
                "retention_size",
                f"{quantity.format_mib(self.retention_size)} is not below the volume size "
                f"{quantity.format_mib(self.size)}: Prometheus would fill the disk before deleting history",
            )
        return self

    @property
    def retention_size_mib(self) -> int:
        """The size-based retention in MiB: the given one, or a fraction of the volume."""
        if self.retention_size is not None:
            return self.retention_size
        return int(self.size * DEFAULT_RETENTION_FRACTION)


class AlertmanagerStorage(Volume):
    """Alertmanager's volume: silences and the notification log, so a restart neither forgets a silence nor
    re-sends what it already sent."""

    size: MiB = Field(
        "10Gi", validate_default=True, description="capacity of the volume (notifications and silences: a few MiB)"
    )


class StackStorage(Model):
    """The monitoring stack's persistent volumes."""

    prometheus: PrometheusStorage = Field(default_factory=PrometheusStorage, description="Prometheus' TSDB")
    alertmanager: AlertmanagerStorage = Field(default_factory=AlertmanagerStorage, description="Alertmanager's data")

    def volumes(self) -> dict[str, Volume]:
        """Each volume by its config key, the way the stack's pods claim them (one claim per pod)."""
        return {"prometheus": self.prometheus, "alertmanager": self.alertmanager}
