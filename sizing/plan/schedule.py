"""Capacity for planned experiments (`capacity.schedule`): what each window needs, the scaling that provides it ahead
of time, and what it costs.

A backend pod's room for planned experiments is ⌊near-limit threshold × limit⌋ − the formula at its typical load
(the slots definition, `sizing.core.capacity`): it already serves its typical load, and an admitted experiment must not
trip HyperStudyMemoryNearLimit. An experiment does not split across pods, so a window's experiments are packed into
pods (first fit, largest first) and its backend replicas are the pods that takes, never fewer than the configured
replicas; its nodes come from the same planner as `plan`.

Scaling is a set of actions, one pair per window: `<window>-up` sets the replicas `lead_minutes` before the window
starts, `<window>-down` sets them `grace_minutes` after it ends. Each is a cron schedule in the window's own time
zone (a weekly window, so the CronJob controller's time-zone database handles DST) or in UTC for a one-off window
(with the year it belongs to). An action sets the replicas that every window *provisioned* at its instant needs
(between its own up and down), so overlapping windows add up and one window's end never takes another's capacity;
over the next year it takes the largest such value of any of its firings (time zones shift against each other at
DST changes). A set of windows that could never run together within the pool's max is clamped there, and refused if
the windows themselves overlap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sizing.config.schedule import DAYS, Window
from sizing.config.stack import formula_workloads
from sizing.core import clock
from sizing.core.capacity import room
from sizing.core.errors import ConfigError
from sizing.facts.catalogue import HOURS_PER_MONTH
from sizing.plan.nodes import Demand
from sizing.plan.placement import Counts, Free, Group, Placement, place, recoverable, scale_up
from sizing.plan.types import ConfigErrorData, Direction, ScaleAction, SchedulePlan, WindowPlan

if TYPE_CHECKING:
    from sizing.config.stack import StackConfig
    from sizing.plan.types import Plan

# A year and a week: every DST change of every zone, both ways, and a window's next start.
HORIZON = timedelta(days=372)
# Firings of a weekly action recur within a week: this much history decides what is in force.
LOOKBACK = timedelta(days=8)
UTC_ZONE = "Etc/UTC"


# --- Time: occurrences and cron firings, by the rules the CronJob controller follows. ---------------------------


def _wall(day: date, clock: time, zone: ZoneInfo, fold: int = 0) -> datetime | None:
    """The instant of a local wall-clock time, or None when that time does not exist there (a DST gap)."""
    local = datetime.combine(day, clock, tzinfo=zone).replace(fold=fold)
    back = local.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return local.astimezone(UTC)


def _dates(start: datetime, end: datetime, zone: ZoneInfo) -> Iterable[date]:
    day, last = start.astimezone(zone).date() - timedelta(days=1), end.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        yield day
        day += timedelta(days=1)


@dataclass(frozen=True)
class Cron:
    """A parsed action schedule: minute, hour, and either weekdays (0 = Sunday) or a day of a month."""

    minute: int
    hour: int
    weekdays: frozenset[int] | None
    day: int | None = None
    month: int | None = None

    def text(self) -> str:
        if self.weekdays is not None:
            return f"{self.minute} {self.hour} * * {','.join(str(d) for d in sorted(self.weekdays))}"
        return f"{self.minute} {self.hour} {self.day} {self.month} *"

    @classmethod
    def parse(cls, text: str) -> Cron:
        minute, hour, day, month, weekdays = text.split()
        if weekdays != "*":
            return cls(int(minute), int(hour), frozenset(int(d) for d in weekdays.split(",")))
        return cls(int(minute), int(hour), None, int(day), int(month))

    def matches(self, day: date) -> bool:
        if self.weekdays is not None:
            return (day.isoweekday() % 7) in self.weekdays
        return (day.month, day.day) == (self.month, self.day)


def firings(action: ScaleAction, start: datetime, end: datetime) -> list[datetime]:
    """The instants in [start, end] the action runs: its cron fields matched on the local wall clock of its time
    zone, as the controller does (a time a DST gap skips never fires; one a DST fold repeats fires twice, which a
    scaling action, setting an absolute count, shrugs off); a one-off action in its year only."""
    cron, zone = Cron.parse(action.schedule), ZoneInfo(action.time_zone)
    found: set[datetime] = set()
    for day in _dates(start, end, zone):
        if not cron.matches(day) or (action.year is not None and day.year != action.year):
            continue
        for fold in (0, 1):
            instant = _wall(day, time(cron.hour, cron.minute), zone, fold)
            if instant is not None and start <= instant <= end:
                found.add(instant)
    return sorted(found)


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a window: the window's own time, and the time it is provisioned for (up to down)."""

    window: Window
    start: datetime
    end: datetime
    up: datetime
    down: datetime


def _shifted(clock: time, minutes: int) -> tuple[int, time]:
    """`clock` moved by `minutes` on the wall clock: (days moved, new time)."""
    moved = datetime.combine(date(2024, 1, 1), clock) + timedelta(minutes=minutes)
    return (moved.date() - date(2024, 1, 1)).days, moved.time()


def occurrences(window: Window, start: datetime, end: datetime) -> list[Occurrence]:
    """The window's occurrences whose provisioned time [up, down) meets [start, end], oldest first."""
    found = []
    lead, grace = window.lead_minutes, window.grace_minutes
    if window.once is not None:
        begin, finish = window.once.start.astimezone(UTC), window.once.end.astimezone(UTC)
        up, down = begin - timedelta(minutes=lead), finish + timedelta(minutes=grace)
        if down > start and up <= end:
            found.append(Occurrence(window, begin, finish, up, down))
        return found
    weekly = window.weekly
    assert weekly is not None
    zone = ZoneInfo(weekly.timezone)
    up_days, up_clock = _shifted(weekly.start, -lead)
    down_days, down_clock = _shifted(weekly.end, grace)
    for day in _dates(start - timedelta(minutes=lead + 1440), end + timedelta(minutes=grace + 1440), zone):
        if DAYS[day.weekday()] not in weekly.days:
            continue
        begin = datetime.combine(day, weekly.start, tzinfo=zone).astimezone(UTC)
        finish = datetime.combine(day, weekly.end, tzinfo=zone).astimezone(UTC)
        up = _wall(day + timedelta(days=up_days), up_clock, zone)
        down = _wall(day + timedelta(days=down_days), down_clock, zone)
        if up is None or down is None:
            continue  # refused by _gaps before any plan uses it
        if down > start and up <= end:
            found.append(Occurrence(window, begin, finish, up, down))
    return found


def _cron_of(window: Window, direction: Direction) -> tuple[Cron, str, int | None]:
    """The cron fields, time zone and year of a window's up or down action."""
    minutes = -window.lead_minutes if direction == "up" else window.grace_minutes
    if window.once is not None:
        edge = window.once.start if direction == "up" else window.once.end
        instant = edge.astimezone(UTC) + timedelta(minutes=minutes)
        return Cron(instant.minute, instant.hour, None, instant.day, instant.month), UTC_ZONE, instant.year
    weekly = window.weekly
    assert weekly is not None
    days, clock = _shifted(weekly.start if direction == "up" else weekly.end, minutes)
    weekdays = frozenset(((DAYS.index(d) + days) % 7 + 1) % 7 for d in weekly.days)
    return Cron(clock.minute, clock.hour, weekdays), weekly.timezone, None


# --- Sizes: room, packing, replicas and nodes. --------------------------------------------------------------------


def pods_for(sizes: Iterable[int], room_mib: int) -> int:
    """Pods that hold experiments of these sizes, none split: first fit, largest first (every size ≤ room)."""
    free: list[int] = []
    for size in sorted(sizes, reverse=True):
        for i, left in enumerate(free):
            if size <= left:
                free[i] -= size
                break
        else:
            free.append(room_mib - size)
    return len(free)


class _Sizer:
    """Replicas and nodes for sets of experiments, memoised: the backend at a replica count, every other pod of the
    plan beside it, placed by the same rules as `plan` (sizing/plan/placement.py) on the nodes the autoscaler gives
    them."""

    def __init__(self, config: StackConfig, plan: Plan, workload: str) -> None:
        self.config, self.plan, self.workload = config, plan, workload
        sized = plan.workloads[workload]
        threshold = config.monitoring.alerts.memory_near_limit.threshold
        typical = config.capacity.memory_mib("typical")
        self.room_mib = math.floor(room(sized.memory_limit_mib, typical, threshold))
        self.base = sized.replicas
        formula = config.capacity.formula
        self.shape_mib = {name: formula.users_mib(mix) for name, mix in config.capacity.shapes.items()}
        self.max_nodes = plan.nodes.max
        # Outside the windows the pool holds the plan's placement at its minimum; a scale-up adds the backend's new
        # pods to it one at a time (sizing.plan.placement.scale_up), the pods already running staying where they are.
        base = self.demand(self.base)
        self.free = Free(plan.nodes.free_memory_mib, plan.nodes.free_cpu_m)
        self.groups = base.typical
        self.index = next(i for i, g in enumerate(self.groups) if g.name == workload)
        found, _ = place(self.groups, plan.nodes.min, self.free, survive=config.nodes.survive_node_loss)
        assert found is not None  # the plan's own placement at its minimum
        self._states: list[Counts] = [found.counts]
        # The most replicas the max holds: more replicas never need fewer nodes, so scale up until one more would
        # need a node beyond it.
        while len(scale_up(self.groups, self._states[-1], self.free, self.index)) <= self.max_nodes:
            self._states.append(scale_up(self.groups, self._states[-1], self.free, self.index))
        self.max_replicas = self.base + len(self._states) - 1

    def sizes(self, experiments: dict[str, int]) -> list[int]:
        return [self.shape_mib[shape] for shape, count in experiments.items() for _ in range(count)]

    def replicas(self, experiments: dict[str, int]) -> int:
        sizes = [s for s in self.sizes(experiments) if s > 0]
        return max(self.base, pods_for(sizes, self.room_mib) if sizes else 0)

    def demand(self, replicas: int) -> Demand:
        scaled = self.plan.workloads[self.workload].model_copy(update={"replicas": replicas})
        return Demand([scaled if w.name == self.workload else w for w in self.plan.pool_workloads.values()])

    def placed(self, replicas: int) -> Placement:
        """Where every pod runs with `replicas` backend pods: the plan's placement and the scale-up's pods (the
        node count grows where the autoscaler adds a node for one)."""
        while self.base + len(self._states) - 1 < replicas:
            self._states.append(scale_up(self.groups, self._states[-1], self.free, self.index))
        counts = self._states[max(replicas, self.base) - self.base]
        groups = tuple(
            Group(g.name, replicas, g.memory_mib, g.cpu_m, g.spread) if i == self.index else g
            for i, g in enumerate(self.groups)
        )
        return Placement(groups, counts)

    def nodes(self, replicas: int) -> int:
        return len(self.placed(replicas).counts)

    def placement(self, replicas: int) -> tuple[tuple[str, ...], ...]:
        return self.demand(replicas).names(self.placed(replicas))

    def survives_node_loss(self, replicas: int) -> bool:
        placed = self.placed(replicas)
        return recoverable(placed.groups, placed.counts, self.free)


def _total(windows: Iterable[Window]) -> dict[str, int]:
    total: dict[str, int] = {}
    for window in windows:
        for shape, count in window.experiments.items():
            total[shape] = total.get(shape, 0) + count
    return total


def _refusal(config: StackConfig, sizer: _Sizer, window: Window) -> tuple[str, str] | None:
    """A window on its own: every experiment fits a pod, and its replicas fit the pool's max."""
    too_big = _too_big(sizer, window)
    if too_big:
        shape = too_big[0]
        threshold = config.monitoring.alerts.memory_near_limit.threshold
        limit = sizer.plan.workloads[sizer.workload].memory_limit
        typical = config.capacity.memory_mib("typical")
        return (
            config.key(f"capacity.schedule.{window.name}.experiments.{shape}"),
            f"one {shape} experiment needs {sizer.shape_mib[shape]} MiB, more than a backend pod's room of "
            f"{max(sizer.room_mib, 0)} MiB ({threshold:g} × its {limit} limit − {typical} MiB at typical load) "
            "and an experiment does not split across pods: raise the peak load (capacity.load.peak) for a larger "
            "limit",
        )
    replicas = sizer.replicas(window.experiments)
    if replicas > sizer.max_replicas:
        return (
            config.key(f"capacity.schedule.{window.name}"),
            _over_max(sizer, window.experiments, replicas),
        )
    return None


def _over_max(sizer: _Sizer, experiments: dict[str, int], replicas: int) -> str:
    nodes = sizer.nodes(replicas)
    listed = ", ".join(f"{count} {shape}" for shape, count in experiments.items())
    return (
        f"{listed} need {replicas} backend replicas on {nodes} nodes, more than the pool's max of "
        f"{sizer.max_nodes} holds ({sizer.max_replicas} replicas): raise the max (nodes.max_nodes: {nodes}) or the "
        "peak load (capacity.load.peak: more room per pod)"
    )


def _overlaps(config: StackConfig, sizer: _Sizer, found: list[Occurrence]) -> tuple[str, str] | None:
    """Windows that run at the same time: together within the pool's max."""
    events = sorted([(o.start, 1, o) for o in found] + [(o.end, 0, o) for o in found], key=lambda e: (e[0], e[1]))
    active: list[Occurrence] = []
    for _, starting, occurrence in events:
        if not starting:
            active.remove(occurrence)
            continue
        active.append(occurrence)
        if len(active) < 2:
            continue
        together = _total(o.window for o in active)
        replicas = sizer.replicas(together)
        if replicas > sizer.max_replicas:
            others = sorted({o.window.name for o in active} - {occurrence.window.name})
            window = occurrence.window
            local = occurrence.start.astimezone(window.once.start.tzinfo if window.once else window.zone())
            return (
                config.key(f"capacity.schedule.{window.name}"),
                f"overlaps {', '.join(others)} (from {local.isoformat(timespec='minutes')}): together "
                + _over_max(sizer, together, replicas),
            )
    return None


def _gap(config: StackConfig, window: Window, start: datetime, end: datetime) -> tuple[str, str] | None:
    """A weekly action whose local time a DST change skips would not run that week: refused."""
    if window.weekly is None:
        return None
    zone = ZoneInfo(window.weekly.timezone)
    for direction in ("up", "down"):
        cron, _, _ = _cron_of(window, direction)
        for day in _dates(start, end, zone):
            if cron.matches(day) and _wall(day, time(cron.hour, cron.minute), zone) is None:
                return (
                    config.key(f"capacity.schedule.{window.name}.weekly"),
                    f"its scale-{direction} at {cron.hour:02d}:{cron.minute:02d} {window.weekly.timezone} does not "
                    f"exist on {day.isoformat()} (a DST change skips it): move the window or its lead/grace minutes",
                )
    # The lead is taken on the wall clock: across a DST change it can be an hour short, and the window would start
    # before its nodes are up.
    for o in occurrences(window, start, end):
        lead = (o.start - o.up).total_seconds() / 60
        if lead < window.lead_minutes:
            day = o.start.astimezone(zone).date()
            return (
                config.key(f"capacity.schedule.{window.name}.lead_minutes"),
                f"on {day.isoformat()} a DST change leaves its scale-up only {lead:g} minutes before the start, not "
                f"{window.lead_minutes}: move the window, or shorten the lead so that it does not span the change",
            )
    return None


def plan_schedule(config: StackConfig, plan: Plan, now: datetime | None = None) -> SchedulePlan | None:
    """The schedule's plan, None without a schedule. A window that does not fit is marked, and the first such is
    the plan's `refusal` (build_plan raises it; `python -m sizing schedule` shows every window first)."""
    windows = config.capacity.schedule
    if not windows:
        return None
    now = (now or clock.now()).astimezone(UTC)
    scaled = formula_workloads(config)
    if len(scaled) != 1:
        raise ConfigError(
            config.key("capacity.schedule"),
            f"needs exactly one workload with sized_by: formula to scale for the windows ({len(scaled)} in this stack)",
        )
    sizer = _Sizer(config, plan, scaled[0])
    # A year ahead, and as far as the furthest one-off window: its own jobs and its overlaps are planned too.
    ends = [w.once.end.astimezone(UTC) + timedelta(days=1) for w in windows if w.once is not None]
    until = max([now + HORIZON, *ends])
    found = {w.name: occurrences(w, now - LOOKBACK, until) for w in windows}
    everything = [o for w in windows for o in found[w.name]]

    reasons: dict[str, tuple[str, str]] = {}
    for window in windows:
        reason = _refusal(config, sizer, window) or _gap(config, window, now, until)
        if reason is not None:
            reasons[window.name] = reason
    if not reasons:
        overlap = _overlaps(config, sizer, [o for o in everything if o.end > now])
        if overlap is not None:
            reasons[overlap[0].rsplit(".", 1)[-1]] = overlap

    actions = [] if reasons else _actions(config, windows, everything, sizer, now, until)
    plans = []
    for window in windows:
        replicas = sizer.replicas(window.experiments) if not _too_big(sizer, window) else sizer.base
        upcoming = [o.start for o in found[window.name] if o.start >= now]
        reason = reasons.get(window.name)
        plans.append(
            WindowPlan(
                name=window.name,
                when=window.describe(),
                experiments=dict(window.experiments),
                memory_mib=sum(sizer.sizes(window.experiments)),
                backend_replicas=replicas,
                nodes=sizer.nodes(replicas),
                placement=sizer.placement(replicas),
                survives_node_loss=sizer.survives_node_loss(replicas),
                next_start=min(upcoming) if upcoming else None,
                fits=reason is None,
                reason=None if reason is None else f"{reason[0]}: {reason[1]}",
            )
        )
    first = next(iter(reasons.values()), None)
    steps = timeline(actions, now, now + timedelta(days=365), sizer.base)
    extra_hours = sum(
        (sizer.nodes(replicas) - plan.nodes.min) * (end - start).total_seconds() / 3600
        for start, end, replicas in steps
    )
    per_month = extra_hours / 12
    unscheduled = plan.cost.monthly_usd
    return SchedulePlan(
        workload=sizer.workload,
        base_replicas=sizer.base,
        room_mib=sizer.room_mib,
        shape_mib=sizer.shape_mib,
        max_nodes=sizer.max_nodes,
        max_replicas=sizer.max_replicas,
        windows=tuple(plans),
        actions=tuple(actions),
        computed_at=now,
        unscheduled_monthly_usd=unscheduled,
        extra_node_hours_month=round(per_month, 2),
        monthly_usd=round(unscheduled + per_month * _extra_node_usd_month(plan) / HOURS_PER_MONTH, 2),
        refusal=None if first is None else ConfigErrorData(key=first[0], problem=first[1]),
    )


def _extra_node_usd_month(plan: Plan) -> float:
    """A node above the minimum: a commitment covers the minimum's nodes only, so the window's are on demand."""
    committed = plan.cost.commitment
    return plan.cost.node_usd_month if committed is None else committed.on_demand_node_usd_month


def _too_big(sizer: _Sizer, window: Window) -> list[str]:
    """The window's shapes one experiment of which does not fit a pod's room."""
    return [shape for shape in window.experiments if sizer.shape_mib[shape] > sizer.room_mib]


def _actions(
    config: StackConfig,
    windows: Iterable[Window],
    everything: list[Occurrence],
    sizer: _Sizer,
    now: datetime,
    until: datetime,
) -> list[ScaleAction]:
    """Each window's up and down actions, each setting the largest replicas its firings over the year need."""

    def provisioned(instant: datetime) -> int:
        # Every occurrence provisioned at the instant (up inclusive, down exclusive): a down at the same minute as
        # another window's up leaves that window's replicas in place, whichever job runs first.
        live = [o.window for o in everything if o.up <= instant < o.down]
        return min(sizer.replicas(_total(live)), sizer.max_replicas)

    actions = []
    for window in windows:
        if window.once is not None and window.once.end.astimezone(UTC) + timedelta(minutes=window.grace_minutes) < now:
            continue  # a one-off window that has passed: nothing to run
        pair = []
        for direction in ("up", "down"):
            cron, zone, year = _cron_of(window, direction)
            draft = ScaleAction(
                name=f"{window.name}-{direction}",
                window=window.name,
                direction=direction,
                schedule=cron.text(),
                time_zone=zone,
                year=year,
                replicas=sizer.base,
            )
            runs = firings(draft, now - LOOKBACK, until) if year is None else firings(draft, now - HORIZON, until)
            usual, exceptions = _by_date([(instant, provisioned(instant)) for instant in runs], sizer.base)
            pair.append(draft.model_copy(update={"replicas": usual, "replicas_on": exceptions}))
        # A window the configured replicas already hold, alone and with any other, needs no job: each of its runs
        # would set what is in force already or less than another window's job keeps.
        if any(action.replicas != sizer.base or action.replicas_on for action in pair):
            actions += pair
    return actions


# A job runs a little after its time (the controller's loop, a retry's back-off; its deadline is 300 s): a run this
# close to midnight UTC may read the next date, so that date's count covers it too.
LATE_RUN = timedelta(minutes=15)


def _by_date(needs: list[tuple[datetime, int]], base: int) -> tuple[int, dict[str, int]]:
    """An action's usual count and its exceptions by UTC date, from what each run needs: each date gets the most
    any run that may read it needs; the usual count is the commonest (the larger on a tie)."""
    by_date: dict[str, int] = {}
    for instant, needed in needs:
        days = {instant.date(), (instant + LATE_RUN).date()}
        for day in days:
            key = day.isoformat()
            by_date[key] = max(by_date.get(key, 0), needed)
    if not by_date:
        return base, {}
    counts: dict[int, int] = {}
    for value in by_date.values():
        counts[value] = counts.get(value, 0) + 1
    usual = max(counts, key=lambda value: (counts[value], value))
    return usual, {day: value for day, value in sorted(by_date.items()) if value != usual}


def timeline(
    actions: Iterable[ScaleAction], start: datetime, end: datetime, base: int
) -> list[tuple[datetime, datetime, int]]:
    """The replicas in force over [start, end) as (from, to, replicas) steps: each the value of the latest action
    that ran (the smallest where several run in the same minute), the configured replicas before any did."""
    actions = list(actions)
    runs: dict[datetime, int] = {}
    for action in actions:
        since = start - (HORIZON if action.year is not None else LOOKBACK)
        for instant in firings(action, since, end):
            value = action.replicas_at(instant)
            runs[instant] = min(runs.get(instant, value), value)
    current, steps, at = base, [], start
    for instant in sorted(runs):
        if instant <= start:
            current = runs[instant]
            continue
        if instant >= end:
            break
        steps.append((at, instant, current))
        at, current = instant, runs[instant]
    steps.append((at, end, current))
    return [(a, b, r) for a, b, r in steps if b > a]


def in_force(schedule: SchedulePlan, windows: Iterable[Window], at: datetime) -> tuple[list[str], int]:
    """The windows whose own time holds `at`, and the backend replicas the actions have set by then."""
    at = at.astimezone(UTC)
    active = [w.name for w in windows if any(o.start <= at < o.end for o in occurrences(w, at - LOOKBACK, at))]
    ((_, _, replicas),) = timeline(schedule.actions, at, at + timedelta(seconds=1), schedule.base_replicas)
    return active, replicas


def schedule_nodes(config: StackConfig, plan: Plan, replicas: int) -> int:
    """The nodes the planner puts `replicas` backend pods (and everything else of the pool) on."""
    return _Sizer(config, plan, formula_workloads(config)[0]).nodes(replicas)
