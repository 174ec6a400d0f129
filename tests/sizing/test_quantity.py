"""sizing/core/quantity.py: the Kubernetes quantity grammar, parsing to whole MiB / millicores, canonical output."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings, strategies as st

from sizing.core.quantity import (
    QuantityError,
    format_mib,
    format_millicores,
    is_quantity,
    parse,
    to_mib,
    to_millicores,
)


@pytest.mark.parametrize(
    ("value", "mib"),
    [
        ("256Mi", 256),
        ("0.5Gi", 512),
        ("1Gi", 1024),
        ("1.5Gi", 1536),
        (".5Gi", 512),
        ("+64Mi", 64),
        ("1048576Ki", 1024),
        ("1Ti", 1024 * 1024),
        ("0", 0),
        (268435456, 256),  # a plain int is bytes
        ("268435456", 256),
        ("1048576000m", 1),  # milli-bytes: odd but exact
    ],
)
def test_to_mib_accepts_quantities(value: object, mib: int) -> None:
    assert to_mib(value) == mib


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("256MB", "is not a Kubernetes quantity"),  # not a suffix
        ("0.5 Gi", "is not a Kubernetes quantity"),  # the library alone would take it
        ("2K", "is not a Kubernetes quantity"),  # decimal kilo is lowercase k; the library alone takes K
        ("256mi", "is not a Kubernetes quantity"),
        ("abc", "is not a Kubernetes quantity"),
        ("", "is not a Kubernetes quantity"),
        ("1Gi ", "is not a Kubernetes quantity"),
        ("1,5Gi", "is not a Kubernetes quantity"),
        ("100M", "is not a whole number of MiB"),  # 10^8 bytes
        ("2k", "is not a whole number of MiB"),
        ("1.0001Gi", "is not a whole number of MiB"),
        (1000, "is not a whole number of MiB"),
        ("-1Mi", "is negative"),
        (-1048576, "is negative"),
        (0.5, "is not a quantity"),  # floats are refused: write a string
        (True, "is not a quantity"),
        (None, "is not a quantity"),
    ],
)
def test_to_mib_refuses(value: object, problem: str) -> None:
    with pytest.raises(QuantityError, match=problem) as err:
        to_mib(value)
    assert "\n" not in str(err.value)


def test_grammar_is_stricter_than_the_library() -> None:
    # The kubernetes library parses these; the grammar is what decides they are not quantities.
    assert not is_quantity("2K")
    assert not is_quantity("0.5 Gi")
    assert is_quantity("2k")
    assert is_quantity("1e3")
    assert is_quantity("1.5E-2")


def test_grammar_refuses_a_trailing_newline() -> None:
    # A YAML block scalar (`limit: |` then `256Mi`) yields "256Mi\n".
    assert not is_quantity("256Mi\n")


def test_huge_exponent_is_a_quantity_error() -> None:
    with pytest.raises(QuantityError):
        to_mib("1e999999999999999999")


def test_parse_is_exact() -> None:
    assert parse("0.5Gi") == Decimal(512 * 1024 * 1024)
    assert parse("250m") == Decimal("0.25")


@pytest.mark.parametrize(
    ("value", "millicores"), [("250m", 250), ("1", 1000), ("0.5", 500), (2, 2000), ("1500m", 1500)]
)
def test_to_millicores(value: object, millicores: int) -> None:
    assert to_millicores(value) == millicores


@pytest.mark.parametrize(
    ("value", "problem"), [("0.5m", "finer than a millicore"), ("-250m", "is negative"), ("1 core", "not a Kubernetes")]
)
def test_to_millicores_refuses(value: object, problem: str) -> None:
    with pytest.raises(QuantityError, match=problem):
        to_millicores(value)


@pytest.mark.parametrize(
    ("mib", "text"),
    [(0, "0"), (1, "1Mi"), (256, "256Mi"), (1024, "1Gi"), (1536, "1536Mi"), (3072, "3Gi"), (1048576, "1Ti")],
)
def test_format_mib_is_canonical(mib: int, text: str) -> None:
    assert format_mib(mib) == text


@pytest.mark.parametrize(("millicores", "text"), [(0, "0"), (1000, "1"), (250, "250m"), (1500, "1500m"), (4000, "4")])
def test_format_millicores_is_canonical(millicores: int, text: str) -> None:
    assert format_millicores(millicores) == text


@pytest.mark.parametrize("formatter", [format_mib, format_millicores])
def test_format_refuses_negative(formatter) -> None:
    with pytest.raises(QuantityError, match="negative"):
        formatter(-1)


@settings(settings.get_profile("sizing"))
@given(st.one_of(st.integers(0, 1 << 20), st.integers(0, 1 << 39)))
def test_format_mib_round_trips_and_is_canonical(canonical_mib, mib: int) -> None:
    text = format_mib(mib)
    assert to_mib(text) == mib
    assert canonical_mib(text), text


@settings(settings.get_profile("sizing"))
@given(st.integers(0, 10**7))
def test_format_millicores_round_trips_and_is_canonical(millicores: int) -> None:
    text = format_millicores(millicores)
    assert to_millicores(text) == millicores
    assert text.endswith("m") == (millicores % 1000 != 0)


@settings(settings.get_profile("sizing"))
@given(st.integers(0, 1 << 30), st.sampled_from([("Mi", 1), ("Gi", 1024), ("Ti", 1024**2)]))
def test_binary_suffixes_scale_exactly(number: int, suffix: tuple[str, int]) -> None:
    name, factor = suffix
    assert to_mib(f"{number}{name}") == number * factor
