"""`python -m sizing rightsize`: every container's sizes from its history (sizing/observe/rightsize.py), shown
against the stack's, and with `--write` set in the stack file by ruamel's round trip (only the size lines change),
refused when the result fails the plan; `--summary FILE` writes the change as Markdown for a review.

`rightsized_config` is the stack as `--write` would leave it, in memory: what `recommend --rightsized` plans.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sizing.cli import usage
from sizing.cli.compare import compare, render_comparison
from sizing.cli.tables import table
from sizing.config.loader import load_stack, parse_stack_config, project_name, stack_file, stack_values
from sizing.config.stack import StackConfig
from sizing.core.errors import ConfigError
from sizing.core.quantity import format_mib, format_millicores
from sizing.observe.rightsize import Report, Row
from sizing.plan.build import build_plan
from sizing.plan.types import Plan


def _entry(row: Row, config: StackConfig) -> dict[str, Any]:
    """What `writer.with_sizes` sets for one row; a chart entry the file leaves to its defaults is written whole."""
    r = row.recommended
    entry: dict[str, Any] = {"cpu_request": format_millicores(r.cpu_request_m)}
    if not row.formula:
        entry |= {"request": format_mib(r.memory_request_mib), "limit": format_mib(r.memory_limit_mib)}
    top, *rest = row.config_path.split(".")
    if top != "workloads":
        sizes = getattr(config, top).components.by_name(rest[-1])
        entry["default"] = sizes.model_dump(mode="json", exclude_none=True)
    return entry


def changes(report: Report, config: StackConfig) -> dict[str, dict[str, Any]]:
    """The rows whose sizes change, as `writer.with_sizes` takes them."""
    return {row.config_path: _entry(row, config) for row in report.rows if row.changed}


def rightsized_text(path: Path, report: Report, config: StackConfig) -> str:
    """The stack file's text with the recommended sizes."""
    from sizing.config.writer import read, with_sizes

    return with_sizes(read(path), str(path), config.config_namespace, report.profile, changes(report, config))


def rightsized_config(path: Path, report: Report, config: StackConfig, project_dir: Path) -> StackConfig:
    """The stack as `--write` would leave it, validated as `load_stack` validates a file."""
    text = rightsized_text(path, report, config)
    namespace = project_name(project_dir)
    values = stack_values(text, str(path), namespace)
    values["profile"] = report.profile
    return parse_stack_config(values, namespace)


def collect_report(args: argparse.Namespace, config: StackConfig, plan: Plan) -> Report:
    """The report from Prometheus (`--prometheus`, optionally saved) or an export (`--from`)."""
    from sizing.observe.prometheus import save_export
    from sizing.observe.rightsize import collect, load_export, report

    usage.check_history_source(args)
    if args.prometheus:
        from sizing.observe.prometheus import HISTORY_S, Prometheus

        export = collect(Prometheus(args.prometheus), config, plan, HISTORY_S if args.since is None else args.since)
        if args.save:
            save_export(export, args.save)
        sent = len(export["queries"]) + 1  # and time()
    else:
        export, sent = load_export(args.from_file, config), 0
    return report(config, plan, export, args.stack, sent)


def _change(now: int, then: int, unit: str) -> str:
    return f"{now}{unit}" if now == then else f"{now} → {then}{unit}"


def _measured(row: Row) -> str:
    m = row.measured
    cpu = "–" if m.cpu_p95_m is None else f"{m.cpu_p95_m:.0f}m"
    peak = "–" if m.memory_peak_mib is None else f"{m.memory_peak_mib:.0f}Mi"
    return f"{cpu} / {peak}"


def render_report(result: Report, effect: dict[str, Any] | None = None) -> str:
    """The report for people: one row per sizes entry, then the bill effect."""
    rows = [
        [
            row.name,
            row.state + (" (memory: formula)" if row.formula else ""),
            _measured(row),
            _change(row.current.cpu_request_m, row.recommended.cpu_request_m, "m"),
            _change(row.current.memory_request_mib, row.recommended.memory_request_mib, "Mi"),
            _change(row.current.memory_limit_mib, row.recommended.memory_limit_mib, "Mi"),
            row.why,
        ]
        for row in result.rows
    ]
    span = (result.end - result.start) / 86400
    out = [
        f"{result.stack} ({result.profile}): {len(result.rows)} sizes entries over {span:.3g} days of history, "
        f"{sum(r.changed for r in result.rows)} would change ({result.queries} queries)",
        "",
        table(
            ["entry", "state", "p95 cpu / peak", "cpu request", "memory request", "memory limit", "why"],
            rows,
            drop=["why", "p95 cpu / peak"],
        ),
    ]
    if effect is not None:
        out += ["", _effect_line(effect)]
    return "\n".join(out)


def bill_effect(before: Plan, after: Plan | None, error: str | None) -> dict[str, Any]:
    """What the recommended sizes do to the pool and the bill."""
    if after is None:
        return {"fits": False, "error": error}
    return {
        "fits": True,
        "nodes": {"before": before.nodes.min, "after": after.nodes.min},
        "machine_type": after.nodes.machine_type,
        "total_usd_month": {"before": before.cost.total_monthly_usd, "after": after.cost.total_monthly_usd},
        "difference_usd_month": round(after.cost.total_monthly_usd - before.cost.total_monthly_usd, 2),
    }


def _effect_line(effect: dict[str, Any]) -> str:
    if not effect["fits"]:
        return f"the recommended sizes fail the plan: {effect['error']}"
    nodes, usd = effect["nodes"], effect["total_usd_month"]
    return (
        f"with these sizes: {nodes['before']} → {nodes['after']} × {effect['machine_type']} at the minimum, "
        f"${usd['before']:.2f} → ${usd['after']:.2f}/month ({effect['difference_usd_month']:+.2f}); "
        "`python -m sizing recommend --stack S --rightsized --from FILE` searches every machine type"
    )


def summary_markdown(result: Report, effect: dict[str, Any]) -> str:
    """The change as Markdown, to paste into a review: per changed entry old → new and why, then the bill."""
    lines = [
        f"## Right-sizing `{result.stack}` ({result.profile}) from {(result.end - result.start) / 86400:.3g} days of "
        "history",
        "",
        "| entry | config | CPU request | memory request | memory limit | state | why |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result.rows:
        if not row.changed:
            continue
        c, r = row.current, row.recommended
        lines.append(
            f"| {row.name} | `{row.config_path}` | {_change(c.cpu_request_m, r.cpu_request_m, 'm')} | "
            f"{_change(c.memory_request_mib, r.memory_request_mib, 'Mi')} | "
            f"{_change(c.memory_limit_mib, r.memory_limit_mib, 'Mi')} | {row.state} | {row.why} |"
        )
    kept = [row.name for row in result.rows if not row.changed]
    lines += ["", f"Unchanged: {', '.join(kept) or 'none'}.", "", f"**Bill:** {_effect_line(effect)}", ""]
    short = [row.name for row in result.rows if row.state == "not enough data"]
    if short:
        lines.insert(-1, f"Not enough data (kept): {', '.join(short)}.")
    return "\n".join(lines)


def run(args: argparse.Namespace, project_dir: Path, fmt: str, emit: Any) -> int:
    config = load_stack(args.stack, project_dir)
    before = build_plan(config, args.stack, strict=False)
    result = collect_report(args, config, before)
    path = stack_file(args.stack, project_dir)
    try:
        after: Plan | None = build_plan(rightsized_config(path, result, config, project_dir), args.stack)
        error = None
    except ConfigError as err:
        after, error = None, str(err)
    effect = bill_effect(before, after, error)
    if args.write and after is None:
        # A stack file whose plan fails would stop the next `pulumi preview`: leave it as it is.
        raise ConfigError(str(path), f"not written: the recommended sizes fail the plan: {error}")
    emit(fmt, lambda: {**result.model_dump(mode="json"), "effect": effect}, lambda: render_report(result, effect))
    if args.summary:
        try:
            args.summary.write_text(summary_markdown(result, effect), encoding="utf-8")
        except OSError as err:
            raise ConfigError(str(args.summary), f"cannot write the summary: {err.strerror}") from None
    if args.write:
        from sizing.config.writer import write

        write(path, rightsized_text(path, result, config))
        # The plan of the file as written: what `pulumi preview` will read.
        written = build_plan(load_stack(args.stack, project_dir), args.stack)
        if fmt == "table":
            entries = sum(r.changed for r in result.rows)
            print(f"\nwrote the sizes of {entries} entries to {path}; the plan before → after:\n")
            print(render_comparison(compare(before, written)))
    return 0
