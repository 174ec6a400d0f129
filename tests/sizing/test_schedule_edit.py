"""`python -m sizing schedule`'s JSON start and end, and `schedule add` / `schedule remove`: the stack file edited as
a round trip (every comment and every other line kept), the new window shown by `schedule`, a window that does not
fit refused with exit 1 and nothing written. In process, on a copy of the staging stack (it has a weekly and a
one-off window and comments around them)."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from sizing.cli.commands import main
from sizing.config.loader import load_stack
from sizing.config.writer import without_window
from tests.sizing.stacks import ROOT

LAB = [
    "--days",
    "tue,thu",
    "--start",
    "14:00",
    "--end",
    "16:00",
    "--timezone",
    "Europe/Berlin",
    "--experiments",
    "medium=2",
    "--experiments",
    "small=1",
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796083200")  # 2026-12-01T00:00:00Z, a Tuesday
    return tmp_path


def cli(capsys, project: Path, *argv: str) -> tuple[int, str, str]:
    code = main(["--project-dir", str(project), *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def comments(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


# --- start and end in ISO 8601 ---------------------------------------------------------------------------------


def test_schedule_json_gives_each_windows_start_and_end(capsys, project: Path) -> None:
    code, out, _ = cli(capsys, project, "schedule", "--stack", "staging", "-o", "json")
    assert code == 0
    windows = {w["name"]: w for w in json.loads(out)["windows"]}
    config = {w.name: w for w in load_stack("staging", project).capacity.schedule}
    # The weekly teaching lab: its next occurrence in Berlin time, the display string kept beside it.
    lab = windows["teaching-lab"]
    start, end = datetime.fromisoformat(lab["start"]), datetime.fromisoformat(lab["end"])
    assert (lab["start"], lab["end"]) == ("2026-12-02T09:00:00+01:00", "2026-12-02T11:30:00+01:00")
    assert start == datetime.fromisoformat(lab["next_start"])
    weekly = config["teaching-lab"].weekly
    assert start.astimezone(ZoneInfo(weekly.timezone)).strftime("%a").lower() in weekly.days
    assert (start.time(), end.time()) == (weekly.start, weekly.end) and end.date() == start.date()
    assert lab["when"] == "wed 09:00-11:30 Europe/Berlin"
    # The one-off open day: its own instants.
    day = windows["open-day"]
    once = config["open-day"].once
    assert (datetime.fromisoformat(day["start"]), datetime.fromisoformat(day["end"])) == (once.start, once.end)
    assert list(day)[:4] == ["name", "when", "start", "end"]


def test_a_weekly_window_across_a_dst_change_keeps_its_local_times(capsys, project: Path) -> None:
    """2027-03-31 is the first Wednesday after Berlin moves to summer time: 09:00 there is 07:00 UTC, not 08:00."""
    code, out, _ = cli(capsys, project, "schedule", "--stack", "staging", "--at", "2027-03-30T12:00:00Z", "-o", "json")
    assert code == 0
    lab = next(w for w in json.loads(out)["windows"] if w["name"] == "teaching-lab")
    assert (lab["start"], lab["end"]) == ("2027-03-31T09:00:00+02:00", "2027-03-31T11:30:00+02:00")
    assert lab["next_start"] == "2027-03-31T07:00:00+00:00"


# --- schedule add / remove --------------------------------------------------------------------------------------


def test_add_then_schedule_shows_the_window_and_the_file_keeps_its_comments(capsys, project: Path) -> None:
    path = project / "Pulumi.staging.yaml"
    before = path.read_text(encoding="utf-8")
    code, out, err = cli(capsys, project, "schedule", "add", "lab", "--stack", "staging", *LAB)
    assert (code, err) == (0, "")
    assert out.startswith(f"added window lab in {path}: it fits on 2 nodes\n")
    after = path.read_text(encoding="utf-8")
    assert comments(after) == comments(before) and comments(before)
    # Only lines were added, all of them the new window's, after the existing windows.
    old, new = before.splitlines(), after.splitlines()
    added = [line for line in new if line not in old]
    assert [line for line in new if line in old] == old
    assert added == [
        "      - name: lab",
        '        weekly: {days: [tue, thu], start: "14:00", end: "16:00", timezone: Europe/Berlin}',
        "        experiments: {medium: 2, small: 1}",
    ]
    # PyYAML (what the CLI reads) and the plan agree on it.
    raw = yaml.safe_load(after)["config"]["hyperstudy-infra:capacity"]["schedule"][-1]
    assert raw["weekly"]["start"] == "14:00"
    code, out, _ = cli(capsys, project, "schedule", "--stack", "staging", "-o", "json")
    lab = next(w for w in json.loads(out)["windows"] if w["name"] == "lab")
    assert code == 0 and lab["fits"] and lab["experiments"] == {"medium": 2, "small": 1}
    assert lab["start"] == "2026-12-01T14:00:00+01:00"  # the golden epoch is a Tuesday, 01:00 in Berlin


def test_remove_after_add_gives_the_file_back_byte_for_byte(capsys, project: Path) -> None:
    path = project / "Pulumi.staging.yaml"
    before = path.read_text(encoding="utf-8")
    assert cli(capsys, project, "schedule", "add", "lab", "--stack", "staging", *LAB)[0] == 0
    code, out, _ = cli(capsys, project, "schedule", "remove", "lab", "--stack", "staging")
    assert code == 0 and out.startswith(f"removed window lab in {path}\n")
    assert path.read_text(encoding="utf-8") == before


@pytest.mark.parametrize(("removed", "kept"), [("teaching-lab", "open-day"), ("open-day", "teaching-lab")])
def test_remove_takes_the_comment_above_the_window_with_it(capsys, project: Path, removed: str, kept: str) -> None:
    """A comment line right above a window is about it: it goes with it, and the other window's stays (ruamel alone
    keeps the first window's comment above the second)."""
    path = project / "Pulumi.staging.yaml"
    notes = {"teaching-lab": "# The lab, every week.", "open-day": "# The open day, booked by the outreach office."}
    text = path.read_text(encoding="utf-8")
    for name, note in notes.items():
        text = text.replace(f"      - name: {name}\n", f"      {note}\n      - name: {name}\n")
    path.write_text(text, encoding="utf-8")
    assert cli(capsys, project, "schedule", "remove", removed, "--stack", "staging")[0] == 0
    after = path.read_text(encoding="utf-8")
    assert comments(after) == [c for c in comments(text) if c != notes[removed]]
    assert f"      {notes[kept]}\n      - name: {kept}\n" in after
    assert [w.name for w in load_stack("staging", project).capacity.schedule] == [kept]


def test_a_window_that_does_not_fit_is_not_written_and_exits_1(capsys, project: Path) -> None:
    path = project / "Pulumi.staging.yaml"
    before = path.read_text(encoding="utf-8")
    args = ["--date", "2027-01-05", "--start", "10:00", "--end", "12:00", "--timezone", "Europe/Berlin"]
    code, out, _ = cli(
        capsys, project, "schedule", "add", "big", "--stack", "staging", *args, "--experiments", "large=1"
    )
    assert code == 1
    assert out.startswith("not written: with window big added, big does not fit (below)\n")
    assert "does not fit: hyperstudy-infra:capacity.schedule.big.experiments.large: one large experiment" in out
    assert path.read_text(encoding="utf-8") == before


def test_a_one_off_window_is_written_with_its_offset(capsys, project: Path) -> None:
    path = project / "Pulumi.staging.yaml"
    args = ["--date", "2027-07-01", "--start", "10:00", "--end", "12:00", "--timezone", "Europe/Berlin"]
    code, out, _ = cli(
        capsys,
        project,
        "schedule",
        "add",
        "summer",
        "--stack",
        "staging",
        *args,
        "--experiments",
        "small=2",
        "--lead-minutes",
        "30",
        "-o",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    assert (data["written"], data["fits"], data["window"]) == (True, True, "summer")
    assert '        once: {start: "2027-07-01T10:00:00+02:00", end: "2027-07-01T12:00:00+02:00"}' in path.read_text()
    window = next(w for w in load_stack("staging", project).capacity.schedule if w.name == "summer")
    assert (window.lead_minutes, window.grace_minutes) == (30, 15)


def test_dry_run_writes_nothing(capsys, project: Path) -> None:
    path = project / "Pulumi.staging.yaml"
    before = path.read_text(encoding="utf-8")
    code, out, _ = cli(capsys, project, "schedule", "add", "lab", "--stack", "staging", *LAB, "--dry-run")
    assert code == 0 and out.startswith(f"--dry-run: window lab would be added in {path}: it fits on 2 nodes\n")
    code, out, _ = cli(capsys, project, "schedule", "remove", "teaching-lab", "--stack", "staging", "--dry-run")
    assert code == 0 and "teaching-lab" not in out.split("\n\n", 1)[1].split("job", 1)[0]
    assert path.read_text(encoding="utf-8") == before


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["add", "teaching-lab", *LAB],
            "error: hyperstudy-infra:capacity.schedule.teaching-lab: a window of this name exists: `schedule remove` "
            "it first, or choose another name",
        ),
        (
            ["add", "Lab_1", *LAB],
            "error: argument name: 'Lab_1' is not a window name: a DNS label of up to 30 "
            "characters (a-z, 0-9 and -, a letter first)",
        ),
        (
            ["add", "lab", *LAB[:1], "tues", *LAB[2:]],
            "error: argument --days: 'tues' is not a day (mon, tue, wed, thu, fri, sat, sun) (did you mean tue?)",
        ),
        (
            ["add", "lab", *LAB[:7], "Europe/Berln", *LAB[8:]],
            "error: argument --timezone: unknown time zone "
            "'Europe/Berln' (did you mean Europe/Berlin?) (an IANA name like Europe/Berlin)",
        ),
        (
            ["add", "lab", *LAB[:9], "medium", *LAB[10:]],
            "error: argument --experiments: 'medium' is not SHAPE=COUNT like medium=5",
        ),
        (
            ["add", "lab", *LAB[:9], "huge=1"],
            "error: hyperstudy-infra:capacity.schedule.lab.experiments.huge: "
            "unknown experiment shape (known: classroom, large, medium, small)",
        ),
        (
            ["add", "lab", *LAB[:5], "13:00", *LAB[6:]],
            "error: hyperstudy-infra:capacity.schedule.lab.weekly.end: "
            "13:00 is not after start 14:00 (a window ends the day it starts)",
        ),
        (
            [
                "add",
                "lab",
                "--date",
                "2027-03-28",
                "--start",
                "02:30",
                "--end",
                "04:00",
                "--timezone",
                "Europe/Berlin",
                "--experiments",
                "small=1",
            ],
            "error: --start: 02:30 does not exist on 2027-03-28 in Europe/Berlin (a DST change skips it)",
        ),
        (
            ["remove", "teching-lab"],
            "error: hyperstudy-infra:capacity.schedule: no window named 'teching-lab' (did "
            "you mean teaching-lab?) (windows: teaching-lab, open-day)",
        ),
    ],
)
def test_bad_edits_are_one_line_and_write_nothing(capsys, project: Path, argv: list[str], error: str) -> None:
    path = project / "Pulumi.staging.yaml"
    before = path.read_text(encoding="utf-8")
    code, out, err = cli(capsys, project, "schedule", *argv[:2], "--stack", "staging", *argv[2:])
    assert (code, out, err) == (2, "", error + "\n")
    assert path.read_text(encoding="utf-8") == before


def test_without_window_matches_ruamels_removal_in_data() -> None:
    """The text cut (which takes a window's leading comment with it) loads to what ruamel's own removal loads to."""
    text = (ROOT / "Pulumi.staging.yaml").read_text(encoding="utf-8")
    for name in ("teaching-lab", "open-day"):
        cut = yaml.safe_load(without_window(text, "staging", "hyperstudy-infra", name))
        whole = yaml.safe_load(text)
        windows = whole["config"]["hyperstudy-infra:capacity"]["schedule"]
        windows[:] = [w for w in windows if w["name"] != name]
        assert cut == whole
