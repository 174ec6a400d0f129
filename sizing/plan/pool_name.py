"""The GKE node pool's name and the node label that carries it: pure, so the program, the rules (which count the
pool's nodes by that label) and the chart values (which pin pods to it) all derive the same name.
"""

from __future__ import annotations

import hashlib

from sizing.config.nodes import NodePoolConfig
from sizing.config.stack import StackConfig

# A GKE node pool name: an RFC 1035 label of at most 40 characters. It is also the value of the node label below.
POOL_NAME_PATTERN = r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$"
# The label GKE sets on every node to the name of its node pool: what a pod's nodeSelector pins it to a pool with.
GKE_NODE_POOL_LABEL = "cloud.google.com/gke-nodepool"


def versioned_pool_name(base: str, pool: NodePoolConfig) -> str:
    """`<base>-<hash of what recreates the pool>`: a machine type, spot or disk change gets a new pool *name*.

    GKE recreates a pool when node_config changes, and Pulumi creates the replacement before deleting the old
    one; under the same name that create fails. With a new name it succeeds, the pods (pinned by nodeSelector to
    the name) roll onto the new nodes under their PDBs and maxUnavailable 0, and only then is the old pool
    deleted. Sizes and profiles are not in the hash: a rollback never touches the pool.
    """
    recreating = f"{pool.machine_type}|{pool.spot}|{pool.disk_size_gb}|{pool.disk_type}"
    return f"{base}-{hashlib.sha256(recreating.encode()).hexdigest()[:6]}"


def stack_pool_name(config: StackConfig) -> str:
    """The GKE name of the stack's node pool: `<kubernetes.namespace>-<hash>`. The namespace is unique in the
    cluster, so two stacks sharing one cluster never reach for the same pool name (GKE refuses a second), and their
    rules never count each other's nodes. At most 31 + 1 + 6 characters: within GKE's 40."""
    return versioned_pool_name(config.kubernetes.namespace, config.nodes)
