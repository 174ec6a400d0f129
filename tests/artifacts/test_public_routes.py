"""The render of every stack serves the app: every public path routes to a Service and port that exist, every host
has TLS with the redirect and HSTS in front, the Issuer is what cert-manager's CRD accepts, the CRDs' chart comes
before the objects that need it, the address is reserved, and every pod cert-manager runs is sized as planned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.cert_manager import RELEASE as CERT_MANAGER_RELEASE
from components.ingress import SOLVER_LABEL, SOLVER_PORT
from offline.mocks import RecordingMocks
from offline.render import Rendered
from sizing.config.loader import load_stack
from sizing.config.stack import StackConfig
from sizing.facts.charts import CERT_MANAGER
from sizing.facts.routes import covers, internal_paths
from sizing.plan.build import build_plan

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
CASES = [(stack, profile) for stack in STACKS for profile in ("optimized", "baseline")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{s}-{p}" for s, p in CASES])
def routed(request, render) -> tuple[Rendered, StackConfig, RecordingMocks]:
    stack, profile = request.param
    result = render(stack, profile)
    # The module's own recorder over what was registered, for the dependency checks.
    mocks = RecordingMocks(resources=list(result.resources))
    return result, load_stack(stack, ROOT, profile), mocks


def _kind(result: Rendered, kind: str) -> list[dict[str, Any]]:
    return [o for o in result.kubernetes_objects() if o["kind"] == kind]


def test_every_public_path_routes_to_a_service_port_that_exists(routed):
    result, config, _ = routed
    if not config.ingress.hosts:
        assert _kind(result, "Ingress") == []
        return
    services = {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in _kind(result, "Service")}
    (ingress,) = _kind(result, "Ingress")
    namespace = ingress["metadata"]["namespace"]
    walked = set()
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            service = services[(namespace, backend["name"])]
            ports = {p["name"] for p in service["spec"]["ports"]}
            assert backend["port"]["name"] in ports, (path["path"], backend)
            # The Service selects pods that exist: a controller of that name with the same selector.
            (controller,) = [
                c
                for c in _kind(result, "Deployment") + _kind(result, "StatefulSet")
                if c["metadata"]["name"] == backend["name"]
            ]
            assert service["spec"]["selector"] == controller["spec"]["selector"]["matchLabels"]
            walked.add((rule["host"], path["path"], backend["name"]))
    assert walked == {
        (host, route.path, route.workload) for host in config.ingress.hosts for route in config.ingress.routes
    }


def test_no_internal_endpoint_is_public(routed):
    """Metrics and health checks of every routed workload lie outside every prefix routed to it; the workloads that
    serve the cluster only (metrics-service, redis) have no route at all."""
    result, config, _ = routed
    if not config.ingress.hosts:
        return
    (ingress,) = _kind(result, "Ingress")
    routed: dict[str, list[str]] = {}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            routed.setdefault(path["backend"]["service"]["name"], []).append(path["path"])
    assert set(routed) == {"frontend", "backend", "pod-router"}
    for workload, prefixes in routed.items():
        for internal in internal_paths(config.workloads[workload].app):
            assert not any(covers(prefix, internal) for prefix in prefixes), (workload, internal, prefixes)
    assert internal_paths(config.workloads["backend"].app) == (
        "/metrics",
        "/health",
    )  # the guard: there is something to check


def test_every_host_has_tls_and_traefik_redirects_and_sends_hsts(routed):
    result, config, _ = routed
    if not config.ingress.hosts:
        return
    (ingress,) = _kind(result, "Ingress")
    (tls,) = ingress["spec"]["tls"]
    assert sorted(tls["hosts"]) == sorted(config.ingress.hosts) == sorted(r["host"] for r in ingress["spec"]["rules"])
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/issuer": "letsencrypt"}
    (traefik,) = [d for d in _kind(result, "Deployment") if d["metadata"]["name"] == "traefik"]
    args = traefik["spec"]["template"]["spec"]["containers"][0]["args"]
    for flag in (
        "--entryPoints.web.http.redirections.entryPoint.to=:443",
        "--entryPoints.web.http.redirections.entryPoint.scheme=https",
        "--entryPoints.websecure.http.tls=true",
        "--entryPoints.websecure.asDefault=true",
        "--entryPoints.websecure.http.middlewares=hsts@file",
    ):
        assert flag in args, flag
    (config_map,) = [c for c in _kind(result, "ConfigMap") if c["metadata"]["name"] == "traefik-config"]
    hsts = yaml.safe_load(config_map["data"]["hsts.yaml"])["http"]["middlewares"]["hsts"]["headers"]
    assert hsts["stsSeconds"] == config.ingress.hsts_max_age_seconds >= 31536000


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server reads it: an object with known properties takes no other field (the server
    prunes unknown fields silently, which would lose a misspelt setting)."""
    if isinstance(schema, dict):
        strict = {k: _strict(v) for k, v in schema.items()}
        known = "properties" in strict and "additionalProperties" not in strict
        if known and not strict.get("x-kubernetes-preserve-unknown-fields"):
            strict["additionalProperties"] = False
        return strict
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def test_the_issuer_is_one_cert_managers_crd_accepts_and_pins_its_solver(routed):
    result, config, _ = routed
    if not config.ingress.hosts:
        assert _kind(result, "Issuer") == []
        return
    schema = _strict(json.loads((SCHEMAS / "issuer-cert-manager-v1.json").read_text()))
    (issuer,) = _kind(result, "Issuer")
    jsonschema.validate(issuer, schema)
    broken = json.loads(json.dumps(issuer))
    broken["spec"]["acme"]["solvers"][0]["http01"]["ingress"]["ingressClass"] = "typo"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)
    acme = issuer["spec"]["acme"]
    assert acme["server"] == config.ingress.acme.directory
    solver = acme["solvers"][0]["http01"]["ingress"]
    assert solver["ingressClassName"] == f"{config.kubernetes.namespace}-traefik"
    assert solver["serviceType"] == "ClusterIP"
    assert solver["podTemplate"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-nodepool": f"{config.kubernetes.namespace}-{_pool_hash(result)}"
    }
    (policy,) = [p for p in _kind(result, "NetworkPolicy") if p["metadata"]["name"] == "acme-http01-solver"]
    assert policy["spec"]["podSelector"] == {"matchLabels": {SOLVER_LABEL: "true"}}
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": SOLVER_PORT, "protocol": "TCP"}]
    assert rule["from"] == [{"podSelector": {"matchLabels": _traefik_selector(result)}}]


def _pool_hash(result: Rendered) -> str:
    (pool,) = [r for r in result.gcp_resources() if r.typ == "gcp:container/nodePool:NodePool"]
    return pool.inputs["name"].rsplit("-", 1)[1]


def _traefik_selector(result: Rendered) -> dict[str, str]:
    (traefik,) = [d for d in _kind(result, "Deployment") if d["metadata"]["name"] == "traefik"]
    return traefik["spec"]["selector"]["matchLabels"]


def test_the_issuer_waits_for_the_chart_that_brings_its_crd(routed):
    result, config, mocks = routed
    if not config.ingress.hosts:
        return
    (issuer,) = [r for r in result.resources if r.inputs.get("kind") == "Issuer"]
    releases = [r for r in result.helm_releases() if r.inputs["name"] == CERT_MANAGER_RELEASE]
    if config.ingress.install_cert_manager:
        (release,) = releases
        assert mocks.waits_for(issuer, release)
        ingress = next(r for r in result.resources if r.inputs.get("kind") == "Ingress")
        assert mocks.waits_for(ingress, issuer)
    else:
        assert releases == []  # the cluster runs cert-manager: nothing of it is the program's


def test_cert_manager_pods_carry_the_plans_sizes(routed):
    result, config, _ = routed
    plan = build_plan(config, result.stack)
    releases = [r for r in result.helm_releases() if r.inputs["name"] == CERT_MANAGER_RELEASE]
    if not (config.ingress.hosts and config.ingress.install_cert_manager):
        assert releases == []
        assert set(plan.chart_workloads) & {"cert-manager", "cert-manager-webhook"} == set()
        return
    (release,) = releases
    values = release.inputs["values"]
    assert values["crds"] == {"enabled": True, "keep": True}
    # The startup check is on: Helm waits for it, so the Issuer after the release meets a serving webhook.
    assert values["startupapicheck"]["enabled"] is True
    for pod in CERT_MANAGER.pods:
        w = plan.chart_workloads[pod.name]
        if pod.main.resources is not None:
            node = values
            for key in pod.main.resources:
                node = node[key]
            assert node == {
                "requests": {"cpu": w.cpu_request, "memory": w.memory_request},
                "limits": {"memory": w.memory_limit},
            }
        else:
            flags = pod.main.resource_flags
            assert flags is not None
            assert set(flags.flags(w.cpu_request, w.memory_request, w.memory_limit)) <= set(values["extraArgs"])
            assert w.replicas == len(config.ingress.hosts)


def test_the_address_is_reserved_in_the_clusters_region_and_given_to_the_load_balancer(routed):
    result, config, _ = routed
    (address,) = [r for r in result.gcp_resources() if r.typ == "gcp:compute/address:Address"]
    assert address.inputs["region"] == config.cluster.region
    assert address.inputs["addressType"] == "EXTERNAL"
    (service,) = [s for s in _kind(result, "Service") if s["spec"].get("type") == "LoadBalancer"]
    assert service["spec"]["loadBalancerIP"] == result.outputs["public_ip"]
    assert result.outputs["hosts"] == config.ingress.hosts
    assert result.outputs["dns_records"] == [
        f"{host}. 300 IN A {result.outputs['public_ip']}" for host in config.ingress.hosts
    ]
