"""Reading Kubernetes objects the way a policy receives them: which resources run pods, their containers, names.

The engine hands a policy read-only proxies (`Mapping` / `Sequence`, not dict / list) whose numbers are floats
(`replicas: 2.0`), and raises `UnknownValueError` when a value cannot be known during preview. Everything here
accepts those shapes and lets that error through: the engine then reports that the policy could not run during
preview, instead of a policy deciding on a value nobody has seen.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sizing.core import quantity

# Where each pod-running kind keeps its pod spec, and the API groups the kind is served from. Matching the group
# too keeps a custom resource that happens to be called `Deployment` out of the rules.
_POD_SPEC_PATHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Deployment": (("apps", "extensions"), ("spec", "template", "spec")),
    "StatefulSet": (("apps",), ("spec", "template", "spec")),
    "DaemonSet": (("apps", "extensions"), ("spec", "template", "spec")),
    "ReplicaSet": (("apps", "extensions"), ("spec", "template", "spec")),
    "ReplicationController": (("core",), ("spec", "template", "spec")),
    "Job": (("batch",), ("spec", "template", "spec")),
    "CronJob": (("batch",), ("spec", "jobTemplate", "spec", "template", "spec")),
    "Pod": (("core",), ("spec",)),
}

# Controllers whose spec.replicas says how many pods run at once.
REPLICATED_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController")


def group_and_kind(resource_type: str) -> tuple[str, str] | None:
    """`("apps", "Deployment")` for `kubernetes:apps/v1:Deployment`; None for any other provider's type."""
    parts = resource_type.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes":
        return None
    group = parts[1].split("/", 1)[0]
    return group, parts[2]


def is_kind(resource_type: str, kind: str, groups: tuple[str, ...]) -> bool:
    """True when the type is the Kubernetes `kind` served from one of `groups`."""
    parsed = group_and_kind(resource_type)
    return parsed is not None and parsed[1] == kind and parsed[0] in groups


def pod_kind(resource_type: str) -> str | None:
    """The kind of a resource that runs pods (Deployment, StatefulSet, DaemonSet, Job, Pod, ...), else None."""
    parsed = group_and_kind(resource_type)
    if parsed is None or parsed[1] not in _POD_SPEC_PATHS:
        return None
    group, kind = parsed
    return kind if group in _POD_SPEC_PATHS[kind][0] else None


def get(obj: Any, *path: str) -> Any:
    """The value at `path` inside nested mappings, or None where a level is missing or not a mapping."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def items(obj: Any) -> list[Any]:
    """The elements of a list value; [] for a missing one (a string is not a list here)."""
    if isinstance(obj, Sequence) and not isinstance(obj, str):
        return list(obj)
    return []


def whole_number(value: Any) -> int | None:
    """An int from what the engine sends for an integer (2, 2.0 or "2"); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def object_name(kind: str, props: Mapping[str, Any], fallback: str) -> str:
    """`Deployment hyperstudy/frontend`: the kind, the namespace (when set) and the name of an object."""
    name = get(props, "metadata", "name") or fallback
    namespace = get(props, "metadata", "namespace")
    return f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"


def pod_spec(kind: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a pod-running object (a Deployment's template spec, a Pod's spec)."""
    spec = get(props, *_POD_SPEC_PATHS[kind][1])
    return spec if isinstance(spec, Mapping) else None


def pod_labels(kind: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The labels the object's pods carry: its template's labels, or a Pod's own."""
    path = (*_POD_SPEC_PATHS[kind][1][:-1], "metadata", "labels")
    labels = get(props, *path)
    return labels if isinstance(labels, Mapping) else {}


def replicas(props: Mapping[str, Any]) -> int:
    """spec.replicas of a controller; 1 when absent, as the API server defaults it."""
    value = get(props, "spec", "replicas")
    return 1 if value is None else (whole_number(value) or 0)


@dataclass(frozen=True)
class Container:
    """One container of a pod spec and how messages name it (`container web`, `init container migrate`)."""

    label: str
    spec: Mapping[str, Any]
    init: bool


def containers(spec: Mapping[str, Any] | None) -> Iterator[Container]:
    """Every container and init container of a pod spec."""
    if spec is None:
        return
    for field, prefix, init in (("initContainers", "init container", True), ("containers", "container", False)):
        for index, container in enumerate(items(spec.get(field))):
            if isinstance(container, Mapping):
                name = container.get("name") or f"#{index}"
                yield Container(f"{prefix} {name}", container, init)


def selector_matches(selector: Any, labels: Mapping[str, Any]) -> bool:
    """Whether a LabelSelector selects pods with `labels`: matchLabels and matchExpressions, as the API server
    reads them for a policy/v1 PodDisruptionBudget (an empty selector selects every pod, a missing one none)."""
    if not isinstance(selector, Mapping):
        return False
    match_labels = selector.get("matchLabels") or {}
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for expression in items(selector.get("matchExpressions")):
        key, operator = expression.get("key"), expression.get("operator")
        values = items(expression.get("values"))
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False  # the API server rejects it; it selects nothing
    return True


def show(value: Any) -> str:
    """A value as a manifest would show it: `true`, `absent`, `25%`, `2`."""
    if value is None:
        return "absent"
    if isinstance(value, bool):
        return "true" if value else "false"
    number = whole_number(value) if not isinstance(value, str) else None
    return str(number) if number is not None else str(value)


_QUANTITIES = {
    "memory": (quantity.to_mib, quantity.format_mib),
    "cpu": (quantity.to_millicores, quantity.format_millicores),
}


def read_quantity(resource: str, value: Any) -> tuple[int | None, str | None]:
    """(amount in MiB or millicores, problem) of a request or limit; canonical means format(parse(x)) == x."""
    parse, canonical = _QUANTITIES[resource]
    if not isinstance(value, str):
        number = whole_number(value)
        try:
            amount = parse(number)
        except quantity.QuantityError:
            return None, f"{show(value)} is not a Kubernetes quantity (e.g. '256Mi', '1Gi', '250m')"
        return amount, f"{show(value)} is a number: write the quantity string {canonical(amount)}"
    try:
        amount = parse(value)
    except quantity.QuantityError as err:
        return None, str(err)
    if canonical(amount) != value:
        return amount, (
            f"{value} is not canonical: write {canonical(amount)}, the form the API server stores "
            "(any other spelling shows a diff on every preview)"
        )
    return amount, None


def resources_problems(resources: Any) -> list[str]:
    """What is wrong with a container's `resources`: no memory request or limit, a quantity that is not canonical,
    a request above its limit; one sentence each, naming the field."""
    problems: list[str] = []
    amounts: dict[tuple[str, str], int] = {}
    for field in ("request", "limit"):
        values = get(resources, f"{field}s")
        for resource in ("memory", "cpu"):
            value = get(values, resource)
            if value is None:
                if resource == "memory":
                    problems.append(f"no memory {field} (resources.{field}s.memory is absent)")
                continue
            amount, problem = read_quantity(resource, value)
            if problem is not None:
                problems.append(f"{resource} {field} {problem}")
            if amount is not None:
                amounts[resource, field] = amount
    for resource in ("memory", "cpu"):
        request, limit = amounts.get((resource, "request")), amounts.get((resource, "limit"))
        if request is not None and limit is not None and request > limit:
            shown_request = show(get(resources, "requests", resource))
            shown_limit = show(get(resources, "limits", resource))
            problems.append(f"{resource} request {shown_request} is above its limit {shown_limit}")
    return problems
