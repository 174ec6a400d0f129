"""`workloads`: each workload's replicas, CPU request, runtime, how its memory is sized and how its pods share
nodes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from sizing.core.errors import PathError
from sizing.core.model import MemorySize, MiB, Millicores, Model, Runtime

if TYPE_CHECKING:
    pass


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
    """One workload: how many pods, what CPU they request, how their memory is sized, how its pods share nodes."""

    replicas: int = Field(ge=1, le=1000, description="pods")
    spread: Literal["skew", "distinct"] = Field(
        "skew",
        description="how its pods share nodes (sizing/plan/placement.py): skew, a topology spread of max skew 1 over "
        "the pool's nodes (replicas share a node only when there are more of them than nodes, 3/2 on two); distinct, "
        "required pod anti-affinity (one pod per node, a node per replica)",
    )
    cpu_request: Millicores = Field(description="CPU request per pod (Kubernetes quantity)")
    runtime: Runtime = Field("none", description="process whose memory setting is derived from the limit")
    sized_by: Literal["config", "formula"] = Field(
        "config", description="formula: optimized sizes come from the capacity formula and load profile"
    )
    memory: ProfileSizes = Field(description="memory request and limit per profile")

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
