"""The sizing plan of a stack: every workload's requests, limits and runtime memory setting, the node pool, the cost.

Everything downstream (the Pulumi components, the Prometheus rules, the dashboards, the CLI) reads a `Plan`;
none of them computes a size of its own.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sizing.bill import BillRates, bill, node_usd_month, rates
from sizing.chart_sizes import ChartComponents
from sizing.charts import CERT_MANAGER, CHARTS, Chart
from sizing.config import (
    STACK_CHART,
    V8_DEFAULT_SEMI_SPACE_MIB,
    V8_YOUNG_SEMI_SPACES,
    MemorySize,
    Profile,
    Runtime,
    RuntimeConfig,
    StackConfig,
    UserMix,
)
from sizing.errors import ConfigError
from sizing.maintenance import MaintenancePlan, plan_maintenance
from sizing.nodes import Demand, NodePlan, plan_pool
from sizing.placement import Spread
from sizing.pools import PoolOption, cheapest
from sizing.quantity import format_mib, format_millicores


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeMemory(_Frozen):
    """How a Node.js container's limit splits: V8's old space (--max-old-space-size), its young generation (three
    semi-spaces) and the process's native memory beside the heap, which neither flag caps."""

    limit_mib: int = Field(description="the container's memory limit, MiB")
    old_space_mib: int = Field(description="--max-old-space-size: the limit × runtime.nodejs_heap_fraction, MiB")
    semi_space_mib: int = Field(description="the largest semi-space: the flag's, or V8's default, MiB")
    semi_space_capped: bool = Field(description="--max-semi-space-size is set (V8's default would not fit)")
    native_needed_mib: int = Field(description="runtime.nodejs_native_mib: what the rest must hold at least, MiB")

    @property
    def young_generation_mib(self) -> int:
        return V8_YOUNG_SEMI_SPACES * self.semi_space_mib

    @property
    def native_mib(self) -> int:
        """What the limit leaves beside the heap."""
        return self.limit_mib - self.old_space_mib - self.young_generation_mib

    @property
    def fits(self) -> bool:
        return self.native_mib >= self.native_needed_mib

    def smallest_limit_mib(self, fraction: float | None) -> int:
        """The smallest limit whose split holds the native memory at this semi-space: beside this old space, or
        beside the old space the heap `fraction` of that limit gives."""
        if fraction is None:
            return self.old_space_mib + self.young_generation_mib + self.native_needed_mib
        limit = self.limit_mib
        while limit - math.floor(limit * fraction) - self.young_generation_mib < self.native_needed_mib:
            limit += 1
        return limit

    def explain(self) -> str:
        source = "--max-semi-space-size" if self.semi_space_capped else "V8's default, uncapped"
        return (
            f"limit {self.limit_mib} MiB = old space {self.old_space_mib} + young generation "
            f"{self.young_generation_mib} ({V8_YOUNG_SEMI_SPACES} × {self.semi_space_mib} MiB semi-space, {source}) "
            f"+ native {self.native_mib} (needs {self.native_needed_mib})"
        )


class RuntimeSetting(_Frozen):
    """The runtime's own memory ceiling, below the container limit so the process reclaims before an OOM kill."""

    kind: Runtime = Field(description="runtime the setting is for")
    memory_mib: int | None = Field(description="the ceiling, MiB (None: the runtime has no such setting)")
    env: dict[str, str] = Field(default_factory=dict, description="environment variables that carry it")
    args: tuple[str, ...] = Field((), description="command-line arguments that carry it")
    node_memory: NodeMemory | None = Field(None, description="Node.js: how the limit splits around the heap")

    def describe(self) -> str:
        if self.memory_mib is None:
            return "-"
        return " ".join([*(f"{k}={v}" for k, v in self.env.items()), *self.args])


def runtime_setting(
    kind: Runtime, limit_mib: int, config: RuntimeConfig, old_space_mib: int | None = None
) -> RuntimeSetting:
    """The runtime memory setting derived from a container's memory limit (Node.js: or the old space it is given)."""
    if kind == "nodejs":
        heap = old_space_mib if old_space_mib is not None else math.floor(limit_mib * config.nodejs_heap_fraction)
        split = NodeMemory(
            limit_mib=limit_mib,
            old_space_mib=heap,
            semi_space_mib=V8_DEFAULT_SEMI_SPACE_MIB,
            semi_space_capped=False,
            native_needed_mib=config.nodejs_native_mib,
        )
        flags = f"--max-old-space-size={heap}"
        if not split.fits:
            # V8's default young generation would crowd out the native memory: cap it. Where it fits (the backend)
            # no flag is set, and a large heap keeps V8's larger, less frequent scavenges.
            split = split.model_copy(update={"semi_space_mib": config.nodejs_semi_space_mib, "semi_space_capped": True})
            flags += f" --max-semi-space-size={config.nodejs_semi_space_mib}"
        return RuntimeSetting(kind=kind, memory_mib=heap, env={"NODE_OPTIONS": flags}, node_memory=split)
    if kind == "redis":
        # Redis reads "mb" as 1024*1024 bytes ("m" would be 10^6).
        maxmemory = math.floor(limit_mib * config.redis_maxmemory_fraction)
        args = ("--maxmemory", f"{maxmemory}mb", "--maxmemory-policy", config.redis_eviction_policy)
        return RuntimeSetting(kind=kind, memory_mib=maxmemory, args=args)
    if kind == "go":
        soft_limit = math.floor(limit_mib * config.go_memlimit_fraction)
        return RuntimeSetting(kind=kind, memory_mib=soft_limit, env={"GOMEMLIMIT": f"{soft_limit}MiB"})
    return RuntimeSetting(kind=kind, memory_mib=None)


class Derivation(_Frozen):
    """How the capacity formula produced a workload's request and limit."""

    typical_mix: UserMix = Field(description="users per pod at typical load")
    peak_mix: UserMix = Field(description="users per pod at peak load")
    typical_line: str = Field(description="the formula at typical load")
    peak_line: str = Field(description="the formula at peak load")
    typical_mib: int = Field(description="formula memory at typical load, MiB")
    peak_mib: int = Field(description="formula memory at peak load, MiB")
    request_headroom_pct: float = Field(description="headroom on the request, percent")
    limit_headroom_pct: float = Field(description="headroom on the limit, percent")
    request_unrounded_mib: float = Field(description="typical memory plus headroom, before rounding")
    limit_unrounded_mib: float = Field(description="peak memory plus headroom, before rounding")
    rounding: str = Field(description="rounding policy applied")


class _Sized(_Frozen):
    """A container's sizes, and the canonical quantities manifests carry them as."""

    name: str = Field(description="workload or container name")
    cpu_request_m: int = Field(description="CPU request, millicores")
    memory_request_mib: int = Field(description="memory request, MiB")
    memory_limit_mib: int = Field(description="memory limit, MiB")
    config_path: str = Field("", description="dotted config path of its sizes (errors name it)")

    @property
    def memory_request(self) -> str:
        return format_mib(self.memory_request_mib)

    @property
    def memory_limit(self) -> str:
        return format_mib(self.memory_limit_mib)

    @property
    def cpu_request(self) -> str:
        return format_millicores(self.cpu_request_m)


class ContainerPlan(_Sized):
    """A further container in each pod of a workload (a sidecar), sized like the main one."""


APP = "app"


class WorkloadPlan(_Sized):
    """One workload's sizes in the plan: its main container's (the inherited sizes), and the sidecars in each of
    its pods."""

    replicas: int = Field(description="pods (a DaemonSet: its pods at the node minimum)")
    spread: Spread = Field(
        "none",
        description="the placement constraint its controller is rendered with (sizing/placement.py): skew, distinct, "
        "or none (a single pod that never scales, or a chart's pod: its chart renders none)",
    )
    runtime: RuntimeSetting = Field(description="runtime memory setting derived from the limit")
    derivation: Derivation | None = Field(None, description="formula derivation, for workloads sized by it")
    source: str = Field(APP, description="who runs it: the app, or the Helm chart that installs it")
    per_node: bool = Field(False, description="a DaemonSet: one pod on every node of the pool")
    sidecars: tuple[ContainerPlan, ...] = Field((), description="further sized containers in each pod")

    @property
    def pod_memory_request_mib(self) -> int:
        """What the scheduler reserves for one pod: every container's request."""
        return self.memory_request_mib + sum(c.memory_request_mib for c in self.sidecars)

    @property
    def pod_memory_limit_mib(self) -> int:
        return self.memory_limit_mib + sum(c.memory_limit_mib for c in self.sidecars)

    @property
    def pod_cpu_request_m(self) -> int:
        return self.cpu_request_m + sum(c.cpu_request_m for c in self.sidecars)

    def explain(self) -> str:
        """The derivation of the sizes, formula lines included, or where they came from."""
        d = self.derivation
        if d is None:
            return "sized in config"

        def line(kind: str, formula: str, pct: float, raw: float, quantity: str) -> str:
            return f"{kind}: {formula} ×{1 + pct / 100:g} = {raw:g} MiB → {d.rounding} → {quantity}"

        return "\n".join(
            [
                line("request", d.typical_line, d.request_headroom_pct, d.request_unrounded_mib, self.memory_request),
                line("limit", d.peak_line, d.limit_headroom_pct, d.limit_unrounded_mib, self.memory_limit),
            ]
        )


_FRACTION_KEYS = {"nodejs": "nodejs_heap_fraction", "redis": "redis_maxmemory_fraction", "go": "go_memlimit_fraction"}


def size_workloads(config: StackConfig) -> dict[str, WorkloadPlan]:
    """Requests, limits and runtime settings of every workload in the config's profile."""
    capacity = config.capacity
    rounding = capacity.rounding
    rounding_name = "power of two" if rounding.mode == "power_of_two" else f"step {rounding.step_mib} MiB"
    plans: dict[str, WorkloadPlan] = {}
    for name, workload in config.workloads.items():
        derivation, old_space = None, None
        if config.profile == "optimized" and workload.sized_by == "formula":
            typical, peak = capacity.mix("typical"), capacity.mix("peak")
            headroom = capacity.headroom
            request_raw = capacity.formula.memory_mib(typical) * (1 + headroom.request_pct / 100)
            limit_raw = capacity.formula.memory_mib(peak) * (1 + headroom.limit_pct / 100)
            request, limit = rounding.apply(request_raw), rounding.apply(limit_raw)
            if request > limit:
                raise ConfigError(
                    config.key(f"workloads.{name}"),
                    f"formula gives request {format_mib(request)} above limit {format_mib(limit)}: "
                    "raise capacity.headroom.limit_pct or the peak load",
                )
            derivation = Derivation(
                typical_mix=typical,
                peak_mix=peak,
                typical_line=capacity.formula.explain(typical),
                peak_line=capacity.formula.explain(peak),
                typical_mib=capacity.formula.memory_mib(typical),
                peak_mib=capacity.formula.memory_mib(peak),
                request_headroom_pct=headroom.request_pct,
                limit_headroom_pct=headroom.limit_pct,
                request_unrounded_mib=round(request_raw, 4),
                limit_unrounded_mib=round(limit_raw, 4),
                rounding=rounding_name,
            )
        else:
            sizes = getattr(workload.memory, config.profile) or workload.memory.baseline
            request, limit, old_space = sizes.request, sizes.limit, sizes.old_space
        runtime = runtime_setting(workload.runtime, limit, config.runtime, old_space)
        if runtime.memory_mib is not None and runtime.memory_mib < 1:
            # 0 is no ceiling at all for Redis (maxmemory 0) and a broken one for Node.js and Go.
            raise ConfigError(
                config.key(f"runtime.{_FRACTION_KEYS[workload.runtime]}"),
                f"gives workloads.{name} a {workload.runtime} memory setting of 0 MiB under its "
                f"{format_mib(limit)} limit: raise the fraction or the limit",
            )
        split = runtime.node_memory
        if split is not None and not split.fits:
            # The old space and the young generation are V8's ceilings; what is left must hold everything else the
            # process holds, or the kernel reclaims the node binary's own pages until the process stalls.
            smallest = format_mib(split.smallest_limit_mib(None if old_space else config.runtime.nodejs_heap_fraction))
            if derivation is not None:
                where, fix = f"workloads.{name}", "raise capacity.headroom.limit_pct or the peak load, or lower "
                fix += "runtime.nodejs_heap_fraction"
            else:
                where, fix = f"workloads.{name}.memory.{config.profile}.limit", "or give it a smaller old_space"
            raise ConfigError(config.key(where), f"{split.explain()}: the limit must be at least {smallest}: {fix}")
        # A scheduled window scales the formula-sized workload beyond its replicas: it is spread even at one.
        scaled = workload.sized_by == "formula" and bool(capacity.schedule)
        plans[name] = WorkloadPlan(
            name=name,
            replicas=workload.replicas,
            spread=workload.spread if workload.replicas > 1 or scaled else "none",
            cpu_request_m=workload.cpu_request,
            memory_request_mib=request,
            memory_limit_mib=limit,
            runtime=runtime,
            derivation=derivation,
            config_path=f"workloads.{name}",
        )
    return plans


class InstalledChart(_Frozen):
    """A chart whose pods run on the stack's pool, and the config that sizes them."""

    chart: Chart = Field(description="the chart's pod inventory")
    components: ChartComponents = Field(description="the sizes of its containers")
    path: str = Field(description="dotted config path of the sizes")
    installed: bool = Field(description="the program installs the chart (else only its pods that run without it)")


def installed_charts(config: StackConfig) -> list[InstalledChart]:
    """The charts whose pods the stack's pool runs: kube-prometheus-stack when the program installs it, cert-manager
    when the stack has public hosts (its solver pods run in the stack's namespace even under a cluster's own
    cert-manager, which `ingress.install_cert_manager: false` leaves to the cluster)."""
    charts = []
    if config.monitoring.install_stack:
        charts.append(
            InstalledChart(
                chart=CHARTS[STACK_CHART],
                components=config.monitoring.components,
                path="monitoring.components",
                installed=True,
            )
        )
    ingress = config.ingress
    if ingress.hosts:
        charts.append(
            InstalledChart(
                chart=CERT_MANAGER,
                components=ingress.components,
                path="ingress.components",
                installed=ingress.install_cert_manager,
            )
        )
    return charts


def size_chart_workloads(config: StackConfig) -> dict[str, WorkloadPlan]:
    """The pods of the charts on the pool (`installed_charts`), sized from their components config in the
    config's profile.

    A DaemonSet's `replicas` is 0 here: it runs one pod per node, which `build_plan` fills in from the node plan. A
    per-host pod runs once per public host.
    """
    plans: dict[str, WorkloadPlan] = {}
    for installed in installed_charts(config):
        chart, components = installed.chart, installed.components

        def sizes(name: str, components: ChartComponents = components) -> tuple[MemorySize, int]:
            entry = components.by_name(name)
            return entry.memory.of(config.profile), entry.cpu_request

        for pod in chart.pods:
            if not (installed.installed or pod.without_install):
                continue
            memory, cpu = sizes(pod.main.sizes)
            sidecars = []
            for sidecar in pod.sidecars:
                sidecar_memory, sidecar_cpu = sizes(sidecar.sizes)
                sidecars.append(
                    ContainerPlan(
                        name=sidecar.container,
                        cpu_request_m=sidecar_cpu,
                        memory_request_mib=sidecar_memory.request,
                        memory_limit_mib=sidecar_memory.limit,
                        config_path=f"{installed.path}.{sidecar.sizes}",
                    )
                )
            path = f"{installed.path}.{pod.main.sizes}"
            runtime = runtime_setting(pod.runtime, memory.limit, config.runtime)
            if runtime.memory_mib is not None and runtime.memory_mib < 1:
                raise ConfigError(
                    config.key(f"runtime.{_FRACTION_KEYS[pod.runtime]}"),
                    f"gives {path} a {pod.runtime} memory setting of 0 MiB under its {format_mib(memory.limit)} limit",
                )
            if pod.kind == "DaemonSet":
                replicas = 0
            elif pod.per_host:
                replicas = len(config.ingress.hosts)
            else:
                replicas = components.by_name(pod.main.sizes).replicas or 1
            plans[pod.name] = WorkloadPlan(
                name=pod.name,
                replicas=replicas,
                cpu_request_m=cpu,
                memory_request_mib=memory.request,
                memory_limit_mib=memory.limit,
                runtime=runtime,
                source=chart.name,
                per_node=pod.kind == "DaemonSet",
                sidecars=tuple(sidecars),
                config_path=path,
            )
    return plans


class PoolChoice(_Frozen):
    """A machine type, spot or not, and the node counts the stack needs of it."""

    machine_type: str = Field(description="machine type of every node")
    spot: bool = Field(description="spot nodes")
    min: int = Field(description="autoscaler minimum")
    max: int = Field(description="autoscaler maximum")


class CostPlan(_Frozen):
    """The monthly bill: the node pool (`monthly_usd`, the figure every comparison uses), every other line, the
    cheapest pool that would hold the same pods, and the savings against the baseline profile and the observed bill."""

    node_usd_month: float = Field(description="one node: machine plus boot disk, USD per month")
    monthly_usd: float = Field(description="the node pool at its minimum, USD per month")
    max_monthly_usd: float = Field(description="the node pool at the autoscaler maximum, USD per month")
    lines: dict[str, float] = Field(description="the bill by line (bill.LINES), USD per month")
    line_details: dict[str, str] = Field(description="what each line holds")
    total_monthly_usd: float = Field(description="every line, USD per month")
    best: PoolChoice = Field(description="the cheapest feasible pool for the same pods (pools.search)")
    best_monthly_usd: float = Field(description="that pool at its minimum, USD per month")
    overpay_usd_month: float = Field(description="monthly_usd − best_monthly_usd")
    baseline: PoolChoice = Field(description="the baseline profile's own cheapest feasible pool")
    baseline_monthly_usd: float = Field(description="that pool at its minimum, USD per month")
    savings_pct: float = Field(description="monthly_usd below baseline_monthly_usd, percent")
    observed_baseline_monthly_usd: float | None = Field(
        description="the node bill the stack started from (cost.observed_baseline), USD per month"
    )
    observed_savings_pct: float | None = Field(description="monthly_usd below the observed node bill, percent")
    observed_pool: str | None = Field(description="the pool of the observed bill, e.g. `4 × e2-standard-2`")
    rates: BillRates = Field(description="the bill's terms for any node count (the rules price the running pool)")


class Totals(_Frozen):
    """Sums over every pod of the plan."""

    memory_request_mib: int = Field(description="Σ replicas × memory request, MiB")
    memory_limit_mib: int = Field(description="Σ replicas × memory limit, MiB")
    cpu_request_m: int = Field(description="Σ replicas × CPU request, millicores")
    pods: int = Field(description="Σ replicas")


class Plan(_Frozen):
    """The sizing plan of one stack in one profile."""

    stack: str = Field(description="stack name")
    profile: Profile = Field(description="sizing profile")
    workloads: dict[str, WorkloadPlan] = Field(description="the app's sized workloads by name")
    chart_workloads: dict[str, WorkloadPlan] = Field(
        default_factory=dict, description="pods of the Helm charts the program installs, sized like the app's"
    )
    totals: Totals = Field(description="sums over every pod on the pool")
    nodes: NodePlan = Field(description="node pool plan")
    cost: CostPlan = Field(description="monthly cost and savings")
    warnings: tuple[str, ...] = Field((), description="what the stack leaves undone that it should not")
    maintenance: MaintenancePlan | None = Field(
        None, description="when GKE may upgrade the cluster: window and exclusions (None: no cluster config)"
    )
    # Typed loosely so that a stack without windows never imports sizing.schedule (its models cost `plan` ~20 ms).
    schedule: Any = Field(
        None, description="planned experiment windows and their scaling: a sizing.schedule.SchedulePlan, or None"
    )

    @property
    def pool_workloads(self) -> dict[str, WorkloadPlan]:
        """Everything that runs on the pool: the app's workloads, then the charts' pods."""
        return {**self.workloads, **self.chart_workloads}

    def to_json(self) -> dict[str, Any]:
        """The plan as plain JSON data: quantities as canonical strings, sizes also in MiB."""
        return {
            "stack": self.stack,
            "profile": self.profile,
            "workloads": {w.name: _workload_json(w) for w in self.pool_workloads.values()},
            "totals": self.totals.model_dump(),
            "nodes": self.nodes.model_dump(mode="json"),
            "cost": self.cost.model_dump(),
            "warnings": list(self.warnings),
            **({"maintenance": self.maintenance.to_json()} if self.maintenance is not None else {}),
            # Only a stack with windows has the key: the plan of one without is what it always was.
            **({"schedule": self.schedule.to_json()} if self.schedule is not None else {}),
        }


def _workload_json(w: WorkloadPlan) -> dict[str, Any]:
    return {
        "source": w.source,
        "replicas": w.replicas,
        "per_node": w.per_node,
        "memory_request": w.memory_request,
        "memory_limit": w.memory_limit,
        "memory_request_mib": w.memory_request_mib,
        "memory_limit_mib": w.memory_limit_mib,
        "cpu_request": w.cpu_request,
        "runtime": {
            "kind": w.runtime.kind,
            "memory_mib": w.runtime.memory_mib,
            "setting": w.runtime.describe(),
            **({"node_memory": w.runtime.node_memory.explain()} if w.runtime.node_memory is not None else {}),
        },
        "sidecars": {
            c.name: {
                "memory_request": c.memory_request,
                "memory_limit": c.memory_limit,
                "memory_request_mib": c.memory_request_mib,
                "memory_limit_mib": c.memory_limit_mib,
                "cpu_request": c.cpu_request,
            }
            for c in w.sidecars
        },
        "pod_memory_request_mib": w.pod_memory_request_mib,
        "pod_memory_limit_mib": w.pod_memory_limit_mib,
        "derivation": None if w.derivation is None else w.explain().splitlines(),
    }


def _totals(workloads: dict[str, WorkloadPlan]) -> Totals:
    ws = workloads.values()
    return Totals(
        memory_request_mib=sum(w.replicas * w.pod_memory_request_mib for w in ws),
        memory_limit_mib=sum(w.replicas * w.pod_memory_limit_mib for w in ws),
        cpu_request_m=sum(w.replicas * w.pod_cpu_request_m for w in ws),
        pods=sum(w.replicas for w in ws),
    )


def demand(config: StackConfig) -> Demand:
    """The demand of every pod on the stack's pool in the config's profile."""
    return _demand(config)[2]


def _demand(config: StackConfig) -> tuple[dict[str, WorkloadPlan], dict[str, WorkloadPlan], Demand]:
    """The app's and the charts' workloads of the config's profile, and the demand they put on a pool."""
    workloads, charts = size_workloads(config), size_chart_workloads(config)
    return workloads, charts, Demand([*workloads.values(), *charts.values()])


def _choice(option: PoolOption) -> PoolChoice:
    assert option.min is not None and option.max is not None  # a feasible option is planned
    return PoolChoice(machine_type=option.machine_type, spot=option.spot, min=option.min, max=option.max)


def _pct_below(value: float, reference: float) -> float:
    return round(100 * (reference - value) / reference, 1) if reference else 0.0


def build_plan(config: StackConfig, stack: str, now: datetime | None = None, strict: bool = True) -> Plan:
    """Size the workloads, plan the nodes and price them: the configured pool, every line of its bill, the cheapest
    pool for the same pods, the baseline profile on its own cheapest pool, and the scheduled windows as of `now`.

    A window the pool cannot hold fails the plan (`strict`); `python -m sizing schedule` plans without failing, to
    show every window first.
    """
    pool = config.nodes
    workloads, charts, demand = _demand(config)
    nodes = plan_pool(config, demand, pool.machine_type, config.machine(), pool.spot)
    best = cheapest(config, demand)
    assert best.monthly_usd is not None
    # DaemonSets run one pod per node: their replicas are the nodes at the minimum.
    charts = {n: w.model_copy(update={"replicas": nodes.min}) if w.per_node else w for n, w in charts.items()}
    if config.profile == "baseline":
        baseline = best
    else:
        rollback = config.with_profile("baseline")
        try:
            baseline = cheapest(rollback, _demand(rollback)[2])
        except ConfigError as err:
            # The rollback must have somewhere to run, or switching to it would strand the pods.
            raise ConfigError(err.key, f"in the baseline profile (the rollback): {err.problem}") from None
    assert baseline.monthly_usd is not None
    per_node = node_usd_month(config, pool.machine_type, pool.spot)
    monthly = round(nodes.min * per_node, 2)
    lines = bill(config, pool.machine_type, pool.spot, nodes.min)
    observed = config.cost.observed_baseline
    cost = CostPlan(
        node_usd_month=round(per_node, 2),
        monthly_usd=monthly,
        max_monthly_usd=round(nodes.max * per_node, 2),
        lines={line.name: line.usd_month for line in lines},
        line_details={line.name: line.detail for line in lines},
        total_monthly_usd=round(sum(line.usd_month for line in lines), 2),
        best=_choice(best),
        best_monthly_usd=best.monthly_usd,
        overpay_usd_month=round(monthly - best.monthly_usd, 2),
        baseline=_choice(baseline),
        baseline_monthly_usd=baseline.monthly_usd,
        savings_pct=_pct_below(monthly, baseline.monthly_usd),
        observed_baseline_monthly_usd=None if observed is None else observed.monthly_usd,
        observed_savings_pct=None if observed is None else _pct_below(monthly, observed.monthly_usd),
        observed_pool=None if observed is None else f"{observed.nodes} × {observed.machine_type}",
        rates=rates(config, pool.machine_type, pool.spot),
    )
    maintenance = plan_maintenance(config, now)
    plan = Plan(
        stack=stack,
        profile=config.profile,
        workloads=workloads,
        chart_workloads=charts,
        totals=_totals({**workloads, **charts}),
        nodes=nodes,
        cost=cost,
        warnings=(*config.warnings(), *(maintenance.warnings if maintenance else ())),
        maintenance=maintenance,
    )
    if not config.capacity.schedule:
        return plan
    from sizing.schedule import plan_schedule

    schedule = plan_schedule(config, plan, now)
    assert schedule is not None
    error = schedule.error()
    if strict and error is not None:
        raise error
    return plan.model_copy(update={"schedule": schedule})
