"""Offline Pulumi: mocks that record every registered resource, shared by the tests and the offline render.

Every resource the program registers is recorded as (type, name, inputs) with numbers normalised (the engine
hands them back as floats), with its URN, parent, the resources it waits for (`depends_on` and the inputs'
dependencies, as the engine would see them) and its `ignore_changes` option, and the mocks fill in what GCP would
compute, so no cloud and no CLI are needed. `install(mocks, ...)` sets them up with the monitor that records the
dependencies.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

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
    urn: str = ""
    parent: str = ""
    dependencies: tuple[str, ...] = ()
    # The `ignore_changes` resource option as the engine receives it (input paths Pulumi leaves alone on update).
    ignore_changes: tuple[str, ...] = ()


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
            # GKE fills in the subnetwork it used: the network's own (auto mode) when none was given.
            if not outputs.get("subnetwork"):
                outputs["subnetwork"] = f"projects/test-project/regions/us-central1/subnetworks/{inputs['network']}"
        if args.typ == "gcp:compute/address:Address":
            outputs.setdefault("address", "203.0.113.20")  # TEST-NET-3: documentation addresses, never routed
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

    def by_urn(self, urn: str) -> Registered:
        (found,) = [r for r in self.resources if r.urn == urn]
        return found

    def ancestors(self, resource: Registered) -> list[Registered]:
        """The resource and the components it is a child of, innermost first."""
        chain = [resource]
        known = {r.urn: r for r in self.resources}
        while chain[-1].parent in known:
            chain.append(known[chain[-1].parent])
        return chain

    def waits_for(self, resource: Registered, other: Registered) -> bool:
        """Whether `resource` is registered only once `other` exists: it, or a component it is a child of, depends on
        `other` (the SDK expands a dependency on a component into its resources, and registers a child only after
        its parent, which waits for its own dependencies)."""
        return any(other.urn in r.dependencies for r in self.ancestors(resource))


class RecordingMonitor(MockMonitor):
    """The mock engine, also recording each registration's URN, parent, dependencies and ignore_changes onto the
    mocks' record."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self._recording = mocks
        self._lock = threading.Lock()

    def RegisterResource(self, request):
        with self._lock:
            response = super().RegisterResource(request)
            resources = self._recording.resources
            if request.type != "pulumi:pulumi:Stack" and resources and resources[-1].name == request.name:
                resources[-1] = dataclasses.replace(
                    resources[-1],
                    urn=response.urn,
                    parent=request.parent,
                    dependencies=tuple(request.dependencies),
                    ignore_changes=tuple(request.ignoreChanges),
                )
            return response


def install(mocks: RecordingMocks, project: str, stack: str) -> None:
    """Make `mocks` the runtime's engine (not a preview), with dependencies recorded."""
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=RecordingMonitor(mocks))
