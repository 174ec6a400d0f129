"""The GKE node pool the workloads run on, sized by the sizing plan, and the least-privilege identity of its nodes.

The component owns the node pool, a service account dedicated to its nodes and that account's project roles: the
minimum GKE documents for a node service account, so a compromised node holds no more than it needs.

The pool has an explicit GKE name (`NodePool.pool_name`, not a Pulumi auto-name with a random suffix), so the
workloads can be pinned to it: GKE labels every node `cloud.google.com/gke-nodepool=<pool name>`, and on a shared
cluster a pod without that nodeSelector may land on another team's pool the plan never sized.
"""

from __future__ import annotations

import re

import pulumi
import pulumi_gcp as gcp
from pydantic import ConfigDict, Field, model_validator

from components.cluster import project_id
from sizing.config.nodes import NodePoolConfig
from sizing.core.model import Model
from sizing.plan.pool_name import POOL_NAME_PATTERN
from sizing.plan.types import NodePlan

# The one role GKE documents for a least-privilege node service account: write logs and metrics, report resource
# metadata and autoscaling signals. The images are public (ghcr.io, Docker Hub, pulled through Cloud NAT), so no
# registry role either.
NODE_ROLES: tuple[str, ...] = ("roles/container.defaultNodeServiceAccount",)

# Access is decided by the service account's IAM roles alone; the legacy access scopes stay wide open.
OAUTH_SCOPES: tuple[str, ...] = ("https://www.googleapis.com/auth/cloud-platform",)

_ACCOUNT_ID = re.compile(r"^[a-z]([-a-z0-9]{4,28}[a-z0-9])$")


class NodePoolArgs(Model):
    """Where the node pool goes, and its sizes: the sizing plan's node counts and the stack's node pool config."""

    # pulumi.Output and resource fields: pydantic checks their type, not their content.
    model_config = ConfigDict(arbitrary_types_allowed=True)

    cluster_name: str | pulumi.Output[str] = Field(description="name of the GKE cluster the pool joins")
    location: str = Field(description="the cluster's location: a region (regional) or a zone (zonal)")
    regional: bool = Field(description="the cluster is regional: autoscaling limits are totals over its zones")
    nodes: NodePlan = Field(description="the sizing plan's node pool: autoscaler minimum and maximum")
    pool: NodePoolConfig = Field(description="the stack's node pool config: machine type, disk, spot, surge")
    project: str | None = Field(None, description="GCP project (None: the gcp provider's project, gcp:project)")
    pool_name: str | None = Field(
        None,
        pattern=POOL_NAME_PATTERN,
        description="GKE name of the node pool, the value of its nodes' cloud.google.com/gke-nodepool label "
        "(None: the component name). Changing it replaces the pool; change it along with any other change that "
        "replaces the pool, since the new pool is created before the old one goes and two cannot share a name",
    )

    @model_validator(mode="after")
    def _plan_is_of_this_pool(self) -> NodePoolArgs:
        if (self.nodes.machine_type, self.nodes.spot) != (self.pool.machine_type, self.pool.spot):
            raise ValueError(
                f"the node plan is for {self.nodes.machine_type} (spot={self.nodes.spot}), the pool config is "
                f"{self.pool.machine_type} (spot={self.pool.spot}): plan the nodes from this config"
            )
        if self.pool.surge_nodes < 1:
            # GKE refuses max_surge 0 with max_unavailable 0, and upgrades must never take capacity away.
            raise ValueError("nodes.surge_nodes must be 1 or more: node upgrades surge instead of draining")
        return self


class NodePool(pulumi.ComponentResource):
    """An autoscaled GKE node pool sized by the sizing plan, run by its own least-privilege service account."""

    pool_name: str
    service_account: gcp.serviceaccount.Account
    iam_members: dict[str, gcp.projects.IAMMember]
    node_pool: gcp.container.NodePool

    def __init__(self, name: str, args: NodePoolArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Checked before anything is registered: a bad name fails the program, not a half-built component.
        account_id = f"{name}-nodes"
        if not _ACCOUNT_ID.match(account_id):
            raise ValueError(
                f"node pool name {name!r} gives service account id {account_id!r}: it must be 6 to 30 characters "
                "of a-z, 0-9 and -, start with a letter and end with a letter or digit"
            )
        pool_name = args.pool_name or name
        if not re.match(POOL_NAME_PATTERN, pool_name):
            raise ValueError(
                f"node pool name {pool_name!r} is no GKE node pool name: at most 40 characters of a-z, 0-9 and -, "
                "starting with a letter and ending with a letter or digit (give pool_name)"
            )
        super().__init__("hyperstudy:nodepool:NodePool", name, None, opts)
        nodes, pool = args.nodes, args.pool
        # Known before deployment (not an output): the workloads' nodeSelector is built from it.
        self.pool_name = pool_name
        project = project_id(args.project)

        self.service_account = gcp.serviceaccount.Account(
            f"{name}-nodes",
            account_id=account_id,
            display_name=f"GKE nodes of {name} (least privilege)",
            project=args.project,
            opts=pulumi.ResourceOptions(parent=self),
        )
        member = self.service_account.email.apply(lambda email: f"serviceAccount:{email}")
        self.iam_members = {
            role: gcp.projects.IAMMember(
                f"{name}-{role.removeprefix('roles/').replace('.', '-')}",
                project=project,
                role=role,
                member=member,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for role in NODE_ROLES
        }

        if args.regional:
            # Per-zone min/max would be multiplied by the number of zones: total limits keep the plan's counts
            # for the whole pool, and BALANCED spreads them evenly across the zones.
            autoscaling = gcp.container.NodePoolAutoscalingArgs(
                total_min_node_count=nodes.min, total_max_node_count=nodes.max, location_policy="BALANCED"
            )
            # initial_node_count is per zone too and has no total form: nodes.min in every zone would start the
            # pool at zones × min, above the plan's maximum whenever max < zones × min. One node per zone is the
            # smallest start with a node in every zone; the autoscaler takes the pool to the plan's totals.
            initial_node_count = 1
        else:
            autoscaling = gcp.container.NodePoolAutoscalingArgs(min_node_count=nodes.min, max_node_count=nodes.max)
            initial_node_count = nodes.min

        self.node_pool = gcp.container.NodePool(
            name,
            # Explicit, not auto-named: the pods' nodeSelector names the pool, so its name must be known and stable.
            name=pool_name,
            cluster=args.cluster_name,
            location=args.location,
            project=args.project,
            initial_node_count=initial_node_count,
            autoscaling=autoscaling,
            management=gcp.container.NodePoolManagementArgs(auto_repair=True, auto_upgrade=True),
            node_config=gcp.container.NodePoolNodeConfigArgs(
                machine_type=pool.machine_type,
                disk_size_gb=pool.disk_size_gb,
                disk_type=pool.disk_type,
                spot=pool.spot,
                service_account=self.service_account.email,
                oauth_scopes=list(OAUTH_SCOPES),
                shielded_instance_config=gcp.container.NodePoolNodeConfigShieldedInstanceConfigArgs(
                    enable_secure_boot=True, enable_integrity_monitoring=True
                ),
                # Pods see the Workload Identity metadata server, never the node's own credentials.
                workload_metadata_config=gcp.container.NodePoolNodeConfigWorkloadMetadataConfigArgs(
                    mode="GKE_METADATA"
                ),
                metadata={"disable-legacy-endpoints": "true"},
                labels={"hyperstudy/node-pool": name},
            ),
            # Surge nodes come on top of the pool before old ones drain (the plan's max leaves room for them), so
            # a rolling upgrade never takes capacity away.
            upgrade_settings=gcp.container.NodePoolUpgradeSettingsArgs(
                strategy="SURGE", max_surge=pool.surge_nodes, max_unavailable=0
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                # The autoscaler owns the live node count; a changed initial count would otherwise replace the pool.
                ignore_changes=["initialNodeCount"],
                # The roles are in place before the first node boots and starts writing logs and metrics.
                depends_on=list(self.iam_members.values()),
            ),
        )

        self.register_outputs({"name": self.node_pool.name, "min": nodes.min, "max": nodes.max})
