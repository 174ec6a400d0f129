"""The stack config's reference, generated from the models: a JSON Schema of a whole `Pulumi.<stack>.yaml` (so an
editor with a YAML language server validates a stack file as it is typed) and a Markdown page of every key with
its type, default and description. `make reference` writes both; tests/sizing/test_reference.py fails when either
is stale, so the reference never drifts from what `load_stack` accepts.

The models are the truth. Three things their own schema would get wrong are corrected here, each at its source:
quantities (`256Mi` as well as a number of MiB) through `WithJsonSchema` on `MiB`/`Millicores`; keys a
before-validator fills in when omitted, marked `DEFAULTED` on their field; and secrets, which a stack file holds as
`secure:` ciphertext under keys a receiver names.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

from sizing.config.loader import project_name
from sizing.config.stack import StackConfig
from sizing.core.model import DEFAULTED
from sizing.core.quantity import QUANTITY_PATTERN

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = Path("schema/stack.schema.json")
MARKDOWN_PATH = Path("docs/reference/configuration.md")
_SECURE = {
    "type": "object",
    "description": "a secret, as `pulumi config set --secret` writes it",
    "properties": {"secure": {"type": "string", "minLength": 1}},
    "required": ["secure"],
    "additionalProperties": False,
}


def _strip_defaulted(node: Any) -> None:
    """Drop the DEFAULTED marker, and the marked keys from `required`: omitting them is valid."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict) and "required" in node:
            defaulted = {key for key, value in properties.items() if isinstance(value, dict) and value.get(DEFAULTED)}
            node["required"] = [key for key in node["required"] if key not in defaulted]
            if not node["required"]:
                del node["required"]
        node.pop(DEFAULTED, None)
        for value in node.values():
            _strip_defaulted(value)
    elif isinstance(node, list):
        for value in node:
            _strip_defaulted(value)


def values_schema() -> dict[str, Any]:
    """The schema of the project's config values (namespace stripped), as `parse_stack_config` validates them."""
    schema = copy.deepcopy(StackConfig.model_json_schema(by_alias=True, mode="validation"))
    _strip_defaulted(schema)
    return schema


def stack_file_schema(namespace: str) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) of a whole stack file: `config` holds `<namespace>:<key>` for every top-level
    key, secrets as `secure:` values under any other key of the namespace, and other namespaces' keys as they are."""
    values = values_schema()
    defs = values.pop("$defs")
    keys = sorted(values["properties"])
    config = {
        "type": "object",
        "description": f"stack config: the {namespace} keys (docs/reference/configuration.md) and other providers'",
        "properties": {f"{namespace}:{key}": values["properties"][key] for key in keys},
        "required": [f"{namespace}:{key}" for key in values.get("required", [])],
        "patternProperties": {
            # Any other key of the namespace is a receiver's secret, held as ciphertext (plaintext is refused).
            f"^{namespace}:(?!({'|'.join(keys)})$)": _SECURE,
            # gcp:project, kubernetes:context and the like belong to their providers.
            f"^(?!{namespace}:)[A-Za-z0-9_.-]+:": {},
        },
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://hyperstudy.org/schema/stack.schema.json",
        "title": f"Pulumi stack file of {namespace}",
        "type": "object",
        "properties": {
            "config": config,
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
            "environment": {},
        },
        "$defs": defs,
    }


# --- Markdown ------------------------------------------------------------------------------------------------------


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return defs[ref.rsplit("/", 1)[1]] if ref else schema


def _variants(schema: dict[str, Any], defs: dict[str, Any]) -> list[dict[str, Any]]:
    """The alternatives of a union, null left out; a plain schema is its own one alternative."""
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return [_resolve(o, defs) for o in options if o.get("type") != "null"]
    return [_resolve(schema, defs)]


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    options = schema.get("anyOf") or schema.get("oneOf")
    if options and any(o.get("pattern") == QUANTITY_PATTERN for o in options):
        return "quantity" + (" or null" if any(o.get("type") == "null" for o in options) else "")
    if options and any("anyOf" in o for o in options):
        return " or ".join(_type(o, defs) for o in options)
    if options:
        return " or ".join(_type(o, defs) for o in options)
    if "$ref" in schema:
        return "mapping"
    if "enum" in schema:
        return " | ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array":
        items = schema.get("items") or (schema.get("prefixItems") or [{}])[0]
        return f"list of {_type(items, defs)}"
    if kind == "object" and "additionalProperties" in schema and schema["additionalProperties"] not in (False, True):
        return f"mapping of name to {_type(schema['additionalProperties'], defs)}"
    return kind or "any"


def _default(schema: dict[str, Any]) -> str:
    if "default" not in schema:
        return ""
    value = schema["default"]
    if value in ({}, [], ()):
        return ""
    text = json.dumps(value, ensure_ascii=False)
    return f"`{text}`" if len(text) <= 40 else "(see the description)"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _rows(
    path: str, schema: dict[str, Any], defs: dict[str, Any], required: bool, out: list[str], row: bool = True
) -> None:
    if row:
        description = schema.get("description") or _variants(schema, defs)[0].get("description", "")
        out.append(
            f"| `{path}` | {_cell(_type(schema, defs))} | {'yes' if required else ''} | {_cell(_default(schema))} | "
            f"{_cell(description)} |"
        )
    for variant in _variants(schema, defs):
        kind = variant.get("type")
        if kind == "object" and "properties" in variant:
            needed = set(variant.get("required", []))
            for key, child in variant["properties"].items():
                _rows(f"{path}.{key}", child, defs, key in needed, out)
        elif kind == "object" and isinstance(variant.get("additionalProperties"), dict):
            # The mapping's row says what each value is; only a model's keys get rows of their own.
            _rows(f"{path}.<name>", variant["additionalProperties"], defs, True, out, row=False)
        elif kind == "array" and isinstance(variant.get("items"), dict):
            item = _resolve(variant["items"], defs)
            if "properties" in item:
                needed = set(item.get("required", []))
                for key, child in item["properties"].items():
                    _rows(f"{path}[].{key}", child, defs, key in needed, out)


def markdown(namespace: str) -> str:
    """Every key of the namespace, top-level key by key: type, whether it is required, default, description."""
    values = values_schema()
    defs = values["$defs"]
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by `make reference` (sizing/config/reference.py) from the config models: do not edit. -->",
        "",
        f"Every key of the `{namespace}` namespace of a stack file (`Pulumi.<stack>.yaml`, under `config:`), as "
        "`python -m sizing` and the Pulumi program validate it. Quantities are Kubernetes quantities (`256Mi`, `1Gi`, "
        "`250m`); a key of a mapping written `<name>` is yours to choose. Editors validate a stack file with "
        f"[`{SCHEMA_PATH}`](https://github.com/hyperstudy/hyperstudy-infra/blob/main/{SCHEMA_PATH}) (add "
        f"`# yaml-language-server: $schema=./{SCHEMA_PATH}` as a stack file's first line).",
        "",
    ]
    needed = set(values.get("required", []))
    for key, schema in values["properties"].items():
        lines += [f"## `{key}`", "", schema.get("description", "").capitalize(), ""]
        lines += ["| key | type | required | default | description |", "|---|---|---|---|---|"]
        rows: list[str] = []
        _rows(key, schema, defs, key in needed, rows)
        lines += rows
        lines.append("")
    return "\n".join(lines)


def outputs(project_dir: Path = ROOT) -> dict[Path, str]:
    """The generated files, by path relative to the project: what `--write` writes and `--check` compares."""
    namespace = project_name(project_dir)
    return {
        SCHEMA_PATH: json.dumps(stack_file_schema(namespace), indent=2, ensure_ascii=False) + "\n",
        MARKDOWN_PATH: markdown(namespace),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sizing.config.reference", description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="write the files (default: check they are current)")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        target = ROOT / path
        if args.write:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
        elif not target.is_file() or target.read_text(encoding="utf-8") != text:
            stale.append(str(path))
    if stale:
        print(f"stale: {', '.join(stale)}: run `make reference`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
