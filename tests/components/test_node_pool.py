"""The node pool component under Pulumi mocks: sizes from the plan, a least-privilege identity, hardened nodes."""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pytest
from pydantic import ValidationError

from components.cluster import GkeCluster, GkeClusterArgs
from components.node_pool import NodePool, NodePoolArgs
from sizing.plan.pool_name import POOL_NAME_PATTERN, versioned_pool_name

NODE_POOL = "gcp:container/nodePool:NodePool"
ACCOUNT = "gcp:serviceaccount/account:Account"
IAM_MEMBER = "gcp:projects/iAMMember:IAMMember"
COMPONENT = "hyperstudy:nodepool:NodePool"

# Spelled out here, not imported: the test is the second reading of GKE's least-privilege node account, the one
# predefined role GKE documents for it (the images are public, so no registry role either).
MINIMAL_NODE_ROLES = {"roles/container.defaultNodeServiceAccount"}


def type_chain(urn: str) -> tuple[list[str], str]:
    """The resource's type after its parents' (`parent$type`), and its name, from `urn:pulumi:<stack>::<project>::…`."""
    _, _, chain, name = urn.split("::", 3)
    return chain.split("$"), name


def node_pool(prod_config, prod_plan, *, cluster=None, name: str = "hyperstudy", **changes: Any) -> NodePool:
    cluster = cluster or prod_config.cluster
    args = {
        "cluster_name": cluster.name,
        "location": cluster.location,
        "regional": cluster.regional,
        "nodes": prod_plan.nodes,
        "pool": prod_config.nodes,
        **changes,
    }
    return NodePool(name, NodePoolArgs(**args))


def settled(component: NodePool) -> pulumi.Output[list[Any]]:
    """Resolves once every child is registered."""
    children = [component.service_account, component.node_pool, *component.iam_members.values()]
    return pulumi.Output.all(component.urn, *(child.urn for child in children))


# Both kinds of location, whichever the prod stack uses.
REGION, ZONE = "us-central1", "us-central1-a"


@pulumi.runtime.test
def test_regional_pool_autoscales_between_the_plans_totals(mocks, ran, prod_config, prod_plan):
    regional = prod_config.cluster.model_copy(update={"location": REGION})
    assert regional.regional
    component = node_pool(prod_config, prod_plan, cluster=regional)

    def check(_):
        pool = mocks.named(NODE_POOL, "hyperstudy").inputs
        assert pool["autoscaling"] == {
            "totalMinNodeCount": prod_plan.nodes.min,
            "totalMaxNodeCount": prod_plan.nodes.max,
            "locationPolicy": "BALANCED",
        }
        assert pool["location"] == REGION
        # Per zone: one node in each zone, not nodes.min in each (that would start above the plan's maximum).
        assert pool["initialNodeCount"] == 1
        ran.append("regional")

    return settled(component).apply(check)


@pulumi.runtime.test
def test_zonal_pool_autoscales_between_the_plans_counts(mocks, ran, prod_config, prod_plan):
    zonal = prod_config.cluster.model_copy(update={"location": ZONE})
    assert not zonal.regional
    component = node_pool(prod_config, prod_plan, cluster=zonal)

    def check(_):
        pool = mocks.named(NODE_POOL, "hyperstudy").inputs
        assert pool["autoscaling"] == {"minNodeCount": prod_plan.nodes.min, "maxNodeCount": prod_plan.nodes.max}
        assert pool["initialNodeCount"] == prod_plan.nodes.min
        assert pool["location"] == zonal.location
        ran.append("zonal")

    return settled(component).apply(check)


@pulumi.runtime.test
def test_machine_disk_and_spot_come_from_the_pool_config(mocks, ran, prod_config, prod_plan):
    spot_pool = prod_config.nodes.model_copy(update={"spot": True, "disk_size_gb": 50, "disk_type": "pd-ssd"})
    spot_plan = prod_plan.nodes.model_copy(update={"spot": True})
    components = [
        node_pool(prod_config, prod_plan),
        node_pool(prod_config, prod_plan, name="hyperstudy-spot", pool=spot_pool, nodes=spot_plan),
    ]

    def check(_):
        for name, pool in (("hyperstudy", prod_config.nodes), ("hyperstudy-spot", spot_pool)):
            node_config = mocks.named(NODE_POOL, name).inputs["nodeConfig"]
            assert node_config["machineType"] == pool.machine_type
            assert node_config["diskSizeGb"] == pool.disk_size_gb
            assert node_config["diskType"] == pool.disk_type
            assert node_config["spot"] is pool.spot
            assert node_config["labels"] == {"hyperstudy/node-pool": name}
        ran.append("config")

    return pulumi.Output.all(*(settled(c) for c in components)).apply(check)


@pulumi.runtime.test
def test_nodes_run_as_a_dedicated_account_with_exactly_the_minimal_roles(mocks, ran, prod_config, prod_plan):
    component = node_pool(prod_config, prod_plan)

    def check(values):
        email = values[0]
        (account,) = mocks.of_type(ACCOUNT)
        assert account.inputs["accountId"] == "hyperstudy-nodes"
        node_config = mocks.named(NODE_POOL, "hyperstudy").inputs["nodeConfig"]
        assert node_config["serviceAccount"] == email
        assert "-compute@developer.gserviceaccount.com" not in email and email != "default"
        members = mocks.of_type(IAM_MEMBER)
        assert sorted(m.inputs["role"] for m in members) == sorted(MINIMAL_NODE_ROLES)
        assert {m.inputs["member"] for m in members} == {f"serviceAccount:{email}"}
        # No project given: the gcp provider's project (the mocks' client config).
        assert {m.inputs["project"] for m in members} == {"test-project"}
        assert set(component.iam_members) == MINIMAL_NODE_ROLES
        ran.append("iam")

    return pulumi.Output.all(component.service_account.email, settled(component)).apply(check)


@pulumi.runtime.test
def test_an_explicit_project_holds_the_pool_and_the_roles(mocks, ran, prod_config, prod_plan):
    component = node_pool(prod_config, prod_plan, project="hyperstudy-prod")

    def check(_):
        assert mocks.named(NODE_POOL, "hyperstudy").inputs["project"] == "hyperstudy-prod"
        assert mocks.named(ACCOUNT, "hyperstudy-nodes").inputs["project"] == "hyperstudy-prod"
        assert {m.inputs["project"] for m in mocks.of_type(IAM_MEMBER)} == {"hyperstudy-prod"}
        ran.append("project")

    return settled(component).apply(check)


@pulumi.runtime.test
def test_nodes_are_shielded_and_pods_never_see_node_credentials(mocks, ran, prod_config, prod_plan):
    component = node_pool(prod_config, prod_plan)

    def check(_):
        node_config = mocks.named(NODE_POOL, "hyperstudy").inputs["nodeConfig"]
        assert node_config["shieldedInstanceConfig"] == {"enableSecureBoot": True, "enableIntegrityMonitoring": True}
        assert node_config["workloadMetadataConfig"] == {"mode": "GKE_METADATA"}
        assert node_config["metadata"] == {"disable-legacy-endpoints": "true"}
        assert node_config["oauthScopes"] == ["https://www.googleapis.com/auth/cloud-platform"]
        ran.append("hardening")

    return settled(component).apply(check)


@pulumi.runtime.test
def test_upgrades_surge_and_never_drop_capacity(mocks, ran, prod_config, prod_plan):
    component = node_pool(prod_config, prod_plan)

    def check(_):
        pool = mocks.named(NODE_POOL, "hyperstudy").inputs
        assert pool["upgradeSettings"] == {
            "strategy": "SURGE",
            "maxSurge": prod_config.nodes.surge_nodes,
            "maxUnavailable": 0,
        }
        # The plan's maximum leaves room for the surge nodes above the minimum.
        assert prod_plan.nodes.max >= prod_plan.nodes.min + prod_config.nodes.surge_nodes
        assert pool["management"] == {"autoRepair": True, "autoUpgrade": True}
        ran.append("upgrades")

    return settled(component).apply(check)


@pulumi.runtime.test
def test_children_options_leave_the_live_count_to_the_autoscaler(mocks, ran, prod_config, prod_plan):
    seen: dict[str, pulumi.ResourceOptions] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        seen[f"{args.type_}::{args.name}"] = args.opts

    component = NodePool(
        "hyperstudy",
        NodePoolArgs(
            cluster_name="hyperstudy",
            location=prod_config.cluster.location,
            regional=True,
            nodes=prod_plan.nodes,
            pool=prod_config.nodes,
        ),
        opts=pulumi.ResourceOptions(transformations=[record]),
    )

    def check(_):
        pool_opts = seen[f"{NODE_POOL}::hyperstudy"]
        assert pool_opts.ignore_changes == ["initialNodeCount"]
        assert set(pool_opts.depends_on) == set(component.iam_members.values())
        children = {key: opts for key, opts in seen.items() if not key.startswith(COMPONENT)}
        assert len(children) == 2 + len(MINIMAL_NODE_ROLES)
        assert all(opts.parent is component for opts in children.values())
        ran.append("options")

    return settled(component).apply(check)


@pulumi.runtime.test
def test_type_token_and_every_child_is_parented_to_the_component(mocks, ran, prod_config, prod_plan):
    component = node_pool(prod_config, prod_plan)

    def check(urns):
        component_urn, *child_urns = urns
        chain, name = type_chain(component_urn)
        assert (chain[-1], name) == (COMPONENT, "hyperstudy")
        children = [(tuple(chain[-2:]), name) for chain, name in map(type_chain, child_urns)]
        assert children[0] == ((COMPONENT, ACCOUNT), "hyperstudy-nodes")
        assert children[1] == ((COMPONENT, NODE_POOL), "hyperstudy")
        assert sorted(children[2:]) == sorted(
            ((COMPONENT, IAM_MEMBER), f"hyperstudy-{role.removeprefix('roles/').replace('.', '-')}")
            for role in MINIMAL_NODE_ROLES
        )
        ran.append("urns")

    return settled(component).apply(check)


@pulumi.runtime.test
def test_the_pool_joins_the_created_cluster(mocks, ran, prod_config, prod_plan):
    cluster = GkeCluster("hyperstudy", GkeClusterArgs(config=prod_config.cluster, maintenance=prod_plan.maintenance))
    component = NodePool(
        "hyperstudy",
        NodePoolArgs(
            cluster_name=cluster.name,
            location=cluster.location,
            regional=prod_config.cluster.regional,
            nodes=prod_plan.nodes,
            pool=prod_config.nodes,
        ),
    )

    def check(_):
        pool = mocks.named(NODE_POOL, "hyperstudy").inputs
        assert pool["cluster"] == prod_config.cluster.name
        assert pool["location"] == prod_config.cluster.location
        ran.append("joined")

    return pulumi.Output.all(cluster.name, settled(component)).apply(check)


@pulumi.runtime.test
def test_the_pool_has_the_component_name_in_gke_by_default(mocks, ran, prod_config, prod_plan):
    # Explicit, so no random suffix: the workloads' nodeSelector names it before it exists.
    component = node_pool(prod_config, prod_plan)
    assert component.pool_name == "hyperstudy"

    def check(_):
        assert mocks.named(NODE_POOL, "hyperstudy").inputs["name"] == "hyperstudy"
        ran.append("default name")

    return settled(component).apply(check)


@pulumi.runtime.test
def test_the_pool_takes_the_gke_name_it_is_given(mocks, ran, prod_config, prod_plan):
    component = node_pool(prod_config, prod_plan, pool_name="hyperstudy-e2-standard-2")
    assert component.pool_name == "hyperstudy-e2-standard-2"

    def check(values):
        pool = mocks.named(NODE_POOL, "hyperstudy").inputs
        assert pool["name"] == "hyperstudy-e2-standard-2"
        # The component's own name still names what belongs to it: the Pulumi resources and the node label.
        assert pool["nodeConfig"]["labels"] == {"hyperstudy/node-pool": "hyperstudy"}
        assert values[0] == "hyperstudy-e2-standard-2"
        ran.append("given name")

    return pulumi.Output.all(component.node_pool.name, settled(component)).apply(check)


@pytest.mark.parametrize("pool_name", ["", "Pool", "pool_a", "1pool", "-pool", "pool-", "p" * 41])
def test_args_refuse_a_pool_name_gke_would_refuse(prod_config, prod_plan, pool_name):
    fields = {"cluster_name": "c", "location": "us-central1", "regional": True}
    with pytest.raises(ValidationError, match="pool_name"):
        NodePoolArgs(**fields, nodes=prod_plan.nodes, pool=prod_config.nodes, pool_name=pool_name)


def test_args_take_a_pool_name_of_forty_characters(prod_config, prod_plan):
    fields = {"cluster_name": "c", "location": "us-central1", "regional": True}
    args = NodePoolArgs(**fields, nodes=prod_plan.nodes, pool=prod_config.nodes, pool_name="p" * 40)
    assert args.pool_name == "p" * 40


@pulumi.runtime.test
def test_a_component_name_that_is_no_pool_name_needs_one_and_registers_nothing(mocks, prod_config, prod_plan):
    # "pool-" makes a valid account id ("pool--nodes") but no GKE pool name (it ends with a dash).
    with pytest.raises(ValueError, match="no GKE node pool name"):
        node_pool(prod_config, prod_plan, name="pool-")
    assert mocks.resources == []
    assert node_pool(prod_config, prod_plan, name="pool-", pool_name="pool").pool_name == "pool"


@pulumi.runtime.test
def test_a_name_that_makes_no_valid_account_id_registers_nothing(mocks, prod_config, prod_plan):
    for name in ("9pool", "Hyperstudy", "hyper_study", "a-node-pool-name-far-too-long-for-gcp"):
        with pytest.raises(ValueError, match="service account id"):
            node_pool(prod_config, prod_plan, name=name)
    assert mocks.resources == []


def test_args_refuse_a_plan_of_another_pool(prod_config, prod_plan):
    other = prod_plan.nodes.model_copy(update={"machine_type": "e2-standard-4"})
    with pytest.raises(ValidationError, match="plan the nodes from this config"):
        NodePoolArgs(cluster_name="c", location="us-central1", regional=True, nodes=other, pool=prod_config.nodes)
    spot = prod_config.nodes.model_copy(update={"spot": True})
    with pytest.raises(ValidationError, match="plan the nodes from this config"):
        NodePoolArgs(cluster_name="c", location="us-central1", regional=True, nodes=prod_plan.nodes, pool=spot)


def test_args_refuse_upgrades_without_surge(prod_config, prod_plan):
    no_surge = prod_config.nodes.model_copy(update={"surge_nodes": 0})
    with pytest.raises(ValidationError, match="surge_nodes must be 1 or more"):
        NodePoolArgs(cluster_name="c", location="us-central1", regional=True, nodes=prod_plan.nodes, pool=no_surge)


def test_args_refuse_unknown_fields_and_are_frozen(prod_config, prod_plan):
    fields = {"cluster_name": "c", "location": "us-central1", "regional": True}
    with pytest.raises(ValidationError, match="extra"):
        NodePoolArgs(**fields, nodes=prod_plan.nodes, pool=prod_config.nodes, zones=3)
    args = NodePoolArgs(**fields, nodes=prod_plan.nodes, pool=prod_config.nodes)
    with pytest.raises(ValidationError, match="frozen"):
        args.regional = False


def test_versioned_pool_name_changes_exactly_with_what_recreates_the_pool(prod_config):
    pool = prod_config.nodes
    name = versioned_pool_name("hyperstudy", pool)
    assert re.fullmatch(POOL_NAME_PATTERN, name) and name.startswith("hyperstudy-")
    recreating = [
        {"machine_type": "e2-standard-4"},
        {"spot": not pool.spot},
        {"disk_size_gb": 200},
        {"disk_type": "pd-ssd"},
    ]
    for change in recreating:
        assert versioned_pool_name("hyperstudy", pool.model_copy(update=change)) != name, change
    in_place = [{"surge_nodes": pool.surge_nodes + 1}, {"overhead": pool.overhead.model_copy(update={"memory": 2048})}]
    for change in in_place:
        assert versioned_pool_name("hyperstudy", pool.model_copy(update=change)) == name, change
