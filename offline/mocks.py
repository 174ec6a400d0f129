"""Offline Pulumi: mocks that record every registered resource, shared by the tests and the offline render.

Every resource the program registers is recorded as (type, name, inputs) with numbers normalised (the engine
hands them back as floats), and the mocks fill in what GCP would compute, so no cloud and no CLI are needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc

Path = tuple[str | int, ...]


def normalise(value: Any, path: Path = (), secrets: list[Path] | None = None) -> Any:
    """Floats that are whole numbers back to ints, recursively (the engine returns 2 as 2.0); a secret's envelope
    unwrapped to its value, its path appended to `secrets` so whatever shows the inputs can redact it."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        if secrets is not None:
            secrets.append(path)
        return normalise(value.get("value"), path, secrets)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: normalise(v, (*path, k), secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalise(v, (*path, i), secrets) for i, v in enumerate(value)]
    return value


@dataclass(frozen=True)
class Registered:
    """One resource as the program registered it."""

    typ: str
    name: str
    inputs: dict[str, Any]
    custom: bool
    provider: str | None = None
    secrets: tuple[Path, ...] = ()


@dataclass
class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that echo inputs as outputs, fill in what GKE would compute, and record every registration."""

    resources: list[Registered] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        secrets: list[Path] = []
        inputs = normalise(dict(args.inputs), (), secrets)
        self.resources.append(
            Registered(args.typ, args.name, inputs, bool(args.custom), args.provider or None, tuple(secrets))
        )
        outputs = dict(inputs)
        if args.typ == "gcp:container/cluster:Cluster":
            outputs.setdefault("endpoint", "203.0.113.10")
            outputs.setdefault("masterAuth", {"clusterCaCertificate": "Y2EtY2VydA=="})
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs.setdefault("result", f"mock-password-{args.name}")
        if args.typ == "gcp:serviceaccount/account:Account":
            outputs.setdefault("email", f"{inputs.get('accountId', args.name)}@test-project.iam.gserviceaccount.com")
        return f"{args.name}_id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"project": "test-project", "region": "us-central1", "zone": "us-central1-a", "accessToken": "t"}
        if args.token == "gcp:organizations/getProject:getProject":
            return {"projectId": "test-project", "number": "123456789012"}
        return {}

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, typ: str, name: str) -> Registered:
        matches = [r for r in self.resources if r.typ == typ and r.name == name]
        assert len(matches) == 1, f"expected one {typ} named {name}, got {len(matches)}"
        return matches[0]
