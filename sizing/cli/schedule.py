"""`python -m sizing schedule`: the planned windows (what each needs, whether it fits, when it starts and ends), what
is in force at an instant, and `schedule add` / `schedule remove`, which edit the stack file's `capacity.schedule`
by ruamel's round trip (comments kept) and say whether the windows fit.

Exit 1 when a window does not fit: the stack's `plan` and `pulumi preview` refuse it until it does.
"""

from __future__ import annotations

import argparse
import re
import zoneinfo
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from sizing.cli.tables import table
from sizing.config.loader import load_stack, parse_stack_config, project_name, stack_file, stack_values
from sizing.config.schedule import DAYS, WINDOW_NAME, Window
from sizing.config.stack import StackConfig
from sizing.core.errors import ConfigError, did_you_mean
from sizing.plan.build import build_plan

EXIT_DOES_NOT_FIT = 1
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


# --- Arguments of `schedule add`: each bad value one line naming its flag. ---


def name(text: str) -> str:
    if not re.match(WINDOW_NAME, text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a window name: a DNS label of up to 30 characters (a-z, 0-9 and -, a letter first)"
        )
    return text


def days(text: str) -> list[str]:
    """`tue` or `mon,wed,fri`."""
    found = [d.strip().lower() for d in text.split(",") if d.strip()]
    for day in found:
        if day not in DAYS:
            raise argparse.ArgumentTypeError(f"{day!r} is not a day ({', '.join(DAYS)}){did_you_mean(day, DAYS)}")
    if not found:
        raise argparse.ArgumentTypeError("names no day (e.g. tue or mon,wed)")
    return found


def clock(text: str) -> str:
    if not _CLOCK.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day like 14:00 (HH:MM, 24 h)")
    return text


def day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-12-03 (YYYY-MM-DD)") from None


def zone(text: str) -> str:
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        hint = did_you_mean(text, zoneinfo.available_timezones())
        raise argparse.ArgumentTypeError(
            f"unknown time zone {text!r}{hint} (an IANA name like Europe/Berlin)"
        ) from None
    return text


def experiments(text: str) -> dict[str, int]:
    """`medium=5` or `small=4,medium=2`."""
    found: dict[str, int] = {}
    for part in text.split(","):
        shape, sep, count = part.strip().partition("=")
        if not sep or not shape or not count.isdigit():
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not SHAPE=COUNT like medium=5")
        found[shape] = int(count)
    return found


def _instant(on: date, at: str, tz: str, flag: str) -> str:
    """The ISO 8601 instant of a wall-clock time on a date in a zone; a time a DST change skips is refused."""
    hour, minute = (int(x) for x in at.split(":"))
    local = datetime.combine(on, time(hour, minute), tzinfo=zoneinfo.ZoneInfo(tz))
    if local.astimezone(zoneinfo.ZoneInfo("UTC")).astimezone(local.tzinfo).replace(tzinfo=None) != local.replace(
        tzinfo=None
    ):
        raise ConfigError(flag, f"{at} does not exist on {on.isoformat()} in {tz} (a DST change skips it)")
    return local.isoformat()


def window_values(args: argparse.Namespace) -> dict[str, Any]:
    """The window `schedule add` writes, as a stack file holds it."""
    if (args.days is None) == (args.date is None):
        raise ConfigError("--days/--date", "give one: weekly days (--days tue) or one date (--date 2026-12-03)")
    merged: dict[str, int] = {}
    for given in args.experiments:
        merged |= given
    window: dict[str, Any] = {"name": args.name}
    if args.days is not None:
        window["weekly"] = {"days": args.days, "start": args.start, "end": args.end, "timezone": args.timezone}
    else:
        start = _instant(args.date, args.start, args.timezone, "--start")
        end = _instant(args.date, args.end, args.timezone, "--end")
        window["once"] = {"start": start, "end": end}
    window["experiments"] = merged
    if args.lead_minutes is not None:
        window["lead_minutes"] = args.lead_minutes
    if args.grace_minutes is not None:
        window["grace_minutes"] = args.grace_minutes
    return window


# --- The schedule as data: what `schedule --json` prints. ---


def _span(window: Window, next_start: str | None) -> tuple[str | None, str | None]:
    """ISO 8601 start and end: a one-off window's own; a weekly window's next occurrence, in its time zone."""
    if window.once is not None:
        return window.once.start.isoformat(), window.once.end.isoformat()
    assert window.weekly is not None
    if next_start is None:
        return None, None
    tz = zoneinfo.ZoneInfo(window.weekly.timezone)
    start = datetime.fromisoformat(next_start).astimezone(tz)
    return start.isoformat(), datetime.combine(start.date(), window.weekly.end, tzinfo=tz).isoformat()


def schedule_data(config: StackConfig, stack: str, at: datetime | None = None) -> dict[str, Any]:
    """The windows, the scaling jobs and the cost; with `at`, what is in force then."""
    from sizing.plan.schedule import in_force, schedule_nodes

    # With --at the plan is as of that instant: its next starts, and the actions still to come then.
    plan = build_plan(config, stack, now=at, strict=False)
    schedule = plan.schedule
    data: dict[str, Any] = {"stack": stack}
    if schedule is None:
        data |= {"windows": [], "actions": [], "unscheduled_monthly_usd": plan.cost.monthly_usd}
        data |= {"extra_node_hours_month": 0.0, "monthly_usd": plan.cost.monthly_usd}
        base = {w.name: w.replicas for w in plan.workloads.values() if w.derivation is not None}
        replicas = next(iter(base.values()), 0)
        active: list[str] = []
    else:
        data |= schedule.to_json()
        windows = {w.name: w for w in config.capacity.schedule}
        spans = []
        for w in data["windows"]:
            start, end = _span(windows[w["name"]], w["next_start"])
            spans.append({"name": w["name"], "when": w["when"], "start": start, "end": end, **w})
        data["windows"] = spans
        if at is not None:
            active, replicas = in_force(schedule, config.capacity.schedule, at)
    if at is not None:
        nodes = plan.nodes.min if schedule is None else schedule_nodes(config, plan, replicas)
        data |= {"at": at.isoformat(), "active_windows": active, "backend_replicas": replicas, "nodes": nodes}
    return data


def fits(data: dict[str, Any]) -> bool:
    return all(w["fits"] for w in data["windows"])


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
            table(
                ["window", "when", "experiments", "memory MiB", "backend", "nodes", "next start", "fits"],
                rows,
                drop=["memory MiB", "next start"],
            ),
            "",
            table(
                ["job", "cron", "time zone", "year", "replicas"],
                [
                    [a["name"], a["schedule"], a["time_zone"], str(a["year"] or "every"), _replicas_text(a)]
                    for a in data["actions"]
                ]
                or [["-", "-", "-", "-", "-"]],
                drop=["year"],
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


# --- schedule add / remove ---


def edit(args: argparse.Namespace, project_dir: Path) -> tuple[dict[str, Any], int]:
    """Add or remove a window in the stack file: the new schedule, whether it was written, and the exit code.

    `add` writes only when every window then fits (a stack file whose plan fails stops the next `pulumi preview`);
    `remove` always writes (a window less never makes another not fit). `--dry-run` writes nothing.
    """
    from sizing.config.writer import read, with_window, without_window, write

    namespace = project_name(project_dir)
    # The stack as it is: a file that does not load is reported as it is, not after an edit.
    load_stack(args.stack, project_dir)
    path = stack_file(args.stack, project_dir)
    text = read(path)
    if args.action == "add":
        window = window_values(args)
        new = with_window(text, str(path), namespace, window)
    else:
        new = without_window(text, str(path), namespace, args.name)
    config = parse_stack_config(stack_values(new, str(path), namespace), namespace)
    data = schedule_data(config, args.stack)
    ok = fits(data)
    written = not args.dry_run and (ok or args.action == "remove")
    if written:
        write(path, new)
    verb = "added" if args.action == "add" else "removed"
    result = {
        "stack": args.stack,
        "file": str(path),
        "action": args.action,
        "window": args.name,
        "written": written,
        "fits": ok,
        "schedule": data,
    }
    result["summary"] = _summary(result, verb)
    return result, 0 if ok else EXIT_DOES_NOT_FIT


def _summary(result: dict[str, Any], verb: str) -> str:
    name, path = result["window"], result["file"]
    windows = result["schedule"]["windows"]
    window = next((w for w in windows if w["name"] == name), None)
    fit = "" if window is None or not window["fits"] else f": it fits on {window['nodes']} nodes"
    if result["written"]:
        return f"{verb} window {name} in {path}{fit}"
    if result["fits"]:
        return f"--dry-run: window {name} would be {verb} in {path}{fit}"
    refused = ", ".join(w["name"] for w in windows if not w["fits"])
    with_it = f"with window {name} {verb}" if result["action"] == "add" else f"without window {name}"
    return f"{'' if result['action'] == 'add' else '--dry-run: '}not written: {with_it}, {refused} does not fit (below)"


def render_edit(result: dict[str, Any]) -> str:
    return f"{result['summary']}\n\n{render_schedule(result['schedule'])}"
