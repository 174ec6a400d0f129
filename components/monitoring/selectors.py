"""PromQL selectors built once from the stack config and plan: namespace, backend pods, workloads, real containers.

Pure functions returning strings, and `Selectors`, the bundle the rules use, so no matcher is typed twice. The
workload names come from the plan; which of them serve experiments (the backend) from `sized_by: formula`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from components.pool import stack_pool_name
from sizing.config import StackConfig
from sizing.plan import Plan

# The label the workload helpers add, derived from `pod`.
WORKLOAD_LABEL = "workload"

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


def formula_workloads(config: StackConfig) -> tuple[str, ...]:
    """The workloads sized by the capacity formula: the backend pods that serve experiments."""
    return tuple(sorted(name for name, w in config.workloads.items() if w.sized_by == "formula"))


@dataclass(frozen=True)
class Selectors:
    """Every matcher the rules use, built once from the config and plan."""

    namespace: str
    workloads: tuple[str, ...]
    backend: tuple[str, ...]
    pool: str

    @property
    def ns(self) -> str:
        """`namespace="<namespace>"`."""
        return namespace_matcher(self.namespace)

    @property
    def has_backend(self) -> bool:
        return bool(self.backend)

    @property
    def backend_pods(self) -> str:
        """`pod=~"^(backend)-[0-9]+$"`: the formula-sized workloads are StatefulSets."""
        return regex("pod", statefulset_pod_regex(self.backend))

    @property
    def workload_pods(self) -> str:
        """`pod=~"^(<every workload>)-(<ordinal>|<hash>-<id>)$"`."""
        return regex("pod", pod_regex(self.workloads))

    def workload_pod_matcher(self, name: str) -> str:
        """The pods of one workload (the backend's as StatefulSet pods)."""
        if name in self.backend:
            return regex("pod", statefulset_pod_regex([name]))
        return regex("pod", pod_regex([name]))

    def ksm(self, metric: str, *matchers: str, namespaced: bool = True) -> str:
        """A kube-state-metrics series by its name, the namespace (unless node-level or cluster-wide) and `matchers`.

        Never by `job`: its value depends on how kube-state-metrics is scraped (kube-prometheus-stack, Managed
        Prometheus, another chart), and two replicas or two jobs give duplicates the rules remove with `max by`
        over the series' identifying labels (`namespace, pod, container`; `node` for node-level series).
        """
        scope = (self.ns,) if namespaced else ()
        return selector(metric, *scope, *matchers)

    def cadvisor(self, metric: str, *matchers: str) -> str:
        """A cAdvisor series of the namespace's real containers."""
        return selector(metric, self.ns, *matchers, *real_containers())

    def app(self, metric: str, *matchers: str) -> str:
        """A series the workloads export themselves, in the namespace."""
        return selector(metric, self.ns, *matchers)

    def with_workload(self, expr: str) -> str:
        """`expr` with the `workload` label derived from `pod`."""
        return label_replace_workload(expr, self.workloads)


def build_selectors(config: StackConfig, plan: Plan) -> Selectors:
    """The selectors of a stack: its namespace, the plan's workloads and the formula-sized backend."""
    return Selectors(
        namespace=config.kubernetes.namespace,
        workloads=longest_first(plan.workloads),
        backend=tuple(name for name in formula_workloads(config) if name in plan.workloads),
        pool=stack_pool_name(config),
    )
