"""The sizing plan of a stack: every workload's requests, limits and runtime memory setting, the node pool, the cost.

Everything downstream (the Pulumi components, the Prometheus rules, the dashboards, the CLI) reads a `Plan`;
none of them computes a size of its own.
"""

from __future__ import annotations

from datetime import datetime

from sizing.config.stack import StackConfig
from sizing.core.errors import ConfigError
from sizing.plan.bill import NodePrice, bill, boot_disk_floor, commitment_note, node_price, rates
from sizing.plan.maintenance import plan_maintenance
from sizing.plan.nodes import Demand, plan_pool
from sizing.plan.pools import cheapest
from sizing.plan.sizes import size_chart_workloads, size_workloads
from sizing.plan.types import (
    CommitmentPlan,
    CostPlan,
    Plan,
    PoolChoice,
    PoolOption,
    Totals,
    WorkloadPlan,
)


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


def _commitment(price: NodePrice, committed: int, monthly: float) -> CommitmentPlan | None:
    if price.commitment == "none":
        return None
    return CommitmentPlan(
        term=price.commitment,
        discount=price.discount,
        committed_nodes=committed,
        machine_usd_month=round(price.machine_usd_month * (1 - price.discount), 2),
        on_demand_node_usd_month=round(price.on_demand_usd_month, 2),
        saves_usd_month=round(committed * price.on_demand_usd_month - monthly, 2),
        binds=commitment_note(price.commitment),
    )


def build_plan(config: StackConfig, stack: str, now: datetime | None = None, strict: bool = True) -> Plan:
    """Size the workloads, plan the nodes and price them: the configured pool, every line of its bill, the cheapest
    pool for the same pods, the baseline profile on its own cheapest pool, and the scheduled windows as of `now`.

    A window the pool cannot hold fails the plan (`strict`); `python -m sizing schedule` plans without failing, to
    show every window first.
    """
    pool = config.nodes
    workloads, charts, demand = _demand(config)
    floor = boot_disk_floor(config, [*workloads.values(), *charts.values()])
    if pool.disk_size_gb < floor.size_gb:
        raise ConfigError(
            config.key("nodes.disk_size_gb"),
            f"{pool.disk_size_gb} GB is under this stack's boot disk floor, {floor.size_gb} GB: {floor.detail}",
        )
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
    price = node_price(config, pool.machine_type, pool.spot)
    per_node = price.committed_usd_month
    monthly = round(price.pool_usd_month(nodes.min, nodes.min), 2)
    lines = bill(config, pool.machine_type, pool.spot, nodes.min)
    observed = config.cost.observed_baseline
    cost = CostPlan(
        node_usd_month=round(per_node, 2),
        monthly_usd=monthly,
        max_monthly_usd=round(price.pool_usd_month(nodes.max, nodes.min), 2),
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
        commitment=_commitment(price, nodes.min, monthly),
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
    from sizing.plan.schedule import plan_schedule

    schedule = plan_schedule(config, plan, now)
    assert schedule is not None
    error = schedule.error()
    if strict and error is not None:
        raise error
    return plan.model_copy(update={"schedule": schedule})
