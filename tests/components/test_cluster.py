"""The cluster component under Pulumi mocks: a created cluster's settings, a referenced one, and the k8s provider."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pydantic import ValidationError

from components.cluster import GkeCluster, GkeClusterArgs
from sizing.config.cluster import ClusterConfig
from sizing.config.loader import parse_stack_config, read_stack_values
from sizing.plan.maintenance import plan_maintenance

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "hyperstudy-infra"
CLUSTER = "gcp:container/cluster:Cluster"
K8S_PROVIDER = "pulumi:providers:kubernetes"
COMPONENT = "hyperstudy:cluster:GkeCluster"
ROUTER = "gcp:compute/router:Router"
ROUTER_NAT = "gcp:compute/routerNat:RouterNat"


@pytest.fixture
def prod_values() -> dict[str, Any]:
    """Prod's raw config values, a copy a test may change before validating them as the program does."""
    return copy.deepcopy(read_stack_values(ROOT / "Pulumi.prod.yaml", PROJECT))


def tail(urn: str, types: int = 2) -> tuple[tuple[str, ...], str]:
    """The last `types` of the URN's type chain (`parent$type`) and the resource's name."""
    _, _, chain, name = urn.split("::", 3)
    return tuple(chain.split("$")[-types:]), name


def referenced(config: ClusterConfig, context: str = "gke_hyperstudy-prod_us-central1_hyperstudy") -> ClusterConfig:
    """The same cluster, referenced through a kubeconfig context instead of created (validated like the stack's)."""
    return ClusterConfig.model_validate({**config.model_dump(), "create": False, "kubeconfig_context": context})


def secret_flag(output: pulumi.Output[str]) -> pulumi.Output[bool]:
    return pulumi.Output.from_input(output.is_secret())


@pulumi.runtime.test
def test_created_cluster_is_private_vpc_native_with_workload_identity(mocks, ran, prod_config, prod_plan):
    config = prod_config.cluster
    assert config.create
    component = GkeCluster("hyperstudy", GkeClusterArgs(config=config, maintenance=prod_plan.maintenance))

    def check(_):
        (cluster,) = mocks.of_type(CLUSTER)
        inputs = cluster.inputs
        assert inputs["name"] == config.name
        assert inputs["location"] == config.location
        assert inputs["releaseChannel"] == {"channel": config.release_channel}
        assert inputs["workloadIdentityConfig"] == {"workloadPool": "test-project.svc.id.goog"}
        assert inputs["networkingMode"] == "VPC_NATIVE"
        # No range names or CIDRs: GKE creates the secondary ranges.
        policy = inputs["ipAllocationPolicy"]
        assert not {"clusterSecondaryRangeName", "servicesSecondaryRangeName"} & set(policy)
        assert not {"clusterIpv4CidrBlock", "servicesIpv4CidrBlock"} & set(policy)
        assert inputs["privateClusterConfig"] == {
            "enablePrivateNodes": True,
            "enablePrivateEndpoint": False,
            "masterIpv4CidrBlock": config.master_ipv4_cidr_block,
        }
        assert inputs["network"] == config.network
        assert inputs["enableShieldedNodes"] is True
        assert inputs["deletionProtection"] is config.deletion_protection
        assert inputs["removeDefaultNodePool"] is True
        assert inputs["initialNodeCount"] == 1
        assert "nodePools" not in inputs and "nodeConfig" not in inputs
        ran.append("created")

    return pulumi.Output.all(component.name, component.provider.urn).apply(check)


@pytest.mark.parametrize(("given", "profile"), [(None, "BALANCED"), ("OPTIMIZE_UTILIZATION", "OPTIMIZE_UTILIZATION")])
@pulumi.runtime.test
def test_autoscaling_profile_follows_the_config_without_node_auto_provisioning(
    mocks, ran, prod_values, prod_plan, given, profile
):
    if given is not None:
        prod_values["cluster"]["autoscaling_profile"] = given
    config = parse_stack_config(prod_values, PROJECT).cluster
    component = GkeCluster("hyperstudy", GkeClusterArgs(config=config, maintenance=prod_plan.maintenance))

    def check(_):
        autoscaling = mocks.named(CLUSTER, "hyperstudy").inputs["clusterAutoscaling"]
        assert autoscaling == {"enabled": False, "autoscalingProfile": profile}
        ran.append(profile)

    return component.name.apply(check)


@pulumi.runtime.test
def test_the_maintenance_window_is_the_plans_rrule_in_utc(mocks, ran, prod_config, prod_plan):
    window = prod_plan.maintenance.window
    component = GkeCluster("hyperstudy", GkeClusterArgs(config=prod_config.cluster, maintenance=prod_plan.maintenance))

    def check(_):
        policy = mocks.named(CLUSTER, "hyperstudy").inputs["maintenancePolicy"]
        # Prod has no windows: the default, 6 hours every day from 06:00 UTC, and no exclusion.
        assert policy == {
            "recurringWindow": {
                "startTime": "2024-01-01T06:00:00Z",
                "endTime": "2024-01-01T12:00:00Z",
                "recurrence": "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU",
            }
        }
        recurring = policy["recurringWindow"]
        assert (window.start_time, window.end_time, window.recurrence) == (
            recurring["startTime"],
            recurring["endTime"],
            recurring["recurrence"],
        )
        ran.append("window")

    return component.name.apply(check)


@pulumi.runtime.test
def test_one_off_windows_become_no_upgrades_exclusions(mocks, ran, prod_values):
    prod_values["capacity"]["schedule"] = [
        {
            "name": "open-day",
            "once": {"start": "2027-06-05T10:00:00+02:00", "end": "2027-06-05T13:00:00+02:00"},
            "experiments": {"small": 2},
            "lead_minutes": 20,
        },
        {
            "name": "passed",
            "once": {"start": "2026-06-05T10:00:00+02:00", "end": "2026-06-05T13:00:00+02:00"},
            "experiments": {"small": 2},
        },
    ]
    config = parse_stack_config(prod_values, PROJECT)
    maintenance = plan_maintenance(config, datetime(2026, 12, 5, tzinfo=UTC))
    component = GkeCluster("hyperstudy", GkeClusterArgs(config=config.cluster, maintenance=maintenance))

    def check(_):
        policy = mocks.named(CLUSTER, "hyperstudy").inputs["maintenancePolicy"]
        # From an hour before the scale-up (20 minutes before 08:00 UTC) to the scale-down (15 minutes after 11:00
        # UTC); the window that has passed has none.
        assert policy["maintenanceExclusions"] == [
            {
                "exclusionName": "open-day",
                "startTime": "2027-06-05T06:40:00Z",
                "endTime": "2027-06-05T11:15:00Z",
                "exclusionOptions": {"scope": "NO_UPGRADES"},
            }
        ]
        ran.append("exclusions")

    return component.name.apply(check)


def test_a_created_cluster_is_refused_without_the_plans_maintenance(prod_config):
    with pytest.raises(ValidationError, match="maintenance window"):
        GkeClusterArgs(config=prod_config.cluster)


@pulumi.runtime.test
def test_an_explicit_project_names_the_workload_pool(mocks, ran, prod_config, prod_plan):
    component = GkeCluster(
        "hyperstudy",
        GkeClusterArgs(config=prod_config.cluster, maintenance=prod_plan.maintenance, project="hyperstudy-prod"),
    )

    def check(_):
        inputs = mocks.named(CLUSTER, "hyperstudy").inputs
        assert inputs["project"] == "hyperstudy-prod"
        assert inputs["workloadIdentityConfig"] == {"workloadPool": "hyperstudy-prod.svc.id.goog"}
        ran.append("project")

    return component.name.apply(check)


@pulumi.runtime.test
def test_zonal_and_public_node_variants_follow_the_config(mocks, ran, prod_config, prod_plan):
    config = prod_config.cluster.model_copy(
        update={"location": f"{prod_config.cluster.location}-b", "private_nodes": False, "subnetwork": "nodes"}
    )
    assert not config.regional
    component = GkeCluster("hyperstudy", GkeClusterArgs(config=config, maintenance=prod_plan.maintenance))

    def check(_):
        inputs = mocks.named(CLUSTER, "hyperstudy").inputs
        assert inputs["location"] == config.location
        assert inputs["subnetwork"] == "nodes"
        assert "privateClusterConfig" not in inputs
        # Public nodes reach registries themselves: no NAT.
        assert not mocks.of_type(ROUTER_NAT)
        ran.append("variant")

    return pulumi.Output.all(component.name, component.provider.urn).apply(check)


@pytest.mark.parametrize(("location", "region"), [("us-central1", "us-central1"), ("europe-west1-b", "europe-west1")])
@pulumi.runtime.test
def test_private_nodes_get_cloud_nat_in_the_clusters_region(mocks, ran, prod_config, prod_plan, location, region):
    config = prod_config.cluster.model_copy(update={"location": location})
    component = GkeCluster("hyperstudy", GkeClusterArgs(config=config, maintenance=prod_plan.maintenance))
    assert component.nat is not None and component.router is not None

    def check(_):
        (router,) = mocks.of_type(ROUTER)
        (nat,) = mocks.of_type(ROUTER_NAT)
        assert router.inputs["region"] == nat.inputs["region"] == region
        assert router.inputs["network"] == config.network
        # The cluster's subnetwork only, every range of it (nodes, pods, services), not the region's others.
        assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
        (subnetwork,) = nat.inputs["subnetworks"]
        assert subnetwork["sourceIpRangesToNats"] == ["ALL_IP_RANGES"]
        (cluster,) = mocks.of_type("gcp:container/cluster:Cluster")
        assert subnetwork["name"].endswith(f"/subnetworks/{cluster.inputs['network']}")
        ran.append(region)

    return pulumi.Output.all(component.name, component.nat.urn).apply(check)


@pulumi.runtime.test
def test_no_nat_when_the_network_already_has_one(mocks, ran, prod_config, prod_plan):
    config = prod_config.cluster.model_copy(update={"cloud_nat": False})
    component = GkeCluster("hyperstudy", GkeClusterArgs(config=config, maintenance=prod_plan.maintenance))
    assert component.nat is None and component.router is None

    def check(_):
        assert mocks.of_type(CLUSTER) and not mocks.of_type(ROUTER) and not mocks.of_type(ROUTER_NAT)
        ran.append("no-nat")

    return pulumi.Output.all(component.name).apply(check)


@pytest.mark.parametrize("managed", [False, True])
@pulumi.runtime.test
def test_created_cluster_provides_what_the_workloads_need(mocks, ran, prod_config, prod_plan, managed):
    component = GkeCluster(
        "hyperstudy",
        GkeClusterArgs(config=prod_config.cluster, maintenance=prod_plan.maintenance, managed_prometheus=managed),
    )

    def check(_):
        inputs = mocks.named(CLUSTER, "hyperstudy").inputs
        assert inputs["verticalPodAutoscaling"] == {"enabled": True}
        assert inputs["datapathProvider"] == "ADVANCED_DATAPATH"
        assert inputs["monitoringConfig"]["managedPrometheus"] == {"enabled": managed}
        ran.append(managed)

    return pulumi.Output.all(component.name).apply(check)


@pytest.mark.parametrize("networks", [[], ["203.0.113.0/24", "198.51.100.7/32"]])
@pulumi.runtime.test
def test_master_authorized_networks_restrict_the_control_plane(mocks, ran, prod_values, prod_plan, networks):
    prod_values["cluster"]["master_authorized_networks"] = networks
    config = parse_stack_config(prod_values, PROJECT).cluster
    component = GkeCluster("hyperstudy", GkeClusterArgs(config=config, maintenance=prod_plan.maintenance))

    def check(_):
        inputs = mocks.named(CLUSTER, "hyperstudy").inputs
        if networks:
            blocks = [{"cidrBlock": cidr} for cidr in networks]
            assert inputs["masterAuthorizedNetworksConfig"] == {"cidrBlocks": blocks}
        else:
            assert "masterAuthorizedNetworksConfig" not in inputs
        ran.append("authorized")

    return pulumi.Output.all(component.name).apply(check)


@pulumi.runtime.test
def test_kubeconfig_is_a_secret_exec_plugin_config_for_the_cluster(mocks, ran, prod_config, prod_plan):
    component = GkeCluster("hyperstudy", GkeClusterArgs(config=prod_config.cluster, maintenance=prod_plan.maintenance))
    assert component.kubeconfig is not None

    def check(values):
        kubeconfig, is_secret, _ = values
        assert is_secret is True
        config = json.loads(kubeconfig)
        (cluster,) = config["clusters"]
        # The mocks' endpoint and CA (tests/conftest.py) stand for what GKE computes.
        assert cluster["cluster"] == {"server": "https://203.0.113.10", "certificate-authority-data": "Y2EtY2VydA=="}
        (user,) = config["users"]
        assert user["user"]["exec"]["command"] == "gke-gcloud-auth-plugin"
        assert user["user"]["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
        assert "token" not in user["user"] and "client-key-data" not in user["user"]
        assert config["current-context"] == prod_config.cluster.name
        provider = mocks.named(K8S_PROVIDER, "hyperstudy-k8s").inputs
        assert "context" not in provider
        assert provider["enableConfigMapMutable"] in (True, "true")
        ran.append("kubeconfig")

    return pulumi.Output.all(component.kubeconfig, secret_flag(component.kubeconfig), component.provider.urn).apply(
        check
    )


@pulumi.runtime.test
def test_referenced_cluster_creates_nothing_in_gcp_and_uses_the_context(mocks, ran, prod_config):
    config = referenced(prod_config.cluster)
    component = GkeCluster("hyperstudy", GkeClusterArgs(config=config))
    assert component.cluster is None
    assert component.kubeconfig is None
    assert component.location == config.location

    def check(values):
        name, _ = values
        assert name == config.name
        assert not [r for r in mocks.resources if r.typ.startswith("gcp:")]
        provider = mocks.named(K8S_PROVIDER, "hyperstudy-k8s").inputs
        assert provider["context"] == config.kubeconfig_context
        assert "kubeconfig" not in provider
        assert provider["enableConfigMapMutable"] in (True, "true")
        ran.append("referenced")

    return pulumi.Output.all(component.name, component.provider.urn).apply(check)


@pulumi.runtime.test
def test_type_token_and_every_child_is_parented_to_the_component(mocks, ran, prod_config, prod_plan):
    created = GkeCluster("hyperstudy", GkeClusterArgs(config=prod_config.cluster, maintenance=prod_plan.maintenance))
    existing = GkeCluster("existing", GkeClusterArgs(config=referenced(prod_config.cluster)))
    assert created.cluster is not None

    def check(urns):
        created_urn, cluster_urn, provider_urn, existing_urn, existing_provider_urn = urns
        assert tail(created_urn, 1) == ((COMPONENT,), "hyperstudy")
        assert tail(cluster_urn) == ((COMPONENT, CLUSTER), "hyperstudy")
        assert tail(provider_urn) == ((COMPONENT, K8S_PROVIDER), "hyperstudy-k8s")
        assert tail(existing_urn, 1) == ((COMPONENT,), "existing")
        assert tail(existing_provider_urn) == ((COMPONENT, K8S_PROVIDER), "existing-k8s")
        # The referenced cluster's component has no other child.
        assert [r.typ for r in mocks.resources if r.name.startswith("existing")] == [COMPONENT, K8S_PROVIDER]
        ran.append("urns")

    return pulumi.Output.all(
        created.urn, created.cluster.urn, created.provider.urn, existing.urn, existing.provider.urn
    ).apply(check)


def test_args_refuse_unknown_fields(prod_config, prod_plan):
    with pytest.raises(ValidationError, match="extra"):
        GkeClusterArgs(config=prod_config.cluster, maintenance=prod_plan.maintenance, region="us-central1")
