"""The offline render: run the Pulumi program of a stack under mocks and write what it would create.

`python -m offline.render --stack prod` writes `build/prod/`: every Kubernetes object as one YAML file (stable
names, stable order), `gcp.md` summarising the GCP resources (`helm.md` the Helm releases, if any), `outputs.json`
with the stack outputs, and, taken from those objects, `prometheus-rules.yaml` (for `promtool check rules`) and
`dashboards/<uid>.json`.
Secrets are redacted. The same function feeds the artifact tests, so what is reviewed is what is tested.
"""

from __future__ import annotations

import argparse
import copy
import json
import runpy
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.sync_await import _sync_await

from monitoring.names import DASHBOARD_LABEL
from offline.mocks import RecordingMocks, Registered, install, normalise
from sizing.config.loader import load_stack, project_name, stack_file
from sizing.core.errors import ConfigError
from sizing.core.model import PROFILES

ROOT = Path(__file__).resolve().parent.parent
REDACTED = "<redacted>"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
# Apply order a reader expects: what others depend on first.
_KIND_ORDER = [
    "Namespace",
    "CustomResourceDefinition",
    "IngressClass",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "NetworkPolicy",
    "Service",
    "StatefulSet",
    "Deployment",
    "CronJob",
    "PodDisruptionBudget",
    "VerticalPodAutoscaler",
    "Issuer",
    "Ingress",
    "PrometheusRule",
    "Rules",
]
_SECRET_INPUTS = {"kubeconfig", "accessToken", "credentials", "privateKey", "password"}


@dataclass(frozen=True)
class Rendered:
    """What one run of the program registered, and what it exported."""

    stack: str
    resources: list[Registered]
    outputs: dict[str, Any]

    def kubernetes_objects(self) -> list[dict[str, Any]]:
        """Every Kubernetes object, as the API server would receive it, in apply order."""
        objects = [
            {
                k: v
                for k, v in redact_secrets(r).items()
                if k
                in (
                    "apiVersion",
                    "kind",
                    "metadata",
                    "spec",
                    "data",
                    "stringData",
                    "rules",
                    "roleRef",
                    "subjects",
                    "type",
                    "immutable",
                    "binaryData",
                )
            }
            for r in self.resources
            if r.custom and r.typ.startswith("kubernetes:") and r.typ != HELM_RELEASE
        ]
        return sorted(objects, key=_object_sort_key)

    def helm_releases(self) -> list[Registered]:
        """Helm releases: charts the program installs (their objects are rendered by Helm, not here)."""
        return sorted((r for r in self.resources if r.typ == HELM_RELEASE), key=lambda r: r.name)

    def gcp_resources(self) -> list[Registered]:
        return sorted(
            (r for r in self.resources if r.custom and r.typ.startswith("gcp:")), key=lambda r: (r.typ, r.name)
        )


def _object_sort_key(obj: dict[str, Any]) -> tuple[int, str, str]:
    kind = obj.get("kind", "")
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    meta = obj.get("metadata") or {}
    return rank, meta.get("namespace", ""), meta.get("name", "")


# What the render passes for a secret: the stack file holds only ciphertext (or nothing yet), which only the engine
# can decrypt. Secrets are redacted wherever the render writes them, so this never shows.
SECRET_STAND_IN = "offline-render-stand-in-for-a-secret"


def stack_config_values(stack: str, project_dir: Path, profile: str | None = None) -> tuple[dict[str, str], list[str]]:
    """Every config key of a stack file (all namespaces) as the engine passes them (strings, objects as JSON), and
    the keys that are secrets: each `secure:` value, and each secret a receiver reads that the file does not hold
    yet, stands in as `SECRET_STAND_IN`."""
    namespace = project_name(project_dir)
    path = stack_file(stack, project_dir)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(str(path), "stack file not found") from None
    values, secrets = {}, []
    for key, value in (data.get("config") or {}).items():
        full = key if ":" in key else f"{namespace}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[full] = SECRET_STAND_IN
            secrets.append(full)
        else:
            values[full] = value if isinstance(value, str) else json.dumps(value)
    if profile is not None:
        if profile not in PROFILES:
            raise ConfigError("--profile", f"unknown profile {profile!r} (known: {', '.join(PROFILES)})")
        values[f"{namespace}:profile"] = profile
    for key in load_stack(stack, project_dir, profile).missing_secrets():
        values[f"{namespace}:{key}"] = SECRET_STAND_IN
        secrets.append(f"{namespace}:{key}")
    return values, secrets


def run_program(
    stack: str,
    project_dir: Path = ROOT,
    *,
    profile: str | None = None,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    mocks: RecordingMocks | None = None,
    name: str | None = None,
) -> Rendered:
    """Run `__main__.py` of the project under mocks with the stack's config (or `config` and its `secret_keys`, if
    given), as the stack `name` (default: the stack, or the stack file's `Pulumi.<name>.yaml`)."""
    mocks = mocks or RecordingMocks()
    mocks.resources.clear()
    project = project_name(project_dir)
    if config is None:
        values, secrets = stack_config_values(stack, project_dir, profile)
    else:
        values, secrets = config, secret_keys or []
    # A stack file path stands for the stack it configures: Pulumi.<name>.yaml is stack <name>.
    stack = name or stack_name(stack)
    install(mocks, project=project, stack=stack)
    pulumi.runtime.set_all_config(values, secrets)
    root = pulumi.runtime.settings.get_root_resource()
    root.outputs.clear()
    program = str(project_dir / "__main__.py")
    sys.path.insert(0, str(project_dir))
    try:
        _sync_await(pulumi.runtime.stack.run_pulumi_func(lambda: runpy.run_path(program, run_name="__main__")))
    finally:
        sys.path.remove(str(project_dir))
    outputs = {name: _resolve(value) for name, value in sorted(root.outputs.items())}
    return Rendered(stack=stack, resources=list(mocks.resources), outputs=outputs)


def stack_name(stack: str) -> str:
    """The stack's name, also when given as the path of its stack file."""
    path = Path(stack)
    if path.suffix in (".yaml", ".yml"):
        return path.stem.removeprefix("Pulumi.")
    return stack


def _resolve(value: Any) -> Any:
    output = pulumi.Output.from_input(value)
    if _sync_await(output.is_secret()):
        return REDACTED
    return normalise(_sync_await(output.future()))


def _leaves_redacted(value: Any) -> Any:
    """`value` with every leaf replaced, its shape kept (a Secret's stringData stays a map of keys)."""
    if isinstance(value, dict):
        return {k: _leaves_redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_leaves_redacted(v) for v in value]
    return REDACTED


def redact_secrets(resource: Registered) -> dict[str, Any]:
    """The resource's inputs with every value the program marked secret redacted: nothing secret leaves the mocks."""
    inputs = copy.deepcopy(resource.inputs)
    for path in resource.secrets:
        if not path:
            return _leaves_redacted(inputs)
        node = inputs
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = _leaves_redacted(node[path[-1]])
    return inputs


def _redact(obj: Any, key: str = "") -> Any:
    if key in _SECRET_INPUTS:
        return REDACTED
    if isinstance(obj, dict):
        return {k: _redact(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact(v) for v in obj]
    return obj


def _redact_object(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == "Secret":
        obj = {**obj, **{k: dict.fromkeys(obj[k], REDACTED) for k in ("data", "stringData") if obj.get(k)}}
    return _redact(obj)


# libyaml's emitter when PyYAML was built with it (the wheels are): the same YAML, several times faster.
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _dump(data: Any, sort_keys: bool = True, width: int = 80) -> str:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=sort_keys, default_flow_style=False, width=width)


def _file_name(index: int, obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    scope = meta.get("namespace") or "cluster"
    return f"{index:03d}-{scope}-{obj.get('kind', 'Object').lower()}-{meta.get('name', 'unnamed')}.yaml"


def gcp_summary(rendered: Rendered) -> str:
    """A readable list of the GCP resources and their inputs."""
    return _summary(f"GCP resources of stack {rendered.stack}", rendered.gcp_resources())


def _summary(title: str, resources: list[Registered]) -> str:
    lines = [f"# {title}", ""]
    for r in resources:
        lines += [
            f"## {r.typ} `{r.name}`",
            "",
            "```yaml",
            _dump(_redact(redact_secrets(r))).rstrip(),
            "```",
            "",
        ]
    return "\n".join(lines)


def write(rendered: Rendered, out_dir: Path) -> list[Path]:
    """Write the render into `out_dir` (emptied first), deterministically; returns the files written."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    k8s_dir = out_dir / "kubernetes"
    k8s_dir.mkdir(parents=True)
    written = []
    for index, obj in enumerate(rendered.kubernetes_objects(), start=1):
        path = k8s_dir / _file_name(index, obj)
        path.write_text(_dump(_redact_object(obj)))
        written.append(path)
    files = {
        "gcp.md": gcp_summary(rendered),
        "outputs.json": json.dumps(rendered.outputs, indent=2, sort_keys=True) + "\n",
    }
    if rendered.helm_releases():
        files["helm.md"] = _summary(f"Helm releases of stack {rendered.stack}", rendered.helm_releases())
    # The same groups ship as a PrometheusRule and/or Managed Prometheus ClusterRules: one rules file either way.
    objects = rendered.kubernetes_objects()
    rules = [o for o in objects if o.get("kind") == "PrometheusRule"] or [
        o for o in objects if o.get("kind") == "ClusterRules"
    ]
    if rules:
        groups = [group for rule in rules for group in rule["spec"]["groups"]]
        files["prometheus-rules.yaml"] = _dump({"groups": groups}, sort_keys=False, width=1000)
    for obj in rendered.kubernetes_objects():
        if obj.get("kind") == "ConfigMap" and (obj["metadata"].get("labels") or {}).get(DASHBOARD_LABEL) == "1":
            for key, text in sorted(obj["data"].items()):
                files[f"dashboards/{key}"] = text
    for name, text in files.items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.render", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="prod", help="stack name or stack file path")
    parser.add_argument("--profile", help="override the stack's profile")
    parser.add_argument("--out", type=Path, help="output folder (default: build/<stack>[-<profile>])")
    args = parser.parse_args(argv)
    try:
        rendered = run_program(args.stack, ROOT, profile=args.profile)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except pulumi.RunError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    name = Path(args.stack).stem.removeprefix("Pulumi.") + (f"-{args.profile}" if args.profile else "")
    out = args.out or ROOT / "build" / name
    files = write(rendered, out)
    objects = len(rendered.kubernetes_objects())
    print(f"{objects} Kubernetes objects, {len(rendered.gcp_resources())} GCP resources → {out} ({len(files)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
