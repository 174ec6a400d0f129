"""HyperStudy / Capacity Planning: experiment slots per shape, the scheduled windows (for a stack with
`capacity.schedule`), load by role, memory by role, the formula's accuracy."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, stat, text, timeseries
from grafana_foundation_sdk.models import common as common_model, dashboard as dashboard_model, text as text_model

from monitoring import names
from monitoring.dashboards.common import (
    MEMORY,
    TITLES,
    Color,
    Query,
    Section,
    Unit,
    build_dashboard,
    dashboard_selectors,
    stat_panel,
    thresholds,
    tile_width,
    timeseries_panel,
)
from monitoring.rules import shape_bytes
from monitoring.selectors import Selectors
from sizing.config.capacity import UserMix
from sizing.config.stack import StackConfig
from sizing.core.model import ROLES
from sizing.core.quantity import MIB_BYTES
from sizing.observe import contract
from sizing.observe.promql import POD, dedup, eq, number, selector
from sizing.plan.types import Plan, SchedulePlan, WorkloadPlan

SLUG = "capacity"  # the uid is `<namespace>-capacity`
TITLE = TITLES[SLUG]


def _describe(mix: UserMix) -> str:
    return ", ".join(f"{getattr(mix, role)} {role}" for role in ROLES if getattr(mix, role)) or "no users"


def _slots_floor(config: StackConfig, shape: str) -> float:
    """Slots below which a shape is short: the alert's threshold for the alerting shape, one for the others."""
    if shape == config.monitoring.capacity_shape:
        return config.monitoring.alerts.capacity_low.threshold
    return 1


# --- Slots ---
def slots_stat(config: StackConfig, s: Selectors, shape: str, width: int) -> stat.Panel:
    mix = config.capacity.shapes[shape]
    floor = _slots_floor(config, shape)
    alerting = (
        f" {names.ALERT_CAPACITY_LOW} watches this shape (config monitoring.capacity_shape)."
        if shape == config.monitoring.capacity_shape
        else ""
    )
    return stat_panel(
        f"Slots: {shape}",
        f"More {shape} experiments ({_describe(mix)}) that still fit on the backend pods below "
        f"{config.monitoring.alerts.memory_near_limit.threshold:.0%} of their limit (`{names.SLOTS}`); each needs "
        f"{config.capacity.formula.users_mib(mix)} MiB on a backend pod by the capacity formula. "
        f"Red below {number(floor)}.{alerting}",
        Unit.COUNT,
        Query(selector(names.SLOTS, s.ns, eq("shape", shape)), shape),
        thresholds(Color.RED, (floor, Color.GREEN)),
        width=width,
        decimals=0,
    )


def slots_timeseries(config: StackConfig, s: Selectors) -> timeseries.Panel:
    floor = config.monitoring.alerts.capacity_low.threshold
    return timeseries_panel(
        "Available experiment slots by shape",
        f"`{names.SLOTS}`; the dashed line is the {names.ALERT_CAPACITY_LOW} threshold for the "
        f"{config.monitoring.capacity_shape} shape.",
        Unit.COUNT,
        [Query(selector(names.SLOTS, s.ns), "{{shape}}")],
        width=24,
        threshold_config=thresholds(Color.RED, (floor, Color.GREEN)),
        threshold_lines=True,
        min_value=0,
    )


def slots(config: StackConfig, s: Selectors) -> Section:
    """A stat per shape the rules count slots of (shapes whose users need memory), then all shapes over time."""
    shapes = list(shape_bytes(config))
    width = tile_width(len(shapes))
    return Section(
        "Experiment slots", [*(slots_stat(config, s, shape, width) for shape in shapes), slots_timeseries(config, s)]
    )


# --- Scheduled windows (capacity.schedule) ---
STATEFULSET = ("namespace", "statefulset")
SCHEDULE_ROW = "Scheduled windows"
WINDOWS_TITLE = "Planned windows (capacity.schedule)"
REPLICAS_TITLE = "Backend replicas (desired vs ready) and slots"
SLOTS_REF_ID = "C"  # queries are lettered in order: desired A, ready B, slots C


def _cell(value: object) -> str:
    """A Markdown table cell: a `|` would end it."""
    return str(value).replace("|", "\\|")


def _experiments(experiments: dict[str, int]) -> str:
    return ", ".join(f"{count} {shape}" for shape, count in experiments.items())


def windows_text(config: StackConfig, plan: Plan, schedule: SchedulePlan) -> text.Panel:
    """The plan's windows as a Markdown table: what each brings, the replicas and nodes it needs, whether it fits,
    and when its scale-up and scale-down run; refusals spelled out under the table."""
    timing = {w.name: (w.lead_minutes, w.grace_minutes) for w in config.capacity.schedule}
    workload = schedule.workload
    rows = [
        "| window | when | experiments | backend replicas | nodes | fits | scale-up / scale-down |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in schedule.windows:
        lead, grace = timing[w.name]
        cells = (
            w.name,
            w.when,
            _experiments(w.experiments),
            w.backend_replicas,
            w.nodes,
            "yes" if w.fits else "**no**",
            f"{lead} min before / {grace} min after",
        )
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    refusals = [f"- **{w.name}** does not fit: {w.reason}" for w in schedule.windows if not w.fits and w.reason]
    content = "\n".join(
        [
            f"Outside the windows `{workload}` runs {schedule.base_replicas} replicas. Each window's CronJob "
            f"`{workload}-<window>-up` sets its replicas before it starts, `{workload}-<window>-down` sets them back "
            f"after it ends (plan {plan.stack}: `python -m sizing schedule --stack {plan.stack}`).",
            "",
            *rows,
            *(["", *refusals] if refusals else []),
        ]
    )
    return (
        text.Panel()
        .title(WINDOWS_TITLE)
        .description(
            "The windows of capacity.schedule and what the sizing plan gives each, as of the last deploy: "
            f"{names.ALERT_SCHEDULED_CAPACITY_NOT_READY} fires when a scale-up's pods are not ready by the start, "
            f"{names.ALERT_SCHEDULED_SCALING_FAILED} when a scaler Job fails."
        )
        .mode(text_model.TextMode.MARKDOWN)
        .content(content)
        .span(12)
        .height(_windows_height(schedule))
    )


def _windows_height(schedule: SchedulePlan) -> int:
    """Room for the intro, the table and any refusal: at least a standard panel's 8 rows."""
    refusals = sum(1 for w in schedule.windows if not w.fits)
    return max(8, 5 + len(schedule.windows) + 2 * refusals)


def replicas_timeseries(config: StackConfig, schedule: SchedulePlan, s: Selectors) -> timeseries.Panel:
    """The scaler's work against what it buys: the StatefulSet's desired and ready replicas (kube-state-metrics),
    dashed at the replicas the windows need, and the slots of the alerting shape on the right axis."""
    statefulset = eq("statefulset", schedule.workload)
    shape = config.monitoring.capacity_shape
    planned = sorted({w.backend_replicas for w in schedule.windows} - {schedule.base_replicas})
    panel = timeseries_panel(
        REPLICAS_TITLE,
        f"Desired (`{contract.STATEFULSET_REPLICAS}`: what the scaler Jobs set) and ready "
        f"(`{contract.STATEFULSET_READY}`) replicas of the {schedule.workload} StatefulSet, and, on the right axis, "
        f"the {shape} slots (`{names.SLOTS}`). Before each window desired steps up to the window's replicas "
        f"(dashed: {', '.join(str(r) for r in planned) or 'none above the configured'}), ready follows once the "
        f"nodes come, and the slots rise with it; desired above ready at a window's start is "
        f"{names.ALERT_SCHEDULED_CAPACITY_NOT_READY}.",
        Unit.COUNT,
        [
            Query(dedup(s.ksm(contract.STATEFULSET_REPLICAS, statefulset), STATEFULSET), "desired replicas"),
            Query(dedup(s.ksm(contract.STATEFULSET_READY, statefulset), STATEFULSET), "ready replicas"),
            Query(selector(names.SLOTS, s.ns, eq("shape", shape)), "{{shape}} slots"),
        ],
        height=_windows_height(schedule),
        threshold_config=thresholds(Color.GREEN, *((r, Color.BLUE) for r in planned)),
        threshold_lines=bool(planned),
        min_value=0,
    )
    return (
        panel.line_interpolation(common_model.LineInterpolation.STEP_AFTER)
        .axis_label("replicas")
        .override_by_query(
            SLOTS_REF_ID,  # the third query's: the slots
            [
                dashboard_model.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
                dashboard_model.DynamicConfigValue(id_val="custom.axisLabel", value="slots"),
                dashboard_model.DynamicConfigValue(id_val="custom.thresholdsStyle", value={"mode": "off"}),
            ],
        )
    )


def scheduled_windows(config: StackConfig, plan: Plan, s: Selectors) -> list[Section]:
    """The windows and the replicas scaled for them; no section at all for a stack without a schedule."""
    schedule = plan.schedule
    if schedule is None:
        return []
    return [Section(SCHEDULE_ROW, [windows_text(config, plan, schedule), replicas_timeseries(config, schedule, s)])]


# --- Load ---
def _backend(s: Selectors) -> tuple[str, ...]:
    """The backend pods' matcher, when a workload is sized by the formula."""
    return (s.backend_pods,) if s.has_backend else ()


def connected_users_timeseries(s: Selectors) -> timeseries.Panel:
    return timeseries_panel(
        "Connected users by role",
        f"`{contract.CONNECTED_USERS}` summed over the backend pods, by role.",
        Unit.COUNT,
        [Query(f"sum by (role) ({s.app(contract.CONNECTED_USERS, *_backend(s))})", "{{role}}")],
        stacked=True,
        min_value=0,
    )


def active_experiments_timeseries(s: Selectors) -> timeseries.Panel:
    return timeseries_panel(
        "Active experiments",
        f"`{contract.ACTIVE_EXPERIMENTS}` summed over the backend pods.",
        Unit.COUNT,
        [Query(f"sum({s.app(contract.ACTIVE_EXPERIMENTS, *_backend(s))})", "experiments")],
        min_value=0,
    )


def load(s: Selectors) -> Section:
    return Section("Load", [connected_users_timeseries(s), active_experiments_timeseries(s)])


# --- Memory ---
def memory_by_role_timeseries(s: Selectors) -> timeseries.Panel:
    return timeseries_panel(
        "Memory by role",
        f"`{names.MEMORY_BY_ROLE}`: backend memory attributed to each role by the capacity formula.",
        Unit.BYTES,
        [Query(selector(names.MEMORY_BY_ROLE, s.ns), "{{role}}")],
        stacked=True,
        min_value=0,
    )


def requests_vs_allocatable_timeseries(s: Selectors) -> timeseries.Panel:
    """The overcommit check of HyperStudyMemoryOvercommit, drawn: requests against allocatable minus a node."""
    requests = f"sum({dedup(s.ksm(contract.REQUESTS, MEMORY, namespaced=False))})"
    allocatable = s.ksm(contract.NODE_ALLOCATABLE, MEMORY, namespaced=False)
    return timeseries_panel(
        "Cluster memory requests vs allocatable",
        f"Memory requests of every pod against node allocatable; requests above the last line do not fit once "
        f"the largest node is lost ({names.ALERT_MEMORY_OVERCOMMIT}).",
        Unit.BYTES,
        [
            Query(requests, "requests"),
            Query(f"sum(max by (node) ({allocatable}))", "allocatable"),
            Query(f"sum(max by (node) ({allocatable})) - max({allocatable})", "allocatable without the largest node"),
        ],
        min_value=0,
    )


def memory(s: Selectors) -> Section:
    return Section("Memory", [memory_by_role_timeseries(s), requests_vs_allocatable_timeseries(s)])


# --- Formula accuracy ---
def _formula_workload(plan: Plan, s: Selectors) -> WorkloadPlan | None:
    """A workload sized by the formula: they all get the same request and limit from it."""
    return plan.workloads[s.backend[0]] if s.has_backend else None


def predicted_vs_actual_timeseries(config: StackConfig, plan: Plan, s: Selectors) -> timeseries.Panel:
    """Formula prediction against working set for each backend pod; plan request and limit as dashed lines."""
    predicted = selector(names.PREDICTED, s.ns)
    actual = f"sum by ({', '.join(POD)}) ({dedup(s.cadvisor(contract.WORKING_SET, *_backend(s)))})"
    formula = config.capacity.formula
    description = (
        f"`{names.PREDICTED}` (memory = {formula.base_mib} MiB + Σ MiB per role × connected users) against the "
        f"pod's working set (`{contract.WORKING_SET}`)."
    )
    workload = _formula_workload(plan, s)
    steps: list[tuple[float, str]] = []
    if workload is not None:
        steps = [
            (workload.memory_request_mib * MIB_BYTES, Color.YELLOW),
            (workload.memory_limit_mib * MIB_BYTES, Color.RED),
        ]
        description += (
            f" Dashed: the plan's {workload.name} request {workload.memory_request} and limit {workload.memory_limit}."
        )
    return timeseries_panel(
        "Predicted vs actual memory per backend pod",
        description,
        Unit.BYTES,
        [
            Query(predicted, "{{pod}} predicted"),
            Query(actual, "{{pod}} working set"),
        ],
        threshold_config=thresholds(Color.GREEN, *steps),
        threshold_lines=bool(steps),
        min_value=0,
    )


def prediction_accuracy_timeseries(config: StackConfig, s: Selectors) -> timeseries.Panel:
    drift = config.monitoring.alerts.prediction_drift.threshold
    return timeseries_panel(
        "Prediction accuracy (working set ÷ predicted)",
        f"`{names.PREDICTION_ACCURACY}` per backend pod: 100 % means the formula is exact. Outside "
        f"{1 - drift:.0%}–{1 + drift:.0%} ({names.ALERT_PREDICTION_DRIFT}) the formula needs re-measuring.",
        Unit.RATIO,
        [Query(selector(names.PREDICTION_ACCURACY, s.ns), "{{pod}}")],
        threshold_config=thresholds(Color.RED, (1 - drift, Color.GREEN), (1 + drift, Color.RED)),
        threshold_lines=True,
        min_value=0,
    )


def accuracy(config: StackConfig, plan: Plan, s: Selectors) -> Section:
    return Section(
        "Capacity formula",
        [predicted_vs_actual_timeseries(config, plan, s), prediction_accuracy_timeseries(config, s)],
    )


def build(config: StackConfig, plan: Plan) -> dashboard.Dashboard:
    s = dashboard_selectors(config, plan)
    return build_dashboard(
        SLUG,
        "How many more experiments of each shape fit, the load by role, and how well the capacity formula "
        f"predicts backend memory (plan {plan.stack}, profile {plan.profile}).",
        ["capacity"],
        "now-24h",
        config,
        [slots(config, s), *scheduled_windows(config, plan, s), load(s), memory(s), accuracy(config, plan, s)],
    )


__all__ = ["REPLICAS_TITLE", "SCHEDULE_ROW", "SLUG", "TITLE", "WINDOWS_TITLE", "build"]
