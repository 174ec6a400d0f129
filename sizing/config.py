"""The stack configuration: every key of the project's namespace, validated once into frozen models.

`python -m sizing` reads these keys from `Pulumi.<stack>.yaml`; the Pulumi program reads the same keys through
`pulumi.Config` and hands the raw values to `parse_stack_config`. Either way one model, one set of rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from sizing.alerting import AlertingConfig
from sizing.base import (
    PROFILES,
    ROLES,
    DiskType,
    Duration,
    MemorySize,
    MiB,
    Millicores,
    Model,
    Profile,
    Runtime,
)
from sizing.catalogue import DISK_USD_GB_MONTH, MACHINE_TYPES, STORAGE_CLASS_DISKS, MachineType, ServicePrices
from sizing.charts import CHARTS
from sizing.errors import ConfigError, PathError, from_validation_error
from sizing.ingress import IngressConfig
from sizing.maintenance_config import MaintenanceConfig
from sizing.monitoring_stack import StackComponents, StackStorage
from sizing.schedule_config import Schedule


class UserMix(Model):
    """Users of each role connected to one backend pod (or belonging to one experiment shape)."""

    participant_video: int = Field(0, ge=0, description="participants with video")
    participant_no_video: int = Field(0, ge=0, description="participants without video")
    experimenter: int = Field(0, ge=0, description="experimenters")

    def __add__(self, other: UserMix) -> UserMix:
        return UserMix(**{role: getattr(self, role) + getattr(other, role) for role in ROLES})

    def times(self, count: int) -> UserMix:
        return UserMix(**{role: getattr(self, role) * count for role in ROLES})

    @property
    def users(self) -> int:
        return sum(getattr(self, role) for role in ROLES)


class RoleMemory(Model):
    """Measured memory each connected user of a role adds to a backend pod, MiB."""

    participant_video: int = Field(15, ge=0, description="MiB per participant with video")
    participant_no_video: int = Field(8, ge=0, description="MiB per participant without video")
    experimenter: int = Field(25, ge=0, description="MiB per experimenter")


class Formula(Model):
    """memory_mib = base_mib + Σ per_role_mib[role] × users[role] (the document's measured formula)."""

    base_mib: int = Field(100, ge=0, description="memory of an idle backend pod, MiB")
    per_role_mib: RoleMemory = Field(default_factory=RoleMemory, description="MiB added per user of each role")

    def users_mib(self, mix: UserMix) -> int:
        """What the users of `mix` add on top of the base: the memory one more experiment of that shape costs."""
        return sum(getattr(self.per_role_mib, role) * getattr(mix, role) for role in ROLES)

    def memory_mib(self, mix: UserMix) -> int:
        return self.base_mib + self.users_mib(mix)

    def explain(self, mix: UserMix) -> str:
        """The formula line for `mix`, e.g. `100 + 15×10 + 25×2 = 300 MiB`."""
        terms = [f"{getattr(self.per_role_mib, r)}×{getattr(mix, r)}" for r in ROLES if getattr(mix, r)]
        return " + ".join([str(self.base_mib), *terms]) + f" = {self.memory_mib(mix)} MiB"


def _document_shapes() -> dict[str, UserMix]:
    return {
        "small": UserMix(participant_no_video=5, experimenter=1),
        "medium": UserMix(participant_video=10, experimenter=2),
        "large": UserMix(participant_video=20, experimenter=3),
    }


class LoadProfile(Model):
    """Concurrent experiments per backend pod, by shape name."""

    typical: dict[str, int] = Field(description="experiments per pod at typical load: sizes the memory request")
    peak: dict[str, int] = Field(description="experiments per pod at peak load: sizes the memory limit")

    @model_validator(mode="after")
    def _counts_are_not_negative(self) -> LoadProfile:
        for level in ("typical", "peak"):
            for shape, count in getattr(self, level).items():
                if count < 0:
                    raise PathError(f"{level}.{shape}", f"must be 0 or more, got {count}")
        return self


class Headroom(Model):
    """Margin added to the formula's memory before rounding."""

    request_pct: float = Field(15, ge=0, le=400, description="percent added to typical-load memory for the request")
    limit_pct: float = Field(25, ge=0, le=400, description="percent added to peak-load memory for the limit")


class Rounding(Model):
    """How a derived memory size is rounded up to a value people recognise and nodes pack well."""

    mode: Literal["power_of_two", "step"] = Field("power_of_two", description="next power of two MiB, or next step")
    step_mib: int = Field(64, gt=0, description="step for mode=step, MiB")

    def apply(self, mib: float) -> int:
        whole = max(1, math.ceil(mib - 1e-9))  # 189.75 -> 190; float noise must not push 256.0 to 257
        if self.mode == "power_of_two":
            return 1 << (whole - 1).bit_length()
        return math.ceil(whole / self.step_mib) * self.step_mib


class CapacityConfig(Model):
    """The capacity formula, the experiment shapes and the load a backend pod is sized for."""

    formula: Formula = Field(default_factory=Formula, description="base and per-role memory, MiB")
    shapes: dict[str, UserMix] = Field(default_factory=_document_shapes, description="experiment shapes by name")
    load: LoadProfile = Field(description="typical and peak experiment mix per backend pod")
    headroom: Headroom = Field(default_factory=Headroom, description="margins on the formula's memory")
    rounding: Rounding = Field(default_factory=Rounding, description="rounding of derived sizes")
    schedule: Schedule = Field(
        default=(), description="planned experiment windows: the backend scales for them ahead (sizing/schedule.py)"
    )

    @model_validator(mode="after")
    def _load_names_known_shapes(self) -> CapacityConfig:
        known = ", ".join(sorted(self.shapes)) or "none"
        for level in ("typical", "peak"):
            for shape in getattr(self.load, level):
                if shape not in self.shapes:
                    raise PathError(f"load.{level}.{shape}", f"unknown experiment shape (known: {known})")
        for window in self.schedule:
            for shape in window.experiments:
                if shape not in self.shapes:
                    raise PathError(
                        f"schedule.{window.name}.experiments.{shape}", f"unknown experiment shape (known: {known})"
                    )
        if self.memory_mib("peak") < self.memory_mib("typical"):
            raise PathError("load.peak", "peak load needs less memory than typical load")
        return self

    def mix(self, level: Literal["typical", "peak"]) -> UserMix:
        total = UserMix()
        for shape, count in getattr(self.load, level).items():
            total = total + self.shapes[shape].times(count)
        return total

    def memory_mib(self, level: Literal["typical", "peak"]) -> int:
        return self.formula.memory_mib(self.mix(level))


class WorkloadMemory(MemorySize):
    """A workload's memory request and limit, and for a Node.js workload the old space it is given."""

    old_space: MiB | None = Field(
        None,
        description="Node.js: --max-old-space-size (None: runtime.nodejs_heap_fraction of the limit); the limit must "
        "hold it, the young generation and runtime.nodejs_native_mib",
    )

    @model_validator(mode="after")
    def _old_space_within_limit(self) -> WorkloadMemory:
        if self.old_space is not None and not 0 < self.old_space < self.limit:
            raise PathError("old_space", "must be more than 0 and below the limit")
        return self


class ProfileSizes(Model):
    """Static memory sizes per profile; `optimized` is omitted for a workload sized by the formula."""

    optimized: WorkloadMemory | None = Field(None, description="sizes in the optimized profile")
    baseline: WorkloadMemory = Field(description="sizes before the optimisation (the rollback target)")


class WorkloadConfig(Model):
    """One workload: how many pods, what CPU they request, how their memory is sized, how its pods share nodes."""

    replicas: int = Field(ge=1, le=1000, description="pods")
    spread: Literal["skew", "distinct"] = Field(
        "skew",
        description="how its pods share nodes (sizing/placement.py): skew, a topology spread of max skew 1 over the "
        "pool's nodes (replicas share a node only when there are more of them than nodes, 3/2 on two); distinct, "
        "required pod anti-affinity (one pod per node, a node per replica)",
    )
    cpu_request: Millicores = Field(description="CPU request per pod (Kubernetes quantity)")
    runtime: Runtime = Field("none", description="process whose memory setting is derived from the limit")
    sized_by: Literal["config", "formula"] = Field(
        "config", description="formula: optimized sizes come from the capacity formula and load profile"
    )
    memory: ProfileSizes = Field(description="memory request and limit per profile")

    @model_validator(mode="after")
    def _optimized_sizes_match_sizing(self) -> WorkloadConfig:
        if self.cpu_request <= 0:
            raise PathError("cpu_request", "must be more than 0")
        if self.sized_by == "formula" and self.memory.optimized is not None:
            raise PathError("memory.optimized", "must be omitted: sized_by is formula")
        if self.sized_by == "config" and self.memory.optimized is None:
            raise PathError("memory.optimized", "required key is missing (or set sized_by: formula)")
        for profile in ("optimized", "baseline"):
            sizes = getattr(self.memory, profile)
            if sizes is not None and sizes.old_space is not None and self.runtime != "nodejs":
                raise PathError(
                    f"memory.{profile}.old_space", f"is a Node.js setting, and the runtime is {self.runtime}"
                )
        return self


# V8's young generation is three semi-spaces: the two the scavenger copies between and the new large-object space,
# sized like one (Heap::YoungGenerationSizeFromSemiSpaceSize in V8 11.3 of Node.js 20 and 12.4 of Node.js 22, with
# minor-ms off as it is there; the Node.js docs of --max-semi-space-size say the same). Measured: with
# --max-old-space-size=48, v8.getHeapStatistics().heap_size_limit is 51 MiB with --max-semi-space-size=1 and 96 MiB
# with 16, on both.
V8_YOUNG_SEMI_SPACES = 3
# The semi-space V8 defaults to when Node.js sizes its heap from the host's memory, as it does when it cannot read
# its container's limit (libuv reads a cgroup v2 memory.max from 1.45 on): 16 MiB on 64-bit. Node.js 20.20 and 22.23
# read the limit and default to 1 MiB under a 512 MiB one (measured in a memory cgroup); an image's Node.js version
# is not the plan's to know, so where no flag caps it the plan assumes the larger.
V8_DEFAULT_SEMI_SPACE_MIB = 16
# Room a Node.js process needs beside its V8 heap (runtime.nodejs_native_mib): in a memory cgroup, with a full old
# space and 200 WebSockets echoing 2 KiB every 100 ms, Node.js 20.20 and 22.23 kept serving with 53 MiB or more left
# beside the old space and young generation, stalled (the kernel reclaiming the node binary's own pages) with 45
# MiB in two runs of three, and with 37 or less always, or were OOM-killed (bench/node_memory, README).
NODEJS_NATIVE_MIB = 56


class RuntimeConfig(Model):
    """Fractions of the memory limit given to each runtime, so it reclaims memory before the kernel OOM-kills it."""

    nodejs_heap_fraction: float = Field(
        0.75, gt=0, lt=1, description="Node.js --max-old-space-size as a fraction of the limit (rest: code, buffers)"
    )
    nodejs_semi_space_mib: int = Field(
        1,
        ge=1,
        le=64,
        description="Node.js --max-semi-space-size, set where V8's default young generation (3 × 16 MiB) would not "
        "fit in the limit beside the old space and the native memory; the young generation is 3 × this",
    )
    nodejs_native_mib: int = Field(
        NODEJS_NATIVE_MIB,
        ge=0,
        description="memory of a Node.js process outside the V8 heap that its limit must leave room for: Node's own "
        "allocations, socket buffers and the pages of the node binary it keeps touching (measured: README, Runtime "
        "memory settings)",
    )
    redis_maxmemory_fraction: float = Field(
        0.7, gt=0, lt=1, description="Redis maxmemory as a fraction of the limit (rest: fragmentation, fork)"
    )
    redis_eviction_policy: Literal[
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] = Field("allkeys-lru", description="Redis maxmemory-policy once maxmemory is reached")
    go_memlimit_fraction: float = Field(
        0.9, gt=0, lt=1, description="GOMEMLIMIT as a fraction of the limit (a soft limit: the GC works harder)"
    )


class NodeOverhead(Model):
    """Requests of the system pods and DaemonSets on every node."""

    memory: MiB = Field(description="memory requested per node by system pods and DaemonSets")
    cpu: Millicores = Field(description="CPU requested per node by system pods and DaemonSets")


class NodePoolConfig(Model):
    """The GKE node pool the workloads run on."""

    machine_type: str = Field(description="machine type, a key of the catalogue")
    spot: bool = Field(False, description="spot nodes (cheaper, can be preempted)")
    disk_size_gb: int = Field(100, ge=10, le=65536, description="boot disk per node, GB")
    disk_type: DiskType = Field("pd-balanced", description="boot disk type")
    overhead: NodeOverhead = Field(description="per-node system and DaemonSet requests")
    surge_nodes: int = Field(
        1,
        ge=1,
        le=100,
        description="nodes GKE adds during a node upgrade (nothing drained first); the plan keeps room above min",
    )
    max_nodes: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="the autoscaler maximum, at least this many nodes (None: peak load and surge_nodes set it); "
        "raise it for scheduled windows that need more nodes",
    )
    allow_spot: bool | None = Field(
        None,
        description="the cheapest-pool search may choose spot nodes (None: only when `spot` is already true)",
    )
    survive_node_loss: bool = Field(
        False,
        description="the minimum keeps every pod's requests schedulable after losing any one node (raises min)",
    )

    @model_validator(mode="after")
    def _spot_is_allowed(self) -> NodePoolConfig:
        if self.spot and self.allow_spot is False:
            raise PathError("allow_spot", "is false, but spot is true: allow spot nodes or set spot: false")
        return self

    @property
    def spot_allowed(self) -> bool:
        return self.spot if self.allow_spot is None else self.allow_spot


class MachineTypeOverride(Model):
    """Catalogue entry in config: fields replace the built-in ones; a new machine type needs all of them."""

    vcpu: int | None = Field(None, gt=0, description="vCPUs")
    memory: MiB | None = Field(None, description="memory (Kubernetes quantity)")
    on_demand_usd_month: float | None = Field(None, ge=0, description="on-demand USD per node and month")
    spot_usd_month: float | None = Field(None, ge=0, description="spot USD per node and month")
    sustained_cpu: Millicores | None = Field(
        None, description="a shared-core type's sustained CPU share (omitted: the built-in's, or dedicated cores)"
    )


class CatalogueConfig(Model):
    """Overrides of the built-in machine types and disk prices."""

    machine_types: dict[str, MachineTypeOverride] = Field(default_factory=dict, description="by machine type name")
    disk_usd_gb_month: dict[DiskType, float] = Field(default_factory=dict, description="USD per GB-month by type")
    prices: ServicePrices = Field(
        default_factory=ServicePrices, description="cluster fee, load balancer, NAT and IP prices (each overridable)"
    )
    storage_classes: dict[str, DiskType] = Field(
        default_factory=dict, description="further StorageClasses and the disk type each provisions, for pricing"
    )

    def machine_types_merged(self) -> dict[str, MachineType]:
        merged = dict(MACHINE_TYPES)
        for name, override in self.machine_types.items():
            # Attributes, not model_dump(): the dump would turn memory back into a quantity string.
            given = {
                "vcpu": override.vcpu,
                "memory_mib": override.memory,
                "on_demand_usd_month": override.on_demand_usd_month,
                "spot_usd_month": override.spot_usd_month,
                "sustained_cpu_m": override.sustained_cpu,
            }
            fields = {key: value for key, value in given.items() if value is not None}
            base = merged.get(name)
            values = {**(base.model_dump() if base else {}), **fields}
            missing = [f for f, info in MachineType.model_fields.items() if info.is_required() and f not in values]
            if missing:
                names = ", ".join("memory" if f == "memory_mib" else f for f in missing)
                raise PathError(f"machine_types.{name}", f"new machine type needs {names}")
            merged[name] = MachineType(**values)
        return merged

    def disk_price(self, disk_type: DiskType) -> float:
        return self.disk_usd_gb_month.get(disk_type, DISK_USD_GB_MONTH[disk_type])

    def storage_disk(self, storage_class: str) -> DiskType | None:
        """The disk type a StorageClass provisions (None: the class is unknown, so it cannot be priced)."""
        return self.storage_classes.get(storage_class) or STORAGE_CLASS_DISKS.get(storage_class)


class ObservedBill(Model):
    """The node bill a stack started from, as the billing account showed it."""

    monthly_usd: float = Field(gt=0, description="what the nodes cost per month, USD")
    nodes: int = Field(gt=0, description="how many nodes that was")
    machine_type: str = Field(min_length=1, description="their machine type")


class CostConfig(Model):
    """What the stack's bill is measured against, and what it is credited."""

    observed_baseline: ObservedBill | None = Field(
        None, description="the node bill before the optimisation; savings are reported against it"
    )
    free_tier_credit: bool = Field(
        False,
        description="GKE's free-tier credit (one per billing account) goes to this stack's cluster; it applies only "
        "to a zonal cluster the stack creates",
    )


class ClusterConfig(Model):
    """The GKE cluster: created by the program, or an existing one referenced by name."""

    create: bool = Field(False, description="create the cluster (true) or reference an existing one (false)")
    name: str = Field(pattern=r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$", description="cluster name (created or existing)")
    location: str = Field(
        pattern=r"^[a-z]+-[a-z]+[0-9]+(-[a-z])?$",
        description="region (regional cluster, e.g. us-central1) or zone (zonal, e.g. us-central1-a)",
    )
    release_channel: Literal["RAPID", "REGULAR", "STABLE"] = Field("REGULAR", description="GKE release channel")
    network: str = Field("default", description="VPC network of a created cluster")
    subnetwork: str | None = Field(None, description="subnetwork of a created cluster (None: the network's default)")
    private_nodes: bool = Field(True, description="nodes without public IPs (created cluster)")
    master_ipv4_cidr_block: str = Field(
        "172.16.0.32/28",
        pattern=r"^([0-9]{1,3}\.){3}[0-9]{1,3}/28$",
        description="/28 for the control plane's private endpoint peering (created cluster with private nodes)",
    )
    deletion_protection: bool = Field(True, description="refuse `pulumi destroy` of a created cluster")
    cloud_nat: bool = Field(
        True,
        description="create a Cloud Router + NAT on the network for private nodes' egress (false: the network has one)",
    )
    master_authorized_networks: list[Annotated[str, Field(pattern=r"^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$")]] = (
        Field(
            default_factory=list,
            description="CIDRs allowed to reach the public control-plane endpoint of a created cluster (empty: any "
            "address, with credentials; plan warns)",
        )
    )
    autoscaling_profile: Literal["BALANCED", "OPTIMIZE_UTILIZATION"] = Field(
        "BALANCED",
        description="cluster autoscaler profile of a created cluster (OPTIMIZE_UTILIZATION removes nodes sooner, for "
        "batch work)",
    )
    maintenance: MaintenanceConfig | None = Field(
        None,
        description="recurring GKE maintenance window of a created cluster, in UTC (None: chosen clear of the weekly "
        "windows, sizing/maintenance.py)",
    )
    kubeconfig_context: str | None = Field(
        None, description="context of ~/.kube/config for the Kubernetes provider when the cluster is referenced"
    )

    @property
    def regional(self) -> bool:
        return self.location.count("-") == 1

    @property
    def region(self) -> str:
        """The cluster's region: its location, or the region of its zone."""
        return self.location if self.regional else self.location.rsplit("-", 1)[0]

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and "authorized_networks" in data:
            raise PathError(
                "authorized_networks",
                "was renamed to cluster.master_authorized_networks (the same list of CIDRs): rename the key",
            )
        return data

    @model_validator(mode="after")
    def _provider_source_is_known(self) -> ClusterConfig:
        if not self.create and self.maintenance is not None:
            raise PathError(
                "maintenance",
                "must be omitted when create is false: the cluster's owner sets its maintenance policy (plan says "
                "what it must keep clear)",
            )
        if self.create and self.kubeconfig_context is not None:
            raise PathError("kubeconfig_context", "must be omitted when create is true (the cluster provides it)")
        if not self.create and self.kubeconfig_context is None:
            raise PathError("kubeconfig_context", "required when create is false (which cluster to deploy to)")
        return self


class KubernetesConfig(Model):
    """Where and against which Kubernetes version the workloads are deployed."""

    namespace: str = Field(
        "hyperstudy", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", description="namespace of the workloads"
    )
    version: str = Field(
        "1.33.0", pattern=r"^1\.[0-9]{2}\.[0-9]+$", description="Kubernetes version manifests are validated against"
    )


# An image reference with an explicit, pinned tag or digest: `latest` and untagged images are refused.
_IMAGE = r"^[a-z0-9]([-a-z0-9._/:]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$"


def _pinned_image(value: object) -> object:
    if isinstance(value, str) and (value.endswith(":latest") or ("@" not in value and ":" not in value.split("/")[-1])):
        raise ValueError(f"{value!r} is not pinned: give an explicit tag other than latest, or a digest")
    return value


PinnedImage = Annotated[str, BeforeValidator(_pinned_image), Field(pattern=_IMAGE)]


class Alert(Model):
    """Threshold and pending time of one alert."""

    threshold: float = Field(ge=0, description="alert threshold (a ratio, a count or a fraction; see the README)")
    for_: Duration = Field(alias="for", description="how long the condition must hold before the alert fires")
    severity: Literal["critical", "warning", "info"] = Field("warning", description="severity label")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


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

    @model_validator(mode="after")
    def _ratios_can_fire(self) -> AlertsConfig:
        # A usage ratio never exceeds 1 for long (the kernel or the runtime acts first): a threshold ≥ 1 never fires.
        for name in ("memory_near_limit", "heap_near_limit"):
            if not 0 < getattr(self, name).threshold < 1:
                raise PathError(f"{name}.threshold", "must be between 0 and 1 (a ratio of the limit)")
        # Every replica ready is a ratio of 1: a threshold of 1 or more fires on a healthy workload.
        if not self.workload_unavailable.threshold < 1:
            raise PathError("workload_unavailable.threshold", "must be below 1 (a ratio of the desired replicas)")
        return self


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
        "https://github.com/hyperstudy/hyperstudy-infra/blob/main/README.md",
        pattern=r"^https?://",
        description="README the alerts' runbook_url anchors point into",
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

_WORKLOAD_NAME = re.compile(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?")
DEFAULT_NAMESPACE = "hyperstudy-infra"


class StackConfig(Model):
    """Every key of the project's namespace in a stack's config."""

    # The config namespace the values were read under, so errors found later (while planning) name the full key.
    _namespace: str = PrivateAttr(default=DEFAULT_NAMESPACE)
    # The project's keys that hold a secret (a `secure:` ciphertext in the stack file): receivers name them.
    _secrets: frozenset[str] = PrivateAttr(default=frozenset())

    profile: Profile = Field("optimized", description="sizing profile; baseline is the rollback")
    capacity: CapacityConfig = Field(description="capacity formula, experiment shapes, load, headroom, rounding")
    workloads: dict[str, WorkloadConfig] = Field(description="workloads by name")
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="runtime memory fractions")
    nodes: NodePoolConfig = Field(description="node pool: machine type, disk, overhead")
    catalogue: CatalogueConfig = Field(default_factory=CatalogueConfig, description="price and machine overrides")
    cluster: ClusterConfig | None = Field(None, description="GKE cluster (needed by the Pulumi program)")
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig, description="namespace and API version")
    images: dict[str, PinnedImage] = Field(default_factory=dict, description="container image per workload")
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="rules, alerts, dashboards")
    ingress: IngressConfig = Field(
        default_factory=IngressConfig, description="public host names, certificates and cert-manager"
    )
    cost: CostConfig = Field(default_factory=CostConfig, description="the observed starting bill and credits")

    @model_validator(mode="after")
    def _references_resolve(self) -> StackConfig:
        if not self.workloads:
            raise PathError("workloads", "at least one workload is required")
        for name in self.workloads:
            if not _WORKLOAD_NAME.fullmatch(name):
                raise PathError(
                    f"workloads.{name}", "name must be a lowercase DNS label (a-z, 0-9 and -, at most 40 characters)"
                )
        try:
            known = self.catalogue.machine_types_merged()
        except PathError as err:
            raise PathError(f"catalogue.{err.path}", err.problem) from None
        for name in self.images:
            if name not in self.workloads:
                raise PathError(f"images.{name}", "no workload of that name")
        shape = self.monitoring.capacity_shape
        if shape not in self.capacity.shapes:
            raise PathError("monitoring.capacity_shape", f"unknown experiment shape {shape!r}")
        if self.capacity.formula.users_mib(self.capacity.shapes[shape]) <= 0:
            raise PathError("monitoring.capacity_shape", f"shape {shape!r} needs no memory: no slots to count")
        if self.monitoring.install_stack and not self.monitoring.prometheus_operator:
            raise PathError("monitoring.install_stack", "needs prometheus_operator: the stack is what runs the rules")
        if not (self.monitoring.prometheus_operator or self.monitoring.managed_prometheus):
            raise PathError("monitoring", "prometheus_operator or managed_prometheus must be true (who runs the rules)")
        if self.monitoring.install_stack:
            for name, volume in self.monitoring.storage.volumes().items():
                if self.catalogue.storage_disk(volume.storage_class) is None:
                    raise PathError(
                        f"monitoring.storage.{name}.storage_class",
                        f"{volume.storage_class!r} cannot be priced: map it to its disk type under "
                        "catalogue.storage_classes",
                    )
        if self.nodes.machine_type not in known:
            raise PathError(
                "nodes.machine_type",
                f"unknown machine type {self.nodes.machine_type!r} "
                f"(known: {', '.join(sorted(known))}; add it under catalogue.machine_types)",
            )
        return self

    @property
    def config_namespace(self) -> str:
        """The config namespace the keys were read under: the project's name."""
        return self._namespace

    def key(self, path: str) -> str:
        """The full config key of a dotted path, e.g. `hyperstudy-infra:workloads.redis`."""
        return f"{self._namespace}:{path}"

    def machine(self) -> MachineType:
        return self.catalogue.machine_types_merged()[self.nodes.machine_type]

    def with_profile(self, profile: Profile) -> StackConfig:
        return self.model_copy(update={"profile": profile})

    def secret_keys(self) -> tuple[str, ...]:
        """The secret config keys the stack's receivers read (without the namespace)."""
        return self.monitoring.alerting.secret_keys()

    def missing_secrets(self) -> tuple[str, ...]:
        """Secret config keys a receiver reads that the stack does not hold yet."""
        return tuple(key for key in self.secret_keys() if key not in self._secrets)

    def warnings(self) -> tuple[str, ...]:
        """What the stack leaves undone that would fail a person: nobody can reach the app, anyone can reach its
        control plane, or its alerts reach nobody. One sentence each."""
        found = []
        if not self.ingress.hosts:
            found.append(
                f"{self.key('ingress.hosts')}: no public host, so the load balancer answers every request with 404: "
                "name the host(s) the app is served on"
            )
        cluster = self.cluster
        if cluster is not None and cluster.create and not cluster.master_authorized_networks:
            found.append(
                f"{self.key('cluster.master_authorized_networks')}: empty, so the control plane's public endpoint "
                "accepts connections from any address (credentials are still needed): list the CIDRs that run "
                "pulumi and kubectl"
            )
        return (*found, *self._alerting_warnings())

    def _alerting_warnings(self) -> tuple[str, ...]:
        monitoring = self.monitoring
        if not (monitoring.install_stack or monitoring.managed_prometheus):
            return ()
        alerting = monitoring.alerting
        if not alerting.receivers:
            which = "installed" if monitoring.install_stack else "Managed Prometheus'"
            return (
                f"{self.key('monitoring.alerting')}: the {which} Alertmanager has no receiver, so every alert "
                "reaches no one: add receivers and route critical and warning to them",
            )
        found = []
        unrouted = alerting.unrouted()
        if unrouted:
            found.append(f"{self.key('monitoring.alerting.routes')}: {' and '.join(unrouted)} alerts reach no receiver")
        if alerting.heartbeat is None:
            found.append(
                f"{self.key('monitoring.alerting.heartbeat')}: no dead-man's switch, so if Prometheus, Alertmanager "
                "or the cluster's egress dies, alerts stop without anyone knowing: set heartbeat: {url_secret: <key>} "
                "to a healthchecks.io (or Dead Man's Snitch) check's URL"
            )
        found += [
            f"{self.key(key)}: secret not set, so its receiver cannot notify: "
            f"pulumi config set --secret {key} <value> (before pulumi up)"
            for key in self.missing_secrets()
        ]
        return tuple(found)


def _is_ciphertext(value: Any) -> bool:
    """A `secure:` value as `pulumi config set --secret` writes it into a stack file."""
    return isinstance(value, Mapping) and set(value) == {"secure"}


def parse_stack_config(values: Mapping[str, Any], namespace: str, secrets: Iterable[str] = ()) -> StackConfig:
    """Validate the project's config values (namespace already stripped) into a StackConfig, or raise ConfigError.

    `secrets` names the keys the engine holds as secrets (their values are not passed); a value that is a stack
    file's `secure:` ciphertext counts as one too. Every secret must be one a receiver names, and a key a receiver
    names must not be given in plaintext.
    """
    secret_keys = set(secrets) | {key for key, value in values.items() if _is_ciphertext(value)}
    plain = {key: value for key, value in values.items() if key not in secret_keys}
    try:
        config = StackConfig.model_validate(plain)
    except ValidationError as err:
        error = from_validation_error(err, namespace)
        # An unknown top-level key that is a receiver's secret given in plaintext: say so, not "unknown key".
        key = error.key.removeprefix(f"{namespace}:")
        if error.problem == "unknown key" and key in plain and _names_a_secret(values, key):
            raise ConfigError(error.key, _PLAINTEXT) from None
        raise error from None
    config._namespace = namespace
    config._secrets = frozenset(secret_keys)
    named = set(config.secret_keys())
    for key in sorted(secret_keys - named):
        raise ConfigError(config.key(key), "unknown key (a secret no receiver of monitoring.alerting names)")
    return config


_PLAINTEXT = (
    "is a receiver's secret in plaintext: remove it and run `pulumi config set --secret <key> <value>`, "
    "so the stack file holds only its ciphertext"
)


def _names_a_secret(values: Mapping[str, Any], key: str) -> bool:
    """Whether the (possibly invalid) monitoring config's receivers name `key` as a secret."""
    try:
        monitoring = MonitoringConfig.model_validate(values.get("monitoring") or {})
    except ValidationError:
        return False
    return key in monitoring.alerting.secret_keys()


def project_name(project_dir: Path) -> str:
    """The `name` of Pulumi.yaml: the namespace of the project's config keys."""
    path = project_dir / "Pulumi.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(str(path), f"cannot read the project file: {type(err).__name__}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError(f"{path}:name", "the project file has no name")
    return data["name"]


def stack_file(stack: str, project_dir: Path) -> Path:
    """`Pulumi.<stack>.yaml` of the project, or `stack` itself when it is a path to a YAML file."""
    candidate = Path(stack)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    return project_dir / f"Pulumi.{stack}.yaml"


def read_stack_values(path: Path, namespace: str) -> dict[str, Any]:
    """The project's keys of a stack file, namespace stripped; other namespaces (gcp:, kubernetes:) are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "stack file not found") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "the stack file is not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(str(path), f"cannot read the stack file: {err.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(str(path), f"not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "a stack file is a mapping with a 'config' key")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{path}:config", "must be a mapping of keys to values")
    values: dict[str, Any] = {}
    for key, value in config.items():
        owner, sep, name = str(key).partition(":")
        if not sep:
            owner, name = namespace, owner
        if owner == namespace:
            values[name] = value
    return values


def load_stack(stack: str, project_dir: Path, profile: str | None = None) -> StackConfig:
    """Read, validate and (optionally) switch the profile of a stack: the CLI's and the tests' one entry point."""
    namespace = project_name(project_dir)
    values = read_stack_values(stack_file(stack, project_dir), namespace)
    if profile is not None:
        if profile not in PROFILES:
            raise ConfigError("--profile", f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
        values["profile"] = profile
    return parse_stack_config(values, namespace)
