"""HyperStudy's sizing model: the capacity formula, per-stack load profiles, derived requests/limits and runtime
memory settings, the GKE node pool plan and its cost. Pure Python (pydantic); it never imports pulumi.

The names below are loaded on first use (PEP 562), so `python -m sizing` can set up the process before any model
is built (sizing/__main__.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sizing.config import StackConfig, load_stack, parse_stack_config
    from sizing.errors import ConfigError
    from sizing.plan import Plan, WorkloadPlan, build_plan

_WHERE = {
    "ConfigError": "sizing.errors",
    "Plan": "sizing.plan",
    "StackConfig": "sizing.config",
    "WorkloadPlan": "sizing.plan",
    "build_plan": "sizing.plan",
    "load_stack": "sizing.config",
    "parse_stack_config": "sizing.config",
}
__all__ = ["ConfigError", "Plan", "StackConfig", "WorkloadPlan", "build_plan", "load_stack", "parse_stack_config"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'sizing' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
