"""`python -m sizing`: the plan of a stack, its cheapest pool, its planned windows, the memory of one experiment and
the slots left for more; the live state and the calibration from Prometheus; the app's metrics against the contract.

Every command prints tables for people, or its data with `-o json|yaml`. Bad input ends with exit code 2 and one
line `error: <key>: <problem>`; nothing here imports pulumi.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sizing.cli import schedule, usage
from sizing.cli.compare import compare, render_comparison
from sizing.cli.output import OUTPUTS, dump
from sizing.cli.tables import table, terminal_width
from sizing.config.capacity import Formula, UserMix
from sizing.config.loader import is_path, known_stacks, load_stack, stack_file
from sizing.config.stack import StackConfig
from sizing.core.capacity import slots
from sizing.core.durations import duration_seconds
from sizing.core.errors import ConfigError, did_you_mean
from sizing.core.model import PROFILES
from sizing.core.quantity import format_mib, format_millicores
from sizing.observe.rightsize import RULES as RIGHTSIZE_RULES
from sizing.observe.verdict import RULES
from sizing.plan.build import build_plan, demand
from sizing.plan.pools import recommend
from sizing.plan.types import APP, BillSearch, Plan, PoolChoice, PoolOption, Recommendation, WorkloadPlan

if TYPE_CHECKING:
    from sizing.observe.exposition import ContractReport
    from sizing.observe.status import Status
    from sizing.plan.types import MaintenancePlan

EXIT_BAD_INPUT = usage.EXIT_BAD_INPUT
EXIT_NEAR_LIMIT = 1
EXIT_CONTRACT_NOT_MET = 1
# `status` with no formula-sized pod reporting: monitoring is blind, which no script gating on it may take as fine.
EXIT_BLIND = 3


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
    """The working directory when it holds Pulumi.yaml, else this repository (sizing/cli/ is two levels down)."""
    cwd = Path.cwd()
    return cwd if (cwd / "Pulumi.yaml").is_file() else Path(__file__).resolve().parents[2]


_STACK = "stack name (Pulumi.<stack>.yaml of the project) or a stack file's path"
_BAD_INPUT = "bad input: one line `error: <key>: <problem>` (the usage first for a wrong command line)"


def _epilog(examples: list[str], codes: list[tuple[int, str]], *notes: str) -> str:
    """The help's end: examples (a `\n` in one continues it on the next line), exit codes (a `\n` in a text
    continues it under the text), then notes, each as written."""
    lines = ["examples:", *(f"  {e}".replace("\n", " \\\n      ") for e in examples), "", "exit codes:"]
    lines += [f"  {code}  {text}".replace("\n", "\n     ") for code, text in codes]
    for note in notes:
        lines += ["", note]
    return "\n".join(lines)


def _output(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "-o", "--output", choices=OUTPUTS, default=None, help="table (for people, the default), json or yaml"
    )
    group.add_argument("--json", dest="output", action="store_const", const="json", help="the same as -o json")


def _history_source(p: argparse.ArgumentParser, saver: str, required: bool = True) -> None:
    """`--prometheus URL [--since D] [--save FILE] | --from FILE`."""
    source = p.add_mutually_exclusive_group(required=required)
    source.add_argument("--prometheus", metavar="URL", help="Prometheus' HTTP API (credentials: see README)")
    source.add_argument("--from", dest="from_file", type=Path, metavar="FILE", help=f"an export of `{saver}`")
    p.add_argument(
        "--since", type=_duration("--since"), default=None, help="with --prometheus: how far back to read (14d)"
    )
    p.add_argument("--save", type=Path, metavar="FILE", help="with --prometheus: also write the data's export")


def _parser() -> usage.Parser:
    parser = usage.Parser(
        prog="python -m sizing",
        description=__doc__.split("\n\n")[0],
        epilog=_epilog(
            [
                "python -m sizing plan --stack prod",
                "python -m sizing plan --stack prod --compare baseline",
                "python -m sizing schedule --stack staging -o json",
                "python -m sizing contract --url http://localhost:3000/metrics",
                "python -m sizing COMMAND --help",
            ],
            [
                (0, "done: the plan holds, every window fits, the contract is met"),
                (
                    1,
                    "a finding: a pod near its limit (status), a window that does not fit (schedule),\nthe contract "
                    "not met (contract)",
                ),
                (2, _BAD_INPUT),
                (3, "status: no formula-sized pod reports a working set (monitoring is blind)"),
            ],
        ),
    )
    parser.add_argument(
        "--project-dir", type=Path, default=None, metavar="DIR", help="folder of Pulumi.yaml (default: ., or the repo)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=usage.Parser)

    def command(name: str, summary: str, examples: list[str], codes: list[tuple[int, str]], *notes: str):
        return sub.add_parser(name, help=summary, description=summary, epilog=_epilog(examples, codes, *notes))

    planned = [(0, "the plan"), (2, _BAD_INPUT)]
    plan = command(
        "plan",
        "every workload's sizes, the node pool and the cost of a stack",
        [
            "python -m sizing plan --stack prod",
            "python -m sizing plan --stack prod --compare baseline      # a rollback: before → after",
            "python -m sizing plan --stack prod --compare /tmp/Pulumi.prod.yaml",
            "python -m sizing plan --stack ./Pulumi.staging.yaml -o yaml",
        ],
        planned,
    )
    plan.add_argument("--stack", required=True, help=_STACK)
    plan.add_argument("--profile", help=f"override the stack's profile ({', '.join(PROFILES)})")
    plan.add_argument(
        "--compare",
        metavar="PROFILE|STACK",
        help="show before → after against a profile of the same stack (a rollback) or another stack or stack file",
    )
    _output(plan)

    recommend = command(
        "recommend",
        "every machine type of the catalogue for the stack's pods, the cheapest feasible first",
        ["python -m sizing recommend --stack prod", "python -m sizing recommend --stack prod --profile baseline"],
        [(0, "the options"), (2, _BAD_INPUT + ";\nalso when no machine type holds the stack")],
    )
    recommend.add_argument("--stack", required=True, help=_STACK)
    recommend.add_argument("--profile", help=f"override the stack's profile ({', '.join(PROFILES)})")
    recommend.add_argument(
        "--rightsized",
        action="store_true",
        help="plan every machine type with `rightsize`'s sizes (needs --prometheus or --from)",
    )
    _history_source(recommend, "rightsize --save", required=False)
    _output(recommend)

    fit = command(
        "fit",
        "fit the capacity formula to measured working sets and users (Prometheus, or an export of it)",
        [
            "python -m sizing fit --stack prod --prometheus http://localhost:9090 --since 14d\n--save export.json",
            "python -m sizing fit --stack prod --from examples/fit-export.json",
            "python -m sizing fit --stack prod --from export.json --write",
        ],
        [
            (0, "fitted, whatever the verdict"),
            (2, _BAD_INPUT + ";\nalso data that cannot tell a coefficient apart (one line naming it)"),
        ],
        RULES,
    )
    fit.add_argument("--stack", required=True, help=_STACK)
    _history_source(fit, "fit --save")
    fit.add_argument("--write", action="store_true", help="set the fitted coefficients in the stack file")
    _output(fit)

    sizes = command(
        "rightsize",
        "every container's CPU and memory from its history (p95 CPU, peak memory), against the stack's sizes",
        [
            "python -m sizing rightsize --stack prod --prometheus http://localhost:9090 --save prod-sizes.json",
            "python -m sizing rightsize --stack prod --from prod-sizes.json -o json",
            "python -m sizing rightsize --stack prod --from prod-sizes.json --write --summary change.md",
            "python -m sizing recommend --stack prod --rightsized --from prod-sizes.json",
        ],
        [
            (0, "the recommendations (written with --write)"),
            (2, _BAD_INPUT + ";\nalso --write when the recommended sizes fail the plan (nothing written)"),
        ],
        RIGHTSIZE_RULES.summary(),
    )
    sizes.add_argument("--stack", required=True, help=_STACK)
    _history_source(sizes, "rightsize --save")
    sizes.add_argument("--write", action="store_true", help="set the recommended sizes in the stack file")
    sizes.add_argument("--summary", type=Path, metavar="FILE", help="write the change as Markdown, for a review")
    _output(sizes)

    live = command(
        "status",
        "live formula-sized pods, slots, OOM kills and firing alerts, from Prometheus",
        ["python -m sizing status --stack prod --prometheus http://localhost:9090"],
        [
            (0, "every formula-sized pod below the near-limit threshold"),
            (1, "a pod near its limit"),
            (2, _BAD_INPUT + ";\nalso when Prometheus is unreachable"),
            (3, "no formula-sized pod reports a working set: monitoring is blind, admit no experiment"),
        ],
    )
    live.add_argument("--stack", required=True, help=_STACK)
    live.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus' HTTP API")
    _output(live)

    windows = command(
        "schedule",
        "planned windows: replicas, nodes, start and end, fit; --at: what is in force then; add or remove one",
        [
            "python -m sizing schedule --stack staging",
            "python -m sizing schedule --stack staging --at 2026-12-02T09:30:00+01:00 -o json",
            "python -m sizing schedule add lab --stack staging --days tue,thu --start 14:00 --end 16:00\n"
            "--timezone Europe/Berlin --experiments medium=5",
            "python -m sizing schedule remove lab --stack staging",
        ],
        [
            (0, "every window fits"),
            (1, "a window does not fit (`plan` and `pulumi preview` refuse the stack until it does)"),
            (2, _BAD_INPUT),
        ],
        "-o json: each window's start and end in ISO 8601 (a weekly window's next occurrence), `when` for people.",
    )
    windows.add_argument("--stack", help=_STACK + " (required)")
    windows.add_argument("--at", type=_instant, help="an instant (ISO-8601 with offset): what is in force then")
    _output(windows)
    actions = windows.add_subparsers(dest="action", metavar="ACTION", parser_class=usage.Parser)
    edits = [
        (0, "written, and every window fits"),
        (1, "a window does not fit: `add` writes nothing then, `remove` writes (a window less never hurts)"),
        (2, _BAD_INPUT),
    ]
    add = actions.add_parser(
        "add",
        help="add a window to the stack file (comments kept) if every window then fits",
        description="add a window to the stack file's capacity.schedule (a round trip: comments and layout kept); "
        "written only if every window then fits",
        epilog=_epilog(
            [
                "python -m sizing schedule add lab --stack staging --days tue,thu --start 14:00 --end 16:00\n"
                "--timezone Europe/Berlin --experiments medium=5",
                "python -m sizing schedule add open-day --stack staging --date 2027-06-05 --start 10:00 --end 13:00\n"
                "--timezone Europe/Berlin --experiments small=4,medium=2 --dry-run",
            ],
            edits,
        ),
    )
    add.add_argument("name", type=schedule.name, help="the window's name (a DNS label of up to 30 characters)")
    add.add_argument("--stack", required=True, help=_STACK)
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--days", type=schedule.days, help="weekly on these days: tue, or mon,wed,fri")
    when.add_argument("--date", type=schedule.day, help="once, on this date (YYYY-MM-DD)")
    add.add_argument("--start", required=True, type=schedule.clock, help="local start, HH:MM")
    add.add_argument("--end", required=True, type=schedule.clock, help="local end, HH:MM, later the same day")
    add.add_argument("--timezone", required=True, type=schedule.zone, help="IANA time zone, e.g. Europe/Berlin")
    add.add_argument(
        "--experiments",
        required=True,
        action="append",
        type=schedule.experiments,
        metavar="SHAPE=N",
        help="concurrent experiments by shape (capacity.shapes): medium=5, or small=4,medium=2; repeatable",
    )
    add.add_argument("--lead-minutes", type=_count("--lead-minutes"), help="scale up this long before (default 10)")
    add.add_argument("--grace-minutes", type=_count("--grace-minutes"), help="scale down this long after (default 15)")
    add.add_argument("--dry-run", action="store_true", help="say whether it fits; write nothing")
    _output(add)
    remove = actions.add_parser(
        "remove",
        help="remove a window from the stack file (comments kept)",
        description="remove a window from the stack file's capacity.schedule (a round trip: comments and layout kept)",
        epilog=_epilog(["python -m sizing schedule remove lab --stack staging"], edits),
    )
    remove.add_argument("name", help="the window's name")
    remove.add_argument("--stack", required=True, help=_STACK)
    remove.add_argument("--dry-run", action="store_true", help="show the schedule without it; write nothing")
    _output(remove)

    def users(p: argparse.ArgumentParser) -> None:
        p.add_argument("--video", type=_count("--video"), default=0, help="participants with video")
        p.add_argument("--no-video", type=_count("--no-video"), default=0, help="participants without video")
        p.add_argument("--experimenters", type=_count("--experimenters"), default=0, help="experimenters")
        _output(p)

    project = command(
        "project",
        "predicted memory of one backend pod serving one experiment",
        ["python -m sizing project --video 10 --experimenters 2", "python -m sizing project --stack prod --no-video 5"],
        planned,
    )
    project.add_argument("--stack", help="use this stack's formula (default: the document's coefficients)")
    users(project)

    slots = command(
        "slots",
        "experiments of a shape the backend pods can still admit at typical load",
        ["python -m sizing slots --stack prod --video 10 --experimenters 2"],
        planned,
    )
    slots.add_argument("--stack", required=True, help=_STACK)
    users(slots)

    contract = command(
        "contract",
        "check an app's /metrics against the app's side of the metric contract",
        [
            "python -m sizing contract --file examples/metrics-pass.txt",
            "python -m sizing contract --url http://localhost:3000/metrics",
            "curl -s http://backend:3000/metrics | python -m sizing contract --file -",
        ],
        [
            (0, "the contract is met: every series present, a gauge, with its labels"),
            (1, "not met: a series missing, or of the wrong type or labels"),
            (2, _BAD_INPUT + ";\nalso an unreadable file, an unreachable URL, or text that is no exposition"),
        ],
    )
    exposition = contract.add_mutually_exclusive_group(required=True)
    exposition.add_argument("--file", metavar="FILE", help="an exposition in a file (-: standard input)")
    exposition.add_argument("--url", metavar="URL", help="the app's /metrics URL")
    _output(contract)
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
            ["workload", "installed by", "replicas", "cpu", "memory request", "memory limit", "runtime setting"],
            rows,
            drop=["installed by", "runtime setting"],
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
            drop=["at max", "binding", "feasible"],
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
    return "\n".join([*out, "", *_render_bill_search(result.bill)])


BILL_ROWS = 8  # the bill search's cheapest options shown; --json holds them all


def _bill_pool(o: PoolOption) -> str:
    pricing = "spot" if o.spot else "on-demand" if o.commitment == "none" else f"{o.commitment} commitment"
    return f"{o.min} × {o.machine_type} {pricing}, {o.disk_size_gb} GB {o.disk_type} boot disk"


def _render_bill_search(bill: BillSearch) -> list[str]:
    """The search over the bill's options too (boot disk, commitment): its cheapest options, what the cheapest
    saves, and what a cheaper commitment would bind the account to."""
    rows = [
        [
            o.machine_type,
            "spot" if o.spot else "on-demand",
            o.commitment,
            f"{o.disk_size_gb} GB {o.disk_type}",
            str(o.min),
            f"{o.monthly_usd:.2f}",
        ]
        for o in bill.options[:BILL_ROWS]
    ]
    out = [
        f"over the bill's options too: boot disk (each type at the floor, {bill.disk_floor_gb} GB: "
        f"{bill.disk_floor_detail}) and commitment",
        "",
        table(["machine type", "pricing", "commitment", "boot disk", "min", "USD/month"], rows),
        f"({len(bill.options) - len(rows)} more in --json)",
        f"cheapest without a commitment: {_bill_pool(bill.cheapest)}, ${bill.cheapest.monthly_usd:.2f}/month"
        + ("" if bill.cheapest_saves_usd_month is None else f", saves ${bill.cheapest_saves_usd_month:.2f}/month"),
    ]
    if bill.committed is not None:
        out.append(
            f"with a commitment: {_bill_pool(bill.committed)}, ${bill.committed.monthly_usd:.2f}/month"
            + ("" if bill.committed_saves_usd_month is None else f", saves ${bill.committed_saves_usd_month:.2f}/month")
            + f"; not a recommendation: {bill.committed_binds}, whether the nodes run or not"
        )
    width = terminal_width() or 100
    return [line if "\n" in line else textwrap.fill(line, width, subsequent_indent="  ") for line in out]


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


def _emit(fmt: str, data: Callable[[], Any], text: Callable[[], str]) -> None:
    """The result as `-o` asks: text for people (tables), or the data as JSON or YAML."""
    print(text() if fmt == "table" else dump(data(), fmt))


def _compare_target(args: argparse.Namespace, project_dir: Path) -> Plan:
    if args.compare in PROFILES:
        return build_plan(load_stack(args.stack, project_dir, args.compare), args.stack)
    if not is_path(args.compare) and not stack_file(args.compare, project_dir).exists():
        known = [*PROFILES, *known_stacks(project_dir)]
        raise ConfigError(
            "--compare",
            f"{args.compare!r} is neither a profile ({', '.join(PROFILES)}) nor a stack "
            f"(known: {', '.join(known_stacks(project_dir)) or 'none'}){did_you_mean(args.compare, known)}",
        )
    return build_plan(load_stack(args.compare, project_dir, args.profile), args.compare)


def run(argv: list[str] | None = None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        return usage.bare_usage(parser)
    args = parser.parse_args(argv)
    project_dir = args.project_dir or _default_project_dir()
    fmt = args.output or "table"
    if args.command == "plan":
        plan = build_plan(load_stack(args.stack, project_dir, args.profile), args.stack)
        if args.compare is None:
            _emit(fmt, plan.to_json, lambda: render_plan(plan))
            return 0
        result = compare(plan, _compare_target(args, project_dir))
        _emit(fmt, lambda: result, lambda: render_comparison(result))
    elif args.command == "recommend":
        config = load_stack(args.stack, project_dir, args.profile)
        if args.rightsized or args.prometheus or args.from_file:
            return _recommend_rightsized(args, config, project_dir, fmt)
        options = recommend(config, args.stack, demand(config))
        _emit(fmt, options.to_json, lambda: render_recommendation(options))
    elif args.command == "rightsize":
        from sizing.cli import rightsize

        return rightsize.run(args, project_dir, fmt, _emit)
    elif args.command == "fit":
        return _fit(args, project_dir, fmt)
    elif args.command == "status":
        config = load_stack(args.stack, project_dir)
        # Imported here, with fit's: `plan` and the other commands never pay for the calibration modules.
        from sizing.observe.prometheus import Prometheus
        from sizing.observe.status import status

        # An incident tool: a window next month that does not fit must not keep it from answering.
        plan = build_plan(config, args.stack, strict=False)
        live = status(Prometheus(args.prometheus), config, plan, _stack_name(args.stack))
        _emit(fmt, live.to_json, lambda: render_status(live))
        if not live.pods:
            return EXIT_BLIND
        return EXIT_NEAR_LIMIT if live.near_limit else 0
    elif args.command == "schedule":
        if args.action is not None:
            result, code = schedule.edit(args, project_dir)
            _emit(
                fmt, lambda: {k: v for k, v in result.items() if k != "summary"}, lambda: schedule.render_edit(result)
            )
            return code
        if args.stack is None:
            parser._innermost(args).error("the following arguments are required: --stack")
        data = schedule.schedule_data(load_stack(args.stack, project_dir), args.stack, args.at)
        # A window that does not fit is shown with the reason `plan` and `pulumi preview` refuse the stack with,
        # and the exit code says so.
        _emit(fmt, lambda: data, lambda: schedule.render_schedule(data))
        return 0 if schedule.fits(data) else schedule.EXIT_DOES_NOT_FIT
    elif args.command == "contract":
        from sizing.observe.exposition import check, read_file, read_url

        source = args.file if args.file is not None else args.url
        report = check(read_file(args.file) if args.file is not None else read_url(args.url), source)
        _emit(fmt, report.to_json, lambda: render_contract(report))
        return 0 if report.met else EXIT_CONTRACT_NOT_MET
    elif args.command == "project":
        formula, _ = _formula(args, project_dir)
        mix = _mix(args)
        _emit(fmt, lambda: {"memory_mib": formula.memory_mib(mix)}, lambda: formula.explain(mix))
    else:
        result = _slots(load_stack(args.stack, project_dir), _mix(args), args.stack)
        _emit(fmt, lambda: result, lambda: _render_slots(result))
    return 0


def _recommend_rightsized(args: argparse.Namespace, config: StackConfig, project_dir: Path, fmt: str) -> int:
    """`recommend --rightsized`: the catalogue searched with the stack's sizes and with `rightsize`'s, side by side."""
    from sizing.cli.rightsize import collect_report, rightsized_config

    if not args.rightsized:
        raise ConfigError("--rightsized", "--prometheus and --from go with --rightsized: the sizes they give")
    if not (args.prometheus or args.from_file):
        raise ConfigError("--rightsized", "needs the history: --prometheus URL or --from FILE (`rightsize --save`)")
    plan = build_plan(config, args.stack, strict=False)
    result = collect_report(args, config, plan)
    sized = rightsized_config(stack_file(args.stack, project_dir), result, config, project_dir)
    now, then = recommend(config, args.stack, demand(config)), recommend(sized, args.stack, demand(sized))
    data = {
        "stack": args.stack,
        "changed_entries": [row.config_path for row in result.rows if row.changed],
        "current_sizes": now.to_json(),
        "rightsized": then.to_json(),
        "saves_usd_month": _saving(now, then),
        "rightsized_plan": _pool_of(build_plan(sized, args.stack, strict=False)),
    }
    _emit(fmt, lambda: data, lambda: render_rightsized_recommendation(now, then, data))
    return 0


def _pool_of(plan: Plan) -> dict[str, Any]:
    """The stack's own machine type with the rightsized sizes: its bounds and whether it survives a node's loss."""
    nodes = plan.nodes
    return {
        "machine_type": nodes.machine_type,
        "min": nodes.min,
        "max": nodes.max,
        "survives_node_loss": nodes.survives_node_loss,
        "total_usd_month": plan.cost.total_monthly_usd,
    }


def _saving(now: Any, then: Any) -> float | None:
    """The cheapest safe pool with today's sizes less the one with the rightsized sizes, USD per month."""
    if now.best.monthly_usd is None or then.best.monthly_usd is None:
        return None
    return round(now.best.monthly_usd - then.best.monthly_usd, 2)


def render_rightsized_recommendation(now: Any, then: Any, data: dict[str, Any]) -> str:
    def pool(option: Any) -> str:
        spot = " spot" if option.spot else ""
        return f"{option.min}–{option.max} × {option.machine_type}{spot} ${option.monthly_usd:.2f}/month"

    saving = data["saves_usd_month"]
    return "\n".join(
        [
            f"with the rightsized sizes ({len(data['changed_entries'])} entries changed):",
            "",
            render_recommendation(then),
            "",
            f"cheapest safe pool: today's sizes {pool(now.best)}; rightsized {pool(then.best)}",
            f"on {data['rightsized_plan']['machine_type']} (the stack's): {data['rightsized_plan']['min']}–"
            f"{data['rightsized_plan']['max']} nodes, survives the loss of a node: "
            f"{'yes' if data['rightsized_plan']['survives_node_loss'] else 'NO'}",
            f"saves ${saving:.2f}/month" if saving is not None else "no comparison: a side holds no feasible pool",
        ]
    )


def _render_slots(result: dict[str, Any]) -> str:
    out = [
        f"one more experiment needs {result['shape_mib']} MiB; typical load uses {result['typical_mib']} MiB; "
        f"experiments fit up to {result['near_limit_threshold']:.0%} of the limit (the near-limit threshold)"
    ]
    out += [
        f"{name}: {e['per_pod']} per pod × {e['replicas']} pods = {e['total']} (limit {e['memory_limit_mib']} MiB)"
        for name, e in result["workloads"].items()
    ]
    out.append(f"total: {result['total']}")
    return "\n".join(out)


# The step `fit` reads at, at least: the scrape interval of the workloads (monitoring/names.py).
FIT_STEP_S = 30.0


def _stack_name(stack: str) -> str:
    """The Pulumi stack's name (what alerts carry as `stack`), for a name or a `Pulumi.<name>.yaml` path."""
    name = Path(stack).name
    match = re.fullmatch(r"Pulumi\.(.+)\.ya?ml", name)
    return match.group(1) if match else stack


def _fit(args: argparse.Namespace, project_dir: Path, fmt: str) -> int:
    from sizing.config.writer import set_formula
    from sizing.observe.calibration import Samples, collect, fit, fitted_formula, load_export, with_formula
    from sizing.observe.prometheus import HISTORY_S, Prometheus, save_export
    from sizing.observe.verdict import verdict

    usage.check_history_source(args)
    config = load_stack(args.stack, project_dir)
    if args.prometheus:
        since = HISTORY_S if args.since is None else args.since
        export = collect(Prometheus(args.prometheus), config, since, FIT_STEP_S)
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
    data["verdict"] = verdict(data).model_dump()
    if args.write and after is None:
        # A stack file whose plan fails would stop the next `pulumi preview`: leave it as it is.
        raise ConfigError(
            config.key("capacity.formula"), f"not written: the fitted formula fails the plan: {effect['error']}"
        )
    _emit(fmt, lambda: data, lambda: render_fit(data))
    if args.write:
        path = stack_file(args.stack, project_dir)
        set_formula(path, config.config_namespace, result.coefficients.rounded())
        # The plan of the file as written (not of the model in memory): what `pulumi preview` will read.
        written = build_plan(load_stack(args.stack, project_dir), args.stack)
        if fmt == "table":
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
    decision = data["verdict"]["decision"]
    out += ["", f"verdict: {decision.replace('-', ' ')}"]
    out += [f"  - {reason}" for reason in data["verdict"]["reasons"]]
    if decision == "write":
        out.append(f"  python -m sizing fit --stack {data['stack']} … --write sets it (the rules: fit --help)")
    else:
        out.append("  (the rules: python -m sizing fit --help)")
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
            "NEAR LIMIT" if p.near_limit else "ok",
        ]
        for p in result.pods
    ]
    out = [
        f"stack {result.stack} · namespace {result.namespace} · near-limit threshold {result.threshold:g}",
        "",
        table(
            ["pod", "working set MiB", "predicted MiB", "limit MiB", "headroom MiB", "users", "state"],
            rows,
            drop=["predicted MiB", "headroom MiB"],
        )
        if rows
        else "no formula-sized pod reports a working set: monitoring is blind, the slots below are not known to be "
        "free (exit 3); is cAdvisor scraped, and does the stack's namespace run its pods?",
        "",
        "slots now: " + (", ".join(f"{shape} {n}" for shape, n in result.slots.items()) or "-"),
        f"OOM kills in the last 24 h: {result.oom_kills_24h}",
        "firing: "
        + (", ".join(f"{a['alertname']} ({a['severity']})" for a in result.firing_alerts) or "no HyperStudy alert"),
    ]
    return "\n".join(out)


def render_contract(report: ContractReport) -> str:
    """Each contract series: present, missing or wrong, with every problem."""
    rows = [
        [
            s.name,
            s.expected_type + (f", label {', '.join(s.expected_labels)}" if s.expected_labels else ""),
            {"present": "ok", "missing": "MISSING", "wrong": "WRONG"}[s.status],
            "; ".join(s.problems) or "-",
        ]
        for s in report.series
    ]
    verdict = "met" if report.met else "NOT met"
    counts = f"{len(report.present)} present, {len(report.missing)} missing, {len(report.wrong)} wrong"
    return "\n".join(
        [
            f"{report.source} against the app's side of the metric contract: {verdict} ({counts})",
            "",
            table(["series", "expects", "status", "problems"], rows, drop=["expects"]),
            "",
            f"{report.other_metrics} other metric families (not part of the contract)",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError, ArithmeticError) as err:
        # Input no check above foresaw: still one line, never a traceback (nor an exception's class name).
        print(f"error: unexpected input: {' '.join(str(err).split()) or 'no detail'}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exit_:
        # argparse's usage errors (2) and --help (0), as a code: main is called in process too.
        return exit_.code if isinstance(exit_.code, int) else EXIT_BAD_INPUT
    except BrokenPipeError:
        # `python -m sizing plan | head`: the reader left; that is not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
