"""Grafana dashboards built from the stack config and the sizing plan, with grafana-foundation-sdk's typed builders.

`dashboards(config, plan)` gives each dashboard's JSON model by its uid, `<kubernetes.namespace>-<slug>` (prod's
`hyperstudy-memory`, ...), stable for a stack and distinct between stacks sharing one Grafana;
`dashboard_json(model)` gives the deterministic text a ConfigMap (Grafana sidecar) or a file carries. Pure Python:
no pulumi import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from monitoring.dashboards import capacity, cost, memory
from monitoring.dashboards.common import dashboard_title, dashboard_uid
from sizing.config.stack import StackConfig
from sizing.plan.types import Plan

Builder = Callable[[StackConfig, Plan], dashboard_builder.Dashboard]

# slug -> builder, in the order the dashboards are listed.
BUILDERS: dict[str, Builder] = {
    memory.SLUG: memory.build,
    capacity.SLUG: capacity.build,
    cost.SLUG: cost.build,
}
SLUGS: tuple[str, ...] = tuple(BUILDERS)


def uids(config: StackConfig) -> tuple[str, ...]:
    """The stack's dashboard uids, in the order the dashboards are listed."""
    return tuple(dashboard_uid(config, slug) for slug in SLUGS)


def _model(builder: dashboard_builder.Dashboard) -> dict[str, Any]:
    return json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))


def dashboards(config: StackConfig, plan: Plan) -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model (plain data) by uid."""
    return {dashboard_uid(config, slug): _model(build(config, plan)) for slug, build in BUILDERS.items()}


def dashboard_json(model: dict[str, Any]) -> str:
    """The model as deterministic text: keys sorted, two-space indent, a final newline."""
    return json.dumps(model, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


__all__ = ["BUILDERS", "SLUGS", "dashboard_json", "dashboard_title", "dashboard_uid", "dashboards", "uids"]
