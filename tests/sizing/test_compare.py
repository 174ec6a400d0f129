"""`plan --compare`: before/after of a rollback or of any config change, from two plans."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from sizing.cli.compare import compare, render_comparison
from sizing.config.loader import load_stack
from sizing.plan.build import build_plan
from tests.sizing.stacks import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _plans(profile_before: str, profile_after: str):
    before = build_plan(load_stack("prod", ROOT, profile_before), "prod")
    after = build_plan(load_stack("prod", ROOT, profile_after), "prod")
    return before, after


def test_rollback_view_shows_every_size_that_changes_and_nothing_else():
    before, after = _plans("optimized", "baseline")
    result = compare(before, after)
    for name, fields in result["workloads"].items():
        b, a = before.pool_workloads[name], after.pool_workloads[name]
        assert fields["memory_request"] == {
            "before": b.memory_request,
            "after": a.memory_request,
            "changed": b.memory_request != a.memory_request,
        }
        assert fields["memory_limit"]["after"] == a.memory_limit
        assert fields["replicas"]["changed"] is False
        assert fields["cpu_request"]["changed"] is False
    assert result["workloads"]["backend"]["memory_limit"] == {"before": "512Mi", "after": "1Gi", "changed": True}
    assert not any(v["changed"] for v in result["workloads"]["traefik"].values())
    # The monitoring stack keeps its sizes in a rollback of the app: the baseline predates it.
    assert not any(v["changed"] for v in result["workloads"]["prometheus"].values())
    totals = result["totals"]["memory_request_mib"]
    assert (totals["before"], totals["after"]) == (before.totals.memory_request_mib, after.totals.memory_request_mib)
    assert result["nodes"]["min"] == {"before": before.nodes.min, "after": after.nodes.min, "changed": False}
    assert result["changed"] is True


def test_a_plan_compared_with_itself_has_no_change():
    before, _ = _plans("optimized", "optimized")
    result = compare(before, before)
    assert result["changed"] is False
    assert render_comparison(result).endswith("no change")


def test_table_marks_changed_workloads_and_shows_before_and_after():
    text = render_comparison(compare(*_plans("optimized", "baseline")))
    lines = text.splitlines()
    backend = next(line for line in lines if line.startswith("* backend "))
    traefik = next(line for line in lines if line.startswith("  traefik "))
    assert "256Mi → 512Mi" in backend and "512Mi → 1Gi" in backend
    assert "→" not in traefik
    # The app's 928 → 2,496 MiB, plus the monitoring stack's 1,088 MiB and cert-manager's 256 MiB on both sides.
    assert "memory requests: 2272Mi → 3840Mi" in text


def test_cli_compare_json_and_another_stack():
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("plan", "--stack", "prod", *args)

    rollback = json.loads(run("--compare", "baseline", "--json").stdout)
    assert rollback["after"] == {"stack": "prod", "profile": "baseline"}
    other = json.loads(run("--compare", "staging", "--json").stdout)
    assert other["after"]["stack"] == "staging"
    assert other["nodes"]["machine_type"] == {"before": "e2-standard-2", "after": "e2-medium", "changed": True}
    missing = run("--compare", "nowhere")
    assert missing.returncode == 2
    assert missing.stderr == (
        "error: --compare: 'nowhere' is neither a profile (optimized, baseline) nor a stack "
        "(known: example, prod, staging)\n"
    )
