"""The stack's planned experiments (`capacity.schedule`): windows, weekly or once, and the experiments each brings.

Only the config's shape and its local checks live here (times, time zones, names); what a window needs and whether
it fits the pool is `sizing.plan.schedule`'s. Every problem of a window is one line keyed by the window's name
(`capacity.schedule.<name>.<field>`), not by its position in the list.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import time
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, StrictInt, ValidationError, model_validator

from sizing.core.errors import PathError, first_problem
from sizing.core.model import Model

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A window's name ends up in two CronJob names (`<workload>-<name>-up`): a DNS label, short enough for both.
WINDOW_NAME = r"^[a-z]([-a-z0-9]{0,28}[a-z0-9])?$"
# A CronJob's name is at most 52 characters: its Jobs are named `<cronjob>-<minutes since the epoch>` (11 more).
CRONJOB_NAME = r"^[a-z0-9]([-a-z0-9]{0,50}[a-z0-9])?$"
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
# Minutes before a window the backend scales up: a node boots in 80-120 s, the autoscaler reacts within a minute or
# two of a pod going Pending, and the new pod pulls its image and passes its readiness probe.
DEFAULT_LEAD_MINUTES = 10
# Minutes after a window the backend keeps its replicas: sessions overrun, and participants leave late.
DEFAULT_GRACE_MINUTES = 15


def _clock(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 (PyYAML) reads an unquoted 14:00 as the number 840; Pulumi's YAML reads the text "14:00". Only a
        # quoted time means the same to both.
        raise ValueError(f"quote the time: '{value // 60:02d}:{value % 60:02d}' (unquoted, YAML reads it as {value})")
    if isinstance(value, str):
        match = _CLOCK.match(value)
        if match is None:
            raise ValueError(f"{value!r} is not a time of day like 14:00 (HH:MM, 24 h)")
        return time(int(match.group(1)), int(match.group(2)))
    return value


def _zone(value: str) -> str:
    # The CronJob controller resolves the same IANA name with Go's copy of the database: names only, no offsets,
    # no "Local" (the controller's own zone is not the lab's).
    # Names the system's zoneinfo folder has but the API server's (Go's) database does not: refused here, not by
    # `pulumi up` halfway through.
    if value in ("", "Local", "localtime", "Factory", "posixrules") or value.startswith(("+", "-", "posix/", "right/")):
        raise ValueError(f"{value!r} is not an IANA time zone name like Europe/Berlin")
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (an IANA name like Europe/Berlin)") from None
    return value


Clock = Annotated[time, BeforeValidator(_clock)]
TimeZone = Annotated[str, AfterValidator(_zone)]


class Weekly(Model):
    """A window that recurs every week on the given days, in local time of its time zone (DST included)."""

    days: tuple[Day, ...] = Field(min_length=1, description="days of the week: mon, tue, wed, thu, fri, sat, sun")
    start: Clock = Field(description="local start, HH:MM")
    end: Clock = Field(description="local end, HH:MM, later the same day")
    timezone: TimeZone = Field(description="IANA time zone of start and end, e.g. Europe/Berlin")

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Weekly:
        if len(set(self.days)) != len(self.days):
            raise PathError("days", "lists a day twice")
        if self.end <= self.start:
            raise PathError(
                "end", f"{self.end:%H:%M} is not after start {self.start:%H:%M} (a window ends the day it starts)"
            )
        return self


class Once(Model):
    """A window that happens once, between two instants with their UTC offsets."""

    start: AwareDatetime = Field(description="start, ISO 8601 with offset, e.g. 2026-12-03T09:00:00+01:00")
    end: AwareDatetime = Field(description="end, ISO 8601 with offset")

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Once:
        for name in ("start", "end"):
            if not 2000 <= getattr(self, name).year <= 2999:
                raise PathError(name, f"{getattr(self, name).isoformat()} is outside the years 2000-2999")
        if self.end <= self.start:
            raise PathError("end", f"{self.end.isoformat()} is not after start {self.start.isoformat()}")
        return self


class Window(Model):
    """Experiments planned for a window: the backend scales for them `lead_minutes` before it starts."""

    name: str = Field(pattern=WINDOW_NAME, description="window name (a DNS label of up to 30 characters)")
    weekly: Weekly | None = Field(None, description="a weekly window (give weekly or once)")
    once: Once | None = Field(None, description="a one-off window (give weekly or once)")
    experiments: dict[str, StrictInt] = Field(
        min_length=1, description="concurrent experiments by shape (capacity.shapes)"
    )
    lead_minutes: StrictInt = Field(
        DEFAULT_LEAD_MINUTES, ge=0, le=720, description="minutes before the start the backend scales up"
    )
    grace_minutes: StrictInt = Field(
        DEFAULT_GRACE_MINUTES, ge=0, le=720, description="minutes after the end the backend keeps its replicas"
    )

    @model_validator(mode="after")
    def _one_kind_and_real_counts(self) -> Window:
        if (self.weekly is None) == (self.once is None):
            raise PathError("weekly", "give exactly one of weekly or once")
        for shape, count in self.experiments.items():
            if count < 1:
                raise PathError(f"experiments.{shape}", f"must be 1 or more, got {count}")
        return self

    def zone(self) -> zoneinfo.ZoneInfo:
        """The zone its times are in (a once window: the start's own offset, only for display)."""
        return zoneinfo.ZoneInfo(self.weekly.timezone if self.weekly else "Etc/UTC")

    def describe(self) -> str:
        """When, for people: `tue 14:00-16:00 Europe/Berlin` or `2026-12-03T09:00:00+01:00 → …`."""
        if self.weekly is not None:
            w = self.weekly
            return f"{','.join(w.days)} {w.start:%H:%M}-{w.end:%H:%M} {w.timezone}"
        assert self.once is not None
        return f"{self.once.start.isoformat()} → {self.once.end.isoformat()}"


def _window_error(index: int, raw: Any, err: ValidationError) -> PathError:
    """The first problem of window `index` as a path under its name (its index when it has no usable name)."""
    name = raw.get("name") if isinstance(raw, dict) else None
    label = name if isinstance(name, str) and re.match(WINDOW_NAME, name) else str(index)
    path, problem = first_problem(err)
    return PathError(".".join(filter(None, [label, path])), problem)


def parse_schedule(value: Any) -> Any:
    """`capacity.schedule` as validated windows, each problem keyed by the window's name; names unique."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ValueError("must be a list of windows")
    windows: list[Window] = []
    for index, raw in enumerate(value):
        if isinstance(raw, Window):
            windows.append(raw)
            continue
        try:
            windows.append(Window.model_validate(raw))
        except ValidationError as err:
            raise _window_error(index, raw, err) from None
    seen: set[str] = set()
    for window in windows:
        if window.name in seen:
            raise PathError(window.name, "two windows share this name")
        seen.add(window.name)
    return tuple(windows)


Schedule = Annotated[tuple[Window, ...], BeforeValidator(parse_schedule)]
