"""PromQL as text: quoting, matchers, selectors, pod-name regexes, the identifying labels of a pod's and a
container's series and their deduplication, and number literals that read back exactly. Every query the CLI
(`status`, `fit`) and the monitoring package (rules, dashboards) write is built from these, so none is typed twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from sizing.observe.contract import WORKLOAD_LABEL

# The labels that identify one pod's, one container's series.
POD = ("namespace", "pod")
CONTAINER = ("namespace", "pod", "container")


# Pod name suffixes: a StatefulSet pod is `<name>-<ordinal>`, a Deployment pod `<name>-<pod-template-hash>-<id>`.
STATEFULSET_SUFFIX = "[0-9]+"


DEPLOYMENT_SUFFIX = "[a-z0-9]+-[a-z0-9]+"


ANY_SUFFIX = f"(?:{STATEFULSET_SUFFIX}|{DEPLOYMENT_SUFFIX})"


def quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def eq(label: str, value: str) -> str:
    return f"{label}={quote(value)}"


def ne(label: str, value: str) -> str:
    return f"{label}!={quote(value)}"


def regex(label: str, pattern: str) -> str:
    return f"{label}=~{quote(pattern)}"


def namespace_matcher(namespace: str) -> str:
    """`namespace="<namespace>"`."""
    return eq("namespace", namespace)


def real_containers() -> tuple[str, str]:
    """cAdvisor matchers that drop the pod-level cgroup (`container=""`) and the pause container (`POD`)."""
    return ne("container", ""), ne("container", "POD")


def longest_first(names: Iterable[str]) -> tuple[str, ...]:
    """Names ordered longest first (then alphabetically), so `pod-router` is tried before a shorter prefix."""
    return tuple(sorted(set(names), key=lambda n: (-len(n), n)))


def pod_regex(names: Iterable[str], suffix: str = ANY_SUFFIX) -> str:
    """An anchored pod-name regex with the workload name as group 1, e.g. `^(backend)-[0-9]+$`."""
    ordered = longest_first(names)
    if not ordered:
        raise ValueError("a pod regex needs at least one workload name")
    return f"^({'|'.join(ordered)})-{suffix}$"


def statefulset_pod_regex(names: Iterable[str]) -> str:
    """Pods of StatefulSets: `<name>-<ordinal>`."""
    return pod_regex(names, STATEFULSET_SUFFIX)


def selector(metric: str, *matchers: str) -> str:
    """`metric{m1, m2}` (or the bare name without matchers)."""
    return f"{metric}{{{', '.join(matchers)}}}" if matchers else metric


def by(labels: Iterable[str]) -> str:
    return ", ".join(labels)


def label_replace_workload(expr: str, names: Iterable[str]) -> str:
    """`expr` with a `workload` label derived from `pod` (StatefulSet or Deployment pod names, longest name first)."""
    return f'label_replace({expr}, "{WORKLOAD_LABEL}", "$1", "pod", {quote(pod_regex(names))})'


def dedup(series: str, labels: Iterable[str] = CONTAINER) -> str:
    """One series per container (or `labels`): duplicates (a restart's, two kube-state-metrics replicas', `image`
    changes) collapse into their maximum."""
    return f"max by ({by(labels)}) ({series})"


def number(value: float) -> str:
    """A number as PromQL reads it back exactly: `3`, `58.91`, `0.9`."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
