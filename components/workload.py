"""One HyperStudy workload on Kubernetes: `Workload`, the generic component every sized workload of the app becomes.

A `Workload` turns a `WorkloadPlan` (sizes: memory, CPU, replicas, runtime memory settings) and a `WorkloadSpec`
(application facts: kind, runtime, port, probes, user, network clients, metrics endpoint) into its controller,
ServiceAccount, Service(s), PodDisruptionBudget, NetworkPolicy, a recommendation-only VerticalPodAutoscaler and,
for a workload that exports Prometheus metrics, the scrape config: a PodMonitor with
`monitoring.prometheus_operator` (kube-prometheus-stack) or a PodMonitoring with `monitoring.managed_prometheus`
(GKE Managed Prometheus); with `node_pool` its pods are pinned to that GKE node pool.

PodMonitor and PodMonitoring are CRDs this program does not install, like the VPA: only the ones of the scraper the
config names are shipped, so a cluster without kube-prometheus-stack needs no monitoring.coreos.com CRDs.

Every size comes from the plan: a profile switch (the rollback) changes container resources, runtime settings and
VPA bounds, and nothing that forces a replacement (selectors, serviceName, volumeClaimTemplates,
podManagementPolicy).
"""

from __future__ import annotations

import re
from typing import Any

import pulumi
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.apps.v1 import (
    Deployment,
    DeploymentSpecArgs,
    DeploymentStrategyArgs,
    RollingUpdateDeploymentArgs,
    RollingUpdateStatefulSetStrategyArgs,
    StatefulSet,
    StatefulSetSpecArgs,
    StatefulSetUpdateStrategyArgs,
)
from pulumi_kubernetes.core.v1 import (
    AffinityArgs,
    CapabilitiesArgs,
    ConfigMap,
    ConfigMapVolumeSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvVarArgs,
    ExecActionArgs,
    HTTPGetActionArgs,
    PersistentVolumeClaimArgs,
    PersistentVolumeClaimSpecArgs,
    PodAffinityTermArgs,
    PodAntiAffinityArgs,
    PodSecurityContextArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    SecurityContextArgs,
    Service,
    ServiceAccount,
    ServicePortArgs,
    ServiceSpecArgs,
    TCPSocketActionArgs,
    TopologySpreadConstraintArgs,
    VolumeArgs,
    VolumeMountArgs,
    VolumeResourceRequirementsArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicy,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
)
from pulumi_kubernetes.policy.v1 import PodDisruptionBudget, PodDisruptionBudgetSpecArgs
from pydantic import Field, model_validator

# kube-prometheus-stack scrapes every 30s by default, Managed Prometheus every 60s: both are pinned to the interval
# the rule groups evaluate at, so each evaluation sees a fresh sample and an alert's `for` means the same on both.
from monitoring.names import SCRAPE_INTERVAL
from sizing.core.model import Model
from sizing.core.quantity import format_mib
from sizing.facts.workloads import ExecCheck, HttpCheck, Probe, TcpCheck, WorkloadSpec
from sizing.plan.pool_name import GKE_NODE_POOL_LABEL, POOL_NAME_PATTERN
from sizing.plan.types import WorkloadPlan

# The type token is the one the component had when it lived in components/workloads.py: it is part of every URN.
WORKLOAD_TYPE = "hyperstudy:workloads:Workload"

# The Kubernetes recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
PART_OF = "app.kubernetes.io/part-of"
VERSION = "app.kubernetes.io/version"
MANAGED_BY = "app.kubernetes.io/managed-by"

PART_OF_VALUE = "hyperstudy"
MANAGED_BY_VALUE = "pulumi"
HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"
# The API server keeps this label on every namespace equal to the namespace's own name (Kubernetes 1.22+), so a
# NetworkPolicy peer selected by it cannot be some other namespace that copied a label.
NAMESPACE_NAME = "kubernetes.io/metadata.name"
# kube-prometheus-stack's Prometheus selects PodMonitors (like rules) by this label's value: its Helm release.
RELEASE = "release"
# GKE Managed Prometheus runs its collectors (a DaemonSet on the pod network) in this namespace, whatever
# `monitoring.prometheus_namespace` says: that one names kube-prometheus-stack's Prometheus.
GMP_NAMESPACE = "gmp-system"

# pulumi-kubernetes (v4: server-side apply unless the provider turns it off) sends an object carrying this annotation
# with `force: true`: it takes over the fields it applies from any other field manager instead of failing with a
# field conflict (provider/pkg/await/await.go, `patchForce`; the annotation is also stored on the live object).
PATCH_FORCE = "pulumi.com/patchForce"
# The cluster autoscaler does not remove a node to shrink the pool while a pod on it carries this with "false". It is
# the autoscaler's own annotation: node upgrades, auto-repair, spot preemption and `kubectl drain` do not read it.
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"

LABEL_VALUE = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


def image_version(image: str) -> str | None:
    """The tag of an image reference, for app.kubernetes.io/version; None for a digest-only reference or a tag
    that is no valid label value (labels allow 63 characters, tags 128)."""
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    tag = last.rsplit(":", 1)[1]
    return tag if re.fullmatch(LABEL_VALUE, tag) else None


class WorkloadArgs(Model):
    """One workload: its sizes from the plan, its application facts from the spec table, its image and place."""

    name: str = Field(
        pattern=r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", description="workload name: object names and app label"
    )
    plan: WorkloadPlan = Field(description="sizes: replicas, memory request/limit, CPU request, runtime settings")
    spec: WorkloadSpec = Field(description="application facts: kind, port, probes, user, network clients")
    image: str = Field(min_length=1, description="pinned container image (from StackConfig.images)")
    namespace: str = Field(pattern=_DNS_LABEL, description="namespace of every namespaced object")
    instance: str = Field(
        pattern=LABEL_VALUE, description="app.kubernetes.io/instance: which installation (part of selectors)"
    )
    release: str = Field(
        pattern=LABEL_VALUE,
        description="`release` label of the PodMonitor: kube-prometheus-stack's Helm release (monitoring.release)",
    )
    prometheus_namespace: str = Field(
        pattern=_DNS_LABEL,
        description="namespace of the Prometheus that scrapes the workload (monitoring.prometheus_namespace)",
    )
    prometheus_operator: bool = Field(
        description="kube-prometheus-stack scrapes: add a PodMonitor and admit `prometheus_namespace` "
        "(monitoring.prometheus_operator; without it the cluster may have no monitoring.coreos.com CRDs)"
    )
    managed_prometheus: bool = Field(
        description="GKE Managed Prometheus scrapes: add a PodMonitoring and admit its collectors "
        "(monitoring.managed_prometheus)"
    )
    node_pool: str | None = Field(
        None,
        pattern=POOL_NAME_PATTERN,
        description="GKE node pool the pods run on: a nodeSelector on its cloud.google.com/gke-nodepool label "
        "(None: any node of the cluster)",
    )
    extra_args: tuple[str, ...] = Field(
        (),
        description="arguments of this installation, after the spec's and before the plan's runtime arguments "
        "(Traefik's namespace scope)",
    )
    config_files: dict[str, str] = Field(
        default_factory=dict,
        description="file name → content of the config files mounted at the spec's config_dir (Traefik's dynamic "
        "configuration)",
    )
    service_annotations: dict[str, str] = Field(
        default_factory=dict, description="annotations of the Service (Traefik's sticky cookie of a routed workload)"
    )
    load_balancer_ip: Any = Field(
        None, description="the reserved static address a LoadBalancer Service keeps (a string or a Pulumi Output)"
    )
    replicas_managed_externally: bool = Field(
        False,
        description="something else sets the controller's replicas (the schedule's scaling CronJobs, "
        "components/schedule.py): Pulumi creates it with the plan's replicas and then ignores spec.replicas",
    )
    force_apply: bool = Field(
        False,
        description="Pulumi's server-side apply of the controller takes over fields another field manager owns "
        "(pulumi.com/patchForce): for a workload a schedule scales, while no scaler does, so that the update "
        "removing a scaler sets spec.replicas back to the plan's instead of failing on the scaler's `curl`",
    )
    holds_live_sessions: bool = Field(
        False,
        description="its pods hold live experiments (the formula-sized backend): the pod template tells the cluster "
        "autoscaler not to evict one to remove its node (cluster-autoscaler.kubernetes.io/safe-to-evict: false)",
    )

    @model_validator(mode="after")
    def _plan_is_this_workload(self) -> WorkloadArgs:
        if self.config_files and self.spec.config_dir is None:
            raise ValueError("config_files given, but the spec mounts no config_dir")
        if self.load_balancer_ip is not None and self.spec.service_type != "LoadBalancer":
            raise ValueError("load_balancer_ip given for a Service that is no LoadBalancer")
        if self.plan.name != self.name:
            raise ValueError(f"plan is for workload {self.plan.name!r}, not {self.name!r}")
        if self.plan.runtime.kind != self.spec.runtime:
            raise ValueError(
                f"plan derives {self.plan.runtime.kind!r} memory settings, the image runs {self.spec.runtime!r}"
            )
        if self.spec.max_replicas is not None and self.plan.replicas > self.spec.max_replicas:
            raise ValueError(f"{self.plan.replicas} replicas, the application runs at most {self.spec.max_replicas}")
        if self.force_apply and self.replicas_managed_externally:
            # With a scaler, ignore_changes already leaves spec.replicas to it (the provider drops the field another
            # manager owns); forcing would only take other managers' fields, which nothing here needs.
            raise ValueError("force_apply is for a controller whose replicas Pulumi manages, not a scaled one")
        return self

    @property
    def selector(self) -> dict[str, str]:
        """Labels that select the pods: only those that never change (selectors are immutable on StatefulSets and
        a changed Deployment selector orphans the old ReplicaSets)."""
        return {NAME: self.name, INSTANCE: self.instance}

    @property
    def labels(self) -> dict[str, str]:
        """The recommended labels of every object of the workload."""
        labels = {
            **self.selector,
            COMPONENT: self.spec.component,
            PART_OF: PART_OF_VALUE,
            MANAGED_BY: MANAGED_BY_VALUE,
        }
        version = image_version(self.image)
        if version is not None:
            labels[VERSION] = version
        return labels

    @property
    def scraper_namespaces(self) -> tuple[str, ...]:
        """Namespaces whose pods scrape the metrics port: kube-prometheus-stack's and Managed Prometheus's, each
        only when enabled (empty when neither is)."""
        namespaces = set()
        if self.prometheus_operator:
            namespaces.add(self.prometheus_namespace)
        if self.managed_prometheus:
            namespaces.add(GMP_NAMESPACE)
        return tuple(sorted(namespaces))


def _probe(probe: Probe | None, port_name: str) -> ProbeArgs | None:
    if probe is None:
        return None
    timing = {
        "period_seconds": probe.period_seconds,
        "timeout_seconds": probe.timeout_seconds,
        "failure_threshold": probe.failure_threshold,
    }
    match probe.check:
        case HttpCheck(path=path):
            return ProbeArgs(http_get=HTTPGetActionArgs(path=path, port=port_name), **timing)
        case TcpCheck():
            return ProbeArgs(tcp_socket=TCPSocketActionArgs(port=port_name), **timing)
        case ExecCheck(command=command):
            return ProbeArgs(exec_=ExecActionArgs(command=list(command)), **timing)
    raise AssertionError(f"unknown check {probe.check!r}")


# checkov's per-object skips: one check id and its reason each, on the object they are about.
_TAG_ONLY = (
    "pinned by tag in the stack config, its digest not recorded yet: the policy images-pinned-by-digest warns on "
    "every preview until it is"
)


def _scanner_skips(image: str) -> dict[str, str] | None:
    """A tag-only image fails checkov's digest check (CKV_K8S_43) and, without a digest, its pull-policy check
    (CKV_K8S_15, which wants Always: every restart would hinge on the registry through the NAT). Skipped on this
    object only, with the reason, so an image with a digest is checked in full."""
    if "@" in image:
        return None
    return {"checkov.io/skip1": f"CKV_K8S_43={_TAG_ONLY}", "checkov.io/skip2": f"CKV_K8S_15={_TAG_ONLY}"}


def _controller_annotations(args: WorkloadArgs) -> dict[str, str] | None:
    """The controller's annotations: checkov's skips for a tag-only image, and patchForce where the apply must win
    over a scaler that owned spec.replicas."""
    annotations = _scanner_skips(args.image) or {}
    if args.force_apply:
        annotations[PATCH_FORCE] = "true"
    return annotations or None


def _pod_annotations(args: WorkloadArgs) -> dict[str, str] | None:
    """A backend pod holds its live experiments: like an OOM kill, an eviction ends every one of them. The cluster
    autoscaler removes an under-used node by evicting its pods onto the others (whatever the autoscaling profile,
    only sooner with OPTIMIZE_UTILIZATION); with safe-to-evict "false" it keeps any node a backend pod runs on (GKE
    logs the decision as `no.scale.down.node.pod.not.safe.to.evict.annotation`). That is all it covers: a node
    upgrade or auto-repair drains the node anyway (PDB and grace period honoured for up to an hour on upgrades),
    spot preemption and a manual `kubectl drain` ignore it, and so does the StatefulSet controller. After a window
    the scale-down job deletes the window's pods (the highest ordinals, the ones its added nodes were added for)
    itself, so those nodes can still go. What stays pinned is one node per base backend pod at most: never above the
    pool's minimum while the base replicas are at most that minimum."""
    return {SAFE_TO_EVICT: "false"} if args.holds_live_sessions else None


def config_map_name(workload: str) -> str:
    """The ConfigMap holding a workload's config files."""
    return f"{workload}-config"


def _volume_name(path: str) -> str:
    return "scratch-" + (re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "root")


class Workload(pulumi.ComponentResource):
    """One HyperStudy workload: controller, ServiceAccount, Service(s), PDB, NetworkPolicy, VPA and, when it exports
    metrics, its PodMonitor (with the prometheus-operator) and PodMonitoring (with Managed Prometheus)."""

    service_account: ServiceAccount
    config_map: ConfigMap | None
    controller: Deployment | StatefulSet
    service: Service
    headless_service: Service | None
    pod_disruption_budget: PodDisruptionBudget | None
    network_policy: NetworkPolicy
    vertical_pod_autoscaler: CustomResource
    pod_monitor: CustomResource | None
    pod_monitoring: CustomResource | None
    ignored_changes: tuple[str, ...]

    def __init__(self, name: str, args: WorkloadArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(WORKLOAD_TYPE, name, None, opts)
        plan, spec = args.plan, args.spec
        child = pulumi.ResourceOptions(parent=self)

        def metadata(object_name: str) -> ObjectMetaArgs:
            return ObjectMetaArgs(name=object_name, namespace=args.namespace, labels=args.labels)

        self.service_account = ServiceAccount(
            args.name,
            metadata=metadata(args.name),
            # Only a workload that calls the API server gets a token: a stolen token is a foothold in the cluster.
            automount_service_account_token=spec.kubernetes_api,
            opts=child,
        )

        self.config_map = None
        if spec.config_dir is not None:
            # Mounted, not baked into args: a changed file reaches the running pods without a restart.
            self.config_map = ConfigMap(
                f"{args.name}-config",
                metadata=metadata(config_map_name(args.name)),
                data=dict(args.config_files),
                opts=child,
            )

        self.headless_service = None
        if spec.kind == "StatefulSet":
            # The StatefulSet's governing Service: gives each pod its DNS name (backend-0.backend-headless...).
            self.headless_service = Service(
                f"{args.name}-headless",
                metadata=metadata(f"{args.name}-headless"),
                spec=ServiceSpecArgs(
                    cluster_ip="None",
                    selector=args.selector,
                    ports=[ServicePortArgs(name=spec.port_name, port=spec.port, target_port=spec.port_name)],
                ),
                opts=child,
            )

        pod_template = self._pod_template(args)
        # The controller's input paths Pulumi leaves alone once it exists (a resource option: the attribute says
        # what was passed, for tests and callers). Without a scaler, none: exactly the options it always had.
        self.ignored_changes = ("spec.replicas",) if args.replicas_managed_externally else ()
        controller_opts = pulumi.ResourceOptions(parent=self, ignore_changes=list(self.ignored_changes) or None)
        # Forced where a scaler may have owned spec.replicas: the update that removes the scaler (a rollback whose
        # pods need no scaling, a schedule taken out, every window over) then sets the plan's replicas over the
        # scaler's `curl` field manager, which would otherwise fail it with a field conflict mid-window. The
        # annotation appearing is also what makes that update apply the controller at all: dropping ignore_changes
        # is no diff, and Pulumi's state may still hold the plan's replicas. StatefulSets scale down from the
        # highest ordinal: what that means mid-window is in README.md ("Rollback during a window"). The force is the
        # whole object's: a hand edit of a field the program sets (kubectl scale, set resources) no longer stops the
        # next update with a conflict, it is overwritten by it.
        controller_metadata = ObjectMetaArgs(
            name=args.name, namespace=args.namespace, labels=args.labels, annotations=_controller_annotations(args)
        )
        if spec.kind == "StatefulSet":
            self.controller = StatefulSet(
                args.name,
                metadata=controller_metadata,
                spec=StatefulSetSpecArgs(
                    replicas=plan.replicas,
                    selector=LabelSelectorArgs(match_labels=args.selector),
                    service_name=f"{args.name}-headless",
                    # Parallel only where pods never wait for each other (spec.parallel_pods); it changes scaling
                    # and recovery order, not rolling updates, which always replace one pod at a time.
                    pod_management_policy="Parallel" if spec.parallel_pods else "OrderedReady",
                    # A StatefulSet cannot surge (a pod's name is its identity): it replaces one pod at a time,
                    # highest ordinal first, and waits min_ready_seconds of readiness before the next one.
                    update_strategy=StatefulSetUpdateStrategyArgs(
                        type="RollingUpdate", rolling_update=RollingUpdateStatefulSetStrategyArgs(partition=0)
                    ),
                    min_ready_seconds=spec.min_ready_seconds,
                    template=pod_template,
                    volume_claim_templates=self._claims(args),
                ),
                opts=controller_opts,
            )
        else:
            self.controller = Deployment(
                args.name,
                metadata=controller_metadata,
                spec=DeploymentSpecArgs(
                    replicas=plan.replicas,
                    selector=LabelSelectorArgs(match_labels=args.selector),
                    # Never below the desired count: a new pod must be ready before an old one goes. The surge pod
                    # is what the node plan's surge_nodes leave room for.
                    strategy=DeploymentStrategyArgs(
                        type="RollingUpdate",
                        rolling_update=RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                    ),
                    min_ready_seconds=spec.min_ready_seconds,
                    template=pod_template,
                ),
                opts=controller_opts,
            )

        self.service = Service(
            args.name,
            metadata=ObjectMetaArgs(
                name=args.name,
                namespace=args.namespace,
                labels=args.labels,
                annotations=args.service_annotations or None,
            ),
            spec=ServiceSpecArgs(
                type=spec.service_type,
                selector=args.selector,
                ports=[
                    ServicePortArgs(name=spec.port_name, port=spec.exposed_port, target_port=spec.port_name),
                    *(ServicePortArgs(name=p.name, port=p.service_port, target_port=p.name) for p in spec.extra_ports),
                ],
                # The reserved address: the DNS records outlive the Service (GKE's external passthrough load
                # balancer takes a regional static IP this way).
                load_balancer_ip=args.load_balancer_ip,
                # Local: the load balancer sends only to nodes whose health check (the healthCheckNodePort, served
                # by the node's dataplane, not by a pod, so no NetworkPolicy is involved) finds a ready pod there;
                # GKE opens that port to its health-check ranges itself. Its number is left to the API server: it
                # cannot be changed once set, and a fixed one could collide on a shared cluster.
                external_traffic_policy=spec.external_traffic_policy,
            ),
            opts=child,
        )

        self.pod_disruption_budget = None
        if plan.replicas > 1:
            self.pod_disruption_budget = PodDisruptionBudget(
                args.name,
                metadata=metadata(args.name),
                spec=PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=LabelSelectorArgs(match_labels=args.selector),
                    # A crash-looping pod must not block a node drain: it serves nothing, evicting it costs nothing.
                    unhealthy_pod_eviction_policy="AlwaysAllow",
                ),
                opts=child,
            )

        if spec.public:
            sources = None  # no `from`: every source, but still only the one port
        else:
            sources = [
                NetworkPolicyPeerArgs(pod_selector=LabelSelectorArgs(match_labels={NAME: client}))
                for client in spec.clients
            ]
        served = [spec.port, *(p.port for p in spec.extra_ports)]
        ingress = [
            NetworkPolicyIngressRuleArgs(
                from_=sources, ports=[NetworkPolicyPortArgs(port=port, protocol="TCP") for port in served]
            )
        ]
        if spec.scrape_port is not None and args.scraper_namespaces:
            # A rule of its own, so the scrapers reach the metrics port and nothing else, and the clients do not
            # gain the metrics port. Any pod of the scraper namespaces is admitted: Prometheus's pod labels belong
            # to its chart, the namespace name to the API server. No scraper, no rule: a rule with an empty
            # `from` would admit every source.
            ingress.append(
                NetworkPolicyIngressRuleArgs(
                    from_=[
                        NetworkPolicyPeerArgs(
                            namespace_selector=LabelSelectorArgs(match_labels={NAMESPACE_NAME: namespace})
                        )
                        for namespace in args.scraper_namespaces
                    ],
                    ports=[NetworkPolicyPortArgs(port=spec.scrape_port, protocol="TCP")],
                )
            )
        self.network_policy = NetworkPolicy(
            args.name,
            metadata=metadata(args.name),
            spec=NetworkPolicySpecArgs(
                pod_selector=LabelSelectorArgs(match_labels=args.selector), policy_types=["Ingress"], ingress=ingress
            ),
            opts=child,
        )

        self.vertical_pod_autoscaler = CustomResource(
            args.name,
            api_version="autoscaling.k8s.io/v1",
            kind="VerticalPodAutoscaler",
            metadata=metadata(args.name),
            spec={
                "targetRef": {"apiVersion": "apps/v1", "kind": spec.kind, "name": args.name},
                # Recommendation only: the sizes are the plan's, reviewed in config. An acting VPA would evict
                # pods to resize them and drift from the plan the node pool was sized for.
                "updatePolicy": {"updateMode": "Off"},
                # Bounded to the plan's request..limit: a recommendation pinned at maxAllowed says the limit is too
                # low, one pinned at minAllowed that the request is too high.
                "resourcePolicy": {
                    "containerPolicies": [
                        {
                            "containerName": args.name,
                            "minAllowed": {"memory": plan.memory_request},
                            "maxAllowed": {"memory": plan.memory_limit},
                        }
                    ]
                },
            },
            opts=child,
        )

        self.pod_monitor = self.pod_monitoring = None
        if spec.metrics_path is not None:
            # Pods, not a Service: a ServiceMonitor would need the metrics port on the Service, which for Traefik
            # is the public LoadBalancer; and per-pod targets are what the rules join on anyway.
            endpoint = {"port": spec.scrape_port_name, "path": spec.metrics_path, "interval": SCRAPE_INTERVAL}
            # Each scrape config only for a backend the config enables: the API server refuses an object whose
            # CRD is not installed, and a Managed-Prometheus-only cluster has no monitoring.coreos.com CRDs.
            if args.prometheus_operator:
                self.pod_monitor = CustomResource(
                    args.name,
                    api_version="monitoring.coreos.com/v1",
                    kind="PodMonitor",
                    metadata=ObjectMetaArgs(
                        name=args.name, namespace=args.namespace, labels={**args.labels, RELEASE: args.release}
                    ),
                    # No namespaceSelector: a PodMonitor looks in its own namespace, the workload's. No relabelings
                    # and honorLabels left false: the operator's own relabelings set `namespace`, `pod` and
                    # `container` from the target, and the rules join on exactly those.
                    spec={"selector": {"matchLabels": args.selector}, "podMetricsEndpoints": [endpoint]},
                    opts=child,
                )
            if args.managed_prometheus:
                # Beside the PodMonitor when both run, not instead: Managed Prometheus ignores PodMonitors and
                # kube-prometheus-stack ignores PodMonitorings. Each backend stores its own samples, so scraping
                # twice duplicates no series within either.
                self.pod_monitoring = CustomResource(
                    args.name,
                    api_version="monitoring.googleapis.com/v1",
                    kind="PodMonitoring",
                    metadata=metadata(args.name),
                    spec={
                        "selector": {"matchLabels": args.selector},
                        "endpoints": [endpoint],
                        # Explicitly the default (`namespace` is always set): `container` is only filled because
                        # the port is referenced by name, and the rules join on namespace, pod and container.
                        "targetLabels": {"metadata": ["pod", "container"]},
                    },
                    opts=child,
                )

        self.register_outputs(
            {
                "kind": spec.kind,
                "replicas": plan.replicas,
                "memory_request": plan.memory_request,
                "memory_limit": plan.memory_limit,
                "cpu_request": plan.cpu_request,
                "image": args.image,
                "service": self.service.metadata.apply(lambda m: m.name),
                "metrics_path": spec.metrics_path,
            }
        )

    @staticmethod
    def _pod_template(args: WorkloadArgs) -> PodTemplateSpecArgs:
        plan, spec = args.plan, args.spec
        mounts = [VolumeMountArgs(name=_volume_name(v.path), mount_path=v.path) for v in spec.scratch]
        volumes = [
            VolumeArgs(
                name=_volume_name(v.path), empty_dir=EmptyDirVolumeSourceArgs(size_limit=format_mib(v.size_limit))
            )
            for v in spec.scratch
        ]
        if spec.storage is not None:
            mounts.append(VolumeMountArgs(name=spec.storage.volume, mount_path=spec.storage.path))
        if spec.config_dir is not None:
            mounts.append(VolumeMountArgs(name="config", mount_path=spec.config_dir, read_only=True))
            volumes.append(
                VolumeArgs(name="config", config_map=ConfigMapVolumeSourceArgs(name=config_map_name(args.name)))
            )
        ports = [ContainerPortArgs(name=spec.port_name, container_port=spec.port, protocol="TCP")]
        ports += [ContainerPortArgs(name=p.name, container_port=p.port, protocol="TCP") for p in spec.extra_ports]
        if spec.metrics_port is not None:
            # A separate metrics listener is declared too: the PodMonitor and PodMonitoring scrape it by name.
            ports.append(
                ContainerPortArgs(name=spec.metrics_port_name, container_port=spec.metrics_port, protocol="TCP")
            )

        container = ContainerArgs(
            name=args.name,
            image=args.image,
            command=list(spec.command) or None,
            args=[*spec.args, *args.extra_args, *plan.runtime.args] or None,
            env=[EnvVarArgs(name=key, value=value) for key, value in plan.runtime.env.items()] or None,
            ports=ports,
            resources=ResourceRequirementsArgs(
                requests={"memory": plan.memory_request, "cpu": plan.cpu_request},
                # No CPU limit: CPU is compressible and the request already guarantees each pod its share; a CFS
                # quota would throttle the Node.js event loops in bursts (WebSocket fan-out, GC) while the node
                # has idle cores. Memory is not compressible: its limit is the plan's, and the runtime settings
                # keep each process below it.
                limits={"memory": plan.memory_limit},
            ),
            readiness_probe=_probe(spec.probes.readiness, spec.port_name),
            liveness_probe=_probe(spec.probes.liveness, spec.port_name),
            startup_probe=_probe(spec.probes.startup, spec.port_name),
            security_context=SecurityContextArgs(
                allow_privilege_escalation=False,
                capabilities=CapabilitiesArgs(drop=["ALL"]),
                read_only_root_filesystem=spec.read_only_root_filesystem,
            ),
            volume_mounts=mounts or None,
        )

        # The placement constraint the plan placed the pods under (sizing/plan/placement.py): one source for both.
        spread = affinity = None
        selector = LabelSelectorArgs(match_labels=args.selector)
        # A Deployment's rollout counts only the new ReplicaSet's pods, so the new revision is spread too (counting
        # the old pods could put every new pod on one node, or, one per node, leave no node for the surge pod).
        # StatefulSet pods keep their names across revisions and need no such key.
        revision = ["pod-template-hash"] if spec.kind == "Deployment" else None
        if plan.spread == "skew":
            # Balanced over the pool's nodes: a pod goes where its workload has fewest, so replicas share a node only
            # when they outnumber the nodes (5 on 2 nodes: 3/2). Honor: a tainted node, such as a lost one that is
            # NotReady, is no domain, so its pods reschedule onto the nodes left at once instead of waiting for a
            # new node (with the default, Ignore, its count of zero would hold the survivors to skew 1).
            spread = [
                TopologySpreadConstraintArgs(
                    max_skew=1,
                    topology_key=HOSTNAME_TOPOLOGY,
                    when_unsatisfiable="DoNotSchedule",
                    label_selector=selector,
                    match_label_keys=revision,
                    node_taints_policy="Honor",
                )
            ]
        elif plan.spread == "distinct":
            # One pod per node, whatever the node count: a node per replica, and a lost node's pod waits for the
            # autoscaler's next node.
            affinity = AffinityArgs(
                pod_anti_affinity=PodAntiAffinityArgs(
                    required_during_scheduling_ignored_during_execution=[
                        PodAffinityTermArgs(
                            label_selector=selector, topology_key=HOSTNAME_TOPOLOGY, match_label_keys=revision
                        )
                    ]
                )
            )

        return PodTemplateSpecArgs(
            # The pod labels carry no sizing profile: a profile switch must change resources, not identity.
            metadata=ObjectMetaArgs(labels=args.labels, annotations=_pod_annotations(args)),
            spec=PodSpecArgs(
                service_account_name=args.name,
                automount_service_account_token=spec.kubernetes_api,
                # No docker-link variables: a Service named redis would inject REDIS_PORT=tcp://... into every pod.
                enable_service_links=False,
                # Room for the drain (spec.drain) before the kubelet's SIGKILL; the kubelet's default otherwise.
                termination_grace_period_seconds=(
                    spec.drain.termination_grace_period_seconds if spec.drain is not None else None
                ),
                security_context=PodSecurityContextArgs(
                    run_as_non_root=True,
                    run_as_user=spec.run_as_user,
                    run_as_group=spec.run_as_group,
                    fs_group=spec.run_as_group,
                    # Re-own a volume only when its root is not the pod's group yet, not on every start.
                    fs_group_change_policy="OnRootMismatch",
                    seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
                ),
                containers=[container],
                volumes=volumes or None,
                topology_spread_constraints=spread,
                affinity=affinity,
                # The pool the sizing plan sized: on a shared cluster the scheduler would otherwise place pods on
                # any pool with room, and the plan's node counts would say nothing about where they run.
                node_selector={GKE_NODE_POOL_LABEL: args.node_pool} if args.node_pool else None,
            ),
        )

    @staticmethod
    def _claims(args: WorkloadArgs) -> list[PersistentVolumeClaimArgs] | None:
        storage = args.spec.storage
        if storage is None:
            return None
        return [
            PersistentVolumeClaimArgs(
                # Only the stable selector labels: volumeClaimTemplates are immutable, a version label here would
                # force the StatefulSet to be replaced on every image bump.
                metadata=ObjectMetaArgs(name=storage.volume, labels=args.selector),
                spec=PersistentVolumeClaimSpecArgs(
                    access_modes=["ReadWriteOnce"],
                    resources=VolumeResourceRequirementsArgs(requests={"storage": format_mib(storage.size)}),
                ),
            )
        ]
