"""sizing/config/capacity.py Formula: memory_mib = base + Σ per_role_mib[role] × users[role], with the
document's numbers."""

from __future__ import annotations

import pytest

from sizing.config.capacity import Formula, RoleMemory, UserMix
from sizing.plan.sizes import size_workloads

SMALL = UserMix(participant_no_video=5, experimenter=1)
MEDIUM = UserMix(participant_video=10, experimenter=2)
LARGE = UserMix(participant_video=20, experimenter=3)


def test_document_coefficients_are_the_defaults() -> None:
    formula = Formula()
    assert formula.base_mib == 100
    assert (
        formula.per_role_mib.participant_video,
        formula.per_role_mib.participant_no_video,
        formula.per_role_mib.experimenter,
    ) == (15, 8, 25)


@pytest.mark.parametrize(
    ("mix", "mib"),
    [
        (SMALL, 165),  # 100 + 8×5 + 25×1
        (MEDIUM, 300),  # 100 + 15×10 + 25×2
        (LARGE, 475),  # 100 + 15×20 + 25×3
        (UserMix(), 100),  # an idle pod is the base
    ],
)
def test_document_examples(mix: UserMix, mib: int) -> None:
    assert Formula().memory_mib(mix) == mib


@pytest.mark.parametrize(("mix", "mib"), [(SMALL, 65), (MEDIUM, 200), (LARGE, 375), (UserMix(), 0)])
def test_users_mib_excludes_the_base(mix: UserMix, mib: int) -> None:
    formula = Formula()
    assert formula.users_mib(mix) == mib
    assert formula.memory_mib(mix) - formula.users_mib(mix) == formula.base_mib


def test_coefficients_are_overridable() -> None:
    formula = Formula(
        base_mib=50, per_role_mib=RoleMemory(participant_video=20, participant_no_video=1, experimenter=2)
    )
    assert formula.memory_mib(MEDIUM) == 50 + 20 * 10 + 2 * 2
    assert formula.memory_mib(SMALL) == 50 + 1 * 5 + 2 * 1


def test_a_partial_override_keeps_the_other_coefficients() -> None:
    formula = Formula.model_validate({"per_role_mib": {"participant_video": 30}})
    assert formula.memory_mib(MEDIUM) == 100 + 30 * 10 + 25 * 2


def test_stack_coefficients_drive_the_backend_sizes(prod_values, parse) -> None:
    prod_values["capacity"]["formula"] = {"base_mib": 400, "per_role_mib": {"experimenter": 100}}
    backend = size_workloads(parse(prod_values))["backend"]
    assert backend.derivation is not None
    assert backend.derivation.typical_mib == 400 + 8 * 5 + 100 * 1
    assert backend.derivation.peak_mib == 400 + 15 * 10 + 100 * 2
    # 540 × 1.15 = 621 → 1024; 750 × 1.25 = 937.5 → 1024
    assert (backend.memory_request_mib, backend.memory_limit_mib) == (1024, 1024)


@pytest.mark.parametrize(
    ("mix", "text"),
    [
        (SMALL, "100 + 8×5 + 25×1 = 165 MiB"),
        (MEDIUM, "100 + 15×10 + 25×2 = 300 MiB"),
        (LARGE, "100 + 15×20 + 25×3 = 475 MiB"),
        (UserMix(participant_video=1, participant_no_video=2, experimenter=3), "100 + 15×1 + 8×2 + 25×3 = 206 MiB"),
        (UserMix(), "100 = 100 MiB"),
    ],
)
def test_explain_shows_the_arithmetic(mix: UserMix, text: str) -> None:
    assert Formula().explain(mix) == text


def test_user_mix_arithmetic() -> None:
    combined = SMALL + MEDIUM
    assert combined == UserMix(participant_video=10, participant_no_video=5, experimenter=3)
    assert SMALL.times(3) == UserMix(participant_no_video=15, experimenter=3)
    assert LARGE.users == 23
    # the formula is linear: two experiments cost the base once and their users twice
    formula = Formula()
    assert formula.memory_mib(SMALL + SMALL) == formula.base_mib + 2 * formula.users_mib(SMALL)
