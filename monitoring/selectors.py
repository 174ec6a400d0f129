"""A stack's PromQL selectors, built once from its config and plan: namespace, backend pods, workloads, real
containers.

`Selectors` is the bundle the rules and dashboards use, so no matcher is typed twice; the PromQL text it is made of
(quote, matchers, `selector`, pod regexes) is `sizing.observe.promql`. The workload names come from the plan; which of
them serve experiments (the backend) from `sized_by: formula`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sizing.config.stack import StackConfig, formula_workloads
from sizing.observe.promql import (
    label_replace_workload,
    longest_first,
    namespace_matcher,
    pod_regex,
    real_containers,
    regex,
    selector,
    statefulset_pod_regex,
)
from sizing.plan.containers import planned_containers as planned_containers_of
from sizing.plan.pool_name import stack_pool_name
from sizing.plan.types import ContainerPlan, Plan, WorkloadPlan


@dataclass(frozen=True)
class Selectors:
    """Every matcher the rules use, built once from the config and plan."""

    namespace: str
    workloads: tuple[str, ...]
    backend: tuple[str, ...]
    pool: str
    # (pod namespace, container names) of every container the plan sizes, namespaces and names sorted.
    containers: tuple[tuple[str, tuple[str, ...]], ...] = ()

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

    def planned(self, metric: str, *matchers: str) -> list[str]:
        """A series of every container the plan sizes, one selector per pod namespace (its namespace and container
        names), with the real-container matchers cAdvisor's series need (the pod cgroup and the pause container)."""
        return [
            selector(
                metric,
                namespace_matcher(namespace),
                regex("container", f"^({'|'.join(names)})$"),
                *matchers,
                *real_containers(),
            )
            for namespace, names in self.containers
        ]

    def with_workload(self, expr: str) -> str:
        """`expr` with the `workload` label derived from `pod`."""
        return label_replace_workload(expr, self.workloads)


def container_plans(config: StackConfig, plan: Plan) -> list[tuple[str, str, ContainerPlan | WorkloadPlan]]:
    """(pod namespace, container, its sizes) of every container the plan sizes (`sizing.plan.containers`), ordered
    by namespace and container."""
    return [(c.namespace, c.container, c.sizes) for c in planned_containers_of(config, plan)]


def planned_containers(config: StackConfig, plan: Plan) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every container the plan sizes (`container_plans`) by the namespace its pods run in, names sorted."""
    found: dict[str, list[str]] = {}
    for namespace, container, _ in container_plans(config, plan):
        found.setdefault(namespace, []).append(container)
    return tuple((namespace, tuple(names)) for namespace, names in found.items())


def build_selectors(config: StackConfig, plan: Plan) -> Selectors:
    """The selectors of a stack: its namespace, the plan's workloads and the formula-sized backend."""
    return Selectors(
        namespace=config.kubernetes.namespace,
        workloads=longest_first(plan.workloads),
        backend=tuple(name for name in formula_workloads(config) if name in plan.workloads),
        pool=stack_pool_name(config),
        containers=planned_containers(config, plan),
    )
