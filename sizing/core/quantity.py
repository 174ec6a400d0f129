"""Kubernetes quantities: parsing config values into whole MiB / millicores and emitting canonical strings.

The model computes in whole MiB (memory) and whole millicores (CPU). Values read from config are checked
against the apimachinery quantity grammar, then parsed by the `kubernetes` client's `parse_quantity`;
values written to manifests are in the form the API server itself would normalise to (`1Gi`, not
`1024Mi`; `1`, not `1000m`), so that Pulumi never sees a perpetual diff.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from decimal import Decimal
from functools import cache

MIB_BYTES = 1024 * 1024

# k8s.io/apimachinery/pkg/api/resource/quantity.go, splitting regexp. parse_quantity alone is lenient
# ("0.5 Gi", "2K" pass), so the grammar decides what is a quantity and the library what it is worth.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_GRAMMAR = re.compile(QUANTITY_PATTERN)


class QuantityError(ValueError):
    """A value that is not a Kubernetes quantity, or not one the model can use."""


@cache
def _library_parse_quantity() -> Callable[[str], Decimal]:
    # `import kubernetes` pulls in the whole API client (~0.2 s) for one pure function; the sizing CLI has a
    # 0.5 s budget, so the module file is loaded on its own, unchanged, from the installed package.
    package = importlib.util.find_spec("kubernetes")
    if package is None or not package.submodule_search_locations:
        raise ModuleNotFoundError("the 'kubernetes' package is required to parse quantities")
    path = f"{package.submodule_search_locations[0]}/utils/quantity.py"
    spec = importlib.util.spec_from_file_location("_hyperstudy_k8s_quantity", path)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_quantity


def is_quantity(text: str) -> bool:
    """True when `text` matches the Kubernetes quantity grammar."""
    return bool(_QUANTITY_GRAMMAR.fullmatch(text))


def parse(value: object) -> Decimal:
    """The exact value of a quantity given as a string (`"256Mi"`) or a plain number."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise QuantityError(f"{value!r} is not a quantity (write it as a string such as '256Mi')")
    if not is_quantity(value):
        raise QuantityError(f"{value!r} is not a Kubernetes quantity (e.g. '256Mi', '1Gi', '250m')")
    try:
        return _library_parse_quantity()(value)
    except (ValueError, ArithmeticError):  # decimal.Overflow is an ArithmeticError, not a ValueError
        # The library's exception says which (decimal.Overflow, InvalidOperation): a person needs only what to fix.
        raise QuantityError(f"{value!r} is not a Kubernetes quantity: too large, or not a number") from None


def _whole(value: object, unit_problem: str, *, units_per_one: int = 1, ones_per_unit: int = 1) -> int:
    """The quantity `value` counted in a smaller (millicores) or larger (MiB) unit: a whole, non-negative number.
    Decimal division and multiplication by integers are exact at these magnitudes."""
    amount = parse(value)
    try:
        scaled = amount * units_per_one / ones_per_unit
        whole = scaled == scaled.to_integral_value() and (scaled != 0 or amount == 0)
    except ArithmeticError:
        raise QuantityError(f"{value!r} is out of range") from None
    if amount < 0:
        raise QuantityError(f"{value!r} is negative")
    if not whole:
        raise QuantityError(f"{value!r} {unit_problem}")
    return int(scaled)


def to_mib(value: object) -> int:
    """A memory quantity as whole MiB; fractions of a MiB are refused rather than rounded silently."""
    return _whole(value, "is not a whole number of MiB (use Mi or Gi, e.g. '256Mi')", ones_per_unit=MIB_BYTES)


def to_millicores(value: object) -> int:
    """A CPU quantity as whole millicores."""
    return _whole(value, "is finer than a millicore", units_per_one=1000)


def format_mib(mib: int) -> str:
    """Canonical memory quantity: the largest binary suffix that keeps the number whole (1024 -> '1Gi')."""
    if mib < 0:
        raise QuantityError(f"{mib} MiB is negative")
    if mib == 0:
        return "0"
    for suffix, factor in (("Ei", 1024**4), ("Pi", 1024**3), ("Ti", 1024**2), ("Gi", 1024)):
        if mib % factor == 0:
            return f"{mib // factor}{suffix}"
    return f"{mib}Mi"


def format_millicores(millicores: int) -> str:
    """Canonical CPU quantity: whole cores without suffix ('1'), otherwise millicores ('250m')."""
    if millicores < 0:
        raise QuantityError(f"{millicores}m is negative")
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"
