"""The one error type for bad stack input, and how a pydantic failure becomes one line naming its key."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class ConfigError(Exception):
    """Bad stack input: `key` is the dotted config path (namespace included), `problem` says what is wrong."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


class PathError(ValueError):
    """Raised inside model validators so that a cross-field problem keeps the path of the field it is about."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(problem)
        self.path = path
        self.problem = problem


def first_problem(err: ValidationError) -> tuple[str, str]:
    """The first problem of a pydantic ValidationError: its dotted location and what is wrong."""
    first = err.errors(include_url=False)[0]
    # pydantic marks a dict key that failed its own validation with a `[key]` step: the key is the path's end.
    parts = [str(part) for part in first["loc"] if part != "[key]"]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, PathError):
        parts.append(cause.path)
        problem = cause.problem
    elif first["type"] == "extra_forbidden":
        problem = "unknown key"
    elif first["type"] == "missing":
        problem = "required key is missing"
    else:
        problem = first["msg"].removeprefix("Value error, ")
    # A key from YAML may hold a newline or a control character: repr keeps the message on one line.
    parts = [p if p.isprintable() else repr(p) for p in parts]
    return ".".join(p for p in parts if p), problem


def from_validation_error(err: ValidationError, namespace: str) -> ConfigError:
    """The first problem of a pydantic ValidationError as a ConfigError keyed `namespace:dotted.location`."""
    path, problem = first_problem(err)
    return ConfigError(f"{namespace}:{path}" if path else namespace, problem)
