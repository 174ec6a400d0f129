"""The pods each Helm chart the program installs runs on the pool, as facts of the chart: the pod inventory.

For every pod: its controller kind, its containers (each sized by one entry of the stack config), what runtime
the main container runs (so which memory setting it gets), how many replicas it supports, and the chart values
that take its sizes. The plan reads the inventory to count the pods (a DaemonSet once per node, sidecars inside
their pod); `components.prometheus_stack` writes the values from it; the policy pack checks a Release's values
against it, so a pod the inventory does not size cannot slip onto the pool. Pure data: no pulumi import.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from pydantic import Field, model_validator

from sizing.core.model import Model, Runtime

ValuesPath = tuple[str, ...]
# A bare Pod: one the chart's controller starts on demand (cert-manager's HTTP-01 solver), not a controller's. A Job:
# a Helm hook's one pod (cert-manager's startup API check), which runs while the release installs.
Kind = Literal["Deployment", "StatefulSet", "DaemonSet", "Pod", "Job"]


class ResourceFlags(Model):
    """Command-line flags of a chart's controller that size the pods it starts itself (cert-manager's solver)."""

    path: ValuesPath = Field(description="values path of the controller's extra arguments (a list)")
    prefix: str = Field(
        description="flag prefix: `<prefix>-request-cpu`, `-request-memory` and `-limits-memory` follow"
    )

    def flags(self, cpu: str, request: str, limit: str) -> list[str]:
        """The arguments for these sizes (no CPU limit: the controller's own default stays)."""
        return [
            f"{self.prefix}-request-cpu={cpu}",
            f"{self.prefix}-request-memory={request}",
            f"{self.prefix}-limits-memory={limit}",
        ]


class ChartContainer(Model):
    """One sized container of a chart's pod, sized either by a `resources` value or by its controller's flags."""

    container: str = Field(description="container name in the pod")
    sizes: str = Field(description="entry of the chart's components config that sizes it")
    resources: ValuesPath | None = Field(None, description="chart values path of its `resources`")
    resource_flags: ResourceFlags | None = Field(None, description="or: the controller flags that size it")

    @model_validator(mode="after")
    def _sized_one_way(self) -> ChartContainer:
        if (self.resources is None) == (self.resource_flags is None):
            raise ValueError("a container is sized by a resources value or by flags, one of the two")
        return self

    @property
    def key(self) -> str:
        """Where its sizes go, for messages: the values path or the flag prefix."""
        if self.resources is not None:
            return "values." + ".".join(self.resources)
        assert self.resource_flags is not None
        return f"values.{'.'.join(self.resource_flags.path)} {self.resource_flags.prefix}-*"


class EnvSetting(Model):
    """Where the chart takes environment variables for a container, and in which shape."""

    path: ValuesPath = Field(description="chart values path")
    shape: Literal["map", "list", "container_patch"] = Field(
        description="map: {NAME: value}; list: [{name, value}]; container_patch: [{name: <container>, env: [...]}] "
        "merged by the operator into the container it generates"
    )


class ChartPod(Model):
    """One pod (Deployment, StatefulSet, DaemonSet, an on-demand Pod or a hook Job's pod) of a chart."""

    name: str = Field(description="the plan's workload name")
    kind: Kind = Field(
        description="controller: a DaemonSet runs one pod on every node, a (hook) Job one pod while the release "
        "installs"
    )
    main: ChartContainer = Field(description="the pod's main container")
    sidecars: tuple[ChartContainer, ...] = Field((), description="further containers, each sized")
    runtime: Runtime = Field(description="what the main container runs: which memory setting it gets")
    env: EnvSetting | None = Field(None, description="where the runtime memory setting goes (None: runtime none)")
    replicas: ValuesPath | None = Field(None, description="values path of the replica count (None: DaemonSet)")
    max_replicas: int | None = Field(None, ge=1, description="most pods it supports (None: any number)")
    node_selector: ValuesPath | None = Field(
        None,
        description="values path of its nodeSelector (None: it runs on every node, as a node agent must, or is "
        "pinned elsewhere)",
    )
    per_host: bool = Field(
        False, description="runs one pod per public host at a time (an on-demand pod: replicas follow the hosts)"
    )
    without_install: bool = Field(
        False,
        description="runs in the stack's namespace even when another installation of the chart drives it (a "
        "cluster's own cert-manager starts the stack's solver pods)",
    )


class Chart(Model):
    """A Helm chart the program installs, and every pod it runs with the program's values."""

    name: str = Field(description="chart name")
    repository: str = Field(description="chart repository URL")
    pods: tuple[ChartPod, ...] = Field(description="every pod the chart runs")
    off: tuple[ValuesPath, ...] = Field(
        (), description="values that must be false: they would add pods the inventory does not size (hooks, tests)"
    )
    on: tuple[ValuesPath, ...] = Field(
        (),
        description="values that must be true: what the program relies on (a hook whose wait later resources need)",
    )

    def containers(self) -> tuple[ChartContainer, ...]:
        """Every sized container, each sizing once (a sidecar the chart sizes once may run in several pods)."""
        seen: dict[str, ChartContainer] = {}
        for pod in self.pods:
            for container in (pod.main, *pod.sidecars):
                seen.setdefault(container.key, container)
        return tuple(seen.values())


_PROMETHEUS_SPEC = ("prometheus", "prometheusSpec")
_ALERTMANAGER_SPEC = ("alertmanager", "alertmanagerSpec")
# The operator sizes the config-reloader it injects into every Prometheus and Alertmanager pod from one value.
_CONFIG_RELOADER = ChartContainer(
    container="config-reloader",
    sizes="config-reloader",
    resources=("prometheusOperator", "prometheusConfigReloader", "resources"),
)
_GRAFANA_SIDECAR_RESOURCES = ("grafana", "sidecar", "resources")

KUBE_PROMETHEUS_STACK = Chart(
    name="kube-prometheus-stack",
    repository="https://prometheus-community.github.io/helm-charts",
    pods=(
        ChartPod(
            name="prometheus",
            kind="StatefulSet",
            main=ChartContainer(container="prometheus", sizes="prometheus", resources=(*_PROMETHEUS_SPEC, "resources")),
            sidecars=(_CONFIG_RELOADER,),
            runtime="go",
            env=EnvSetting(path=(*_PROMETHEUS_SPEC, "containers"), shape="container_patch"),
            replicas=(*_PROMETHEUS_SPEC, "replicas"),
            node_selector=(*_PROMETHEUS_SPEC, "nodeSelector"),
        ),
        ChartPod(
            name="alertmanager",
            kind="StatefulSet",
            main=ChartContainer(
                container="alertmanager", sizes="alertmanager", resources=(*_ALERTMANAGER_SPEC, "resources")
            ),
            sidecars=(_CONFIG_RELOADER,),
            runtime="go",
            env=EnvSetting(path=(*_ALERTMANAGER_SPEC, "containers"), shape="container_patch"),
            replicas=(*_ALERTMANAGER_SPEC, "replicas"),
            node_selector=(*_ALERTMANAGER_SPEC, "nodeSelector"),
        ),
        ChartPod(
            name="grafana",
            kind="Deployment",
            main=ChartContainer(container="grafana", sizes="grafana", resources=("grafana", "resources")),
            sidecars=(
                ChartContainer(
                    container="grafana-sc-dashboard", sizes="grafana-sidecar", resources=_GRAFANA_SIDECAR_RESOURCES
                ),
                ChartContainer(
                    container="grafana-sc-datasources", sizes="grafana-sidecar", resources=_GRAFANA_SIDECAR_RESOURCES
                ),
            ),
            runtime="go",
            env=EnvSetting(path=("grafana", "env"), shape="map"),
            replicas=("grafana", "replicas"),
            # Its database is SQLite on the pod's own disk: a second replica would be a second, different Grafana.
            max_replicas=1,
            node_selector=("grafana", "nodeSelector"),
        ),
        ChartPod(
            name="prometheus-operator",
            kind="Deployment",
            main=ChartContainer(
                container="kube-prometheus-stack",
                sizes="prometheus-operator",
                resources=("prometheusOperator", "resources"),
            ),
            runtime="go",
            env=EnvSetting(path=("prometheusOperator", "env"), shape="map"),
            # No replicas value: the chart runs exactly one (the operator has no leader election).
            node_selector=("prometheusOperator", "nodeSelector"),
        ),
        ChartPod(
            name="kube-state-metrics",
            kind="Deployment",
            main=ChartContainer(
                container="kube-state-metrics",
                sizes="kube-state-metrics",
                resources=("kube-state-metrics", "resources"),
            ),
            runtime="go",
            env=EnvSetting(path=("kube-state-metrics", "env"), shape="list"),
            replicas=("kube-state-metrics", "replicas"),
            node_selector=("kube-state-metrics", "nodeSelector"),
        ),
        ChartPod(
            name="node-exporter",
            kind="DaemonSet",
            main=ChartContainer(
                container="node-exporter", sizes="node-exporter", resources=("prometheus-node-exporter", "resources")
            ),
            runtime="go",
            env=EnvSetting(path=("prometheus-node-exporter", "env"), shape="map"),
        ),
    ),
    off=(
        # Install/upgrade hook Jobs that patch the webhook certificates: transient pods the plan does not hold.
        ("prometheusOperator", "admissionWebhooks", "enabled"),
        # `helm test` pod.
        ("grafana", "testFramework", "enabled"),
    ),
)

# The namespace the program installs cert-manager in (its pods, but the solver's: those run in the stack's).
CERT_MANAGER_NAMESPACE = "cert-manager"

CERT_MANAGER = Chart(
    name="cert-manager",
    repository="https://charts.jetstack.io",
    pods=(
        ChartPod(
            name="cert-manager",
            kind="Deployment",
            main=ChartContainer(container="cert-manager-controller", sizes="cert-manager", resources=("resources",)),
            runtime="go",
            env=EnvSetting(path=("extraEnv",), shape="list"),
            replicas=("replicaCount",),
            node_selector=("nodeSelector",),
        ),
        ChartPod(
            name="cert-manager-webhook",
            kind="Deployment",
            main=ChartContainer(
                container="cert-manager-webhook", sizes="cert-manager-webhook", resources=("webhook", "resources")
            ),
            runtime="go",
            env=EnvSetting(path=("webhook", "extraEnv"), shape="list"),
            replicas=("webhook", "replicaCount"),
            node_selector=("webhook", "nodeSelector"),
        ),
        ChartPod(
            name="cert-manager-cainjector",
            kind="Deployment",
            main=ChartContainer(
                container="cert-manager-cainjector",
                sizes="cert-manager-cainjector",
                resources=("cainjector", "resources"),
            ),
            runtime="go",
            env=EnvSetting(path=("cainjector", "extraEnv"), shape="list"),
            replicas=("cainjector", "replicaCount"),
            node_selector=("cainjector", "nodeSelector"),
        ),
        # The HTTP-01 solver: a bare pod the controller starts in the stack's namespace for each host while a
        # certificate is issued or renewed, sized by the controller's flags and pinned by the stack's Issuer.
        ChartPod(
            name="acme-solver",
            kind="Pod",
            main=ChartContainer(
                container="acmesolver",
                sizes="acme-solver",
                resource_flags=ResourceFlags(path=("extraArgs",), prefix="--acme-http01-solver-resource"),
            ),
            runtime="none",
            per_host=True,
            without_install=True,
        ),
        # The startup API check: the chart's post-install hook Job (`cmctl check api --wait=1m`, restarted up to
        # `backoffLimit` 4 times), which dry-run creates a Certificate until the webhook admits it, so until
        # cainjector has put the webhook's CA into its configurations. Helm waits for a hook Job to complete before
        # the install returns, so the release is created only once the webhook serves, and the stack's Issuer,
        # which depends on the release, cannot be refused for an untrusted webhook certificate on a first deploy.
        # The Job is deleted once it succeeds; a failed check fails the release (atomic: it is rolled back).
        ChartPod(
            name="cert-manager-startupapicheck",
            kind="Job",
            main=ChartContainer(
                container="cert-manager-startupapicheck",
                sizes="cert-manager-startupapicheck",
                resources=("startupapicheck", "resources"),
            ),
            runtime="go",
            env=EnvSetting(path=("startupapicheck", "extraEnv"), shape="list"),
            node_selector=("startupapicheck", "nodeSelector"),
        ),
    ),
    on=(("startupapicheck", "enabled"),),
)

CHARTS = MappingProxyType({chart.name: chart for chart in (KUBE_PROMETHEUS_STACK, CERT_MANAGER)})
