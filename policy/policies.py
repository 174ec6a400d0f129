"""The rules of the hyperstudy-safety pack: plain validation functions, and `policies()` that wraps them.

Each function takes what the engine hands a policy (`ResourceValidationArgs` or `StackValidationArgs`) and a
`report_violation` callback, and reports one sentence per problem naming the object (`Deployment
hyperstudy/frontend`), the field and its value. Nothing here builds a `PolicyPack`: `policy/__main__.py` does, and
the tests call `policy.validate(...)` on what the offline render registered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.kube import (
    REPLICATED_KINDS,
    containers,
    get,
    is_kind,
    items,
    object_name,
    pod_kind,
    pod_labels,
    pod_spec,
    replicas,
    resources_problems,
    selector_matches,
    show,
    whole_number,
)
from policy.releases import check_alerts_reach_a_person, check_helm_pods_sized
from policy.runtime_memory import MIB, runtime_settings
from policy.stack_plan import PlanUnavailable
from sizing.core import quantity

NODE_POOL_TYPE = "gcp:container/nodePool:NodePool"
# How components/workload.py marks traefik: the one workload allowed a LoadBalancer Service.
COMPONENT_LABEL = "app.kubernetes.io/component"
INGRESS_COMPONENT = "ingress"
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$")


def _size(size_bytes: int) -> str:
    """Bytes as a canonical memory quantity when whole MiB (`384Mi`), else as bytes."""
    if size_bytes % MIB == 0:
        return quantity.format_mib(size_bytes // MIB)
    return f"{size_bytes} bytes"


def _pods(args: ResourceValidationArgs) -> tuple[str, Mapping[str, Any] | None] | None:
    """(`Deployment ns/name`, pod spec) of a resource that runs pods; None for every other resource."""
    kind = pod_kind(args.resource_type)
    if kind is None:
        return None
    return object_name(kind, args.props, args.name), pod_spec(kind, args.props)


# --- 1. memory requests and limits ------------------------------------------------------------------------------------


def check_memory_requests_and_limits(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every container has a memory request and limit, request ≤ limit, and CPU/memory quantities are canonical."""
    target = _pods(args)
    if target is None:
        return
    obj, spec = target
    for container in containers(spec):
        for problem in resources_problems(container.spec.get("resources")):
            report_violation(f"{obj} {container.label}: {problem}")


# --- 2. runtime memory settings below the limit -----------------------------------------------------------------------


def check_runtime_memory(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Node.js heap, Redis maxmemory and GOMEMLIMIT are below the container's memory limit."""
    target = _pods(args)
    if target is None:
        return
    obj, spec = target
    for container in containers(spec):
        settings = runtime_settings(container.spec)
        limit_value = get(container.spec, "resources", "limits", "memory")
        try:
            limit = quantity.to_mib(limit_value) * MIB
        except quantity.QuantityError:
            limit = None  # missing or unreadable: memory-requests-and-limits reports it
        where = f"{obj} {container.label}"
        for setting in settings:
            said = f"{where}: {setting.runtime} {setting.text} in {setting.where}"
            if setting.problem is not None:
                report_violation(f"{said} {setting.problem}")
            elif limit is None:
                continue
            elif setting.unlimited:
                report_violation(f"{said} sets no ceiling at all: set one below its memory limit {limit_value}")
            elif setting.size is not None and setting.size >= limit:
                report_violation(f"{said} is {_size(setting.size)}, not below its memory limit {limit_value}")


# --- 3. restricted pod security ---------------------------------------------------------------------------------------

_HOST_NAMESPACES = {"hostNetwork": "network", "hostPID": "process", "hostIPC": "IPC"}


def check_pod_security(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No privileged or escalating container, no host namespaces or hostPath volumes, every container non-root."""
    target = _pods(args)
    if target is None:
        return
    obj, spec = target
    if spec is None:
        return
    for field, namespace in _HOST_NAMESPACES.items():
        if spec.get(field) is True:
            report_violation(f"{obj}: {field} is true, so its pods would share the node's {namespace} namespace")
    for volume in items(spec.get("volumes")):
        host_path = get(volume, "hostPath")
        if host_path is not None:
            path = get(host_path, "path")
            report_violation(f"{obj}: volume {get(volume, 'name')} is a hostPath volume mounting the node's {path}")
    pod_non_root = get(spec, "securityContext", "runAsNonRoot")
    for container in containers(spec):
        where = f"{obj} {container.label}"
        context = container.spec.get("securityContext")
        if get(context, "privileged") is True:
            report_violation(f"{where}: securityContext.privileged is true")
        escalation = get(context, "allowPrivilegeEscalation")
        if escalation is not False:
            report_violation(f"{where}: securityContext.allowPrivilegeEscalation is {show(escalation)}, not false")
        own = get(context, "runAsNonRoot")
        if own is False:
            report_violation(f"{where}: securityContext.runAsNonRoot is false")
        elif own is not True and pod_non_root is not True:
            report_violation(
                f"{where}: runAsNonRoot is {show(pod_non_root)} on the pod and absent on the container, not true"
            )


# --- 4. rollouts and disruption budgets -------------------------------------------------------------------------------


def _is_zero(value: Any) -> bool:
    return whole_number(value) == 0 or value == "0%"


def check_rolling_updates(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A multi-replica Deployment or StatefulSet rolls out without ever running fewer ready replicas."""
    kind = pod_kind(args.resource_type)
    if kind not in ("Deployment", "StatefulSet"):
        return
    count = replicas(args.props)
    if count <= 1:
        return
    obj = object_name(kind, args.props, args.name)
    if kind == "Deployment":
        strategy = get(args.props, "spec", "strategy")
        strategy_type = get(strategy, "type")
        if strategy_type not in (None, "RollingUpdate"):
            report_violation(
                f"{obj}: strategy.type is {strategy_type}, so all {count} replicas stop before any new one"
            )
            return
        max_unavailable = get(strategy, "rollingUpdate", "maxUnavailable")
        if not _is_zero(max_unavailable):
            report_violation(
                f"{obj}: strategy.rollingUpdate.maxUnavailable is {show(max_unavailable)}, not 0, so a rollout "
                "takes a replica away before its replacement is ready"
            )
        elif _is_zero(get(strategy, "rollingUpdate", "maxSurge")):
            report_violation(f"{obj}: strategy.rollingUpdate.maxSurge is 0 with maxUnavailable 0, so no pod can move")
        return
    # A StatefulSet cannot surge (a pod's name is its identity): it replaces one pod at a time, and what keeps the
    # others serving is a readiness probe on every container, minReadySeconds and the PodDisruptionBudget.
    strategy = get(args.props, "spec", "updateStrategy")
    strategy_type = get(strategy, "type")
    if strategy_type not in (None, "RollingUpdate"):
        report_violation(f"{obj}: updateStrategy.type is {strategy_type}, not RollingUpdate")
    max_unavailable = get(strategy, "rollingUpdate", "maxUnavailable")
    if max_unavailable is not None and (isinstance(max_unavailable, str) or whole_number(max_unavailable) != 1):
        report_violation(
            f"{obj}: updateStrategy.rollingUpdate.maxUnavailable is {show(max_unavailable)}, not 1 or absent, "
            "so an update may take more than one pod down at once"
        )
    for container in containers(pod_spec(kind, args.props)):
        if not container.init and container.spec.get("readinessProbe") is None:
            report_violation(
                f"{obj} {container.label}: no readinessProbe, so the rolling update moves on before the pod serves"
            )


def check_disruption_budgets(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every multi-replica controller has a PodDisruptionBudget in its namespace that selects its pods."""
    budgets = [
        (get(r.props, "metadata", "namespace"), get(r.props, "spec", "selector"))
        for r in args.resources
        if is_kind(r.resource_type, "PodDisruptionBudget", ("policy",))
    ]
    for resource in args.resources:
        kind = pod_kind(resource.resource_type)
        if kind not in REPLICATED_KINDS:
            continue
        count = replicas(resource.props)
        if count <= 1:
            continue
        namespace = get(resource.props, "metadata", "namespace")
        labels = pod_labels(kind, resource.props)
        if any(ns == namespace and selector_matches(selector, labels) for ns, selector in budgets):
            continue
        shown = ", ".join(f"{key}={labels[key]}" for key in sorted(labels)) or "none"
        report_violation(
            f"{object_name(kind, resource.props, resource.name)}: {count} replicas but no PodDisruptionBudget in "
            f"namespace {namespace or '(default)'} selects its pod labels ({shown})",
            resource.urn,
        )


# --- 5. pinned images -------------------------------------------------------------------------------------------------


def image_pin_problem(image: Any) -> str | None:
    """Why an image reference is not pinned (no tag, `latest`, a malformed digest), or None when it is."""
    if not isinstance(image, str) or not image:
        return "is absent"
    if "@" in image:
        digest = image.split("@", 1)[1]
        return None if _DIGEST.match(digest) else f"has a malformed digest {digest}"
    last = image.rsplit("/", 1)[-1]  # a registry port (`host:5000/app`) is not a tag
    if ":" not in last:
        return "has no tag, so it means latest"
    tag = last.rsplit(":", 1)[1]
    if tag == "latest":
        return "uses the tag latest, which moves"
    return None if tag else "has an empty tag"


def check_pinned_images(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every container image names an explicit tag other than latest, or a digest."""
    target = _pods(args)
    if target is None:
        return
    obj, spec = target
    for container in containers(spec):
        image = container.spec.get("image")
        problem = image_pin_problem(image)
        if problem is not None:
            report_violation(f"{obj} {container.label}: image {show(image)} {problem}: pin a tag or a digest")


def check_images_by_digest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Advice: every image names a digest (`repo:tag@sha256:...`), so what runs is exactly what was reviewed."""
    target = _pods(args)
    if target is None:
        return
    obj, spec = target
    for container in containers(spec):
        image = container.spec.get("image")
        if isinstance(image, str) and image_pin_problem(image) is None and "@" not in image:
            report_violation(
                f"{obj} {container.label}: image {image} is pinned by tag only: a tag can be pushed again; write "
                "it as repo:tag@sha256:<digest> in the stack's images"
            )


# --- 6. exposure ------------------------------------------------------------------------------------------------------


def check_service_exposure(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """No NodePort Service; a LoadBalancer Service only for the ingress component."""
    if not is_kind(args.resource_type, "Service", ("core",)):
        return
    obj = object_name("Service", args.props, args.name)
    service_type = get(args.props, "spec", "type")
    if service_type == "NodePort":
        report_violation(f"{obj}: type NodePort opens its port on every node: use ClusterIP behind the ingress")
    elif service_type == "LoadBalancer":
        component = get(args.props, "metadata", "labels", COMPONENT_LABEL)
        if component != INGRESS_COMPONENT:
            report_violation(
                f"{obj}: type LoadBalancer with label {COMPONENT_LABEL} {show(component)}, not {INGRESS_COMPONENT}: "
                "only the ingress may be reachable from outside the cluster"
            )


def check_routes_use_tls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every host an Ingress routes is covered by its `tls` (a certificate), and every rule names a host: a
    browser grants camera and microphone only to secure origins, and a route without TLS leaks sessions."""
    if not is_kind(args.resource_type, "Ingress", ("networking.k8s.io", "extensions")):
        return
    obj = object_name("Ingress", args.props, args.name)
    secured = {host for entry in items(get(args.props, "spec", "tls")) for host in items(get(entry, "hosts"))}
    if get(args.props, "spec", "defaultBackend") is not None:
        report_violation(f"{obj}: spec.defaultBackend answers any host, which no certificate covers: route by host")
    for rule in items(get(args.props, "spec", "rules")):
        host = get(rule, "host")
        if host is None:
            report_violation(f"{obj}: a rule without a host answers every name, which no certificate covers")
        elif host not in secured:
            report_violation(f"{obj}: host {host} has no TLS: list it under spec.tls with its certificate's Secret")


# --- 7. node pool bounds ----------------------------------------------------------------------------------------------

_TOTAL = ("totalMinNodeCount", "totalMaxNodeCount")
_PER_ZONE = ("minNodeCount", "maxNodeCount")


def node_pool_autoscaling(lower_bound: int | PlanUnavailable) -> ResourceValidation:
    """The validation of the GKE node pool's autoscaling bounds against the plan's `nodes.lower_bound`."""

    def check_node_pool_autoscaling(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != NODE_POOL_TYPE:
            return
        obj = f"NodePool {args.props.get('name') or args.name}"
        autoscaling = args.props.get("autoscaling")
        if not isinstance(autoscaling, Mapping):
            report_violation(f"{obj}: autoscaling is absent, so the pool cannot grow for peak load or surges")
            return
        location = args.props.get("location")
        has_total = any(autoscaling.get(key) is not None for key in _TOTAL)
        has_per_zone = any(autoscaling.get(key) is not None for key in _PER_ZONE)
        if has_total and has_per_zone:
            report_violation(f"{obj}: autoscaling sets both total and per-zone node counts (GKE takes one kind)")
            return
        if has_per_zone and isinstance(location, str) and location.count("-") == 1:
            report_violation(
                f"{obj}: regional pool (location {location}) sets per-zone minNodeCount/maxNodeCount, which GKE "
                "multiplies by its zones: use totalMinNodeCount/totalMaxNodeCount, the plan's whole-pool counts"
            )
            return
        min_key, max_key = _TOTAL if has_total else _PER_ZONE
        minimum, maximum = whole_number(autoscaling.get(min_key)), whole_number(autoscaling.get(max_key))
        if minimum is None or maximum is None:
            for key, value in ((min_key, minimum), (max_key, maximum)):
                if value is None:
                    report_violation(f"{obj}: autoscaling.{key} is {show(autoscaling.get(key))}, not a node count")
            return
        if minimum > maximum:
            report_violation(f"{obj}: autoscaling.{min_key} {minimum} is above autoscaling.{max_key} {maximum}")
        if isinstance(lower_bound, PlanUnavailable):
            report_violation(f"{obj}: autoscaling.{min_key} cannot be checked: {lower_bound.describe()}")
        elif minimum < lower_bound:
            report_violation(
                f"{obj}: autoscaling.{min_key} {minimum} is below the sizing plan's lower bound of {lower_bound} nodes"
            )

    return check_node_pool_autoscaling


# --- the policies -----------------------------------------------------------------------------------------------------


def policies(lower_bound: int | PlanUnavailable) -> list[Policy]:
    """Every policy of the pack; `lower_bound` is the previewed stack's `nodes.lower_bound` (or why it is unknown)."""
    return [
        ResourceValidationPolicy(
            name="memory-requests-and-limits",
            description=(
                "Every container has a memory request (what the scheduler and the node plan reserve) and a memory "
                "limit (what the kernel enforces), request <= limit, and CPU/memory quantities in the canonical form "
                "the API server stores, so previews show no perpetual diff."
            ),
            validate=check_memory_requests_and_limits,
        ),
        ResourceValidationPolicy(
            name="runtime-memory-below-limit",
            description=(
                "Node.js --max-old-space-size, Redis --maxmemory and GOMEMLIMIT are below the container's memory "
                "limit: at or above it the kernel OOM-kills the process before the runtime collects or evicts."
            ),
            validate=check_runtime_memory,
        ),
        ResourceValidationPolicy(
            name="restricted-pod-security",
            description=(
                "No privileged container, allowPrivilegeEscalation false, no host network/PID/IPC, no hostPath "
                "volume, runAsNonRoot true: a compromised container must not become a compromised node."
            ),
            validate=check_pod_security,
        ),
        ResourceValidationPolicy(
            name="zero-downtime-rolling-updates",
            description=(
                "A multi-replica Deployment rolls out with maxUnavailable 0 (a new pod is ready before an old one "
                "goes). A StatefulSet cannot surge, so it must use RollingUpdate with maxUnavailable absent or 1 and "
                "a readiness probe on every container: with minReadySeconds and its PodDisruptionBudget that is the "
                "equivalent."
            ),
            validate=check_rolling_updates,
        ),
        StackValidationPolicy(
            name="pod-disruption-budgets",
            description=(
                "Every multi-replica workload has a PodDisruptionBudget selecting its pods, so node drains (upgrades, "
                "autoscaler scale-down) never evict all of its replicas at once."
            ),
            validate=check_disruption_budgets,
        ),
        ResourceValidationPolicy(
            name="pinned-images",
            description=(
                "Every image has an explicit tag other than latest, or a digest: a moving tag changes what runs "
                "without a preview, and a rollback cannot return to it."
            ),
            validate=check_pinned_images,
        ),
        ResourceValidationPolicy(
            name="images-pinned-by-digest",
            description=(
                "Advisory: every image names its digest as well as its tag (repo:tag@sha256:...), so the image "
                "that runs is exactly the one reviewed, even if the tag is pushed again. Tag-only images pass "
                "pinned-images and are reported here as a warning."
            ),
            validate=check_images_by_digest,
            enforcement_level=EnforcementLevel.ADVISORY,
        ),
        ResourceValidationPolicy(
            name="public-routes-use-tls",
            description=(
                "Every host an Ingress routes is covered by its tls section (a certificate), and every rule names "
                "a host: browsers grant camera and microphone only to secure origins, so a plain-HTTP route "
                "cannot serve the app's video participants."
            ),
            validate=check_routes_use_tls,
        ),
        ResourceValidationPolicy(
            name="ingress-only-load-balancer",
            description=(
                "Only the ingress Service (label app.kubernetes.io/component: ingress, traefik) may be a "
                "LoadBalancer, and no Service a NodePort: everything else stays behind the ingress."
            ),
            validate=check_service_exposure,
        ),
        ResourceValidationPolicy(
            name="node-pool-autoscaling-bounds",
            description=(
                "The GKE node pool autoscales with min <= max and min at least the sizing plan's node lower bound "
                "(memory, CPU and one-replica-per-node spread), so typical load always fits."
            ),
            validate=node_pool_autoscaling(lower_bound),
        ),
        ResourceValidationPolicy(
            name="helm-pods-sized",
            description=(
                "Every pod a Helm release runs has a memory request and limit in its values, at the paths the chart "
                "inventory (sizing/facts/charts.py) lists, and no hook or test pod the plan does not size is switched "
                "on: a chart's defaults leave its pods BestEffort, first evicted and outside the node plan."
            ),
            validate=check_helm_pods_sized,
        ),
        ResourceValidationPolicy(
            name="alerts-reach-a-person",
            description=(
                "The installed Alertmanager routes critical and warning alerts to a receiver that notifies "
                "someone; without one every alert is dropped. Advisory: it warns on every preview rather than "
                "blocking a stack whose receivers are still to be set up."
            ),
            validate=check_alerts_reach_a_person,
            enforcement_level=EnforcementLevel.ADVISORY,
        ),
    ]
