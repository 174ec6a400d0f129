"""The public routes: the built-in routes (`sizing/facts/routes.py`), the config's `ingress.routes`, and the
PublicRoutes component under mocks (Issuer, Ingress, the solver's NetworkPolicy); cert-manager's release and the
static address."""

from __future__ import annotations

import pulumi
import pytest

from components.address import StaticAddress, StaticAddressArgs
from components.cert_manager import CertManager, CertManagerArgs, chart_values
from components.ingress import SOLVER_LABEL, PublicRoutes, PublicRoutesArgs, ingress_spec, tls_secret
from sizing.config.ingress import default_routes
from sizing.config.stack import StackConfig
from sizing.facts.charts import CERT_MANAGER
from sizing.facts.routes import ROUTES, STICKY_COOKIE, covers, internal_paths, service_annotations
from sizing.facts.workloads import SPECS

ISSUER = "kubernetes:cert-manager.io/v1:Issuer"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
RELEASE = "kubernetes:helm.sh/v3:Release"
TRAEFIK = {"app.kubernetes.io/name": "traefik", "app.kubernetes.io/instance": "hyperstudy-prod"}


# --- the routing facts --------------------------------------------------------------------------------------------


def test_every_route_names_a_workload_with_an_http_port_and_the_root_is_the_frontend():
    assert all(route.workload in SPECS for route in ROUTES)
    assert [r.workload for r in ROUTES if r.path == "/"] == ["frontend"]
    assert len({r.path for r in ROUTES}) == len(ROUTES)
    realtime = [r for r in ROUTES if r.websocket]
    assert [r.workload for r in realtime] == ["pod-router"] and all(r.sticky for r in realtime)


@pytest.mark.parametrize(
    ("prefix", "path", "covered"),
    [("/api", "/api", True), ("/api", "/api/capacity/status", True), ("/api", "/apix", False), ("/", "/metrics", True)],
)
def test_prefixes_match_element_by_element_as_ingress_prefix_paths_do(prefix, path, covered):
    assert covers(prefix, path) is covered


def test_metrics_and_health_checks_are_internal_but_a_probe_of_the_page_is_not():
    assert internal_paths(SPECS["backend"]) == ("/metrics", "/health")
    assert internal_paths(SPECS["frontend"]) == ()  # its probes fetch "/", the page itself
    assert internal_paths(SPECS["traefik"]) == ("/ping",)  # metrics on their own port, not on `web`


def test_only_the_realtime_router_gets_a_sticky_cookie(prod_config):
    routes = prod_config.ingress.routes
    annotations = service_annotations(routes, "pod-router")
    assert annotations["traefik.ingress.kubernetes.io/service.sticky.cookie"] == "true"
    assert annotations["traefik.ingress.kubernetes.io/service.sticky.cookie.name"] == STICKY_COOKIE
    assert annotations["traefik.ingress.kubernetes.io/service.sticky.cookie.secure"] == "true"
    assert service_annotations(routes, "backend") == service_annotations(routes, "frontend") == {}
    # A stack whose own routes make nothing sticky gets no cookie.
    plain = tuple(route.model_copy(update={"sticky": False}) for route in routes)
    assert service_annotations(plain, "pod-router") == {}


def test_the_default_routes_are_the_built_in_ones_to_the_workloads_the_stack_runs(prod_config):
    assert prod_config.ingress.routes == ROUTES
    assert default_routes(["frontend", "backend"]) == tuple(r for r in ROUTES if r.workload != "pod-router")
    assert default_routes(["redis"]) == ()


def test_the_ingress_routes_the_configs_routes_to_each_workloads_port_name(prod_config):
    workloads = prod_config.model_dump()["workloads"]
    workloads["frontend"]["app"] = {**workloads["frontend"]["app"], "port_name": "web"}
    routes = [
        {"path": "/", "workload": "frontend", "why": "the page"},
        {"path": "/v2", "workload": "backend", "websocket": True, "why": "the next API"},
    ]
    ingress = {**prod_config.ingress.model_dump(), "routes": routes}
    config = StackConfig.model_validate({**prod_config.model_dump(), "workloads": workloads, "ingress": ingress})
    args = PublicRoutesArgs.derive(config, "hyperstudy-traefik", TRAEFIK, "hyperstudy-abc123")
    assert args.port_names == {"frontend": "web", "backend": "http"}
    paths = ingress_spec(args).rules[0].http.paths
    assert [(p.path, p.backend.service.name, p.backend.service.port.name) for p in paths] == [
        ("/", "frontend", "web"),
        ("/v2", "backend", "http"),
    ]


# --- the component ----------------------------------------------------------------------------------------------


def _args(config) -> PublicRoutesArgs:
    return PublicRoutesArgs.derive(config, "hyperstudy-traefik", TRAEFIK, "hyperstudy-abc123")


@pulumi.runtime.test
def test_one_ingress_routes_every_path_of_every_host_with_tls_from_the_stacks_issuer(mocks, ran, prod_config):
    ingress_config = prod_config.ingress.model_copy(update={"hosts": ["app.hyperstudy.org", "www.hyperstudy.org"]})
    config = prod_config.model_copy(update={"ingress": ingress_config})
    component = PublicRoutes("hyperstudy", _args(config))

    def check(_):
        (ingress,) = mocks.of_type(INGRESS)
        spec = ingress.inputs["spec"]
        assert spec["ingressClassName"] == "hyperstudy-traefik"
        assert spec["tls"] == [
            {"hosts": ["app.hyperstudy.org", "www.hyperstudy.org"], "secretName": tls_secret("hyperstudy")}
        ]
        assert [rule["host"] for rule in spec["rules"]] == ["app.hyperstudy.org", "www.hyperstudy.org"]
        for rule in spec["rules"]:
            assert [(p["path"], p["pathType"], p["backend"]["service"]["name"]) for p in rule["http"]["paths"]] == [
                (r.path, "Prefix", r.workload) for r in ROUTES
            ]
        assert ingress.inputs["metadata"]["annotations"] == {"cert-manager.io/issuer": "letsencrypt"}
        (issuer,) = mocks.of_type(ISSUER)
        acme = issuer.inputs["spec"]["acme"]
        assert acme["server"] == "https://acme-v02.api.letsencrypt.org/directory"
        assert acme["email"] == "ops@hyperstudy.org"
        solver = acme["solvers"][0]["http01"]["ingress"]
        assert solver["podTemplate"] == {
            "spec": {"nodeSelector": {"cloud.google.com/gke-nodepool": "hyperstudy-abc123"}}
        }
        (policy,) = mocks.of_type(NETPOL)
        assert policy.inputs["spec"]["podSelector"] == {"matchLabels": {SOLVER_LABEL: "true"}}
        assert policy.inputs["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": TRAEFIK}}]
        # The Ingress comes after the Issuer it names.
        assert mocks.waits_for(ingress, issuer)
        ran.append("routes")

    return pulumi.Output.all(component.ingress.urn, component.solver_policy.urn).apply(check)


@pulumi.runtime.test
def test_a_staging_stack_uses_lets_encrypts_staging_directory(mocks, ran, prod_config):
    acme = prod_config.ingress.acme.model_copy(update={"server": "staging"})
    config = prod_config.model_copy(update={"ingress": prod_config.ingress.model_copy(update={"acme": acme})})
    component = PublicRoutes("hyperstudy", _args(config))

    def check(_):
        (issuer,) = mocks.of_type(ISSUER)
        assert issuer.inputs["spec"]["acme"]["server"] == "https://acme-staging-v02.api.letsencrypt.org/directory"
        ran.append("staging")

    return pulumi.Output.all(component.issuer.urn).apply(check)


def test_routes_without_hosts_are_refused_before_anything_is_registered(mocks, prod_config):
    config = prod_config.model_copy(update={"ingress": prod_config.ingress.model_copy(update={"hosts": []})})
    with pytest.raises(ValueError, match="public routes need hosts"):
        PublicRoutes("hyperstudy", _args(config))
    assert mocks.resources == []


# --- cert-manager and the address -------------------------------------------------------------------------------


def test_cert_manager_values_carry_the_plan_and_keep_the_crds(prod_plan):
    values = chart_values(prod_plan.chart_workloads, "hyperstudy-abc123")
    assert values["crds"] == {"enabled": True, "keep": True}
    assert values["global"]["leaderElection"]["namespace"] == "cert-manager"
    controller = prod_plan.chart_workloads["cert-manager"]
    assert values["resources"]["limits"] == {"memory": controller.memory_limit}
    assert values["extraEnv"] == [{"name": "GOMEMLIMIT", "value": controller.runtime.env["GOMEMLIMIT"]}]
    for key in ("nodeSelector", "webhook", "cainjector"):
        selector = values[key] if key == "nodeSelector" else values[key]["nodeSelector"]
        assert selector == {"cloud.google.com/gke-nodepool": "hyperstudy-abc123"}
    solver = prod_plan.chart_workloads["acme-solver"]
    assert values["extraArgs"] == [
        f"--acme-http01-solver-resource-request-cpu={solver.cpu_request}",
        f"--acme-http01-solver-resource-request-memory={solver.memory_request}",
        f"--acme-http01-solver-resource-limits-memory={solver.memory_limit}",
    ]
    check = prod_plan.chart_workloads["cert-manager-startupapicheck"]
    # On, and sized and pinned like every pod: the release waits for it, so what follows meets a serving webhook.
    assert values["startupapicheck"] == {
        "enabled": True,
        "resources": {
            "requests": {"cpu": check.cpu_request, "memory": check.memory_request},
            "limits": {"memory": check.memory_limit},
        },
        "nodeSelector": {"cloud.google.com/gke-nodepool": "hyperstudy-abc123"},
        "extraEnv": [{"name": "GOMEMLIMIT", "value": check.runtime.env["GOMEMLIMIT"]}],
    }
    assert "replicaCount" in values and "replicas" not in values


@pulumi.runtime.test
def test_cert_manager_is_a_pinned_release_in_its_restricted_namespace(mocks, ran, prod_config, prod_plan):
    component = CertManager("hyperstudy", CertManagerArgs.derive(prod_config, prod_plan, "hyperstudy-a1"))

    def check(_):
        (release,) = mocks.of_type(RELEASE)
        inputs = release.inputs
        assert (inputs["chart"], inputs["version"]) == (
            CERT_MANAGER.name,
            prod_config.ingress.cert_manager_chart_version,
        )
        assert inputs["repositoryOpts"] == {"repo": "https://charts.jetstack.io"}
        assert inputs["namespace"] == "cert-manager" and inputs["atomic"] is True
        # Helm runs the post-install hook (the startup check) and the create returns once it completed: neither
        # hooks nor the await are switched off (the provider's defaults, which these inputs would override).
        assert not inputs.get("disableWebhooks") and not inputs.get("skipAwait")
        assert inputs["values"]["startupapicheck"]["enabled"] is True
        (namespace,) = mocks.of_type("kubernetes:core/v1:Namespace")
        assert namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        assert mocks.waits_for(release, namespace)
        ran.append("cert-manager")

    return pulumi.Output.all(component.release.urn).apply(check)


@pulumi.runtime.test
def test_the_address_is_a_regional_external_ip_kept_like_the_cluster(mocks, ran):
    component = StaticAddress(
        "hyperstudy", StaticAddressArgs(region="europe-west1", description="HyperStudy staging", protect=False)
    )

    def check(ip):
        (address,) = mocks.of_type("gcp:compute/address:Address")
        assert address.inputs["region"] == "europe-west1"
        assert (address.inputs["addressType"], address.inputs["networkTier"]) == ("EXTERNAL", "PREMIUM")
        assert ip == "203.0.113.20"
        ran.append("address")

    return component.ip.apply(check)
