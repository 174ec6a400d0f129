"""The hyperstudy-safety policies on the offline render of prod: every policy passes the real stack in both profiles,
and each rejects a broken copy of a real resource with one clear message.

Resources reach the policies the way the engine hands them over (read-only proxies, numbers as floats), through
`policy.validate(...)` as the pack's server calls it; no `PolicyPack` is built (it would start a server and block).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UnknownValueError, unknown_checking_proxy

from offline.render import Rendered
from policy.policies import policies
from policy.stack_plan import PlanUnavailable, node_lower_bound
from sizing.config.loader import load_stack
from sizing.config.stack import StackConfig
from sizing.core.model import PROFILES
from sizing.plan.build import build_plan
from sizing.plan.pool_name import versioned_pool_name

if TYPE_CHECKING:  # importing conftest at run time would load it twice and install a second set of mocks
    from tests.conftest import Registered

ROOT = Path(__file__).resolve().parents[2]
# The GKE name the program gives prod's pool (violations name the pool as GKE knows it).
POOL_NAME = versioned_pool_name("hyperstudy", load_stack("prod", ROOT).nodes)
NODE_POOL = "gcp:container/nodePool:NodePool"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
SERVICE = "kubernetes:core/v1:Service"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
OPTIONS = PolicyResourceOptions(
    protect=False,
    ignore_changes=[],
    delete_before_replace=None,
    aliases=[],
    custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
    additional_secret_outputs=[],
)
POLICY_NAMES = [p.name for p in policies(1)]
ADVISORY = {"alerts-reach-a-person", "images-pinned-by-digest"}
FRONTEND_LABELS = (
    "app.kubernetes.io/component=frontend, app.kubernetes.io/instance=hyperstudy-prod, "
    "app.kubernetes.io/managed-by=pulumi, app.kubernetes.io/name=frontend, app.kubernetes.io/part-of=hyperstudy, "
    "app.kubernetes.io/version=2.14.0"
)


# --- rendering and feeding the policies -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def renders(render) -> dict[str, Rendered]:
    """prod rendered once per profile for the whole module."""
    return {profile: render("prod", profile) for profile in PROFILES}


@pytest.fixture(scope="module")
def lower_bounds(prod_config: StackConfig) -> dict[str, int]:
    return {p: build_plan(prod_config.with_profile(p), "prod").nodes.lower_bound for p in PROFILES}


def _engine_value(value: Any) -> Any:
    # The engine sends every number as a protobuf double: replicas arrive as 2.0, not 2.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, dict):
        return {key: _engine_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_engine_value(item) for item in value]
    return value


def engine_props(inputs: dict[str, Any]) -> Any:
    """Inputs as a policy receives them: floats, inside the proxies that raise on values unknown in preview."""
    return unknown_checking_proxy(_engine_value(copy.deepcopy(inputs)))


def urn(resource: Registered) -> str:
    return f"urn:pulumi:prod::hyperstudy-infra::{resource.typ}::{resource.name}"


def run_policy(policy: Policy, resources: list[Registered]) -> list[tuple[str, str | None]]:
    """(message, urn) of every violation `policy` reports over `resources` (its custom resources)."""
    reported: list[tuple[str, str | None]] = []

    def report(message: str, resource_urn: str | None = None) -> None:
        reported.append((message, resource_urn))

    custom = [r for r in resources if r.custom]
    if isinstance(policy, StackValidationPolicy):
        stack = [
            PolicyResource(r.typ, engine_props(r.inputs), urn(r), r.name, OPTIONS, None, None, [], {}) for r in custom
        ]
        assert policy.validate(StackValidationArgs(stack), report) is None
    else:
        assert isinstance(policy, ResourceValidationPolicy)
        for r in custom:
            args = ResourceValidationArgs(r.typ, engine_props(r.inputs), urn(r), r.name, OPTIONS, None)
            assert policy.validate(args, report) is None  # synchronous: nothing left to await
    return reported


def messages(policy: Policy, resources: list[Registered]) -> list[str]:
    return [message for message, _ in run_policy(policy, resources)]


def named(lower_bound: int | PlanUnavailable, name: str) -> Policy:
    (policy,) = [p for p in policies(lower_bound) if p.name == name]
    return policy


def real(rendered: Rendered, typ: str, name: str) -> Registered:
    (resource,) = [r for r in rendered.resources if r.typ == typ and r.name == name]
    return resource


def broken(resource: Registered, breaker: Callable[[dict[str, Any]], Any], typ: str | None = None) -> Registered:
    """A deep copy of a real resource with `breaker` applied to its inputs (and optionally another type)."""
    inputs = copy.deepcopy(resource.inputs)
    breaker(inputs)
    return type(resource)(typ or resource.typ, resource.name, inputs, resource.custom, resource.provider)


def container(inputs: dict[str, Any]) -> dict[str, Any]:
    return inputs["spec"]["template"]["spec"]["containers"][0]


# --- the real stack passes --------------------------------------------------------------------------------------------


def test_the_pack_has_every_mandatory_rule_with_kebab_case_names_and_reasons():
    assert POLICY_NAMES == [
        "memory-requests-and-limits",
        "runtime-memory-below-limit",
        "restricted-pod-security",
        "zero-downtime-rolling-updates",
        "pod-disruption-budgets",
        "pinned-images",
        "images-pinned-by-digest",
        "public-routes-use-tls",
        "ingress-only-load-balancer",
        "node-pool-autoscaling-bounds",
        "helm-pods-sized",
        "alerts-reach-a-person",
    ]
    for policy in policies(1):
        assert policy.name.replace("-", "").isalpha() and policy.name == policy.name.lower()
        assert len(policy.description.split()) >= 15, f"{policy.name} must say why"
        if policy.name in ADVISORY:
            # Loud on every preview, but a stack whose receivers are still being set up (or whose images are
            # pinned by tag) can deploy.
            assert policy.enforcement_level == EnforcementLevel.ADVISORY
        else:
            assert policy.enforcement_level is None  # the pack's MANDATORY applies


@pytest.mark.parametrize("name", POLICY_NAMES)
@pytest.mark.parametrize("profile", PROFILES)
def test_every_policy_passes_the_prod_stack(renders, lower_bounds, profile, name):
    rendered = renders[profile]
    reported = messages(named(lower_bounds[profile], name), rendered.resources)
    if name == "images-pinned-by-digest":
        # Advice, not a failure: prod's images are pinned by tag (the repository cannot know their digests).
        tag_only = [image for image in load_stack("prod", ROOT).images.values() if "@" not in image]
        assert tag_only and len(reported) == len(tag_only)
        assert all("is pinned by tag only" in m for m in reported)
    else:
        assert reported == []


def test_the_render_gives_the_policies_something_to_check(renders):
    # Guards the test above against passing on an empty render.
    for rendered in renders.values():
        types = {r.typ for r in rendered.resources if r.custom}
        assert {DEPLOYMENT, STATEFULSET, SERVICE, PDB, NODE_POOL} <= types


# --- each policy rejects a broken copy of a real resource -------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A real resource of the optimized render, broken by `breaker`, and the one message `policy` must report."""

    policy: str
    typ: str
    name: str
    breaker: Callable[[dict[str, Any]], Any]
    expected: list[str]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A breaker that sets a dotted path (`spec.template.spec.hostNetwork`); list indexes are numbers."""

    def breaker(inputs: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = inputs
        for key in parents:
            target = target[int(key)] if key.isdigit() else target.setdefault(key, {})
        if value is _DELETE:
            del target[last]
        else:
            target[last] = value

    return breaker


def _regional(min_count: int, max_count: int) -> Callable[[dict[str, Any]], None]:
    """A breaker that makes the pool regional with these whole-pool counts, whatever location prod uses."""

    def breaker(inputs: dict[str, Any]) -> None:
        inputs.update(
            location="us-central1",
            autoscaling={"totalMinNodeCount": min_count, "totalMaxNodeCount": max_count, "locationPolicy": "BALANCED"},
        )

    return breaker


_DELETE = object()
C0 = "spec.template.spec.containers.0"
FRONTEND = "Deployment hyperstudy/frontend container frontend"
FRONTEND_INIT = "Deployment hyperstudy/frontend init container migrate"
BACKEND = "StatefulSet hyperstudy/backend container backend"
REDIS = "StatefulSet hyperstudy/redis container redis"
TRAEFIK = "Deployment hyperstudy/traefik container traefik"
CANONICAL = "the form the API server stores (any other spelling shows a diff on every preview)"


def _env(name: str, value: str) -> Callable[[dict[str, Any]], None]:
    def breaker(inputs: dict[str, Any]) -> None:
        container(inputs)["env"] = [{"name": name, "value": value}]

    return breaker


def _redis_maxmemory(value: str) -> Callable[[dict[str, Any]], None]:
    def breaker(inputs: dict[str, Any]) -> None:
        args = container(inputs)["args"]
        args[args.index("--maxmemory") + 1] = value

    return breaker


def _add_init_container(inputs: dict[str, Any]) -> None:
    init = copy.deepcopy(container(inputs))
    init["name"] = "migrate"
    del init["resources"]
    inputs["spec"]["template"]["spec"]["initContainers"] = [init]


def _drop_pdb_selector_match(inputs: dict[str, Any]) -> None:
    inputs["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "frontend-old"


MEMORY = "memory-requests-and-limits"
RUNTIME = "runtime-memory-below-limit"
SECURITY = "restricted-pod-security"
ROLLOUT = "zero-downtime-rolling-updates"
IMAGES = "pinned-images"
EXPOSURE = "ingress-only-load-balancer"
POOL = "node-pool-autoscaling-bounds"

CASES = {
    # 1. memory requests and limits
    "request-above-limit": Case(
        MEMORY,
        DEPLOYMENT,
        "frontend",
        _set(f"{C0}.resources.requests.memory", "256Mi"),
        [f"{FRONTEND}: memory request 256Mi is above its limit 128Mi"],
    ),
    "no-limit": Case(
        MEMORY,
        STATEFULSET,
        "backend",
        _set(f"{C0}.resources.limits", _DELETE),
        [f"{BACKEND}: no memory limit (resources.limits.memory is absent)"],
    ),
    "no-request": Case(
        MEMORY,
        STATEFULSET,
        "redis",
        _set(f"{C0}.resources.requests.memory", _DELETE),
        [f"{REDIS}: no memory request (resources.requests.memory is absent)"],
    ),
    "limit-not-canonical": Case(
        MEMORY,
        DEPLOYMENT,
        "traefik",
        _set(f"{C0}.resources.limits.memory", "0.125Gi"),
        [f"{TRAEFIK}: memory limit 0.125Gi is not canonical: write 128Mi, {CANONICAL}"],
    ),
    "request-not-a-quantity": Case(
        MEMORY,
        STATEFULSET,
        "redis",
        _set(f"{C0}.resources.requests.memory", "32MB"),
        [f"{REDIS}: memory request '32MB' is not a Kubernetes quantity (e.g. '256Mi', '1Gi', '250m')"],
    ),
    "request-a-number": Case(
        MEMORY,
        STATEFULSET,
        "redis",
        _set(f"{C0}.resources.requests.memory", 33554432),
        [f"{REDIS}: memory request 33554432 is a number: write the quantity string 32Mi"],
    ),
    "cpu-not-canonical": Case(
        MEMORY,
        DEPLOYMENT,
        "traefik",
        _set(f"{C0}.resources.requests.cpu", "0.1"),
        [f"{TRAEFIK}: cpu request 0.1 is not canonical: write 100m, {CANONICAL}"],
    ),
    "init-container-unsized": Case(
        MEMORY,
        DEPLOYMENT,
        "frontend",
        _add_init_container,
        [
            f"{FRONTEND_INIT}: no memory request (resources.requests.memory is absent)",
            f"{FRONTEND_INIT}: no memory limit (resources.limits.memory is absent)",
        ],
    ),
    # 2. runtime memory settings below the limit
    "node-heap-at-limit": Case(
        RUNTIME,
        STATEFULSET,
        "backend",
        _env("NODE_OPTIONS", "--max-old-space-size=512"),
        [
            f"{BACKEND}: Node.js heap --max-old-space-size=512 in env NODE_OPTIONS is 512Mi, "
            "not below its memory limit 512Mi"
        ],
    ),
    "node-heap-flag-in-command": Case(
        RUNTIME,
        DEPLOYMENT,
        "pod-router",
        _set(f"{C0}.command", ["node", "--max-old-space-size", "128", "server.js"]),
        [
            "Deployment hyperstudy/pod-router container pod-router: Node.js heap --max-old-space-size 128 in command "
            "is 128Mi, not below its memory limit 112Mi"
        ],
    ),
    "redis-maxmemory-at-limit": Case(
        RUNTIME,
        STATEFULSET,
        "redis",
        _redis_maxmemory("128mb"),
        [f"{REDIS}: Redis maxmemory --maxmemory 128mb in args is 128Mi, not below its memory limit 128Mi"],
    ),
    "redis-maxmemory-in-gb": Case(
        RUNTIME,
        STATEFULSET,
        "redis",
        _redis_maxmemory("1gb"),
        [f"{REDIS}: Redis maxmemory --maxmemory 1gb in args is 1Gi, not below its memory limit 128Mi"],
    ),
    "redis-maxmemory-in-bytes": Case(
        RUNTIME,
        STATEFULSET,
        "redis",
        _redis_maxmemory("134217728"),
        [f"{REDIS}: Redis maxmemory --maxmemory 134217728 in args is 128Mi, not below its memory limit 128Mi"],
    ),
    "redis-maxmemory-unlimited": Case(
        RUNTIME,
        STATEFULSET,
        "redis",
        _redis_maxmemory("0"),
        [
            f"{REDIS}: Redis maxmemory --maxmemory 0 in args sets no ceiling at all: "
            "set one below its memory limit 128Mi"
        ],
    ),
    "gomemlimit-at-limit": Case(
        RUNTIME,
        DEPLOYMENT,
        "traefik",
        _env("GOMEMLIMIT", "128MiB"),
        [f"{TRAEFIK}: Go memory limit GOMEMLIMIT=128MiB in env is 128Mi, not below its memory limit 128Mi"],
    ),
    "gomemlimit-above-limit": Case(
        RUNTIME,
        DEPLOYMENT,
        "traefik",
        _env("GOMEMLIMIT", "1GiB"),
        [f"{TRAEFIK}: Go memory limit GOMEMLIMIT=1GiB in env is 1Gi, not below its memory limit 128Mi"],
    ),
    "gomemlimit-malformed": Case(
        RUNTIME,
        DEPLOYMENT,
        "traefik",
        _env("GOMEMLIMIT", "115MB"),
        [f"{TRAEFIK}: Go memory limit GOMEMLIMIT=115MB in env is not a Go memory limit (e.g. 115MiB)"],
    ),
    # 3. restricted pod security
    "privileged": Case(
        SECURITY,
        DEPLOYMENT,
        "frontend",
        _set(f"{C0}.securityContext.privileged", True),
        [f"{FRONTEND}: securityContext.privileged is true"],
    ),
    "escalation-absent": Case(
        SECURITY,
        DEPLOYMENT,
        "frontend",
        _set(f"{C0}.securityContext.allowPrivilegeEscalation", _DELETE),
        [f"{FRONTEND}: securityContext.allowPrivilegeEscalation is absent, not false"],
    ),
    "escalation-true": Case(
        SECURITY,
        STATEFULSET,
        "backend",
        _set(f"{C0}.securityContext.allowPrivilegeEscalation", True),
        [f"{BACKEND}: securityContext.allowPrivilegeEscalation is true, not false"],
    ),
    "host-network": Case(
        SECURITY,
        DEPLOYMENT,
        "traefik",
        _set("spec.template.spec.hostNetwork", True),
        ["Deployment hyperstudy/traefik: hostNetwork is true, so its pods would share the node's network namespace"],
    ),
    "host-pid": Case(
        SECURITY,
        DEPLOYMENT,
        "frontend",
        _set("spec.template.spec.hostPID", True),
        ["Deployment hyperstudy/frontend: hostPID is true, so its pods would share the node's process namespace"],
    ),
    "host-ipc": Case(
        SECURITY,
        DEPLOYMENT,
        "frontend",
        _set("spec.template.spec.hostIPC", True),
        ["Deployment hyperstudy/frontend: hostIPC is true, so its pods would share the node's IPC namespace"],
    ),
    "host-path": Case(
        SECURITY,
        DEPLOYMENT,
        "frontend",
        _set("spec.template.spec.volumes", [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock"}}]),
        ["Deployment hyperstudy/frontend: volume docker is a hostPath volume mounting the node's /var/run/docker.sock"],
    ),
    "root-allowed": Case(
        SECURITY,
        DEPLOYMENT,
        "frontend",
        _set("spec.template.spec.securityContext.runAsNonRoot", _DELETE),
        [f"{FRONTEND}: runAsNonRoot is absent on the pod and absent on the container, not true"],
    ),
    "container-opts-out-of-non-root": Case(
        SECURITY,
        STATEFULSET,
        "redis",
        _set(f"{C0}.securityContext.runAsNonRoot", False),
        [f"{REDIS}: securityContext.runAsNonRoot is false"],
    ),
    # 4. rolling updates (the PodDisruptionBudget half is a stack policy, tested below)
    "deployment-max-unavailable": Case(
        ROLLOUT,
        DEPLOYMENT,
        "frontend",
        _set("spec.strategy.rollingUpdate.maxUnavailable", 1),
        [
            "Deployment hyperstudy/frontend: strategy.rollingUpdate.maxUnavailable is 1, not 0, so a rollout takes "
            "a replica away before its replacement is ready"
        ],
    ),
    "deployment-default-strategy": Case(
        ROLLOUT,
        DEPLOYMENT,
        "traefik",
        _set("spec.strategy", _DELETE),
        [
            "Deployment hyperstudy/traefik: strategy.rollingUpdate.maxUnavailable is absent, not 0, so a rollout "
            "takes a replica away before its replacement is ready"
        ],
    ),
    "deployment-recreate": Case(
        ROLLOUT,
        DEPLOYMENT,
        "pod-router",
        _set("spec.strategy", {"type": "Recreate"}),
        ["Deployment hyperstudy/pod-router: strategy.type is Recreate, so all 2 replicas stop before any new one"],
    ),
    "deployment-no-surge-no-unavailable": Case(
        ROLLOUT,
        DEPLOYMENT,
        "frontend",
        _set("spec.strategy.rollingUpdate.maxSurge", "0%"),
        [
            "Deployment hyperstudy/frontend: strategy.rollingUpdate.maxSurge is 0 with maxUnavailable 0, "
            "so no pod can move"
        ],
    ),
    "statefulset-on-delete": Case(
        ROLLOUT,
        STATEFULSET,
        "backend",
        _set("spec.updateStrategy", {"type": "OnDelete"}),
        ["StatefulSet hyperstudy/backend: updateStrategy.type is OnDelete, not RollingUpdate"],
    ),
    "statefulset-max-unavailable": Case(
        ROLLOUT,
        STATEFULSET,
        "backend",
        _set("spec.updateStrategy.rollingUpdate.maxUnavailable", 2),
        [
            "StatefulSet hyperstudy/backend: updateStrategy.rollingUpdate.maxUnavailable is 2, not 1 or absent, so "
            "an update may take more than one pod down at once"
        ],
    ),
    "statefulset-no-readiness": Case(
        ROLLOUT,
        STATEFULSET,
        "backend",
        _set(f"{C0}.readinessProbe", _DELETE),
        [f"{BACKEND}: no readinessProbe, so the rolling update moves on before the pod serves"],
    ),
    # 5. pinned images
    "image-latest": Case(
        IMAGES,
        DEPLOYMENT,
        "frontend",
        _set(f"{C0}.image", "ghcr.io/hyperstudy/frontend:latest"),
        [
            f"{FRONTEND}: image ghcr.io/hyperstudy/frontend:latest uses the tag latest, which moves: "
            "pin a tag or a digest"
        ],
    ),
    "image-untagged": Case(
        IMAGES,
        STATEFULSET,
        "redis",
        _set(f"{C0}.image", "docker.io/library/redis"),
        [f"{REDIS}: image docker.io/library/redis has no tag, so it means latest: pin a tag or a digest"],
    ),
    "image-registry-port-is-no-tag": Case(
        IMAGES,
        DEPLOYMENT,
        "traefik",
        _set(f"{C0}.image", "registry.local:5000/traefik"),
        [f"{TRAEFIK}: image registry.local:5000/traefik has no tag, so it means latest: pin a tag or a digest"],
    ),
    # 6. exposure
    "load-balancer-not-ingress": Case(
        EXPOSURE,
        SERVICE,
        "backend",
        _set("spec.type", "LoadBalancer"),
        [
            "Service hyperstudy/backend: type LoadBalancer with label app.kubernetes.io/component api, not ingress: "
            "only the ingress may be reachable from outside the cluster"
        ],
    ),
    "load-balancer-unlabelled": Case(
        EXPOSURE,
        SERVICE,
        "traefik",
        _set("metadata.labels", {}),
        [
            "Service hyperstudy/traefik: type LoadBalancer with label app.kubernetes.io/component absent, not "
            "ingress: only the ingress may be reachable from outside the cluster"
        ],
    ),
    "node-port": Case(
        EXPOSURE,
        SERVICE,
        "frontend",
        _set("spec.type", "NodePort"),
        ["Service hyperstudy/frontend: type NodePort opens its port on every node: use ClusterIP behind the ingress"],
    ),
    # 7. node pool bounds (prod's lower bound is 2)
    "pool-min-below-plan": Case(
        POOL,
        NODE_POOL,
        "hyperstudy",
        _regional(1, 3),
        [f"NodePool {POOL_NAME}: autoscaling.totalMinNodeCount 1 is below the sizing plan's lower bound of 2 nodes"],
    ),
    "pool-min-above-max": Case(
        POOL,
        NODE_POOL,
        "hyperstudy",
        _regional(4, 3),
        [f"NodePool {POOL_NAME}: autoscaling.totalMinNodeCount 4 is above autoscaling.totalMaxNodeCount 3"],
    ),
    "pool-regional-per-zone": Case(
        POOL,
        NODE_POOL,
        "hyperstudy",
        lambda i: i.update(location="us-central1", autoscaling={"minNodeCount": 2, "maxNodeCount": 3}),
        [
            f"NodePool {POOL_NAME}: regional pool (location us-central1) sets per-zone minNodeCount/maxNodeCount, "
            "which GKE multiplies by its zones: use totalMinNodeCount/totalMaxNodeCount, the plan's whole-pool counts"
        ],
    ),
    "pool-zonal-min-below-plan": Case(
        POOL,
        NODE_POOL,
        "hyperstudy",
        lambda i: i.update(location="us-central1-a", autoscaling={"minNodeCount": 1, "maxNodeCount": 3}),
        [f"NodePool {POOL_NAME}: autoscaling.minNodeCount 1 is below the sizing plan's lower bound of 2 nodes"],
    ),
    "pool-without-autoscaling": Case(
        POOL,
        NODE_POOL,
        "hyperstudy",
        _set("autoscaling", _DELETE),
        [f"NodePool {POOL_NAME}: autoscaling is absent, so the pool cannot grow for peak load or surges"],
    ),
}


RELEASE = "kubernetes:helm.sh/v3:Release"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
KPS = "Release monitoring/kube-prometheus-stack"
PROMETHEUS_RESOURCES = "values.prometheus.prometheusSpec.resources (prometheus)"
ROUTES = "values.alertmanager.config.route.routes"


def _routes(keep: Callable[[dict[str, Any]], bool]) -> Callable[[dict[str, Any]], None]:
    def breaker(inputs: dict[str, Any]) -> None:
        route = inputs["values"]["alertmanager"]["config"]["route"]
        route["routes"] = [r for r in route["routes"] if keep(r)]

    return breaker


CASES |= {
    "helm-pod-without-resources": Case(
        "helm-pods-sized",
        RELEASE,
        "hyperstudy",
        _set("values.prometheus.prometheusSpec.resources", _DELETE),
        [
            f"{KPS} {PROMETHEUS_RESOURCES}: no memory request (resources.requests.memory is absent)",
            f"{KPS} {PROMETHEUS_RESOURCES}: no memory limit (resources.limits.memory is absent)",
        ],
    ),
    "helm-sidecar-limit-not-canonical": Case(
        "helm-pods-sized",
        RELEASE,
        "hyperstudy",
        _set("values.grafana.sidecar.resources.limits.memory", "1024Mi"),
        [
            f"{KPS} values.grafana.sidecar.resources (grafana-sc-dashboard): memory limit 1024Mi is not canonical: "
            f"write 1Gi, {CANONICAL}"
        ],
    ),
    "helm-hook-pods-switched-on": Case(
        "helm-pods-sized",
        RELEASE,
        "hyperstudy",
        _set("values.prometheusOperator.admissionWebhooks.enabled", True),
        [
            f"{KPS}: values.prometheusOperator.admissionWebhooks.enabled is true, not false: it runs pods the plan "
            "does not size"
        ],
    ),
    "helm-chart-without-inventory": Case(
        "helm-pods-sized",
        RELEASE,
        "hyperstudy",
        _set("chart", "loki"),
        [
            f"{KPS}: chart loki has no pod inventory in sizing/facts/charts.py (known: cert-manager, "
            "kube-prometheus-stack), "
            "so its pods' requests and limits cannot be checked: add it there and size its pods in the plan"
        ],
    ),
    "cert-manager-solver-unsized": Case(
        "helm-pods-sized",
        RELEASE,
        "hyperstudy-cert-manager",
        _set("values.extraArgs", []),
        [
            "Release cert-manager/cert-manager values.extraArgs --acme-http01-solver-resource-* (acmesolver): no "
            f"memory {field} (resources.{field}s.memory is absent)"
            for field in ("request", "limit")
        ],
    ),
    "cert-manager-startup-check-unsized": Case(
        "helm-pods-sized",
        RELEASE,
        "hyperstudy-cert-manager",
        _set("values.startupapicheck.resources", _DELETE),
        [
            "Release cert-manager/cert-manager values.startupapicheck.resources (cert-manager-startupapicheck): no "
            f"memory {field} (resources.{field}s.memory is absent)"
            for field in ("request", "limit")
        ],
    ),
    "cert-manager-startup-check-off": Case(
        "helm-pods-sized",
        RELEASE,
        "hyperstudy-cert-manager",
        _set("values.startupapicheck.enabled", False),
        [
            "Release cert-manager/cert-manager: values.startupapicheck.enabled is false, not true: resources created "
            "after the release rely on it (sizing/facts/charts.py)"
        ],
    ),
    "route-without-tls": Case(
        "public-routes-use-tls",
        INGRESS,
        "hyperstudy-ingress",
        _set("spec.tls", _DELETE),
        [
            "Ingress hyperstudy/hyperstudy: host app.hyperstudy.org has no TLS: list it under spec.tls with its "
            "certificate's Secret"
        ],
    ),
    "route-to-a-host-the-certificate-lacks": Case(
        "public-routes-use-tls",
        INGRESS,
        "hyperstudy-ingress",
        _set("spec.rules.0.host", "www.hyperstudy.org"),
        [
            "Ingress hyperstudy/hyperstudy: host www.hyperstudy.org has no TLS: list it under spec.tls with its "
            "certificate's Secret"
        ],
    ),
    "route-without-a-host": Case(
        "public-routes-use-tls",
        INGRESS,
        "hyperstudy-ingress",
        _set("spec.rules.0.host", _DELETE),
        ["Ingress hyperstudy/hyperstudy: a rule without a host answers every name, which no certificate covers"],
    ),
    "default-backend": Case(
        "public-routes-use-tls",
        INGRESS,
        "hyperstudy-ingress",
        _set("spec.defaultBackend", {"service": {"name": "frontend", "port": {"name": "http"}}}),
        [
            "Ingress hyperstudy/hyperstudy: spec.defaultBackend answers any host, which no certificate covers: route "
            "by host"
        ],
    ),
    "alerts-without-receivers": Case(
        "alerts-reach-a-person",
        RELEASE,
        "hyperstudy",
        _set("values.alertmanager.config.receivers", [{"name": "null"}]),
        [
            f"{KPS}: {severity} alerts reach {receivers}, which notifies no one: configure monitoring.alerting "
            "receivers and route this severity to them"
            for severity, receivers in (("critical", "oncall, team-chat"), ("warning", "team-chat"))
        ],
    ),
    "warning-alerts-routed-nowhere": Case(
        "alerts-reach-a-person",
        RELEASE,
        "hyperstudy",
        _routes(lambda r: r["matchers"] != ['severity = "warning"']),
        [
            f"{KPS}: warning alerts reach null, which notifies no one: configure monitoring.alerting receivers "
            "and route this severity to them"
        ],
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_policy_rejects_a_broken_copy_of_a_real_resource(renders, lower_bounds, case):
    resource = broken(real(renders["optimized"], case.typ, case.name), case.breaker)
    policy = named(lower_bounds["optimized"], case.policy)
    assert messages(policy, [resource]) == case.expected
    # The same resource unbroken passes: the message is about the break, not about the resource.
    assert messages(policy, [real(renders["optimized"], case.typ, case.name)]) == []


ALLOWED = {
    "redis-maxmemory-just-below": (RUNTIME, STATEFULSET, "redis", _redis_maxmemory("127mb")),
    "redis-maxmemory-decimal-megabytes": (RUNTIME, STATEFULSET, "redis", _redis_maxmemory("134m")),  # 10^6 bytes
    "gomemlimit-one-byte-below": (RUNTIME, DEPLOYMENT, "traefik", _env("GOMEMLIMIT", "134217727")),
    "gomemlimit-off": (RUNTIME, DEPLOYMENT, "traefik", _env("GOMEMLIMIT", "off")),
    "non-root-on-the-container-only": (
        SECURITY,
        DEPLOYMENT,
        "frontend",
        lambda i: (
            _set("spec.template.spec.securityContext.runAsNonRoot", _DELETE)(i),
            _set(f"{C0}.securityContext.runAsNonRoot", True)(i),
        ),
    ),
    "single-replica-may-surge-down": (
        ROLLOUT,
        DEPLOYMENT,
        "metrics-service",
        _set("spec.strategy.rollingUpdate.maxUnavailable", 1),
    ),
    "deployment-max-unavailable-zero-percent": (
        ROLLOUT,
        DEPLOYMENT,
        "frontend",
        _set("spec.strategy.rollingUpdate.maxUnavailable", "0%"),
    ),
    "statefulset-max-unavailable-one": (
        ROLLOUT,
        STATEFULSET,
        "backend",
        _set("spec.updateStrategy.rollingUpdate.maxUnavailable", 1),
    ),
    "image-by-digest": (
        IMAGES,
        DEPLOYMENT,
        "frontend",
        _set(f"{C0}.image", "ghcr.io/hyperstudy/frontend@sha256:" + "a" * 64),
    ),
    "pool-zonal-per-zone": (
        POOL,
        NODE_POOL,
        "hyperstudy",
        lambda i: i.update(location="us-central1-a", autoscaling={"minNodeCount": 2, "maxNodeCount": 3}),
    ),
    "image-by-tag-and-digest": (
        "images-pinned-by-digest",
        DEPLOYMENT,
        "frontend",
        _set(f"{C0}.image", "ghcr.io/hyperstudy/frontend:2.14.0@sha256:" + "b" * 64),
    ),
    "alertmanager-switched-off": (
        "alerts-reach-a-person",
        RELEASE,
        "hyperstudy",
        _set("values.alertmanager.enabled", False),
    ),
    "chart-named-with-its-repository": (
        "helm-pods-sized",
        RELEASE,
        "hyperstudy",
        _set("chart", "prometheus-community/kube-prometheus-stack"),
    ),
    "legacy-match-routes": (
        "alerts-reach-a-person",
        RELEASE,
        "hyperstudy",
        lambda i: i["values"]["alertmanager"]["config"]["route"].update(
            routes=[
                {"match": {"severity": "critical"}, "receiver": "oncall"},
                {"match_re": {"severity": "warn.*"}, "receiver": "team-chat"},
            ]
        ),
    ),
}


@pytest.mark.parametrize("case", ALLOWED.values(), ids=ALLOWED.keys())
def test_policies_accept_safe_variants(renders, lower_bounds, case):
    policy_name, typ, name, breaker = case
    resource = broken(real(renders["optimized"], typ, name), breaker)
    assert messages(named(lower_bounds["optimized"], policy_name), [resource]) == []


@pytest.mark.parametrize(
    ("typ", "kind", "wrap"),
    [
        ("kubernetes:apps/v1:DaemonSet", "DaemonSet", lambda spec: {"spec": spec}),
        ("kubernetes:batch/v1:Job", "Job", lambda spec: {"spec": {"template": spec["template"]}}),
        ("kubernetes:batch/v1:CronJob", "CronJob", lambda spec: {"spec": {"jobTemplate": {"spec": spec}}}),
        ("kubernetes:core/v1:Pod", "Pod", lambda spec: {"spec": spec["template"]["spec"]}),
    ],
)
def test_pod_rules_cover_every_kind_that_runs_pods(renders, typ, kind, wrap):
    frontend = real(renders["optimized"], DEPLOYMENT, "frontend")

    def as_kind(inputs: dict[str, Any]) -> None:
        del container(inputs)["resources"]["limits"]
        body = wrap(inputs.pop("spec"))
        inputs.update(body, kind=kind)

    resource = broken(frontend, as_kind, typ=typ)
    assert messages(named(2, MEMORY), [resource]) == [
        f"{kind} hyperstudy/frontend container frontend: no memory limit (resources.limits.memory is absent)"
    ]


def test_a_custom_resource_named_like_a_workload_is_not_a_workload(renders):
    frontend = real(renders["optimized"], DEPLOYMENT, "frontend")
    resource = broken(frontend, lambda i: container(i).pop("resources"), typ="kubernetes:example.com/v1:Deployment")
    assert messages(named(2, MEMORY), [resource]) == []


# --- the PodDisruptionBudget stack policy -----------------------------------------------------------------------------


def _without(rendered: Rendered, typ: str, name: str) -> list[Registered]:
    return [r for r in rendered.resources if not (r.typ == typ and r.name == name)]


def _replacing(rendered: Rendered, replacement: Registered) -> list[Registered]:
    return [*_without(rendered, replacement.typ, replacement.name), replacement]


MISSING_FRONTEND_PDB = (
    f"Deployment hyperstudy/frontend: 2 replicas but no PodDisruptionBudget in namespace hyperstudy selects its pod "
    f"labels ({FRONTEND_LABELS})"
)


@pytest.mark.parametrize(
    "stack",
    [
        pytest.param(lambda r: _without(r, PDB, "frontend"), id="no-budget"),
        pytest.param(
            lambda r: _replacing(r, broken(real(r, PDB, "frontend"), _drop_pdb_selector_match)), id="selector"
        ),
        pytest.param(
            lambda r: _replacing(r, broken(real(r, PDB, "frontend"), _set("metadata.namespace", "other"))),
            id="other-namespace",
        ),
        pytest.param(
            lambda r: _replacing(r, broken(real(r, PDB, "frontend"), _set("spec.selector", _DELETE))), id="no-selector"
        ),
    ],
)
def test_a_multi_replica_workload_needs_a_budget_that_selects_its_pods(renders, stack):
    rendered = renders["optimized"]
    frontend = real(rendered, DEPLOYMENT, "frontend")
    reported = run_policy(named(2, "pod-disruption-budgets"), stack(rendered))
    assert reported == [(MISSING_FRONTEND_PDB, urn(frontend))]


def test_a_budget_selecting_by_expression_counts(renders):
    rendered = renders["optimized"]

    def by_expression(inputs: dict[str, Any]) -> None:
        inputs["spec"]["selector"] = {
            "matchExpressions": [
                {"key": "app.kubernetes.io/name", "operator": "In", "values": ["frontend", "frontend-canary"]},
                {"key": "app.kubernetes.io/instance", "operator": "Exists"},
            ]
        }

    stack = _replacing(rendered, broken(real(rendered, PDB, "frontend"), by_expression))
    assert run_policy(named(2, "pod-disruption-budgets"), stack) == []


def test_a_single_replica_workload_needs_no_budget(renders):
    rendered = renders["optimized"]
    assert real(rendered, STATEFULSET, "redis").inputs["spec"]["replicas"] == 1
    assert not [r for r in rendered.resources if r.typ == PDB and r.name == "redis"]
    assert run_policy(named(2, "pod-disruption-budgets"), rendered.resources) == []


# --- the node pool against the plan of the previewed stack ------------------------------------------------------------


def test_an_unknown_stack_gives_a_violation_not_a_crash(renders):
    lower_bound = node_lower_bound("nosuch", ROOT)
    assert isinstance(lower_bound, PlanUnavailable)
    pool = broken(real(renders["optimized"], NODE_POOL, "hyperstudy"), _regional(2, 3))
    assert messages(named(lower_bound, POOL), [pool]) == [
        f"NodePool {POOL_NAME}: autoscaling.totalMinNodeCount cannot be checked: the sizing plan of stack 'nosuch' "
        f"could not be built ({ROOT / 'Pulumi.nosuch.yaml'}: stack file not found; "
        "known stacks: example, prod, staging)"
    ]
    # Only the node-pool policy depends on the plan: the rest of the pack still runs and passes (the advice on
    # tag-only images aside).
    others = [p for p in policies(lower_bound) if p.name not in (POOL, "images-pinned-by-digest")]
    assert all(messages(p, renders["optimized"].resources) == [] for p in others)


def test_the_lower_bound_is_the_plans(prod_plan):
    assert node_lower_bound("prod", ROOT) == prod_plan.nodes.lower_bound == 2


def test_a_value_unknown_in_preview_is_left_to_the_engine(renders):
    # The proxies raise UnknownValueError; the pack's server turns it into "can't run policy during preview"
    # (advisory) instead of the policy passing or failing on a value it has not seen.
    pool = broken(real(renders["optimized"], NODE_POOL, "hyperstudy"), _set("autoscaling.totalMinNodeCount", 0))
    props = _engine_value(copy.deepcopy(pool.inputs))
    props["autoscaling"]["totalMinNodeCount"] = UNKNOWN_NUMBER_VALUE
    args = ResourceValidationArgs(pool.typ, unknown_checking_proxy(props), urn(pool), pool.name, OPTIONS, None)
    with pytest.raises(UnknownValueError):
        named(2, POOL).validate(args, lambda message, resource_urn=None: None)


STACK_FILES = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("stack", STACK_FILES)
def test_every_mandatory_policy_passes_every_stack(render, stack, profile):
    rendered = render(stack, profile)
    lower_bound = node_lower_bound(stack, ROOT)
    assert isinstance(lower_bound, int)
    for policy in policies(lower_bound):
        if policy.name in ADVISORY:
            continue
        assert messages(policy, rendered.resources) == [], (stack, profile, policy.name)
