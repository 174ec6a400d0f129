"""Prometheus durations (prometheus/common model.ParseDuration): the pattern a config value must match, and their
conversion to and from seconds. The config's `for:` values, the alerts' pending times, the heartbeat's interval and
the CLI's `--since` are all read and written here.
"""

from __future__ import annotations

import re

DURATION_PATTERN = r"^(0|([0-9]+y)?([0-9]+w)?([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?)$"
_UNIT_SECONDS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_PART = re.compile(r"([0-9]+)(ms|[ywdhms])")


def duration_seconds(duration: str) -> float:
    """A Prometheus duration (`10m`, `1h30m`, `0`) in seconds."""
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _PART.findall(duration))


def duration_text(seconds: float) -> str:
    """Seconds as a Prometheus duration: `10m`, `1h5m`, `10m30s`; `0m` for none (as the config writes it)."""
    ms = round(seconds * 1000)
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts) or "0m"
