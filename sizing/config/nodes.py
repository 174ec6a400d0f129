"""`nodes`: the GKE node pool the workloads run on (machine type, disk, overhead, surge, spot, node loss)."""

from __future__ import annotations

from pydantic import Field, model_validator

from sizing.core.errors import PathError
from sizing.core.model import DiskType, MiB, Millicores, Model


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
