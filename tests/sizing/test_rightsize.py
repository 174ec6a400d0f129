"""`rightsize` (sizing/observe/rightsize.py, sizing/cli/rightsize.py) on exports with known answers: the targets are
every sized container of the plan, the rules as documented, `--write` a round trip of the size lines alone,
`recommend --rightsized` the catalogue with the new sizes, and every bad input one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from sizing.config.loader import load_stack
from sizing.observe.rightsize import RULES, Measured, Sizes, Target, queries, recommend, targets
from sizing.plan.build import build_plan
from tests.sizing.stacks import ROOT, assert_bad_input, run_cli
from tests.sizing.usage_history import HISTORY, Truth, export, truths

DAY = 86400.0


@pytest.fixture(scope="module")
def prod():
    config = load_stack("prod", ROOT)
    return config, build_plan(config, "prod")


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the project's stack files (the CLI reads and writes them there)."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.staging.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def _export_file(project: Path, prod, **overrides: Truth) -> tuple[Path, dict[str, Truth]]:
    config, plan = prod
    found = targets(config, plan)
    truth = truths(found) | overrides
    path = project / "history.json"
    path.write_text(json.dumps(export(found, truth)))
    return path, truth


def test_every_sized_container_of_the_plan_is_a_target_once(prod):
    config, plan = prod
    found = targets(config, plan)
    paths = [t.config_path for t in found]
    assert len(paths) == len(set(paths))
    expected = {w.config_path for w in [*plan.workloads.values(), *plan.chart_workloads.values()]}
    expected |= {s.config_path for w in [*plan.workloads.values(), *plan.chart_workloads.values()] for s in w.sidecars}
    assert set(paths) == expected
    by_name = {t.name: t for t in found}
    # A sidecar sized once but run under two names is one target with both.
    assert by_name["grafana-sidecar"].containers == ("grafana-sc-dashboard", "grafana-sc-datasources")
    assert by_name["config-reloader"].namespace == config.monitoring.prometheus_namespace
    assert by_name["cert-manager"].containers == ("cert-manager-controller",)
    assert by_name["acme-solver"].namespace == config.kubernetes.namespace  # started in the stack's namespace
    assert [t.name for t in found if t.formula] == ["backend"]
    # The stack sets pod-router's old space: its limit must hold it beside the young generation and native memory.
    assert by_name["pod-router"].runtime_floor_mib == 48 + 3 * 1 + config.runtime.nodejs_native_mib


def test_six_queries_whatever_the_number_of_containers(prod):
    config, plan = prod
    found = targets(config, plan)
    asked = queries(found, HISTORY)
    assert len(asked) == len(queries(found[:2], HISTORY)) == 6
    for expr in asked.values():
        assert all(c in expr for t in found for c in t.containers)
        assert "[336h" in expr, expr  # the window: 14 days
    # The same deduplicated series as the rules: real containers only, one series per pod's container.
    assert 'container!=""' in asked["memory_peak"] and 'container!="POD"' in asked["memory_peak"]
    assert "max by (namespace, pod, container) (rate(" in asked["cpu_p95"]


def _target(cpu_request_m: int = 100, memory_request_mib: int = 64, memory_limit_mib: int = 128, **fields) -> Target:
    base = {"name": "x", "config_path": "workloads.x", "namespace": "hyperstudy", "containers": ("x",)}
    current = Sizes(
        cpu_request_m=cpu_request_m, memory_request_mib=memory_request_mib, memory_limit_mib=memory_limit_mib
    )
    return Target(**(base | fields), current=current)


def _measured(**fields) -> Measured:
    base = {"cpu_p95_m": 12.0, "memory_peak_mib": 40.0, "points": 10080, "history_s": 14 * DAY, "oom_killed": False}
    return Measured(**(base | fields))


def test_the_documented_rules_on_worked_examples(prod):
    _, plan = prod
    row = recommend(_target(), _measured(), plan)
    # CPU 12 m → the next 5 m step; memory 40 × 1.15 = 46 → 48 MiB; limit 46 × (1 + 1/14) = 49.3 → 64 MiB.
    assert (row.state, row.recommended.cpu_request_m) == ("ok", 15)
    assert (row.recommended.memory_request_mib, row.recommended.memory_limit_mib) == (48, 64)
    # Floors: 10 m and 32 MiB.
    tiny = recommend(_target(), _measured(cpu_p95_m=0.4, memory_peak_mib=3.0), plan)
    assert (tiny.recommended.cpu_request_m, tiny.recommended.memory_request_mib) == (10, 32)
    # One day of history doubles the limit's margin (the VPA's 1 + 1/days): 46 × 2 = 92 → 96 MiB.
    young = recommend(_target(), _measured(history_s=DAY), plan)
    assert young.recommended.memory_limit_mib == 96
    # The runtime's floor lifts the limit, not the request.
    node = recommend(_target(runtime_floor_mib=107), _measured(), plan)
    assert (node.recommended.memory_request_mib, node.recommended.memory_limit_mib) == (48, 112)


def test_not_enough_data_at_the_stated_thresholds(prod):
    _, plan = prod
    enough = recommend(_target(), _measured(points=RULES.min_points, history_s=RULES.min_history_s), plan)
    assert enough.state == "ok"
    for short in (
        _measured(points=RULES.min_points - 1),
        _measured(history_s=RULES.min_history_s - 60),
        _measured(cpu_p95_m=None),
    ):
        row = recommend(_target(), short, plan)
        assert (row.state, row.recommended, row.changed) == ("not enough data", row.current, False)
    assert "2h59m of history (needs 3h)" in recommend(_target(), _measured(history_s=3 * 3600 - 60), plan).why


def test_an_oom_kill_raises_memory_by_the_vpa_rule(prod):
    _, plan = prod
    # Killed at 128 MiB: limit ≥ max(128 + 100, 128 × 1.2) = 228 → 240 MiB; request ≥ the 128 MiB it reached.
    row = recommend(_target(), _measured(oom_killed=True), plan)
    assert row.state == "oom-bumped"
    assert (row.recommended.memory_request_mib, row.recommended.memory_limit_mib) == (128, 240)
    # Large containers: the ×1.2 term wins (1000 × 1.2 = 1200 → 1200 MiB).
    big = recommend(_target(memory_limit_mib=1000, memory_request_mib=512), _measured(oom_killed=True), plan)
    assert big.recommended.memory_limit_mib == 1200
    # The limit it was killed at, not the limit now: raised once, the same kill raises it no further.
    again = recommend(
        _target(memory_request_mib=128, memory_limit_mib=240), _measured(oom_killed=True, killed_limit_mib=128.0), plan
    )
    memory = ("memory_request_mib", "memory_limit_mib")
    assert [getattr(again.recommended, k) for k in memory] == [getattr(again.current, k) for k in memory] == [128, 240]


def test_capped_by_node(prod):
    _, plan = prod
    row = recommend(_target(), _measured(cpu_p95_m=50_000.0, memory_peak_mib=100_000.0), plan)
    assert row.state == "capped by node"
    assert row.recommended.cpu_request_m == plan.nodes.free_cpu_m
    assert row.recommended.memory_request_mib == plan.nodes.free_memory_mib
    assert row.recommended.memory_limit_mib == plan.nodes.allocatable_memory_mib


def test_formula_memory_is_not_sized_twice(prod):
    _, plan = prod
    row = recommend(_target(formula=True, formula_peak_mib=235), _measured(memory_peak_mib=500.0), plan)
    assert (row.recommended.memory_request_mib, row.recommended.memory_limit_mib) == (64, 128)
    assert row.recommended.cpu_request_m == 15  # its CPU request is sized from its history like any other
    assert "python -m sizing fit" in row.why and "against its 235 MiB at peak load, 391% of its limit" in row.why


def test_rightsize_from_an_export(project, prod):
    path, truth = _export_file(project, prod)
    result = run_cli("rightsize", "--stack", "prod", "--from", str(path), "-o", "json", cwd=project)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"stack", "profile", "start", "end", "queries", "rules", "rows", "effect"}
    rows = {r["name"]: r for r in data["rows"]}
    assert set(rows) == set(truth)
    for name, t in truth.items():
        row = rows[name]
        assert row["measured"]["cpu_p95_m"] == pytest.approx(t.cpu_p95_m)
        assert row["measured"]["memory_peak_mib"] == pytest.approx(t.peak_mib)
        if t.short:
            assert row["state"] == "not enough data"
            continue
        cpu = row["recommended"]["cpu_request_m"]
        assert t.cpu_p95_m <= cpu < t.cpu_p95_m + RULES.cpu_step_m and cpu % RULES.cpu_step_m == 0
        if row["formula"]:
            assert row["recommended"]["memory_limit_mib"] == row["current"]["memory_limit_mib"]
            continue
        request = row["recommended"]["memory_request_mib"]
        need = t.peak_mib * (1 + RULES.memory_headroom)
        if t.oom:
            assert row["state"] == "oom-bumped" and request >= row["current"]["memory_limit_mib"]
        else:
            assert max(need, RULES.memory_floor_mib) <= request < max(need, RULES.memory_floor_mib) + 16
            assert row["state"] == "ok"
    assert data["effect"]["fits"] is True
    assert rows["kube-state-metrics"]["recommended"] == rows["kube-state-metrics"]["current"]


def _size_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "cpu_request" in line or "request:" in line or "limit:" in line]


def test_write_changes_only_the_size_lines_and_summarises(project, prod):
    path, _ = _export_file(project, prod)
    stack = project / "Pulumi.prod.yaml"
    before = stack.read_text()
    summary = project / "change.md"
    result = run_cli(
        "rightsize", "--stack", "prod", "--from", str(path), "--write", "--summary", str(summary), cwd=project
    )
    assert result.returncode == 0, result.stderr
    after = stack.read_text()
    assert after != before
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new), "lines added or removed"
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    assert changed and all(b in _size_lines(after) for _, b in changed), changed
    assert "the plan before → after" in result.stdout
    # What is written is what `plan` reads: every row's recommended sizes.
    config = load_stack("prod", project)
    plan = build_plan(config, "prod")
    report = json.loads(run_cli("rightsize", "--stack", "prod", "--from", str(path), "-o", "json", cwd=project).stdout)
    assert all(r["recommended"] == r["current"] for r in report["rows"]), "a second run changes nothing"
    assert plan.workloads["frontend"].cpu_request_m == report["rows"][1]["current"]["cpu_request_m"]
    text = summary.read_text()
    assert text.startswith("## Right-sizing `prod` (optimized) from 14 days of history")
    assert "| redis | `workloads.redis` |" in text and "oom-bumped" in text
    assert "Not enough data (kept): kube-state-metrics." in text and "**Bill:**" in text


def test_write_refuses_sizes_that_fail_the_plan(project, prod):
    stack = project / "Pulumi.prod.yaml"
    stack.write_text(
        stack.read_text().replace("hyperstudy-infra:nodes:\n", "hyperstudy-infra:nodes:\n    max_nodes: 3\n")
    )
    config = load_stack("prod", project)
    heavy = {t.name: Truth(cpu_p95_m=900.0, peak_mib=900.0) for t in targets(config, build_plan(config, "prod"))}
    path, _ = _export_file(project, prod, **heavy)
    before = stack.read_text()
    result = run_cli("rightsize", "--stack", "prod", "--from", str(path), "--write", cwd=project)
    line = assert_bad_input(result, "not written: the recommended sizes fail the plan")
    assert stack.read_text() == before, line


def test_recommend_rightsized_searches_with_the_new_sizes(project, prod):
    path, _ = _export_file(project, prod)
    result = run_cli("recommend", "--stack", "prod", "--rightsized", "--from", str(path), "-o", "json", cwd=project)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    now, then = data["current_sizes"], data["rightsized"]
    assert data["saves_usd_month"] == pytest.approx(now["best"]["monthly_usd"] - then["best"]["monthly_usd"])
    # The rightsized search plans the sizes the export gives: its requests are what the rows recommend.
    config = load_stack("prod", project)
    assert then["best"]["monthly_usd"] is not None and data["changed_entries"]
    assert data["rightsized_plan"]["survives_node_loss"] is True
    assert "workloads.frontend" in data["changed_entries"] and config.profile == "optimized"
    table = run_cli("recommend", "--stack", "prod", "--rightsized", "--from", str(path), cwd=project).stdout
    assert "cheapest safe pool: today's sizes" in table and "saves $" in table


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["--from", "history.json", "--since", "7d"], "--since"),
        (["--from", "missing.json"], "missing.json"),
        (["--from", "Pulumi.yaml"], "Pulumi.yaml"),
        (["--from", "history.json", "--save", "x.json"], "--save"),
        (["--prometheus", "http://127.0.0.1:1"], "--prometheus"),
        (["--prometheus", "localhost:9090"], "--prometheus"),
        (["--prometheus", "http://127.0.0.1:1", "--since", "2 weeks"], "--since"),
    ],
)
def test_bad_input_is_one_line(project, prod, args, key):
    _export_file(project, prod)
    assert_bad_input(run_cli("rightsize", "--stack", "prod", *args, cwd=project), key)


def test_an_export_of_another_namespace_or_shape_is_refused(project, prod):
    path, _ = _export_file(project, prod)
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data | {"namespace": "elsewhere"}))
    assert_bad_input(run_cli("rightsize", "--stack", "prod", "--from", str(path), cwd=project), ":namespace")
    data["results"]["cpu_p95"] = [{"namespace": "x"}]
    path.write_text(json.dumps(data))
    assert_bad_input(run_cli("rightsize", "--stack", "prod", "--from", str(path), cwd=project), "results.cpu_p95")
    assert_bad_input(run_cli("recommend", "--stack", "prod", "--from", str(path), cwd=project), "--rightsized")
    assert_bad_input(run_cli("recommend", "--stack", "prod", "--rightsized", cwd=project), "--rightsized")


def test_the_written_quantities_are_the_recommended_ones(project, prod):
    path, _ = _export_file(project, prod)
    report = json.loads(run_cli("rightsize", "--stack", "prod", "--from", str(path), "-o", "json", cwd=project).stdout)
    run_cli("rightsize", "--stack", "prod", "--from", str(path), "--write", cwd=project)
    config = load_stack("prod", project)
    prometheus = config.monitoring.components.by_name("prometheus")
    (row,) = [r for r in report["rows"] if r["name"] == "prometheus"]
    assert prometheus.cpu_request == row["recommended"]["cpu_request_m"]
    assert prometheus.memory.optimized.request == row["recommended"]["memory_request_mib"]
    assert prometheus.memory.optimized.limit == row["recommended"]["memory_limit_mib"]


def test_write_sets_entries_left_to_their_defaults_whole_on_one_line(tmp_path):
    """The example stack leaves the charts' components to their defaults: each changed one is written whole, on one
    line as the stack files write them, and reads back as recommended."""
    for name in ("Pulumi.yaml", "Pulumi.example.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    config = load_stack("example", tmp_path)
    found = targets(config, build_plan(config, "example"))
    path = tmp_path / "history.json"
    path.write_text(json.dumps(export(found, truths(found))))
    report = json.loads(
        run_cli("rightsize", "--stack", "example", "--from", str(path), "-o", "json", cwd=tmp_path).stdout
    )
    assert run_cli("rightsize", "--stack", "example", "--from", str(path), "--write", cwd=tmp_path).returncode == 0
    text = (tmp_path / "Pulumi.example.yaml").read_text()
    assert "      prometheus: {cpu_request: " in text and "grafana-sidecar: {cpu_request: " in text
    written = load_stack("example", tmp_path)
    for row in report["rows"]:
        top, *rest = row["config_path"].split(".")
        if top == "workloads" or row["state"] == "not enough data":
            continue
        sizes = getattr(written, top).components.by_name(rest[-1])
        got = (sizes.cpu_request, sizes.memory.optimized.request, sizes.memory.optimized.limit)
        assert got == tuple(row["recommended"].values()), row["name"]


_PEAKS = st.floats(min_value=0.0, max_value=20_000.0, allow_nan=False)
_CPUS = st.floats(min_value=0.0, max_value=20_000.0, allow_nan=False)
_HISTORY = st.floats(min_value=RULES.min_history_s, max_value=60 * DAY)


@settings(max_examples=300, deadline=None)
@given(cpu=_CPUS, peak=_PEAKS, history=_HISTORY, oom=st.booleans(), floor=st.sampled_from([0, 107, 128]))
def test_the_rules_hold_for_any_measurement(prod, cpu, peak, history, oom, floor):
    """Whatever the history: the sizes hold the measurement with the stated headroom (unless a node caps them), the
    limit holds the request and the runtime's floor, quantities sit on their steps, and more use never asks less."""
    _, plan = prod
    target = _target(runtime_floor_mib=floor)
    row = recommend(target, _measured(cpu_p95_m=cpu, memory_peak_mib=peak, history_s=history, oom_killed=oom), plan)
    r, nodes = row.recommended, plan.nodes
    assert r.memory_request_mib <= r.memory_limit_mib
    if row.state == "capped by node":
        assert r.cpu_request_m <= nodes.free_cpu_m and r.memory_request_mib <= nodes.free_memory_mib
        assert r.memory_limit_mib <= nodes.allocatable_memory_mib
        return
    assert r.cpu_request_m >= max(cpu, RULES.cpu_floor_m) and r.cpu_request_m % RULES.cpu_step_m == 0
    assert r.memory_request_mib >= max(peak * (1 + RULES.memory_headroom), RULES.memory_floor_mib)
    assert r.memory_limit_mib >= max(peak * (1 + RULES.memory_headroom) * RULES.widen(history), floor)
    assert r.memory_request_mib % RULES.memory_step_mib == 0 and r.memory_limit_mib % RULES.memory_step_mib == 0
    assert (row.state == "oom-bumped") <= oom
    more = recommend(
        target, _measured(cpu_p95_m=cpu * 1.5, memory_peak_mib=peak * 1.5, history_s=history, oom_killed=oom), plan
    )
    if more.state != "capped by node":
        assert more.recommended.cpu_request_m >= r.cpu_request_m
        assert more.recommended.memory_request_mib >= r.memory_request_mib
        assert more.recommended.memory_limit_mib >= r.memory_limit_mib
