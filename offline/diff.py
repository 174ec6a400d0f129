"""Object-by-object comparison of two offline renders, marking the changes that would replace a resource.

`python -m offline.diff prod prod:baseline` (or `make diff A=prod B=prod:baseline`) renders both sides under
mocks and prints what `pulumi preview` would show as updates, plus what it would show as replacements:
immutable Kubernetes fields (StatefulSet selector/serviceName/volumeClaimTemplates, Deployment selector, a
Service's cluster IP, object names), pod-selecting labels and selectors, and the GKE node pool and cluster
fields that recreate them. A rollback (profile switch) must show none of those.

A side may name a git revision, `STACK[:PROFILE]@REV` (`make diff A=prod@main B=prod`): that side is the program,
stack file and all, as committed at REV, rendered in a separate process from a copy of that tree. It is how a change
proves what it does to the render of every stack, and that it leaves the rest byte for byte alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from offline.mocks import Registered
from offline.render import ROOT, Rendered, redact_secrets, run_program
from sizing.core.errors import ConfigError
from sizing.core.model import PROFILES

# Paths (dotted, list items as [*]) whose change replaces the resource or re-points what selects pods.
# Kubernetes: fields the API server refuses to update; Pulumi's provider replaces the object instead.
_FORCING: dict[str, tuple[str, ...]] = {
    "*": (r"metadata\.name", r"metadata\.namespace", r"apiVersion", r"kind"),
    "StatefulSet": (
        r"spec\.selector\..*",
        r"spec\.serviceName",
        r"spec\.volumeClaimTemplates.*",
        r"spec\.podManagementPolicy",
    ),
    "Deployment": (r"spec\.selector\..*",),
    "Service": (r"spec\.clusterIPs?.*", r"spec\.selector\..*"),
    "PodDisruptionBudget": (r"spec\.selector\..*",),
    "NetworkPolicy": (r"spec\.podSelector\..*",),
    "PersistentVolumeClaim": (r"spec\..*",),
    "Job": (r"spec\.template\..*", r"spec\.selector\..*"),
    # GKE: node_config, the pool's identity and its cluster recreate the pool (and its drain ignores PDBs).
    "gcp:container/nodePool:NodePool": (
        r"nodeConfig\..*",
        r"name",
        r"location",
        r"cluster",
        r"project",
        r"initialNodeCount",
        r"nodeLocations.*",
    ),
    "gcp:container/cluster:Cluster": (
        r"name",
        r"location",
        r"project",
        r"network",
        r"subnetwork",
        r"networkingMode",
        r"ipAllocationPolicy\..*",
        r"privateClusterConfig\.(enablePrivateNodes|masterIpv4CidrBlock)",
        r"initialNodeCount",
        r"removeDefaultNodePool",
    ),
    "gcp:serviceaccount/account:Account": (r"accountId", r"project"),
    "gcp:projects/iAMMember:IAMMember": (r"role", r"member", r"project"),
    "gcp:compute/router:Router": (r"network", r"region", r"project"),
    "gcp:compute/routerNat:RouterNat": (r"router", r"region", r"project"),
}
# Fields the program tells Pulumi to ignore: their change is not applied (the autoscaler owns the live value).
_IGNORED: dict[str, tuple[str, ...]] = {"gcp:container/nodePool:NodePool": (r"initialNodeCount",)}
# Pod template labels that a selector matches cannot change without orphaning or re-pointing.
_POD_LABELS = re.compile(r"spec\.template\.metadata\.labels\.(?P<key>.+)")


@dataclass(frozen=True)
class Change:
    """One changed leaf: its path, both values, and whether it forces a replacement (or is ignored)."""

    path: str
    before: Any
    after: Any
    forcing: bool
    ignored: bool = False


@dataclass
class ObjectDiff:
    """What changed in one object or GCP resource."""

    kind: str
    name: str
    status: str  # "changed", "added", "removed"
    changes: list[Change] = field(default_factory=list)

    @property
    def replaces(self) -> bool:
        return self.status == "changed" and any(c.forcing and not c.ignored for c in self.changes)


def _leaves(node: Any, path: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_leaves(value, f"{path}.{key}" if path else str(key)))
        return out or {path: {}}
    if isinstance(node, list):
        out = {}
        for i, value in enumerate(node):
            out.update(_leaves(value, f"{path}[{i}]"))
        return out or {path: []}
    return {path: node}


def _matches(patterns: tuple[str, ...], path: str) -> bool:
    generic = re.sub(r"\[\d+\]", "", path)
    return any(re.fullmatch(p, path) or re.fullmatch(p, generic) for p in patterns)


def _selector_keys(obj: dict[str, Any]) -> set[str]:
    labels = (((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    return set(labels)


def _expand_json(obj: dict[str, Any]) -> dict[str, Any]:
    # A dashboard is one JSON string in a ConfigMap: compared field by field, a change reads as what it is.
    data = obj.get("data")
    if not isinstance(data, dict):
        return obj
    expanded = {k: json.loads(v) if k.endswith(".json") and isinstance(v, str) else v for k, v in data.items()}
    return {**obj, "data": expanded}


def _diff_values(kind: str, before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    if kind == "ConfigMap":
        before, after = _expand_json(before), _expand_json(after)
    a, b = _leaves(before), _leaves(after)
    patterns = _FORCING["*"] + _FORCING.get(kind, ()) if ":" not in kind else _FORCING.get(kind, ())
    selecting = _selector_keys(before) | _selector_keys(after)
    changes = []
    for path in sorted(set(a) | set(b)):
        if a.get(path, None) == b.get(path, None) and (path in a) == (path in b):
            continue
        label = _POD_LABELS.fullmatch(path)
        forcing = _matches(patterns, path) or bool(label and label.group("key") in selecting)
        ignored = _matches(_IGNORED.get(kind, ()), path)
        changes.append(Change(path, a.get(path), b.get(path), forcing, ignored))
    return changes


def _index(rendered: Rendered) -> dict[tuple[str, str], dict[str, Any]]:
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in rendered.kubernetes_objects():
        meta = obj.get("metadata") or {}
        name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta.get("name", "")
        index[(obj["kind"], name)] = obj
    # A chart's objects are Helm's, not the render's: the release's inputs (chart, version, values) are what changes.
    for release in rendered.helm_releases():
        inputs = redact_secrets(release)
        index[("HelmRelease", f"{inputs.get('namespace')}/{inputs.get('name', release.name)}")] = inputs
    for resource in rendered.gcp_resources():
        index[(resource.typ, resource.name)] = resource.inputs
    return index


def diff(before: Rendered, after: Rendered) -> list[ObjectDiff]:
    """Every object that differs between two renders, in a stable order."""
    a, b = _index(before), _index(after)
    out = []
    for key in sorted(set(a) | set(b)):
        kind, name = key
        if key not in b:
            out.append(ObjectDiff(kind, name, "removed"))
        elif key not in a:
            out.append(ObjectDiff(kind, name, "added"))
        elif a[key] != b[key]:
            out.append(ObjectDiff(kind, name, "changed", _diff_values(kind, a[key], b[key])))
    return out


def _short(value: Any, width: int = 70) -> str:
    text = "(absent)" if value is None else " ".join(str(value).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_diff(diffs: list[ObjectDiff]) -> str:
    """The diff for people: `~` update, `+` add, `-` remove, `!` replacement, forcing fields flagged."""
    if not diffs:
        return "no differences"
    lines = []
    for d in diffs:
        sign = {"added": "+", "removed": "-"}.get(d.status, "!" if d.replaces else "~")
        lines.append(f"{sign} {d.kind} {d.name}" + ("   [REPLACE]" if d.replaces else ""))
        for c in d.changes:
            flag = "   [ignored by the program]" if c.ignored else "   [forces replacement]" if c.forcing else ""
            lines.append(f"    {c.path}: {_short(c.before)} → {_short(c.after)}{flag}")
    counts = {s: sum(d.status == s for d in diffs) for s in ("changed", "added", "removed")}
    replacing = sum(d.replaces for d in diffs)
    lines += [
        "",
        f"{counts['changed']} changed, {counts['added']} added, {counts['removed']} removed; "
        f"{replacing} replacement{'s' if replacing != 1 else ''}",
    ]
    return "\n".join(lines)


def render_target(target: str, project_dir: Path = ROOT, mocks: Any = None) -> Rendered:
    """Render `STACK[:PROFILE][@REV]` (a stack name or stack file, optionally with a profile, optionally as committed
    at a git revision)."""
    target, _, revision = target.partition("@")
    stack, _, profile = target.partition(":")
    if profile and profile not in PROFILES:
        raise ConfigError(target, f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
    if revision:
        return _render_revision(stack, profile or None, revision, project_dir)
    return run_program(stack, project_dir, profile=profile or None, mocks=mocks)


# Run in the copy of the revision's tree: its own program, sizing model and render, under its own mocks. Whatever the
# revision's Registered holds goes back as JSON (the fields this side knows are kept).
_RENDER_AT_REVISION = """
import dataclasses, json, sys
from pathlib import Path
from offline.render import run_program
stack, profile = sys.argv[1], sys.argv[2] or None
rendered = run_program(stack, Path.cwd(), profile=profile)
json.dump(
    {"stack": rendered.stack, "outputs": rendered.outputs,
     "resources": [dataclasses.asdict(r) for r in rendered.resources]},
    sys.stdout, default=str,
)
"""


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _render_revision(stack: str, profile: str | None, revision: str, project_dir: Path) -> Rendered:
    """The render of `stack` as the project was at git `revision`."""
    known = {f.name for f in dataclasses.fields(Registered)}
    with tempfile.TemporaryDirectory(prefix="hyperstudy-diff-") as tree:
        archive = subprocess.run(
            ["git", "-C", str(project_dir), "archive", "--format=tar", revision], capture_output=True, check=False
        )
        if archive.returncode != 0:
            problem = archive.stderr.decode(errors="replace").strip().splitlines() or ["git archive failed"]
            raise ConfigError(f"@{revision}", f"no such git revision ({problem[-1]})")
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        run = subprocess.run(
            [sys.executable, "-c", _RENDER_AT_REVISION, stack, profile or ""],
            cwd=tree,
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise ConfigError(f"{stack}@{revision}", f"the render at that revision failed: {last}")
    data = json.loads(run.stdout)
    resources = []
    for item in data["resources"]:
        fields = {k: v for k, v in item.items() if k in known}
        for name in ("secrets", "dependencies", "ignore_changes"):
            if name in fields:
                fields[name] = tuple(_tuples(v) for v in fields[name]) if name == "secrets" else tuple(fields[name])
        resources.append(Registered(**fields))
    return Rendered(stack=data["stack"], resources=resources, outputs=data["outputs"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.diff", description=__doc__.splitlines()[0])
    parser.add_argument("before", help="STACK[:PROFILE][@REV], e.g. prod, or prod@main for the render of main")
    parser.add_argument("after", help="STACK[:PROFILE][@REV], e.g. prod:baseline")
    parser.add_argument("--fail-on-replace", action="store_true", help="exit 3 when a change replaces a resource")
    args = parser.parse_args(argv)
    try:
        diffs = diff(render_target(args.before), render_target(args.after))
    except (ConfigError, pulumi.RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"before: {args.before}\nafter:  {args.after}\n")
    print(render_diff(diffs))
    return 3 if args.fail_on_replace and any(d.replaces for d in diffs) else 0


if __name__ == "__main__":
    sys.exit(main())
