"""The stack's monthly bill, line by line, from the resources the program creates for it and the catalogue's prices.

Lines: `nodes` (machines, less a committed-use discount where `cost.commitment` takes one, and boot disks at the
minimum), `cluster_fee` (net of the free-tier credit where the stack
takes it), `load_balancer` (the ingress' forwarding rule and its address), `nat` (the gateway and its address),
`volumes` (every persistent volume claim), `node_ips` (external IPs of public nodes). Traffic-priced items (NAT data
processing, egress) depend on use, not on the stack, and are left out: each line's detail says what it holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sizing.core.model import Commitment, DiskType
from sizing.core.quantity import format_mib
from sizing.facts.catalogue import (
    BOOT_DISK_MIN_GB,
    COMMITMENT_YEARS,
    DEFAULT_STORAGE_CLASS,
    GKE_MAX_PODS_PER_NODE,
    HOURS_PER_MONTH,
    disk_gb_billed,
    gke_ephemeral_allocatable_gib,
)
from sizing.plan.types import APP, BillLine, BillRates, Claim, WorkloadPlan

if TYPE_CHECKING:
    from sizing.config.stack import StackConfig


def _usd(hourly: float) -> float:
    return hourly * HOURS_PER_MONTH


@dataclass(frozen=True)
class BootDisk:
    """A node's boot disk: its size and type."""

    size_gb: int
    disk_type: DiskType

    def __str__(self) -> str:
        return f"{self.size_gb} GB {self.disk_type}"


@dataclass(frozen=True)
class NodePrice:
    """One node's monthly price, in parts: the machine (on-demand or spot), the committed-use discount on it (0:
    none) and the boot disk. A commitment covers `committed` nodes: the pool's minimum, billed whether they run or
    not; a node above them is billed on demand."""

    machine_usd_month: float
    discount: float
    disk_usd_month: float
    commitment: Commitment

    @property
    def committed_usd_month(self) -> float:
        """A node the commitment covers (with none, every node)."""
        return self.machine_usd_month * (1 - self.discount) + self.disk_usd_month

    @property
    def on_demand_usd_month(self) -> float:
        """A node above the committed ones."""
        return self.machine_usd_month + self.disk_usd_month

    def pool_usd_month(self, nodes: int, committed: int) -> float:
        """`nodes` nodes with a commitment for `committed`: the committed machines are paid for even when fewer run."""
        if self.discount == 0:
            return nodes * self.committed_usd_month
        idle = max(committed - nodes, 0) * self.machine_usd_month * (1 - self.discount)
        return (
            min(nodes, committed) * self.committed_usd_month
            + max(nodes - committed, 0) * self.on_demand_usd_month
            + idle
        )


def configured_disk(config: StackConfig) -> BootDisk:
    return BootDisk(config.nodes.disk_size_gb, config.nodes.disk_type)


def node_price(
    config: StackConfig,
    machine_type: str,
    spot: bool,
    commitment: Commitment | None = None,
    disk: BootDisk | None = None,
) -> NodePrice:
    """One node of `machine_type` with `disk` (the stack's by default) under `commitment` (the stack's by default).
    Spot nodes are never discounted; a series the catalogue has no discount for is priced on demand."""
    catalogue = config.catalogue
    machine = catalogue.machine_types_merged()[machine_type]
    disk = disk or configured_disk(config)
    term = config.cost.commitment if commitment is None else commitment
    discount = None if spot or term == "none" else catalogue.commitment_discount(machine_type, term)
    return NodePrice(
        machine_usd_month=machine.price_usd_month(spot),
        discount=discount or 0.0,
        disk_usd_month=disk.size_gb * catalogue.disk_price(disk.disk_type),
        commitment="none" if discount is None else term,
    )


def node_usd_month(config: StackConfig, machine_type: str, spot: bool) -> float:
    """One node of `machine_type` at the pool's minimum: the machine (less the stack's committed-use discount) and
    its boot disk, USD per month."""
    return node_price(config, machine_type, spot).committed_usd_month


@dataclass(frozen=True)
class DiskFloor:
    """The smallest boot disk that holds what the stack puts on a node, and the sum that sets it."""

    size_gb: int
    need_gib: float
    detail: str


def boot_disk_floor(config: StackConfig, workloads: Iterable[WorkloadPlan]) -> DiskFloor:
    """The smallest boot disk (whole GB, at least GKE's 10 GB) whose allocatable ephemeral storage holds what the
    busiest node can: the images, the logs of the system containers, and the logs and emptyDirs of the pods a node
    may run (`catalogue.boot_disk`). A node runs every DaemonSet's pod and at most `GKE_MAX_PODS_PER_NODE` pods in
    all; the bound takes the pods with the most logs and scratch first, so a small stack counts every pod on one
    node (any node may have to hold them all after losses) and a large one no more than a node can schedule."""
    facts = config.catalogue.boot_disk
    daemons: list[tuple[float, int, int]] = []
    others: list[tuple[float, int, int]] = []
    for workload in workloads:
        containers = 1 + len(workload.sidecars)
        scratch = 0
        app = config.workloads.get(workload.name)
        if app is not None and workload.source == APP:
            scratch = sum(volume.size_limit for volume in app.app.scratch)
        pod = (containers * facts.container_log_mib + scratch, containers, scratch)
        if workload.per_node:
            daemons.append(pod)
        else:
            others += [pod] * workload.replicas
    room = max(0, GKE_MAX_PODS_PER_NODE - len(daemons))
    on_node = daemons + sorted(others, reverse=True)[:room]
    containers = facts.system_containers + sum(pod[1] for pod in on_node)
    scratch_mib = sum(pod[2] for pod in on_node)
    logs_gib = containers * facts.container_log_mib / 1024
    need = facts.images_gib + logs_gib + scratch_mib / 1024
    size = BOOT_DISK_MIN_GB
    while gke_ephemeral_allocatable_gib(size) < need:
        size += 1
    detail = (
        f"images {facts.images_gib:g} GiB + logs of {containers} containers {logs_gib:.2f} GiB + emptyDirs "
        f"{format_mib(scratch_mib)} = {need:.2f} GiB of GKE's allocatable ephemeral storage, which a {size} GB disk "
        f"offers ({gke_ephemeral_allocatable_gib(size):.2f} GiB)"
    )
    if len(on_node) < len(daemons) + len(others):
        detail += f"; a node runs {GKE_MAX_PODS_PER_NODE} pods at most, of the stack's {len(daemons) + len(others)}"
    return DiskFloor(size_gb=size, need_gib=round(need, 2), detail=detail)


def commitment_note(term: Commitment) -> str:
    """What a commitment binds the billing account to, said wherever one is priced."""
    years = COMMITMENT_YEARS[term]  # type: ignore[index]
    return f"a {term} commitment binds the billing account to pay for it for {years} year{'s' if years > 1 else ''}"


def claims(config: StackConfig) -> list[Claim]:
    """Every persistent volume claim the stack creates: the app's StatefulSet volumes (the default StorageClass)
    and, when the program installs the monitoring stack, Prometheus' and Alertmanager's."""
    found = []
    for name, workload in config.workloads.items():
        storage = workload.app.storage
        if storage is not None:
            found.append(
                Claim(
                    owner=name,
                    claims=workload.replicas,
                    size_mib=storage.size,
                    storage_class=DEFAULT_STORAGE_CLASS,
                )
            )
    monitoring = config.monitoring
    if monitoring.install_stack:
        for name, volume in monitoring.storage.volumes().items():
            found.append(
                Claim(
                    owner=name,
                    claims=monitoring.components.by_name(name).replicas or 1,
                    size_mib=volume.size,
                    storage_class=volume.storage_class,
                )
            )
    return found


def load_balancers(config: StackConfig) -> list[str]:
    """The workloads whose Service is a LoadBalancer: each is one forwarding rule."""
    return [name for name, workload in config.workloads.items() if workload.app.service_type == "LoadBalancer"]


def _nat(config: StackConfig) -> bool:
    """The stack creates a Cloud NAT: private nodes of a cluster it creates, and `cluster.cloud_nat`."""
    cluster = config.cluster
    return cluster is not None and cluster.create and cluster.private_nodes and cluster.cloud_nat


def _public_nodes(config: StackConfig) -> bool:
    """The nodes of a cluster the stack creates have external addresses."""
    cluster = config.cluster
    return cluster is not None and cluster.create and not cluster.private_nodes


def rates(config: StackConfig, machine_type: str, spot: bool) -> BillRates:
    """The terms of `bill` for any node count; `bill(..., nodes)` totals to them at that count."""
    prices = config.catalogue.prices
    ip = prices.external_ip_spot_usd_hour if spot else prices.external_ip_usd_hour
    return BillRates(
        fixed_usd_month=round(sum(line.usd_month for line in bill(config, machine_type, spot, 0)), 2),
        node_ip_usd_month=round(_usd(ip), 4) if _public_nodes(config) else 0.0,
        nat_vm_usd_month=round(_usd(prices.nat_vm_usd_hour), 4) if _nat(config) else 0.0,
        nat_cap_usd_month=round(_usd(prices.nat_max_usd_hour), 4) if _nat(config) else 0.0,
    )


def bill(config: StackConfig, machine_type: str, spot: bool, nodes: int) -> tuple[BillLine, ...]:
    """The monthly bill of the stack on `nodes` nodes of `machine_type`, one line per part (`LINES`)."""
    prices, cluster = config.catalogue.prices, config.cluster
    created = cluster is not None and cluster.create
    price = node_price(config, machine_type, spot)
    per_node = price.committed_usd_month
    pool = config.nodes
    detail = (
        f"{nodes} × {machine_type}{' (spot)' if spot else ''} with a {pool.disk_size_gb} GB "
        f"{pool.disk_type} boot disk, ${per_node:.2f} each"
    )
    if price.commitment != "none":
        detail += (
            f" (the machine ${price.machine_usd_month:.2f} less the {price.commitment} committed-use discount "
            f"{price.discount:.0%}; {commitment_note(price.commitment)})"
        )
    lines = [BillLine(name="nodes", usd_month=round(nodes * per_node, 2), detail=detail)]

    if created:
        fee = _usd(prices.cluster_fee_usd_hour)
        credited = config.cost.free_tier_credit and not cluster.regional
        credit = min(fee, prices.free_tier_credit_usd_month) if credited else 0.0
        detail = f"GKE management fee ${fee:.2f}" + (f" less the free-tier credit ${credit:.2f}" if credit else "")
        if config.cost.free_tier_credit and cluster.regional:
            detail += " (the free-tier credit covers zonal clusters only)"
        lines.append(BillLine(name="cluster_fee", usd_month=round(fee - credit, 2), detail=detail))
    else:
        why = "no cluster in this stack" if cluster is None else "the cluster is not this stack's (cluster.create)"
        lines.append(BillLine(name="cluster_fee", usd_month=0.0, detail=why))

    rules = load_balancers(config)
    lb = _usd(prices.forwarding_rules_usd_hour(len(rules)))
    parts = [f"{len(rules)} forwarding rule(s) ({', '.join(rules)}) ${lb:.2f}"] if rules else ["no LoadBalancer"]
    if cluster is not None:
        # The program reserves the ingress address in every stack; unused, it is billed at the higher rate.
        address = _usd(prices.external_ip_forwarding_rule_usd_hour if rules else prices.external_ip_unused_usd_hour)
        lb += address
        parts.append(
            f"its reserved address ${address:.2f}" if rules else f"the reserved address, unused, ${address:.2f}"
        )
    lines.append(
        BillLine(
            name="load_balancer", usd_month=round(lb, 2), detail=", ".join(parts) + "; data processing not included"
        )
    )

    if _nat(config):
        gateway, address = _usd(prices.nat_gateway_usd_hour(nodes)), _usd(prices.external_ip_usd_hour)
        lines.append(
            BillLine(
                name="nat",
                usd_month=round(gateway + address, 2),
                detail=f"Cloud NAT for {nodes} node(s) ${gateway:.2f} and one NAT address ${address:.2f}; "
                "data processing not included",
            )
        )
    else:
        why = "public nodes need no NAT" if created else "no NAT created by this stack"
        lines.append(BillLine(name="nat", usd_month=0.0, detail=why))

    volumes, parts = 0.0, []
    for claim in claims(config):
        disk = config.catalogue.storage_disk(claim.storage_class)
        gb = disk_gb_billed(claim.size_mib)
        usd = claim.claims * gb * config.catalogue.disk_price(disk) if disk else 0.0
        volumes += usd
        parts.append(
            f"{claim.owner} {claim.claims} × {format_mib(claim.size_mib)} ({gb} GB {disk or 'unpriced'}) ${usd:.2f}"
        )
    lines.append(BillLine(name="volumes", usd_month=round(volumes, 2), detail="; ".join(parts) or "no volumes"))

    if _public_nodes(config):
        rate = prices.external_ip_spot_usd_hour if spot else prices.external_ip_usd_hour
        lines.append(
            BillLine(
                name="node_ips",
                usd_month=round(nodes * _usd(rate), 2),
                detail=f"{nodes} public node address(es) at ${_usd(rate):.2f}",
            )
        )
    else:
        why = "private nodes have no external address" if created else "the referenced cluster's network decides"
        lines.append(BillLine(name="node_ips", usd_month=0.0, detail=why))
    return tuple(lines)
