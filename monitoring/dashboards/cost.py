"""HyperStudy / Cost Analysis: monthly cost, the whole bill, cost per role, savings against the baseline profile and the
observed bill, efficiency, nodes."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard, stat, timeseries

from monitoring import names
from monitoring.dashboards.common import (
    NAMESPACE,
    TITLES,
    Color,
    Query,
    Section,
    Unit,
    build_dashboard,
    dashboard_selectors,
    efficiency_gauge,
    efficiency_thresholds,
    stat_panel,
    thresholds,
    timeseries_panel,
)
from monitoring.selectors import Selectors
from sizing.config.stack import StackConfig
from sizing.observe.promql import namespace_matcher, number, selector
from sizing.plan.types import Plan

SLUG = "cost"  # the uid is `<namespace>-cost`
TITLE = TITLES[SLUG]


def _cluster(metric: str) -> str:
    """A cluster-level recorded series of this stack: each stack sharing the Prometheus records its own copy,
    labelled with its namespace."""
    return selector(metric, namespace_matcher(NAMESPACE))


def _expected_savings_usd(plan: Plan) -> float:
    return round(plan.cost.baseline_monthly_usd - plan.cost.monthly_usd, 2)


def _cost_thresholds(plan: Plan) -> dashboard.ThresholdsConfig:
    """Green up to the baseline profile's cost, orange from it, red from the cost of the autoscaler maximum."""
    return thresholds(
        Color.GREEN, (plan.cost.baseline_monthly_usd, Color.ORANGE), (plan.cost.max_monthly_usd, Color.RED)
    )


def _node_thresholds(plan: Plan) -> dashboard.ThresholdsConfig:
    """Red below the autoscaler minimum (nodes missing), green from it, red at the maximum (no room to grow)."""
    return thresholds(Color.RED, (plan.nodes.min, Color.GREEN), (plan.nodes.max, Color.RED))


def _plan_line(plan: Plan) -> str:
    return (
        f"Plan: {plan.nodes.min} × ${plan.cost.node_usd_month:.2f} = ${plan.cost.monthly_usd:.2f}/month, "
        f"${plan.cost.max_monthly_usd:.2f} at the maximum of {plan.nodes.max} nodes; baseline profile "
        f"${plan.cost.baseline_monthly_usd:.2f}/month."
    )


# --- Summary ---
def monthly_cost_stat(plan: Plan) -> stat.Panel:
    return stat_panel(
        "Monthly cost now",
        f"`{names.COST}`: the node pool at today's node count, USD per month. {_plan_line(plan)}",
        Unit.USD,
        Query(_cluster(names.COST), "cost"),
        _cost_thresholds(plan),
        decimals=2,
    )


def savings_stat(plan: Plan) -> stat.Panel:
    return stat_panel(
        "Savings vs baseline now",
        f"`{names.SAVINGS}`: USD per month below the baseline profile's ${plan.cost.baseline_monthly_usd:.2f}; "
        f"the plan expects ${_expected_savings_usd(plan):.2f}.",
        Unit.USD,
        Query(_cluster(names.SAVINGS), "savings"),
        thresholds(Color.RED, (0, Color.GREEN)),
        decimals=2,
    )


def savings_ratio_stat(plan: Plan) -> stat.Panel:
    return stat_panel(
        "Savings ratio now",
        f"`{names.SAVINGS_RATIO}`: savings ÷ the baseline cost; the plan expects {plan.cost.savings_pct:g} %.",
        Unit.RATIO,
        Query(_cluster(names.SAVINGS_RATIO), "savings ratio"),
        thresholds(Color.RED, (0, Color.GREEN)),
        decimals=1,
    )


def nodes_stat(plan: Plan) -> stat.Panel:
    return stat_panel(
        "Nodes now",
        f"`{names.NODES}` against the autoscaler bounds of the plan: min {plan.nodes.min}, max {plan.nodes.max} "
        f"{plan.nodes.machine_type} ({names.ALERT_NODE_POOL_AT_MAX} at the maximum).",
        Unit.COUNT,
        Query(_cluster(names.NODES), "nodes"),
        _node_thresholds(plan),
        decimals=0,
    )


def summary(plan: Plan) -> Section:
    return Section("Summary", [monthly_cost_stat(plan), savings_stat(plan), savings_ratio_stat(plan), nodes_stat(plan)])


# --- Cost over time ---
def cost_vs_baseline_timeseries(plan: Plan) -> timeseries.Panel:
    return timeseries_panel(
        "Monthly cost vs baseline",
        f"`{names.COST}`; dashed: the baseline profile's cost (orange) and the cost at the autoscaler maximum "
        f"(red). {_plan_line(plan)}",
        Unit.USD,
        [Query(_cluster(names.COST), "monthly cost")],
        threshold_config=_cost_thresholds(plan),
        threshold_lines=True,
        min_value=0,
    )


def cost_by_role_timeseries() -> timeseries.Panel:
    return timeseries_panel(
        "Monthly cost by role",
        f"`{names.COST_BY_ROLE}`: the node pool's cost split by the memory each part holds on it (each role's "
        "users by the capacity formula, the backend pods' base and idle reserve, the other workloads' requests, and "
        "what no pod holds); the parts add up to the cost.",
        Unit.USD,
        [Query(_cluster(names.COST_BY_ROLE), "{{role}}")],
        stacked=True,
        min_value=0,
    )


def cost_over_time(plan: Plan) -> Section:
    return Section("Cost over time", [cost_vs_baseline_timeseries(plan), cost_by_role_timeseries()])


# --- Savings ---
def savings_timeseries(plan: Plan) -> timeseries.Panel:
    expected = _expected_savings_usd(plan)
    return timeseries_panel(
        "Savings vs baseline",
        f"`{names.SAVINGS}`; dashed: zero and the plan's expected ${expected:.2f}/month.",
        Unit.USD,
        [Query(_cluster(names.SAVINGS), "savings")],
        threshold_config=thresholds(Color.RED, (0, Color.ORANGE), (expected, Color.GREEN)),
        threshold_lines=True,
    )


def savings_ratio_timeseries(plan: Plan) -> timeseries.Panel:
    expected = plan.cost.savings_pct / 100
    return timeseries_panel(
        "Savings ratio",
        f"`{names.SAVINGS_RATIO}`; dashed: zero and the plan's expected {plan.cost.savings_pct:g} %.",
        Unit.RATIO,
        [Query(_cluster(names.SAVINGS_RATIO), "savings ratio")],
        threshold_config=thresholds(Color.RED, (0, Color.ORANGE), (expected, Color.GREEN)),
        threshold_lines=True,
    )


def savings(plan: Plan) -> Section:
    return Section("Savings", [savings_timeseries(plan), savings_ratio_timeseries(plan)])


# --- The bill ---
def _bill_lines(plan: Plan) -> str:
    c = plan.cost
    return "; ".join(f"{name} ${c.lines[name]:.2f} ({c.line_details[name]})" for name in c.lines)


def bill_stat(plan: Plan) -> stat.Panel:
    c = plan.cost
    return stat_panel(
        "Monthly bill now",
        f"`{names.BILL}`: every line of the bill at today's node count, USD per month; the plan at its minimum: "
        f"${c.total_monthly_usd:.2f} = {_bill_lines(plan)}.",
        Unit.USD,
        Query(_cluster(names.BILL), "bill"),
        thresholds(Color.GREEN, (c.total_monthly_usd + c.max_monthly_usd - c.monthly_usd, Color.RED)),
        decimals=2,
    )


def observed_savings_stats(plan: Plan) -> list[stat.Panel]:
    c = plan.cost
    if c.observed_baseline_monthly_usd is None:
        return []
    observed = f"the observed bill before the optimisation ({c.observed_pool}, ${c.observed_baseline_monthly_usd:.2f})"
    return [
        stat_panel(
            "Savings vs the observed bill now",
            f"`{names.OBSERVED_SAVINGS}`: USD per month below {observed}; the plan expects "
            f"${c.observed_baseline_monthly_usd - c.monthly_usd:.2f}.",
            Unit.USD,
            Query(_cluster(names.OBSERVED_SAVINGS), "savings"),
            thresholds(Color.RED, (0, Color.GREEN)),
            decimals=2,
        ),
        stat_panel(
            "Savings ratio vs the observed bill now",
            f"`{names.OBSERVED_SAVINGS_RATIO}`: savings ÷ {observed}; the plan expects {c.observed_savings_pct:g} %.",
            Unit.RATIO,
            Query(_cluster(names.OBSERVED_SAVINGS_RATIO), "savings ratio"),
            thresholds(Color.RED, (0, Color.GREEN)),
            decimals=1,
        ),
    ]


def bill_timeseries(plan: Plan) -> timeseries.Panel:
    return timeseries_panel(
        "Monthly bill and node pool cost",
        f"`{names.BILL}` (every line) and `{names.COST}` (the node pool); the gap is the cluster fee, the load "
        f"balancer, Cloud NAT, the volumes and public node addresses. Plan: {_bill_lines(plan)}.",
        Unit.USD,
        [Query(_cluster(names.BILL), "bill"), Query(_cluster(names.COST), "node pool")],
        width=12 if plan.cost.observed_baseline_monthly_usd is None else 6,
        min_value=0,
    )


def the_bill(plan: Plan) -> Section:
    return Section("The bill", [bill_stat(plan), *observed_savings_stats(plan), bill_timeseries(plan)])


# --- Efficiency and daily aggregates ---
def efficiency_timeseries(s: Selectors) -> timeseries.Panel:
    return timeseries_panel(
        "Memory efficiency over time",
        f"`{names.EFFICIENCY}`: Σ working set ÷ Σ requests; requests are what the nodes are paid for.",
        Unit.RATIO,
        [Query(selector(names.EFFICIENCY, s.ns), "{{namespace}}")],
        width=6,
        threshold_config=efficiency_thresholds(),
        threshold_lines=True,
        min_value=0,
    )


def daily_cost_timeseries(plan: Plan) -> timeseries.Panel:
    return timeseries_panel(
        "Daily cost: maximum and average",
        f"`{names.COST_MAX_1D}` and `{names.COST_AVG_1D}`, USD per month; dashed: the baseline profile's cost "
        f"(orange) and the cost at the autoscaler maximum (red).",
        Unit.USD,
        [
            Query(_cluster(names.COST_MAX_1D), "1d maximum"),
            Query(_cluster(names.COST_AVG_1D), "1d average"),
        ],
        threshold_config=_cost_thresholds(plan),
        threshold_lines=True,
        min_value=0,
    )


def efficiency(plan: Plan, s: Selectors) -> Section:
    return Section(
        "Efficiency and daily aggregates",
        [efficiency_gauge(s, height=8), efficiency_timeseries(s), daily_cost_timeseries(plan)],
    )


# --- Nodes ---
def nodes_timeseries(plan: Plan) -> timeseries.Panel:
    return timeseries_panel(
        "Nodes vs autoscaler bounds",
        f"`{names.NODES}`; dashed: the plan's minimum {plan.nodes.min} (typical load, binding: "
        f"{plan.nodes.binding}) and maximum {plan.nodes.max} (peak load plus surge).",
        Unit.COUNT,
        [Query(_cluster(names.NODES), "nodes")],
        width=24,
        threshold_config=_node_thresholds(plan),
        threshold_lines=True,
        min_value=0,
    )


def nodes(plan: Plan) -> Section:
    return Section("Node pool", [nodes_timeseries(plan)])


def build(config: StackConfig, plan: Plan) -> dashboard.Dashboard:
    s = dashboard_selectors(config, plan)
    return build_dashboard(
        SLUG,
        f"Cost of the node pool against the sizing plan and the baseline profile (plan {plan.stack}, profile "
        f"{plan.profile}; node ${plan.cost.node_usd_month:.2f}/month, max {number(plan.nodes.max)} nodes).",
        ["cost"],
        "now-7d",
        config,
        [summary(plan), the_bill(plan), cost_over_time(plan), savings(plan), efficiency(plan, s), nodes(plan)],
    )


__all__ = ["SLUG", "TITLE", "build"]
