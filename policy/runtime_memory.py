"""Runtime memory settings of a container, parsed into bytes: Node.js heap, Redis maxmemory, Go GOMEMLIMIT.

Each runtime has its own syntax (V8 counts MiB, Redis reads `mb` as MiB and `m` as 10^6 bytes, Go takes `MiB`), so
each is parsed by its own rules. A value the runtime itself would refuse comes back with a problem instead of a
size: the container would not start, which the pack reports rather than skips.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from policy.kube import items
from sizing.core.quantity import MIB_BYTES

# The name policy.policies reads the MiB size by; the size itself is sizing's, the one the plan computes with.
MIB = MIB_BYTES
NODE_HEAP = "Node.js heap"
REDIS_MAXMEMORY = "Redis maxmemory"
GO_MEMLIMIT = "Go memory limit"

# V8 takes `--max-old-space-size=N` and `--max_old_space_size N` alike; N is in MiB.
_NODE_FLAG = re.compile(r"^--max[-_]old[-_]space[-_]size(?:=(.*))?$")
# Redis memtoull(): an integer and an optional unit, case-insensitive; `k` is 1000, `kb` 1024.
_REDIS_VALUE = re.compile(r"^([0-9]+)(b|k|kb|m|mb|g|gb)?$", re.IGNORECASE)
_REDIS_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
# Go runtime parseByteCount(): an integer and an optional binary unit, case-sensitive.
_GO_VALUE = re.compile(r"^([0-9]+)(B|KiB|MiB|GiB|TiB)?$")
_GO_UNITS = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}


@dataclass(frozen=True)
class RuntimeSetting:
    """One memory ceiling a runtime reads, as written and in bytes."""

    runtime: str  # NODE_HEAP, REDIS_MAXMEMORY or GO_MEMLIMIT: names the setting in messages
    text: str  # as written: "--max-old-space-size=384"
    where: str  # where it was found: "env NODE_OPTIONS", "args"
    size: int | None = None  # bytes; None when the runtime would refuse the value
    problem: str | None = None  # why the runtime would refuse it

    @property
    def unlimited(self) -> bool:
        """0 is no ceiling at all for Redis (maxmemory 0) and V8 (its default heap size); for Go it is a limit."""
        return self.size == 0 and self.runtime != GO_MEMLIMIT


def _tokens(values: list[Any]) -> list[str]:
    # Each argv element is split as a shell would: `sh -c "redis-server --maxmemory 89mb"` hides its flags in one.
    tokens: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        try:
            tokens.extend(shlex.split(value))
        except ValueError:  # unbalanced quotes: still look at the words
            tokens.extend(value.split())
    return tokens


def _node_settings(tokens: list[str], where: str) -> Iterator[RuntimeSetting]:
    for index, token in enumerate(tokens):
        match = _NODE_FLAG.match(token)
        if match is None:
            continue
        value = match.group(1)
        text = token
        if value is None:
            value = tokens[index + 1] if index + 1 < len(tokens) else ""
            text = f"{token} {value}".rstrip()
        if value.isdigit():
            yield RuntimeSetting(NODE_HEAP, text, where, int(value) * MIB_BYTES)
        else:
            yield RuntimeSetting(NODE_HEAP, text, where, problem="is not a whole number of MiB")


def _redis_settings(tokens: list[str], where: str) -> Iterator[RuntimeSetting]:
    for index, token in enumerate(tokens):
        if token != "--maxmemory":
            continue
        value = tokens[index + 1] if index + 1 < len(tokens) else ""
        text = f"{token} {value}".rstrip()
        match = _REDIS_VALUE.match(value)
        if match is None:
            yield RuntimeSetting(REDIS_MAXMEMORY, text, where, problem="is not a Redis memory value (e.g. 89mb)")
        else:
            unit = (match.group(2) or "").lower()
            yield RuntimeSetting(REDIS_MAXMEMORY, text, where, int(match.group(1)) * _REDIS_UNITS[unit])


def _go_setting(value: str) -> RuntimeSetting | None:
    text = f"GOMEMLIMIT={value}"
    if value == "off":
        return None  # the Go default: no soft limit, nothing to compare
    match = _GO_VALUE.match(value)
    if match is None:
        return RuntimeSetting(GO_MEMLIMIT, text, "env", problem="is not a Go memory limit (e.g. 115MiB)")
    return RuntimeSetting(GO_MEMLIMIT, text, "env", int(match.group(1)) * _GO_UNITS[match.group(2) or ""])


def runtime_settings(container: Mapping[str, Any]) -> list[RuntimeSetting]:
    """Every Node.js heap, Redis maxmemory and GOMEMLIMIT setting in a container's env, command and args.

    Only literal env values are read: one from a ConfigMap or Secret (`valueFrom`) is not in the program.
    """
    settings: list[RuntimeSetting] = []
    for variable in items(container.get("env")):
        if not isinstance(variable, Mapping) or not isinstance(variable.get("value"), str):
            continue
        name, value = variable.get("name"), variable["value"]
        if name == "NODE_OPTIONS":
            settings.extend(_node_settings(_tokens([value]), "env NODE_OPTIONS"))
        elif name == "GOMEMLIMIT":
            setting = _go_setting(value.strip())
            if setting is not None:
                settings.append(setting)
    for field in ("command", "args"):
        tokens = _tokens(items(container.get(field)))
        settings.extend(_node_settings(tokens, field))
        settings.extend(_redis_settings(tokens, field))
    return settings
