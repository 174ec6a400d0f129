"""The one error type for bad stack input, and how a pydantic failure becomes one line naming its key."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

if TYPE_CHECKING:
    from pydantic import ValidationError


class ConfigError(Exception):
    """Bad stack input: `key` is the dotted config path (namespace included), `problem` says what is wrong."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """` (did you mean X?)` with the known word nearest to `word` (difflib), or nothing when none is near."""
    # 0.7: a slip of a letter or two in a short word (prdo → prod) is near; colour → cluster (0.62) is not.
    found = difflib.get_close_matches(word, list(known), n=1, cutoff=0.7)
    return f" (did you mean {found[0]}?)" if found else ""


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


def _unwrap(annotation: Any) -> Any:
    """`X` of `Annotated[X, …]` and of `X | None`."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        members = [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) in (Union, UnionType) and len(members) == 1:
            annotation = members[0]
            continue
        return annotation


def known_keys(model: Any, parts: list[str]) -> list[str]:
    """The keys a mapping at the dotted `parts` under `model` takes (its fields and their aliases), [] when the
    path leads to no model: what an unknown key there is compared with."""
    from pydantic import BaseModel

    annotation = model
    for part in parts:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = annotation.model_fields
            name = next((n for n, f in fields.items() if part in (n, f.alias)), None)
            if name is None:
                return []
            annotation = fields[name].annotation
        elif get_origin(annotation) in (dict, Mapping):
            annotation = get_args(annotation)[1]
        elif get_origin(annotation) in (tuple, list, Sequence):
            annotation = get_args(annotation)[0]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []
