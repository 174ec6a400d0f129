"""Sizes of the containers a Helm chart runs, as the stack config gives them: per container a CPU request and a
memory request and limit per profile (and replicas where the chart takes them). Each installed chart's config has
one `ChartComponents` model listing its containers by the name the plan lists them under.
"""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from sizing.core.errors import PathError
from sizing.core.model import MemorySize, Millicores, Model, Profile
from sizing.facts.charts import Chart


class ChartMemory(Model):
    """Memory of a chart's container per profile."""

    optimized: MemorySize = Field(description="request and limit in the optimized profile")
    baseline: MemorySize | None = Field(
        None,
        description="request and limit in the baseline profile (None: as optimized; the document's baseline "
        "predates the charts, so a rollback of the app leaves them as they are)",
    )

    def of(self, profile: Profile) -> MemorySize:
        return self.baseline if profile == "baseline" and self.baseline is not None else self.optimized


class ContainerSizes(Model):
    """Sizes of one container a chart runs: a pod's main container, or a sidecar in its pods."""

    replicas: int | None = Field(
        None,
        ge=1,
        le=10,
        description="pods (Deployments and StatefulSets; None: 1). DaemonSets run one per node and sidecars run "
        "in their pod, so neither takes replicas",
    )
    cpu_request: Millicores = Field(description="CPU request (Kubernetes quantity)")
    memory: ChartMemory = Field(description="memory request and limit per profile")

    @model_validator(mode="after")
    def _cpu_is_requested(self) -> ContainerSizes:
        if self.cpu_request <= 0:
            raise PathError("cpu_request", "must be more than 0")
        return self


def sizes(cpu: str, request: str, limit: str) -> ContainerSizes:
    """Sizes of a container the same in both profiles."""
    return ContainerSizes(cpu_request=cpu, memory=ChartMemory(optimized=MemorySize(request=request, limit=limit)))


def component(what: str, cpu: str, request: str, limit: str, alias: str | None = None):
    """A `ChartComponents` field: one container, its defaults, described."""
    return Field(
        alias=alias,
        default_factory=lambda: sizes(cpu, request, limit),
        description=f"{what}; defaults: {cpu} CPU, {request} request, {limit} limit",
    )


class ChartComponents(Model):
    """A chart's containers, each a `ContainerSizes` field (dashed names as aliases: `prometheus-operator`)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def by_name(self, name: str) -> ContainerSizes:
        """The sizes under their config name (`prometheus-operator`)."""
        for field, info in type(self).model_fields.items():
            if (info.alias or field) == name:
                return getattr(self, field)
        raise KeyError(name)

    def check_against(self, chart: Chart) -> None:
        """PathError for replicas the chart cannot take: a sidecar's, a DaemonSet's, a pod per host, a hook Job's, a
        fixed one, or more than the pod supports."""
        pods = {pod.main.sizes: pod for pod in chart.pods}
        for container in chart.containers():
            replicas = self.by_name(container.sizes).replicas
            if replicas is None:
                continue
            pod = pods.get(container.sizes)
            path = f"components.{container.sizes}.replicas"
            if pod is None:
                raise PathError(path, f"must be omitted: {container.sizes} runs in its pods (a sidecar)")
            if pod.kind == "DaemonSet":
                raise PathError(path, f"must be omitted: {container.sizes} runs on every node (a DaemonSet)")
            if pod.per_host:
                raise PathError(path, f"must be omitted: one {pod.name} pod runs per public host")
            if pod.kind == "Job":
                raise PathError(
                    path, f"must be omitted: {pod.name} is a hook Job's one pod, run while the chart installs"
                )
            if pod.replicas is None:
                raise PathError(path, f"must be omitted: the chart runs exactly one {pod.name}")
            if pod.max_replicas is not None and replicas > pod.max_replicas:
                raise PathError(path, f"{replicas} is above {pod.max_replicas}, the most {pod.name} can run")
