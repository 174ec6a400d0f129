"""Right-sizing every container the plan holds from its measured history: `python -m sizing rightsize`.

The targets are the plan's sizes entries: each app workload (`workloads.<name>`), each chart container's entry
(`monitoring.components.<name>`, `ingress.components.<name>`), a sidecar sized once counted once. Each is measured
over `--since` (14 days by default, as krr) from the series the rules read, in six queries whatever the number of
containers (one per metric, grouped by namespace and container, never one per container):

- CPU: the 95th percentile of each pod's usage rate (`rate(container_cpu_usage_seconds_total[5m])`, one series per
  container: duplicates collapse into their maximum), then the maximum over the pods (krr's simple strategy);
- memory: the peak of the working set (`container_memory_working_set_bytes`, what the kernel's OOM killer and the
  kubelet's eviction judge);
- how much history there is: samples and the first one's time;
- OOM kills: kube-state-metrics' last termination reason `OOMKilled` at any time in the window, and the memory
  limit the container had while it was (the limit it was killed at).

`RULES` turns a measurement into a recommendation, the same table the docs print (docs/sizing/rightsize.md). The
memory the capacity formula sizes (`sized_by: formula`) is not sized twice: its peak is compared with the formula's
limit and `fit` is named; its CPU request is right-sized like any other.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from sizing.core.durations import duration_text
from sizing.core.errors import ConfigError
from sizing.core.model import Model
from sizing.core.quantity import MIB_BYTES
from sizing.observe.contract import CPU_USAGE, LAST_TERMINATED, LIMITS, WORKING_SET
from sizing.observe.prometheus import read_export
from sizing.observe.promql import dedup, eq, real_containers, regex, selector
from sizing.plan.containers import PlannedContainer, planned_containers

if TYPE_CHECKING:
    from sizing.config.stack import StackConfig
    from sizing.observe.prometheus import Prometheus
    from sizing.plan.types import Plan, WorkloadPlan

EXPORT_FORMAT = "hyperstudy-rightsize/1"
# The rate window and the subquery's resolution: five minutes hold at least two samples at any usual scrape
# interval (15-60 s), and 4,032 steps over two weeks keep the p95 query light.
RATE_WINDOW = "5m"
RESOLUTION = "5m"
FIRST_SEEN_RESOLUTION = "10m"
GROUP = ("namespace", "container")
QUERIES = ("cpu_p95", "memory_peak", "points", "first_seen", "oom_killed", "killed_limit")
State = Literal["ok", "not enough data", "oom-bumped", "capped by node"]


class Rules(Model):
    """How a measurement becomes a recommendation: every threshold, headroom, step and floor, stated once."""

    cpu_percentile: float = Field(0.95, description="CPU request: this quantile of each pod's usage, max over pods")
    cpu_step_m: int = Field(5, description="CPU request rounded up to a multiple of this, millicores")
    cpu_floor_m: int = Field(10, description="least CPU request: 1 % of a core, the scheduler's smallest useful share")
    memory_headroom: float = Field(0.15, description="memory request: the peak plus this share (krr, the VPA)")
    memory_step_mib: int = Field(16, description="memory rounded up to a multiple of this, MiB")
    memory_floor_mib: int = Field(32, description="least memory request and limit, MiB: a container runtime's shim")
    min_points: int = Field(100, description="fewer working-set samples than this: not enough data (krr)")
    min_history_s: float = Field(3 * 3600.0, description="less history than this: not enough data (krr: 3 h)")
    oom_add_mib: int = Field(100, description="after an OOM kill the limit grows by at least this, MiB (the VPA)")
    oom_factor: float = Field(1.2, description="... and to at least this multiple of the limit it was killed at")

    def widen(self, history_s: float) -> float:
        """The VPA's confidence factor on the upper bound: 1 + 1/days of history (×2 after a day, ×1.07 after 14)."""
        return 1 + 86400.0 / history_s

    def summary(self) -> str:
        """The rules in one paragraph, for `rightsize --help`."""
        return (
            f"Rules (docs/sizing/rightsize.md): CPU request = p{self.cpu_percentile * 100:g} of usage, up to "
            f"{self.cpu_step_m}m steps, at least {self.cpu_floor_m}m; memory request = peak + "
            f"{self.memory_headroom:.0%}, limit × (1 + 1/days of history), up to {self.memory_step_mib}Mi steps, at "
            f"least {self.memory_floor_mib}Mi; an OOM kill: limit ≥ max(+{self.oom_add_mib} MiB, "
            f"×{self.oom_factor:g}); under {self.min_points} samples or {duration_text(self.min_history_s)} of "
            "history: not enough data, kept."
        )


RULES = Rules()


class Sizes(Model):
    """A container's sizes."""

    cpu_request_m: int = Field(description="CPU request, millicores")
    memory_request_mib: int = Field(description="memory request, MiB")
    memory_limit_mib: int = Field(description="memory limit, MiB")


class Target(Model):
    """One sizes entry: the containers it sizes, where they run, and its sizes now."""

    name: str = Field(description="the entry's name: a workload, or a chart component")
    config_path: str = Field(description="dotted config path of its sizes, e.g. monitoring.components.prometheus")
    namespace: str = Field(description="namespace its containers run in")
    containers: tuple[str, ...] = Field(description="container names it sizes (a sidecar may run in several pods)")
    current: Sizes = Field(description="its sizes in the stack now")
    formula: bool = Field(False, description="its memory is sized by the capacity formula (only its CPU is sized here)")
    formula_peak_mib: int | None = Field(None, description="the formula's memory at peak load (formula-sized), MiB")
    runtime_floor_mib: int = Field(0, description="least limit its runtime setting needs (Node.js: old space + …)")


class Measured(Model):
    """What the history holds for one target (None: no series)."""

    cpu_p95_m: float | None = Field(description="CPU: the 95th percentile of each pod's usage, max over pods, m")
    memory_peak_mib: float | None = Field(description="memory: the working set's peak over the window, MiB")
    points: int = Field(description="working-set samples of its most observed pod")
    history_s: float = Field(description="from its first sample to the end of the window, seconds")
    oom_killed: bool = Field(description="an OOM kill in the window (kube-state-metrics' last termination reason)")
    killed_limit_mib: float | None = Field(
        None, description="the memory limit it was killed at, MiB (None: no kill, or kube-state-metrics has no limit)"
    )


class Row(Model):
    """One target: measured, current, recommended, and why."""

    name: str = Field(description="the sizes entry's name")
    config_path: str = Field(description="dotted config path of its sizes")
    namespace: str = Field(description="namespace of its containers")
    containers: tuple[str, ...] = Field(description="the containers it sizes")
    state: State = Field(description="ok, not enough data, oom-bumped or capped by node")
    measured: Measured = Field(description="what the history holds")
    current: Sizes = Field(description="the sizes in the stack now")
    recommended: Sizes = Field(description="the sizes the rules give (the current ones when data is short)")
    formula: bool = Field(description="memory sized by the capacity formula: kept, compared, `fit` named")
    why: str = Field(description="the rule that decided, in words")

    @property
    def changed(self) -> bool:
        return self.recommended != self.current


class Report(Model):
    """`rightsize` for one stack: every target, and the window read."""

    stack: str = Field(description="stack name")
    profile: str = Field(description="the profile whose sizes are compared and written")
    start: float = Field(description="window start, Unix seconds")
    end: float = Field(description="window end, Unix seconds")
    queries: int = Field(description="queries sent to Prometheus (0 from an export)")
    rules: Rules = Field(description="the rules applied")
    rows: tuple[Row, ...] = Field(description="every target, in plan order")


def targets(config: StackConfig, plan: Plan) -> tuple[Target, ...]:
    """The plan's sizes entries (`sizing.plan.containers`, grouped by config path), each with its containers and
    namespace, in the plan's order: the app's workloads, then each chart's pods."""
    order = {name: index for index, name in enumerate(plan.pool_workloads)}
    grouped: dict[str, list[PlannedContainer]] = {}
    main_first = sorted(
        planned_containers(config, plan), key=lambda c: (order[c.workload.name], c.sizes is not c.workload)
    )
    for planned in main_first:
        grouped.setdefault(planned.sizes.config_path, []).append(planned)
    found = []
    for path, containers in grouped.items():
        sized, workload = containers[0].sizes, containers[0].workload
        derivation = workload.derivation if sized is workload else None
        found.append(
            Target(
                name=path.rsplit(".", 1)[-1],
                config_path=path,
                namespace=containers[0].namespace,
                containers=tuple(c.container for c in containers),
                current=Sizes(
                    cpu_request_m=sized.cpu_request_m,
                    memory_request_mib=sized.memory_request_mib,
                    memory_limit_mib=sized.memory_limit_mib,
                ),
                formula=derivation is not None,
                formula_peak_mib=derivation.peak_mib if derivation is not None else None,
                runtime_floor_mib=_runtime_floor(config, workload) if sized is workload else 0,
            )
        )
    return tuple(found)


def _runtime_floor(config: StackConfig, workload: WorkloadPlan) -> int:
    """A Node.js limit below old space + young generation (3 capped semi-spaces) + native memory fails the plan: the
    least it may be, when the stack sets the old space (else the heap follows the limit and any limit holds)."""
    entry = config.workloads.get(workload.name)
    sizes = getattr(entry.memory, config.profile, None) if entry is not None else None
    node = workload.runtime.node_memory
    if sizes is None or sizes.old_space is None or node is None:
        return 0
    # The plan caps the semi-space where V8's default would not fit: the floor is the limit at the capped one.
    return node.model_copy(update={"semi_space_mib": config.runtime.nodejs_semi_space_mib}).smallest_limit_mib(None)


def queries(found: tuple[Target, ...], since_s: float) -> dict[str, str]:
    """The six queries, each over every target at once."""
    namespaces = "|".join(sorted({t.namespace for t in found}))
    containers = "|".join(sorted({c for t in found for c in t.containers}))
    scope = (regex("namespace", f"^({namespaces})$"), regex("container", f"^({containers})$"), *real_containers())
    window = duration_text(since_s)
    working_set = selector(WORKING_SET, *scope)
    per_pod = ("namespace", "pod", "container")
    usage = dedup(f"rate({selector(CPU_USAGE, *scope)}[{RATE_WINDOW}])", per_pod)
    oom = dedup(selector(LAST_TERMINATED, *scope[:2], eq("reason", "OOMKilled")), per_pod)
    limit = dedup(selector(LIMITS, *scope[:2], eq("resource", "memory")), per_pod)
    by = ", ".join(GROUP)
    return {
        "cpu_p95": f"max by ({by}) (quantile_over_time({RULES.cpu_percentile}, ({usage})[{window}:{RESOLUTION}]))",
        "memory_peak": f"max by ({by}) (max_over_time({working_set}[{window}]))",
        "points": f"max by ({by}) (count_over_time({working_set}[{window}]))",
        # Aggregated before the subquery (a timestamp of each raw series at every step took half a minute over two
        # weeks); the first step that sees a sample, so history is short by less than the resolution, never long.
        "first_seen": f"min by ({by}) (min_over_time(timestamp(max by ({by}) ({working_set}))"
        f"[{window}:{FIRST_SEEN_RESOLUTION}]))",
        "oom_killed": f"max by ({by}) (max_over_time(({oom})[{window}:{RESOLUTION}]))",
        # The limit a container was killed at: its limit while an OOM kill is its last termination. Not the limit now:
        # once raised, a second run would raise it again for the same kill.
        "killed_limit": f"max by ({by}) (max_over_time(({limit} and on ({', '.join(per_pod)}) ({oom} == 1))"
        f"[{window}:{RESOLUTION}]))",
    }


def collect(client: Prometheus, config: StackConfig, plan: Plan, since_s: float) -> dict[str, Any]:
    """The six queries' answers at the server's now, as an export (`--save` writes it, `--from` reads it)."""
    found = targets(config, plan)
    end = client.now()
    asked = queries(found, since_s)
    results = {}
    for name, expr in asked.items():
        results[name] = [
            {
                "namespace": s["metric"].get("namespace", ""),
                "container": s["metric"].get("container", ""),
                "value": float(s["value"][1]),
            }
            for s in client.query(expr, at=end)
        ]
    return {
        "format": EXPORT_FORMAT,
        "namespace": config.kubernetes.namespace,
        "start": end - since_s,
        "end": end,
        "queries": asked,
        "results": results,
    }


def load_export(path: Path, config: StackConfig) -> dict[str, Any]:
    """An export written by `rightsize --save`, checked to be one, whole, and of this stack's namespace."""
    export = read_export(path, EXPORT_FORMAT, "rightsize")
    for key in ("start", "end"):
        if not isinstance(export.get(key), int | float):
            raise ConfigError(f"{path}:{key}", "missing, or not a Unix time")
    results = export.get("results")
    for name in QUERIES:
        rows = results.get(name) if isinstance(results, dict) else None
        if not isinstance(rows, list) or not all(_is_result(r) for r in rows):
            raise ConfigError(f"{path}:results.{name}", "missing, or not a list of {namespace, container, value}")
    if export.get("namespace") != config.kubernetes.namespace:
        raise ConfigError(
            f"{path}:namespace", f"{export.get('namespace')!r}, the stack's is {config.kubernetes.namespace!r}"
        )
    return export


def _is_result(row: Any) -> bool:
    return (
        isinstance(row, dict)
        and isinstance(row.get("namespace"), str)
        and isinstance(row.get("container"), str)
        and isinstance(row.get("value"), int | float)
    )


def measure(target: Target, export: dict[str, Any]) -> Measured:
    """One target's measurement: over its containers, the largest CPU p95 and peak, the most samples, the earliest
    first sample, any OOM kill."""

    def values(name: str) -> list[float]:
        return [
            float(r["value"])
            for r in export["results"][name]
            if r["namespace"] == target.namespace and r["container"] in target.containers and math.isfinite(r["value"])
        ]

    cpu, peak, points, first, oom, killed = (values(n) for n in QUERIES)
    return Measured(
        cpu_p95_m=max(cpu) * 1000 if cpu else None,
        memory_peak_mib=max(peak) / MIB_BYTES if peak else None,
        points=int(max(points, default=0)),
        history_s=max(0.0, export["end"] - min(first)) if first else 0.0,
        oom_killed=any(v >= 1 for v in oom),
        killed_limit_mib=max(killed) / MIB_BYTES if killed else None,
    )


def _up(value: float, step: int) -> int:
    return max(step, math.ceil(round(value, 6) / step) * step)


def recommend(target: Target, measured: Measured, plan: Plan, rules: Rules = RULES) -> Row:
    """The rules of `Rules` applied to one target."""
    current = target.current
    row = {
        "name": target.name,
        "config_path": target.config_path,
        "namespace": target.namespace,
        "containers": target.containers,
        "measured": measured,
        "current": current,
        "formula": target.formula,
    }
    short = []
    if measured.points < rules.min_points:
        short.append(f"{measured.points} samples (needs {rules.min_points})")
    if measured.history_s < rules.min_history_s:
        short.append(f"{duration_text(measured.history_s)} of history (needs {duration_text(rules.min_history_s)})")
    if short or measured.cpu_p95_m is None or measured.memory_peak_mib is None:
        why = "; ".join(short) or "no CPU or memory series"
        return Row(**row, state="not enough data", recommended=current, why=f"kept: {why}")
    cpu = max(rules.cpu_floor_m, _up(measured.cpu_p95_m, rules.cpu_step_m))
    why = [f"CPU p95 {measured.cpu_p95_m:.1f}m → {cpu}m"]
    state: State = "ok"
    if target.formula:
        request, limit = current.memory_request_mib, current.memory_limit_mib
        share = measured.memory_peak_mib / limit
        why.append(
            f"memory by the capacity formula: peak {measured.memory_peak_mib:.0f} MiB against its "
            f"{target.formula_peak_mib} MiB at peak load, {share:.0%} of its limit (recalibrate with "
            "`python -m sizing fit`)"
        )
    else:
        peak, step = measured.memory_peak_mib, rules.memory_step_mib
        request = max(rules.memory_floor_mib, _up(peak * (1 + rules.memory_headroom), step))
        widen = rules.widen(measured.history_s)
        # The runtime's floor bounds the limit only: the request is what the scheduler reserves, not what it needs.
        floor = _up(max(rules.memory_floor_mib, target.runtime_floor_mib), step)
        limit = max(request, floor, _up(peak * (1 + rules.memory_headroom) * widen, step))
        why.append(f"memory peak {peak:.0f} MiB +{rules.memory_headroom:.0%} → {request} MiB, limit ×{widen:.2f}")
        if measured.oom_killed:
            killed_at = round(measured.killed_limit_mib or current.memory_limit_mib)
            bumped = _up(max(killed_at + rules.oom_add_mib, killed_at * rules.oom_factor), rules.memory_step_mib)
            if bumped > limit or killed_at > request:
                state = "oom-bumped"
                limit, request = max(limit, bumped), max(request, killed_at)
                why.append(f"OOM-killed at its {killed_at} MiB limit: limit ≥ {bumped}, request ≥ {killed_at} MiB")
    nodes = plan.nodes
    caps = {"cpu": nodes.free_cpu_m, "request": nodes.free_memory_mib, "limit": nodes.allocatable_memory_mib}
    if cpu > caps["cpu"] or request > caps["request"] or limit > caps["limit"]:
        state = "capped by node"
        cpu, request = min(cpu, caps["cpu"]), min(request, caps["request"])
        limit = max(request, min(limit, caps["limit"]))
        why.append(f"capped by a {nodes.machine_type} node ({caps['cpu']}m, {caps['request']} MiB free)")
    recommended = Sizes(cpu_request_m=cpu, memory_request_mib=request, memory_limit_mib=limit)
    return Row(**row, state=state, recommended=recommended, why="; ".join(why))


def report(config: StackConfig, plan: Plan, export: dict[str, Any], stack: str, queries_sent: int) -> Report:
    """Every target measured and recommended."""
    rows = tuple(recommend(t, measure(t, export), plan) for t in targets(config, plan))
    return Report(
        stack=stack,
        profile=config.profile,
        start=float(export["start"]),
        end=float(export["end"]),
        queries=queries_sent,
        rules=RULES,
        rows=rows,
    )
