"""HyperStudy's sizing model: the capacity formula, per-stack load profiles, derived requests/limits and runtime
memory settings, the GKE node pool plan and its cost. Pure Python (pydantic); it never imports pulumi.
"""

from sizing.config import StackConfig, load_stack, parse_stack_config
from sizing.errors import ConfigError
from sizing.plan import Plan, WorkloadPlan, build_plan

__all__ = ["ConfigError", "Plan", "StackConfig", "WorkloadPlan", "build_plan", "load_stack", "parse_stack_config"]
