"""The price list and the machines: every price the plan, the rules and the dashboards use, typed once here.

Machine prices are us-central1 over 730 h. Every figure can be overridden per stack under `catalogue`
(`machine_types`, `disk_usd_gb_month`, `prices`, `storage_classes`): check them against the billing account.
"""

from __future__ import annotations

import math

from pydantic import Field

from sizing.core.model import CommitmentTerm, DiskType, Model

HOURS_PER_MONTH = 730  # Google's monthly estimates use 730 h

# GKE's memory reservation: (tier size in MiB or None for "the rest", fraction reserved).
_MEMORY_TIERS_MIB: tuple[tuple[int | None, float], ...] = (
    (4 * 1024, 0.25),
    (4 * 1024, 0.20),
    (8 * 1024, 0.10),
    (112 * 1024, 0.06),
    (None, 0.02),
)
_SMALL_MACHINE_RESERVED_MIB = 255  # machines under 1 GiB get a flat reservation instead of the tiers
_EVICTION_THRESHOLD_MIB = 100  # kubelet's hard eviction threshold, taken out of allocatable as well
# GKE's CPU reservation per core, in millicores: first core, second, next two, every core above four.
_CPU_TIERS_M: tuple[tuple[int | None, float], ...] = ((1, 60), (1, 10), (2, 5), (None, 2.5))
# Shared-core E2 types (e2-micro, e2-small, e2-medium) get a flat CPU reservation instead of the tiers.
_SHARED_CORE_RESERVED_M = 1060


def _tiered(amount: float, tiers: tuple[tuple[int | None, float], ...]) -> float:
    """What a tiered reservation takes from `amount`: each tier's share of the part of `amount` it covers."""
    reserved, left = 0.0, float(amount)
    for size, rate in tiers:
        part = left if size is None else min(left, size)
        reserved += part * rate
        left -= part
        if left <= 0:
            break
    return reserved


class MachineType(Model):
    """One machine type of the catalogue."""

    vcpu: int = Field(gt=0, description="vCPUs of the machine type (a shared-core type: the vCPUs it bursts to)")
    memory_mib: int = Field(gt=0, description="memory of the machine type, MiB")
    on_demand_usd_month: float = Field(ge=0, description="on-demand price per node and month (730 h), USD")
    spot_usd_month: float = Field(ge=0, description="spot price per node and month (730 h), USD")
    sustained_cpu_m: int | None = Field(
        None,
        gt=0,
        description="a shared-core type's sustained CPU share, millicores (None: dedicated cores); requests that "
        "add up to more would be throttled as soon as the burst credit runs out",
    )

    @property
    def shared_core(self) -> bool:
        return self.sustained_cpu_m is not None

    def allocatable_memory_mib(self) -> int:
        """Memory the kubelet offers to pods, before DaemonSets (rounded down: capacity is never overstated)."""
        if self.memory_mib < 1024:
            reserved = float(_SMALL_MACHINE_RESERVED_MIB)
        else:
            reserved = _tiered(self.memory_mib, _MEMORY_TIERS_MIB)
        return int(self.memory_mib - reserved - _EVICTION_THRESHOLD_MIB)

    def allocatable_cpu_m(self) -> int:
        """CPU the kubelet offers to pods, millicores, before DaemonSets."""
        if self.shared_core:
            return max(0, self.vcpu * 1000 - _SHARED_CORE_RESERVED_M)
        return int(self.vcpu * 1000 - _tiered(self.vcpu, _CPU_TIERS_M))

    def plannable_cpu_m(self) -> int:
        """CPU the plan may fill with requests: the allocatable CPU, capped by a shared-core type's sustained share
        (the kubelet would admit more, but only burst credit could serve it)."""
        allocatable = self.allocatable_cpu_m()
        return allocatable if self.sustained_cpu_m is None else min(allocatable, self.sustained_cpu_m)

    def price_usd_month(self, spot: bool) -> float:
        return self.spot_usd_month if spot else self.on_demand_usd_month


# On-demand and the spot prices of e2-medium, e2-standard-2 and e2-standard-4: a public us-central1 price sheet
# dated 2025-03 (per-hour list prices × 730). Spot prices are dynamic: the others are estimated at that sheet's
# E2 ratio, 40 % of on-demand. e2-small and e2-medium are shared-core (0.5 and 1 sustained vCPU of 2).
MACHINE_TYPES: dict[str, MachineType] = {
    "e2-small": MachineType(
        vcpu=2, memory_mib=2 * 1024, on_demand_usd_month=12.23, spot_usd_month=4.89, sustained_cpu_m=500
    ),
    "e2-medium": MachineType(
        vcpu=2, memory_mib=4 * 1024, on_demand_usd_month=24.46, spot_usd_month=9.78, sustained_cpu_m=1000
    ),
    "e2-standard-2": MachineType(vcpu=2, memory_mib=8 * 1024, on_demand_usd_month=48.92, spot_usd_month=19.56),
    "e2-standard-4": MachineType(vcpu=4, memory_mib=16 * 1024, on_demand_usd_month=97.84, spot_usd_month=39.12),
    "e2-standard-8": MachineType(vcpu=8, memory_mib=32 * 1024, on_demand_usd_month=195.68, spot_usd_month=78.24),
    "e2-highmem-2": MachineType(vcpu=2, memory_mib=16 * 1024, on_demand_usd_month=65.98, spot_usd_month=26.39),
    # AMD Milan: the t2d-standard-1 at $0.042246/h, the n2d-standard-2 at $0.084492/h (same sheet).
    "t2d-standard-1": MachineType(vcpu=1, memory_mib=4 * 1024, on_demand_usd_month=30.84, spot_usd_month=12.34),
    "n2d-standard-2": MachineType(vcpu=2, memory_mib=8 * 1024, on_demand_usd_month=61.68, spot_usd_month=24.67),
}

# Persistent disk, USD per GB and month (us-central1, Compute Engine disk pricing, 2025-03).
DISK_USD_GB_MONTH: dict[str, float] = {"pd-standard": 0.04, "pd-balanced": 0.10, "pd-ssd": 0.17}

# GKE's built-in StorageClasses and the disk each provisions; `standard-rwo` is the default class, the one a claim
# without storageClassName gets.
STORAGE_CLASS_DISKS: dict[str, DiskType] = {
    "standard-rwo": "pd-balanced",
    "premium-rwo": "pd-ssd",
    "standard": "pd-standard",
}
DEFAULT_STORAGE_CLASS = "standard-rwo"


class ServicePrices(Model):
    """The prices of the bill's other lines (us-central1, list prices as of 2025-03); each is overridable per stack
    under `catalogue.prices`."""

    # GKE pricing: a flat fee per cluster, Standard or Autopilot, zonal or regional.
    cluster_fee_usd_hour: float = Field(0.10, ge=0, description="GKE cluster management fee, USD per cluster-hour")
    # GKE pricing, free tier: one billing account's monthly credit; it applies to zonal and Autopilot clusters only.
    free_tier_credit_usd_month: float = Field(
        74.40, ge=0, description="GKE free-tier credit per billing account, USD per month (zonal clusters only)"
    )
    # Cloud Load Balancing: forwarding rules are billed per project and region, the first five at one flat rate.
    forwarding_rules_first5_usd_hour: float = Field(
        0.025, ge=0, description="up to five forwarding rules in a region, USD per hour"
    )
    forwarding_rule_extra_usd_hour: float = Field(
        0.01, ge=0, description="each forwarding rule beyond five in a region, USD per hour"
    )
    # Cloud NAT: per VM that uses the gateway, capped at 32 VMs; data processing ($0.045/GiB) depends on traffic.
    nat_vm_usd_hour: float = Field(0.0014, ge=0, description="Cloud NAT gateway per VM using it, USD per hour")
    nat_max_usd_hour: float = Field(0.044, ge=0, description="Cloud NAT gateway at 32 VMs and more, USD per hour")
    # VPC pricing, external IPv4 addresses.
    external_ip_usd_hour: float = Field(
        0.005, ge=0, description="an external IP in use by a VM or a NAT gateway, USD per hour"
    )
    external_ip_spot_usd_hour: float = Field(0.0025, ge=0, description="an external IP on a spot VM, USD per hour")
    external_ip_unused_usd_hour: float = Field(
        0.01, ge=0, description="a reserved external IP that nothing uses, USD per hour"
    )
    external_ip_forwarding_rule_usd_hour: float = Field(
        0.0, ge=0, description="an external IP used by a forwarding rule, USD per hour (not charged)"
    )

    def forwarding_rules_usd_hour(self, rules: int) -> float:
        if rules <= 0:
            return 0.0
        return self.forwarding_rules_first5_usd_hour + max(0, rules - 5) * self.forwarding_rule_extra_usd_hour

    def nat_gateway_usd_hour(self, vms: int) -> float:
        return min(vms * self.nat_vm_usd_hour, self.nat_max_usd_hour) if vms > 0 else 0.0


def disk_gb_billed(size_mib: int) -> int:
    """The GB a claim of `size_mib` is billed for: the PD CSI driver rounds a claim up to whole GiB (and Compute
    Engine's "GB" of disk pricing is a GiB)."""
    return max(1, math.ceil(size_mib / 1024))


# Boot disks. GKE refuses a node boot disk under 10 GB (the node pool API's diskSizeGb minimum, documented with
# `gcloud container node-pools create --disk-size`). What a node's disk must also hold is the practical floor below.
BOOT_DISK_MIN_GB = 10
# The most pods kube-scheduler places on a GKE Standard node by default (the cluster's default maximum Pods per
# node, documented with "Configure maximum Pods per node"): what bounds one node's share of the logs and emptyDirs.
GKE_MAX_PODS_PER_NODE = 110


def gke_ephemeral_allocatable_gib(disk_gb: int) -> float:
    """The local ephemeral storage a node with a `disk_gb` boot disk offers pods (GKE's "local ephemeral storage
    reservation", About GKE node sizing): the disk less the eviction threshold, 10 % of it, and the system
    reservation, min(50 % of it, 6 GiB + 35 % of it, 100 GiB). Under 40 GB that leaves 40 % of the disk."""
    eviction = 0.10 * disk_gb
    system = min(0.50 * disk_gb, 6 + 0.35 * disk_gb, 100)
    return disk_gb - eviction - system


class BootDiskFacts(Model):
    """What one node's boot disk holds besides the system's reservation; each figure is overridable per stack under
    `catalogue.boot_disk`. The floor counts every pod of the stack on one node, as if nothing else ran: conservative,
    since any pod may land on any node."""

    # An allowance, not a measurement: the stack's images (the app's, Prometheus, Grafana, Traefik, Alertmanager,
    # the exporters, redis) and GKE's own DaemonSets' add up to 2-3 GiB unpacked; the kubelet only removes unused
    # images above 85 % disk use (imageGCHighThresholdPercent), so a rollout holds the old and the new image at once.
    images_gib: float = Field(
        6.0, gt=0, description="container images a node holds, GiB (the stack's and GKE's, two versions of each)"
    )
    # The kubelet rotates each container's log at containerLogMaxSize (10Mi) and keeps containerLogMaxFiles (5):
    # GKE's defaults (node system configuration, kubelet options).
    container_log_mib: int = Field(
        50, gt=0, description="log files the kubelet keeps per container, MiB (10Mi × 5 files)"
    )
    # GKE's own per-node containers: kube-proxy, fluentbit-gke (2), gke-metrics-agent (2), pdcsi-node (3), netd and
    # the metadata server; counted for their logs.
    system_containers: int = Field(10, ge=0, description="GKE's own containers on every node (their logs count too)")


# Resource-based committed use discounts (Compute Engine, "Committed use discounts", resource-based commitments for
# general-purpose machine series, as of 2025-03): a commitment buys vCPUs and memory of one series in one region for
# 1 or 3 years, billed every month of the term whether the machines run or not, at the on-demand price less these
# fractions. It covers the machine, not its persistent disks, and never spot VMs (which are not eligible).
COMMITMENT_DISCOUNTS: dict[str, dict[CommitmentTerm, float]] = {
    "e2": {"1y": 0.37, "3y": 0.55},
    "n2d": {"1y": 0.37, "3y": 0.55},
    "t2d": {"1y": 0.37, "3y": 0.55},
}
COMMITMENT_YEARS: dict[CommitmentTerm, int] = {"1y": 1, "3y": 3}


def machine_series(machine_type: str) -> str:
    """The series a machine type belongs to, which a commitment is bought for: `e2-standard-2` → `e2`."""
    return machine_type.split("-", 1)[0]
