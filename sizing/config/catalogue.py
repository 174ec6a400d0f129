"""`catalogue`: the stack's overrides of the built-in machine types, disk and service prices
(sizing/facts/catalogue.py).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from sizing.core.errors import PathError
from sizing.core.model import CommitmentTerm, DiskType, MiB, Millicores, Model
from sizing.facts.catalogue import (
    COMMITMENT_DISCOUNTS,
    DISK_USD_GB_MONTH,
    MACHINE_TYPES,
    STORAGE_CLASS_DISKS,
    BootDiskFacts,
    MachineType,
    ServicePrices,
    machine_series,
)


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
    boot_disk: BootDiskFacts = Field(
        default_factory=BootDiskFacts,
        description="what a node's boot disk holds (images, logs), for the boot disk floor (each overridable)",
    )
    commitment_discounts: dict[str, dict[CommitmentTerm, Annotated[float, Field(ge=0, lt=1)]]] = Field(
        default_factory=dict,
        description="committed-use discount by machine series (e.g. e2) and term, a fraction of the on-demand price "
        "(over the built-in ones)",
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

    def commitment_discount(self, machine_type: str, term: CommitmentTerm) -> float | None:
        """The committed-use discount of `machine_type`'s series for `term` (None: the catalogue prices none)."""
        series = machine_series(machine_type)
        given = self.commitment_discounts.get(series, {})
        return given[term] if term in given else COMMITMENT_DISCOUNTS.get(series, {}).get(term)

    def storage_disk(self, storage_class: str) -> DiskType | None:
        """The disk type a StorageClass provisions (None: the class is unknown, so it cannot be priced)."""
        return self.storage_classes.get(storage_class) or STORAGE_CLASS_DISKS.get(storage_class)
