"""When GKE may upgrade the stack's cluster: the recurring maintenance window and the maintenance exclusions of the
one-off windows, as the program sets them on a cluster it creates (`components.cluster`), or as the owner of a
referenced cluster must.

On the REGULAR channel with auto-upgrade, GKE upgrades the control plane and the nodes whenever a window is open. A
node upgrade drains backend pods holding live experiments, and a zonal control plane does not answer for minutes, so
a scaling CronJob due then is skipped or fails. So no upgrade may start in a planned window's provisioned time:

- the recurring window (`cluster.maintenance`, or chosen here when omitted) stays clear of every weekly window's
  provisioned time, from `UPGRADE_OVERRUN_MINUTES` before its scale-up (GKE pauses an upgrade at the window's end,
  but the control plane or the node it is upgrading finishes first) to its scale-down, in UTC in every week of the
  year ahead (a window in a zone with DST sits an hour apart in UTC half the year);
- each one-off window still to come gets a `NO_UPGRADES` exclusion over the same span, in UTC. GKE holds at most 3
  at a time: neighbours with no maintenance time between them share one, the nearest 3 are set, and the plan warns
  which windows are left and when to run `pulumi up` again (an exclusion that has passed is dropped, so a later
  run makes room).

Everything is in UTC because GKE evaluates the window's RRULE in UTC. The default window depends on the config only
(the weekly windows' offsets over the year ahead); the exclusions depend on the plan's `now`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from sizing.config.maintenance import (
    MIN_AVAILABLE_MINUTES,
    MINUTES_PER_DAY,
    MINUTES_PER_WEEK,
    ROLLING_MINUTES,
    min_available,
    min_weekly_available,
    union,
    week_blocks,
)
from sizing.config.schedule import DAYS, Window
from sizing.core import clock
from sizing.core.errors import ConfigError
from sizing.plan.types import (
    ANCHOR,
    EXCLUSION_SCOPE,
    Exclusion,
    MaintenancePlan,
    RecurringWindow,
    rfc3339,
    week_minutes,
)

if TYPE_CHECKING:
    from sizing.config.stack import StackConfig

# An upgrade already under way when the maintenance window closes (or an exclusion opens) is finished, not stopped:
# a zonal control plane's takes minutes, one node's surge and drain up to the pods' termination grace. An hour
# before a scale-up covers both, so the scale-up finds an answering control plane and the window a drained pool.
UPGRADE_OVERRUN_MINUTES = 60
# Omitted `cluster.maintenance`: 6 hours a day from 06:00 UTC (midnight to 6 in US Central time, where prod runs),
# on every day that is clear of the weekly windows; else the next whole hour that leaves GKE its 48 hours.
DEFAULT_START_UTC = time(6, 0)
DEFAULT_DURATION_HOURS = 6
# GKE: a NO_UPGRADES exclusion spans at most 30 days, and at most 3 such exist at a time.
MAX_EXCLUSION = timedelta(days=30)
MAX_EXCLUSIONS = 3


def _clock(minute_of_week: int) -> str:
    minute = minute_of_week % MINUTES_PER_WEEK
    return f"{DAYS[minute // MINUTES_PER_DAY]} {minute % MINUTES_PER_DAY // 60:02d}:{minute % 60:02d}"


def _span(start: int, end: int) -> str:
    """A span of week minutes for people: `wed 05:50-09:45 UTC`, or `sun 22:00-mon 04:00 UTC` across a midnight."""
    first, last = _clock(start), _clock(end)
    if first.split()[0] == last.split()[0] and end - start < MINUTES_PER_DAY:
        return f"{first}-{last.split()[1]} UTC"
    return f"{first}-{last} UTC"


def plan_maintenance(config: StackConfig, now: datetime | None = None) -> MaintenancePlan | None:
    """The stack's maintenance plan (None without a cluster config), or a ConfigError naming the key to change."""
    cluster = config.cluster
    if cluster is None:
        return None
    now = (now or clock.now()).astimezone(UTC)
    windows = config.capacity.schedule
    busy = _weekly_busy([w for w in windows if w.weekly is not None], now)
    one_offs = _one_off_spans([w for w in windows if w.once is not None], now)
    if not cluster.create:
        return MaintenancePlan(
            managed=False,
            window=None,
            exclusions=(),
            uncovered=(),
            min_available_hours_32d=None,
            computed_at=now,
            warnings=_owner_warning(config, busy, one_offs),
        )
    if cluster.maintenance is not None:
        m = cluster.maintenance
        days = tuple(sorted(m.days, key=DAYS.index))
        window = RecurringWindow(days=days, start_utc=m.start_utc, duration_hours=m.duration_hours, source="config")
        _refuse_meeting(config, window, busy)
    else:
        window = _default_window(config, busy)
    for name, start, end in one_offs:
        if end - start > MAX_EXCLUSION:
            raise ConfigError(
                config.key(f"capacity.schedule.{name}.once"),
                f"spans {(end - start) / timedelta(days=1):.1f} days from an hour before its scale-up to its "
                f"scale-down, and GKE's NO_UPGRADES maintenance exclusion that keeps upgrades out of it covers at most "
                f"{MAX_EXCLUSION.days}: split it into windows of at most that",
            )
    merged = _merged(window, one_offs)
    exclusions, left = merged[:MAX_EXCLUSIONS], merged[MAX_EXCLUSIONS:]
    available = _available_with(config, window, exclusions, now)
    warnings = []
    if left:
        names = [name for e in left for name in e.windows]
        holders = ", ".join(e.name for e in exclusions)
        warnings.append(
            f"{config.key('capacity.schedule')}: {', '.join(names)} {'gets' if len(names) == 1 else 'get'} no "
            f"maintenance exclusion yet (GKE holds {MAX_EXCLUSIONS} at a time and {holders} hold them), so GKE may "
            f"upgrade the cluster during {'it' if len(names) == 1 else 'them'}: run `pulumi up` again after "
            f"{exclusions[0].end_time} (when {exclusions[0].name}'s has passed) and before {left[0].start_time}"
        )
    return MaintenancePlan(
        managed=True,
        window=window,
        exclusions=tuple(exclusions),
        uncovered=tuple(name for e in left for name in e.windows),
        min_available_hours_32d=round(available / 60, 2),
        computed_at=now,
        warnings=tuple(warnings),
    )


# --- What the windows occupy, in UTC. ----------------------------------------------------------------------------


def _weekly_busy(windows: Iterable[Window], now: datetime) -> dict[str, list[tuple[int, int]]]:
    """Per weekly window, the distinct spans of the week (minutes from Monday 00:00 UTC) from an upgrade's overrun
    before its scale-up to its scale-down, over every occurrence of the year ahead: both sides of each DST change."""
    windows = list(windows)
    if not windows:
        return {}
    # Only a stack with weekly windows pays for the schedule's models.
    from sizing.plan.schedule import HORIZON, occurrences

    busy: dict[str, list[tuple[int, int]]] = {}
    overrun = timedelta(minutes=UPGRADE_OVERRUN_MINUTES)
    for window in windows:
        spans = set()
        for o in occurrences(window, now, now + HORIZON):
            start = week_minutes(o.up - overrun) % MINUTES_PER_WEEK
            spans.add((start, start + week_minutes(o.down) - week_minutes(o.up - overrun)))
        busy[window.name] = sorted(spans)
    return busy


def _one_off_spans(windows: Iterable[Window], now: datetime) -> list[tuple[str, datetime, datetime]]:
    """Each one-off window still to come (or under way): (name, an upgrade's overrun before its scale-up, its
    scale-down), in UTC, soonest first."""
    spans = []
    for window in windows:
        once = window.once
        assert once is not None
        start = once.start.astimezone(UTC) - timedelta(minutes=window.lead_minutes + UPGRADE_OVERRUN_MINUTES)
        end = once.end.astimezone(UTC) + timedelta(minutes=window.grace_minutes)
        if end > now:
            spans.append((window.name, start, end))
    return sorted(spans, key=lambda span: (span[1], span[2], span[0]))


def _meets(blocks: Iterable[tuple[int, int]], spans: Iterable[tuple[int, int]]) -> tuple[int, int, int, int] | None:
    """The first (block, span) pair of two weekly patterns that overlap on the circular week, or None."""
    for a, b in blocks:
        for c, d in spans:
            for shift in (-MINUTES_PER_WEEK, 0, MINUTES_PER_WEEK):
                if a < d + shift and c + shift < b:
                    return a, b, c, d
    return None


def _refuse_meeting(config: StackConfig, window: RecurringWindow, busy: dict[str, list[tuple[int, int]]]) -> None:
    for name, spans in busy.items():
        hit = _meets(window.blocks(), spans)
        if hit is not None:
            a, b, c, d = hit
            raise ConfigError(
                config.key("cluster.maintenance"),
                f"opens {_span(a, b)}, which meets capacity.schedule.{name} ({_span(c, d)}: from an hour before its "
                f"scale-up, for an upgrade that overruns the window, to its scale-down), so GKE could upgrade "
                f"during it: move the window or leave out {DAYS[a // MINUTES_PER_DAY % 7]}",
            )


def _default_window(config: StackConfig, busy: dict[str, list[tuple[int, int]]]) -> RecurringWindow:
    """DEFAULT_DURATION_HOURS a day from the first whole hour, DEFAULT_START_UTC onwards, whose days clear of every
    weekly window give GKE its 48 hours in 32 days; on those days."""
    spans = [span for spans in busy.values() for span in spans]
    for offset in range(24):
        start = time((DEFAULT_START_UTC.hour + offset) % 24, DEFAULT_START_UTC.minute)
        days = tuple(day for day in DAYS if _meets(week_blocks([day], start, DEFAULT_DURATION_HOURS), spans) is None)
        if days and min_weekly_available(week_blocks(days, start, DEFAULT_DURATION_HOURS)) >= MIN_AVAILABLE_MINUTES:
            return RecurringWindow(days=days, start_utc=start, duration_hours=DEFAULT_DURATION_HOURS, source="default")
    raise ConfigError(
        config.key("cluster.maintenance"),
        f"the weekly windows leave no {DEFAULT_DURATION_HOURS}-hour daily slot free on enough days to give GKE its "
        f"{MIN_AVAILABLE_MINUTES // 60} hours of maintenance in 32 days: set a window (days, start_utc, "
        "duration_hours) clear of them",
    )


def _merged(window: RecurringWindow, spans: list[tuple[str, datetime, datetime]]) -> list[Exclusion]:
    """One exclusion per one-off window, neighbours merged where the maintenance window never opens between them
    (nothing is lost) and the merged one stays within GKE's 30 days."""
    merged: list[Exclusion] = []
    for name, start, end in spans:
        last = merged[-1] if merged else None
        if (
            last is not None
            and max(last.end, end) - last.start <= MAX_EXCLUSION
            and (start <= last.end or not window.opens_within(last.end, start))
        ):
            names = (*last.windows, name)
            merged[-1] = Exclusion(name=" + ".join(names), windows=names, start=last.start, end=max(last.end, end))
        else:
            merged.append(Exclusion(name=name, windows=(name,), start=start, end=end))
    return merged


def _available_with(config: StackConfig, window: RecurringWindow, exclusions: list[Exclusion], now: datetime) -> int:
    """The least maintenance minutes any rolling 32 days from `now` leaves GKE with the exclusions; a ConfigError
    when that is under GKE's 48 hours."""
    least = min_weekly_available(window.blocks())
    if not exclusions:
        return least
    rolling = timedelta(minutes=ROLLING_MINUTES)
    holes = [(week_minutes(e.start), week_minutes(e.end)) for e in exclusions]
    for exclusion in exclusions:
        # Only spans that meet an exclusion can hold less than the window's own weekly minimum.
        lo, hi = max(now, exclusion.start - rolling), exclusion.end
        if hi < lo:
            continue
        openings = window.occurrences(lo, hi + rolling)
        pieces = _without(openings, holes)
        minutes, start = min_available(pieces, week_minutes(lo), week_minutes(hi))
        if minutes < least:
            least = minutes
        if minutes < MIN_AVAILABLE_MINUTES:
            names = ", ".join(e.name for e in exclusions)
            first = ANCHOR + timedelta(minutes=start)
            raise ConfigError(
                config.key("cluster.maintenance"),
                f"{window.describe()} with the maintenance exclusions of {names} leaves GKE {minutes / 60:g} hours of "
                f"maintenance in the 32 days from {rfc3339(first)}, and GKE needs {MIN_AVAILABLE_MINUTES // 60}: "
                "open the window longer or on more days, or shorten the one-off windows",
            )
    return least


def _without(blocks: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`blocks` less every hole."""
    pieces = []
    holes = union(holes)
    for start, end in blocks:
        cursor = start
        for h_start, h_end in holes:
            if h_end <= cursor or h_start >= end:
                continue
            if h_start > cursor:
                pieces.append((cursor, h_start))
            cursor = max(cursor, h_end)
        if cursor < end:
            pieces.append((cursor, end))
    return pieces


def _owner_warning(
    config: StackConfig, busy: dict[str, list[tuple[int, int]]], one_offs: list[tuple[str, datetime, datetime]]
) -> tuple[str, ...]:
    """A referenced cluster's maintenance is its owner's: what they must keep upgrades out of, if anything."""
    if not busy and not one_offs:
        return ()
    parts = []
    if busy:
        weekly = "; ".join(
            f"{name} ({' and '.join(_span(s, e) for s, e in spans)})" for name, spans in busy.items() if spans
        )
        parts.append(f"keep its maintenance window clear of {weekly}")
    if one_offs:
        once = "; ".join(f"{name} ({rfc3339(s)} to {rfc3339(e)})" for name, s, e in one_offs)
        parts.append(f"add {EXCLUSION_SCOPE} maintenance exclusions for {once}")
    return (
        f"{config.key('cluster.create')}: false, so the cluster's maintenance policy is its owner's, who must "
        f"{' and '.join(parts)}, or GKE may upgrade a node or the control plane during a window",
    )
