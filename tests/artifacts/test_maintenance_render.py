"""The render's GKE cluster as `pulumi up` would create it: prod's has the plan's maintenance window (an RRULE in UTC)
and the BALANCED autoscaling profile; a stack with a one-off window (a copy of prod's stack file) has that window's
NO_UPGRADES exclusion, in the render and in its `gcp.md`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from offline.render import Rendered, run_program, write
from sizing.config.loader import load_stack
from sizing.plan.build import build_plan

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "gcp:container/cluster:Cluster"
NS = "hyperstudy-infra"


def cluster_inputs(rendered: Rendered) -> dict[str, Any]:
    (cluster,) = [r for r in rendered.gcp_resources() if r.typ == CLUSTER]
    return cluster.inputs


def test_prod_renders_the_maintenance_window_and_the_balanced_profile(render, tmp_path):
    rendered = render("prod")
    inputs = cluster_inputs(rendered)
    window = build_plan(load_stack("prod", ROOT), "prod").maintenance.window
    assert inputs["maintenancePolicy"] == {
        "recurringWindow": {
            "startTime": window.start_time,
            "endTime": window.end_time,
            "recurrence": window.recurrence,
        }
    }
    assert window.recurrence == "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU"
    assert inputs["clusterAutoscaling"] == {"enabled": False, "autoscalingProfile": "BALANCED"}
    write(rendered, tmp_path)
    assert "recurrence: FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU" in (tmp_path / "gcp.md").read_text()


def test_a_stack_with_a_one_off_window_renders_its_exclusion(recording_mocks, tmp_path):
    data = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    start = (datetime.now(UTC) + timedelta(days=30)).replace(hour=15, minute=0, second=0, microsecond=0)
    data["config"][f"{NS}:capacity"]["schedule"] = [
        {
            "name": "open-day",
            "once": {"start": start.isoformat(), "end": (start + timedelta(hours=3)).isoformat()},
            "experiments": {"small": 2},
            "lead_minutes": 20,
        }
    ]
    stack = tmp_path / "Pulumi.maint.yaml"
    stack.write_text(yaml.safe_dump(data, sort_keys=False))
    rendered = run_program(str(stack), ROOT, mocks=recording_mocks)
    # From an hour before the scale-up (20 minutes' lead) to the scale-down (15 minutes' grace), in UTC.
    begin, end = start - timedelta(minutes=80), start + timedelta(hours=3, minutes=15)
    assert cluster_inputs(rendered)["maintenancePolicy"]["maintenanceExclusions"] == [
        {
            "exclusionName": "open-day",
            "startTime": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endTime": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "exclusionOptions": {"scope": "NO_UPGRADES"},
        }
    ]
    out = tmp_path / "render"
    write(rendered, out)
    assert "exclusionName: open-day" in (out / "gcp.md").read_text()
