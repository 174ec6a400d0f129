"""Machine types, their prices and what GKE leaves allocatable on them.

Prices are us-central1 on-demand E2 rates over 730 h (derived from the per-vCPU and per-GiB rates; spot
about 70 % below on-demand). They are estimates to be checked against the billing account: every figure
can be overridden per stack under `catalogue`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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


class MachineType(BaseModel):
    """One machine type of the catalogue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vcpu: int = Field(gt=0, description="vCPUs of the machine type")
    memory_mib: int = Field(gt=0, description="memory of the machine type, MiB")
    on_demand_usd_month: float = Field(ge=0, description="on-demand price per node and month (730 h), USD")
    spot_usd_month: float = Field(ge=0, description="spot price per node and month (730 h), USD")

    def allocatable_memory_mib(self) -> int:
        """Memory the kubelet offers to pods, before DaemonSets (rounded down: capacity is never overstated)."""
        if self.memory_mib < 1024:
            reserved = float(_SMALL_MACHINE_RESERVED_MIB)
        else:
            reserved = _tiered(self.memory_mib, _MEMORY_TIERS_MIB)
        return int(self.memory_mib - reserved - _EVICTION_THRESHOLD_MIB)

    def allocatable_cpu_m(self) -> int:
        """CPU the kubelet offers to pods, millicores, before DaemonSets."""
        return int(self.vcpu * 1000 - _tiered(self.vcpu, _CPU_TIERS_M))

    def price_usd_month(self, spot: bool) -> float:
        return self.spot_usd_month if spot else self.on_demand_usd_month


MACHINE_TYPES: dict[str, MachineType] = {
    "e2-medium": MachineType(vcpu=2, memory_mib=4 * 1024, on_demand_usd_month=24.46, spot_usd_month=7.34),
    "e2-standard-2": MachineType(vcpu=2, memory_mib=8 * 1024, on_demand_usd_month=48.91, spot_usd_month=14.67),
    "e2-standard-4": MachineType(vcpu=4, memory_mib=16 * 1024, on_demand_usd_month=97.83, spot_usd_month=29.35),
    "e2-standard-8": MachineType(vcpu=8, memory_mib=32 * 1024, on_demand_usd_month=195.66, spot_usd_month=58.70),
    "e2-highmem-2": MachineType(vcpu=2, memory_mib=16 * 1024, on_demand_usd_month=65.98, spot_usd_month=19.79),
}

# Persistent disk, USD per GB and month (us-central1).
DISK_USD_GB_MONTH: dict[str, float] = {"pd-standard": 0.04, "pd-balanced": 0.10, "pd-ssd": 0.17}
