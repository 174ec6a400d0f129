"""HyperStudy's sizing model: the capacity formula, per-stack load profiles, derived requests/limits and runtime
memory settings, the GKE node pool plan and its cost. Pure Python (pydantic); it never imports pulumi.

The names below are loaded on first use (PEP 562), so `python -m sizing` can set up the process before any model
is built (sizing/__main__.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sizing.config.loader import load_stack, parse_stack_config
    from sizing.config.stack import StackConfig
    from sizing.core.errors import ConfigError
    from sizing.plan.build import build_plan
    from sizing.plan.types import Plan, WorkloadPlan

_WHERE = {
    "ConfigError": "sizing.core.errors",
    "Plan": "sizing.plan.types",
    "StackConfig": "sizing.config.stack",
    "WorkloadPlan": "sizing.plan.types",
    "build_plan": "sizing.plan.build",
    "load_stack": "sizing.config.loader",
    "parse_stack_config": "sizing.config.loader",
}
__all__ = ["ConfigError", "Plan", "StackConfig", "WorkloadPlan", "build_plan", "load_stack", "parse_stack_config"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'sizing' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
