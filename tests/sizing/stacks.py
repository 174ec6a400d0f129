"""Small stacks for the planner's tests: raw values with only the keys a plan needs, and how a test plans them."""

from __future__ import annotations

from typing import Any

import pytest

from sizing.errors import ConfigError
from sizing.plan import Plan, build_plan


def synthetic(
    workloads: dict[str, tuple[int, str, str, str] | tuple[int, str, str, str, str, str]],
    machine_type: str = "e2-medium",
    overhead: tuple[str, str] = ("512Mi", "200m"),
    **nodes: Any,
) -> dict[str, Any]:
    """Minimal stack values: workloads as (replicas, cpu, request, limit[, baseline request, baseline limit])."""

    def workload(spec: tuple[Any, ...]) -> dict[str, Any]:
        replicas, cpu, request, limit, *baseline = spec
        base = baseline or [request, limit]
        return {
            "replicas": replicas,
            "cpu_request": cpu,
            "memory": {
                "optimized": {"request": request, "limit": limit},
                "baseline": {"request": base[0], "limit": base[1]},
            },
        }

    return {
        "capacity": {"load": {"typical": {"small": 1}, "peak": {"medium": 1}}},
        "workloads": {name: workload(spec) for name, spec in workloads.items()},
        "nodes": {
            "machine_type": machine_type,
            "overhead": {"memory": overhead[0], "cpu": overhead[1]},
            **nodes,
        },
    }


def plan_of(parse, values: dict[str, Any]) -> Plan:
    return build_plan(parse(values), "test")


def plan_error(parse, values: dict[str, Any]) -> ConfigError:
    config = parse(values)  # the config itself is valid: the plan is what fails
    with pytest.raises(ConfigError) as err:
        build_plan(config, "test")
    return err.value
