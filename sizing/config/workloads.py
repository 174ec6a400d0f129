"""`workloads`: each workload's replicas, CPU request, runtime, how its memory is sized, how its pods share nodes,
and its application facts (`app`): how it runs, which are the built-in `SPECS` of `sizing/facts/workloads.py`
for a workload of that name, with the keys the stack gives overriding them (`resolve_apps`).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from sizing.core.errors import PathError
from sizing.core.model import DEFAULTED, MemorySize, MiB, Millicores, Model, Runtime
from sizing.facts.workloads import SPECS, WorkloadSpec


class WorkloadMemory(MemorySize):
    """A workload's memory request and limit, and for a Node.js workload the old space it is given."""

    old_space: MiB | None = Field(
        None,
        description="Node.js: --max-old-space-size (None: runtime.nodejs_heap_fraction of the limit); the limit must "
        "hold it, the young generation and runtime.nodejs_native_mib",
    )

    @model_validator(mode="after")
    def _old_space_within_limit(self) -> WorkloadMemory:
        if self.old_space is not None and not 0 < self.old_space < self.limit:
            raise PathError("old_space", "must be more than 0 and below the limit")
        return self


class ProfileSizes(Model):
    """Static memory sizes per profile; `optimized` is omitted for a workload sized by the formula."""

    optimized: WorkloadMemory | None = Field(None, description="sizes in the optimized profile")
    baseline: WorkloadMemory = Field(description="sizes before the optimisation (the rollback target)")


class WorkloadConfig(Model):
    """One workload: how many pods, what CPU they request, how their memory is sized, how its pods share nodes, and
    what the application needs to run (`app`)."""

    replicas: int = Field(ge=1, le=1000, description="pods")
    spread: Literal["skew", "distinct"] = Field(
        "skew",
        description="how its pods share nodes (sizing/plan/placement.py): skew, a topology spread of max skew 1 over "
        "the pool's nodes (replicas share a node only when there are more of them than nodes, 3/2 on two); distinct, "
        "required pod anti-affinity (one pod per node, a node per replica)",
    )
    cpu_request: Millicores = Field(description="CPU request per pod (Kubernetes quantity)")
    runtime: Runtime = Field(
        "none",
        description="process whose memory setting is derived from the limit; must be app.runtime, its default in a "
        "stack",
    )
    sized_by: Literal["config", "formula"] = Field(
        "config", description="formula: optimized sizes come from the capacity formula and load profile"
    )
    memory: ProfileSizes = Field(description="memory request and limit per profile")
    app: WorkloadSpec = Field(
        description="the application's facts (controller kind, runtime, ports, probes, user, storage, clients, "
        "metrics): the built-in ones of a workload of this name (sizing/facts/workloads.py), each key given here "
        "overriding its default; required in full for a workload of another name",
        json_schema_extra={DEFAULTED: True},
    )

    @model_validator(mode="after")
    def _optimized_sizes_match_sizing(self) -> WorkloadConfig:
        if self.cpu_request <= 0:
            raise PathError("cpu_request", "must be more than 0")
        if self.sized_by == "formula" and self.memory.optimized is not None:
            raise PathError("memory.optimized", "must be omitted: sized_by is formula")
        if self.sized_by == "config" and self.memory.optimized is None:
            raise PathError("memory.optimized", "required key is missing (or set sized_by: formula)")
        for profile in ("optimized", "baseline"):
            sizes = getattr(self.memory, profile)
            if sizes is not None and sizes.old_space is not None and self.runtime != "nodejs":
                raise PathError(
                    f"memory.{profile}.old_space", f"is a Node.js setting, and the runtime is {self.runtime}"
                )
        return self


def check_app(name: str, workload: WorkloadConfig) -> None:
    """PathError (keyed under `workloads.<name>`) when the application cannot run as the workload is configured:
    another runtime than its image's, more replicas than it supports, or formula sizing of a workload whose pods
    have no `<name>-<ordinal>` names."""
    app = workload.app
    if workload.runtime != app.runtime:
        # The runtime picks the memory setting derived from the limit: a wrong one is silently ignored by the
        # process (no heap cap, no maxmemory), which then grows into the OOM killer.
        raise PathError(
            f"workloads.{name}.runtime",
            f"is {workload.runtime!r}, but the {name} image runs {app.runtime!r} "
            f"(workloads.{name}.app.runtime): its memory setting would be derived for the wrong runtime",
        )
    if app.max_replicas is not None and workload.replicas > app.max_replicas:
        raise PathError(
            f"workloads.{name}.replicas",
            f"{workload.replicas} is above {app.max_replicas}, the most pods {name} can run "
            f"(workloads.{name}.app.max_replicas): further pods would not share its state",
        )
    if workload.sized_by == "formula" and app.kind != "StatefulSet":
        raise PathError(
            f"workloads.{name}.sized_by",
            f"formula needs a StatefulSet, and {name} is a {app.kind} (workloads.{name}.app.kind): the monitoring "
            "matches formula-sized pods by their `<name>-<ordinal>` names, which only StatefulSet pods have",
        )


@cache
def _defaults() -> Mapping[str, dict[str, Any]]:
    """The built-in facts as the plain values a stack file would give (dumped once)."""
    return {name: spec.model_dump() for name, spec in SPECS.items()}


def built_in_apps() -> tuple[str, ...]:
    """The workload names that have built-in application facts."""
    return tuple(sorted(SPECS))


def merge(default: Any, given: Any) -> Any:
    """`given` over `default`: mappings merge key by key; anything else (lists, scalars, None) replaces; a mapping
    whose discriminator `type` differs from the default's (a probe's check: http, tcp, exec) replaces it whole."""
    if not (isinstance(default, Mapping) and isinstance(given, Mapping)):
        return given
    if "type" in given and "type" in default and given["type"] != default["type"]:
        return given
    merged = dict(default)
    for key, value in given.items():
        merged[key] = merge(default[key], value) if key in default else value
    return merged


def resolve_apps(workloads: Mapping[Any, Any]) -> dict[Any, Any]:
    """The raw `workloads` with each one's `app` complete: the built-in facts of its name with the given keys over
    them; PathError `workloads.<name>.app` for a workload of another name that gives none. Values that are not
    mappings, and workloads already validated, pass unchanged (the model reports what is wrong with them)."""
    resolved: dict[Any, Any] = {}
    for name, raw in workloads.items():
        if not isinstance(raw, Mapping) or isinstance(raw.get("app"), BaseModel):
            resolved[name] = raw
            continue
        default = _defaults().get(name) if isinstance(name, str) else None
        if default is None and "app" not in raw:
            raise PathError(
                f"workloads.{name}.app",
                f"required key is missing: {name} has no built-in application facts, so give them in full "
                f"(built-in defaults exist for {', '.join(built_in_apps())})",
            )
        app = raw["app"] if default is None else merge(default, raw.get("app", {}))
        workload = {**raw, "app": app}
        if "runtime" not in raw and isinstance(app, Mapping) and "runtime" in app:
            # What the image runs is said once, in its facts; a runtime given beside them must agree (check_app).
            workload["runtime"] = app["runtime"]
        resolved[name] = workload
    return resolved
