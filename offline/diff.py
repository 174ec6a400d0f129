"""Object-by-object comparison of two offline renders, marking the changes that would replace a resource.

`python -m offline.diff prod prod:baseline` (or `make diff A=prod B=prod:baseline`) renders both sides under
mocks and prints what `pulumi preview` would show as updates, plus what it would show as replacements:
immutable Kubernetes fields (StatefulSet selector/serviceName/volumeClaimTemplates, Deployment selector, a
Service's cluster IP, object names), pod-selecting labels and selectors, and the GKE node pool and cluster
fields that recreate them. A rollback (profile switch) must show none of those.

A side may name a git revision, `STACK[:PROFILE]@REV` (`make diff A=prod@main B=prod`): that side is the program,
stack file and all, as committed at REV, rendered in a separate process from a copy of that tree. It is how a change
proves what it does to the render of every stack, and that it leaves the rest byte for byte alone. A side may also be
`git:REF[:STACK[:PROFILE]]`: the stack file as committed at REF, rendered by the program of the working tree (the
review of a stack file edit alone; STACK defaults to the other side's).

A stack is identified by its config, not its file's name: a copy of `Pulumi.prod.yaml` saved anywhere renders as
stack prod (see `identify_stack_file`), so an identical copy diffs to 0 changes. The workloads and the node pool come
first; a dashboard's text changes (titles, queries, descriptions) fold into one count per dashboard; floats are
compared to 9 significant digits and shown to 6. `--json` gives the same diff for machines.
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
from offline.render import ROOT, Rendered, redact_secrets, run_program, stack_name
from sizing.config.loader import identify_stack_file, is_path, known_stacks, missing_stack
from sizing.core.errors import ConfigError, did_you_mean
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
# A dashboard's text inside its ConfigMap (data.<file>.json.<path>): titles, queries, legends, descriptions. Read for
# people, not for what runs: a change of it is counted, not listed.
_DASHBOARD_TEXT = re.compile(r"data\.[^.]+\.json\..+")
# The order a reviewer reads in: what runs and what it runs on first, what people read last.
_GROUPS = (
    ("node pool and cluster", ("gcp:container/nodePool:NodePool", "gcp:container/cluster:Cluster")),
    ("workloads", ("StatefulSet", "Deployment", "DaemonSet", "CronJob", "Job", "HelmRelease")),
)
_SIGNIFICANT = 6


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

    @property
    def folded(self) -> int:
        """How many of the changes are a dashboard's text (shown as a count)."""
        return sum(_is_text(self.kind, c) for c in self.changes)

    @property
    def group(self) -> int:
        return next((i for i, (_, kinds) in enumerate(_GROUPS) if self.kind in kinds), len(_GROUPS))


def _is_text(kind: str, change: Change) -> bool:
    texts = all(isinstance(v, str) or v is None for v in (change.before, change.after))
    return kind == "ConfigMap" and texts and not change.forcing and bool(_DASHBOARD_TEXT.fullmatch(change.path))


def _round(value: Any) -> Any:
    """Floats compared to 9 significant digits: 0.30000000000000004 and 0.3 are the same threshold."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    return value


def _number(value: float) -> str:
    # Bytes arrive as whole floats (268435456.0): shown whole, not as 2.68435e+08.
    return str(int(value)) if value.is_integer() and abs(value) < 1e18 else f"{value:.{_SIGNIFICANT}g}"


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
        if _round(a.get(path)) == _round(b.get(path)) and (path in a) == (path in b):
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
    """Every object that differs between two renders: the node pool and cluster, then the workloads, then the rest,
    each by kind and name."""
    a, b = _index(before), _index(after)
    out = []
    for key in sorted(set(a) | set(b)):
        kind, name = key
        if key not in b:
            out.append(ObjectDiff(kind, name, "removed"))
        elif key not in a:
            out.append(ObjectDiff(kind, name, "added"))
        elif a[key] != b[key]:
            changes = _diff_values(kind, a[key], b[key])
            if changes:  # equal but for float noise beyond 9 significant digits
                out.append(ObjectDiff(kind, name, "changed", changes))
    return sorted(out, key=lambda d: (d.group, d.kind, d.name))


# A float inside text (a PromQL threshold, a dashboard's unit scale) is rounded for display as a value is.
_LONG_FLOAT = re.compile(r"\d+\.\d{7,}(?:e[-+]?\d+)?")


def _short(value: Any, width: int = 70) -> str:
    if value is None:
        return "(absent)"
    text = _number(value) if isinstance(value, float) else " ".join(str(value).split())
    text = _LONG_FLOAT.sub(lambda m: _number(float(m.group())), text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _from_first_difference(before: Any, after: Any, context: int = 20) -> tuple[Any, Any]:
    """Two long texts from shortly before where they part: a changed threshold at the end of a long PromQL
    expression is what the line must show, not the expression's common start."""
    if not (isinstance(before, str) and isinstance(after, str)):
        return before, after
    before, after = " ".join(before.split()), " ".join(after.split())
    common = next(
        (i for i, (x, y) in enumerate(zip(before, after, strict=False)) if x != y), min(len(before), len(after))
    )
    if common <= context:
        return before, after
    return "…" + before[common - context :], "…" + after[common - context :]


def summary(diffs: list[ObjectDiff]) -> dict[str, int]:
    """The counts the last line states."""
    counts = {s: sum(d.status == s for d in diffs) for s in ("changed", "added", "removed")}
    return {**counts, "replacements": sum(d.replaces for d in diffs)}


def render_diff(diffs: list[ObjectDiff]) -> str:
    """The diff for people: `~` update, `+` add, `-` remove, `!` replacement, forcing fields flagged; a heading per
    group; a dashboard's text changes as one count."""
    lines: list[str] = [] if diffs else ["no differences"]
    group = None
    for d in diffs:
        if d.group != group:
            group = d.group
            title = _GROUPS[group][0] if group < len(_GROUPS) else "everything else"
            lines += ([""] if lines else []) + [f"# {title}"]
        sign = {"added": "+", "removed": "-"}.get(d.status, "!" if d.replaces else "~")
        lines.append(f"{sign} {d.kind} {d.name}" + ("   [REPLACE]" if d.replaces else ""))
        for c in d.changes:
            if _is_text(d.kind, c):
                continue
            flag = "   [ignored by the program]" if c.ignored else "   [forces replacement]" if c.forcing else ""
            before, after = _from_first_difference(c.before, c.after)
            lines.append(f"    {c.path}: {_short(before)} → {_short(after)}{flag}")
        if d.folded:
            lines.append(
                f"    {d.folded} dashboard text change{'s' if d.folded != 1 else ''} (titles, queries, descriptions)"
            )
    counts = summary(diffs)
    replacing = counts["replacements"]
    lines += [
        "",
        f"{counts['changed']} changed, {counts['added']} added, {counts['removed']} removed; "
        f"{replacing} replacement{'s' if replacing != 1 else ''}",
    ]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def diff_json(diffs: list[ObjectDiff], sides: tuple[Side, Side]) -> dict[str, Any]:
    """The diff for machines (`--json`): both sides as identified, every object with every change, the counts."""
    return {
        "before": sides[0].describe(),
        "after": sides[1].describe(),
        "objects": [
            {
                "kind": d.kind,
                "name": d.name,
                "status": d.status,
                "replaces": d.replaces,
                "dashboard_text_changes": d.folded,
                "changes": [
                    {
                        "path": c.path,
                        "before": _plain(c.before),
                        "after": _plain(c.after),
                        "forces_replacement": c.forcing,
                        "ignored": c.ignored,
                    }
                    for c in d.changes
                ],
            }
            for d in diffs
        ],
        "summary": summary(diffs),
    }


@dataclass(frozen=True)
class Side:
    """One side of a diff as given (`text`) and as resolved: the stack file or name, the profile, a git revision
    (`@REV`: the program and stack file at REV; `git:REF`: the stack file at REF under this program) and the
    stack's name, with why it is that name."""

    text: str
    stack: str
    profile: str | None = None
    revision: str | None = None
    git_ref: str | None = None
    name: str | None = None
    why: str = ""

    def describe(self) -> dict[str, Any]:
        return {"side": self.text, "stack": self.name, "profile": self.profile, "identified_by": self.why}

    def heading(self) -> str:
        same = self.why in ("", "its name")
        return self.text if same else f"{self.text} (stack {self.name}: {self.why})"


def parse_side(text: str) -> Side:
    """`STACK[:PROFILE][@REV]` or `git:REF[:STACK[:PROFILE]]`; a stack may be a stack file's path."""
    if text.startswith("git:"):
        ref, _, tail = text.removeprefix("git:").partition(":")
        stack, _, profile = tail.partition(":")
        if not ref:
            raise ConfigError(text, "git:REF names a revision, e.g. git:HEAD or git:main:prod")
        side = Side(text, stack, profile or None, git_ref=ref)
    else:
        target, _, revision = text.partition("@")
        stack, _, profile = target.partition(":")
        side = Side(text, stack, profile or None, revision=revision or None)
    if side.profile and side.profile not in PROFILES:
        raise ConfigError(
            text,
            f"unknown profile {side.profile!r}{did_you_mean(side.profile, PROFILES)} (known: {', '.join(PROFILES)})",
        )
    return side


def identify(side: Side, other: Side | None, project_dir: Path = ROOT) -> Side:
    """Give `side` its stack's name: a name is itself; a stack file is the stack its config configures
    (`identify_stack_file`), else the other side's, else its file's stem; `git:REF` without a stack takes the other
    side's."""
    if side.git_ref and not side.stack:
        if other is None or other.name is None:
            raise ConfigError(side.text, "name the stack: git:REF:STACK (e.g. git:HEAD:prod)")
        return dataclasses.replace(side, stack=other.name, name=other.name, why="the other side's stack")
    if not is_path(side.stack):
        return dataclasses.replace(side, name=side.stack, why="its name")
    path = Path(side.stack)
    if not path.is_file():
        raise ConfigError(str(path), "stack file not found")
    found = identify_stack_file(path, project_dir)
    if found is not None:
        return dataclasses.replace(side, name=found[0], why=found[1])
    if other is not None and other.name is not None:
        return dataclasses.replace(
            side, name=other.name, why="no project stack shares its gcp:project: the other side's"
        )
    return dataclasses.replace(side, name=stack_name(side.stack), why="its file name")


def resolve_sides(before: str, after: str, project_dir: Path = ROOT) -> tuple[Side, Side]:
    """Both sides parsed and identified; a side that names its stack is identified first, so the other can follow."""
    a, b = parse_side(before), parse_side(after)
    order = sorted((0, 1), key=lambda i: not (a, b)[i].stack or is_path((a, b)[i].stack))
    sides: list[Side] = [a, b]
    for i in order:
        sides[i] = identify(sides[i], sides[1 - i] if sides[1 - i].name else None, project_dir)
    return sides[0], sides[1]


def render_side(side: Side, project_dir: Path = ROOT, mocks: Any = None) -> Rendered:
    """The render of an identified side."""
    assert side.name is not None, "identify() first"
    if side.revision:
        return _render_revision(side.stack, side.profile, side.revision, project_dir)
    if side.git_ref:
        return _render_committed_stack_file(side, project_dir, mocks)
    if not is_path(side.stack) and side.stack not in known_stacks(project_dir):
        raise missing_stack(side.stack, project_dir)
    return run_program(side.stack, project_dir, profile=side.profile, mocks=mocks, name=side.name)


def render_target(target: str, project_dir: Path = ROOT, mocks: Any = None) -> Rendered:
    """Render one side on its own: `STACK[:PROFILE][@REV]` or `git:REF:STACK[:PROFILE]`."""
    return render_side(identify(parse_side(target), None, project_dir), project_dir, mocks)


def _render_committed_stack_file(side: Side, project_dir: Path, mocks: Any) -> Rendered:
    """The stack file `Pulumi.<stack>.yaml` as committed at `side.git_ref`, under this working tree's program."""
    path = f"Pulumi.{side.stack}.yaml"
    shown = subprocess.run(
        ["git", "-C", str(project_dir), "show", f"{side.git_ref}:{path}"], capture_output=True, check=False
    )
    if shown.returncode != 0:
        problem = shown.stderr.decode(errors="replace").strip().splitlines() or ["git show failed"]
        raise ConfigError(side.text, f"no {path} at git revision {side.git_ref} ({problem[-1]})")
    with tempfile.TemporaryDirectory(prefix="hyperstudy-diff-") as folder:
        copy = Path(folder) / path
        copy.write_bytes(shown.stdout)
        return run_program(str(copy), project_dir, profile=side.profile, mocks=mocks, name=side.name)


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
    parser = argparse.ArgumentParser(
        prog="python -m offline.diff",
        description=__doc__.splitlines()[0],
        epilog="exit codes: 0 compared, 2 bad input, 3 a replacement (with --fail-on-replace)",
    )
    parser.add_argument("before", help="STACK[:PROFILE][@REV], a stack file, or git:REF[:STACK]; e.g. prod@main")
    parser.add_argument("after", help="the same forms; e.g. prod, prod:baseline, git:HEAD")
    parser.add_argument("--fail-on-replace", action="store_true", help="exit 3 when a change replaces a resource")
    parser.add_argument("--json", action="store_true", help="the diff as JSON: sides, objects, changes, counts")
    args = parser.parse_args(argv)
    try:
        sides = resolve_sides(args.before, args.after)
        diffs = diff(render_side(sides[0]), render_side(sides[1]))
    except (ConfigError, pulumi.RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(diff_json(diffs, sides), sys.stdout, indent=2, default=str)
        print()
    else:
        print(f"before: {sides[0].heading()}\nafter:  {sides[1].heading()}\n")
        print(render_diff(diffs))
    return 3 if args.fail_on_replace and any(d.replaces for d in diffs) else 0


if __name__ == "__main__":
    sys.exit(main())
