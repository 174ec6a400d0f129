"""Fixtures of the monitoring tests: promtool, and a second stack config whose numbers all differ from prod's."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sizing.config.capacity import Formula, RoleMemory, UserMix
from sizing.config.catalogue import MachineTypeOverride
from sizing.config.monitoring import Alert
from sizing.config.stack import StackConfig
from sizing.plan.build import build_plan
from sizing.plan.types import Plan

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = ROOT / ".bin" / "promtool"


@pytest.fixture(scope="session")
def promtool() -> Path:
    """The promtool tools/install-prometheus unpacks; CI fails without it, elsewhere the tests skip."""
    if PROMTOOL.is_file() and os.access(PROMTOOL, os.X_OK):
        return PROMTOOL
    if os.environ.get("CI") == "true":
        pytest.fail("promtool missing: run tools/install-prometheus")
    pytest.skip(f"promtool not found at {PROMTOOL}: run tools/install-prometheus to run the rule checks")


@pytest.fixture
def run_promtool(promtool: Path, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `promtool <args>` where FILE arguments are YAML data written to tmp_path first; fail with its output."""

    def run(*args: str, files: dict[str, Any] | None = None, expect_ok: bool = True) -> subprocess.CompletedProcess:
        for name, data in (files or {}).items():
            text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False, width=1000)
            (tmp_path / name).write_text(text)
        done = subprocess.run(
            [str(promtool), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )
        if expect_ok and done.returncode != 0:
            pytest.fail(f"promtool {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    return run


def other_config(config: StackConfig) -> StackConfig:
    """prod with another namespace, coefficients, limit headroom, replicas, node price, shapes and thresholds."""
    capacity = config.capacity.model_copy(
        update={
            "formula": Formula(
                base_mib=120, per_role_mib=RoleMemory(participant_video=20, participant_no_video=10, experimenter=30)
            ),
            # A shape whose users need no memory: it has no slots to count and is left out.
            "shapes": {**config.capacity.shapes, "observers": UserMix()},
            "headroom": config.capacity.headroom.model_copy(update={"limit_pct": 80}),
        }
    )
    backend = config.workloads["backend"].model_copy(update={"replicas": 3})
    alerts = config.monitoring.alerts.model_copy(
        update={
            "memory_near_limit": Alert(threshold=0.8, for_="2m", severity="critical"),
            "prediction_drift": Alert(threshold=0.4, for_="10m"),
            "capacity_low": Alert(threshold=2, for_="5m", severity="info"),
            "node_pool_at_max": Alert(threshold=1, for_="20m"),
            "heap_near_limit": Alert(threshold=0.85, for_="1m", severity="critical"),
        }
    )
    monitoring = config.monitoring.model_copy(
        update={
            "alerts": alerts,
            "capacity_shape": "small",
            "runbook_url": "https://wiki.example.org/hyperstudy/ops/{alert}",
        }
    )
    catalogue = config.catalogue.model_copy(
        update={"machine_types": {"e2-standard-2": MachineTypeOverride(on_demand_usd_month=40.5)}}
    )
    changed = config.model_copy(
        update={
            "kubernetes": config.kubernetes.model_copy(update={"namespace": "study-staging"}),
            "capacity": capacity,
            "workloads": {**config.workloads, "backend": backend},
            "monitoring": monitoring,
            "catalogue": catalogue,
        }
    )
    # model_copy skips validation: validate the result, so the test config is one a stack file could hold.
    return StackConfig.model_validate(changed.model_dump(by_alias=True))


# Planned windows for `scheduled_config`, on 2 backend replicas: the weekly teaching lab needs 3 (its scale-up sets
# 3), the one-off open day fits the 2. Their leads differ from each other and from the default: the shortest, 12, is
# the not-ready alert's pending time.
SCHEDULED_BASE_REPLICAS = 2
SCHEDULE: list[dict[str, Any]] = [
    {
        "name": "teaching-lab",
        "weekly": {"days": ["wed"], "start": "09:00", "end": "11:30", "timezone": "Europe/Berlin"},
        "experiments": {"medium": 5},
        "lead_minutes": 25,
    },
    {
        "name": "open-day",
        "once": {"start": "2027-06-05T10:00:00+02:00", "end": "2027-06-05T13:00:00+02:00"},
        "experiments": {"small": 6, "medium": 2},
        "lead_minutes": 12,
        "grace_minutes": 30,
    },
]


def scheduled_config(config: StackConfig, schedule: list[dict[str, Any]] | None = None) -> StackConfig:
    """`other_config` on 2 backend replicas with planned windows (`capacity.schedule`, `SCHEDULE` by default): the
    stack the schedule's alerts and panels are for."""
    data = other_config(config).model_dump(by_alias=True)
    data["workloads"]["backend"]["replicas"] = SCHEDULED_BASE_REPLICAS
    data["capacity"]["schedule"] = SCHEDULE if schedule is None else schedule
    return StackConfig.model_validate(data)


@pytest.fixture(scope="session")
def staging_config(prod_config: StackConfig) -> StackConfig:
    return other_config(prod_config)


@pytest.fixture(scope="session")
def staging_plan(staging_config: StackConfig) -> Plan:
    return build_plan(staging_config, "staging")


@pytest.fixture(scope="session")
def scheduled_stack_config(prod_config: StackConfig) -> StackConfig:
    """`other_config` with `SCHEDULE`: a staging-like stack with planned windows."""
    return scheduled_config(prod_config)


@pytest.fixture(scope="session")
def scheduled_stack_plan(scheduled_stack_config: StackConfig) -> Plan:
    plan = build_plan(scheduled_stack_config, "staging")
    assert plan.schedule is not None and plan.schedule.actions, "the windows scale the backend"
    return plan
