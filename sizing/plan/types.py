"""The plan's vocabulary: every result model the planners produce and the CLI, the program and the rules read, from
one workload's sizes to the whole `Plan`. A leaf of `sizing.plan`: it imports no planner, so every planner can
import it (and the orchestrator, `sizing.plan.build`, imports them all).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import Field

from sizing.config.capacity import UserMix
from sizing.config.chart_sizes import ChartComponents
from sizing.config.maintenance import MINUTES_PER_WEEK, week_blocks
from sizing.config.runtime import V8_YOUNG_SEMI_SPACES
from sizing.config.schedule import DAYS, Day
from sizing.core.errors import ConfigError
from sizing.core.model import Commitment, CommitmentTerm, DiskType, Model, Profile, Runtime, Spread
from sizing.core.quantity import format_mib, format_millicores
from sizing.facts.charts import Chart


class NodeMemory(Model):
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


class RuntimeSetting(Model):
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


class Derivation(Model):
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


class _Sized(Model):
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
        description="the placement constraint its controller is rendered with (sizing/plan/placement.py): skew, "
        "distinct, "
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


class InstalledChart(Model):
    """A chart whose pods run on the stack's pool, and the config that sizes them."""

    chart: Chart = Field(description="the chart's pod inventory")
    components: ChartComponents = Field(description="the sizes of its containers")
    path: str = Field(description="dotted config path of the sizes")
    installed: bool = Field(description="the program installs the chart (else only its pods that run without it)")


class PoolChoice(Model):
    """A machine type, spot or not, and the node counts the stack needs of it."""

    machine_type: str = Field(description="machine type of every node")
    spot: bool = Field(description="spot nodes")
    min: int = Field(description="autoscaler minimum")
    max: int = Field(description="autoscaler maximum")


class CommitmentPlan(Model):
    """The committed-use discount the pool's bill takes (`cost.commitment`): a commitment for the minimum's machines,
    paid for the whole term whether they run or not; nodes above the minimum are billed on demand."""

    term: CommitmentTerm = Field(description="1y or 3y: how long the billing account is bound to pay for it")
    discount: float = Field(description="the discount on the on-demand machine price, a fraction")
    committed_nodes: int = Field(description="nodes the commitment covers: the pool's minimum")
    machine_usd_month: float = Field(description="one committed machine, discounted, USD per month")
    on_demand_node_usd_month: float = Field(description="a node above the committed ones: machine and boot disk")
    saves_usd_month: float = Field(description="the pool at its minimum on demand − with the commitment, USD/month")
    binds: str = Field(description="what the commitment binds the billing account to")


class CostPlan(Model):
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
    commitment: CommitmentPlan | None = Field(
        None, description="the committed-use discount the node line takes (None: cost.commitment is none)"
    )


class Totals(Model):
    """Sums over every pod of the plan."""

    memory_request_mib: int = Field(description="Σ replicas × memory request, MiB")
    memory_limit_mib: int = Field(description="Σ replicas × memory limit, MiB")
    cpu_request_m: int = Field(description="Σ replicas × CPU request, millicores")
    pods: int = Field(description="Σ replicas")


class Plan(Model):
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
    schedule: SchedulePlan | None = Field(None, description="planned experiment windows and their scaling")

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
            # Only a stack with a commitment has `cost.commitment`: the plan of one without is what it always was.
            "cost": self.cost.model_dump(exclude={"commitment"} if self.cost.commitment is None else None),
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


Binding = Literal["memory", "cpu", "spread", "node_loss", "packing"]


class NodePlan(Model):
    """The node pool: how many nodes typical load needs, how many peak load may need, and why."""

    machine_type: str = Field(description="machine type of every node")
    spot: bool = Field(description="spot nodes")
    allocatable_memory_mib: int = Field(description="GKE allocatable memory per node, MiB")
    allocatable_cpu_m: int = Field(description="GKE allocatable CPU per node, millicores")
    sustained_cpu_m: int | None = Field(
        None, description="a shared-core type's sustained CPU share, millicores: requests are planned up to it"
    )
    per_node_memory_mib: int = Field(description="requested on every node by the planned per-node pods, MiB")
    per_node_cpu_m: int = Field(description="requested on every node by the planned per-node pods, millicores")
    free_memory_mib: int = Field(description="allocatable memory left per node after overhead and per-node pods")
    free_cpu_m: int = Field(description="plannable CPU left per node after overhead and per-node pods")
    bounds: dict[str, int] = Field(description="lower bounds on the node count: memory, cpu, spread (and node_loss)")
    lower_bound: int = Field(description="the largest of the bounds")
    binding: Binding = Field(description="what sets the minimum: a bound, or packing when it needs more")
    min: int = Field(description="nodes for typical load (every pod at its request), the autoscaler minimum")
    min_proven: bool = Field(
        True,
        description="no fewer nodes can hold the pods under their placement constraints: every smaller count from "
        "the lower bound was searched exhaustively (false: the search ran out of budget somewhere below)",
    )
    peak: int = Field(description="nodes for peak load (every pod at its limit)")
    max: int = Field(
        description="autoscaler maximum: peak load, and at least min plus the surge nodes and nodes.max_nodes"
    )
    node_loss_required: bool = Field(False, description="the stack requires surviving a node's loss at min")
    survives_node_loss: bool = Field(
        description="at min, losing any one node, its pods reschedule onto the others (the rest staying put) at "
        "their requests and under their constraints"
    )
    placement: tuple[tuple[str, ...], ...] = Field(description="a placement of the pods on the minimum nodes")


class PoolOption(Model):
    """One candidate pool: a machine type, on-demand or spot, and what the stack needs of it."""

    machine_type: str = Field(description="machine type of every node")
    spot: bool = Field(description="spot nodes")
    min: int | None = Field(description="autoscaler minimum (None: the machine cannot hold the stack)")
    min_proven: bool = Field(
        True, description="no smaller count holds the pods (false: the placement search gave up below it)"
    )
    max: int | None = Field(description="autoscaler maximum (None: the machine cannot hold the stack)")
    monthly_usd: float | None = Field(description="the pool at min: machines and boot disks, USD per month")
    max_monthly_usd: float | None = Field(description="the pool at max, USD per month")
    binding: str | None = Field(description="what sets the minimum (memory, cpu, spread, node_loss or packing)")
    feasible: bool = Field(description="the stack may run on it")
    reason: str | None = Field(description="why not, naming the config key (None when feasible)")
    disk_size_gb: int = Field(description="each node's boot disk, GB")
    disk_type: DiskType = Field(description="each node's boot disk type")
    commitment: Commitment = Field("none", description="the committed-use term its machines are priced at")

    def brief(self) -> dict[str, Any]:
        """The keys `current` and `best` carry."""
        return {
            "machine_type": self.machine_type,
            "spot": self.spot,
            "min": self.min,
            "max": self.max,
            "monthly_usd": self.monthly_usd,
        }

    def bill_brief(self) -> dict[str, Any]:
        """`brief` with the bill's dimensions: the boot disk and the commitment."""
        return {
            **self.brief(),
            "disk_size_gb": self.disk_size_gb,
            "disk_type": self.disk_type,
            "commitment": self.commitment,
        }


class Recommendation(Model):
    """The stack's configured pool against the cheapest feasible one."""

    stack: str = Field(description="stack name")
    profile: str = Field(description="sizing profile the pods are sized in")
    current: PoolOption = Field(description="the stack's configured machine type and spot choice")
    best: PoolOption = Field(description="the cheapest feasible option")
    overpay_usd_month: float | None = Field(description="current − best at min, USD per month (None: current fails)")
    options: tuple[PoolOption, ...] = Field(description="every option, ranked")
    bill: BillSearch = Field(description="the same pools over the bill's options too: boot disk and commitment")

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "profile": self.profile,
            "current": {**self.current.brief(), "feasible": self.current.feasible, "reason": self.current.reason},
            "best": self.best.brief(),
            "overpay_usd_month": self.overpay_usd_month,
            "options": [o.model_dump() for o in self.options],
            "bill": self.bill.to_json(),
        }


class BillSearch(Model):
    """The cheapest-pool search over the bill's options as well: every feasible machine type and pricing, each boot
    disk type at the stack's floor size (and the stack's own disk), and each committed-use term (never for spot)."""

    disk_floor_gb: int = Field(description="the smallest safe boot disk for this stack, GB (bill.boot_disk_floor)")
    disk_floor_detail: str = Field(description="what sets it")
    cheapest: PoolOption = Field(description="the cheapest option without a commitment")
    cheapest_saves_usd_month: float | None = Field(
        description="current − cheapest at min, USD per month (None: current fails)"
    )
    committed: PoolOption | None = Field(
        description="the cheapest option with a commitment, when it is cheaper than `cheapest` (None: none is)"
    )
    committed_saves_usd_month: float | None = Field(description="current − committed at min, USD per month")
    committed_binds: str | None = Field(description="what that commitment binds the billing account to")
    options: tuple[PoolOption, ...] = Field(description="every option over the extended dimensions, ranked")

    def to_json(self) -> dict[str, Any]:
        return {
            "disk_floor_gb": self.disk_floor_gb,
            "disk_floor_detail": self.disk_floor_detail,
            "cheapest": self.cheapest.bill_brief(),
            "cheapest_saves_usd_month": self.cheapest_saves_usd_month,
            "committed": None if self.committed is None else self.committed.bill_brief(),
            "committed_saves_usd_month": self.committed_saves_usd_month,
            "committed_binds": self.committed_binds,
            "options": [o.bill_brief() | {"binding": o.binding} for o in self.options],
        }


LineName = Literal["nodes", "cluster_fee", "load_balancer", "nat", "volumes", "node_ips"]


LINES: tuple[LineName, ...] = ("nodes", "cluster_fee", "load_balancer", "nat", "volumes", "node_ips")


class BillLine(Model):
    """One line of the monthly bill."""

    name: LineName = Field(description="which part of the bill")
    usd_month: float = Field(description="USD per month (730 h), rounded to cents")
    detail: str = Field(description="what the line holds and how it is priced")


class Claim(Model):
    """Persistent volume claims of one workload: one per pod."""

    owner: str = Field(description="the workload or chart component that claims it")
    claims: int = Field(description="claims: one per pod")
    size_mib: int = Field(description="requested capacity of each claim, MiB")
    storage_class: str = Field(description="StorageClass each claim is provisioned from")


class BillRates(Model):
    """The bill as a function of the node count, for the rules: `fixed` + `nodes` × (node + node IP) + the NAT
    gateway's `min(nodes × nat_vm, nat_cap)`."""

    fixed_usd_month: float = Field(description="every line that does not scale with the nodes, USD per month")
    node_ip_usd_month: float = Field(description="each node's external address (0: private nodes), USD per month")
    nat_vm_usd_month: float = Field(description="the NAT gateway per node (0: no NAT), USD per month")
    nat_cap_usd_month: float = Field(description="the NAT gateway at its cap, USD per month")


Direction = Literal["up", "down"]


class ScaleAction(Model):
    """One CronJob: at `schedule` (cron) in `time_zone`, in `year` only for a one-off window, set the replicas."""

    name: str = Field(description="`<window>-up` or `<window>-down`")
    window: str = Field(description="the window it scales for")
    direction: Direction = Field(description="up: before the window starts; down: after it ends")
    schedule: str = Field(description="five-field cron expression, in time_zone")
    time_zone: str = Field(description="IANA time zone the CronJob controller evaluates the schedule in")
    year: int | None = Field(description="a one-off window's year: the job does nothing in any other")
    replicas: int = Field(description="the backend replicas it sets")
    replicas_on: dict[str, int] = Field(
        default_factory=dict,
        description="UTC date (YYYY-MM-DD) of a run → the replicas it sets instead: a run that meets another window "
        "(a one-off, or a time zone whose DST differs) needs more, or less, than the usual run",
    )

    def replicas_at(self, instant: datetime) -> int:
        """What a run at `instant` (UTC) sets: its date's exception, else the usual count."""
        return self.replicas_on.get(instant.astimezone(UTC).date().isoformat(), self.replicas)


class WindowPlan(Model):
    """One window: what it brings, what it needs, and whether the pool holds it."""

    name: str = Field(description="window name")
    when: str = Field(description="its times, for people")
    experiments: dict[str, int] = Field(description="concurrent experiments by shape")
    memory_mib: int = Field(description="the experiments' memory: Σ count × the shape's users' memory, MiB")
    backend_replicas: int = Field(description="backend pods that hold its experiments (at least the configured)")
    nodes: int = Field(
        description="nodes the pool runs with those replicas: the fewest from its minimum on which every pod places "
        "under its constraints (the autoscaler adds a node only for a Pending pod), by the same rules as `plan`"
    )
    placement: tuple[tuple[str, ...], ...] = Field(description="where its pods go on those nodes, node by node")
    survives_node_loss: bool = Field(
        description="losing any one node during the window, its pods reschedule onto the others (else they wait for "
        "the autoscaler's new node, a few minutes)"
    )
    next_start: datetime | None = Field(description="its next start from the time of the plan (None: it has passed)")
    fits: bool = Field(description="every experiment fits a pod and the pool's max holds it, alone and overlapping")
    reason: str | None = Field(description="why it does not fit, and what would make it fit (the refusal's line)")


class ConfigErrorData(Model):
    """A refusal: the config key and the problem."""

    key: str = Field(description="config key, namespace included")
    problem: str = Field(description="what is wrong and what would make it fit")


class SchedulePlan(Model):
    """Every window, the scaling actions, and the month's cost with them."""

    workload: str = Field(description="the formula-sized workload that scales (the backend)")
    base_replicas: int = Field(description="its configured replicas, outside the windows")
    room_mib: int = Field(description="one pod's room for planned experiments, MiB")
    shape_mib: dict[str, int] = Field(description="one experiment of each shape, MiB (its users' share)")
    max_nodes: int = Field(description="the pool's autoscaler maximum")
    max_replicas: int = Field(description="the most backend replicas the pool's max holds")
    windows: tuple[WindowPlan, ...] = Field(description="every window, in config order")
    actions: tuple[ScaleAction, ...] = Field(description="the scaling CronJobs of the windows still to come")
    computed_at: datetime = Field(description="the instant the plan was computed from (next starts, the year ahead)")
    unscheduled_monthly_usd: float = Field(description="the node pool at its minimum, USD per month")
    extra_node_hours_month: float = Field(description="the windows' node-hours above the minimum, per month")
    monthly_usd: float = Field(description="the pool at its minimum plus the windows' extra node-hours, USD/month")
    refusal: ConfigErrorData | None = Field(description="the first window that does not fit, as key and problem")

    def error(self) -> ConfigError | None:
        return None if self.refusal is None else ConfigError(self.refusal.key, self.refusal.problem)

    def to_json(self, at: datetime | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "workload": self.workload,
            "base_replicas": self.base_replicas,
            "room_mib": self.room_mib,
            "shape_mib": self.shape_mib,
            "max_nodes": self.max_nodes,
            "windows": [
                {
                    "name": w.name,
                    "when": w.when,
                    "experiments": w.experiments,
                    "memory_mib": w.memory_mib,
                    "backend_replicas": w.backend_replicas,
                    "nodes": w.nodes,
                    "placement": [list(node) for node in w.placement],
                    "survives_node_loss": w.survives_node_loss,
                    "next_start": None if w.next_start is None else w.next_start.isoformat(),
                    "fits": w.fits,
                    "reason": w.reason,
                }
                for w in self.windows
            ],
            "actions": [a.model_dump() for a in self.actions],
            "unscheduled_monthly_usd": self.unscheduled_monthly_usd,
            "extra_node_hours_month": self.extra_node_hours_month,
            "monthly_usd": self.monthly_usd,
        }
        return data


EXCLUSION_SCOPE = "NO_UPGRADES"


# The recurring window's first date (RRULE's DTSTART): fixed, so the render does not move with the clock; a Monday,
# the origin of the week minutes below.
ANCHOR = datetime(2024, 1, 1, tzinfo=UTC)


_RRULE_DAYS = {"mon": "MO", "tue": "TU", "wed": "WE", "thu": "TH", "fri": "FR", "sat": "SA", "sun": "SU"}


def rfc3339(instant: datetime) -> str:
    """UTC with a `Z`, to the second: the form GKE returns, so a re-read shows no diff."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def week_minutes(instant: datetime) -> int:
    return int((instant - ANCHOR).total_seconds() // 60)


class RecurringWindow(Model):
    """The weekly maintenance window: open `duration_hours` from `start_utc` on each of `days` (UTC)."""

    days: tuple[Day, ...] = Field(description="UTC days it opens, Monday first")
    start_utc: time = Field(description="UTC time it opens")
    duration_hours: int = Field(description="hours it stays open")
    source: Literal["config", "default"] = Field(description="cluster.maintenance, or chosen by the plan")

    def blocks(self) -> list[tuple[int, int]]:
        """Its openings in one week, [start, end) minutes from Monday 00:00 UTC."""
        return week_blocks(self.days, self.start_utc, self.duration_hours)

    @property
    def recurrence(self) -> str:
        """RFC 5545 RRULE, as GKE reads it (in UTC)."""
        return "FREQ=WEEKLY;BYDAY=" + ",".join(_RRULE_DAYS[day] for day in self.days)

    def _first(self) -> datetime:
        # DTSTART on a day the rule selects, as RFC 5545 asks.
        first = min(DAYS.index(day) for day in self.days)
        return datetime.combine(ANCHOR.date() + timedelta(days=first), self.start_utc, tzinfo=UTC)

    @property
    def start_time(self) -> str:
        return rfc3339(self._first())

    @property
    def end_time(self) -> str:
        return rfc3339(self._first() + timedelta(hours=self.duration_hours))

    def describe(self) -> str:
        end = (datetime.combine(date(2024, 1, 1), self.start_utc) + timedelta(hours=self.duration_hours)).time()
        days = "every day" if len(self.days) == len(DAYS) else ",".join(self.days)
        return f"{days} {self.start_utc:%H:%M}-{end:%H:%M} UTC"

    def opens_within(self, start: datetime, end: datetime) -> bool:
        """Whether it is open at any moment of [start, end)."""
        if end - start >= timedelta(weeks=1):
            return True
        a, b = week_minutes(start), week_minutes(end)
        week = a // MINUTES_PER_WEEK * MINUTES_PER_WEEK
        return any(
            s + shift < b and a < e + shift
            for s, e in self.blocks()
            for shift in (week - MINUTES_PER_WEEK, week, week + MINUTES_PER_WEEK)
        )

    def occurrences(self, start: datetime, end: datetime) -> list[tuple[int, int]]:
        """Its openings that meet [start, end), as minutes from ANCHOR."""
        a, b = week_minutes(start), week_minutes(end)
        first_week = a // MINUTES_PER_WEEK - 1
        weeks = range(first_week, b // MINUTES_PER_WEEK + 1)
        found = [(s + w * MINUTES_PER_WEEK, e + w * MINUTES_PER_WEEK) for w in weeks for s, e in self.blocks()]
        return [(s, e) for s, e in found if s < b and a < e]


class Exclusion(Model):
    """A maintenance exclusion: no upgrade starts in [start, end)."""

    name: str = Field(description="exclusion name: the one-off windows it covers")
    windows: tuple[str, ...] = Field(description="the one-off windows it covers")
    start: datetime = Field(description="UTC start: the first window's scale-up less the upgrade overrun")
    end: datetime = Field(description="UTC end: the last window's scale-down")
    scope: Literal["NO_UPGRADES"] = Field(EXCLUSION_SCOPE, description="what it holds back: every upgrade")

    @property
    def start_time(self) -> str:
        return rfc3339(self.start)

    @property
    def end_time(self) -> str:
        return rfc3339(self.end)


class MaintenancePlan(Model):
    """When GKE may upgrade the cluster, as of `computed_at`."""

    managed: bool = Field(description="the program sets the policy (a created cluster); else the cluster's owner does")
    window: RecurringWindow | None = Field(description="the recurring window (None: not the program's)")
    exclusions: tuple[Exclusion, ...] = Field(description="the exclusions set, nearest first (at most 3)")
    uncovered: tuple[str, ...] = Field(description="one-off windows still to come that no exclusion covers yet")
    min_available_hours_32d: float | None = Field(
        description="the least maintenance time any rolling 32 days leaves GKE, exclusions included, hours"
    )
    computed_at: datetime = Field(description="the instant the exclusions were computed from")
    warnings: tuple[str, ...] = Field(description="what the policy leaves to a person")

    def to_json(self) -> dict[str, Any]:
        window = self.window
        return {
            "managed": self.managed,
            "window": None
            if window is None
            else {
                "days": list(window.days),
                "start_utc": f"{window.start_utc:%H:%M}",
                "duration_hours": window.duration_hours,
                "source": window.source,
                "recurrence": window.recurrence,
                "start_time": window.start_time,
                "end_time": window.end_time,
            },
            "exclusions": [
                {
                    "name": e.name,
                    "windows": list(e.windows),
                    "scope": e.scope,
                    "start_time": e.start_time,
                    "end_time": e.end_time,
                }
                for e in self.exclusions
            ],
            "uncovered": list(self.uncovered),
            "min_available_hours_32d": self.min_available_hours_32d,
            "computed_at": self.computed_at.isoformat(),
        }
