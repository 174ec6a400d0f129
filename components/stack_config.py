"""The program's one config loader: every key of the project's namespace, read through Pulumi, into StackConfig.

Keys reach a Pulumi program as strings (objects JSON-encoded); this module decodes them and hands them to the
same validation `python -m sizing` uses, so a stack that plans offline deploys with the same meaning.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from sizing.config import StackConfig, parse_stack_config
from sizing.errors import ConfigError


def _decode(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # a plain string value such as `optimized`


def project_values(project: str) -> dict[str, Any]:
    """All config values of `project`'s namespace, decoded, namespace stripped (other namespaces skipped)."""
    # pulumi.Config can only look keys up; listing them is what lets an unknown key be refused instead of ignored.
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefix = f"{project}:"
    return {key.removeprefix(prefix): _decode(value) for key, value in merged.items() if key.startswith(prefix)}


def load_program_config(project: str | None = None) -> StackConfig:
    """The validated config of the running stack, with what the program needs beyond sizing required."""
    namespace = project or pulumi.get_project()
    config = parse_stack_config(project_values(namespace), namespace)
    if config.cluster is None:
        raise ConfigError(f"{namespace}:cluster", "required key is missing (the cluster to deploy to)")
    for name in config.workloads:
        if name not in config.images:
            raise ConfigError(f"{namespace}:images.{name}", "required key is missing (a pinned image per workload)")
    return config
