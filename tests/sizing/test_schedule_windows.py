"""`capacity.schedule` and `python -m sizing schedule`: the config's refusals, window arithmetic across DST changes
and week boundaries, replicas and nodes per window, the refusals of windows the pool cannot hold, and a minute-by-
minute simulation of the scaling CronJobs, evaluated here independently of the model (cron fields matched on the
local wall clock of each job's time zone, as the CronJob controller does).

With prod's sizes a backend pod has 295 MiB of room beside its typical load (⌊0.9 × 512⌋ − 165): one medium
experiment (200 MiB), four small ones (65 MiB), no large one (375 MiB). Prod spreads the backend by skew, so the
scale-up's replicas join the two nodes the pool runs (3/2 for five); the pool's max is 3 nodes. With `spread:
distinct` every replica needs a node of its own: the minimum is 3 (two replicas apart and a node to lose), the max 4.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sizing.core.errors import ConfigError
from sizing.plan.build import build_plan
from sizing.plan.schedule import Cron, firings, in_force, occurrences, pods_for, schedule_nodes
from tests.sizing.stacks import assert_bad_input, run_cli

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def window(name: str, when: dict[str, Any], experiments: dict[str, int], **extra: Any) -> dict[str, Any]:
    return {"name": name, **when, "experiments": experiments, **extra}


def week(days: list[str], start: str, end: str, tz: str = "Europe/Berlin") -> dict[str, Any]:
    return {"weekly": {"days": days, "start": start, "end": end, "timezone": tz}}


def once(start: str, end: str) -> dict[str, Any]:
    return {"once": {"start": start, "end": end}}


@pytest.fixture
def scheduled(parse, prod_values):
    """`scheduled(*windows, spread=...)`: prod's config with these windows (and the backend's spread)."""

    def make(*windows: dict[str, Any], spread: str = "skew"):
        prod_values["capacity"]["schedule"] = list(windows)
        prod_values["workloads"]["backend"]["spread"] = spread
        return parse(prod_values)

    return make


def plan_of(config, now: datetime = NOW, strict: bool = False):
    return build_plan(config, "test", now=now, strict=strict)


# --- The config: one line per problem, keyed by the window's name. ----------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key", "problem"),
    [
        (window("lab", week(["tue"], "14:00", "16:00"), {"huge": 1}), "schedule.lab.experiments.huge", "unknown"),
        (window("lab", week(["tue"], "16:00", "14:00"), {"medium": 1}), "schedule.lab.weekly.end", "not after"),
        (window("lab", week(["tue"], "14:00", "14:00"), {"medium": 1}), "schedule.lab.weekly.end", "not after"),
        (window("lab", week(["tue"], "14:00", "16:00", "Mars/Olympus"), {"medium": 1}), "schedule.lab.weekly.timezone",
         "unknown time zone"),
        (window("lab", week(["tue"], "14:00", "16:00", "+01:00"), {"medium": 1}), "schedule.lab.weekly.timezone",
         "IANA"),
        (window("lab", week(["tue"], "2pm", "16:00"), {"medium": 1}), "schedule.lab.weekly.start", "HH:MM"),
        (window("lab", week(["tuesday"], "14:00", "16:00"), {"medium": 1}), "schedule.lab.weekly.days", ""),
        (window("lab", week([], "14:00", "16:00"), {"medium": 1}), "schedule.lab.weekly.days", ""),
        (window("day", once("2026-12-03T12:00:00+01:00", "2026-12-03T09:00:00+01:00"), {"small": 1}),
         "schedule.day.once.end", "not after"),
        (window("day", once("2026-12-03T09:00:00", "2026-12-03T12:00:00"), {"small": 1}), "schedule.day.once.start",
         "timezone"),
        (window("lab", {**week(["tue"], "14:00", "16:00"), **once("2026-12-03T09:00:00Z", "2026-12-03T10:00:00Z")},
                {"medium": 1}), "schedule.lab.weekly", "exactly one"),
        (window("lab", {}, {"medium": 1}), "schedule.lab.weekly", "exactly one"),
        (window("lab", week(["tue"], "14:00", "16:00"), {}), "schedule.lab.experiments", ""),
        (window("lab", week(["tue"], "14:00", "16:00"), {"medium": 0}), "schedule.lab.experiments.medium", "1 or more"),
        (window("Lab_1", week(["tue"], "14:00", "16:00"), {"medium": 1}), "schedule.0.name", ""),
        # Unquoted 14:00 is the number 840 to PyYAML but the text "14:00" to Pulumi: refused, not read as 00:14.
        (window("lab", week(["tue"], 840, "16:00"), {"medium": 1}), "schedule.lab.weekly.start",
         "quote the time: '14:00'"),
        (window("lab", week(["tue"], "14:00", "16:00", "posix/Europe/Berlin"), {"medium": 1}),
         "schedule.lab.weekly.timezone", "IANA"),
        (window("lab", week(["tue"], "14:00", "16:00", "localtime"), {"medium": 1}), "schedule.lab.weekly.timezone",
         "IANA"),
        (window("day", once("9999-12-31T10:00:00Z", "9999-12-31T12:00:00Z"), {"small": 1}), "schedule.day.once.start",
         "2000-2999"),
        (window("lab", week(["tue"], "14:00", "16:00"), {"medium": 1}, lead_minutes=True), "schedule.lab.lead_minutes",
         "integer"),
        (window("lab", week(["tue"], "14:00", "16:00"), {"medium": True}), "schedule.lab.experiments.medium",
         "integer"),
    ],
)  # fmt: skip
def test_a_bad_window_is_one_line_naming_it(write_stack, prod_values, raw, key, problem):
    prod_values["capacity"]["schedule"] = [raw]
    result = run_cli("--project-dir", str(write_stack(prod_values)), "plan", "--stack", "test")
    line = assert_bad_input(result, f"hyperstudy-infra:capacity.{key}")
    assert problem.lower() in line.lower()


def test_two_windows_of_one_name_are_refused(write_stack, prod_values):
    lab = window("lab", week(["tue"], "14:00", "16:00"), {"medium": 1})
    prod_values["capacity"]["schedule"] = [lab, lab]
    result = run_cli("--project-dir", str(write_stack(prod_values)), "plan", "--stack", "test")
    assert "two windows share this name" in assert_bad_input(result, "capacity.schedule.lab")


# --- Window arithmetic: DST and week boundaries. ------------------------------------------------------------------


def _lab(**extra: Any):
    from sizing.config.schedule import Window

    return Window.model_validate(window("lab", week(["tue"], "14:00", "16:00"), {"medium": 3}, **extra))


def test_a_weekly_window_keeps_its_local_time_across_dst():
    """14:00 in Berlin is 13:00 UTC in winter and 12:00 UTC in summer: the window follows the wall clock."""
    lab = _lab()
    winter = occurrences(lab, datetime(2027, 3, 22, tzinfo=UTC), datetime(2027, 3, 24, tzinfo=UTC))
    summer = occurrences(lab, datetime(2027, 3, 29, tzinfo=UTC), datetime(2027, 3, 31, tzinfo=UTC))
    assert [(o.start.hour, o.end.hour) for o in winter] == [(13, 15)]
    assert [(o.start.hour, o.end.hour) for o in summer] == [(12, 14)]
    # Provisioned: 10 minutes' lead and 15 minutes' grace on the wall clock.
    (o,) = summer
    assert (o.start - o.up, o.down - o.end) == (timedelta(minutes=10), timedelta(minutes=15))
    autumn = occurrences(lab, datetime(2026, 10, 26, tzinfo=UTC), datetime(2026, 10, 28, tzinfo=UTC))
    assert [o.start.hour for o in autumn] == [13]


def test_the_cron_of_each_action_is_local_and_shifts_its_day_across_midnight():
    from sizing.config.schedule import Window
    from sizing.plan.schedule import _cron_of

    lab = _lab()
    assert _cron_of(lab, "up") == (Cron(50, 13, frozenset({2})), "Europe/Berlin", None)
    assert _cron_of(lab, "down") == (Cron(15, 16, frozenset({2})), "Europe/Berlin", None)
    # Monday 00:05 with 10 minutes' lead scales up on Sunday (cron day 0) at 23:55: across the week's boundary.
    early = Window.model_validate(window("early", week(["mon", "sun"], "00:05", "23:50"), {"medium": 1}))
    cron, _, _ = _cron_of(early, "up")
    assert (cron.hour, cron.minute, cron.weekdays) == (23, 55, frozenset({0, 6}))
    cron, _, _ = _cron_of(early, "down")  # 23:50 + 15 minutes: 00:05 of the next day (Sunday → Monday)
    assert (cron.hour, cron.minute, cron.weekdays) == (0, 5, frozenset({1, 2}))
    assert cron.text() == "5 0 * * 1,2"


def test_a_one_off_window_runs_in_utc_in_its_year_only():
    from sizing.config.schedule import Window
    from sizing.plan.schedule import _cron_of
    from sizing.plan.types import ScaleAction

    day = Window.model_validate(
        window("day", once("2027-01-01T00:05:00+01:00", "2027-01-01T03:00:00+01:00"), {"small": 1})
    )
    cron, zone, year = _cron_of(day, "up")
    # 00:05 at +01:00 is 23:05 UTC on New Year's Eve; 10 minutes' lead: 22:55, of 2026.
    assert (cron.text(), zone, year) == ("55 22 31 12 *", "Etc/UTC", 2026)
    action = ScaleAction(
        name="day-up", window="day", direction="up", schedule=cron.text(), time_zone=zone, year=year, replicas=3
    )
    assert firings(action, datetime(2026, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC)) == [
        datetime(2026, 12, 31, 22, 55, tzinfo=UTC)
    ]


def test_firings_skip_a_dst_gap_and_repeat_a_fold():
    """The controller's rules on the wall clock: 02:30 does not exist in Berlin on 2027-03-28, and happens twice on
    2026-10-25."""
    from sizing.plan.types import ScaleAction

    action = ScaleAction(
        name="x-up", window="x", direction="up", schedule="30 2 * * 0", time_zone="Europe/Berlin", year=None,
        replicas=3,
    )  # fmt: skip
    spring = firings(action, datetime(2027, 3, 27, tzinfo=UTC), datetime(2027, 3, 29, tzinfo=UTC))
    autumn = firings(action, datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 26, tzinfo=UTC))
    assert spring == []
    assert autumn == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)]


def test_a_scale_time_a_dst_change_skips_is_refused(scheduled):
    """Sunday 02:40 with 10 minutes' lead scales up at 02:30, which Berlin skips on the last Sunday of March."""
    config = scheduled(window("night", week(["sun"], "02:40", "04:00"), {"medium": 3}))
    with pytest.raises(ConfigError) as err:
        plan_of(config, strict=True)
    assert err.value.key == "hyperstudy-infra:capacity.schedule.night.weekly"
    assert "02:30 Europe/Berlin does not exist on 2027-03-28" in err.value.problem


def test_a_dst_change_that_cuts_the_lead_is_refused(scheduled):
    """Sunday 03:00 Berlin with 65 minutes' lead scales up at 01:55 by the clock: on the spring-forward Sunday that
    is 5 minutes before the start."""
    config = scheduled(window("night", week(["sun"], "03:00", "05:00"), {"medium": 3}, lead_minutes=65))
    with pytest.raises(ConfigError) as err:
        plan_of(config, strict=True)
    assert err.value.key == "hyperstudy-infra:capacity.schedule.night.lead_minutes"
    assert "on 2027-03-28 a DST change leaves its scale-up only 5 minutes before the start" in err.value.problem


def test_a_one_off_window_more_than_a_year_ahead_is_planned(scheduled):
    config = scheduled(window("far", once("2028-06-05T10:00:00+02:00", "2028-06-05T13:00:00+02:00"), {"medium": 3}))
    schedule = plan_of(config).schedule
    assert schedule.windows[0].next_start == datetime(2028, 6, 5, 8, 0, tzinfo=UTC)
    assert [(a.name, a.year, a.replicas) for a in schedule.actions] == [("far-up", 2028, 3), ("far-down", 2028, 2)]


def test_a_weekly_job_meeting_a_one_off_window_differs_on_that_date_only(scheduled):
    """The lab's scale-down on 2027-03-03 falls inside the open day: that run keeps three replicas, every other
    Wednesday's sets two (not three every week, which would keep a node for nothing)."""
    config = scheduled(
        window("lab", week(["wed"], "09:00", "11:30"), {"medium": 3}),
        window("special", once("2027-03-03T11:30:00+01:00", "2027-03-03T13:30:00+01:00"), {"medium": 3}),
    )
    down = {a.name: a for a in plan_of(config).schedule.actions}["lab-down"]
    assert (down.replicas, down.replicas_on) == (2, {"2027-03-03": 3})
    assert down.replicas_at(datetime(2027, 3, 3, 10, 45, tzinfo=UTC)) == 3
    assert down.replicas_at(datetime(2027, 3, 10, 10, 45, tzinfo=UTC)) == 2


def test_a_run_close_to_midnight_utc_covers_the_next_date_too():
    """A run may start minutes late: one at 23:55 UTC can read the next date, so that date's count covers it."""
    from sizing.plan.schedule import _by_date

    late = datetime(2027, 3, 3, 23, 55, tzinfo=UTC)
    usual, exceptions = _by_date([(late, 3), (late + timedelta(days=7), 2), (late + timedelta(days=14), 2)], 2)
    assert (usual, exceptions) == (2, {"2027-03-03": 3, "2027-03-04": 3})


# --- Sizes: replicas, nodes, refusals. -----------------------------------------------------------------------------


def test_pods_for_packs_experiments_whole():
    assert pods_for([], 295) == 0
    assert pods_for([200, 200, 200], 295) == 3  # one medium a pod
    assert pods_for([65] * 4, 295) == 1  # four small ones share a pod (260 ≤ 295)
    assert pods_for([65] * 5, 295) == 2
    assert pods_for([200, 65, 200, 65], 295) == 2  # a small one beside each medium one


def test_window_replicas_and_nodes(scheduled):
    config = scheduled(
        window("three", week(["tue"], "14:00", "16:00"), {"medium": 3}),
        window("small", week(["wed"], "14:00", "16:00"), {"small": 4}),
    )
    schedule = plan_of(config).schedule
    three, small = schedule.windows
    assert (schedule.room_mib, schedule.shape_mib["medium"], schedule.base_replicas) == (295, 200, 2)
    # The third replica joins the two nodes the pool has: no node added, none paid for.
    assert (three.memory_mib, three.backend_replicas, three.nodes, three.fits) == (600, 3, 2, True)
    assert sorted(sum(p.startswith("backend-") for p in node) for node in three.placement) == [1, 2]
    # Four small experiments fit the configured two pods: no job for that window.
    assert (small.memory_mib, small.backend_replicas, small.nodes) == (260, 2, 2)
    assert [a.name for a in schedule.actions] == ["three-up", "three-down"]
    assert [a.replicas for a in schedule.actions] == [3, 2]
    assert three.next_start == datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


def test_five_medium_experiments_fit_the_current_pool_under_skew_and_need_five_nodes_when_distinct(scheduled):
    """The issue's case: a weekly window of five medium experiments on prod. Skew places the five backends 3/2 on
    the two nodes the pool already has (kube-scheduler puts each new pod on a node with the fewest, and both have
    room), so the autoscaler adds nothing and the window costs nothing extra. Required anti-affinity needs five."""
    lab = window("lab", week(["tue"], "14:00", "16:00"), {"medium": 5})
    skew = plan_of(scheduled(lab), strict=True)
    (window_plan,) = skew.schedule.windows
    assert (window_plan.backend_replicas, window_plan.nodes, window_plan.fits) == (5, 2, True)
    assert skew.nodes.min == 2 and skew.schedule.extra_node_hours_month == 0.0
    assert skew.schedule.monthly_usd == skew.cost.monthly_usd
    assert sorted(sum(p.startswith("backend-") for p in node) for node in window_plan.placement) == [2, 3]
    # Five backends' CPU does not fit the node left after a loss: the window says so (the autoscaler adds a node
    # for what goes Pending then).
    assert not window_plan.survives_node_loss
    distinct = plan_of(scheduled(lab, spread="distinct"))
    (window_plan,) = distinct.schedule.windows
    assert (window_plan.backend_replicas, window_plan.nodes, window_plan.fits) == (5, 5, False)
    assert all(sum(p.startswith("backend-") for p in node) == 1 for node in window_plan.placement)


def test_a_large_experiment_does_not_fit_beside_the_typical_load(scheduled):
    config = scheduled(window("big", week(["tue"], "14:00", "16:00"), {"large": 1}))
    with pytest.raises(ConfigError) as err:
        plan_of(config, strict=True)
    assert err.value.key == "hyperstudy-infra:capacity.schedule.big.experiments.large"
    assert "375 MiB" in err.value.problem and "room of 295 MiB" in err.value.problem
    assert "capacity.load.peak" in err.value.problem
    (big,) = plan_of(config).schedule.windows
    assert not big.fits and big.reason.startswith(err.value.key)


def test_a_window_beyond_the_pools_max_says_what_would_make_it_fit(scheduled):
    config = scheduled(window("tuesday-lab", week(["tue"], "14:00", "16:00"), {"medium": 5}), spread="distinct")
    with pytest.raises(ConfigError) as err:
        plan_of(config, strict=True)
    assert err.value.key == "hyperstudy-infra:capacity.schedule.tuesday-lab"
    assert "5 medium need 5 backend replicas on 5 nodes, more than the pool's max of 4" in err.value.problem
    assert "nodes.max_nodes: 5" in err.value.problem and "capacity.load.peak" in err.value.problem


def test_following_the_refusals_advice_makes_the_window_fit(scheduled, prod_values, parse):
    """The line says nodes.max_nodes: 5; with it the pool's max is 5 and the window gets its five replicas."""
    prod_values["nodes"]["max_nodes"] = 5
    config = scheduled(window("tuesday-lab", week(["tue"], "14:00", "16:00"), {"medium": 5}), spread="distinct")
    plan = plan_of(config, strict=True)
    assert plan.nodes.max == 5
    (lab,) = plan.schedule.windows
    assert (lab.backend_replicas, lab.nodes, lab.fits) == (5, 5, True)
    assert [a.replicas for a in plan.schedule.actions] == [5, 2]


def test_overlapping_windows_that_fit_alone_but_not_together_are_refused(scheduled):
    config = scheduled(
        window("lab-a", week(["tue"], "14:00", "16:00"), {"medium": 3}),
        window("lab-b", week(["tue"], "15:00", "17:00"), {"medium": 2}),
        spread="distinct",
    )
    with pytest.raises(ConfigError) as err:
        plan_of(config, strict=True)
    assert err.value.key == "hyperstudy-infra:capacity.schedule.lab-b"
    assert "overlaps lab-a" in err.value.problem and "5 medium need 5 backend replicas" in err.value.problem


def test_windows_in_two_time_zones_overlap_only_while_their_dst_differs(scheduled):
    """Berlin 14:00-15:00 and New York 08:00-09:00 are the same hour, except from the US change (second Sunday of
    March) to the EU one (last Sunday): then New York's is an hour earlier and they do not meet. Together they need
    five replicas, one per node: refused, since they overlap most of the year."""
    config = scheduled(
        window("berlin", week(["tue"], "14:00", "15:00"), {"medium": 3}),
        window("new-york", week(["tue"], "08:00", "09:00", "America/New_York"), {"medium": 2}),
        spread="distinct",
    )
    with pytest.raises(ConfigError, match="overlaps"):
        plan_of(config, strict=True)
    apart = occurrences(
        config.capacity.schedule[1], datetime(2027, 3, 16, tzinfo=UTC), datetime(2027, 3, 17, tzinfo=UTC)
    )
    berlin = occurrences(
        config.capacity.schedule[0], datetime(2027, 3, 16, tzinfo=UTC), datetime(2027, 3, 17, tzinfo=UTC)
    )
    assert apart[0].end <= berlin[0].start  # 12:00-13:00 UTC against 13:00-14:00 UTC


def test_a_passed_one_off_window_has_no_next_start_and_no_job(scheduled):
    config = scheduled(window("gone", once("2026-01-10T10:00:00+01:00", "2026-01-10T12:00:00+01:00"), {"medium": 3}))
    schedule = plan_of(config).schedule
    assert schedule.windows[0].next_start is None and schedule.actions == ()


def test_cost_adds_the_windows_extra_node_hours(scheduled):
    """Distinct backends on prod's 3-node minimum: four replicas need one extra node for 2 h 25 min (10 min lead,
    2 h, 15 min grace) each Tuesday: ×52 or 53 a year, ÷12. Under skew the same window adds none."""
    lab = window("four", week(["tue"], "14:00", "16:00"), {"medium": 4})
    plan = plan_of(scheduled(lab, spread="distinct"))
    schedule = plan.schedule
    assert (plan.nodes.min, schedule.windows[0].nodes) == (3, 4)
    tuesdays = sum(1 for d in range(365) if (NOW + timedelta(days=d)).weekday() == 1)
    hours = tuesdays * (145 / 60) / 12
    assert schedule.extra_node_hours_month == pytest.approx(hours, abs=0.3)
    price = plan.cost.node_usd_month
    assert schedule.unscheduled_monthly_usd == plan.cost.monthly_usd
    assert schedule.monthly_usd == pytest.approx(plan.cost.monthly_usd + hours * price / 730, abs=0.1)
    skew = plan_of(scheduled(lab)).schedule
    assert (skew.windows[0].nodes, skew.extra_node_hours_month) == (2, 0.0)


# --- The simulated timeline: every minute, by the cron rules, against what each window needs. ---------------------


def _matches(cron: str, zone: str, year: int | None, minute: datetime) -> bool:
    """The controller's test of one minute: the cron fields against the local wall clock of `zone`."""
    fields = cron.split()
    local = minute.astimezone(ZoneInfo(zone))
    if year is not None and local.year != year:
        return False

    def ok(field: str, value: int) -> bool:
        return field == "*" or value in {int(v) for v in field.split(",")}

    return (
        ok(fields[0], local.minute)
        and ok(fields[1], local.hour)
        and ok(fields[2], local.day)
        and ok(fields[3], local.month)
        and ok(fields[4], local.isoweekday() % 7)
    )


def simulate(config, plan, start: datetime, days: int) -> list[tuple[datetime, int, int, bool]]:
    """(minute, replicas in force, replicas needed, provisioned) for every minute, the jobs replayed from a week
    before. Needed: the experiments of the windows whose own time holds the minute, whole, in pods; provisioned:
    some window is between its up and down times."""
    schedule = plan.schedule
    end = start + timedelta(days=days)
    spans = [o for w in config.capacity.schedule for o in occurrences(w, start, end)]
    replicas = schedule.base_replicas
    minute = start - timedelta(days=8)
    rows = []
    while minute < end:
        # A run's count: its UTC date's exception (the job's script looks it up the same way), else the usual one.
        fired = [
            a.replicas_on.get(minute.date().isoformat(), a.replicas)
            for a in schedule.actions
            if _matches(a.schedule, a.time_zone, a.year, minute)
        ]
        if fired:
            replicas = min(fired)  # jobs of one minute run in any order: the worst case
        if minute >= start:
            active = [o.window for o in spans if o.start <= minute < o.end]
            sizes = [schedule.shape_mib[s] for w in active for s, n in w.experiments.items() for _ in range(n)]
            needed = max(schedule.base_replicas, pods_for(sizes, schedule.room_mib))
            provisioned = any(o.up <= minute < o.down for o in spans)
            rows.append((minute, replicas, needed, provisioned))
        minute += timedelta(minutes=1)
    return rows


SIMULATED = [
    pytest.param(
        [
            window("lab", week(["tue", "thu"], "14:00", "16:00"), {"medium": 3}),
            window("late", week(["sun"], "23:30", "23:55"), {"medium": 3}, grace_minutes=30),
            window("early", week(["mon"], "00:05", "01:00"), {"small": 5}, lead_minutes=20),
        ],
        datetime(2027, 3, 24, tzinfo=UTC),
        id="berlin-spring-forward-and-week-boundary",
    ),
    pytest.param(
        [
            window("a", week(["wed"], "09:00", "11:30"), {"medium": 2}),
            window("b", week(["wed"], "05:00", "06:00", "America/New_York"), {"medium": 1, "small": 1}),
            window("day", once("2026-10-28T10:00:00+01:00", "2026-10-28T11:00:00+01:00"), {"small": 1}),
        ],
        datetime(2026, 10, 22, tzinfo=UTC),
        id="two-zones-across-the-autumn-changes",
    ),
    pytest.param(
        # A one-off window over the weekly lab's scale-down: only that Wednesday's down keeps three replicas.
        [
            window("lab", week(["wed"], "09:00", "11:30"), {"medium": 3}),
            window("special", once("2027-03-03T11:30:00+01:00", "2027-03-03T13:30:00+01:00"), {"medium": 3}),
        ],
        datetime(2027, 2, 28, tzinfo=UTC),
        id="one-off-over-a-weekly-scale-down",
    ),
    pytest.param(
        # Berlin 15:00-16:00 and New York 09:30-10:30 overlap by half an hour, at other UTC times as each zone
        # changes to summer time (the US two weeks before Europe).
        [
            window("berlin", week(["tue"], "15:00", "16:00"), {"medium": 2}),
            window("new-york", week(["tue"], "09:30", "10:30", "America/New_York"), {"medium": 1}),
        ],
        datetime(2027, 3, 8, tzinfo=UTC),
        id="two-zones-across-the-spring-changes",
    ),
]


@pytest.mark.parametrize(("windows", "start"), SIMULATED)
def test_no_minute_of_a_window_is_without_its_capacity(scheduled, windows, start):
    config = scheduled(*windows)
    plan = plan_of(config, now=start, strict=True)
    rows = simulate(config, plan, start, days=14)
    short = [(m.isoformat(), have, need) for m, have, need, _ in rows if have < need]
    assert short == []
    # And back to the configured replicas once every window (with its grace) is over: not scaled up for good.
    base = plan.schedule.base_replicas
    assert {have for _, have, _, _ in rows} > {base}
    assert {have for _, have, _, provisioned in rows if not provisioned} == {base}
    # Every step holds within the pool's max, by the same planner.
    assert max(schedule_nodes(config, plan, have) for have in {have for _, have, _, _ in rows}) <= plan.nodes.max


def test_staging_schedule_replayed_over_its_open_day_week():
    """The repository's own staging windows, the week of its one-off open day (and a weekly teaching lab)."""
    from sizing.config.loader import load_stack
    from tests.sizing.stacks import ROOT

    config = load_stack("staging", ROOT)
    start = datetime(2027, 5, 31, tzinfo=UTC)
    plan = build_plan(config, "staging", now=start)
    rows = simulate(config, plan, start, days=7)
    assert [(m, have, need) for m, have, need, _ in rows if have < need] == []
    scaled = {m.date().isoformat() for m, have, _, _ in rows if have > plan.schedule.base_replicas}
    assert scaled == {"2027-06-02", "2027-06-05"}  # Wednesday's lab, Saturday's open day


def test_the_simulation_catches_a_late_scale_up(scheduled):
    """The guard: the same replay with the up job moved past the window's start finds the uncovered minutes."""
    config = scheduled(window("lab", week(["tue"], "14:00", "16:00"), {"medium": 3}))
    plan = plan_of(config, now=datetime(2026, 12, 1, tzinfo=UTC), strict=True)
    up = plan.schedule.actions[0]
    late = up.model_copy(update={"schedule": "10 14 * * 2"})
    broken = plan.model_copy(
        update={"schedule": plan.schedule.model_copy(update={"actions": (late, *plan.schedule.actions[1:])})}
    )
    rows = simulate(config, broken, datetime(2026, 12, 1, tzinfo=UTC), days=7)
    assert len([1 for _, have, need, _ in rows if have < need]) == 10


# --- --at and the CLI. ---------------------------------------------------------------------------------------------


def test_in_force_inside_during_lead_and_outside(scheduled):
    config = scheduled(window("lab", week(["tue"], "14:00", "16:00"), {"medium": 3}))
    schedule = plan_of(config).schedule
    windows = config.capacity.schedule
    at = datetime(2026, 12, 1, 14, 30, tzinfo=BERLIN)
    assert in_force(schedule, windows, at) == (["lab"], 3)
    assert in_force(schedule, windows, at.replace(hour=13, minute=55)) == ([], 3)  # the lead: ready before
    assert in_force(schedule, windows, at.replace(hour=16, minute=10)) == ([], 3)  # the grace
    assert in_force(schedule, windows, at.replace(hour=16, minute=20)) == ([], 2)
    assert in_force(schedule, windows, at.replace(hour=13, minute=40)) == ([], 2)


def test_cli_schedule_json_keys_and_at(write_stack, prod_values):
    prod_values["capacity"]["schedule"] = [
        window("lab", week(["tue"], "14:00", "16:00"), {"medium": 3}),
        window("day", once("2027-06-05T10:00:00+02:00", "2027-06-05T13:00:00+02:00"), {"small": 4, "medium": 1}),
    ]
    project = write_stack(prod_values)
    inside = run_cli("--project-dir", str(project), "schedule", "--stack", "test", "--json", "--at",
                     "2026-12-01T14:30:00+01:00")  # fmt: skip
    assert inside.returncode == 0, inside.stderr
    data = json.loads(inside.stdout)
    assert {"windows", "monthly_usd", "at", "active_windows", "backend_replicas", "nodes"} <= set(data)
    lab, day = data["windows"]
    assert set(lab) >= {"name", "experiments", "memory_mib", "backend_replicas", "nodes", "next_start", "fits"}
    assert (lab["name"], lab["backend_replicas"], lab["nodes"], lab["fits"]) == ("lab", 3, 2, True)
    assert sorted(sum(p.startswith("backend-") for p in node) for node in lab["placement"]) == [1, 2]
    assert lab["next_start"] == "2026-12-08T13:00:00+00:00"  # as of --at: today's has started, next is a week on
    assert (day["memory_mib"], day["backend_replicas"]) == (460, 2)
    assert (data["active_windows"], data["backend_replicas"], data["nodes"]) == (["lab"], 3, 2)
    outside = run_cli("--project-dir", str(project), "schedule", "--stack", "test", "--json", "--at",
                      "2026-12-02T10:00:00Z")  # fmt: skip
    data = json.loads(outside.stdout)
    assert (data["active_windows"], data["backend_replicas"], data["nodes"]) == ([], 2, 2)
    # Three backends fit the two nodes: the windows add no node-hour.
    assert (data["extra_node_hours_month"], data["monthly_usd"]) == (0.0, data["unscheduled_monthly_usd"])


def test_cli_schedule_answers_for_a_window_that_does_not_fit_and_plan_refuses_it(write_stack, prod_values):
    """`schedule` answers (fits: false, with the reason) and exits 1; `plan`, like `pulumi preview`, refuses the stack
    with it."""
    prod_values["capacity"]["schedule"] = [
        window("fine", week(["mon"], "10:00", "11:00"), {"medium": 1}),
        window("too-many", week(["tue"], "14:00", "16:00"), {"medium": 5}),
    ]
    prod_values["workloads"]["backend"]["spread"] = "distinct"
    project = write_stack(prod_values)
    result = run_cli("--project-dir", str(project), "schedule", "--stack", "test", "--json")
    assert (result.returncode, result.stderr) == (1, "")
    data = json.loads(result.stdout)
    assert [(w["name"], w["fits"]) for w in data["windows"]] == [("fine", True), ("too-many", False)]
    assert data["actions"] == []
    reason = data["windows"][1]["reason"]
    assert reason.startswith("hyperstudy-infra:capacity.schedule.too-many: ") and "nodes.max_nodes: 5" in reason
    table = run_cli("--project-dir", str(project), "schedule", "--stack", "test")
    assert table.returncode == 1 and f"does not fit: {reason}" in table.stdout
    line = assert_bad_input(run_cli("--project-dir", str(project), "plan", "--stack", "test"), "too-many")
    assert line == f"error: {reason}"


def test_cli_schedule_of_a_stack_without_windows(write_stack, prod_values):
    result = run_cli("--project-dir", str(write_stack(prod_values)), "schedule", "--stack", "test", "--json")
    data = json.loads(result.stdout)
    assert (data["windows"], data["actions"]) == ([], [])
    assert data["monthly_usd"] == data["unscheduled_monthly_usd"]


def test_bad_at_is_one_line():
    assert_bad_input(run_cli("schedule", "--stack", "staging", "--at", "tomorrow"), "--at")


def test_a_stack_without_a_schedule_plans_as_before(prod_optimized):
    assert prod_optimized.schedule is None and "schedule" not in prod_optimized.to_json()
