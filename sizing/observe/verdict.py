"""What `python -m sizing fit` advises (write the fitted formula, keep the config's, or collect more data) by the
fixed rules of `RULES`, which `fit --help` prints as they are."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sizing.core.model import Model

MIN_DAYS = 7.0
MAX_RELATIVE_HALF_WIDTH = 0.5
MIN_HALF_WIDTH_MIB = 2.0
MIN_R2 = 0.5

RULES = f"""\
verdict rules (tried in this order):
  collect more data  the data cannot settle the formula: it covers less than {MIN_DAYS:g} days (a week holds
                     every weekday's sessions once), or a coefficient's 95 % interval is wider than
                     ± {MAX_RELATIVE_HALF_WIDTH:.0%} of its value (and than ± {MIN_HALF_WIDTH_MIB:g} MiB)
  keep               writing would not make the sizes better: the formula explains less than {MIN_R2:g} of the
                     working set's variance (R²), or every coefficient of the config lies within the fit's 95 %
                     interval, or the fitted formula changes no request, limit or node bound
  write              otherwise (--write does it; it refuses while the fitted formula fails the plan)"""

Decision = Literal["write", "keep", "collect-more-data"]


class Verdict(Model):
    """The advice and the rules that gave it."""

    decision: Decision = Field(description="write, keep, or collect-more-data")
    reasons: list[str] = Field(description="each rule that decided it, for people")


def _coefficients(values: dict[str, Any]) -> dict[str, Any]:
    return {"base_mib": values["base_mib"], **values["per_role_mib"]}


def verdict(data: dict[str, Any]) -> Verdict:
    """The verdict on a fit as `fit --json` reports it (coefficients, intervals, r2, days, current, the effects)."""
    fitted, intervals = _coefficients(data["coefficients"]), _coefficients(data["intervals"])
    current = _coefficients(data["current"])
    reasons = []
    if data["days"] < MIN_DAYS:
        reasons.append(f"the data covers {data['days']:.1f} days, less than {MIN_DAYS:g}: not every weekday's sessions")
    for name, (low, high) in intervals.items():
        half = (high - low) / 2
        if half > max(MAX_RELATIVE_HALF_WIDTH * fitted[name], MIN_HALF_WIDTH_MIB):
            reasons.append(
                f"{name} is {fitted[name]:.1f} ± {half:.1f} MiB: wider than ± {MAX_RELATIVE_HALF_WIDTH:.0%} of "
                "its value"
            )
    if reasons:
        return Verdict(decision="collect-more-data", reasons=reasons)
    if data["r2"] < MIN_R2:
        reasons.append(
            f"the formula explains {data['r2']:.2f} of the working set's variance, less than {MIN_R2:g}: something "
            "other than users drives the memory"
        )
    if all(low <= current[name] <= high for name, (low, high) in intervals.items()):
        reasons.append("every coefficient of the config is within the fit's 95 % interval")
    effect, now = data["effect"], data["current_effect"]
    if "error" not in effect and _sizes(effect) == _sizes(now):
        reasons.append("the fitted formula changes no request, limit or node bound")
    if reasons:
        return Verdict(decision="keep", reasons=reasons)
    outside = [name for name, (low, high) in intervals.items() if not low <= current[name] <= high]
    reasons.append(
        f"the config's {', '.join(outside)} {'is' if len(outside) == 1 else 'are'} outside the 95 % interval"
    )
    if "error" in effect:
        reasons.append(f"but the fitted formula fails the plan, so --write refuses until it holds: {effect['error']}")
    else:
        reasons.append(
            f"the sizes change: request {now['memory_request']} → {effect['memory_request']}, limit "
            f"{now['memory_limit']} → {effect['memory_limit']}, nodes {now['nodes']['min']}-{now['nodes']['max']} → "
            f"{effect['nodes']['min']}-{effect['nodes']['max']}"
        )
    return Verdict(decision="write", reasons=reasons)


def _sizes(effect: dict[str, Any]) -> tuple[Any, ...]:
    return (effect["workloads"], effect["nodes"])
