"""Grafana dashboards built from the stack config and the sizing plan, with grafana-foundation-sdk's typed builders.

`dashboards(config, plan)` gives each dashboard's JSON model by its stable uid; `dashboard_json(model)` gives the
deterministic text a ConfigMap (Grafana sidecar) or a file carries. Pure Python: no pulumi import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from components.monitoring.dashboards import capacity, cost, memory
from sizing.config import StackConfig
from sizing.plan import Plan

Builder = Callable[[StackConfig, Plan], dashboard_builder.Dashboard]

# uid -> builder, in the order the dashboards are listed.
BUILDERS: dict[str, Builder] = {
    memory.UID: memory.build,
    capacity.UID: capacity.build,
    cost.UID: cost.build,
}
UIDS: tuple[str, ...] = tuple(BUILDERS)


def _model(builder: dashboard_builder.Dashboard) -> dict[str, Any]:
    return json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))


def dashboards(config: StackConfig, plan: Plan) -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON model (plain data) by uid."""
    return {uid: _model(build(config, plan)) for uid, build in BUILDERS.items()}


def dashboard_json(model: dict[str, Any]) -> str:
    """The model as deterministic text: keys sorted, two-space indent, a final newline."""
    return json.dumps(model, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


__all__ = ["BUILDERS", "UIDS", "dashboard_json", "dashboards"]
