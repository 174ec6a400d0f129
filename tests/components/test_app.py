"""The app and its workloads under Pulumi mocks (`components/app.py`, `components/workload.py`): every manifest carries
the plan's sizes and the spec's facts.

Checks run inside `.apply()` of a `@pulumi.runtime.test` test (the decorator makes a failing check fail the
test; `test_guard_*` proves it) and record that they ran (the `ran` fixture fails a test whose check never ran).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kubernetes_validate
import pulumi
import pytest
from cloudcoil.models.prometheus_operator.v1 import PodMonitor
from pydantic import ValidationError

import components.workload
from components.app import HyperStudyApp, HyperStudyAppArgs
from components.node_pool import NodePool, NodePoolArgs
from components.workload import (
    COMPONENT,
    GMP_NAMESPACE,
    INSTANCE,
    MANAGED_BY,
    NAME,
    NAMESPACE_NAME,
    PART_OF,
    RELEASE,
    VERSION,
    Workload,
    WorkloadArgs,
    image_version,
)
from monitoring.names import SCRAPE_INTERVAL
from sizing.config.loader import load_stack
from sizing.config.stack import StackConfig
from sizing.facts.workloads import LB_UNHEALTHY_AFTER_SECONDS, SPECS, WorkloadSpec
from sizing.plan.build import build_plan
from sizing.plan.types import Plan

if TYPE_CHECKING:  # importing conftest at run time would load it twice and install a second set of mocks
    from tests.conftest import RecordingMocks, Registered

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
NAMESPACE = "kubernetes:core/v1:Namespace"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
VPA = "kubernetes:autoscaling.k8s.io/v1:VerticalPodAutoscaler"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
INGRESS_CLASS = "kubernetes:networking.k8s.io/v1:IngressClass"
NODE_POOL = "gcp:container/nodePool:NodePool"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
POD_MONITORING = "kubernetes:monitoring.googleapis.com/v1:PodMonitoring"
CONTROLLERS = (DEPLOYMENT, STATEFULSET)
CRDS = (VPA, POD_MONITOR, POD_MONITORING)

# What Prometheus must scrape, written out rather than read back from SPECS: (port name, port, path). The Node.js
# services serve prom-client's registry on their HTTP port, Traefik on its own metrics entry point.
SCRAPES = {
    "backend": ("http", 3000, "/metrics"),
    "pod-router": ("http", 8080, "/metrics"),
    "metrics-service": ("http", 9090, "/metrics"),
    "traefik": ("metrics", 9100, "/metrics"),
}
# What each image runs, written out: the config's workloads.<name>.runtime must say the same.
RUNTIMES = {
    "backend": "nodejs",
    "frontend": "none",
    "redis": "redis",
    "pod-router": "nodejs",
    "traefik": "go",
    "metrics-service": "nodejs",
}
# The label GKE puts on every node, naming its node pool.
GKE_NODEPOOL = "cloud.google.com/gke-nodepool"
ROOT = Path(__file__).resolve().parents[2]


# --- fixtures and helpers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def baseline_config(prod_config: StackConfig) -> StackConfig:
    return prod_config.with_profile("baseline")


@pytest.fixture(scope="module")
def baseline_plan(baseline_config: StackConfig) -> Plan:
    return build_plan(baseline_config, "prod")


@pytest.fixture(params=["optimized", "baseline"])
def stack(request, prod_config, prod_plan, baseline_config, baseline_plan) -> tuple[StackConfig, Plan]:
    """The prod stack in each profile: the optimized sizes and the rollback."""
    if request.param == "optimized":
        return prod_config, prod_plan
    return baseline_config, baseline_plan


def build(config: StackConfig, plan: Plan, **args: Any) -> HyperStudyApp:
    return HyperStudyApp("hyperstudy", HyperStudyAppArgs(config=config, plan=plan, **args))


def children(app: HyperStudyApp) -> list[pulumi.Resource]:
    resources = [
        app.namespace,
        app.default_deny,
        app.traefik_role,
        app.traefik_role_binding,
        app.traefik_cluster_role,
        app.traefik_cluster_role_binding,
        app.ingress_class,
    ]
    for w in app.workloads.values():
        resources += [
            w.service_account,
            w.controller,
            w.service,
            w.headless_service,
            w.pod_disruption_budget,
            w.network_policy,
            w.vertical_pod_autoscaler,
            w.pod_monitor,
            w.pod_monitoring,
        ]
    return [r for r in resources if r is not None]


def settled(app: HyperStudyApp, ran: list[bool], check: Callable[[], None]) -> pulumi.Output:
    """An output that runs `check` once every child of `app` is registered with the mocks."""

    def run(_: Any) -> None:
        check()
        ran.append(True)

    return pulumi.Output.all(*[r.urn for r in children(app)]).apply(run)


def controller(mocks: RecordingMocks, name: str) -> Registered:
    matches = [r for r in mocks.resources if r.typ in CONTROLLERS and r.name == name]
    assert len(matches) == 1, f"expected one controller named {name}, got {len(matches)}"
    return matches[0]


def pod_spec(resource: Registered) -> dict[str, Any]:
    return resource.inputs["spec"]["template"]["spec"]


def main_container(resource: Registered) -> dict[str, Any]:
    containers = pod_spec(resource)["containers"]
    assert len(containers) == 1, f"{resource.name}: expected one container"
    return containers[0]


def with_monitoring(base: StackConfig, **changes: Any) -> StackConfig:
    """`base` with other `monitoring` settings; everything else stays the validated prod config."""
    return base.model_copy(update={"monitoring": base.monitoring.model_copy(update=changes)})


def with_namespace(base: StackConfig, namespace: str) -> StackConfig:
    """`base` deploying into another namespace."""
    return base.model_copy(update={"kubernetes": base.kubernetes.model_copy(update={"namespace": namespace})})


def render(mocks: RecordingMocks, config: StackConfig, plan: Plan, **args: Any) -> list[Registered]:
    """Every resource the app registers, once all are registered (asserts run outside apply, on the copy)."""
    done: list[bool] = []

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        mocks.resources.clear()
        return settled(build(config, plan, **args), done, lambda: None)

    program()
    assert done, "the app never settled"
    return list(mocks.resources)


# --- the guard ----------------------------------------------------------------------------------------------------


def test_guard_false_assertion_inside_apply_fails_under_the_decorator() -> None:
    @pulumi.runtime.test
    def failing() -> pulumi.Output:
        def check(value: int) -> None:
            assert value == 2, "deliberately false"

        return pulumi.Output.from_input(1).apply(check)

    with pytest.raises(AssertionError, match="deliberately false"):
        failing()


# --- sizes from the plan ------------------------------------------------------------------------------------------


@pulumi.runtime.test
def test_containers_carry_exactly_the_plan_sizes_and_runtime_settings(mocks, ran, stack):
    config, plan = stack
    app = build(config, plan)

    def check() -> None:
        assert set(app.workloads) == set(plan.workloads)
        for name, w in plan.workloads.items():
            ctrl = controller(mocks, name)
            assert ctrl.inputs["spec"]["replicas"] == w.replicas
            container = main_container(ctrl)
            assert container["resources"] == {
                "requests": {"memory": w.memory_request, "cpu": w.cpu_request},
                "limits": {"memory": w.memory_limit},
            }, name
            env = {e["name"]: e["value"] for e in container.get("env", [])}
            assert env == w.runtime.env, name
            args = container.get("args", [])
            assert args[len(args) - len(w.runtime.args) :] == list(w.runtime.args), name

        node_heap = {n: w.runtime.env["NODE_OPTIONS"] for n, w in plan.workloads.items() if w.runtime.kind == "nodejs"}
        assert set(node_heap) == {"backend", "pod-router", "metrics-service"}
        for name, value in node_heap.items():
            split = plan.workloads[name].runtime.node_memory
            assert split is not None and split.old_space_mib == plan.workloads[name].runtime.memory_mib
            # The semi-space flag exactly where the plan capped it (V8's default would crowd out the native memory).
            semi = f" --max-semi-space-size={split.semi_space_mib}" if split.semi_space_capped else ""
            assert value == f"--max-old-space-size={split.old_space_mib}{semi}", name
        redis = plan.workloads["redis"].runtime
        assert main_container(controller(mocks, "redis"))["args"] == [
            "redis-server",
            "--maxmemory",
            f"{redis.memory_mib}mb",
            "--maxmemory-policy",
            config.runtime.redis_eviction_policy,
        ]
        traefik = plan.workloads["traefik"].runtime
        assert {e["name"]: e["value"] for e in main_container(controller(mocks, "traefik"))["env"]} == {
            "GOMEMLIMIT": f"{traefik.memory_mib}MiB"
        }

    return settled(app, ran, check)


def test_the_two_profiles_size_differently(prod_plan, baseline_plan):
    """The profile test above compares with two different plans, not one plan twice."""
    assert prod_plan.workloads["backend"].memory_limit != baseline_plan.workloads["backend"].memory_limit
    assert prod_plan.workloads["redis"].runtime.args != baseline_plan.workloads["redis"].runtime.args


@pulumi.runtime.test
def test_no_container_without_memory_request_and_limit(mocks, ran, stack):
    app = build(*stack)

    def check() -> None:
        controllers = [r for r in mocks.resources if r.typ in CONTROLLERS]
        assert len(controllers) == len(stack[1].workloads)
        for ctrl in controllers:
            spec = pod_spec(ctrl)
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                resources = container.get("resources", {})
                assert resources.get("requests", {}).get("memory"), f"{ctrl.name}/{container['name']}: no request"
                assert resources.get("limits", {}).get("memory"), f"{ctrl.name}/{container['name']}: no limit"
                assert resources["requests"].get("cpu"), f"{ctrl.name}/{container['name']}: no CPU request"
                assert "cpu" not in resources["limits"], f"{ctrl.name}/{container['name']}: CPU limit"

    return settled(app, ran, check)


@pulumi.runtime.test
def test_pdb_and_topology_spread_exactly_where_replicas_above_one(mocks, ran, stack):
    config, plan = stack
    app = build(config, plan)

    def check() -> None:
        multi = {n for n, w in plan.workloads.items() if w.replicas > 1}
        assert multi and multi != set(plan.workloads), "prod must exercise both cases"
        assert {r.name for r in mocks.of_type(PDB)} == multi
        for pdb in mocks.of_type(PDB):
            assert pdb.inputs["spec"]["maxUnavailable"] == 1
            assert pdb.inputs["spec"]["selector"] == {"matchLabels": {NAME: pdb.name, INSTANCE: "hyperstudy-prod"}}
        for name in plan.workloads:
            ctrl = controller(mocks, name)
            spread = pod_spec(ctrl).get("topologySpreadConstraints")
            if name not in multi:
                assert spread is None, name
                continue
            assert len(spread) == 1, name
            assert spread[0]["maxSkew"] == 1
            assert spread[0]["topologyKey"] == "kubernetes.io/hostname"
            assert spread[0]["whenUnsatisfiable"] == "DoNotSchedule"
            assert spread[0]["labelSelector"] == ctrl.inputs["spec"]["selector"]
            # A lost node (tainted, NotReady) is no domain: its replicas reschedule onto the nodes left.
            assert spread[0]["nodeTaintsPolicy"] == "Honor"
            assert plan.workloads[name].spread == "skew" and "affinity" not in pod_spec(ctrl)

    return settled(app, ran, check)


@pulumi.runtime.test
def test_a_distinct_workload_gets_required_anti_affinity_and_no_spread(mocks, ran, prod_config):
    """`spread: distinct` renders what the planner placed it under: one pod per node, by required anti-affinity on
    the hostname over its own pods (the new revision's only, for a Deployment), and no topology spread."""
    workloads = {
        name: w.model_copy(update={"spread": "distinct"}) if name in ("backend", "frontend") else w
        for name, w in prod_config.workloads.items()
    }
    config = prod_config.model_copy(update={"workloads": workloads})
    plan = build_plan(config, "prod")
    assert plan.workloads["backend"].spread == plan.workloads["frontend"].spread == "distinct"
    app = build(config, plan)

    def check() -> None:
        for name, revision in (("backend", None), ("frontend", ["pod-template-hash"])):
            ctrl = controller(mocks, name)
            spec = pod_spec(ctrl)
            assert "topologySpreadConstraints" not in spec, name
            (term,) = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            assert term["topologyKey"] == "kubernetes.io/hostname"
            assert term["labelSelector"] == ctrl.inputs["spec"]["selector"]
            assert term.get("matchLabelKeys") == revision, name
        # Not every workload changed: pod-router keeps its spread.
        assert pod_spec(controller(mocks, "pod-router"))["topologySpreadConstraints"][0]["nodeTaintsPolicy"] == "Honor"

    return settled(app, ran, check)


# --- controllers and Services -------------------------------------------------------------------------------------


@pulumi.runtime.test
def test_backend_and_redis_are_statefulsets_with_a_headless_service(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)

    def check() -> None:
        assert {r.name for r in mocks.of_type(STATEFULSET)} == {"backend", "redis"}
        assert {r.name for r in mocks.of_type(DEPLOYMENT)} == {"frontend", "pod-router", "traefik", "metrics-service"}
        for name in ("backend", "redis"):
            sts = mocks.named(STATEFULSET, name)
            assert sts.inputs["metadata"]["name"] == name  # pods are backend-0, redis-0
            service_name = sts.inputs["spec"]["serviceName"]
            headless = mocks.named(SERVICE, service_name)
            assert headless.inputs["spec"]["clusterIP"] == "None"
            assert headless.inputs["metadata"]["name"] == service_name
            assert headless.inputs["spec"]["selector"] == sts.inputs["spec"]["selector"]["matchLabels"]
            assert sts.inputs["spec"]["updateStrategy"]["type"] == "RollingUpdate"
            assert sts.inputs["spec"]["minReadySeconds"] > 0
        assert mocks.named(STATEFULSET, "backend").inputs["spec"]["podManagementPolicy"] == "Parallel"
        assert mocks.named(STATEFULSET, "redis").inputs["spec"]["podManagementPolicy"] == "OrderedReady"
        claims = mocks.named(STATEFULSET, "redis").inputs["spec"]["volumeClaimTemplates"]
        assert [c["spec"]["resources"]["requests"]["storage"] for c in claims] == ["1Gi"]
        mounts = main_container(mocks.named(STATEFULSET, "redis"))["volumeMounts"]
        assert {"name": claims[0]["metadata"]["name"], "mountPath": "/data"} in mounts
        for deployment in mocks.of_type(DEPLOYMENT):
            assert deployment.inputs["spec"]["strategy"] == {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            }

    return settled(app, ran, check)


@pulumi.runtime.test
def test_only_traefik_service_is_a_load_balancer(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)

    def check() -> None:
        services = mocks.of_type(SERVICE)
        assert {s.name for s in services} == {*prod_plan.workloads, "backend-headless", "redis-headless"}
        balancers = {s.name for s in services if s.inputs["spec"].get("type") == "LoadBalancer"}
        assert balancers == {"traefik"}
        for s in services:
            if s.name != "traefik":
                assert s.inputs["spec"].get("type", "ClusterIP") == "ClusterIP", s.name
        # 80 (redirected to https) and 443; never the metrics port.
        assert mocks.named(SERVICE, "traefik").inputs["spec"]["ports"] == [
            {"name": "web", "port": 80, "targetPort": "web"},
            {"name": "websecure", "port": 443, "targetPort": "websecure"},
        ]

    return settled(app, ran, check)


@pulumi.runtime.test
def test_traefik_load_balancer_keeps_client_addresses_and_sends_only_to_nodes_with_a_pod(
    mocks, ran, prod_config, prod_plan
):
    app = build(prod_config, prod_plan)

    def check() -> None:
        spec = mocks.named(SERVICE, "traefik").inputs["spec"]
        # Local: no second hop through another node, the client's address kept; GKE's health check probes the
        # healthCheckNodePort, which the API server allocates (not pinned: immutable once set, and a fixed number
        # could collide on a shared cluster) and GKE opens to its health-check ranges itself.
        assert spec["externalTrafficPolicy"] == "Local"
        assert "healthCheckNodePort" not in spec
        for service in mocks.of_type(SERVICE):
            if service.name != "traefik":
                assert "externalTrafficPolicy" not in service.inputs["spec"], service.name
        # Client addresses now reach the pods as they are: Traefik's policy admits every source, on its two
        # serving ports only (the health check is answered by the node's dataplane, not a pod: no rule for it).
        rule = _client_rule(mocks.named(NETPOL, "traefik"))
        assert "from" not in rule
        assert rule["ports"] == [{"port": 8000, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}]

    return settled(app, ran, check)


@pulumi.runtime.test
def test_traefik_drains_before_it_stops(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)
    drain = prod_config.workloads["traefik"].app.drain
    assert drain is not None
    # It accepts until GKE's health check (every 8 s, 1 s timeout, 3 failures) has dropped its node.
    assert drain.accept_seconds >= LB_UNHEALTHY_AFTER_SECONDS == 25

    def check() -> None:
        traefik = controller(mocks, "traefik")
        args = main_container(traefik)["args"]
        for entry_point in ("web", "websecure"):
            life_cycle = f"--entryPoints.{entry_point}.transport.lifeCycle"
            assert f"{life_cycle}.requestAcceptGraceTimeout={drain.accept_seconds}s" in args
            assert f"{life_cycle}.graceTimeOut={drain.finish_seconds}s" in args
        # The ping answers 503 from the first second of the drain, on an entry point that still accepts: the
        # readiness probe fails at once and the pod leaves the Service's endpoints (and its node the LB's).
        assert "--ping.terminatingStatusCode=503" in args and "--ping.entryPoint=web" in args
        assert main_container(traefik)["readinessProbe"]["httpGet"]["path"] == "/ping"
        # The kubelet waits out both phases and a margin before SIGKILL.
        grace = pod_spec(traefik)["terminationGracePeriodSeconds"]
        assert grace == drain.accept_seconds + drain.finish_seconds + drain.margin_seconds == 45
        for name in set(prod_plan.workloads) - {"traefik"}:
            assert "terminationGracePeriodSeconds" not in pod_spec(controller(mocks, name)), name

    return settled(app, ran, check)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"drain": {"accept_seconds": 24, "finish_seconds": 10}}, "shorter than the 25 s"),
        ({"service_type": "ClusterIP", "drain": None}, "external_traffic_policy applies to a LoadBalancer"),
    ],
)
def test_spec_table_refuses_a_drain_or_traffic_policy_the_load_balancer_cannot_honour(changes, message):
    facts = SPECS["traefik"].model_dump()
    with pytest.raises(ValidationError, match=message):
        WorkloadSpec.model_validate({**facts, **changes})


# --- network policy -----------------------------------------------------------------------------------------------


def _is_scrape_rule(rule: dict[str, Any]) -> bool:
    return any("namespaceSelector" in peer for peer in rule.get("from", []))


def _client_rule(policy: Registered) -> dict[str, Any]:
    """The one rule of a policy that admits the workload's clients (the other rules admit scrapers)."""
    rules = [rule for rule in policy.inputs["spec"]["ingress"] if not _is_scrape_rule(rule)]
    assert len(rules) == 1, policy.name
    return rules[0]


def _scrape_rules(policy: Registered) -> list[dict[str, Any]]:
    """The rules of a policy that admit pods of other namespaces (the scrapers)."""
    return [rule for rule in policy.inputs["spec"]["ingress"] if _is_scrape_rule(rule)]


def _sources(policy: Registered) -> list[str] | None:
    """Names of the workloads a policy admits as clients; None when it admits every source."""
    peers = _client_rule(policy).get("from")
    if peers is None:
        return None
    return sorted(peer["podSelector"]["matchLabels"][NAME] for peer in peers)


def _scraper_rule(port: int, *namespaces: str) -> dict[str, Any]:
    """The rule admitting every pod of `namespaces` on `port` only."""
    return {
        "from": [{"namespaceSelector": {"matchLabels": {NAMESPACE_NAME: ns}}} for ns in namespaces],
        "ports": [{"port": port, "protocol": "TCP"}],
    }


@pulumi.runtime.test
def test_redis_admits_only_backend_and_pod_router(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)

    def check() -> None:
        redis = mocks.named(NETPOL, "redis")
        assert redis.inputs["spec"]["podSelector"] == {"matchLabels": {NAME: "redis", INSTANCE: "hyperstudy-prod"}}
        assert redis.inputs["spec"]["policyTypes"] == ["Ingress"]
        assert _sources(redis) == ["backend", "pod-router"]
        assert redis.inputs["spec"]["ingress"][0]["ports"] == [{"port": 6379, "protocol": "TCP"}]
        assert _sources(mocks.named(NETPOL, "backend")) == ["pod-router", "traefik"]
        for name in ("frontend", "pod-router", "metrics-service"):
            assert _sources(mocks.named(NETPOL, name)) == ["traefik"], name
        traefik = mocks.named(NETPOL, "traefik")
        assert _sources(traefik) is None  # from anywhere...
        # ...on the two public entry points only (http to redirect, https), never the metrics port.
        assert traefik.inputs["spec"]["ingress"][0]["ports"] == [
            {"port": 8000, "protocol": "TCP"},
            {"port": 8443, "protocol": "TCP"},
        ]
        deny = mocks.named(NETPOL, "default-deny-ingress")
        assert deny.inputs["spec"]["podSelector"] == {}
        assert deny.inputs["spec"]["policyTypes"] == ["Ingress"]
        assert "ingress" not in deny.inputs["spec"]

    return settled(app, ran, check)


@pulumi.runtime.test
def test_prometheus_is_admitted_only_on_the_metrics_port_of_the_scraped_workloads(mocks, ran, stack):
    config, plan = stack
    app = build(config, plan)

    def check() -> None:
        assert config.monitoring.prometheus_namespace == "monitoring"
        for name in plan.workloads:
            policy, facts = mocks.named(NETPOL, name), config.workloads[name].app
            # The clients keep exactly their rule: the served ports, from the spec's clients (or anyone if public).
            served = [facts.port, *(p.port for p in facts.extra_ports)]
            assert _client_rule(policy)["ports"] == [{"port": port, "protocol": "TCP"} for port in served], name
            assert _sources(policy) == (None if facts.public else sorted(facts.clients)), name
            if name not in SCRAPES:
                assert _scrape_rules(policy) == [], name
                assert "namespaceSelector" not in json.dumps(policy.inputs), name
                continue
            assert _scrape_rules(policy) == [_scraper_rule(SCRAPES[name][1], "monitoring")], name
        # Traefik's metrics port is not public: only its two entry points are open to every source.
        traefik = mocks.named(NETPOL, "traefik")
        assert _client_rule(traefik)["ports"] == [{"port": 8000, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}]
        assert {p["port"] for r in _scrape_rules(traefik) for p in r["ports"]} == {9100}

    return settled(app, ran, check)


def test_every_client_of_the_spec_table_is_a_workload_of_it():
    for name, spec in SPECS.items():
        assert set(spec.clients) <= set(SPECS) - {name}, name


# --- security -----------------------------------------------------------------------------------------------------


@pulumi.runtime.test
def test_security_context_is_restricted_everywhere(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)

    def check() -> None:
        for ctrl in (r for r in mocks.resources if r.typ in CONTROLLERS):
            spec, facts = pod_spec(ctrl), prod_config.workloads[ctrl.name].app
            pod = spec["securityContext"]
            assert pod["runAsNonRoot"] is True, ctrl.name
            assert pod["runAsUser"] == facts.run_as_user > 0, ctrl.name
            assert pod["fsGroup"] == facts.run_as_group, ctrl.name
            assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, ctrl.name
            assert spec["automountServiceAccountToken"] is (ctrl.name == "traefik"), ctrl.name
            assert spec["serviceAccountName"] == ctrl.name
            mounted = set()
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                sc = container["securityContext"]
                assert sc["allowPrivilegeEscalation"] is False, ctrl.name
                assert sc["capabilities"] == {"drop": ["ALL"]}, ctrl.name
                assert sc["readOnlyRootFilesystem"] is facts.read_only_root_filesystem, ctrl.name
                mounted |= {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert {v.path for v in facts.scratch} <= mounted, ctrl.name
            empty_dirs = [v for v in spec.get("volumes", []) if "emptyDir" in v]
            assert len(empty_dirs) == len(facts.scratch), ctrl.name
        accounts = {r.name: r.inputs["automountServiceAccountToken"] for r in mocks.of_type(SERVICE_ACCOUNT)}
        assert accounts == {name: name == "traefik" for name in prod_plan.workloads}
        labels = mocks.named(NAMESPACE, "hyperstudy").inputs["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.33"

    return settled(app, ran, check)


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of every permission a role's rules give."""
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _reads(rules: list[dict[str, Any]]) -> set[tuple[str, str]]:
    grants = _grants(rules)
    return {(g, r) for g, r, _ in grants if {(g, r, v) for v in ("list", "watch")} <= grants}


@pulumi.runtime.test
def test_traefik_reads_its_namespace_through_a_role_and_only_cluster_scoped_kinds_cluster_wide(
    mocks, ran, prod_config, prod_plan
):
    app = build(prod_config, prod_plan)

    def check() -> None:
        # In the namespace: everything the providers watch there, Secrets (TLS) included.
        (role,) = mocks.of_type(ROLE)
        assert role.inputs["metadata"]["namespace"] == "hyperstudy"
        assert _reads(role.inputs["rules"]) == {
            ("", "services"),
            ("", "secrets"),
            ("discovery.k8s.io", "endpointslices"),
            ("networking.k8s.io", "ingresses"),
        }
        # The one write: the load balancer's address into its Ingresses' status. No traefik.io CRD is read: the
        # routes are Ingresses.
        assert {(g, r, v) for g, r, v in _grants(role.inputs["rules"]) if v not in ("get", "list", "watch")} == {
            ("networking.k8s.io", "ingresses/status", "update")
        }
        (binding,) = mocks.of_type(ROLE_BINDING)
        assert binding.inputs["metadata"]["namespace"] == "hyperstudy"
        assert binding.inputs["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role.inputs["metadata"]["name"],
        }
        assert binding.inputs["subjects"] == [{"kind": "ServiceAccount", "name": "traefik", "namespace": "hyperstudy"}]
        # Cluster-wide: only kinds that have no namespace. No Secret, Service or Ingress of another namespace.
        (cluster_role,) = mocks.of_type(CLUSTER_ROLE)
        assert cluster_role.inputs["metadata"]["name"] == "hyperstudy-traefik"
        assert {resource for _, resource, _ in _grants(cluster_role.inputs["rules"])} == {"ingressclasses", "nodes"}
        assert ("networking.k8s.io", "ingressclasses") in _reads(cluster_role.inputs["rules"])
        assert ("", "nodes") in _reads(cluster_role.inputs["rules"])  # Traefik 3.1+ syncs Nodes before it routes
        (cluster_binding,) = mocks.of_type(CLUSTER_ROLE_BINDING)
        assert cluster_binding.inputs["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "hyperstudy-traefik",
        }
        assert cluster_binding.inputs["subjects"] == binding.inputs["subjects"]
        # Read-only cluster-wide.
        assert {verb for _, _, verb in _grants(cluster_role.inputs["rules"])} <= {"get", "list", "watch"}

    return settled(app, ran, check)


@pulumi.runtime.test
def test_no_cluster_wide_grant_reaches_secrets(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)

    def check() -> None:
        cluster_roles = {r.inputs["metadata"]["name"]: r for r in mocks.of_type(CLUSTER_ROLE)}
        for binding in mocks.of_type(CLUSTER_ROLE_BINDING):
            ref = binding.inputs["roleRef"]
            assert ref["kind"] == "ClusterRole"  # and it is one of ours, whose rules are known
            rules = cluster_roles[ref["name"]].inputs["rules"]
            assert not {(g, r) for g, r, _ in _grants(rules)} & {("", "secrets"), ("", "*"), ("*", "*")}, ref
        for binding in mocks.of_type(ROLE_BINDING):
            assert binding.inputs["roleRef"]["kind"] == "Role"  # a ClusterRole here would read as much as its rules

    return settled(app, ran, check)


@pulumi.runtime.test
def test_traefik_watches_only_its_namespace_and_its_own_ingress_class(mocks, ran, prod_config, prod_plan):
    config = with_namespace(prod_config, "hs-blue")
    app = build(config, prod_plan)

    def check() -> None:
        args = main_container(controller(mocks, "traefik"))["args"]
        scope = [a for a in args if a.startswith("--providers.kubernetesingress.")]
        assert scope == [
            "--providers.kubernetesingress.namespaces=hs-blue",
            "--providers.kubernetesingress.ingressclass=hs-blue-traefik",
            "--providers.kubernetesingress.ingressendpoint.publishedservice=hs-blue/traefik",
        ]
        # The Ingress provider is on, no CRD provider (no traefik.io CRDs needed); the plan's GOMEMLIMIT is in env,
        # so the runtime arguments end the list untouched.
        assert "--providers.kubernetesingress=true" in args
        assert not any(a.startswith("--providers.kubernetescrd") for a in args)
        (ingress_class,) = mocks.of_type(INGRESS_CLASS)
        assert ingress_class.inputs["metadata"]["name"] == "hs-blue-traefik"
        assert ingress_class.inputs["spec"] == {"controller": "traefik.io/ingress-controller"}
        annotations = ingress_class.inputs["metadata"].get("annotations", {})
        assert "ingressclass.kubernetes.io/is-default-class" not in annotations  # not every Ingress of the cluster
        assert {r.inputs["metadata"]["namespace"] for r in mocks.of_type(ROLE) + mocks.of_type(ROLE_BINDING)} == {
            "hs-blue"
        }
        assert {r.inputs["metadata"]["name"] for r in mocks.of_type(CLUSTER_ROLE)} == {"hs-blue-traefik"}
        # No other workload gains the arguments.
        for name in set(prod_plan.workloads) - {"traefik"}:
            assert "hs-blue" not in json.dumps(main_container(controller(mocks, name)).get("args", [])), name

    return settled(app, ran, check)


@pulumi.runtime.test
def test_traefik_starts_with_its_access_and_the_cluster_role_narrows_after_the_role_exists(
    mocks, ran, prod_config, prod_plan
):
    seen: dict[str, pulumi.ResourceOptions] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        seen[f"{args.type_}::{args.name}"] = args.opts

    app = HyperStudyApp(
        "hyperstudy",
        HyperStudyAppArgs(config=prod_config, plan=prod_plan),
        opts=pulumi.ResourceOptions(transformations=[record]),
    )

    def check() -> None:
        traefik = set(seen["hyperstudy:workloads:Workload::traefik"].depends_on)
        assert {app.namespace, app.traefik_role_binding, app.traefik_cluster_role_binding, app.ingress_class} <= traefik
        assert set(seen["hyperstudy:workloads:Workload::frontend"].depends_on) == {app.namespace}
        # Where an older version granted the namespaced reads cluster-wide, they exist in the Role before they go.
        assert app.traefik_role_binding in seen[f"{CLUSTER_ROLE}::hyperstudy-traefik"].depends_on

    return settled(app, ran, check)


def test_two_stacks_in_one_cluster_share_no_cluster_scoped_name(mocks, prod_config, prod_plan):
    def cluster_scoped(resources: list[Registered]) -> set[tuple[str, str]]:
        return {
            (r.typ, r.inputs["metadata"]["name"])
            for r in resources
            if r.custom and "namespace" not in r.inputs["metadata"]
        }

    blue = cluster_scoped(render(mocks, with_namespace(prod_config, "hs-blue"), prod_plan))
    green = cluster_scoped(render(mocks, with_namespace(prod_config, "hs-green"), prod_plan))
    assert {typ for typ, _ in blue} == {NAMESPACE, CLUSTER_ROLE, CLUSTER_ROLE_BINDING, INGRESS_CLASS}
    assert blue.isdisjoint(green)


# --- VPA, images, labels ------------------------------------------------------------------------------------------


@pulumi.runtime.test
def test_vpa_recommends_only_within_the_plan(mocks, ran, stack):
    config, plan = stack
    app = build(config, plan)

    def check() -> None:
        vpas = mocks.of_type(VPA)
        assert {v.name for v in vpas} == set(plan.workloads)
        for vpa in vpas:
            w = plan.workloads[vpa.name]
            assert vpa.inputs["apiVersion"] == "autoscaling.k8s.io/v1"
            spec = vpa.inputs["spec"]
            assert spec["updatePolicy"] == {"updateMode": "Off"}
            assert spec["targetRef"] == {
                "apiVersion": "apps/v1",
                "kind": config.workloads[vpa.name].app.kind,
                "name": vpa.name,
            }
            [policy] = spec["resourcePolicy"]["containerPolicies"]
            assert policy["containerName"] == vpa.name
            assert policy["minAllowed"] == {"memory": w.memory_request}
            assert policy["maxAllowed"] == {"memory": w.memory_limit}

    return settled(app, ran, check)


@pulumi.runtime.test
def test_images_come_from_the_config(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)

    def check() -> None:
        for name in prod_plan.workloads:
            ctrl = controller(mocks, name)
            image = prod_config.images[name]
            assert main_container(ctrl)["image"] == image
            # The version label is the tag, also of an image pinned by tag and digest (`repo:tag@sha256:...`).
            tag = image.split("@", 1)[0].rsplit(":", 1)[1]
            assert ctrl.inputs["spec"]["template"]["metadata"]["labels"][VERSION] == tag
            assert ctrl.inputs["metadata"]["namespace"] == prod_config.kubernetes.namespace
            # A tag-only image carries checkov's skip of the digest checks, with its reason; a digest none.
            annotations = ctrl.inputs["metadata"].get("annotations") or {}
            if "@" in image:
                assert not any(key.startswith("checkov.io/") for key in annotations), name
            else:
                assert annotations["checkov.io/skip1"].startswith("CKV_K8S_43=pinned by tag"), name
                assert annotations["checkov.io/skip2"].startswith("CKV_K8S_15=pinned by tag"), name
        assert {n for n, i in prod_config.images.items() if "@" in i} == {"redis", "traefik"}  # both kinds here

    return settled(app, ran, check)


@pulumi.runtime.test
def test_recommended_labels_and_stable_selectors(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)

    def check() -> None:
        stable = {NAME, INSTANCE}
        for r in (r for r in mocks.resources if r.custom):
            labels = r.inputs["metadata"].get("labels", {})
            assert labels[PART_OF] == "hyperstudy", r
            assert labels[MANAGED_BY] == "pulumi", r
            assert labels[INSTANCE] == "hyperstudy-prod", r
        for name in prod_plan.workloads:
            ctrl = controller(mocks, name)
            template_labels = ctrl.inputs["spec"]["template"]["metadata"]["labels"]
            assert set(template_labels) == {NAME, INSTANCE, COMPONENT, PART_OF, VERSION, MANAGED_BY}
            assert template_labels[NAME] == name
            assert set(ctrl.inputs["spec"]["selector"]["matchLabels"]) == stable
            assert set(mocks.named(SERVICE, name).inputs["spec"]["selector"]) == stable
            for claim in ctrl.inputs["spec"].get("volumeClaimTemplates", []):
                assert set(claim["metadata"]["labels"]) == stable
        text = json.dumps([r.inputs for r in mocks.resources])
        assert "optimized" not in text and "baseline" not in text, "the profile leaked into a manifest"

    return settled(app, ran, check)


@pulumi.runtime.test
def test_children_are_parented_to_their_component(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)
    backend = app.workloads["backend"]
    workload, app_type = "hyperstudy:workloads:Workload", "hyperstudy:workloads:HyperStudyApp"

    def check(urns: list[str]) -> None:
        # A mock URN names the parent's type before `$` (the engine's names every ancestor): enough to see the chain.
        statefulset, service, monitor, workload_urn, app_urn = (urn.split("::", 2)[2] for urn in urns)
        assert statefulset == f"{workload}$kubernetes:apps/v1:StatefulSet::backend"
        assert service == f"{workload}$kubernetes:core/v1:Service::backend"
        assert monitor == f"{workload}${POD_MONITOR}::backend"
        assert workload_urn == f"{app_type}${workload}::backend"
        assert app_urn == f"pulumi:pulumi:Stack${app_type}::hyperstudy"
        assert all(r.provider is None for r in mocks.resources)  # the provider comes through the parent chain
        ran.append(True)

    assert isinstance(backend, Workload)
    assert backend.pod_monitor is not None
    return pulumi.Output.all(
        backend.controller.urn, backend.service.urn, backend.pod_monitor.urn, backend.urn, app.urn
    ).apply(check)


# --- scraping: PodMonitor, PodMonitoring -------------------------------------------------------------------------


def test_exactly_the_node_services_and_traefik_export_metrics():
    assert {name for name, facts in SPECS.items() if facts.metrics_path is not None} == set(SCRAPES)
    for name, (port_name, port, path) in SCRAPES.items():
        facts = SPECS[name]
        assert (facts.scrape_port_name, facts.scrape_port, facts.metrics_path) == (port_name, port, path), name
    for name in ("frontend", "redis"):
        assert (SPECS[name].scrape_port, SPECS[name].scrape_port_name) == (None, None), name


@pulumi.runtime.test
def test_scraped_workloads_get_a_pod_monitor_with_the_release_label_port_and_path(mocks, ran, stack):
    config, plan = stack
    app = build(config, plan)

    def check() -> None:
        monitors = mocks.of_type(POD_MONITOR)
        assert {m.name for m in monitors} == set(SCRAPES) & set(plan.workloads) == set(SCRAPES)
        assert mocks.of_type(POD_MONITORING) == []  # prod runs no Managed Prometheus
        for monitor in monitors:
            port_name, port, path = SCRAPES[monitor.name]
            assert monitor.inputs["apiVersion"] == "monitoring.coreos.com/v1"
            assert monitor.inputs["kind"] == "PodMonitor"
            meta = monitor.inputs["metadata"]
            assert meta["name"] == monitor.name
            assert meta["namespace"] == config.kubernetes.namespace
            assert meta["labels"][RELEASE] == config.monitoring.release == "kube-prometheus-stack"
            spec = monitor.inputs["spec"]
            assert spec["podMetricsEndpoints"] == [{"port": port_name, "path": path, "interval": SCRAPE_INTERVAL}]
            # The port is scraped by name: it must be a port of the workload's container, with the expected number.
            ports = {p["name"]: p["containerPort"] for p in main_container(controller(mocks, monitor.name))["ports"]}
            assert ports[port_name] == port, monitor.name
            # The rules join on namespace, pod and container: the operator sets them, and nothing here may drop,
            # rename or override them (no relabelings, no honorLabels, no other namespace).
            assert set(spec) == {"selector", "podMetricsEndpoints"}, monitor.name
            # The object is a PodMonitor the operator's schema knows, field for field.
            model = PodMonitor.model_validate(monitor.inputs)
            assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == monitor.inputs
        for name, workload in app.workloads.items():
            if name not in SCRAPES:
                assert workload.pod_monitor is None and workload.pod_monitoring is None, name

    return settled(app, ran, check)


@pulumi.runtime.test
def test_pod_monitors_select_exactly_their_workloads_pods(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)

    def check() -> None:
        pods = {
            ctrl.name: ctrl.inputs["spec"]["template"]["metadata"]["labels"]
            for ctrl in mocks.resources
            if ctrl.typ in CONTROLLERS
        }
        for monitor in mocks.of_type(POD_MONITOR):
            selector = monitor.inputs["spec"]["selector"]
            assert selector == {"matchLabels": {NAME: monitor.name, INSTANCE: "hyperstudy-prod"}}
            assert selector == controller(mocks, monitor.name).inputs["spec"]["selector"]
            matched = {name for name, labels in pods.items() if selector["matchLabels"].items() <= labels.items()}
            assert matched == {monitor.name}

    return settled(app, ran, check)


@pulumi.runtime.test
def test_traefik_serves_metrics_on_its_own_entry_point_not_on_the_public_one(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)

    def check() -> None:
        container = main_container(controller(mocks, "traefik"))
        assert container["ports"] == [
            {"name": "web", "containerPort": 8000, "protocol": "TCP"},
            {"name": "websecure", "containerPort": 8443, "protocol": "TCP"},
            {"name": "metrics", "containerPort": 9100, "protocol": "TCP"},
        ]
        args = container["args"]
        for flag in (
            "--metrics.prometheus=true",
            "--metrics.prometheus.entryPoint=metrics",
            "--entryPoints.metrics.address=:9100",
            # Routes that name no entry point are served on websecure only, not also on the metrics port.
            "--entryPoints.websecure.asDefault=true",
        ):
            assert flag in args, flag
        assert not any(a.startswith("--entryPoints.metrics.asDefault") for a in args)
        # The LoadBalancer exposes the two entry points; Prometheus scrapes the pods.
        assert [p["name"] for p in mocks.named(SERVICE, "traefik").inputs["spec"]["ports"]] == ["web", "websecure"]
        for name in set(prod_plan.workloads) - {"traefik"}:
            assert len(main_container(controller(mocks, name))["ports"]) == 1, name

    return settled(app, ran, check)


@pulumi.runtime.test
def test_managed_prometheus_adds_a_pod_monitoring_and_admits_its_collectors(mocks, ran, prod_config, prod_plan):
    config = with_monitoring(prod_config, managed_prometheus=True)
    app = build(config, prod_plan)

    def check() -> None:
        # In addition to the PodMonitors: kube-prometheus-stack still scrapes what Managed Prometheus does.
        assert {m.name for m in mocks.of_type(POD_MONITOR)} == set(SCRAPES)
        monitorings = mocks.of_type(POD_MONITORING)
        assert {m.name for m in monitorings} == set(SCRAPES)
        for monitoring in monitorings:
            port_name, _, path = SCRAPES[monitoring.name]
            assert monitoring.inputs["apiVersion"] == "monitoring.googleapis.com/v1"
            assert monitoring.inputs["kind"] == "PodMonitoring"
            assert monitoring.inputs["metadata"]["namespace"] == config.kubernetes.namespace
            spec = monitoring.inputs["spec"]
            assert spec["selector"] == controller(mocks, monitoring.name).inputs["spec"]["selector"]
            assert spec["endpoints"] == [{"port": port_name, "path": path, "interval": SCRAPE_INTERVAL}]
            assert spec["targetLabels"] == {"metadata": ["pod", "container"]}  # namespace is always set
            assert app.workloads[monitoring.name].pod_monitoring is not None
        for name in SCRAPES:
            rules = _scrape_rules(mocks.named(NETPOL, name))
            assert rules == [_scraper_rule(SCRAPES[name][1], GMP_NAMESPACE, "monitoring")], name
        for name in ("frontend", "redis"):
            assert _scrape_rules(mocks.named(NETPOL, name)) == [], name

    return settled(app, ran, check)


@pulumi.runtime.test
def test_managed_prometheus_alone_ships_no_pod_monitor_and_admits_only_its_collectors(
    mocks, ran, prod_config, prod_plan
):
    # A cluster without kube-prometheus-stack has no monitoring.coreos.com CRDs: a PodMonitor would be refused.
    config = with_monitoring(prod_config, prometheus_operator=False, managed_prometheus=True, install_stack=False)
    app = build(config, prod_plan)

    def check() -> None:
        assert mocks.of_type(POD_MONITOR) == []
        assert "monitoring.coreos.com" not in json.dumps([r.inputs for r in mocks.resources])
        assert {m.name for m in mocks.of_type(POD_MONITORING)} == set(SCRAPES)
        for name, workload in app.workloads.items():
            assert workload.pod_monitor is None, name
            # Only the collectors scrape: the namespace of a Prometheus that is not there is not admitted.
            expected = [_scraper_rule(SCRAPES[name][1], GMP_NAMESPACE)] if name in SCRAPES else []
            assert _scrape_rules(mocks.named(NETPOL, name)) == expected, name

    return settled(app, ran, check)


@pulumi.runtime.test
def test_without_managed_prometheus_no_pod_monitoring_and_no_collectors(mocks, ran, prod_config, prod_plan):
    config = with_monitoring(prod_config, prometheus_operator=True, managed_prometheus=False)
    app = build(config, prod_plan)

    def check() -> None:
        assert mocks.of_type(POD_MONITORING) == []
        assert {m.name for m in mocks.of_type(POD_MONITOR)} == set(SCRAPES)
        assert GMP_NAMESPACE not in json.dumps([p.inputs for p in mocks.of_type(NETPOL)])

    return settled(app, ran, check)


@pulumi.runtime.test
def test_a_workload_nobody_scrapes_opens_its_metrics_port_to_no_one(mocks, ran, prod_config, prod_plan):
    # Not a stack config can say (one backend is required), but WorkloadArgs can: an empty scraper list must not
    # become a rule with an empty `from`, which admits every source.
    wargs = HyperStudyAppArgs(config=prod_config, plan=prod_plan).workload_args()["traefik"]
    wargs = wargs.model_copy(update={"prometheus_operator": False, "managed_prometheus": False})
    assert wargs.scraper_namespaces == ()
    workload = Workload("traefik", wargs)

    def check(_: Any) -> None:
        assert workload.pod_monitor is None and workload.pod_monitoring is None
        assert mocks.of_type(POD_MONITOR) == mocks.of_type(POD_MONITORING) == []
        ingress = mocks.named(NETPOL, "traefik").inputs["spec"]["ingress"]
        # The public entry points, nothing else.
        assert ingress == [{"ports": [{"port": 8000, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}]}]
        ran.append(True)

    return pulumi.Output.all(workload.network_policy.urn, workload.controller.urn).apply(check)


def test_the_scrape_interval_is_the_monitorings_own_not_a_second_constant():
    """The rule groups evaluate at names.SCRAPE_INTERVAL: the scrape configs import it rather than repeat it."""
    tree = ast.parse(Path(components.workload.__file__).read_text(encoding="utf-8"))
    assigned = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and target.id == "SCRAPE_INTERVAL"
    ]
    assert assigned == []
    imported = {
        (node.module, alias.name) for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    assert ("monitoring.names", "SCRAPE_INTERVAL") in imported
    assert components.workload.SCRAPE_INTERVAL == SCRAPE_INTERVAL


@pulumi.runtime.test
def test_release_and_prometheus_namespace_come_from_the_config(mocks, ran, prod_config, prod_plan):
    config = with_monitoring(prod_config, release="kps-prod", prometheus_namespace="observability")
    app = build(config, prod_plan)

    def check() -> None:
        monitors = mocks.of_type(POD_MONITOR)
        assert {m.name for m in monitors} == set(SCRAPES)
        assert {m.inputs["metadata"]["labels"][RELEASE] for m in monitors} == {"kps-prod"}
        for name in SCRAPES:
            policy = mocks.named(NETPOL, name)
            assert _scrape_rules(policy) == [_scraper_rule(SCRAPES[name][1], "observability")], name
        policies = json.dumps([p.inputs for p in mocks.of_type(NETPOL)])
        assert '"monitoring"' not in policies and "kube-prometheus-stack" not in json.dumps(
            [m.inputs for m in monitors]
        )

    return settled(app, ran, check)


def test_profile_switch_changes_no_scrape_config(mocks, prod_config, prod_plan, baseline_config, baseline_plan):
    def scrape_config(resources: list[Registered]) -> dict[tuple[str, str], Any]:
        return {(r.typ, r.name): r.inputs for r in resources if r.typ in (POD_MONITOR, POD_MONITORING)}

    optimized = scrape_config(render(mocks, with_monitoring(prod_config, managed_prometheus=True), prod_plan))
    baseline = scrape_config(render(mocks, with_monitoring(baseline_config, managed_prometheus=True), baseline_plan))
    assert optimized == baseline
    assert {name for _, name in optimized} == set(SCRAPES)
    assert {typ for typ, _ in optimized} == {POD_MONITOR, POD_MONITORING}


# --- node pool -----------------------------------------------------------------------------------------------------


@pulumi.runtime.test
def test_every_pod_is_pinned_to_the_given_node_pool(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan, node_pool="hyperstudy-pool")

    def check() -> None:
        controllers = [r for r in mocks.resources if r.typ in CONTROLLERS]
        assert len(controllers) == len(prod_plan.workloads)
        for ctrl in controllers:
            assert pod_spec(ctrl)["nodeSelector"] == {GKE_NODEPOOL: "hyperstudy-pool"}, ctrl.name

    return settled(app, ran, check)


@pulumi.runtime.test
def test_without_a_node_pool_pods_may_run_on_any_node(mocks, ran, prod_config, prod_plan):
    app = build(prod_config, prod_plan)

    def check() -> None:
        for ctrl in (r for r in mocks.resources if r.typ in CONTROLLERS):
            assert "nodeSelector" not in pod_spec(ctrl), ctrl.name

    return settled(app, ran, check)


@pulumi.runtime.test
def test_the_node_selector_names_the_pool_gke_creates(mocks, ran, prod_config, prod_plan):
    cluster = prod_config.cluster
    pool = NodePool(
        "hyperstudy",
        NodePoolArgs(
            cluster_name=cluster.name,
            location=cluster.location,
            regional=cluster.regional,
            nodes=prod_plan.nodes,
            pool=prod_config.nodes,
            pool_name="hs-prod",
        ),
    )
    app = build(prod_config, prod_plan, node_pool=pool.pool_name)

    def check(_: Any) -> None:
        gke_name = mocks.named(NODE_POOL, "hyperstudy").inputs["name"]
        assert gke_name == "hs-prod"
        for ctrl in (r for r in mocks.resources if r.typ in CONTROLLERS):
            assert pod_spec(ctrl)["nodeSelector"] == {GKE_NODEPOOL: gke_name}, ctrl.name
        ran.append(True)

    return pulumi.Output.all(pool.node_pool.urn, *[r.urn for r in children(app)]).apply(check)


@pytest.mark.parametrize("name", ["", "Pool", "pool_a", "-pool", "pool-", "p" * 41])
def test_app_args_refuse_a_node_pool_gke_would_not_name(prod_config, prod_plan, name):
    with pytest.raises(ValidationError, match="node_pool"):
        HyperStudyAppArgs(config=prod_config, plan=prod_plan, node_pool=name)


# --- whole-manifest properties ------------------------------------------------------------------------------------


def _strip_sizes(resources: list[Registered]) -> dict[tuple[str, str], Any]:
    """The manifests without what a profile switch may change: container resources and runtime settings."""
    out = {}
    for r in resources:
        inputs = json.loads(json.dumps(r.inputs))
        if r.typ in CONTROLLERS:
            for container in inputs["spec"]["template"]["spec"]["containers"]:
                container.pop("resources")
                container.pop("env", None)
                container.pop("args", None)
        if r.typ == VPA:
            inputs["spec"].pop("resourcePolicy")
        out[(r.typ, r.name)] = inputs
    return out


def test_profile_switch_changes_only_sizes(mocks, prod_config, prod_plan, baseline_config, baseline_plan):
    optimized = render(mocks, prod_config, prod_plan)
    baseline = render(mocks, baseline_config, baseline_plan)
    assert _strip_sizes(optimized) == _strip_sizes(baseline)
    assert optimized != baseline  # and the sizes did change


def test_manifests_validate_against_the_kubernetes_schema(mocks, stack):
    config, plan = stack
    version = config.kubernetes.version
    resources = render(mocks, config, plan)
    checked = 0
    for r in (r for r in resources if r.custom):
        if r.typ in CRDS:
            continue  # kubernetes-validate has no schema for CRDs (PodMonitors: see the scrape tests)
        try:
            kubernetes_validate.validate(r.inputs, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{r.typ} {r.name}: {str(err).splitlines()[0]}")
        checked += 1
    # Every object but one VPA per workload and one PodMonitor per scraped workload (no Managed Prometheus in prod).
    assert checked == len([r for r in resources if r.custom]) - len(plan.workloads) - len(SCRAPES)


# --- the application facts come from the config ---------------------------------------------------------------


def _with_workload(base: StackConfig, name: str, **changes: Any) -> StackConfig:
    """`base` with other settings for one workload, validated like a stack file (its `app` merged over the dump)."""
    workloads = base.model_dump()["workloads"]
    workloads[name] = {**workloads[name], **changes}
    return StackConfig.model_validate({**base.model_dump(), "workloads": workloads})


def test_the_spec_table_says_what_each_image_runs_and_redis_runs_alone():
    assert {name: spec.runtime for name, spec in SPECS.items()} == RUNTIMES
    assert {name: spec.max_replicas for name, spec in SPECS.items() if spec.max_replicas is not None} == {"redis": 1}


@pytest.mark.parametrize("stack", sorted(p.name.split(".")[1] for p in ROOT.glob("Pulumi.*.yaml")))
def test_every_stack_file_agrees_with_the_spec_table(stack):
    config = load_stack(stack, ROOT)
    workload_args = HyperStudyAppArgs(config=config, plan=build_plan(config, stack)).workload_args()
    assert {name: w.runtime for name, w in config.workloads.items()} == {n: RUNTIMES[n] for n in workload_args}
    assert {name: w.spec for name, w in workload_args.items()} == {n: SPECS[n] for n in workload_args}


def test_the_manifests_carry_the_facts_the_stack_gives_over_the_built_in_ones(mocks, prod_config, prod_plan):
    # The frontend on another port, under another port name, checked by a command instead of an HTTP GET.
    app = {"port": 8081, "port_name": "web", "probes": {"readiness": {"check": {"type": "exec", "command": ["true"]}}}}
    config = _with_workload(prod_config, "frontend", app=app)
    facts = config.workloads["frontend"].app
    assert facts.probes.liveness == SPECS["frontend"].probes.liveness  # what the stack did not give stays built in
    resources = render(mocks, config, prod_plan)
    deployment = next(r for r in resources if r.typ == DEPLOYMENT and r.name == "frontend")
    container = main_container(deployment)
    assert container["ports"] == [{"name": "web", "containerPort": 8081, "protocol": "TCP"}]
    assert container["readinessProbe"]["exec"] == {"command": ["true"]}
    assert "httpGet" not in container["readinessProbe"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/", "port": "web"}
    service = next(r for r in resources if r.typ == SERVICE and r.name == "frontend")
    assert [(p["name"], p["port"], p["targetPort"]) for p in service.inputs["spec"]["ports"]] == [("web", 8081, "web")]
    policy = next(r for r in resources if r.typ == NETPOL and r.name == "frontend")
    assert [p["port"] for rule in policy.inputs["spec"]["ingress"] for p in rule["ports"]] == [8081]


def test_app_args_refuse_a_plan_of_another_profile(prod_config, baseline_plan):
    with pytest.raises(ValidationError, match="profile"):
        HyperStudyAppArgs(config=prod_config, plan=baseline_plan)


def test_workload_args_refuse_the_plan_of_another_workload(prod_config, prod_plan):
    with pytest.raises(ValidationError, match="plan is for workload 'redis'"):
        WorkloadArgs(
            name="backend",
            plan=prod_plan.workloads["redis"],
            spec=prod_config.workloads["backend"].app,
            image=prod_config.images["backend"],
            namespace="hyperstudy",
            instance="hyperstudy-prod",
            release="kube-prometheus-stack",
            prometheus_namespace="monitoring",
            prometheus_operator=True,
            managed_prometheus=False,
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"spec": {"runtime": "go"}}, "image runs 'go'"),
        ({"spec": {"max_replicas": 1}}, "at most 1"),
        ({"node_pool": "Pool"}, "node_pool"),
        # Forcing a scaled controller's apply would take nothing from the scaler (ignore_changes drops its field) but
        # would take every other manager's fields.
        ({"replicas_managed_externally": True, "force_apply": True}, "force_apply is for a controller whose"),
    ],
)
def test_workload_args_refuse_what_the_application_cannot_run(prod_config, prod_plan, changes, message):
    fields = HyperStudyAppArgs(config=prod_config, plan=prod_plan).workload_args()["backend"].model_dump()
    assert prod_plan.workloads["backend"].replicas == 2
    if "spec" in changes:
        changes = {"spec": {**fields["spec"], **changes["spec"]}}
    with pytest.raises(ValidationError, match=message):
        WorkloadArgs.model_validate({**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"metrics_port": 9100}, "metrics_port without metrics_path"),
        ({"metrics_path": "/metrics", "metrics_port": 3000}, "metrics_port is the workload's port"),
        ({"metrics_path": "/metrics", "metrics_port": 9100, "metrics_port_name": "http"}, "already the name"),
        ({"metrics_path": "metrics"}, "should match pattern"),
    ],
)
def test_spec_table_refuses_an_inconsistent_metrics_endpoint(changes, message):
    facts = {**SPECS["backend"].model_dump(), "metrics_path": None}
    with pytest.raises(ValidationError, match=message):
        WorkloadSpec.model_validate({**facts, **changes})


def test_spec_table_refuses_storage_on_a_deployment():
    facts = SPECS["redis"].model_dump()
    with pytest.raises(ValidationError, match="storage needs kind StatefulSet"):
        WorkloadSpec.model_validate({**facts, "kind": "Deployment"})


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("ghcr.io/hyperstudy/backend:2.14.0", "2.14.0"),
        ("localhost:5000/redis:7.4.2-alpine", "7.4.2-alpine"),
        ("ghcr.io/hyperstudy/backend:2.14.0@sha256:" + "a" * 64, "2.14.0"),
        ("ghcr.io/hyperstudy/backend@sha256:" + "a" * 64, None),
        ("localhost:5000/redis", None),
    ],
)
def test_image_version_is_the_tag(image, version):
    assert image_version(image) == version
