"""Writing a stack file in place: `fit --write` sets the capacity formula's coefficients, `schedule add` /
`schedule remove` add or remove one window of `capacity.schedule`, and nothing else changes.

ruamel.yaml's round trip keeps the comments, the key order, flow and block styles, quotes and line lengths of
every other key, so the change a reviewer sees in `git diff` is the edited lines alone. It is imported by these
commands only.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sizing.core.errors import ConfigError, did_you_mean


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line (an image reference with its digest)
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def round_trip(text: str) -> str:
    """`text` loaded and dumped unchanged: what every edit keeps of the keys it does not touch."""
    yaml = _yaml()
    out = io.StringIO()
    yaml.dump(yaml.load(text), out)
    return out.getvalue()


def read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "stack file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), f"cannot read the stack file: {getattr(err, 'strerror', None) or err}") from None


def write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(path), f"cannot write the stack file: {err.strerror}") from None


def _edited(text: str, source: str, change: Callable[[dict[str, Any]], None]) -> str:
    """`text` with `change` applied to its `config` mapping, dumped by the round trip."""
    yaml = _yaml()
    data = yaml.load(text)
    config = data.get("config") if isinstance(data, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(source, "a stack file is a mapping with a 'config' key")
    change(config)
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _capacity(config: dict[str, Any], namespace: str, why: str) -> dict[str, Any]:
    capacity = config.get(f"{namespace}:capacity")
    if not isinstance(capacity, dict):
        raise ConfigError(f"{namespace}:capacity", f"must be a mapping to hold {why}")
    return capacity


def set_formula(path: Path, namespace: str, formula: dict[str, Any]) -> str:
    """Set `<namespace>:capacity.formula` (`base_mib`, `per_role_mib.<role>`) in the stack file at `path`; returns
    the new text, written in place."""
    from ruamel.yaml.comments import CommentedMap

    def change(config: dict[str, Any]) -> None:
        capacity = _capacity(config, namespace, "the fitted formula")
        node = capacity.get("formula")
        if node is None:
            node = capacity["formula"] = CommentedMap()
        node["base_mib"] = formula["base_mib"]
        roles = node.get("per_role_mib")
        if roles is None:
            roles = node["per_role_mib"] = CommentedMap()
        for role, value in formula["per_role_mib"].items():
            roles[role] = value

    new = _edited(read(path), str(path), change)
    write(path, new)
    return new


def _flow(values: dict[str, Any]) -> Any:
    """A flow mapping (`{days: [tue], start: "14:00", …}`), as the stack files write a window's times; strings
    double-quoted, so that YAML 1.1 (PyYAML) reads `14:00` and an instant as the text Pulumi reads."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString

    node = CommentedMap()
    for key, value in values.items():
        if isinstance(value, list):
            value = CommentedSeq(value)
            value.fa.set_flow_style()
        elif isinstance(value, str) and key in ("start", "end"):
            value = DoubleQuotedScalarString(value)
        node[key] = value
    node.fa.set_flow_style()
    return node


def with_window(text: str, source: str, namespace: str, window: dict[str, Any]) -> str:
    """`text` with `window` (name, weekly or once, experiments, and any other keys) appended to
    `<namespace>:capacity.schedule`; the text is not written."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    def change(config: dict[str, Any]) -> None:
        capacity = _capacity(config, namespace, "a schedule")
        windows = capacity.get("schedule")
        if windows is None:
            windows = capacity["schedule"] = CommentedSeq()
        if not isinstance(windows, list):
            raise ConfigError(f"{namespace}:capacity.schedule", "must be a list of windows")
        if any(isinstance(w, dict) and w.get("name") == window["name"] for w in windows):
            raise ConfigError(
                f"{namespace}:capacity.schedule.{window['name']}",
                "a window of this name exists: `schedule remove` it first, or choose another name",
            )
        node = CommentedMap()
        for key, value in window.items():
            node[key] = _flow(value) if isinstance(value, dict) else value
        if windows.fa.flow_style():
            windows.fa.set_block_style()
        windows.append(node)

    return _edited(text, source, change)


def without_window(text: str, source: str, namespace: str, name: str) -> str:
    """`text` with the window `name` of `<namespace>:capacity.schedule` taken out, the comment lines right above it
    with it (they are about it: ruamel would keep them and drop the next window's instead); not written."""
    found: list[tuple[int, int]] = []

    def change(config: dict[str, Any]) -> None:
        capacity = _capacity(config, namespace, "a schedule")
        windows = capacity.get("schedule") or []
        names = [w.get("name") if isinstance(w, dict) else None for w in windows]
        if name not in names:
            known = [str(n) for n in names if n is not None]
            raise ConfigError(
                f"{namespace}:capacity.schedule",
                f"no window named {name!r}{did_you_mean(name, known)} (windows: {', '.join(known) or 'none'})",
            )
        index = names.index(name)
        if not windows.fa.flow_style():
            found.append(windows.lc.item(index))
        del windows[index]

    edited = _edited(text, source, change)
    if not found:
        return edited
    cut = _without_item(text, *found[0])
    # The cut is checked against ruamel's own removal: the same data, or ruamel's text is the answer.
    yaml = _yaml()
    return cut if yaml.load(cut) == yaml.load(edited) else edited


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _without_item(text: str, line: int, column: int) -> str:
    """`text` without the block sequence item whose content starts at (line, column): its lines, the lines indented
    under its dash, and the comment lines at the dash's indent right above it."""
    lines = text.splitlines(keepends=True)
    dash = lines[line].rfind("-", 0, column)
    first = line
    while first > 0 and lines[first - 1].lstrip().startswith("#") and _indent(lines[first - 1]) == dash:
        first -= 1
    last = line + 1
    while last < len(lines):
        current = lines[last]
        if not current.strip():
            following = next((x for x in lines[last:] if x.strip()), "")
            if _indent(following) <= dash:
                break
        elif _indent(current) <= dash:
            break
        last += 1
    return "".join(lines[:first] + lines[last:])


def _inline(values: dict[str, Any]) -> Any:
    """A mapping on one line, nested mappings too, as the stack files write a component's sizes."""
    from ruamel.yaml.comments import CommentedMap

    node = CommentedMap()
    for key, value in values.items():
        node[key] = _inline(value) if isinstance(value, dict) else value
    node.fa.set_flow_style()
    return node


def with_sizes(text: str, source: str, namespace: str, profile: str, sizes: dict[str, dict[str, Any]]) -> str:
    """`text` with each entry's sizes set: `sizes` maps a dotted config path (`workloads.frontend`,
    `monitoring.components.prometheus`) to `cpu_request` and, unless its memory is the formula's, `request` and
    `limit` of `memory.<profile>`; an entry the file leaves to its defaults is written whole from `default` (its
    sizes set). Nothing else changes; the text is not written."""
    from ruamel.yaml.comments import CommentedMap

    def node_at(config: dict[str, Any], path: str, default: dict[str, Any] | None) -> dict[str, Any]:
        top, *rest = path.split(".")
        node = config.get(f"{namespace}:{top}")
        if not isinstance(node, dict):
            if default is None:
                raise ConfigError(f"{namespace}:{top}", "not in the stack file: cannot set the sizes under it")
            node = config[f"{namespace}:{top}"] = CommentedMap()
        for depth, key in enumerate(rest):
            child = node.get(key)
            if not isinstance(child, dict):
                where = f"{namespace}:{'.'.join([top, *rest[: depth + 1]])}"
                if default is None:
                    raise ConfigError(where, "not in the stack file: cannot set its sizes")
                child = node[key] = _inline(default) if depth == len(rest) - 1 else CommentedMap()
            node = child
        return node

    def change(config: dict[str, Any]) -> None:
        for path, entry in sizes.items():
            node = node_at(config, path, entry.get("default"))
            node["cpu_request"] = entry["cpu_request"]
            if "request" not in entry:
                continue
            memory = node.get("memory")
            if not isinstance(memory, dict):
                raise ConfigError(f"{namespace}:{path}.memory", "must be a mapping of profiles")
            sized = memory.get(profile)
            if not isinstance(sized, dict):
                sized = memory[profile] = _flow({})
            sized["request"], sized["limit"] = entry["request"], entry["limit"]

    return _edited(text, source, change)
