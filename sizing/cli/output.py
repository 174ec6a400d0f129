"""The data of a command as `-o json` or `-o yaml` prints it: the same object either way (YAML of the JSON)."""

from __future__ import annotations

import json
from typing import Any

OUTPUTS = ("table", "json", "yaml")


def dump(data: Any, fmt: str) -> str:
    """`data` as JSON (indented, as `--json` always printed it) or as the YAML of that JSON."""
    text = json.dumps(data, indent=2)
    if fmt == "json":
        return text
    import yaml

    # Through JSON: tuples, dates and the like become what the JSON shows, and the YAML holds nothing else.
    return yaml.safe_dump(json.loads(text), sort_keys=False, allow_unicode=True, width=4096).rstrip("\n")
