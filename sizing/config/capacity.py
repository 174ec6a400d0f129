"""`capacity`: the measured formula, the experiment shapes, the load a backend pod is sized for, the
headroom and rounding of derived sizes, and the planned windows (`capacity.schedule`, sizing/config/schedule.py).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from sizing.config.schedule import Schedule
from sizing.core.errors import PathError
from sizing.core.model import ROLES, Model


class UserMix(Model):
    """Users of each role connected to one backend pod (or belonging to one experiment shape)."""

    participant_video: int = Field(0, ge=0, description="participants with video")
    participant_no_video: int = Field(0, ge=0, description="participants without video")
    experimenter: int = Field(0, ge=0, description="experimenters")

    def __add__(self, other: UserMix) -> UserMix:
        return UserMix(**{role: getattr(self, role) + getattr(other, role) for role in ROLES})

    def times(self, count: int) -> UserMix:
        return UserMix(**{role: getattr(self, role) * count for role in ROLES})

    @property
    def users(self) -> int:
        return sum(getattr(self, role) for role in ROLES)


class RoleMemory(Model):
    """Measured memory each connected user of a role adds to a backend pod, MiB."""

    participant_video: int = Field(15, ge=0, description="MiB per participant with video")
    participant_no_video: int = Field(8, ge=0, description="MiB per participant without video")
    experimenter: int = Field(25, ge=0, description="MiB per experimenter")


class Formula(Model):
    """memory_mib = base_mib + Σ per_role_mib[role] × users[role] (the document's measured formula)."""

    base_mib: int = Field(100, ge=0, description="memory of an idle backend pod, MiB")
    per_role_mib: RoleMemory = Field(default_factory=RoleMemory, description="MiB added per user of each role")

    def users_mib(self, mix: UserMix) -> int:
        """What the users of `mix` add on top of the base: the memory one more experiment of that shape costs."""
        return sum(getattr(self.per_role_mib, role) * getattr(mix, role) for role in ROLES)

    def memory_mib(self, mix: UserMix) -> int:
        return self.base_mib + self.users_mib(mix)

    def explain(self, mix: UserMix) -> str:
        """The formula line for `mix`, e.g. `100 + 15×10 + 25×2 = 300 MiB`."""
        terms = [f"{getattr(self.per_role_mib, r)}×{getattr(mix, r)}" for r in ROLES if getattr(mix, r)]
        return " + ".join([str(self.base_mib), *terms]) + f" = {self.memory_mib(mix)} MiB"


def _document_shapes() -> dict[str, UserMix]:
    return {
        "small": UserMix(participant_no_video=5, experimenter=1),
        "medium": UserMix(participant_video=10, experimenter=2),
        "large": UserMix(participant_video=20, experimenter=3),
    }


class LoadProfile(Model):
    """Concurrent experiments per backend pod, by shape name."""

    typical: dict[str, int] = Field(description="experiments per pod at typical load: sizes the memory request")
    peak: dict[str, int] = Field(description="experiments per pod at peak load: sizes the memory limit")

    @model_validator(mode="after")
    def _counts_are_not_negative(self) -> LoadProfile:
        for level in ("typical", "peak"):
            for shape, count in getattr(self, level).items():
                if count < 0:
                    raise PathError(f"{level}.{shape}", f"must be 0 or more, got {count}")
        return self


class Headroom(Model):
    """Margin added to the formula's memory before rounding."""

    request_pct: float = Field(15, ge=0, le=400, description="percent added to typical-load memory for the request")
    limit_pct: float = Field(25, ge=0, le=400, description="percent added to peak-load memory for the limit")


class Rounding(Model):
    """How a derived memory size is rounded up to a value people recognise and nodes pack well."""

    mode: Literal["power_of_two", "step"] = Field("power_of_two", description="next power of two MiB, or next step")
    step_mib: int = Field(64, gt=0, description="step for mode=step, MiB")

    def apply(self, mib: float) -> int:
        whole = max(1, math.ceil(mib - 1e-9))  # 189.75 -> 190; float noise must not push 256.0 to 257
        if self.mode == "power_of_two":
            return 1 << (whole - 1).bit_length()
        return math.ceil(whole / self.step_mib) * self.step_mib


class CapacityConfig(Model):
    """The capacity formula, the experiment shapes and the load a backend pod is sized for."""

    formula: Formula = Field(default_factory=Formula, description="base and per-role memory, MiB")
    shapes: dict[str, UserMix] = Field(default_factory=_document_shapes, description="experiment shapes by name")
    load: LoadProfile = Field(description="typical and peak experiment mix per backend pod")
    headroom: Headroom = Field(default_factory=Headroom, description="margins on the formula's memory")
    rounding: Rounding = Field(default_factory=Rounding, description="rounding of derived sizes")
    schedule: Schedule = Field(
        default=(),
        description="planned experiment windows: the backend scales for them ahead (sizing/plan/schedule.py)",
    )

    @model_validator(mode="after")
    def _load_names_known_shapes(self) -> CapacityConfig:
        known = ", ".join(sorted(self.shapes)) or "none"
        for level in ("typical", "peak"):
            for shape in getattr(self.load, level):
                if shape not in self.shapes:
                    raise PathError(f"load.{level}.{shape}", f"unknown experiment shape (known: {known})")
        for window in self.schedule:
            for shape in window.experiments:
                if shape not in self.shapes:
                    raise PathError(
                        f"schedule.{window.name}.experiments.{shape}", f"unknown experiment shape (known: {known})"
                    )
        if self.memory_mib("peak") < self.memory_mib("typical"):
            raise PathError("load.peak", "peak load needs less memory than typical load")
        return self

    def mix(self, level: Literal["typical", "peak"]) -> UserMix:
        total = UserMix()
        for shape, count in getattr(self.load, level).items():
            total = total + self.shapes[shape].times(count)
        return total

    def memory_mib(self, level: Literal["typical", "peak"]) -> int:
        return self.formula.memory_mib(self.mix(level))
