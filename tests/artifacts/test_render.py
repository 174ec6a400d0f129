"""The offline render of every stack checked by the validators operators use: kubernetes-validate (strict) for
built-in kinds, the quantity grammar (which kubernetes-validate does not check), the VPA and PrometheusRule
schemas, promtool on the rules file; plus determinism and redaction of the render itself.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.prometheus_operator.v1 import PodMonitor, PrometheusRule

from components.prometheus_stack import CHART
from monitoring.names import DASHBOARD_LABEL
from monitoring.rules import rule_groups
from offline.render import REDACTED, Rendered, run_program, stack_config_values, write
from sizing.config.loader import load_stack
from sizing.core.quantity import format_mib, format_millicores, is_quantity, to_mib, to_millicores
from sizing.plan.build import build_plan

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
PROMTOOL = ROOT / ".bin" / "promtool"
# Every stack file of the project is rendered, so a new stack is checked without touching the tests.
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
CASES = [(stack, profile) for stack in STACKS for profile in ("optimized", "baseline")]
CRD_KINDS = {"VerticalPodAutoscaler", "PrometheusRule", "ClusterRules", "PodMonitor", "PodMonitoring", "Issuer"}


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate reads its schema files (the definitions are megabytes of JSON) anew for every object it
    validates: here each file is read once. The schemas and the validation are the library's own."""
    with pytest.MonkeyPatch.context() as patch:
        read = kubernetes_validate.utils.schema_contents
        patch.setattr(kubernetes_validate.utils, "schema_contents", functools.lru_cache(maxsize=None)(read))
        yield


@pytest.fixture(scope="module", params=CASES, ids=[f"{s}-{p}" for s, p in CASES])
def rendered(request, tmp_path_factory, render) -> tuple[Rendered, Path, str]:
    stack, profile = request.param
    result = render(stack, profile)
    out = tmp_path_factory.mktemp(f"{stack}-{profile}")
    write(result, out)
    return result, out, load_stack(stack, ROOT, profile).kubernetes.version


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def _quantities(obj: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(path, resource name, value) of every resource quantity in an object."""
    for path, node in _walk(obj):
        leaf = path.rsplit(".", 1)[-1]
        if leaf in ("requests", "limits", "minAllowed", "maxAllowed") and isinstance(node, dict):
            for resource, value in node.items():
                yield f"{path}.{resource}", resource, value
        if leaf == "sizeLimit":
            yield path, "storage", node


def test_every_builtin_object_validates_strictly(rendered):
    result, _, version = rendered
    builtins = [o for o in result.kubernetes_objects() if o["kind"] not in CRD_KINDS]
    assert len(builtins) >= 30
    for obj in builtins:
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_would_catch_an_unknown_field(rendered):
    result, _, version = rendered
    deployment = next(o for o in result.kubernetes_objects() if o["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["memoryLimit"] = "1Gi"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_every_quantity_is_grammatical_and_canonical(rendered):
    result, _, _ = rendered
    seen = 0
    for obj in result.kubernetes_objects():
        for path, resource, value in _quantities(obj):
            where = f"{obj['kind']}/{obj['metadata']['name']}{path}"
            assert isinstance(value, str) and is_quantity(value), f"{where}: {value!r} is not a quantity"
            canonical = format_millicores(to_millicores(value)) if resource == "cpu" else format_mib(to_mib(value))
            assert value == canonical, f"{where}: {value!r} is not canonical ({canonical!r})"
            seen += 1
    assert seen >= 20


def test_every_container_has_memory_request_and_limit(rendered):
    result, _, _ = rendered
    for obj in result.kubernetes_objects():
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = obj["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            resources = container.get("resources", {})
            assert "memory" in resources.get("requests", {}), f"{obj['metadata']['name']}: no memory request"
            assert "memory" in resources.get("limits", {}), f"{obj['metadata']['name']}: no memory limit"


def test_vertical_pod_autoscalers_match_their_schema(rendered):
    result, _, _ = rendered
    schema = json.loads((SCHEMAS / "verticalpodautoscaler-v1.json").read_text())
    vpas = [o for o in result.kubernetes_objects() if o["kind"] == "VerticalPodAutoscaler"]
    controllers = {
        o["metadata"]["name"] for o in result.kubernetes_objects() if o["kind"] in ("Deployment", "StatefulSet")
    }
    assert {v["spec"]["targetRef"]["name"] for v in vpas} == controllers
    for vpa in vpas:
        jsonschema.validate(vpa, schema)
        assert vpa["spec"]["updatePolicy"]["updateMode"] == "Off"
    broken = json.loads(json.dumps(vpas[0]))
    broken["spec"]["updatePolicy"]["updateMode"] = "Sometimes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


@pytest.mark.parametrize(("kind", "model"), [("PrometheusRule", PrometheusRule), ("PodMonitor", PodMonitor)])
def test_operator_objects_match_the_crd_models_without_unknown_fields(rendered, kind, model):
    result, _, _ = rendered
    objects = [o for o in result.kubernetes_objects() if o["kind"] == kind]
    monitoring = load_stack(result.stack, ROOT).monitoring
    # Each stack ships to one rule evaluator: the operator's objects only where the operator runs the rules.
    assert bool(objects) == monitoring.prometheus_operator
    release = monitoring.release
    for obj in objects:
        # The models ignore unknown fields; a round trip that loses nothing proves there were none.
        assert model.model_validate(obj).model_dump(by_alias=True, exclude_unset=True, mode="json") == obj
        assert obj["metadata"]["labels"]["release"] == release


def test_managed_prometheus_rules_match_their_schema_and_the_operator_rules(rendered):
    result, _, _ = rendered
    objects = result.kubernetes_objects()
    managed = [o for o in objects if o["kind"] == "ClusterRules"]
    if not load_stack(result.stack, ROOT).monitoring.managed_prometheus:
        assert managed == []
        return
    schema = json.loads((SCHEMAS / "clusterrules-v1.json").read_text())
    (cluster_rules,) = managed
    jsonschema.validate(cluster_rules, schema)
    # Managed Prometheus alone evaluates the rules (no PrometheusRule, no PodMonitor beside them), and the groups
    # are the ones an operator stack would get.
    assert [o for o in objects if o["kind"] in ("PrometheusRule", "PodMonitor")] == []
    config = load_stack(result.stack, ROOT, result.outputs["profile"])
    assert cluster_rules["spec"] == {"groups": rule_groups(config, build_plan(config, result.stack))}
    broken = json.loads(json.dumps(cluster_rules))
    del broken["spec"]["groups"][0]["interval"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def _promtool() -> Path | None:
    if PROMTOOL.is_file():
        return PROMTOOL
    if os.environ.get("CI") == "true":
        pytest.fail("promtool is missing: tools/install-prometheus must run before the tests in CI")
    pytest.skip("promtool not installed (run tools/install-prometheus)")
    return None


def test_rendered_rules_file_passes_promtool(rendered):
    _, out, _ = rendered
    promtool = _promtool()
    check = subprocess.run(
        [str(promtool), "check", "rules", "--lint=all", "--lint-fatal", str(out / "prometheus-rules.yaml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_dashboards_are_written_as_json_from_their_configmaps(rendered):
    result, out, _ = rendered
    maps = [
        o
        for o in result.kubernetes_objects()
        if o["kind"] == "ConfigMap" and (o["metadata"].get("labels") or {}).get(DASHBOARD_LABEL) == "1"
    ]
    files = sorted(p.name for p in (out / "dashboards").glob("*.json"))
    assert files == sorted(key for m in maps for key in m["data"])
    for path in (out / "dashboards").glob("*.json"):
        assert json.loads(path.read_text())["uid"] == path.stem


def test_render_is_deterministic(rendered, tmp_path, recording_mocks):
    result, out, _ = rendered
    again = run_program(result.stack, ROOT, profile=result.outputs["profile"], mocks=recording_mocks)
    second = tmp_path / "again"
    write(again, second)
    first_files = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    second_files = {p.relative_to(second): p.read_bytes() for p in sorted(second.rglob("*")) if p.is_file()}
    assert first_files == second_files


def test_secrets_are_redacted(rendered):
    result, out, _ = rendered
    outputs = json.loads((out / "outputs.json").read_text())
    if load_stack(result.stack, ROOT).cluster.create:
        assert outputs["kubeconfig"] == REDACTED
    else:
        assert "kubeconfig" not in outputs
    text = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    assert "certificate-authority-data" not in text and "Y2EtY2VydA==" not in text
    for path in (out / "kubernetes").glob("*.yaml"):
        obj = yaml.safe_load(path.read_text())
        if obj["kind"] == "Secret":
            assert set((obj.get("data") or {}).values()) <= {REDACTED}
            assert set((obj.get("stringData") or {}).values()) <= {REDACTED}


def test_no_secret_value_appears_anywhere_in_the_render(tmp_path, recording_mocks):
    """The receivers' credentials, given as Pulumi secrets, and Grafana's generated password: in no file written."""
    values, secrets = stack_config_values("prod", ROOT)
    planted = {key: f"planted-{key.split(':')[1]}-4f1c9e" for key in secrets}
    values |= planted
    result = run_program("prod", ROOT, config=values, secret_keys=secrets, mocks=recording_mocks)
    write(result, tmp_path)
    text = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert planted and not [value for value in planted.values() if value in text]
    assert "mock-password" not in text
    # The values did reach the program: the Secret Alertmanager mounts holds them.
    (receivers,) = [r for r in result.resources if r.typ == "kubernetes:core/v1:Secret" and "receivers" in r.name]
    assert sorted(receivers.inputs["stringData"].values()) == sorted(planted.values())


def test_the_helm_release_carries_the_plans_sizes_volumes_and_gke_fit(rendered):
    result, _, _ = rendered
    config = load_stack(result.stack, ROOT, result.outputs["profile"])
    releases = [r for r in result.helm_releases() if r.inputs["chart"] == CHART.name]
    if not config.monitoring.install_stack:
        assert releases == []
        return
    (release,) = releases
    values = release.inputs["values"]
    plan = build_plan(config, result.stack)
    for pod in CHART.pods:
        node = values
        for key in pod.main.resources:
            node = node[key]
        w = plan.chart_workloads[pod.name]
        assert node == {
            "requests": {"cpu": w.cpu_request, "memory": w.memory_request},
            "limits": {"memory": w.memory_limit},
        }
    spec = values["prometheus"]["prometheusSpec"]
    storage = to_mib(spec["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"])
    retention = int(spec["retentionSize"].removesuffix("GB")) * 1024 if spec["retentionSize"].endswith("GB") else None
    assert retention is not None and retention < storage
    assert all(
        values[c] == {"enabled": False} for c in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy")
    )
    assert values["grafana"]["admin"]["existingSecret"] and "adminPassword" not in values["grafana"]


def test_gcp_summary_names_every_gcp_resource(rendered):
    result, out, _ = rendered
    summary = (out / "gcp.md").read_text()
    for resource in result.gcp_resources():
        assert f"## {resource.typ} `{resource.name}`" in summary
    assert {"gcp:container/nodePool:NodePool", "gcp:serviceaccount/account:Account"} <= {
        r.typ for r in result.gcp_resources()
    }


def test_a_distinct_spread_renders_valid_anti_affinity(recording_mocks):
    """`spread: distinct` (prod renders none) validates strictly too: required pod anti-affinity with the
    Deployment's matchLabelKeys, a field of PodAffinityTerm since Kubernetes 1.29."""
    values, secrets = stack_config_values("prod", ROOT)
    workloads = json.loads(values["hyperstudy-infra:workloads"])
    for name in ("backend", "frontend"):
        workloads[name]["spread"] = "distinct"
    values["hyperstudy-infra:workloads"] = json.dumps(workloads)
    result = run_program("prod", ROOT, config=values, secret_keys=secrets, mocks=recording_mocks)
    version = load_stack("prod", ROOT).kubernetes.version
    controllers = {
        o["metadata"]["name"]: o for o in result.kubernetes_objects() if o["kind"] in ("Deployment", "StatefulSet")
    }
    for name in ("backend", "frontend"):
        spec = controllers[name]["spec"]["template"]["spec"]
        assert "podAntiAffinity" in spec["affinity"] and "topologySpreadConstraints" not in spec
        kubernetes_validate.validate(controllers[name], version, strict=True)
    broken = json.loads(json.dumps(controllers["frontend"]))
    term = broken["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term["requiredDuringSchedulingIgnoredDuringExecution"][0]["matchLabelKey"] = ["pod-template-hash"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)
