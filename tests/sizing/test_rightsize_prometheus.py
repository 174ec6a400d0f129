"""`rightsize` against a real Prometheus server (Debian's build, tests/prometheus_server.py) backfilled with two weeks
of synthetic usage for every container of prod (tests/sizing/usage_history.py): known p95s and peaks, two pods per
entry (the lighter one must not win), duplicate scrapes and the pod cgroup's and pause container's series (which
must not count), one OOM kill, one container with only 2 h of history."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from sizing.config.loader import load_stack
from sizing.observe.rightsize import QUERIES, RULES, targets
from sizing.plan.build import build_plan
from tests.prometheus_server import PrometheusServer, start_prometheus
from tests.sizing.stacks import ROOT, run_cli
from tests.sizing.usage_history import HISTORY, STEP, Truth, series, truths

pytestmark = pytest.mark.programs

# Stated tolerances (docs/sizing/rightsize.md): the p95 of a 5 m rate read every 5 m is an estimate of the true p95
# (4,032 points of a uniform spread; a window across the sawtooth's drop reads an average); the peak is read exactly.
CPU_TOLERANCE = 0.03
PEAK_TOLERANCE_MIB = 0.01


@pytest.fixture(scope="module")
def prod():
    config = load_stack("prod", ROOT)
    return config, build_plan(config, "prod")


@pytest.fixture(scope="module")
def history(prometheus_binaries, tmp_path_factory, prod) -> Iterator[tuple[PrometheusServer, dict[str, Truth]]]:
    """One server for the module: two weeks of every container's usage (a minute's backfill)."""
    config, plan = prod
    found = targets(config, plan)
    truth = truths(found)
    with start_prometheus(
        tmp_path_factory.mktemp("rightsize"),
        series=series(found, truth),
        history=HISTORY,
        step=STEP,
        binaries=prometheus_binaries,
    ) as running:
        yield running, truth


def test_rightsize_recovers_the_history_from_a_real_server(history, tmp_path):
    server, truth = history
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    saved = tmp_path / "history.json"
    result = run_cli(
        "rightsize", "--stack", "prod", "--prometheus", server.url, "--save", str(saved), "-o", "json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["queries"] == len(QUERIES) + 1  # one per metric, and the server's time
    rows = {row["name"]: row for row in data["rows"]}
    assert set(rows) == set(truth)
    for name, t in truth.items():
        measured = rows[name]["measured"]
        if not t.short:  # two hours see a third of a CPU cycle, which is why they are not enough data
            assert measured["cpu_p95_m"] == pytest.approx(t.cpu_p95_m, rel=CPU_TOLERANCE), name
        assert measured["memory_peak_mib"] == pytest.approx(t.peak_mib, abs=PEAK_TOLERANCE_MIB), name
        assert measured["oom_killed"] is t.oom, name
        if t.short:
            assert rows[name]["state"] == "not enough data" and rows[name]["recommended"] == rows[name]["current"]
            assert measured["history_s"] < RULES.min_history_s and measured["points"] < RULES.min_points
        else:
            # Short of the backfill by its last 30 s and less than the first sample's 10 m resolution.
            assert HISTORY - 630 <= measured["history_s"] <= HISTORY, name
            assert measured["points"] >= HISTORY / STEP - 5, name
    (oom,) = [name for name, t in truth.items() if t.oom]
    assert rows[oom]["state"] == "oom-bumped"
    assert rows[oom]["measured"]["killed_limit_mib"] == rows[oom]["current"]["memory_limit_mib"]
    assert rows[oom]["recommended"]["memory_limit_mib"] >= rows[oom]["current"]["memory_limit_mib"] + RULES.oom_add_mib

    # The export reads back offline to the same report, and --write changes only the size lines.
    assert json.loads(saved.read_text())["format"] == "hyperstudy-rightsize/1"
    offline = json.loads(
        run_cli("rightsize", "--stack", "prod", "--from", str(saved), "-o", "json", cwd=tmp_path).stdout
    )
    assert offline["rows"] == data["rows"] and offline["queries"] == 0
    stack = tmp_path / "Pulumi.prod.yaml"
    before = stack.read_text().splitlines()
    assert run_cli("rightsize", "--stack", "prod", "--from", str(saved), "--write", cwd=tmp_path).returncode == 0
    after = stack.read_text().splitlines()
    changed = [b for a, b in zip(before, after, strict=True) if a != b]
    assert changed and all(("cpu_request" in line or "request:" in line) for line in changed), changed


def test_recommend_rightsized_on_the_history(history):
    server, _ = history
    result = run_cli("recommend", "--stack", "prod", "--rightsized", "--prometheus", server.url, "-o", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["rightsized"]["best"]["monthly_usd"] <= data["current_sizes"]["best"]["monthly_usd"]
    assert data["saves_usd_month"] >= 0 and data["rightsized_plan"]["survives_node_loss"] is True
