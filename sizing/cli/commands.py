"""`python -m sizing`: the plan of a stack, the memory of one experiment, the slots left for more.

Bad input ends with exit code 2 and one line `error: <key>: <problem>`; nothing here imports pulumi.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from sizing.cli.compare import compare, render_comparison
from sizing.cli.tables import table
from sizing.config.capacity import Formula, UserMix
from sizing.config.loader import load_stack, stack_file
from sizing.config.stack import StackConfig
from sizing.core.capacity import slots
from sizing.core.durations import duration_seconds
from sizing.core.errors import ConfigError
from sizing.core.model import PROFILES
from sizing.core.quantity import format_mib, format_millicores
from sizing.plan.build import build_plan, demand
from sizing.plan.pools import recommend
from sizing.plan.types import APP, Plan, PoolChoice, Recommendation, WorkloadPlan

if TYPE_CHECKING:
    from sizing.observe.status import Status
    from sizing.plan.types import MaintenancePlan

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {message}\n")


def _count(flag: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
        return value

    return parse


def _duration(flag: str):
    def parse(text: str) -> float:
        match = re.fullmatch(r"([1-9][0-9]*)([mhdw])", text)
        if match is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90m, 12h, 14d or 2w")
        return duration_seconds(text)

    return parse


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 instant like 2026-12-01T14:30:00+01:00"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (e.g. 2026-12-01T14:30:00+01:00 or …Z)")
    if not 1971 <= value.year <= 2999:
        raise argparse.ArgumentTypeError(f"{text!r} is outside the years 1971-2999 a schedule is planned for")
    return value


def _default_project_dir() -> Path:
    cwd = Path.cwd()
    return cwd if (cwd / "Pulumi.yaml").is_file() else Path(__file__).resolve().parent.parent


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m sizing", description=__doc__.splitlines()[0])
    parser.add_argument("--project-dir", type=Path, default=None, help="folder of Pulumi.yaml (default: ., or repo)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    plan = sub.add_parser("plan", help="every workload's sizes, the node pool and the cost of a stack")
    plan.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml) or a stack file path")
    plan.add_argument("--profile", help=f"override the stack's profile ({', '.join(PROFILES)})")
    plan.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    plan.add_argument(
        "--compare",
        metavar="PROFILE|STACK",
        help="show before → after against a profile of the same stack (a rollback) or another stack/stack file",
    )

    def users(p: argparse.ArgumentParser) -> None:
        p.add_argument("--video", type=_count("--video"), default=0, help="participants with video")
        p.add_argument("--no-video", type=_count("--no-video"), default=0, help="participants without video")
        p.add_argument("--experimenters", type=_count("--experimenters"), default=0, help="experimenters")
        p.add_argument("--json", action="store_true", help="JSON output")

    recommend = sub.add_parser(
        "recommend", help="every machine type of the catalogue for the stack's pods, the cheapest feasible first"
    )
    recommend.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml) or a stack file path")
    recommend.add_argument("--profile", help=f"override the stack's profile ({', '.join(PROFILES)})")
    recommend.add_argument("--json", action="store_true", help="one JSON object instead of the table")

    fit = sub.add_parser("fit", help="fit the capacity formula to measured working sets and users (Prometheus)")
    fit.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml) or a stack file path")
    source = fit.add_mutually_exclusive_group(required=True)
    source.add_argument("--prometheus", metavar="URL", help="Prometheus' HTTP API (credentials: see README)")
    source.add_argument("--from", dest="from_file", type=Path, metavar="FILE", help="an export of `fit --save`")
    fit.add_argument("--since", type=_duration("--since"), default="14d", help="how far back to read (14d)")
    fit.add_argument("--save", type=Path, metavar="FILE", help="with --prometheus: also write the data's export")
    fit.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    fit.add_argument("--write", action="store_true", help="set the fitted coefficients in the stack file")

    live = sub.add_parser("status", help="live pods, slots, OOM kills and firing alerts (exit 1 near the limit)")
    live.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml) or a stack file path")
    live.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus' HTTP API")
    live.add_argument("--json", action="store_true", help="one JSON object instead of tables")

    planned = sub.add_parser("schedule", help="planned windows: replicas, nodes, next start, fit; --at: in force then")
    planned.add_argument("--stack", required=True, help="stack name (Pulumi.<stack>.yaml) or a stack file path")
    planned.add_argument("--at", type=_instant, help="an instant (ISO-8601 with offset): what is in force then")
    planned.add_argument("--json", action="store_true", help="one JSON object instead of tables")

    project = sub.add_parser("project", help="predicted memory of one backend pod serving one experiment")
    project.add_argument("--stack", help="use this stack's formula (default: the document's coefficients)")
    users(project)

    slots = sub.add_parser("slots", help="experiments of a shape the backend pods can still admit at typical load")
    slots.add_argument("--stack", required=True, help="stack name or stack file path")
    users(slots)
    return parser


def _mix(args: argparse.Namespace) -> UserMix:
    return UserMix(participant_video=args.video, participant_no_video=args.no_video, experimenter=args.experimenters)


def _replicas(w: WorkloadPlan) -> str:
    return f"{w.replicas} (1/node)" if w.per_node else str(w.replicas)


def _workload_rows(plan: Plan) -> list[list[str]]:
    """A row per workload, each sidecar in a row beneath it (`+ name`); the charts' pods after the app's."""
    rows = []
    for w in plan.pool_workloads.values():
        source = "" if w.source == APP else w.source
        rows.append(
            [w.name, source, _replicas(w), w.cpu_request, w.memory_request, w.memory_limit, w.runtime.describe()]
        )
        rows += [
            [f"  + {c.name}", "", _replicas(w), c.cpu_request, c.memory_request, c.memory_limit, "-"]
            for c in w.sidecars
        ]
    return rows


def render_plan(plan: Plan) -> str:
    """The plan as tables for people."""
    rows = _workload_rows(plan)
    t, n = plan.totals, plan.nodes
    rows.append(
        [
            "total",
            "",
            str(t.pods),
            format_millicores(t.cpu_request_m),
            f"{t.memory_request_mib}Mi",
            f"{t.memory_limit_mib}Mi",
            "",
        ]
    )
    out = [
        f"stack {plan.stack} · profile {plan.profile}",
        "",
        table(
            ["workload", "installed by", "replicas", "cpu", "memory request", "memory limit", "runtime setting"], rows
        ),
    ]
    for w in plan.workloads.values():
        if w.derivation is not None:
            out += ["", f"{w.name} from the capacity formula (memory = base + Σ MiB per role × users):"]
            out += [f"  {line}" for line in w.explain().splitlines()]
    split = {w.name: w.runtime.node_memory for w in plan.workloads.values() if w.runtime.node_memory is not None}
    if split:
        out += ["", "Node.js limits (old space + young generation + native memory beside the heap):"]
        out += [f"  {name}: {s.explain()}" for name, s in split.items()]
    sums = " + ".join(f"{w.replicas}×{w.pod_memory_request_mib}" for w in plan.pool_workloads.values())
    out += ["", f"memory requests (per pod, sidecars included): {sums} = {t.memory_request_mib} MiB"]
    if plan.chart_workloads:
        out += [
            "  per-node pods (DaemonSets) run on every node: their requests come off each node before the rest "
            "is placed"
        ]
    bounds = ", ".join(f"{k} {v}" for k, v in n.bounds.items())
    per_node = (
        f" and the per-node pods ({format_mib(n.per_node_memory_mib)} / {format_millicores(n.per_node_cpu_m)})"
        if n.per_node_memory_mib
        else ""
    )
    out += [
        "",
        f"nodes: {n.machine_type}{' (spot)' if n.spot else ''}, {format_mib(n.allocatable_memory_mib)} / "
        f"{format_millicores(n.allocatable_cpu_m)} allocatable, {format_mib(n.free_memory_mib)} / "
        f"{format_millicores(n.free_cpu_m)} left for pods after the system overhead{per_node}",
        f"  lower bound {n.lower_bound} (max of {bounds}); binding: {n.binding}",
        f"  autoscaling min {n.min} (typical load), max {n.max} (peak load needs {n.peak})"
        + ("" if n.min_proven else "; a smaller min was not ruled out: the placement search ran out of budget"),
        f"  survives the loss of a node at min: {'yes' if n.survives_node_loss else 'no'}",
    ]
    out += [f"  node {i + 1}: {', '.join(pods) or '(empty)'}" for i, pods in enumerate(n.placement)]
    out += ["", *_cost_lines(plan)]
    if plan.schedule is not None:
        out += ["", *_schedule_lines(plan)]
    if plan.maintenance is not None:
        out += ["", *_maintenance_lines(plan.maintenance)]
    if plan.warnings:
        out += ["", "WARNING: the stack would fail a person:"]
        out += [f"  ! {warning}" for warning in plan.warnings]
    return "\n".join(out)


def _pool(choice: PoolChoice) -> str:
    return f"{choice.min} × {choice.machine_type}{' (spot)' if choice.spot else ''}"


def _schedule_lines(plan: Plan) -> list[str]:
    s = plan.schedule
    assert s is not None
    windows = ", ".join(f"{w.name} ({w.when}: {w.backend_replicas} {s.workload}, {w.nodes} nodes)" for w in s.windows)
    return [
        f"schedule: {windows}",
        f"  {len(s.actions)} scaling jobs; ${s.monthly_usd:.2f}/month with the windows' "
        f"{s.extra_node_hours_month:.1f} extra node-hours (python -m sizing schedule --stack {plan.stack})",
    ]


def _maintenance_lines(m: MaintenancePlan) -> list[str]:
    if m.window is None:
        return ["maintenance: the cluster's owner sets it (cluster.create: false)"]
    how = "cluster.maintenance" if m.window.source == "config" else "the default, clear of every weekly window"
    out = [
        f"maintenance: GKE may upgrade {m.window.describe()} ({how}); at least {m.min_available_hours_32d:g} h in "
        "any 32 days (GKE needs 48)"
    ]
    out += [f"  no upgrades (exclusion {e.name}): {e.start_time} → {e.end_time}" for e in m.exclusions]
    if m.uncovered:
        out.append(f"  no exclusion yet: {', '.join(m.uncovered)} (see the warning)")
    return out


def _cost_lines(plan: Plan) -> list[str]:
    """The bill line by line, the cheapest pool for the same pods, and the savings."""
    n, c = plan.nodes, plan.cost
    out = [f"cost: ${c.total_monthly_usd:.2f}/month in all"]
    out += [
        table(
            ["line", "USD/month", "what"],
            [[name, f"{c.lines[name]:.2f}", c.line_details[name]] for name in c.lines],
        )
    ]
    out += [
        f"  node pool: {n.min} × ${c.node_usd_month:.2f} = ${c.monthly_usd:.2f}/month (at max ${c.max_monthly_usd:.2f})"
    ]
    if c.overpay_usd_month > 0:
        out.append(
            f"  NOT the cheapest safe pool: {_pool(c.best)} holds the same pods for ${c.best_monthly_usd:.2f}/month, "
            f"${c.overpay_usd_month:.2f} less (python -m sizing recommend --stack {plan.stack})"
        )
    else:
        out.append("  the cheapest safe pool of the catalogue (python -m sizing recommend)")
    out.append(
        f"  baseline profile on its own cheapest pool ({_pool(c.baseline)}) ${c.baseline_monthly_usd:.2f}/month, "
        f"savings {c.savings_pct:g} %"
    )
    if c.observed_baseline_monthly_usd is not None:
        out.append(
            f"  observed bill before ({c.observed_pool}) ${c.observed_baseline_monthly_usd:.2f}/month, "
            f"savings {c.observed_savings_pct:g} %"
        )
    return out


def render_recommendation(result: Recommendation) -> str:
    """Every option for people: the cheapest feasible first, the infeasible ones with their reason."""
    rows = []
    for o in result.options:
        price = "-" if o.monthly_usd is None else f"{o.monthly_usd:.2f}"
        at_max = "-" if o.max_monthly_usd is None else f"{o.max_monthly_usd:.2f}"
        mark = "*" if (o.machine_type, o.spot) == (result.best.machine_type, result.best.spot) else ""
        current = "current" if (o.machine_type, o.spot) == (result.current.machine_type, result.current.spot) else ""
        rows.append(
            [
                f"{mark}{o.machine_type}",
                "spot" if o.spot else "on-demand",
                "-" if o.min is None else f"{o.min}{'' if o.min_proven else '?'}",
                "-" if o.max is None else str(o.max),
                price,
                at_max,
                o.binding or "-",
                "yes" if o.feasible else "no",
                current,
                o.reason or "",
            ]
        )
    out = [
        f"stack {result.stack} · profile {result.profile} · every machine type of the catalogue, cheapest at min "
        "first (* best)",
        "",
        table(
            ["machine type", "pricing", "min", "max", "USD/month", "at max", "binding", "feasible", "stack", "reason"],
            rows,
        ),
        "",
    ]
    if any(not o.min_proven for o in result.options):
        out.append(
            "? the placement search ran out of budget below this minimum: it holds, a smaller one was not ruled out"
        )
    best, current = result.best, result.current
    if result.overpay_usd_month is None:
        out.append(f"current {current.machine_type} cannot hold the stack: {current.reason}")
    elif result.overpay_usd_month > 0:
        out.append(
            f"current {current.min} × {current.machine_type} ${current.monthly_usd:.2f}/month overpays "
            f"${result.overpay_usd_month:.2f}: set nodes.machine_type: {best.machine_type}"
            + (" and nodes.spot: true" if best.spot and not current.spot else "")
        )
    else:
        out.append(f"current {current.min} × {current.machine_type} ${current.monthly_usd:.2f}/month is the cheapest")
    return "\n".join(out)


def _formula(args: argparse.Namespace, project_dir: Path) -> tuple[Formula, StackConfig | None]:
    if args.stack is None:
        return Formula(), None
    config = load_stack(args.stack, project_dir)
    return config.capacity.formula, config


def _slots(config: StackConfig, mix: UserMix, stack: str) -> dict[str, Any]:
    """Experiments of shape `mix` that fit in each formula-sized workload's pods beside their typical load, under
    the near-limit threshold (`sizing.core.capacity.slots`, the definition the slots record uses)."""
    formula, capacity = config.capacity.formula, config.capacity
    shape_mib = formula.users_mib(mix)
    if shape_mib <= 0:
        raise ConfigError("--video/--no-video/--experimenters", "the experiment has no users that need memory")
    plan = build_plan(config, stack)
    sized = [w for w in plan.workloads.values() if config.workloads[w.name].sized_by == "formula"]
    if not sized:
        raise ConfigError(config.key("workloads"), "no workload has sized_by: formula, so none serves experiments")
    typical_mib = capacity.memory_mib("typical")
    threshold = config.monitoring.alerts.memory_near_limit.threshold
    workloads = {
        w.name: {
            "replicas": w.replicas,
            "memory_limit_mib": w.memory_limit_mib,
            "per_pod": slots(w.memory_limit_mib, typical_mib, shape_mib, threshold),
        }
        for w in sized
    }
    for entry in workloads.values():
        entry["total"] = entry["per_pod"] * entry["replicas"]
    return {
        "stack": stack,
        "profile": config.profile,
        "shape_mib": shape_mib,
        "typical_mib": typical_mib,
        "near_limit_threshold": threshold,
        "workloads": workloads,
        "total": sum(e["total"] for e in workloads.values()),
    }


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    project_dir = args.project_dir or _default_project_dir()
    if args.command == "plan":
        plan = build_plan(load_stack(args.stack, project_dir, args.profile), args.stack)
        if args.compare is None:
            print(json.dumps(plan.to_json(), indent=2) if args.json else render_plan(plan))
            return 0
        if args.compare in PROFILES:
            target = build_plan(load_stack(args.stack, project_dir, args.compare), args.stack)
        else:
            target = build_plan(load_stack(args.compare, project_dir, args.profile), args.compare)
        result = compare(plan, target)
        print(json.dumps(result, indent=2) if args.json else render_comparison(result))
    elif args.command == "recommend":
        config = load_stack(args.stack, project_dir, args.profile)
        result = recommend(config, args.stack, demand(config))
        print(json.dumps(result.to_json(), indent=2) if args.json else render_recommendation(result))
    elif args.command == "fit":
        return _fit(args, project_dir)
    elif args.command == "status":
        config = load_stack(args.stack, project_dir)
        # Imported here, with fit's: `plan` and the other commands never pay for the calibration modules.
        from sizing.observe.prometheus import Prometheus
        from sizing.observe.status import status

        # An incident tool: a window next month that does not fit must not keep it from answering.
        plan = build_plan(config, args.stack, strict=False)
        result = status(Prometheus(args.prometheus), config, plan, _stack_name(args.stack))
        print(json.dumps(result.to_json(), indent=2) if args.json else render_status(result))
        return EXIT_NEAR_LIMIT if result.near_limit else 0
    elif args.command == "schedule":
        return _schedule(args, project_dir)
    elif args.command == "project":
        formula, _ = _formula(args, project_dir)
        mix = _mix(args)
        if args.json:
            print(json.dumps({"memory_mib": formula.memory_mib(mix)}))
        else:
            print(formula.explain(mix))
    else:
        result = _slots(load_stack(args.stack, project_dir), _mix(args), args.stack)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(
                f"one more experiment needs {result['shape_mib']} MiB; typical load uses {result['typical_mib']} MiB; "
                f"experiments fit up to {result['near_limit_threshold']:.0%} of the limit (the near-limit threshold)"
            )
            for name, e in result["workloads"].items():
                print(
                    f"{name}: {e['per_pod']} per pod × {e['replicas']} pods = {e['total']} "
                    f"(limit {e['memory_limit_mib']} MiB)"
                )
            print(f"total: {result['total']}")
    return 0


def _schedule(args: argparse.Namespace, project_dir: Path) -> int:
    from sizing.plan.schedule import in_force, schedule_nodes

    config = load_stack(args.stack, project_dir)
    # With --at the plan is as of that instant: its next starts, and the actions still to come then.
    plan = build_plan(config, args.stack, now=args.at, strict=False)
    schedule = plan.schedule
    data: dict[str, Any] = {"stack": args.stack}
    if schedule is None:
        data |= {"windows": [], "actions": [], "unscheduled_monthly_usd": plan.cost.monthly_usd}
        data |= {"extra_node_hours_month": 0.0, "monthly_usd": plan.cost.monthly_usd}
        base = {w.name: w.replicas for w in plan.workloads.values() if w.derivation is not None}
        replicas = next(iter(base.values()), 0)
        active: list[str] = []
    else:
        data |= schedule.to_json()
        if args.at is not None:
            active, replicas = in_force(schedule, config.capacity.schedule, args.at)
    if args.at is not None:
        nodes = plan.nodes.min if schedule is None else schedule_nodes(config, plan, replicas)
        data |= {"at": args.at.isoformat(), "active_windows": active, "backend_replicas": replicas, "nodes": nodes}
    # A window that does not fit is an answer here (fits: false, with the reason `plan` and `pulumi preview` refuse
    # the stack with), not an error of this command.
    print(json.dumps(data, indent=2) if args.json else render_schedule(data))
    return 0


def _replicas_text(action: dict[str, Any]) -> str:
    exceptions = ", ".join(f"{n} on {day}" for day, n in action["replicas_on"].items())
    return f"{action['replicas']}" + (f" ({exceptions})" if exceptions else "")


def render_schedule(data: dict[str, Any]) -> str:
    """The windows, the scaling jobs and the cost for people; with --at, what is in force then."""
    windows = data["windows"]
    rows = [
        [
            w["name"],
            w["when"],
            ", ".join(f"{n} {shape}" for shape, n in w["experiments"].items()),
            str(w["memory_mib"]),
            str(w["backend_replicas"]),
            str(w["nodes"]),
            w["next_start"] or "passed",
            "yes" if w["fits"] else "NO",
        ]
        for w in windows
    ]
    out = [f"stack {data['stack']}"]
    if not windows:
        out.append("no scheduled windows (capacity.schedule)")
    else:
        out += [
            "",
            table(["window", "when", "experiments", "memory MiB", "backend", "nodes", "next start", "fits"], rows),
            "",
            table(
                ["job", "cron", "time zone", "year", "replicas"],
                [
                    [a["name"], a["schedule"], a["time_zone"], str(a["year"] or "every"), _replicas_text(a)]
                    for a in data["actions"]
                ]
                or [["-", "-", "-", "-", "-"]],
            ),
            "",
            f"cost: ${data['monthly_usd']:.2f}/month with the windows' {data['extra_node_hours_month']:.1f} extra "
            f"node-hours; ${data['unscheduled_monthly_usd']:.2f} without",
        ]
        for w in windows:
            survives = "survives" if w["survives_node_loss"] else "does not survive"
            out += [
                "",
                f"{w['name']}: {w['backend_replicas']} backend replicas on {w['nodes']} nodes ({survives} "
                "the loss of a node)",
            ]
            out += [f"  node {i + 1}: {', '.join(pods)}" for i, pods in enumerate(w["placement"])]
    refused = [w for w in windows if not w["fits"]]
    if refused:
        out += ["", *(f"does not fit: {w['reason']}" for w in refused)]
    if "at" in data:
        active = ", ".join(data["active_windows"]) or "none"
        out.append("")
        out.append(
            f"at {data['at']}: active windows {active}; backend replicas {data['backend_replicas']}, "
            f"nodes {data['nodes']}"
        )
    return "\n".join(out)


EXIT_NEAR_LIMIT = 1
# The step `fit` reads at, at least: the scrape interval of the workloads (monitoring/names.py).
FIT_STEP_S = 30.0


def _stack_name(stack: str) -> str:
    """The Pulumi stack's name (what alerts carry as `stack`), for a name or a `Pulumi.<name>.yaml` path."""
    name = Path(stack).name
    match = re.fullmatch(r"Pulumi\.(.+)\.ya?ml", name)
    return match.group(1) if match else stack


def _fit(args: argparse.Namespace, project_dir: Path) -> int:
    from sizing.config.writer import set_formula
    from sizing.observe.calibration import Samples, collect, fit, fitted_formula, load_export, save_export, with_formula
    from sizing.observe.prometheus import Prometheus

    config = load_stack(args.stack, project_dir)
    if args.save and not args.prometheus:
        raise ConfigError("--save", "needs --prometheus (an export is written from the data read there)")
    if args.prometheus:
        export = collect(Prometheus(args.prometheus), config, args.since, FIT_STEP_S)
        if args.save:
            save_export(export, args.save)
    else:
        export = load_export(args.from_file, config)
    result = fit(Samples(export), config)
    fitted = with_formula(config, fitted_formula(result, config.capacity.formula))
    before = build_plan(config, args.stack, strict=False)
    try:
        after = build_plan(fitted, args.stack)
    except ConfigError as err:
        after, effect = None, {"error": str(err)}
    else:
        effect = _effect(after)
    data = {
        "stack": args.stack,
        "coefficients": result.coefficients.model_dump(),
        "intervals": result.intervals.model_dump(mode="json"),
        "r2": result.r2,
        "samples": result.samples,
        "outliers": result.outliers,
        "pods": result.pods,
        "days": result.days,
        "residual_mib": result.residual_mib.model_dump(),
        "current": config.capacity.formula.model_dump(),
        "fitted": result.coefficients.rounded(),
        "effect": effect,
        "current_effect": _effect(before),
    }
    if args.write and after is None:
        # A stack file whose plan fails would stop the next `pulumi preview`: leave it as it is.
        raise ConfigError(
            config.key("capacity.formula"), f"not written: the fitted formula fails the plan: {effect['error']}"
        )
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(render_fit(data))
    if args.write:
        path = stack_file(args.stack, project_dir)
        set_formula(path, config.config_namespace, result.coefficients.rounded())
        # The plan of the file as written (not of the model in memory): what `pulumi preview` will read.
        written = build_plan(load_stack(args.stack, project_dir), args.stack)
        if not args.json:
            print(f"\nwrote capacity.formula to {path}; the plan before → after:\n")
            print(render_comparison(compare(before, written)))
    return 0


def _effect(plan: Plan) -> dict[str, Any]:
    """The sizes of the formula-sized workloads (one formula: the same for each) and the node bounds."""
    sized = [w for w in plan.workloads.values() if w.derivation is not None]
    first = sized[0] if sized else None
    return {
        "memory_request": first.memory_request if first else None,
        "memory_limit": first.memory_limit if first else None,
        "workloads": {w.name: {"memory_request": w.memory_request, "memory_limit": w.memory_limit} for w in sized},
        "nodes": {"min": plan.nodes.min, "max": plan.nodes.max},
    }


def render_fit(data: dict[str, Any]) -> str:
    """The fit for people: coefficients against the config's, the fit's quality, and what it would change."""
    c, i, current = data["coefficients"], data["intervals"], data["current"]
    rows = [
        ["base_mib", str(current["base_mib"]), f"{c['base_mib']:.2f}", _interval(i["base_mib"])],
        *(
            [
                role,
                str(current["per_role_mib"][role]),
                f"{c['per_role_mib'][role]:.2f}",
                _interval(i["per_role_mib"][role]),
            ]
            for role in c["per_role_mib"]
        ),
    ]
    r = data["residual_mib"]
    out = [
        f"stack {data['stack']} · {data['samples']} samples of {data['pods']} pods over {data['days']:.1f} days "
        f"({data['outliers']} outliers left out of the intervals)",
        "",
        table(["coefficient", "config", "fitted", "95 % interval"], rows),
        "",
        f"R² {data['r2']:.4f} · residuals p50 {r['p50']:.1f} MiB, p95 {r['p95']:.1f} MiB, max {r['max']:.1f} MiB",
    ]
    fitted = data["fitted"]
    out.append(
        "in whole MiB: base "
        + str(fitted["base_mib"])
        + ", "
        + ", ".join(f"{role} {value}" for role, value in fitted["per_role_mib"].items())
    )
    effect, now = data["effect"], data["current_effect"]
    if "error" in effect:
        out.append(f"effect: the fitted formula's sizes fail the plan: {effect['error']}")
    else:
        out.append(
            f"effect: request {now['memory_request']} → {effect['memory_request']}, limit {now['memory_limit']} → "
            f"{effect['memory_limit']}; nodes min {now['nodes']['min']} → {effect['nodes']['min']}, max "
            f"{now['nodes']['max']} → {effect['nodes']['max']}"
        )
    return "\n".join(out)


def _interval(pair: list[float]) -> str:
    return f"[{pair[0]:.2f}, {pair[1]:.2f}]"


def render_status(result: Status) -> str:
    """The live state for people."""
    rows = [
        [
            p.pod,
            f"{p.working_set_mib:.1f}",
            str(p.predicted_mib),
            f"{p.limit_mib:.0f}" + ("" if p.limit_source == "kube-state-metrics" else " (plan)"),
            f"{p.headroom_mib:.1f}",
            ", ".join(f"{role} {n}" for role, n in p.users.items() if n) or "-",
            "NEAR LIMIT" if p.near_limit else "",
        ]
        for p in result.pods
    ]
    out = [
        f"stack {result.stack} · namespace {result.namespace} · near-limit threshold {result.threshold:g}",
        "",
        table(["pod", "working set MiB", "predicted MiB", "limit MiB", "headroom MiB", "users", ""], rows)
        if rows
        else "no formula-sized pod reports a working set",
        "",
        "slots now: " + (", ".join(f"{shape} {n}" for shape, n in result.slots.items()) or "-"),
        f"OOM kills in the last 24 h: {result.oom_kills_24h}",
        "firing: "
        + (", ".join(f"{a['alertname']} ({a['severity']})" for a in result.firing_alerts) or "no HyperStudy alert"),
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError, ArithmeticError) as err:
        # Input no check above foresaw: still one line, never a traceback.
        print(f"error: unexpected input ({type(err).__name__}): {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # `python -m sizing plan | head`: the reader left; that is not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
