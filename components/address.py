"""The stack's public address: a regional static external IP the ingress LoadBalancer keeps, so the DNS records of
the stack's hosts never break when the Service is recreated."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
from pydantic import Field

from sizing.core.model import Model


class StaticAddressArgs(Model):
    """Where the address lives: the cluster's region (a passthrough load balancer takes a regional address)."""

    region: str = Field(pattern=r"^[a-z]+-[a-z]+[0-9]+$", description="the cluster's region")
    project: str | None = Field(None, description="GCP project (None: the gcp provider's project, gcp:project)")
    description: str = Field(description="what the address is for, shown in the console")
    protect: bool = Field(
        True, description="refuse deleting it in `pulumi destroy` (as the cluster's deletion_protection does)"
    )


class StaticAddress(pulumi.ComponentResource):
    """A reserved regional external IPv4 address; `ip` is the address itself."""

    address: gcp.compute.Address
    ip: pulumi.Output[str]

    def __init__(self, name: str, args: StaticAddressArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hyperstudy:network:StaticAddress", name, None, opts)
        self.address = gcp.compute.Address(
            name,
            region=args.region,
            project=args.project,
            address_type="EXTERNAL",
            network_tier="PREMIUM",
            description=args.description,
            # The DNS records point here: once released, the address may go to someone else's load balancer.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.ip = self.address.address
        self.register_outputs({"ip": self.ip, "region": args.region})
