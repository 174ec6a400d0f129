"""Reading a stack: the project's name (the config namespace), the stack file, its keys validated into a
`StackConfig` once, secrets told from plaintext. The CLI, the program and the tests all load through here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sizing.config.monitoring import MonitoringConfig
from sizing.config.stack import StackConfig
from sizing.core.errors import ConfigError, did_you_mean, from_validation_error, known_keys
from sizing.core.model import PROFILES


def _is_ciphertext(value: Any) -> bool:
    """A `secure:` value as `pulumi config set --secret` writes it into a stack file."""
    return isinstance(value, Mapping) and set(value) == {"secure"}


def parse_stack_config(values: Mapping[str, Any], namespace: str, secrets: Iterable[str] = ()) -> StackConfig:
    """Validate the project's config values (namespace already stripped) into a StackConfig, or raise ConfigError.

    `secrets` names the keys the engine holds as secrets (their values are not passed); a value that is a stack
    file's `secure:` ciphertext counts as one too. Every secret must be one a receiver names, and a key a receiver
    names must not be given in plaintext.
    """
    secret_keys = set(secrets) | {key for key, value in values.items() if _is_ciphertext(value)}
    plain = {key: value for key, value in values.items() if key not in secret_keys}
    try:
        config = StackConfig.model_validate(plain)
    except ValidationError as err:
        error = from_validation_error(err, namespace)
        # An unknown top-level key that is a receiver's secret given in plaintext: say so, not "unknown key".
        key = error.key.removeprefix(f"{namespace}:")
        if error.problem == "unknown key" and key in plain and _names_a_secret(values, key):
            raise ConfigError(error.key, _PLAINTEXT) from None
        if error.problem == "unknown key":
            *parent, name = key.split(".")
            raise ConfigError(error.key, error.problem + did_you_mean(name, known_keys(StackConfig, parent))) from None
        raise error from None
    config._namespace = namespace
    config._secrets = frozenset(secret_keys)
    named = set(config.secret_keys())
    for key in sorted(secret_keys - named):
        raise ConfigError(config.key(key), "unknown key (a secret no receiver of monitoring.alerting names)")
    return config


_PLAINTEXT = (
    "is a receiver's secret in plaintext: remove it and run `pulumi config set --secret <key> <value>`, "
    "so the stack file holds only its ciphertext"
)


def _names_a_secret(values: Mapping[str, Any], key: str) -> bool:
    """Whether the (possibly invalid) monitoring config's receivers name `key` as a secret."""
    try:
        monitoring = MonitoringConfig.model_validate(values.get("monitoring") or {})
    except ValidationError:
        return False
    return key in monitoring.alerting.secret_keys()


def project_name(project_dir: Path) -> str:
    """The `name` of Pulumi.yaml: the namespace of the project's config keys."""
    path = project_dir / "Pulumi.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise ConfigError(
            str(path), f"no Pulumi project in {project_dir} (--project-dir takes the folder of Pulumi.yaml)"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "the project file is not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(str(path), f"cannot read the project file: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(str(path), f"the project file is not valid YAML{_line(err)}") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError(f"{path}:name", "the project file has no name")
    return data["name"]


def _line(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    return f" (line {mark.line + 1})" if mark else ""


def is_path(stack: str) -> bool:
    """A `--stack` given as a file (`./x.yaml`, `/tmp/Pulumi.prod.yaml`), not a stack's name."""
    return Path(stack).suffix in (".yaml", ".yml") or "/" in stack or "\\" in stack


def known_stacks(project_dir: Path) -> list[str]:
    """The stacks of the project: its `Pulumi.<stack>.yaml` files' names."""
    try:
        files = sorted(project_dir.glob("Pulumi.*.yaml"))
    except OSError:
        return []
    return [p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in files]


def identify_stack_file(path: Path, project_dir: Path) -> tuple[str, str] | None:
    """The project stack a stack file configures, and why; None when its config names none.

    A file named `Pulumi.<stack>.yaml` is that stack's, as for Pulumi. A copy under another name (`/tmp/before.yaml`)
    is identified by its config: the project stack with the same `gcp:project`, the one sharing the most top-level
    values when several do. The stack's name labels every object (`app.kubernetes.io/instance`), so a copy rendered
    under its file's name would differ from its original everywhere."""
    if path.name.startswith("Pulumi.") and path.suffix == ".yaml":
        return path.name.removeprefix("Pulumi.").removesuffix(".yaml"), "its file name"
    mine = _config_of(path)
    project = mine.get("gcp:project")
    best: tuple[int, str] | None = None
    for stack in known_stacks(project_dir):
        theirs = _config_of(stack_file(stack, project_dir))
        if project is None or theirs.get("gcp:project") != project:
            continue
        shared = sum(theirs.get(key) == value for key, value in mine.items())
        if best is None or shared > best[0]:
            best = (shared, stack)
    if best is None:
        return None
    return best[1], f"its gcp:project {project} is Pulumi.{best[1]}.yaml's"


def _config_of(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    config = data.get("config") if isinstance(data, dict) else None
    return config if isinstance(config, dict) else {}


def stack_file(stack: str, project_dir: Path) -> Path:
    """`stack` itself when it is a path to a file, else `Pulumi.<stack>.yaml` of the project."""
    return Path(stack) if is_path(stack) else project_dir / f"Pulumi.{stack}.yaml"


def missing_stack(stack: str, project_dir: Path) -> ConfigError:
    """A stack with no file: the known stacks, and the nearest one."""
    path = stack_file(stack, project_dir)
    if is_path(stack):
        return ConfigError(str(path), "stack file not found")
    known = known_stacks(project_dir)
    return ConfigError(
        str(path),
        f"stack file not found{did_you_mean(stack, known)}; known stacks: {', '.join(known) or 'none'}",
    )


def read_stack_values(path: Path, namespace: str) -> dict[str, Any]:
    """The project's keys of a stack file, namespace stripped; other namespaces (gcp:, kubernetes:) are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "stack file not found") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "is a folder, not a stack file") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "the stack file is not UTF-8 text") from None
    except OSError as err:
        raise ConfigError(str(path), f"cannot read the stack file: {err.strerror}") from None
    return stack_values(text, str(path), namespace)


def stack_values(text: str, source: str, namespace: str) -> dict[str, Any]:
    """The project's keys of a stack file's text (read from `source`), namespace stripped."""
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(source, f"not valid YAML{_line(err)}") from None
    if not isinstance(data, dict):
        raise ConfigError(source, "a stack file is a mapping with a 'config' key")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{source}:config", "must be a mapping of keys to values")
    values: dict[str, Any] = {}
    for key, value in config.items():
        owner, sep, name = str(key).partition(":")
        if not sep:
            owner, name = namespace, owner
        if owner == namespace:
            values[name] = value
    return values


def load_stack(stack: str, project_dir: Path, profile: str | None = None) -> StackConfig:
    """Read, validate and (optionally) switch the profile of a stack: the CLI's and the tests' one entry point."""
    namespace = project_name(project_dir)
    path = stack_file(stack, project_dir)
    if not path.exists():
        raise missing_stack(stack, project_dir)
    values = read_stack_values(path, namespace)
    if profile is not None:
        if profile not in PROFILES:
            raise ConfigError(
                "--profile",
                f"unknown profile {profile!r}{did_you_mean(profile, PROFILES)} (known: {', '.join(PROFILES)})",
            )
        values["profile"] = profile
    return parse_stack_config(values, namespace)
