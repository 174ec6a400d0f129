"""The program's one config loader: every key of the project's namespace, read through `pulumi.Config`, validated
into the same `StackConfig` as `python -m sizing`, so a stack that plans offline deploys with the same meaning.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from sizing.config.loader import parse_stack_config
from sizing.config.stack import StackConfig
from sizing.core.errors import ConfigError


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


def _secret_keys(namespace: str) -> set[str]:
    """The project's keys the engine holds as secrets (set with `pulumi config set --secret`)."""
    prefix = f"{namespace}:"
    listed = set(runtime_config.get_config_secret_keys_env()) | {
        key for key in _keys_set_full(namespace) if runtime_config.is_config_secret(key)
    }
    return {key.removeprefix(prefix) for key in listed if key.startswith(prefix)}


def _keys_set_full(namespace: str) -> set[str]:
    return {f"{namespace}:{key}" for key in _keys_set(namespace)}


def project_values(namespace: str) -> tuple[dict[str, Any], set[str]]:
    """The project's config values, decoded, namespace stripped, other namespaces (gcp:, kubernetes:) skipped; and
    the keys that hold secrets, whose values stay with the engine until `secret_values` asks for them."""
    config = pulumi.Config(namespace)
    secrets = _secret_keys(namespace)
    values = {}
    for key in sorted(_keys_set(namespace) | set(StackConfig.model_fields)):
        if key in secrets:
            continue
        raw = config.get(key)
        if raw is not None:
            values[key] = _decode(raw)
    return values, secrets


def secret_values(config: StackConfig) -> dict[str, pulumi.Output[str]]:
    """Every secret the stack's receivers read, as secret Outputs; ConfigError for the first one not set, before
    anything is registered (an Alertmanager reading a missing file would notify no one)."""
    missing = config.missing_secrets()
    if missing:
        key = missing[0]
        raise ConfigError(
            config.key(key), f"secret not set: run `pulumi config set --secret {key} <value>` (a receiver reads it)"
        )
    values = pulumi.Config(config.config_namespace)
    return {key: values.require_secret(key) for key in config.secret_keys()}


def load_program_config(namespace: str | None = None) -> StackConfig:
    """The validated config of the running stack, with what the program needs beyond sizing required."""
    namespace = namespace or pulumi.get_project()
    values, secrets = project_values(namespace)
    config = parse_stack_config(values, namespace, secrets)
    if config.cluster is None:
        raise ConfigError(config.key("cluster"), "required key is missing (the cluster to deploy to)")
    return config
