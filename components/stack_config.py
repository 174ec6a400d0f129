"""The program's one config loader: every key of the project's namespace, read through `pulumi.Config`, validated
into the same `StackConfig` as `python -m sizing`, so a stack that plans offline deploys with the same meaning.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from sizing.config import StackConfig, parse_stack_config
from sizing.errors import ConfigError


def _decode(raw: str) -> Any:
    try:
        return json.loads(raw)  # objects and numbers arrive JSON-encoded
    except ValueError:
        return raw  # a plain string value such as `optimized`


def _keys_set(namespace: str) -> set[str]:
    # pulumi.Config can only look keys up. Listing what the engine passed is what lets a misspelt key be refused
    # rather than silently ignored.
    prefix = f"{namespace}:"
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {key.removeprefix(prefix) for key in merged if key.startswith(prefix)}


def project_values(namespace: str) -> dict[str, Any]:
    """The project's config values, decoded, namespace stripped; other namespaces (gcp:, kubernetes:) skipped."""
    config = pulumi.Config(namespace)
    values = {}
    for key in sorted(_keys_set(namespace) | set(StackConfig.model_fields)):
        raw = config.get(key)
        if raw is not None:
            values[key] = _decode(raw)
    return values


def load_program_config(namespace: str | None = None) -> StackConfig:
    """The validated config of the running stack, with what the program needs beyond sizing required."""
    namespace = namespace or pulumi.get_project()
    config = parse_stack_config(project_values(namespace), namespace)
    if config.cluster is None:
        raise ConfigError(config.key("cluster"), "required key is missing (the cluster to deploy to)")
    for name in config.workloads:
        if name not in config.images:
            raise ConfigError(config.key(f"images.{name}"), "required key is missing (a pinned image per workload)")
    return config
