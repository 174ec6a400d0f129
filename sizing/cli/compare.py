"""Two plans side by side: the reviewer's view of a rollback (profile switch) or of any config change.

`python -m sizing plan --stack prod --compare baseline` compares prod's profile with its baseline;
`--compare <stack or stack file>` compares two configs. "before" is the stack as given, "after" the target.
"""

from __future__ import annotations

from typing import Any

from sizing.cli.tables import table
from sizing.core.quantity import format_mib
from sizing.plan.types import Plan, WorkloadPlan

_WORKLOAD_FIELDS = ("replicas", "memory_request", "memory_limit", "cpu_request", "runtime")


def _workload_values(w: WorkloadPlan | None) -> dict[str, Any]:
    if w is None:
        return dict.fromkeys(_WORKLOAD_FIELDS)
    return {
        "replicas": w.replicas,
        "memory_request": w.memory_request,
        "memory_limit": w.memory_limit,
        "cpu_request": w.cpu_request,
        "runtime": w.runtime.describe(),
    }


def _pair(before: Any, after: Any) -> dict[str, Any]:
    return {"before": before, "after": after, "changed": before != after}


def compare(before: Plan, after: Plan) -> dict[str, Any]:
    """Per workload, totals, node pool and cost of two plans, each value as {before, after, changed}."""
    names = list(before.pool_workloads) + [n for n in after.pool_workloads if n not in before.pool_workloads]
    workloads = {}
    for name in names:
        b, a = _workload_values(before.pool_workloads.get(name)), _workload_values(after.pool_workloads.get(name))
        workloads[name] = {field: _pair(b[field], a[field]) for field in _WORKLOAD_FIELDS}
    totals = {
        field: _pair(getattr(before.totals, field), getattr(after.totals, field))
        for field in ("memory_request_mib", "memory_limit_mib", "cpu_request_m", "pods")
    }
    nodes = {
        field: _pair(getattr(before.nodes, field), getattr(after.nodes, field))
        for field in ("machine_type", "spot", "min", "max", "lower_bound", "binding", "survives_node_loss")
    }
    cost = {
        field: _pair(getattr(before.cost, field), getattr(after.cost, field))
        for field in (
            "monthly_usd",
            "max_monthly_usd",
            "total_monthly_usd",
            "best_monthly_usd",
            "overpay_usd_month",
            "observed_savings_pct",
        )
    }
    return {
        "before": {"stack": before.stack, "profile": before.profile},
        "after": {"stack": after.stack, "profile": after.profile},
        "workloads": workloads,
        "totals": totals,
        "nodes": nodes,
        "cost": cost,
        "changed": any(v["changed"] for group in (totals, nodes, cost) for v in group.values())
        or any(v["changed"] for fields in workloads.values() for v in fields.values()),
    }


def _cell(value: dict[str, Any], fmt=str) -> str:
    b, a = value["before"], value["after"]
    shown_b = "-" if b is None else fmt(b)
    shown_a = "-" if a is None else fmt(a)
    return f"{shown_b} → {shown_a}" if value["changed"] else shown_b


def _usd(value: float) -> str:
    return f"${value:.2f}"


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def render_comparison(result: dict[str, Any]) -> str:
    """The comparison as a table for people: unchanged values once, changed ones as `before → after`."""
    b, a = result["before"], result["after"]
    rows = []
    for name, fields in result["workloads"].items():
        marker = "*" if any(v["changed"] for v in fields.values()) else " "
        rows.append([f"{marker} {name}", *(_cell(fields[f]) for f in _WORKLOAD_FIELDS)])
    t, n, c = result["totals"], result["nodes"], result["cost"]
    out = [
        f"before: stack {b['stack']} · profile {b['profile']}",
        f"after:  stack {a['stack']} · profile {a['profile']}",
        "",
        table(
            ["workload", "replicas", "memory request", "memory limit", "cpu", "runtime setting"],
            rows,
            drop=["runtime setting"],
        ),
        "",
        f"memory requests: {_cell(t['memory_request_mib'], format_mib)}   "
        f"limits: {_cell(t['memory_limit_mib'], format_mib)}   pods: {_cell(t['pods'])}",
        f"nodes: {_cell(n['machine_type'])}{' (spot)' if n['spot']['after'] else ''}, min {_cell(n['min'])}, "
        f"max {_cell(n['max'])}, lower bound {_cell(n['lower_bound'])} ({_cell(n['binding'])}), "
        f"survives a node loss: {_cell(n['survives_node_loss'], _yes)}",
        f"cost: {_cell(c['monthly_usd'], _usd)}/month (at max {_cell(c['max_monthly_usd'], _usd)}); "
        f"the whole bill {_cell(c['total_monthly_usd'], _usd)}/month",
        f"  cheapest safe pool {_cell(c['best_monthly_usd'], _usd)}/month, "
        f"overpay {_cell(c['overpay_usd_month'], _usd)}; "
        f"savings against the observed bill {_cell(c['observed_savings_pct'], lambda v: f'{v:g} %')}",
        "",
        "changes marked *" if result["changed"] else "no change",
    ]
    return "\n".join(out)
