"""`cluster.maintenance`: the recurring GKE maintenance window a stack may set, and GKE's own limits on it.

Only the config's shape and the limits a window has on its own live here (GKE's documented minimum availability);
what it must stay clear of (the schedule's windows) and the exclusions of the one-off windows are
`sizing.plan.maintenance`'s. The arithmetic is in whole minutes so that both use the same count.

GKE's limits (cloud.google.com/kubernetes-engine/docs/concepts/maintenance-windows-and-exclusions):
- a recurring window's RRULE is evaluated in UTC (its days are UTC days), whatever offset its times are given in;
- it must leave at least 48 hours of maintenance availability in every rolling 32 days, and only contiguous
  availability of at least 4 hours counts;
- a `NO_UPGRADES` exclusion lasts at most 30 days, at most 3 exist at a time, and together with the window they must
  still leave those 48 hours.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from datetime import time

from pydantic import Field, StrictInt, model_validator

from sizing.config.schedule import DAYS, Clock, Day
from sizing.core.errors import PathError
from sizing.core.model import Model

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
# GKE: at least 48 h of maintenance availability in any rolling 32 days, counted in pieces of at least 4 h.
ROLLING_MINUTES = 32 * MINUTES_PER_DAY
MIN_AVAILABLE_MINUTES = 48 * 60
MIN_PIECE_MINUTES = 4 * 60
MIN_DURATION_HOURS = MIN_PIECE_MINUTES // 60


class MaintenanceConfig(Model):
    """A recurring weekly maintenance window in UTC: GKE may upgrade the control plane and the nodes only then."""

    days: tuple[Day, ...] = Field(min_length=1, description="UTC days of the week it opens: mon, tue, … sun")
    start_utc: Clock = Field(description="UTC time it opens on each of those days, HH:MM")
    duration_hours: StrictInt = Field(
        ge=1, le=24, description="hours it stays open (at least 4: GKE counts no shorter availability)"
    )

    @model_validator(mode="after")
    def _gke_can_use_it(self) -> MaintenanceConfig:
        if len(set(self.days)) != len(self.days):
            raise PathError("days", "lists a day twice")
        if self.duration_hours < MIN_DURATION_HOURS:
            raise PathError(
                "duration_hours",
                f"is {self.duration_hours}, but GKE counts only maintenance availability of {MIN_DURATION_HOURS} "
                "hours or more in a row",
            )
        available = min_weekly_available(week_blocks(self.days, self.start_utc, self.duration_hours))
        if available < MIN_AVAILABLE_MINUTES:
            raise PathError(
                "days",
                f"give GKE only {available / 60:g} hours of maintenance in some 32 days and it needs "
                f"{MIN_AVAILABLE_MINUTES // 60}: add days or hours",
            )
        return self


def week_blocks(days: Iterable[Day], start: time, duration_hours: int) -> list[tuple[int, int]]:
    """The window's openings in one week as [start, end) minutes from Monday 00:00 UTC (an end may pass the week)."""
    minute = start.hour * 60 + start.minute
    return sorted(
        (DAYS.index(day) * MINUTES_PER_DAY + minute, DAYS.index(day) * MINUTES_PER_DAY + minute + duration_hours * 60)
        for day in days
    )


def tiled(blocks: Iterable[tuple[int, int]], weeks: int) -> list[tuple[int, int]]:
    """A weekly pattern repeated over `weeks` weeks from minute 0."""
    return sorted(
        (start + w * MINUTES_PER_WEEK, end + w * MINUTES_PER_WEEK) for w in range(weeks) for start, end in blocks
    )


def min_weekly_available(blocks: list[tuple[int, int]]) -> int:
    """The least maintenance time, in minutes, any rolling 32 days of a weekly pattern holds (GKE's count)."""
    # Spans starting anywhere in the second week reach at most 2 weeks + 32 days: seven weeks of pattern hold them.
    return min_available(tiled(blocks, 7), MINUTES_PER_WEEK, 2 * MINUTES_PER_WEEK)[0]


def union(blocks: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Intervals merged where they overlap or touch, sorted."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(blocks):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def min_available(blocks: Iterable[tuple[int, int]], lo: int, hi: int) -> tuple[int, int]:
    """(minutes, start): the least time any span [s, s + 32 days), lo ≤ s ≤ hi, holds of `blocks` in pieces of at
    least 4 hours (a piece the span cuts shorter does not count), and a start where it is that low.

    The count is piecewise linear in s with jumps where a cut piece crosses 4 hours: its minimum is at, or one
    minute beside, a point where a span edge meets a block edge or cuts a piece to exactly 4 hours.
    """
    merged = union(blocks)
    starts = [b[0] for b in merged]
    ends = [b[1] for b in merged]
    candidates = {lo, hi}
    for start, end in merged:
        for edge in (
            start,
            end,
            start - ROLLING_MINUTES,
            end - ROLLING_MINUTES,
            end - MIN_PIECE_MINUTES,
            start + MIN_PIECE_MINUTES - ROLLING_MINUTES,
        ):
            candidates.update(c for c in (edge - 1, edge, edge + 1) if lo <= c <= hi)
    best = None
    for s in sorted(candidates):
        e = s + ROLLING_MINUTES
        total = 0
        for i in range(bisect_right(ends, s), bisect_left(starts, e)):
            piece = min(ends[i], e) - max(starts[i], s)
            if piece >= MIN_PIECE_MINUTES:
                total += piece
        if best is None or total < best[0]:
            best = (total, s)
    assert best is not None
    return best
