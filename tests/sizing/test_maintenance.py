"""`cluster.maintenance` and the maintenance plan: the default window clear of every weekly window in every week of
the year (both sides of each DST change, checked here by an independent walk over the local calendar), a configured
window that meets one refused in one line, GKE's limits (4-hour pieces, 48 hours in any 32 days, 30-day and 3
NO_UPGRADES exclusions), what happens with more one-off windows than exclusions, the renamed key, and the plan's
warnings.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from sizing.config.loader import load_stack, parse_stack_config
from sizing.config.maintenance import MINUTES_PER_WEEK, min_weekly_available, week_blocks
from sizing.config.schedule import DAYS
from sizing.core.errors import ConfigError
from sizing.plan.build import build_plan
from sizing.plan.maintenance import UPGRADE_OVERRUN_MINUTES, plan_maintenance
from sizing.plan.types import RecurringWindow
from tests.sizing.stacks import ROOT, assert_bad_input, run_cli

NS = "hyperstudy-infra"
WINTER = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SUMMER = datetime(2027, 7, 1, 12, 0, tzinfo=UTC)


def weekly(name: str, days: list[str], start: str, end: str, tz: str, **extra: Any) -> dict[str, Any]:
    weekly = {"days": days, "start": start, "end": end, "timezone": tz}
    return {"name": name, "weekly": weekly, "experiments": {"small": 1}, **extra}


def one_off(name: str, start: datetime, hours: float = 3, **extra: Any) -> dict[str, Any]:
    end = start + timedelta(hours=hours)
    once = {"start": start.isoformat(), "end": end.isoformat()}
    return {"name": name, "once": once, "experiments": {"small": 1}, **extra}


@pytest.fixture
def stack(parse, prod_values):
    """`stack(*windows, maintenance=None, **cluster)`: prod's config with these windows and cluster keys."""

    def make(*windows: dict[str, Any], maintenance: dict[str, Any] | None = None, **cluster: Any):
        prod_values["capacity"]["schedule"] = list(windows)
        if maintenance is not None:
            prod_values["cluster"]["maintenance"] = maintenance
        prod_values["cluster"].update(cluster)
        return parse(prod_values)

    return make


def busy_local(raw: dict[str, Any], start: date, days: int) -> list[tuple[datetime, datetime]]:
    """A weekly window's occurrences, from an upgrade's overrun before its scale-up to its scale-down, in UTC: walked
    over the local calendar with zoneinfo, independently of sizing.plan.schedule."""
    w = raw["weekly"]
    zone = ZoneInfo(w["timezone"])
    lead = timedelta(minutes=raw.get("lead_minutes", 10) + UPGRADE_OVERRUN_MINUTES)
    grace = timedelta(minutes=raw.get("grace_minutes", 15))
    found = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        if DAYS[day.weekday()] in w["days"]:
            begin = datetime.combine(day, time.fromisoformat(w["start"]), tzinfo=zone).astimezone(UTC)
            end = datetime.combine(day, time.fromisoformat(w["end"]), tzinfo=zone).astimezone(UTC)
            found.append((begin - lead, end + grace))
    return found


def openings(window: RecurringWindow, start: date, days: int) -> list[tuple[datetime, datetime]]:
    """The maintenance window's openings, read back from its RRULE fields as GKE does (BYDAY in UTC)."""
    byday = window.recurrence.removeprefix("FREQ=WEEKLY;BYDAY=").split(",")
    first = datetime.fromisoformat(window.start_time.replace("Z", "+00:00"))
    length = datetime.fromisoformat(window.end_time.replace("Z", "+00:00")) - first
    found = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        if ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][day.weekday()] in byday:
            opening = datetime.combine(day, first.time(), tzinfo=UTC)
            found.append((opening, opening + length))
    return found


def assert_clear(window: RecurringWindow, raws: list[dict[str, Any]], since: datetime) -> None:
    start = since.date()
    busy = [span for raw in raws for span in busy_local(raw, start, 400)]
    for a, b in openings(window, start, 400):
        for c, d in busy:
            assert not (a < d and c < b), f"maintenance {a}–{b} meets a window's provisioned time {c}–{d}"


# --- The default window. -----------------------------------------------------------------------------------------


def test_prod_gets_six_hours_every_day_from_six_utc(prod_optimized):
    m = prod_optimized.maintenance
    assert m.managed and m.window.source == "default"
    assert (m.window.recurrence, m.window.start_time, m.window.end_time) == (
        "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU",
        "2024-01-01T06:00:00Z",
        "2024-01-01T12:00:00Z",
    )
    assert m.exclusions == () and m.uncovered == () and m.warnings == ()
    # 31 whole openings in the worst 32 days (a span starting after 08:00 cuts that day's to under 4 hours).
    assert m.min_available_hours_32d == 31 * 6


@pytest.mark.parametrize(
    ("raw", "dropped"),
    [
        # Berlin, Sunday 05:30-07:00: 04:30-06:00 UTC in winter, down at 06:15 → meets 06:00 UTC; in summer not.
        (weekly("early", ["sun"], "05:30", "07:00", "Europe/Berlin"), ["sun"]),
        # Berlin, Friday 14:30-16:00: from an hour before its scale-up, 11:20 UTC in summer (meets the slot), 12:20
        # in winter (clear).
        (weekly("afternoon", ["fri"], "14:30", "16:00", "Europe/Berlin"), ["fri"]),
        # Sydney's DST runs the other way (October to April): Monday 16:00-16:30 is 06:00 UTC in its winter (meets),
        # 05:00 in its summer (down at 05:45, clear).
        (weekly("sydney", ["mon"], "16:00", "16:30", "Australia/Sydney"), ["mon"]),
        # New York, Tuesday 00:30-01:00: 05:30 UTC in winter (down 06:15, meets), 04:30 in summer (clear).
        (weekly("night", ["tue"], "00:30", "01:00", "America/New_York"), ["tue"]),
        # Kolkata has no DST; evenings there are clear of the slot.
        (weekly("evening", ["wed"], "19:00", "21:00", "Asia/Kolkata"), []),
    ],
)
@pytest.mark.parametrize("now", [WINTER, SUMMER], ids=["winter", "summer"])
def test_the_default_leaves_out_the_days_a_weekly_window_meets_in_any_week(stack, raw, dropped, now):
    window = plan_maintenance(stack(raw), now).window
    assert window.source == "default" and window.start_utc == time(6, 0)
    assert [day for day in DAYS if day not in window.days] == dropped
    assert_clear(window, [raw], now)


def test_the_default_is_the_same_whatever_the_season(stack):
    raws = [
        weekly("a", ["mon", "fri"], "14:30", "16:00", "Europe/Berlin"),
        weekly("b", ["sun"], "05:30", "07:00", "Europe/Berlin"),
    ]
    config = stack(*raws)
    windows = {plan_maintenance(config, now).window for now in (WINTER, SUMMER, WINTER + timedelta(days=100))}
    assert len(windows) == 1


def test_the_default_moves_later_when_the_weekly_windows_take_its_hours_on_too_many_days(stack):
    # Every day 05:00-12:00 New York: 10:00-17:00 UTC in winter, 09:00-16:00 in summer; busy from 07:50 UTC.
    raw = weekly("all-day", list(DAYS), "05:00", "12:00", "America/New_York")
    window = plan_maintenance(stack(raw), WINTER).window
    assert window.days == DAYS and window.duration_hours == 6
    # The first whole hour from 06:00 whose 6 hours miss 07:50-17:15 UTC in every week: 18:00 UTC (17:15 down).
    assert window.start_utc == time(18, 0)
    assert_clear(window, [raw], WINTER)


@settings(settings.get_profile("sizing"), max_examples=25)
@given(
    start=st.integers(0, 23 * 60 // 15).map(lambda q: time(q * 15 // 60, q * 15 % 60)),
    length=st.integers(1, 8).map(lambda q: timedelta(minutes=q * 15)),
    days=st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Sao_Paulo", "Asia/Tokyo"]),
)
def test_the_default_is_clear_of_any_weekly_window_over_the_year(_prod_values_pristine, start, length, days, zone):
    end = (datetime.combine(date(2026, 1, 1), start) + length).time()
    if end <= start:
        return
    raw = weekly("lab", days, f"{start:%H:%M}", f"{end:%H:%M}", zone)
    values = {**_prod_values_pristine, "capacity": {**_prod_values_pristine["capacity"], "schedule": [raw]}}
    try:
        # The whole plan: a window whose scale time a DST change skips is the schedule's refusal, not a case here.
        window = build_plan(parse_stack_config(values, NS), "test", now=WINTER).maintenance.window
    except ConfigError:
        return
    assert_clear(window, [raw], WINTER)
    assert min_weekly_available(window.blocks()) >= 48 * 60


# --- A configured window. ----------------------------------------------------------------------------------------


def test_a_configured_window_is_used_as_given_in_utc(stack):
    m = plan_maintenance(stack(maintenance={"days": ["sun", "sat"], "start_utc": "22:00", "duration_hours": 8}), WINTER)
    assert m.window.source == "config"
    # Monday-first days; DTSTART on the first of them, the end the next day.
    assert m.window.recurrence == "FREQ=WEEKLY;BYDAY=SA,SU"
    assert (m.window.start_time, m.window.end_time) == ("2024-01-06T22:00:00Z", "2024-01-07T06:00:00Z")


@pytest.mark.parametrize(
    ("maintenance", "meets"),
    [
        # Berlin Wednesday 09:00-11:30 is busy 06:50-09:45 UTC in summer and 07:50-10:45 in winter.
        ({"days": ["wed", "sat", "sun"], "start_utc": "02:00", "duration_hours": 5}, "05:50"),
        # Only the winter weeks meet this one: summer ends 09:45, winter 10:45.
        ({"days": ["wed", "sat"], "start_utc": "10:00", "duration_hours": 6}, "06:50"),
        # Across midnight into Wednesday.
        ({"days": ["tue", "sat"], "start_utc": "22:00", "duration_hours": 8}, "05:50"),
    ],
)
def test_a_configured_window_meeting_a_weekly_window_is_one_line_exit_2(write_stack, prod_values, maintenance, meets):
    prod_values["capacity"]["schedule"] = [weekly("lab", ["wed"], "09:00", "11:30", "Europe/Berlin")]
    prod_values["cluster"]["maintenance"] = maintenance
    result = run_cli("--project-dir", str(write_stack(prod_values)), "plan", "--stack", "test")
    line = assert_bad_input(result, f"{NS}:cluster.maintenance:")
    assert "capacity.schedule.lab" in line and f"wed {meets}" in line


def test_a_configured_window_clear_of_every_week_is_accepted(stack):
    raw = weekly("lab", ["wed"], "09:00", "11:30", "Europe/Berlin")
    maintenance = {"days": ["wed", "sat"], "start_utc": "11:00", "duration_hours": 6}
    m = plan_maintenance(stack(raw, maintenance=maintenance), WINTER)
    assert m.window.days == ("wed", "sat")
    assert_clear(m.window, [raw], WINTER)


# --- GKE's limits. -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maintenance", "key", "problem"),
    [
        ({"days": ["sat", "sun"], "start_utc": "01:00", "duration_hours": 3}, "duration_hours", "4 hours or more"),
        ({"days": ["sun"], "start_utc": "01:00", "duration_hours": 8}, "days", "only 32 hours"),
        ({"days": ["sat", "sun"], "start_utc": "01:00", "duration_hours": 25}, "duration_hours", "24"),
        ({"days": ["sat", "sat"], "start_utc": "01:00", "duration_hours": 8}, "days", "twice"),
        ({"days": ["saturday"], "start_utc": "01:00", "duration_hours": 8}, "days.0", ""),
        ({"days": ["sat"], "start_utc": 60, "duration_hours": 8}, "start_utc", "quote the time"),
        ({"days": ["sat"], "start_utc": "1am", "duration_hours": 8}, "start_utc", "HH:MM"),
        ({"days": ["sat"], "start_utc": "01:00"}, "duration_hours", "required"),
        ({"days": ["sat"], "start_utc": "01:00", "duration_hours": 8, "timezone": "UTC"}, "timezone", "unknown key"),
    ],
)
def test_a_window_gke_would_refuse_is_one_line(write_stack, prod_values, maintenance, key, problem):
    prod_values["cluster"]["maintenance"] = maintenance
    result = run_cli("--project-dir", str(write_stack(prod_values)), "plan", "--stack", "test")
    line = assert_bad_input(result, f"{NS}:cluster.maintenance.{key}:")
    assert problem in line


def test_48_hours_in_32_days_counts_only_pieces_of_4_hours():
    # Saturday 12 hours: 4 whole Saturdays in any 32 days, 48 hours: just enough.
    assert min_weekly_available(week_blocks(["sat"], time(0, 0), 12)) == 48 * 60
    # 4 hours on 3 days: a span starting a minute into an opening cuts it under 4 hours, and it does not count; the
    # 13 after it do (32 days from Monday 00:01 end on Friday 00:01, a minute into the 15th).
    assert min_weekly_available(week_blocks(["mon", "wed", "fri"], time(0, 0), 4)) == 13 * 4 * 60


def _brute_min(blocks: list[tuple[int, int]]) -> int:
    """Every start minute of a week, every opening of seven weeks: the count GKE documents, by brute force."""
    tiled = [(s + w * MINUTES_PER_WEEK, e + w * MINUTES_PER_WEEK) for w in range(7) for s, e in blocks]
    least = None
    for start in range(MINUTES_PER_WEEK, 2 * MINUTES_PER_WEEK):
        end = start + 32 * 24 * 60
        total = sum(p for s, e in tiled if (p := min(e, end) - max(s, start)) >= 240)
        least = total if least is None else min(least, total)
    return least


@settings(settings.get_profile("sizing"), max_examples=8)
@given(
    days=st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True),
    start=st.integers(0, 24 * 60 - 1),
    hours=st.integers(4, 13),
)
def test_the_32_day_count_equals_a_brute_force_over_every_minute(days, start, hours):
    blocks = week_blocks(days, time(start // 60, start % 60), hours)
    assert min_weekly_available(blocks) == _brute_min(blocks)


def test_a_one_off_window_longer_than_an_exclusion_may_be_is_refused(stack):
    config = stack(one_off("summer-school", datetime(2027, 7, 1, 8, tzinfo=UTC), hours=30 * 24))
    with pytest.raises(ConfigError) as err:
        build_plan(config, "test", now=WINTER, strict=False)
    assert err.value.key == f"{NS}:capacity.schedule.summer-school.once"
    assert "at most 30" in err.value.problem


def test_exclusions_that_leave_gke_under_48_hours_are_refused(stack):
    # 12 hours every Saturday is exactly 48 in the worst 32 days; an exclusion over one Saturday takes 12 of them.
    saturday = datetime(2027, 3, 6, 6, tzinfo=UTC)
    assert saturday.weekday() == 5
    fair = one_off("fair", saturday, hours=12)
    config = stack(fair, maintenance={"days": ["sat"], "start_utc": "06:00", "duration_hours": 12})
    with pytest.raises(ConfigError) as err:
        plan_maintenance(config, WINTER)
    assert err.value.key == f"{NS}:cluster.maintenance"
    assert "fair" in err.value.problem and "leaves GKE 36 hours" in err.value.problem


# --- One-off windows: exclusions. --------------------------------------------------------------------------------


def test_a_one_off_window_gets_a_no_upgrades_exclusion_from_an_hour_before_its_scale_up(stack):
    start = datetime(2027, 6, 5, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    m = plan_maintenance(stack(one_off("open-day", start, lead_minutes=20, grace_minutes=30)), WINTER)
    (exclusion,) = m.exclusions
    assert (exclusion.name, exclusion.scope) == ("open-day", "NO_UPGRADES")
    assert exclusion.start_time == "2027-06-05T06:40:00Z"  # 08:00 UTC − 20 minutes' lead − the hour
    assert exclusion.end_time == "2027-06-05T11:30:00Z"  # 11:00 UTC + 30 minutes' grace


def test_a_passed_one_off_window_has_no_exclusion(stack):
    config = stack(one_off("past", WINTER - timedelta(days=2)), one_off("next", WINTER + timedelta(days=2)))
    assert [e.name for e in plan_maintenance(config, WINTER).exclusions] == ["next"]


def test_neighbours_share_an_exclusion_only_where_no_maintenance_falls_between(stack):
    day = datetime(2027, 3, 10, tzinfo=UTC)
    config = stack(
        one_off("morning", day.replace(hour=13)),  # 11:50-16:15 UTC
        one_off("evening", day.replace(hour=18)),  # 16:50-21:15: the window (06:00-12:00) is closed between
        one_off("next-day", day.replace(hour=13) + timedelta(days=1)),  # 06:00-12:00 opens between: its own
    )
    m = plan_maintenance(config, WINTER)
    assert [(e.name, e.windows) for e in m.exclusions] == [
        ("morning + evening", ("morning", "evening")),
        ("next-day", ("next-day",)),
    ]
    assert (m.exclusions[0].start_time, m.exclusions[0].end_time) == ("2027-03-10T11:50:00Z", "2027-03-10T21:15:00Z")


def test_more_one_off_windows_than_gke_holds_the_nearest_three_are_set_and_the_plan_says_when_to_run_again(stack):
    starts = [datetime(2027, month, 5, 13, tzinfo=UTC) for month in (5, 3, 7, 4, 6)]
    config = stack(*(one_off(f"fair-{s.month}", s) for s in starts))
    plan = build_plan(config, "test", now=WINTER)
    m = plan.maintenance
    assert [e.name for e in m.exclusions] == ["fair-3", "fair-4", "fair-5"]
    assert m.uncovered == ("fair-6", "fair-7")
    (warning,) = [w for w in plan.warnings if w.startswith(f"{NS}:capacity.schedule:")]
    assert "fair-6, fair-7 get no maintenance exclusion yet" in warning
    assert "after 2027-03-05T16:15:00Z" in warning and "before 2027-06-05T11:50:00Z" in warning
    # Following the advice: once fair-3's exclusion has passed, a run sets fair-6's.
    later = build_plan(config, "test", now=datetime(2027, 3, 5, 16, 16, tzinfo=UTC)).maintenance
    assert [e.name for e in later.exclusions] == ["fair-4", "fair-5", "fair-6"] and later.uncovered == ("fair-7",)


def test_three_one_off_windows_need_no_warning(stack):
    config = stack(*(one_off(f"fair-{m}", datetime(2027, m, 5, 13, tzinfo=UTC)) for m in (3, 4, 5)))
    plan = build_plan(config, "test", now=WINTER)
    assert len(plan.maintenance.exclusions) == 3 and not [w for w in plan.warnings if "exclusion" in w]


# --- The renamed key and the warnings. ---------------------------------------------------------------------------


def test_the_old_authorized_networks_key_is_refused_as_renamed(write_stack, prod_values):
    prod_values["cluster"]["authorized_networks"] = ["203.0.113.0/24"]
    result = run_cli("--project-dir", str(write_stack(prod_values)), "plan", "--stack", "test")
    line = assert_bad_input(result, f"{NS}:cluster.authorized_networks:")
    assert "renamed to cluster.master_authorized_networks" in line


def test_an_empty_master_authorized_networks_on_a_created_cluster_is_warned_about(stack):
    key = f"{NS}:cluster.master_authorized_networks:"
    assert [w for w in stack().warnings() if w.startswith(key)] != []
    assert [w for w in stack(master_authorized_networks=["203.0.113.0/24"]).warnings() if w.startswith(key)] == []


def test_a_bad_master_authorized_network_is_one_line(parse, prod_values):
    prod_values["cluster"]["master_authorized_networks"] = ["203.0.113.0"]
    with pytest.raises(ConfigError) as err:
        parse(prod_values)
    assert err.value.key == f"{NS}:cluster.master_authorized_networks.0"


@pytest.fixture
def referenced(prod_values):
    prod_values["cluster"] |= {"create": False, "kubeconfig_context": "gke_shared"}
    return prod_values


def test_a_referenced_cluster_names_what_its_owner_must_keep_clear(parse, referenced):
    referenced["capacity"]["schedule"] = [
        weekly("lab", ["wed"], "09:00", "11:30", "Europe/Berlin"),
        one_off("open-day", datetime(2027, 6, 5, 10, tzinfo=ZoneInfo("Europe/Berlin")), lead_minutes=20),
    ]
    plan = build_plan(parse(referenced), "test", now=WINTER)
    assert plan.maintenance.managed is False and plan.maintenance.window is None
    (warning,) = [w for w in plan.warnings if w.startswith(f"{NS}:cluster.create:")]
    # Both UTC spans of the Berlin lab (summer, winter), and the one-off window's exclusion span.
    assert "lab (wed 05:50-09:45 UTC and wed 06:50-10:45 UTC)" in warning
    assert "NO_UPGRADES maintenance exclusions for open-day (2027-06-05T06:40:00Z to 2027-06-05T11:15:00Z)" in warning
    # No control-plane warning: a referenced cluster's endpoint is not the program's.
    assert not [w for w in plan.warnings if "master_authorized_networks" in w]


def test_a_referenced_cluster_without_windows_has_no_maintenance_warning(parse, referenced):
    plan = build_plan(parse(referenced), "test", now=WINTER)
    assert not [w for w in plan.warnings if "maintenance" in w]


def test_a_referenced_cluster_refuses_a_maintenance_window(parse, referenced):
    referenced["cluster"]["maintenance"] = {"days": ["sat", "sun"], "start_utc": "01:00", "duration_hours": 8}
    with pytest.raises(ConfigError) as err:
        parse(referenced)
    assert err.value.key == f"{NS}:cluster.maintenance" and "owner" in err.value.problem


def test_staging_plan_warns_its_owner_of_the_lab_and_the_open_day():
    result = run_cli("plan", "--stack", "staging")
    assert result.returncode == 0, result.stderr
    assert "maintenance: the cluster's owner sets it" in result.stdout
    assert "keep its maintenance window clear of teaching-lab (wed 05:50-09:45 UTC and wed 06:50-10:45 UTC)" in (
        " ".join(result.stdout.split())
    )
    plan = build_plan(load_stack("staging", ROOT), "staging", now=WINTER)
    assert "exclusions for open-day (2027-06-05T06:40:00Z to 2027-06-05T11:15:00Z)" in plan.warnings[-1]


# --- What `plan` shows. -------------------------------------------------------------------------------------------


def test_plan_shows_the_window_and_the_exclusions(write_stack, prod_values):
    start = (datetime.now(UTC) + timedelta(days=40)).replace(hour=13, minute=0, second=0, microsecond=0)
    prod_values["capacity"]["schedule"] = [one_off("fair", start)]
    project = write_stack(prod_values)
    data = json.loads(run_cli("--project-dir", str(project), "plan", "--stack", "test", "--json").stdout)
    m = data["maintenance"]
    assert m["window"]["recurrence"] == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU" and m["window"]["source"] == "default"
    begin = start - timedelta(minutes=10 + UPGRADE_OVERRUN_MINUTES)
    (exclusion,) = m["exclusions"]
    assert exclusion == {
        "name": "fair",
        "windows": ["fair"],
        "scope": "NO_UPGRADES",
        "start_time": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_time": (start + timedelta(hours=3, minutes=15)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    text = run_cli("--project-dir", str(project), "plan", "--stack", "test").stdout
    assert "maintenance: GKE may upgrade every day 06:00-12:00 UTC (the default" in text
    assert f"no upgrades (exclusion fair): {exclusion['start_time']} → {exclusion['end_time']}" in text
