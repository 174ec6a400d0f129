"""The one definition of a slot: experiments that fit in a pod below the near-limit threshold."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from sizing.core.capacity import slots


def test_prod_medium_slots_stop_at_the_threshold_not_the_limit() -> None:
    # 512 MiB limit, 165 MiB typical, 200 MiB per medium experiment: one fits under 90 % (460.8 MiB).
    assert slots(512, 165, 200, 0.9) == 1
    # At 1 GiB the threshold is what costs a slot: (921.6 − 165) / 200 = 3.78, while (1024 − 165) / 200 = 4.29.
    assert slots(1024, 165, 200, 0.9) == 3
    assert slots(1024, 165, 200, 0.999999) == 4


def test_a_pod_above_the_threshold_has_no_slot_rather_than_a_negative_one() -> None:
    assert slots(512, 500, 10, 0.9) == 0


def test_exact_at_the_boundary_where_floats_round_down() -> None:
    # 0.7 × 90 is 62.99999999999999 in binary floating point; the threshold is the decimal 0.7, so 63 exactly.
    assert math.floor(0.7 * 90) == 62
    assert slots(90, 0, 63, 0.7) == 1
    assert slots(180, 0, 63, 0.35) == 1


def test_an_experiment_without_memory_has_no_slots() -> None:
    with pytest.raises(ValueError, match="no memory"):
        slots(512, 0, 0, 0.9)


@given(
    limit=st.integers(1, 1 << 20),
    used=st.integers(0, 1 << 20),
    shape=st.integers(1, 1 << 16),
    tenths=st.integers(1, 99),
)
def test_equals_the_floor_of_the_whole_mib_room(limit: int, used: int, shape: int, tenths: int) -> None:
    # The identity the definition relies on: ⌊(t·L − used) / S⌋ = ⌊(⌊t·L⌋ − used) / S⌋ for whole used and S.
    threshold = tenths / 100
    room = math.floor(Fraction(tenths, 100) * limit) - used
    assert slots(limit, used, shape, threshold) == max(0, room // shape)
