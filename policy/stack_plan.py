"""The sizing plan of the stack being previewed: the node-count lower bound the node-pool policy checks against.

The engine starts the pack with `PULUMI_STACK` set to the stack's name; the plan comes from that stack's file
through the same `load_stack` + `build_plan` that `python -m sizing` and the tests use. A stack the pack cannot
plan gives a `PlanUnavailable` with the reason, which the node-pool policy reports as its violation: a pack that
crashed at start would silence every policy, not only the one that needs the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sizing.config.loader import load_stack
from sizing.core.errors import ConfigError
from sizing.plan.build import build_plan

STACK_VARIABLE = "PULUMI_STACK"


@dataclass(frozen=True)
class PlanUnavailable:
    """Why the plan of the previewed stack could not be built."""

    stack: str | None
    reason: str

    def describe(self) -> str:
        if self.stack is None:
            return self.reason
        return f"the sizing plan of stack {self.stack!r} could not be built ({self.reason})"


def stack_from_environment(environ: Mapping[str, str]) -> str | None:
    """The previewed stack's name from the engine's environment; None when the pack runs outside the engine."""
    value = environ.get(STACK_VARIABLE, "").strip()
    # Accept a fully qualified `org/project/stack` as well: the stack file is named after the last part.
    return value.rsplit("/", 1)[-1] or None


def node_lower_bound(stack: str | None, project_dir: Path) -> int | PlanUnavailable:
    """The plan's `nodes.lower_bound` for `stack` (its own profile), or why there is none."""
    if stack is None:
        return PlanUnavailable(
            None, f"{STACK_VARIABLE} is not set: run the pack through `pulumi preview --policy-pack policy`"
        )
    try:
        config = load_stack(stack, project_dir)
        return build_plan(config, stack).nodes.lower_bound
    except ConfigError as err:
        return PlanUnavailable(stack, str(err))
