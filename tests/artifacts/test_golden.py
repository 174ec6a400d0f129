"""The golden renders (offline/golden.py): every stack and profile renders, and plans, exactly as tests/golden/ holds.
A change that moves them shows which files moved; `make diff` says how, `make golden` accepts them."""

from __future__ import annotations

import shutil
from pathlib import Path

from offline.golden import GOLDEN, GOLDEN_EPOCH, differences, fixed_clock, stacks
from sizing.core import clock


def test_every_stack_and_profile_renders_and_plans_as_the_golden_files(recording_mocks):
    assert differences(recording_mocks) == []


def test_the_golden_files_cover_every_stack_and_profile():
    made = {p.name for p in GOLDEN.iterdir() if p.is_dir()}
    assert made == {f"{stack}-{profile}" for stack in stacks() for profile in ("optimized", "baseline")}
    for case in made:
        assert (GOLDEN / case / "render" / "outputs.json").is_file() and (GOLDEN / case / "plan.json").is_file()


def test_a_changed_file_is_named(recording_mocks, tmp_path: Path):
    """The guard: a golden file off by one byte is found, and one the render no longer makes too."""
    # A copy of the golden files (the test above proves a render makes them): one render of every stack less.
    copy = tmp_path / "golden"
    shutil.copytree(GOLDEN, copy)
    plan = copy / "prod-optimized" / "plan.json"
    plan.write_bytes(plan.read_bytes().replace(b'"min": 2', b'"min": 3', 1))
    (copy / "prod-optimized" / "render" / "stale.yaml").write_text("kind: Gone\n")
    assert differences(recording_mocks, golden=copy) == [
        "~ prod-optimized/plan.json",
        "- prod-optimized/render/stale.yaml (no longer made)",
    ]


def test_the_clock_is_fixed_only_while_the_golden_files_are_made():
    with fixed_clock():
        assert clock.now().timestamp() == GOLDEN_EPOCH
    assert clock.now().timestamp() != GOLDEN_EPOCH
