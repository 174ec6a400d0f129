"""`cluster`: the GKE cluster, created by the program or referenced by name, and its maintenance policy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from sizing.config.maintenance import MaintenanceConfig
from sizing.core.errors import PathError
from sizing.core.model import Model


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
        "windows, sizing/plan/maintenance.py)",
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
