"""The GKE cluster the workloads run on, and the Kubernetes provider every workload resource is deployed through.

With `cluster.create` the component owns the cluster itself (regional or zonal, VPC-native, private nodes, Workload
Identity, the plan's maintenance window and exclusions, no default node pool: `components.node_pool` adds the sized
one). Otherwise it owns nothing in GCP and only points the Kubernetes provider at an existing cluster's kubeconfig
context.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_gcp as gcp
import pulumi_kubernetes as k8s
from pydantic import Field, model_validator

from sizing.config.cluster import ClusterConfig
from sizing.core.model import Model
from sizing.plan.types import MaintenancePlan

# kubectl and the Kubernetes provider get a short-lived token from gcloud at every call: nothing long-lived in state.
AUTH_PLUGIN = "gke-gcloud-auth-plugin"
AUTH_PLUGIN_API_VERSION = "client.authentication.k8s.io/v1beta1"


class GkeClusterArgs(Model):
    """What the cluster component needs: the validated cluster config, the plan's maintenance and, optionally, the
    project."""

    config: ClusterConfig = Field(description="the stack's cluster config: created or referenced, where, how")
    maintenance: MaintenancePlan | None = Field(
        None, description="the plan's maintenance window and exclusions: required when the cluster is created"
    )
    managed_prometheus: bool = Field(
        False,
        description="enable GKE Managed Service for Prometheus on a created cluster (its PodMonitoring/Rules CRDs)",
    )
    project: str | None = Field(
        None, description="GCP project of a created cluster (None: the gcp provider's project, gcp:project)"
    )

    @model_validator(mode="after")
    def _created_cluster_has_its_maintenance(self) -> GkeClusterArgs:
        # Without a policy GKE upgrades whenever it likes: a created cluster never goes without the plan's.
        if self.config.create and (self.maintenance is None or self.maintenance.window is None):
            raise ValueError("a created cluster needs the plan's maintenance window (plan.maintenance)")
        return self


def project_id(project: str | None) -> pulumi.Input[str]:
    """The given project, or the gcp provider's own when none is given (the one resources land in by default)."""
    return project if project is not None else gcp.organizations.get_client_config_output().project


def gke_kubeconfig(name: str, endpoint: str, ca_certificate: str) -> str:
    """A kubeconfig for one GKE cluster that authenticates through the gke-gcloud-auth-plugin exec plugin.

    JSON is valid YAML, and the provider and kubectl both read it.
    """
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {"server": f"https://{endpoint}", "certificate-authority-data": ca_certificate},
                }
            ],
            "users": [
                {
                    "name": name,
                    "user": {
                        "exec": {
                            "apiVersion": AUTH_PLUGIN_API_VERSION,
                            "command": AUTH_PLUGIN,
                            "installHint": f"Install {AUTH_PLUGIN}: gcloud components install {AUTH_PLUGIN}",
                            "provideClusterInfo": True,
                        }
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        }
    )


def maintenance_policy(maintenance: MaintenancePlan) -> gcp.container.ClusterMaintenancePolicyArgs:
    """The plan's recurring window (an RRULE in UTC) and its NO_UPGRADES exclusions, as GKE's maintenance policy."""
    window = maintenance.window
    assert window is not None
    return gcp.container.ClusterMaintenancePolicyArgs(
        recurring_window=gcp.container.ClusterMaintenancePolicyRecurringWindowArgs(
            start_time=window.start_time, end_time=window.end_time, recurrence=window.recurrence
        ),
        maintenance_exclusions=[
            gcp.container.ClusterMaintenancePolicyMaintenanceExclusionArgs(
                exclusion_name=exclusion.name,
                start_time=exclusion.start_time,
                end_time=exclusion.end_time,
                exclusion_options=gcp.container.ClusterMaintenancePolicyMaintenanceExclusionExclusionOptionsArgs(
                    scope=exclusion.scope
                ),
            )
            for exclusion in maintenance.exclusions
        ]
        or None,
    )


class GkeCluster(pulumi.ComponentResource):
    """A created or referenced GKE cluster and the Kubernetes provider for it."""

    name: pulumi.Output[str]
    location: str
    cluster: gcp.container.Cluster | None
    router: gcp.compute.Router | None
    nat: gcp.compute.RouterNat | None
    kubeconfig: pulumi.Output[str] | None
    provider: k8s.Provider

    def __init__(self, name: str, args: GkeClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hyperstudy:cluster:GkeCluster", name, None, opts)
        config = args.config
        self.location = config.location
        self.router, self.nat = None, None

        if config.create:
            assert args.maintenance is not None
            self.cluster = self._create_cluster(name, config, args.project, args.managed_prometheus, args.maintenance)
            if config.private_nodes and config.cloud_nat:
                self._create_nat(name, config, args.project, self.cluster)
            self.name = self.cluster.name
            kubeconfig = pulumi.Output.all(
                self.cluster.name, self.cluster.endpoint, self.cluster.master_auth.cluster_ca_certificate
            ).apply(lambda values: gke_kubeconfig(*values))
            # The CA and endpoint are not secret, but a kubeconfig is treated as a credential wherever it is shown.
            self.kubeconfig = pulumi.Output.secret(kubeconfig)
            provider_source: dict[str, pulumi.Input[str]] = {"kubeconfig": self.kubeconfig}
        else:
            self.cluster = None
            self.name = pulumi.Output.from_input(config.name)
            self.kubeconfig = None
            provider_source = {"context": config.kubeconfig_context}

        # Dashboards are ConfigMaps: updated in place rather than replaced (which would churn every mounting pod).
        self.provider = k8s.Provider(
            f"{name}-k8s",
            enable_config_map_mutable=True,
            **provider_source,
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.register_outputs({"name": self.name, "location": self.location, "created": config.create})

    def _create_nat(
        self, name: str, config: ClusterConfig, project: str | None, cluster: gcp.container.Cluster
    ) -> None:
        # Private nodes have no external IPs: without Cloud NAT they cannot pull images from ghcr.io or Docker Hub.
        region = config.region
        self.router = gcp.compute.Router(
            f"{name}-nat",
            network=config.network,
            region=region,
            project=project,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.nat = gcp.compute.RouterNat(
            f"{name}-nat",
            router=self.router.name,
            region=region,
            project=project,
            nat_ip_allocate_option="AUTO_ONLY",
            # Only the cluster's subnetwork (its nodes, pods and services): other subnetworks of the region keep
            # whatever egress their owners gave them.
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[
                gcp.compute.RouterNatSubnetworkArgs(name=cluster.subnetwork, source_ip_ranges_to_nats=["ALL_IP_RANGES"])
            ],
            log_config=gcp.compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _create_cluster(
        self,
        name: str,
        config: ClusterConfig,
        project: str | None,
        managed_prometheus: bool,
        maintenance: MaintenancePlan,
    ) -> gcp.container.Cluster:
        workload_pool = pulumi.Output.from_input(project_id(project)).apply(lambda p: f"{p}.svc.id.goog")
        private_cluster_config = (
            gcp.container.ClusterPrivateClusterConfigArgs(
                enable_private_nodes=True,
                # Nodes are private; the control plane keeps its public endpoint so Pulumi and kubectl reach it.
                enable_private_endpoint=False,
                master_ipv4_cidr_block=config.master_ipv4_cidr_block,
            )
            if config.private_nodes
            else None
        )
        return gcp.container.Cluster(
            name,
            name=config.name,
            project=project,
            # A region gives a regional (multi-zone) control plane and node pools; a zone gives a zonal cluster.
            location=config.location,
            network=config.network,
            subnetwork=config.subnetwork,
            release_channel=gcp.container.ClusterReleaseChannelArgs(channel=config.release_channel),
            # GKE cannot create a cluster without a node pool; the default one is dropped for the sized NodePool.
            remove_default_node_pool=True,
            initial_node_count=1,
            networking_mode="VPC_NATIVE",
            # No range names or CIDRs: GKE creates the pod and service secondary ranges itself.
            ip_allocation_policy=gcp.container.ClusterIpAllocationPolicyArgs(stack_type="IPV4"),
            private_cluster_config=private_cluster_config,
            # Without authorized networks the public endpoint answers anyone (who still needs credentials).
            master_authorized_networks_config=(
                gcp.container.ClusterMasterAuthorizedNetworksConfigArgs(
                    cidr_blocks=[
                        gcp.container.ClusterMasterAuthorizedNetworksConfigCidrBlockArgs(cidr_block=cidr)
                        for cidr in config.master_authorized_networks
                    ]
                )
                if config.master_authorized_networks
                else None
            ),
            workload_identity_config=gcp.container.ClusterWorkloadIdentityConfigArgs(workload_pool=workload_pool),
            # Node pool autoscaling only: the sizing plan picks the machine type, so node auto-provisioning stays
            # off. BALANCED by default: OPTIMIZE_UTILIZATION empties nodes sooner, which suits batch work, not pods
            # holding live sessions.
            cluster_autoscaling=gcp.container.ClusterClusterAutoscalingArgs(
                enabled=False, autoscaling_profile=config.autoscaling_profile
            ),
            maintenance_policy=maintenance_policy(maintenance),
            enable_shielded_nodes=True,
            # What the workloads' objects need from the cluster itself: the VPA recommender for their
            # VerticalPodAutoscalers, Dataplane V2 to enforce their NetworkPolicies (default deny, redis only from
            # its clients), and, behind the stack's switch, Managed Prometheus for PodMonitoring and ClusterRules.
            vertical_pod_autoscaling=gcp.container.ClusterVerticalPodAutoscalingArgs(enabled=True),
            datapath_provider="ADVANCED_DATAPATH",
            monitoring_config=gcp.container.ClusterMonitoringConfigArgs(
                enable_components=["SYSTEM_COMPONENTS"],
                managed_prometheus=gcp.container.ClusterMonitoringConfigManagedPrometheusArgs(
                    enabled=managed_prometheus
                ),
            ),
            deletion_protection=config.deletion_protection,
            opts=pulumi.ResourceOptions(parent=self),
        )
