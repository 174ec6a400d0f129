"""How many more experiments a backend pod can admit: the one definition of a slot.

The slots record of the rules, `python -m sizing slots` and anything later that asks "does another experiment
fit" count the same way: the room under the near-limit threshold (`monitoring.alerts.memory_near_limit`), not
under the limit itself, so admitting an experiment that fits never trips HyperStudyMemoryNearLimit.
"""

from __future__ import annotations

import math
from fractions import Fraction


def slots(limit_mib: int, used_mib: float, shape_mib: int, threshold: float) -> int:
    """max(0, ⌊(threshold × limit − used) ÷ shape⌋): experiments of `shape_mib` that fit in one pod beside `used_mib`.

    Computed exactly (the threshold as the decimal it is written as), so a boundary case is not lost to float
    rounding; with whole MiB this equals ⌊(⌊threshold × limit⌋ − used) ÷ shape⌋.
    """
    if shape_mib <= 0:
        raise ValueError("an experiment that needs no memory has no slots to count")
    return max(0, math.floor(room(limit_mib, used_mib, threshold) / shape_mib))


def room(limit_mib: int, used_mib: float, threshold: float) -> Fraction:
    """threshold × limit − used, exactly: the memory a pod can still give experiments (negative when it is over)."""
    return Fraction(repr(float(threshold))) * limit_mib - Fraction(used_mib)
