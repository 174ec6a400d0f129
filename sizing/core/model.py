"""The value types every part of the stack config is made of: frozen models, memory and CPU quantities held as
whole MiB and millicores, Prometheus durations, a request/limit pair, and the names of roles, profiles and runtimes.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema, model_validator

from sizing.core import quantity
from sizing.core.durations import DURATION_PATTERN
from sizing.core.errors import PathError

Role = Literal["participant_video", "participant_no_video", "experimenter"]
ROLES: tuple[Role, ...] = get_args(Role)
Profile = Literal["optimized", "baseline"]
PROFILES: tuple[Profile, ...] = get_args(Profile)
Runtime = Literal["nodejs", "redis", "go", "none"]
# How a workload's pods share the pool's nodes (sizing/plan/placement.py): a topology spread of max skew 1, one
# pod per node (required anti-affinity), or no constraint (a single pod, or a chart's pod).
Spread = Literal["none", "skew", "distinct"]
DiskType = Literal["pd-standard", "pd-balanced", "pd-ssd"]
DISK_TYPES: tuple[DiskType, ...] = get_args(DiskType)
# A resource-based committed-use term for the pool's machines (none: pay as you go).
Commitment = Literal["none", "1y", "3y"]
CommitmentTerm = Literal["1y", "3y"]
COMMITMENT_TERMS: tuple[CommitmentTerm, ...] = get_args(CommitmentTerm)


def _mib(value: object) -> int:
    try:
        return quantity.to_mib(value)
    except quantity.QuantityError as err:
        raise ValueError(str(err)) from None


def _millicores(value: object) -> int:
    try:
        return quantity.to_millicores(value)
    except quantity.QuantityError as err:
        raise ValueError(str(err)) from None


def _quantity_schema(example: str) -> WithJsonSchema:
    # What a stack file may hold: a quantity string, or a plain number (bytes, cores) as Kubernetes reads one.
    return WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": quantity.QUANTITY_PATTERN, "examples": [example]},
                {"type": "integer"},
            ]
        }
    )


# Memory and CPU are written as Kubernetes quantities in config and held as whole MiB / millicores.
MiB = Annotated[
    int, BeforeValidator(_mib), PlainSerializer(quantity.format_mib, return_type=str), _quantity_schema("256Mi")
]
Millicores = Annotated[
    int,
    BeforeValidator(_millicores),
    PlainSerializer(quantity.format_millicores, return_type=str),
    _quantity_schema("250m"),
]
# The JSON Schema mark of a field a before-validator fills in when its key is omitted: the model requires it, a stack
# file need not give it (sizing/config/reference.py drops such keys from `required`).
DEFAULTED = "x-defaulted"


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MemorySize(Model):
    """A memory request and limit."""

    request: MiB = Field(description="memory request (Kubernetes quantity, whole MiB)")
    limit: MiB = Field(description="memory limit (Kubernetes quantity, whole MiB)")

    @model_validator(mode="after")
    def _request_within_limit(self) -> MemorySize:
        if self.request <= 0:
            raise PathError("request", "must be more than 0")
        if self.request > self.limit:
            raise PathError(
                "request",
                f"request {quantity.format_mib(self.request)} is above limit {quantity.format_mib(self.limit)}",
            )
        return self


# A Prometheus duration such as 5m or 1h30m (prometheus/common model.ParseDuration).
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, min_length=1)]
