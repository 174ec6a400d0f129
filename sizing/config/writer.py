"""Writing a stack file in place: `fit --write` sets the capacity formula's coefficients and nothing else.

ruamel.yaml's round trip keeps the comments, the key order, flow and block styles, quotes and line lengths of
every other key, so the change a reviewer sees in `git diff` is the coefficients' lines alone. It is imported by
`fit --write` only.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from sizing.core.errors import ConfigError


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line (an image reference with its digest)
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def round_trip(text: str) -> str:
    """`text` loaded and dumped unchanged: what `set_formula` keeps of the keys it does not touch."""
    yaml = _yaml()
    out = io.StringIO()
    yaml.dump(yaml.load(text), out)
    return out.getvalue()


def set_formula(path: Path, namespace: str, formula: dict[str, Any]) -> str:
    """Set `<namespace>:capacity.formula` (`base_mib`, `per_role_mib.<role>`) in the stack file at `path`; returns
    the new text, written in place."""
    from ruamel.yaml.comments import CommentedMap

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(path), f"cannot read the stack file: {err.strerror}") from None
    yaml = _yaml()
    data = yaml.load(text)
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(str(path), "a stack file is a mapping with a 'config' key")
    key = f"{namespace}:capacity"
    capacity = config.get(key)
    if not isinstance(capacity, dict):
        raise ConfigError(f"{namespace}:capacity", "must be a mapping to hold the fitted formula")
    node = capacity.get("formula")
    if node is None:
        node = capacity["formula"] = CommentedMap()
    node["base_mib"] = formula["base_mib"]
    roles = node.get("per_role_mib")
    if roles is None:
        roles = node["per_role_mib"] = CommentedMap()
    for role, value in formula["per_role_mib"].items():
        roles[role] = value
    out = io.StringIO()
    yaml.dump(data, out)
    new = out.getvalue()
    try:
        path.write_text(new, encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(path), f"cannot write the stack file: {err.strerror}") from None
    return new
