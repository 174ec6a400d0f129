"""The rendered rules on a real Prometheus server (Debian's 2.42, tests/prometheus_server.py): what the records hold
and which alerts fire, read over the HTTP API, for the fixes of the rules issue.

prod's rules and a second config's (`other_config`: another namespace, formula, limits, thresholds, node price) are
loaded at once, time compressed, as two stacks sharing one Prometheus; Prometheus wants group names unique within a
file, so each group is named `<stack>/<group>` (in a cluster each stack's PrometheusRule is a file of its own). One
cluster feeds both: the series a kube-prometheus-stack scrape gives (kube-state-metrics under its job and instance,
cAdvisor with the pod cgroup `container=""` and the pause container `container="POD"`, the backend's and
pod-router's prom-client metrics), on the pool's nodes and on a node of another pool, with 26 h of history for the
OOM kills and live values for the rest. One server per worker holds every scenario in distinct pods and namespaces;
the cluster-level cases move the whole world to another state with `set_live` and back.

Every expected number is computed here from the config, the plan and the series fed (never read from the rules),
and each case says what the previous rules (`git show 0fd09a3~1:monitoring/rules.py`) did instead, so it
fails against them. Every alert that fires is checked for its severity (config), its stack label (the plan's
stack) and annotations that render.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitoring import names, rules
from monitoring.dashboards import dashboards
from monitoring.dashboards.memory import OOM_TILE_WINDOW
from monitoring.rules import alert_settings
from sizing.config.capacity import UserMix
from sizing.config.loader import load_stack
from sizing.config.stack import StackConfig
from sizing.core.capacity import slots as sizing_slots
from sizing.core.model import ROLES
from sizing.core.quantity import MIB_BYTES as MIB
from sizing.observe import contract
from sizing.plan.build import build_plan
from sizing.plan.pool_name import stack_pool_name
from sizing.plan.types import Plan
from tests.prometheus_server import (
    COMPRESSED_FOR_SECONDS,
    COMPRESSED_INTERVAL_SECONDS,
    Alert,
    PrometheusServer,
    Series,
    compress_rules,
    start_prometheus,
)

# Real programs (Debian's prometheus, promtool, alertmanager): the artifact layer, outside `make unit`.
pytestmark = pytest.mark.programs

ROOT = Path(__file__).resolve().parents[2]
GIB = 1024 * MIB
HOUR = 3600.0
HISTORY = 26 * HOUR  # the OOM tile looks back 24 h: a kill 25 h ago must be in the history
PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")
# V8's spaces as prom-client labels them; --max-old-space-size caps all but the young generation and read-only.
HEAP_SPACES = ("read_only", "new", "old", "code", "large_object", "code_large_object", "new_large_object")
NOT_OLD_GENERATION = {"new", "new_large_object", "read_only"}
# kube-prometheus-stack's scrape labels.
KSM = {"job": "kube-state-metrics", "instance": "10.52.0.7:8080"}
KUBELET = {
    "job": "kubelet",
    "metrics_path": "/metrics/cadvisor",
    "endpoint": "https-metrics",
    "service": "kube-prometheus-stack-kubelet",
}
MONITORING_NS = "monitoring"
OTHER_TEAM_NS = "analytics"
OTHER_POOL = "analytics-pool"
OTHER_NODE_ALLOCATABLE = 28 * GIB  # a bigger machine than the pool's: `max` over nodes is not one of ours
PAUSE_BYTES = 600 * 1024
DEFAULT_USE = 0.5  # working set ÷ limit of a container no case is about
# When the OOM kills happened, seconds from the server's `now`.
KILLED_25H_AGO = -25 * HOUR
KILLED_1H_AGO = -1 * HOUR
KILLED_RECENTLY = -5 * 60.0  # inside HyperStudyContainerOOMKilled's 10 m window
NEAR_LIMIT_TILE = "Containers near their limit"
OOM_TILE = "Containers OOM-killed (24h)"
K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def live(value: float) -> tuple[tuple[float, float], ...]:
    """A value pushed live from the start, with no history (only the OOM cases need the past)."""
    return ((0.0, float(value)),)


def after(offset: float, before: float | None, since: float) -> Any:
    """A series that is `before` until `offset` (None: absent) and `since` from then on, history and live alike."""
    return lambda t: before if t < offset else since


def seconds(duration: str) -> float:
    """A Prometheus duration such as `10m` or `24h`, in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)([smhd])", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return float(sum(int(n) * units[u] for n, u in parts))


def token(seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(K8S_ALPHABET[b % len(K8S_ALPHABET)] for b in digest[:length])


# --- The cluster: nodes, pods, their containers and what each pod's own /metrics serves. ---


@dataclass(frozen=True)
class Stack:
    config: StackConfig
    plan: Plan

    @property
    def ns(self) -> str:
        return self.config.kubernetes.namespace

    @property
    def name(self) -> str:
        return self.plan.stack

    def threshold(self, alert: str) -> float:
        return alert_settings(self.config, alert).threshold

    def mib(self, workload: str, kind: str) -> int:
        w = self.plan.workloads[workload]
        return (w.memory_limit_mib if kind == "limit" else w.memory_request_mib) * MIB


# A surge upgrade's kubelet versions: the pool's before it, and its surge nodes'.
OLD_KUBELET, NEW_KUBELET = "v1.33.0-gke.1000", "v1.33.2-gke.1240000"


@dataclass(frozen=True)
class Node:
    name: str
    pool: str
    machine: str
    allocatable: int
    ip: str
    kubelet_version: str = OLD_KUBELET
    cordoned: bool = False


@dataclass(frozen=True)
class Container:
    name: str
    request: int
    limit: int
    working_set: int
    oom_killed_at: float | None = None  # offset from `now` of its one restart, after an OOM kill


@dataclass(frozen=True)
class App:
    """A pod's prom-client metrics, scraped by its PodMonitor (job `<namespace>/<name>`)."""

    job: str
    container: str
    users: Mapping[str, int] | None = None  # per role; None: the gauge was never set, so no series at all
    rss: int | None = None
    heap: Mapping[str, int] | None = None  # bytes in use per V8 space


@dataclass(frozen=True)
class Pod:
    namespace: str
    name: str
    node: Node
    containers: tuple[Container, ...]
    owner: tuple[str, str]
    ip: str
    phase: str = "Running"
    app: App | None = None
    ready: bool = True  # its Ready condition: False once its node stops reporting

    @property
    def uid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.namespace}/{self.name}"))

    @property
    def active(self) -> bool:
        return self.phase in ("Pending", "Running")

    @property
    def request(self) -> int:
        return sum(c.request for c in self.containers)

    @property
    def working_set(self) -> int:
        return sum(c.working_set for c in self.containers)


@dataclass(frozen=True)
class Controller:
    """A StatefulSet or Deployment: its desired replicas. Its ready (a Deployment's available) replicas are its pods
    that run and are ready, as kube-state-metrics reports them from the controller's status."""

    namespace: str
    name: str
    kind: str
    replicas: int


@dataclass(frozen=True)
class World:
    nodes: tuple[Node, ...]
    pods: tuple[Pod, ...]
    controllers: tuple[Controller, ...] = ()

    def pod(self, namespace: str, name: str) -> Pod:
        (found,) = [p for p in self.pods if (p.namespace, p.name) == (namespace, name)]
        return found

    def pods_of(self, namespace: str, workload: str) -> list[Pod]:
        pattern = re.compile(rf"{re.escape(workload)}-([0-9]+|[a-z0-9]+-[a-z0-9]+)")
        return [p for p in self.pods if p.namespace == namespace and pattern.fullmatch(p.name)]

    def replace(self, old: Pod, **changes: Any) -> World:
        return dataclasses.replace(
            self, pods=tuple(dataclasses.replace(p, **changes) if p == old else p for p in self.pods)
        )

    def without(self, dropped: Sequence[Pod]) -> World:
        return dataclasses.replace(self, pods=tuple(p for p in self.pods if p not in dropped))

    def with_nodes(self, *extra: Node) -> World:
        return dataclasses.replace(self, nodes=(*self.nodes, *extra))

    def replace_node(self, old: Node, **changes: Any) -> World:
        return dataclasses.replace(
            self, nodes=tuple(dataclasses.replace(n, **changes) if n == old else n for n in self.nodes)
        )

    def ready(self, controller: Controller) -> int:
        return sum(p.phase == "Running" and p.ready for p in self.pods_of(controller.namespace, controller.name))

    def pool_nodes(self, pool: str) -> list[Node]:
        return [n for n in self.nodes if n.pool == pool]

    def series(self) -> list[Series]:
        return (
            [s for n in self.nodes for s in node_series(n)]
            + [s for p in self.pods for s in pod_series(p)]
            + [s for c in self.controllers for s in controller_series(c, self.ready(c))]
        )


def node_series(node: Node) -> list[Series]:
    labels = {**KSM, "node": node.name}
    return [
        Series(
            contract.NODE_INFO,
            {
                **labels,
                "internal_ip": node.ip,
                "kubelet_version": node.kubelet_version,
                "container_runtime_version": "containerd://1.7.24",
                "os_image": "Container-Optimized OS from Google",
                "provider_id": f"gce://hyperstudy-prod/us-central1-a/{node.name}",
            },
            live(1),
        ),
        Series(
            contract.NODE_LABELS,
            {
                **labels,
                names.NODE_POOL_LABEL: node.pool,
                "label_node_kubernetes_io_instance_type": node.machine,
                "label_topology_kubernetes_io_zone": "us-central1-a",
            },
            live(1),
        ),
        Series(contract.NODE_ALLOCATABLE, {**labels, "resource": "memory", "unit": "byte"}, live(node.allocatable)),
        Series(contract.NODE_ALLOCATABLE, {**labels, "resource": "cpu", "unit": "core"}, live(1.93)),
        Series(contract.NODE_UNSCHEDULABLE, labels, live(int(node.cordoned))),
    ]


def controller_series(controller: Controller, ready: int) -> list[Series]:
    """kube-state-metrics' desired and ready (StatefulSet) or available (Deployment) replicas of a controller."""
    labels = {**KSM, "namespace": controller.namespace}
    if controller.kind == "StatefulSet":
        labels["statefulset"] = controller.name
        desired, current = contract.STATEFULSET_REPLICAS, contract.STATEFULSET_READY
    else:
        labels["deployment"] = controller.name
        desired, current = contract.DEPLOYMENT_REPLICAS, contract.DEPLOYMENT_AVAILABLE
    return [Series(desired, labels, live(controller.replicas)), Series(current, labels, live(ready))]


def pod_series(pod: Pod) -> list[Series]:
    ksm = {**KSM, "namespace": pod.namespace, "pod": pod.name, "uid": pod.uid}
    kind, owner = pod.owner
    out = [
        Series(
            contract.POD_INFO,
            {
                **ksm,
                "node": pod.node.name,
                "host_ip": pod.node.ip,
                "pod_ip": pod.ip,
                "created_by_kind": kind,
                "created_by_name": owner,
                "priority_class": "",
                "host_network": "false",
            },
            live(1),
        ),
        *(Series(contract.POD_PHASE, {**ksm, "phase": p}, live(p == pod.phase)) for p in PHASES),
    ]
    for c in pod.containers:
        labels = {**ksm, "container": c.name}
        sized = {**labels, "node": pod.node.name}
        out += [
            Series(contract.REQUESTS, {**sized, "resource": "memory", "unit": "byte"}, live(c.request)),
            Series(contract.REQUESTS, {**sized, "resource": "cpu", "unit": "core"}, live(0.05)),
            Series(contract.LIMITS, {**sized, "resource": "memory", "unit": "byte"}, live(c.limit)),
        ]
        if c.oom_killed_at is None:
            out.append(Series(contract.RESTARTS, labels, live(0)))
        else:
            # Restarted once after the kill; kube-state-metrics keeps the last termination reason (OOMKilled, 1)
            # for as long as the container exists.
            out.append(Series(contract.RESTARTS, labels, after(c.oom_killed_at, 0.0, 1.0)))
            out.append(
                Series(contract.LAST_TERMINATED, {**labels, "reason": "OOMKilled"}, after(c.oom_killed_at, None, 1.0))
            )
    if pod.phase == "Running":
        cadvisor = {**KUBELET, "instance": f"{pod.node.ip}:10250", "node": pod.node.name}
        cadvisor |= {"namespace": pod.namespace, "pod": pod.name}
        cgroup = f"/kubepods/burstable/pod{pod.uid}"
        pause = token(pod.name + "/pause", 12)
        out += [
            # The pod cgroup (every container and the pause container) and the pause container itself: noise the
            # rules must drop, or a pod's memory counts two or three times.
            Series(
                contract.WORKING_SET, {**cadvisor, "container": "", "id": cgroup}, live(pod.working_set + PAUSE_BYTES)
            ),
            Series(
                contract.WORKING_SET,
                {**cadvisor, "container": "POD", "id": f"{cgroup}/{pause}", "image": "registry.k8s.io/pause:3.10"},
                live(PAUSE_BYTES),
            ),
        ]
        for c in pod.containers:
            cid = token(f"{pod.name}/{c.name}", 12)
            labels = {**cadvisor, "container": c.name, "id": f"{cgroup}/{cid}", "image": f"example/{c.name}:1"}
            out.append(Series(contract.WORKING_SET, {**labels, "name": cid}, live(c.working_set)))
    if pod.app is not None and pod.phase == "Running":
        app = pod.app
        labels = {"job": app.job, "instance": f"{pod.ip}:9090", "endpoint": "metrics", "namespace": pod.namespace}
        labels |= {"pod": pod.name, "container": app.container}
        if app.users is not None:
            out += [Series(contract.CONNECTED_USERS, {**labels, "role": r}, live(n)) for r, n in app.users.items()]
        if app.rss is not None:
            out.append(Series(contract.PROCESS_RSS, labels, live(app.rss)))
        if app.heap is not None:
            spaces = [
                Series(contract.NODEJS_HEAP_SPACE_USED, {**labels, "space": s}, live(b)) for s, b in app.heap.items()
            ]
            out += [*spaces, Series(contract.NODEJS_HEAP_USED, labels, live(sum(app.heap.values())))]
    return out


# --- The scenarios. ---


def users(mix: UserMix) -> dict[str, int]:
    return {role: getattr(mix, role) for role in ROLES}


def predicted(stack: Stack, pod: Pod) -> int | None:
    """The capacity formula's memory of a backend pod, bytes: None until the pod is scraped."""
    app = pod.app
    if app is None or (app.users is None and app.rss is None):
        return None
    return stack.config.capacity.formula.memory_mib(UserMix(**(app.users or {}))) * MIB


def heap(**mib: float) -> dict[str, int]:
    """V8 spaces in use, MiB (every space prom-client exports; 0.25 MiB where not given)."""
    return {space: round(mib.get(space, 0.25) * MIB) for space in HEAP_SPACES}


class Ips:
    def __init__(self) -> None:
        self.next = 10

    def __call__(self) -> str:
        self.next += 1
        return f"10.52.{self.next // 200}.{self.next % 200 + 2}"


def make_pod(
    namespace: str, workload: str, i: int, kind: str, node: Node, containers: Sequence[Container], ip: str, **more: Any
) -> Pod:
    if kind == "StatefulSet":
        return Pod(namespace, f"{workload}-{i}", node, tuple(containers), (kind, workload), ip, **more)
    if kind == "DaemonSet":
        return Pod(
            namespace, f"{workload}-{token(node.name, 5)}", node, tuple(containers), (kind, workload), ip, **more
        )
    replica_set = f"{workload}-{token(namespace + workload, 10)}"
    name = f"{replica_set}-{token(f'{namespace}/{workload}/{i}', 5)}"
    return Pod(namespace, name, node, tuple(containers), ("ReplicaSet", replica_set), ip, **more)


def plain_container(name: str, request_mib: int, limit_mib: int, use: float = DEFAULT_USE) -> Container:
    return Container(name, request_mib * MIB, limit_mib * MIB, round(use * limit_mib * MIB))


def stack_pods(
    stack: Stack, pool: Sequence[Node], ips: Ips, backend: Sequence[tuple[float, UserMix | None]]
) -> list[Pod]:
    """The stack's workloads as the plan sizes them, and backend pods by (working set ÷ limit or a multiple of the
    prediction, users)."""
    pods = []
    for name, w in sorted(stack.plan.workloads.items()):
        if name == "backend":
            continue
        for i in range(w.replicas):
            container = plain_container(name, w.memory_request_mib, w.memory_limit_mib)
            app = App(f"{stack.ns}/{name}", name) if w.runtime.kind == "nodejs" else None
            pods.append(
                make_pod(
                    stack.ns,
                    name,
                    i,
                    stack.config.workloads[name].app.kind,
                    pool[i % len(pool)],
                    [container],
                    ips(),
                    app=app,
                )
            )
    for i, (working_set, mix) in enumerate(backend):
        container = Container(
            "backend", stack.mib("backend", "request"), stack.mib("backend", "limit"), round(working_set)
        )
        app = App(f"{stack.ns}/backend", "backend", None if mix is None else users(mix), rss=round(working_set * 1.08))
        pods.append(make_pod(stack.ns, "backend", i, "StatefulSet", pool[i % len(pool)], [container], ips(), app=app))
    return pods


def with_heap(pod: Pod, spaces: dict[str, int]) -> dict[str, Any]:
    assert pod.app is not None
    return {"app": dataclasses.replace(pod.app, heap=spaces)}


def with_container(pod: Pod, **changes: Any) -> dict[str, Any]:
    (container,) = pod.containers
    return {"containers": (dataclasses.replace(container, **changes),)}


def with_use(pod: Pod, ratio: float) -> dict[str, Any]:
    """The pod's one container at `ratio` of its limit."""
    (container,) = pod.containers
    return with_container(pod, working_set=round(ratio * container.limit))


def pool_of(stack: Stack, first_ip: int) -> list[Node]:
    """The stack's own node pool at its plan's minimum (each stack's pool is named after its namespace)."""
    name = stack_pool_name(stack.config)
    return [
        Node(
            f"gke-{stack.config.cluster.name}-{name}-{token(name, 8)}-{token(name + str(i), 4)}",
            name,
            stack.config.nodes.machine_type,
            stack.plan.nodes.allocatable_memory_mib * MIB,
            f"10.128.0.{first_ip + i}",
        )
        for i in range(stack.plan.nodes.min)
    ]


def build_world(prod: Stack, staging: Stack) -> World:
    # Two stacks sharing one cluster and one Prometheus, each on its own pool.
    assert stack_pool_name(prod.config) != stack_pool_name(staging.config)
    pool, staging_pool = pool_of(prod, 2), pool_of(staging, 20)
    other = Node(
        f"gke-{prod.config.cluster.name}-{OTHER_POOL}-{token(OTHER_POOL, 8)}-q7wd", OTHER_POOL, "e2-highmem-4",
        OTHER_NODE_ALLOCATABLE, "10.128.0.40",
    )  # fmt: skip
    ips = Ips()
    formula = prod.config.capacity.formula
    limit = prod.mib("backend", "limit")
    video_2_experimenters = UserMix(participant_video=10, experimenter=2)
    small = prod.config.capacity.shapes["small"]
    large = prod.config.capacity.shapes["large"]
    pods = stack_pods(
        prod,
        pool,
        ips,
        [
            (0.92 * limit, large),  # backend-0: near its limit, as predicted for its users
            (0.10 * limit, None),  # backend-1: scraped, no user yet (no hyperstudy_connected_users series)
            (3 * formula.base_mib * MIB, UserMix()),  # backend-2: idle (users gone), far above the base
            (0.5 * formula.memory_mib(small) * MIB, small),  # backend-3: half of its prediction
            (1.5 * formula.memory_mib(video_2_experimenters) * MIB, video_2_experimenters),  # backend-4: 50 % more
        ],
    )
    s_formula = staging.config.capacity.formula
    pods += stack_pods(
        staging,
        staging_pool,
        ips,
        [
            (
                1.05 * s_formula.memory_mib(staging.config.capacity.shapes["small"]) * MIB,
                staging.config.capacity.shapes["small"],
            ),
            (1.05 * s_formula.memory_mib(video_2_experimenters) * MIB, video_2_experimenters),
            (1.1 * s_formula.base_mib * MIB, None),
        ],
    )
    world = World((*pool, *staging_pool, other), tuple(pods))

    # Heap: prod's pod-router pods; a staging one between the two stacks' thresholds.
    cap = prod.plan.workloads["pod-router"].runtime.memory_mib
    router_a, router_b = world.pods_of(prod.ns, "pod-router")
    for pod, spaces, use in (
        (router_a, heap(new=15, old=20, code=1.5, large_object=6, new_large_object=2), 0.85),
        (router_b, heap(new=2, old=0.95 * cap), 0.85),
        (world.pods_of(staging.ns, "pod-router")[0], heap(new=1, old=0.87 * cap), 0.75),
    ):
        world = world.replace(pod, **with_heap(pod, spaces), **with_use(pod, use))

    # Near-limit in staging: above its threshold, below prod's.
    s_frontend = world.pods_of(staging.ns, "frontend")[0]
    world = world.replace(s_frontend, **with_use(s_frontend, 0.85))

    # OOM kills: prod's metrics-service 25 h ago, staging's redis 1 h ago, a staging traefik 5 min ago.
    for pod, offset in (
        (world.pods_of(prod.ns, "metrics-service")[0], KILLED_25H_AGO),
        (world.pods_of(staging.ns, "redis")[0], KILLED_1H_AGO),
        (world.pods_of(staging.ns, "traefik")[0], KILLED_RECENTLY),
    ):
        world = world.replace(pod, **with_container(pod, oom_killed_at=offset))

    # kube-prometheus-stack's own pods: on the pool, the node exporter on every node.
    chart = []
    for name, w in sorted(prod.plan.chart_workloads.items()):
        containers = [plain_container(name, w.memory_request_mib, w.memory_limit_mib, 0.4)]
        containers += [plain_container(c.name, c.memory_request_mib, c.memory_limit_mib, 0.4) for c in w.sidecars]
        nodes = world.nodes if w.per_node else [pool[i % len(pool)] for i in range(w.replicas)]
        kind = "DaemonSet" if w.per_node else "Deployment"
        chart += [
            make_pod(MONITORING_NS, f"kube-prometheus-stack-{name}", i, kind, n, containers, ips())
            for i, n in enumerate(nodes)
        ]
    # A finished Job of prod's namespace: kube-state-metrics keeps its 2 GiB request until the pod is deleted.
    job = Pod(
        prod.ns, "db-backup-29112000-k8f2x", pool[0], (Container("backup", 2 * GIB, 2 * GIB, 0),),
        ("Job", "db-backup-29112000"), ips(), phase="Succeeded",
    )  # fmt: skip
    world = dataclasses.replace(world, pods=(*world.pods, *chart, job))
    # Another team's pod on the other pool, sized so that every Pending/Running request is 1 GiB short of what the
    # cluster keeps after losing its largest node: the finished Job's 2 GiB would tip it over.
    filler = survivors(world) - GIB - sum(p.request for p in world.pods if p.active)
    assert filler > 0
    etl = make_pod(
        OTHER_TEAM_NS, "etl-worker", 0, "Deployment", other, [Container("etl", filler, filler, filler // 2)], ips()
    )
    world = dataclasses.replace(world, pods=(*world.pods, etl))
    # The controllers of every workload, each with the pods the world gives it: the stacks' own, the chart's, the
    # other team's.
    controllers = [
        Controller(stack.ns, name, stack.config.workloads[name].app.kind, len(world.pods_of(stack.ns, name)))
        for stack in (prod, staging)
        for name in stack.config.workloads
    ]
    controllers += [
        Controller(MONITORING_NS, f"kube-prometheus-stack-{name}", "Deployment", w.replicas)
        for name, w in sorted(prod.plan.chart_workloads.items())
        if not w.per_node
    ]
    controllers.append(Controller(OTHER_TEAM_NS, "etl-worker", "Deployment", 1))
    assert all(world.ready(c) == c.replicas > 0 for c in controllers), "every controller starts with its pods ready"
    return dataclasses.replace(world, controllers=tuple(controllers))


# --- What the rules should compute, by hand from the world. ---


def survivors(world: World) -> int:
    allocatable = [n.allocatable for n in world.nodes]
    return sum(allocatable) - max(allocatable)


def overcommit(world: World) -> int:
    return sum(p.request for p in world.pods if p.active) - survivors(world)


def backend_pods(world: World, stack: Stack) -> list[Pod]:
    return world.pods_of(stack.ns, "backend")


def predictions(world: World, stack: Stack) -> dict[str, int]:
    found = {p.name: predicted(stack, p) for p in backend_pods(world, stack) if p.phase == "Running"}
    return {pod: value for pod, value in found.items() if value is not None}


def role_memory(world: World, stack: Stack) -> dict[str, int]:
    per_role = stack.config.capacity.formula.per_role_mib
    pods = [p for p in backend_pods(world, stack) if p.app and p.app.users is not None]
    return {r: sum(p.app.users[r] for p in pods) * getattr(per_role, r) * MIB for r in ROLES if pods}


def pool_allocatable(world: World, stack: Stack) -> int:
    return sum(n.allocatable for n in world.pool_nodes(stack_pool_name(stack.config)))


def memory_parts(world: World, stack: Stack) -> dict[str, float]:
    """The pool's memory by part: users by role, the backend's base and idle reserve, other pods' requests, unused."""
    predicted_ = predictions(world, stack)
    requested = {p.name: p.request for p in backend_pods(world, stack)}
    held = sum(max(requested.get(pod, 0), value) for pod, value in predicted_.items())
    pool = {n.name for n in world.pool_nodes(stack_pool_name(stack.config))}
    ours = {(stack.ns, p.name) for p in backend_pods(world, stack)}
    other = sum(p.request for p in world.pods if p.active and p.node.name in pool and (p.namespace, p.name) not in ours)
    base = stack.config.capacity.formula.base_mib * MIB
    return {
        **role_memory(world, stack),
        "backend_base": len(predicted_) * base,
        "backend_idle": held - sum(predicted_.values()),
        "other_workloads": other,
        "unused": max(pool_allocatable(world, stack) - other - held, 0),
    }


def slots(world: World, stack: Stack, under: float | None = None) -> dict[str, int]:
    """Per shape, Σ over backend pods of the experiments that fit under `under` × limit (default: the near-limit
    threshold), by `sizing.core.capacity.slots`."""
    formula = stack.config.capacity.formula
    threshold = stack.threshold(names.ALERT_MEMORY_NEAR_LIMIT) if under is None else under
    shapes = {name: formula.users_mib(mix) for name, mix in stack.config.capacity.shapes.items()}
    pods = [p for p in backend_pods(world, stack) if p.phase == "Running"]
    return {
        shape: sum(sizing_slots(p.containers[0].limit // MIB, p.working_set / MIB, mib, threshold) for p in pods)
        for shape, mib in shapes.items()
        if mib > 0
    }


def limit_use(world: World, stack: Stack) -> dict[tuple[str, str], float]:
    return {
        (p.name, c.name): c.working_set / c.limit
        for p in world.pods
        if p.namespace == stack.ns and p.phase == "Running"
        for c in p.containers
    }


def near_limit(world: World, stack: Stack) -> dict[tuple[str, str], float]:
    t = stack.threshold(names.ALERT_MEMORY_NEAR_LIMIT)
    return {key: ratio for key, ratio in limit_use(world, stack).items() if ratio > t}


def old_generation(world: World, stack: Stack) -> dict[str, float]:
    """Per pod-router pod: V8 old generation in use ÷ its --max-old-space-size."""
    cap = stack.plan.workloads["pod-router"].runtime.memory_mib * MIB
    pods = [p for p in world.pods_of(stack.ns, "pod-router") if p.app and p.app.heap]
    return {p.name: sum(b for s, b in p.app.heap.items() if s not in NOT_OLD_GENERATION) / cap for p in pods}


def oom_killed(world: World, stack: Stack, within: float, at: float = 0.0) -> set[tuple[str, str]]:
    """The stack's containers OOM-killed in the `within` seconds up to offset `at`."""
    return {
        (p.name, c.name)
        for p in world.pods
        if p.namespace == stack.ns
        for c in p.containers
        if c.oom_killed_at is not None and at - within < c.oom_killed_at <= at
    }


def unavailable(world: World, stack: Stack) -> dict[str, float]:
    """The stack's app workloads whose ready ÷ desired replicas are at or below the alert's threshold."""
    t = stack.threshold(names.ALERT_WORKLOAD_UNAVAILABLE)
    return {
        c.name: world.ready(c) / c.replicas
        for c in world.controllers
        if c.namespace == stack.ns and c.replicas > 0 and world.ready(c) / c.replicas <= t
    }


def drifting(world: World, stack: Stack) -> dict[str, float]:
    t = stack.threshold(names.ALERT_PREDICTION_DRIFT)
    found = {}
    for pod, value in predictions(world, stack).items():
        p = world.pod(stack.ns, pod)
        ratio = p.working_set / value - 1
        if ratio > t and sum((p.app.users or {}).values()) > 0:
            found[pod] = ratio
    return found


# --- The server and its client. ---


@pytest.fixture(scope="module")
def prod(prod_config, prod_plan) -> Stack:
    return Stack(prod_config, prod_plan)


@pytest.fixture(scope="module")
def staging(staging_config, staging_plan) -> Stack:
    """`other_config`: another namespace, formula, limits, thresholds and node price."""
    return Stack(staging_config, staging_plan)


@pytest.fixture(scope="module")
def stacks(prod, staging) -> dict[str, Stack]:
    """Both stacks by namespace."""
    assert prod.ns != staging.ns and prod.name != staging.name
    return {prod.ns: prod, staging.ns: staging}


@pytest.fixture(scope="module")
def world(prod, staging) -> World:
    return build_world(prod, staging)


def shared_rules(stacks: Sequence[Stack]) -> str:
    """Both stacks' rules files as one, groups named `<stack>/<group>`, time compressed."""
    groups = [
        {**group, "name": f"{stack.name}/{group['name']}"}
        for stack in stacks
        for group in yaml.safe_load(rules.rules_file(stack.config, stack.plan))["groups"]
    ]
    return compress_rules({"groups": groups})


@pytest.fixture(scope="module")
def server(prometheus_binaries, tmp_path_factory, stacks, world) -> Iterator[PrometheusServer]:
    with start_prometheus(
        tmp_path_factory.mktemp("rules-prometheus"),
        rules=shared_rules(list(stacks.values())),
        compress=False,  # compressed above
        series=world.series(),
        history=HISTORY,
        binaries=prometheus_binaries,
    ) as running:
        settle(running)
        yield running


def settle(server: PrometheusServer) -> None:
    """Wait until the alerts have seen records computed from the newest scrape: every group starts an evaluation
    at least one interval after the recording group's first one that saw it."""
    server.wait_for_rules_evaluated(after=time.time() + COMPRESSED_INTERVAL_SECONDS)


@contextlib.contextmanager
def state(server: PrometheusServer, base: World, changed: World) -> Iterator[None]:
    """The cluster moved to `changed`, and back to `base` afterwards, settled both ways."""
    server.set_live(changed.series())
    settle(server)
    try:
        yield
    finally:
        server.set_live(base.series())
        settle(server)


def records(server: PrometheusServer, name: str, *keys: str, **matchers: str) -> dict[Any, float]:
    """A record's values by the given labels (one label: its value; several: a tuple)."""
    selector = name + "{" + ",".join(f'{k}="{v}"' for k, v in matchers.items()) + "}"
    found: dict[Any, float] = {}
    for sample in server.query(selector):
        key = tuple(sample.labels.get(k, "") for k in keys)
        key = key[0] if len(keys) == 1 else key
        assert key not in found, f"{name}: two series for {key}"
        found[key] = sample.value
    return found


def check_alert(alert: Alert, stacks: Mapping[str, Stack]) -> None:
    """Severity from the config, the plan's stack, annotations that render."""
    labels = alert["labels"]
    name = labels["alertname"]
    stack = stacks[labels["namespace"]]
    settings = alert_settings(stack.config, name)
    assert labels["severity"] == settings.severity, alert
    assert labels["stack"] == stack.plan.stack, alert
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}, alert
    for text in annotations.values():
        assert text and "<no value>" not in text and "{{" not in text and "%!" not in text, alert
    assert annotations["runbook_url"] == rules.runbook_url(stack.config, name)


def matching(alerts: list[Alert], labels: Mapping[str, str]) -> list[Alert]:
    return [a for a in alerts if all(a["labels"].get(k) == v for k, v in labels.items())]


def firing(server: PrometheusServer, stacks: Mapping[str, Stack], name: str, **labels: str) -> Alert:
    """The one alert `name` with `labels`, once firing (it went pending first: every `for:` is compressed to 2 s)."""
    (alert,) = server.wait_until(
        lambda: [a for a in matching(server.alerts(name), labels) if a["state"] == "firing"],
        what=f"{name} {labels} firing",
    )
    check_alert(alert, stacks)
    return alert


def silent(server: PrometheusServer, name: str, **labels: str) -> None:
    """No alert `name` with `labels`, neither pending nor firing (call after `settle`)."""
    assert matching(server.alerts(name), labels) == []


def tile_query(config: StackConfig, plan: Plan, title: str) -> str:
    """The query of a dashboard stat, Grafana's variables substituted as Grafana would for this stack."""
    model = dashboards(config, plan)[f"{config.kubernetes.namespace}-memory"]
    panels = [p for top in model["panels"] for p in (top, *top.get("panels", []))]
    (panel,) = [p for p in panels if p.get("title") == title]
    (target,) = panel["targets"]
    expr = (
        target["expr"]
        .replace("$namespace", config.kubernetes.namespace)
        .replace("${namespace}", config.kubernetes.namespace)
    )
    expr = expr.replace("$__rate_interval", "2m").replace("$__interval", "30s").replace("$__range", "1h")
    assert "$" not in expr, expr
    return expr


# --- 7: both stacks' rules load on one server. ---


def test_both_stacks_rules_load_and_every_group_is_healthy(server, stacks):
    groups = server.wait_for_rules_evaluated()
    expected = {
        f"{stack.name}/{g['name']}": len(g["rules"])
        for stack in stacks.values()
        for g in yaml.safe_load(rules.rules_file(stack.config, stack.plan))["groups"]
    }
    assert {g["name"]: len(g["rules"]) for g in groups} == expected
    assert all(g["interval"] == COMPRESSED_INTERVAL_SECONDS for g in groups)
    unhealthy = [(g["name"], r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]
    assert unhealthy == []


# --- 1: HyperStudyMemoryOvercommit counts Pending and Running pods only. ---


def test_overcommit_ignores_a_finished_job_and_fires_when_it_runs(server, stacks, world):
    # The old rule summed every container's request kube-state-metrics reports, the finished Job's 2 GiB included:
    # requests exceeded what survives losing the largest node by 1 GiB and it fired.
    (job,) = [p for p in world.pods if p.owner[0] == "Job"]
    assert job.phase == "Succeeded" and job.request == 2 * GIB
    assert overcommit(world) == -GIB
    assert sum(p.request for p in world.pods) - survivors(world) == GIB  # what the old rule saw
    for stack in stacks.values():
        silent(server, names.ALERT_MEMORY_OVERCOMMIT, namespace=stack.ns)

    running = world.replace(job, phase="Running", containers=(dataclasses.replace(job.containers[0], working_set=GIB),))
    assert overcommit(running) == GIB
    with state(server, world, running):
        for stack in stacks.values():
            alert = firing(server, stacks, names.ALERT_MEMORY_OVERCOMMIT, namespace=stack.ns)
            assert set(alert["labels"]) == {"alertname", "namespace", "severity", "stack"}
            assert alert["value"] == overcommit(running)
            assert "1GiB" in alert["annotations"]["description"]


# --- 2: near-limit per container: the record, the alert and the tile agree. ---


def test_near_limit_container_fires_and_the_tile_counts_it(server, stacks, world, prod, staging):
    # The old tile counted workloads whose Σ working set ÷ Σ limit passed the threshold: the backend's pods at 92 %
    # and 10 % (and the others) average below it, so it showed 0 while the alert fired.
    backend_0 = world.pod(prod.ns, "backend-0")
    assert near_limit(world, prod) == {("backend-0", "backend"): pytest.approx(0.92)}
    backends = backend_pods(world, prod)
    average = sum(p.working_set for p in backends) / sum(p.containers[0].limit for p in backends)
    assert average < prod.threshold(names.ALERT_MEMORY_NEAR_LIMIT)  # the backend workload, as the old tile saw it
    assert world.pod(prod.ns, "backend-1").working_set / backend_0.containers[0].limit == pytest.approx(0.10)
    (s_frontend,) = near_limit(world, staging)  # staging's threshold is lower than prod's
    assert limit_use(world, staging)[s_frontend] < prod.threshold(names.ALERT_MEMORY_NEAR_LIMIT)

    for stack in (prod, staging):
        expected = near_limit(world, stack)
        assert server.value(tile_query(stack.config, stack.plan, NEAR_LIMIT_TILE)) == len(expected) == 1
        record = records(server, names.CONTAINER_LIMIT_UTILISATION, "pod", "container", namespace=stack.ns)
        assert record == pytest.approx(limit_use(world, stack), rel=1e-9)
        for (pod, container), ratio in expected.items():
            assert record[(pod, container)] > stack.threshold(names.ALERT_MEMORY_NEAR_LIMIT)
            alert = firing(server, stacks, names.ALERT_MEMORY_NEAR_LIMIT, namespace=stack.ns, pod=pod)
            assert alert["labels"]["container"] == container
            assert alert["value"] == pytest.approx(ratio, rel=1e-9)
            assert container in alert["annotations"]["summary"]
        alerts = matching(server.alerts(names.ALERT_MEMORY_NEAR_LIMIT), {"namespace": stack.ns})
        assert {(a["labels"]["pod"], a["labels"]["container"]) for a in alerts} == set(expected)
    silent(server, names.ALERT_MEMORY_NEAR_LIMIT, namespace=prod.ns, pod="backend-1")


# --- 3: the heap alert weighs the old generation against --max-old-space-size. ---


def test_heap_alert_counts_the_old_generation_only(server, stacks, world, prod, staging):
    # The old rule divided nodejs_heap_size_used_bytes (every space, the young generation included) by the cap:
    # pod-router-a's whole heap is above 90 % of it and fired; its old generation is well below.
    cap = prod.plan.workloads["pod-router"].runtime.memory_mib * MIB
    router_a, router_b = world.pods_of(prod.ns, "pod-router")
    assert (router_a.app.heap["new"], router_a.app.heap["old"]) == (15 * MIB, 20 * MIB)
    assert prod.plan.workloads["pod-router"].runtime.memory_mib == 48
    assert sum(router_a.app.heap.values()) / cap > prod.threshold(names.ALERT_HEAP_NEAR_LIMIT)  # the old rule fired
    assert router_b.app.heap["old"] == round(0.95 * cap)
    expected = old_generation(world, prod)
    assert expected[router_a.name] < prod.threshold(names.ALERT_HEAP_NEAR_LIMIT) < expected[router_b.name]

    silent(server, names.ALERT_HEAP_NEAR_LIMIT, namespace=prod.ns, pod=router_a.name)
    alert = firing(server, stacks, names.ALERT_HEAP_NEAR_LIMIT, namespace=prod.ns, pod=router_b.name)
    assert alert["value"] == pytest.approx(expected[router_b.name], rel=1e-9)
    # staging's pod-router at 87 %: above staging's threshold, below prod's.
    ((s_router, ratio),) = old_generation(world, staging).items()
    assert staging.threshold(names.ALERT_HEAP_NEAR_LIMIT) < ratio < prod.threshold(names.ALERT_HEAP_NEAR_LIMIT)
    alert = firing(server, stacks, names.ALERT_HEAP_NEAR_LIMIT, namespace=staging.ns, pod=s_router)
    assert alert["value"] == pytest.approx(ratio, rel=1e-9)


# --- 4: prediction drift only above the formula, and only with users. ---


def test_prediction_drift_fires_only_above_the_formula_with_users(server, stacks, world, prod, staging):
    # The old rule fired on |working set ÷ prediction − 1|: for the idle pod far above its base (backend-2), the pod
    # using half its prediction (backend-3) and the pod without users (backend-1) too.
    t = prod.threshold(names.ALERT_PREDICTION_DRIFT)
    prediction = predictions(world, prod)
    ratio = {pod: world.pod(prod.ns, pod).working_set / value for pod, value in prediction.items()}
    assert ratio["backend-2"] - 1 > t and sum(world.pod(prod.ns, "backend-2").app.users.values()) == 0
    assert 1 - ratio["backend-3"] > t and ratio["backend-1"] < 1 - t
    assert drifting(world, prod) == {"backend-4": pytest.approx(0.5)}
    assert drifting(world, staging) == {}

    alert = firing(server, stacks, names.ALERT_PREDICTION_DRIFT, namespace=prod.ns, pod="backend-4")
    assert alert["value"] == pytest.approx(0.5, rel=1e-9)
    assert "50%" in alert["annotations"]["description"]
    active = {(a["labels"]["namespace"], a["labels"]["pod"]) for a in server.alerts(names.ALERT_PREDICTION_DRIFT)}
    assert active == {(prod.ns, "backend-4")}


# --- 5: slots per namespace, under the near-limit threshold; 0 without backend series. ---


def test_slots_are_counted_per_namespace_under_the_near_limit_threshold(server, stacks, world, prod, staging):
    # The old record summed (limit − working set) ÷ shape with no namespace label: both stacks wrote the same
    # series {shape}, each overwriting the other's value every evaluation.
    for stack in (prod, staging):
        expected = slots(world, stack)
        assert set(expected) == set(rules.shape_bytes(stack.config))
        assert records(server, names.SLOTS, "shape", namespace=stack.ns) == expected
        silent(server, names.ALERT_CAPACITY_LOW, namespace=stack.ns)
    assert slots(world, prod) != slots(world, staging)
    assert {tuple(sorted(s.labels)) for s in server.query(names.SLOTS)} == {("__name__", "namespace", "shape")}
    # Counted under the near-limit threshold: under the limit itself (the old record) some pods fit more.
    for stack in (prod, staging):
        assert slots(world, stack, under=1.0) != slots(world, stack)


def test_without_backend_series_slots_are_zero_and_capacity_low_fires(server, stacks, world, prod, staging):
    # The old record was a sum over no series at all: no sample, so HyperStudyCapacityLow had nothing to compare.
    gone = world.without(backend_pods(world, staging))
    shape = staging.config.monitoring.capacity_shape
    with state(server, world, gone):
        assert not [s for s in server.query(f'{{namespace="{staging.ns}", pod=~"backend-.*"}}')]
        assert records(server, names.SLOTS, "shape", namespace=staging.ns) == dict.fromkeys(slots(world, staging), 0)
        assert records(server, names.SLOTS, "shape", namespace=prod.ns) == slots(world, prod)
        alert = firing(server, stacks, names.ALERT_CAPACITY_LOW, namespace=staging.ns)
        assert alert["labels"]["shape"] == shape
        assert alert["value"] == 0
        silent(server, names.ALERT_CAPACITY_LOW, namespace=prod.ns)


# --- 6: nodes and cost of the stack's pool only; at-max by the pool's nodes. ---


def pool_at_max(world: World, stack: Stack) -> bool:
    """Whether the stack's pool runs within the alert's threshold of the plan's maximum."""
    nodes = len(world.pool_nodes(stack_pool_name(stack.config)))
    return nodes >= stack.plan.nodes.max - stack.threshold(names.ALERT_NODE_POOL_AT_MAX)


def test_nodes_and_cost_count_the_pool_and_at_max_fires_only_for_its_nodes(server, stacks, world, prod):
    # The old record counted kube_node_info: every node of the cluster, the other stack's pool and the other team's
    # node too. With prod's pool at its minimum the cluster reaches prod's maximum and the old
    # HyperStudyNodePoolAtMax fired.
    at = prod.plan.nodes.max - prod.threshold(names.ALERT_NODE_POOL_AT_MAX)
    assert len(world.pool_nodes(stack_pool_name(prod.config))) < at <= len(world.nodes)
    for stack in stacks.values():
        pool = world.pool_nodes(stack_pool_name(stack.config))
        assert len(pool) < len(world.nodes)
        assert records(server, names.NODES, "namespace", namespace=stack.ns) == {stack.ns: len(pool)}
        assert records(server, names.COST, "namespace", namespace=stack.ns) == {
            stack.ns: pytest.approx(len(pool) * stack.plan.cost.node_usd_month)
        }
        assert records(server, names.POOL_ALLOCATABLE, "namespace", namespace=stack.ns) == {
            stack.ns: pool_allocatable(world, stack)
        }
        # Prod's pool is below its threshold; the other stack's (threshold 1 below its maximum) may be at it.
        if pool_at_max(world, stack):
            assert stack is not prod
            assert firing(server, stacks, names.ALERT_NODE_POOL_AT_MAX, namespace=stack.ns)["value"] == len(pool)
        else:
            silent(server, names.ALERT_NODE_POOL_AT_MAX, namespace=stack.ns)

    # Prod's pool grows to its maximum; the other stack's pool does not change.
    pool_name = stack_pool_name(prod.config)
    template = world.pool_nodes(pool_name)[0]
    extra = [
        dataclasses.replace(template, name=f"{template.name[:-4]}{token(str(i), 4)}", ip=f"10.128.0.{60 + i}")
        for i in range(prod.plan.nodes.max - len(world.pool_nodes(pool_name)))
    ]
    at_max = world.with_nodes(*extra)
    with state(server, world, at_max):
        for stack in stacks.values():
            name = stack_pool_name(stack.config)
            count = len(at_max.pool_nodes(name))
            assert count == (prod.plan.nodes.max if stack is prod else len(world.pool_nodes(name)))
            assert records(server, names.NODES, "namespace", namespace=stack.ns) == {stack.ns: count}
            assert records(server, names.COST, "namespace", namespace=stack.ns) == {
                stack.ns: pytest.approx(count * stack.plan.cost.node_usd_month)
            }
            if pool_at_max(at_max, stack):
                alert = firing(server, stacks, names.ALERT_NODE_POOL_AT_MAX, namespace=stack.ns)
                assert alert["value"] == count
                assert name in alert["annotations"]["description"]
            else:
                silent(server, names.ALERT_NODE_POOL_AT_MAX, namespace=stack.ns)
        silent(server, names.ALERT_MEMORY_OVERCOMMIT)


def test_at_max_stays_silent_through_a_surge_upgrade(server, stacks, world, prod):
    # The previous rule counted the pool's nodes alone: a surge upgrade of prod's pool at its minimum adds a node,
    # which reaches the maximum, and HyperStudyNodePoolAtMax fired through every upgrade.
    pool_name = stack_pool_name(prod.config)
    old = world.pool_nodes(pool_name)
    assert len(old) + prod.config.nodes.surge_nodes == prod.plan.nodes.max
    assert prod.threshold(names.ALERT_NODE_POOL_AT_MAX) == 0
    surge = dataclasses.replace(
        old[0], name=f"{old[0].name[:-4]}{token('surge', 4)}", ip="10.128.0.70", kubelet_version=NEW_KUBELET
    )
    surged = world.with_nodes(surge)
    steps = {
        # The surge node of the new version joins: three nodes, two versions.
        "surge node added": surged,
        # The first old node cordoned and drained.
        "old node draining": surged.replace_node(old[0], cordoned=True),
        # A node-pool update that keeps the version: only the cordon shows it.
        "same-version drain": world.with_nodes(dataclasses.replace(surge, kubelet_version=OLD_KUBELET)).replace_node(
            old[1], cordoned=True
        ),
    }
    for step, changed in steps.items():
        assert len(changed.pool_nodes(pool_name)) == prod.plan.nodes.max, step
        with state(server, world, changed):
            assert records(server, names.NODES, "namespace", namespace=prod.ns) == {prod.ns: prod.plan.nodes.max}
            time.sleep(COMPRESSED_FOR_SECONDS + 2 * COMPRESSED_INTERVAL_SECONDS)  # beyond the compressed `for:`
            silent(server, names.ALERT_NODE_POOL_AT_MAX, namespace=prod.ns)
    # Upgraded, nothing cordoned, and still three nodes: that is load, and it fires.
    upgraded = surged
    for node in old:
        upgraded = upgraded.replace_node(node, kubelet_version=NEW_KUBELET)
    with state(server, world, upgraded):
        alert = firing(server, stacks, names.ALERT_NODE_POOL_AT_MAX, namespace=prod.ns)
        assert alert["value"] == prod.plan.nodes.max
        assert "Silent while the pool upgrades" in alert["annotations"]["description"]
    # Another pool upgrading does not silence prod's at its maximum.
    other = next(n for n in world.nodes if n.pool == OTHER_POOL)
    other_upgrading = world.with_nodes(dataclasses.replace(surge, kubelet_version=OLD_KUBELET)).replace_node(
        other, kubelet_version=NEW_KUBELET, cordoned=True
    )
    with state(server, world, other_upgrading):
        firing(server, stacks, names.ALERT_NODE_POOL_AT_MAX, namespace=prod.ns)


# --- Node loss: a workload without a ready pod pages. ---


def test_a_lost_node_takes_redis_down_and_workload_unavailable_pages(server, stacks, world, prod, staging):
    # The previous rules had no alert for a workload without a ready pod: redis down on a lost node stopped every
    # experiment, and nothing paged until its users did.
    node = world.pod(prod.ns, "redis-0").node
    lost = world
    for pod in [p for p in world.pods if p.node == node]:
        lost = lost.replace(pod, ready=False)  # the node stopped reporting: its pods are no longer ready
    down = unavailable(lost, prod)
    kinds = {c.name: c.kind for c in world.controllers if c.namespace == prod.ns}
    # redis (one StatefulSet pod) and metrics-service (one Deployment pod) were on that node; every other workload
    # keeps a ready pod on the other node.
    assert down == {"redis": 0.0, "metrics-service": 0.0} and not unavailable(lost, staging)
    assert {kinds[n] for n in down} == {"StatefulSet", "Deployment"}
    with state(server, world, lost):
        for name, ratio in down.items():
            alert = firing(server, stacks, names.ALERT_WORKLOAD_UNAVAILABLE, namespace=prod.ns, workload=name)
            kind = kinds[name].lower()
            assert alert["labels"][kind] == name and alert["value"] == ratio
            assert alert["labels"]["severity"] == "critical"
            assert alert["annotations"]["summary"] == f"{name} is unavailable: 0% of its pods ready"
        active = {a["labels"]["workload"] for a in server.alerts(names.ALERT_WORKLOAD_UNAVAILABLE)}
        assert active == set(down), "no other workload, and nothing of the other stack"
        # redis-0 recreated on the surviving node (the Node object deleted): redis resolves, metrics-service waits.
        (survivor,) = [n for n in world.pool_nodes(stack_pool_name(prod.config)) if n != node]
        redis = lost.pod(prod.ns, "redis-0")
        back = lost.replace(redis, node=survivor, ready=True)
        server.set_live(back.series())
        server.wait_until(
            lambda: (
                {a["labels"]["workload"] for a in server.alerts(names.ALERT_WORKLOAD_UNAVAILABLE)}
                == {"metrics-service"}
            ),
            what="redis resolved",
        )
    silent(server, names.ALERT_WORKLOAD_UNAVAILABLE)


def test_the_rules_own_watchdog_fires_where_the_evaluator_has_none(prometheus_server):
    """A Managed Prometheus stack's groups (the real staging stack) carry an always-firing Watchdog: on a server with
    nothing to scrape it fires and keeps firing; prod's groups (kube-prometheus-stack has its own) carry none."""
    staging = load_stack("staging", ROOT)
    plan = build_plan(staging, "staging")
    server = prometheus_server(rules=rules.rules_file(staging, plan), history=600.0)
    (alert,) = server.wait_until(
        lambda: [a for a in server.alerts(names.WATCHDOG) if a["state"] == "firing"], what="the Watchdog firing"
    )
    assert alert["labels"] == {
        "alertname": names.WATCHDOG,
        "namespace": "hyperstudy-staging",
        "severity": "none",
        "stack": "staging",
    }
    assert alert["annotations"]["runbook_url"] == rules.runbook_url(staging, names.WATCHDOG)
    assert "{{" not in alert["annotations"]["description"]
    server.wait_for_rules_evaluated(after=time.time() + 2 * COMPRESSED_FOR_SECONDS)
    assert [a["state"] for a in server.alerts(names.WATCHDOG)] == ["firing"], "still firing, never resolved"


# --- 8: the pool's memory and cost split into parts that add up. ---


def test_cost_and_pool_memory_split_into_parts_that_add_up(server, world, stacks):
    # The old record split the cost by the roles' formula memory alone: the parts summed to the cost, but the
    # backend's base and idle reserve, the other pods and the unused memory were charged to the roles.
    for stack in stacks.values():
        parts = memory_parts(world, stack)
        pool = pool_allocatable(world, stack)
        assert parts["unused"] > 0 and sum(parts.values()) == pool  # the pool holds more than its pods
        assert all(parts[p] > 0 for p in ("backend_base", "backend_idle", "other_workloads"))
        memory = records(server, names.POOL_MEMORY_BY_PART, "role", namespace=stack.ns)
        assert memory == pytest.approx(parts, rel=1e-12)
        assert sum(memory.values()) == pytest.approx(pool, rel=1e-12)

        cost = records(server, names.COST, "namespace", namespace=stack.ns)[stack.ns]
        assert cost == pytest.approx(
            len(world.pool_nodes(stack_pool_name(stack.config))) * stack.plan.cost.node_usd_month
        )
        by_role = records(server, names.COST_BY_ROLE, "role", namespace=stack.ns)
        assert by_role == pytest.approx({part: value / pool * cost for part, value in parts.items()}, rel=1e-9)
        assert sum(by_role.values()) == pytest.approx(cost, rel=1e-12)
        assert {"backend_base", "backend_idle", "other_workloads", "unused", *ROLES} == set(by_role)


# --- 9: the OOM tile looks back 24 h; the alert 10 m. ---


def test_oom_tile_counts_kills_of_the_last_24h_and_the_alert_the_last_10m(server, stacks, world, prod, staging):
    # The old tile was count(last_terminated_reason{reason="OOMKilled"} == 1): red for as long as the container
    # exists, so prod's metrics-service killed 25 h ago still showed 1.
    day, alert_window = seconds(OOM_TILE_WINDOW), seconds(rules.OOM_WINDOW)
    assert oom_killed(world, prod, within=HISTORY) and not oom_killed(world, prod, within=day)  # the kill 25 h ago
    last = f'{contract.LAST_TERMINATED}{{namespace="{prod.ns}", reason="OOMKilled"}}'
    assert server.value(f"count({last} == 1)") == len(oom_killed(world, prod, within=HISTORY)) == 1  # the old tile
    assert server.value(tile_query(prod.config, prod.plan, OOM_TILE)) == len(oom_killed(world, prod, within=day)) == 0

    # staging: a kill 1 h ago and one 5 min ago. Just before the recent one the tile showed the kill 1 h ago only.
    staging_tile = tile_query(staging.config, staging.plan, OOM_TILE)
    before_recent = KILLED_RECENTLY - 60
    then = oom_killed(world, staging, within=day, at=before_recent)
    assert server.value(staging_tile, time=server.now + before_recent) == len(then) == 1
    assert server.value(staging_tile) == len(oom_killed(world, staging, within=day)) == 2

    # The alert: only the kill inside its 10 m window, not those 1 h and 25 h ago.
    ((pod, container),) = oom_killed(world, staging, within=alert_window)
    alert = firing(server, stacks, names.ALERT_OOM_KILLED, namespace=staging.ns, pod=pod)
    assert alert["labels"]["container"] == container
    assert alert["value"] > stacks[staging.ns].threshold(names.ALERT_OOM_KILLED)
    active = {(a["labels"]["namespace"], a["labels"]["pod"]) for a in server.alerts(names.ALERT_OOM_KILLED)}
    assert active == {(staging.ns, pod)}


# --- 10: the formula records. ---


def test_formula_records_predict_from_users_and_anchor_pods_without_users(server, world, stacks, prod):
    formula = prod.config.capacity.formula
    mix = UserMix(participant_video=10, experimenter=2)
    assert formula.memory_mib(mix) == 300  # the example: 100 + 15×10 + 25×2
    assert world.pod(prod.ns, "backend-4").app.users == users(mix)
    assert world.pod(prod.ns, "backend-1").app.users is None  # scraped: process_resident_memory_bytes only
    for stack in stacks.values():
        expected = predictions(world, stack)
        assert records(server, names.PREDICTED, "pod", namespace=stack.ns) == expected
        accuracy = {pod: world.pod(stack.ns, pod).working_set / value for pod, value in expected.items()}
        assert records(server, names.PREDICTION_ACCURACY, "pod", namespace=stack.ns) == pytest.approx(accuracy)
        assert records(server, names.MEMORY_BY_ROLE, "role", namespace=stack.ns) == role_memory(world, stack)
    prod_predicted = records(server, names.PREDICTED, "pod", namespace=prod.ns)
    assert prod_predicted["backend-4"] == 300 * MIB
    assert prod_predicted["backend-1"] == formula.base_mib * MIB


# --- Every alert: severity, stack, annotations. ---


def expected_alerts(world: World, stacks: Mapping[str, Stack]) -> set[tuple[str, str, str]]:
    """(alertname, namespace, pod or "") of every alert the world should fire."""
    expected = set()
    for stack in stacks.values():
        expected |= {(names.ALERT_MEMORY_NEAR_LIMIT, stack.ns, pod) for pod, _ in near_limit(world, stack)}
        expected |= {
            (names.ALERT_HEAP_NEAR_LIMIT, stack.ns, pod)
            for pod, r in old_generation(world, stack).items()
            if r > stack.threshold(names.ALERT_HEAP_NEAR_LIMIT)
        }
        expected |= {(names.ALERT_PREDICTION_DRIFT, stack.ns, pod) for pod in drifting(world, stack)}
        window = seconds(rules.OOM_WINDOW)
        expected |= {(names.ALERT_OOM_KILLED, stack.ns, pod) for pod, _ in oom_killed(world, stack, within=window)}
        if pool_at_max(world, stack):
            expected.add((names.ALERT_NODE_POOL_AT_MAX, stack.ns, ""))
        expected |= {(names.ALERT_WORKLOAD_UNAVAILABLE, stack.ns, name) for name in unavailable(world, stack)}
    return expected


def what(alert: Alert) -> str:
    """What an alert is about beyond its namespace: its pod, or its workload, or nothing."""
    return alert["labels"].get("pod", alert["labels"].get("workload", ""))


def all_firing(server: PrometheusServer, world: World, stacks: Mapping[str, Stack]) -> list[Alert]:
    """The alerts, once exactly the expected ones are firing."""
    expected = expected_alerts(world, stacks)

    def settled() -> list[Alert] | None:
        alerts = server.alerts()
        seen = {(a["labels"]["alertname"], a["labels"]["namespace"], what(a)) for a in alerts}
        return alerts if seen == expected and all(a["state"] == "firing" for a in alerts) else None

    return server.wait_until(settled, what="exactly the expected alerts firing")


def test_every_active_alert_carries_severity_stack_and_rendered_annotations(server, stacks, world):
    """In the base world exactly the alerts computed from it fire, each labelled and annotated as it should."""
    for alert in all_firing(server, world, stacks):
        check_alert(alert, stacks)


# --- `python -m sizing status` reads, from the raw series, the state the rules record. ---


def test_sizing_status_agrees_with_the_world_and_the_rules(server, stacks, world):
    """Each stack's status on the shared server: its own backend pods only, their working set, prediction, users
    and kube-state-metrics limit as the world has them; the slots equal to the slots record; the OOM kills of its
    namespace in 24 h (staging's two, not prod's 25 h old one); the alerts firing for it and no other stack's."""
    from sizing.observe.prometheus import Prometheus
    from sizing.observe.status import status

    alerts = all_firing(server, world, stacks)
    day = 24 * HOUR
    for stack in stacks.values():
        result = status(Prometheus(server.url), stack.config, stack.plan, stack.name)
        running = {p.name: p for p in backend_pods(world, stack) if p.phase == "Running"}
        assert {p.pod for p in result.pods} == set(running)
        near = {pod for pod, _ in near_limit(world, stack)}
        for got in result.pods:
            pod = running[got.pod]
            assert got.working_set_mib == pytest.approx(pod.working_set / MIB, abs=0.05)
            assert got.predicted_mib * MIB == predicted(stack, pod)
            assert got.users == {role: (pod.app.users or {}).get(role, 0) for role in ROLES}
            assert (got.limit_mib, got.limit_source) == (pod.containers[0].limit / MIB, "kube-state-metrics")
            assert got.near_limit == (got.pod in near)
        assert result.near_limit == bool(near & set(running))
        assert result.slots == slots(world, stack) == records(server, names.SLOTS, "shape", namespace=stack.ns)
        assert result.oom_kills_24h == len(oom_killed(world, stack, within=day))
        ours = {
            (a["labels"]["alertname"], a["labels"].get("pod", ""))
            for a in alerts
            if a["labels"]["namespace"] == stack.ns
        }
        assert {(a["alertname"], a["labels"].get("pod", "")) for a in result.firing_alerts} == ours
        assert all(a["severity"] for a in result.firing_alerts)
    # The two stacks differ where the check matters: not a comparison of zeros.
    prod, staging = stacks.values()
    assert slots(world, prod) != slots(world, staging)
    assert len(oom_killed(world, staging, within=day)) == 2 and not oom_killed(world, prod, within=day)
