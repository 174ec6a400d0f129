"""The whole program (`__main__.py`) under mocks: what a stack deploys, what it exports, and what bad config stops."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest
import yaml

from offline.render import REDACTED, run_program, stack_config_values
from sizing.config.loader import load_stack, project_name
from sizing.plan.build import build_plan
from tests.sizing.stacks import UNRUNNABLE, generic_app, run_cli

ROOT = Path(__file__).resolve().parent.parent
PROJECT = project_name(ROOT)

NODE_POOL = "gcp:container/nodePool:NodePool"
CONTAINERS = ("kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet")


def _sizing_cli_plan(profile: str) -> dict:
    out = run_cli("plan", "--stack", "prod", "--profile", profile, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("profile", ["optimized", "baseline"])
def test_outputs_are_the_figures_of_the_sizing_cli(render, profile):
    rendered = render("prod", profile)
    cli = _sizing_cli_plan(profile)
    out = rendered.outputs
    assert out["profile"] == cli["profile"] == profile
    assert out["workloads"] == {
        name: {k: w[k] for k in ("replicas", "memory_request", "memory_limit")} for name, w in cli["workloads"].items()
    }
    assert out["totals"] == {k: cli["totals"][k] for k in ("memory_request_mib", "memory_limit_mib")}
    assert out["nodes"] == {k: cli["nodes"][k] for k in ("machine_type", "min", "max", "lower_bound", "binding")}
    keys = (
        "monthly_usd",
        "total_monthly_usd",
        "lines",
        "best_monthly_usd",
        "baseline_monthly_usd",
        "savings_pct",
        "observed_baseline_monthly_usd",
        "observed_savings_pct",
    )
    assert out["cost"] == {k: cli["cost"][k] for k in keys}
    assert out["kubeconfig"] == REDACTED
    assert out["grafana_admin_password"] == REDACTED


@pytest.mark.parametrize("profile", ["optimized", "baseline"])
def test_every_container_carries_the_plans_sizes_and_the_pool_its_bounds(render, profile):
    rendered = render("prod", profile)
    plan = build_plan(load_stack("prod", ROOT, profile), "prod")
    controllers = [r for r in rendered.resources if r.typ in CONTAINERS]
    assert sorted(c.inputs["metadata"]["name"] for c in controllers) == sorted(plan.workloads)
    for controller in controllers:
        w = plan.workloads[controller.inputs["metadata"]["name"]]
        assert controller.inputs["spec"]["replicas"] == w.replicas
        (container,) = controller.inputs["spec"]["template"]["spec"]["containers"]
        assert container["resources"]["requests"]["memory"] == w.memory_request
        assert container["resources"]["limits"] == {"memory": w.memory_limit}
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        assert env == w.runtime.env
        if w.runtime.args:
            assert tuple(container["args"][-len(w.runtime.args) :]) == w.runtime.args
    (pool,) = [r for r in rendered.resources if r.typ == NODE_POOL]
    autoscaling = pool.inputs["autoscaling"]
    # Regional pools count totals over their zones, zonal ones per pool: either way the plan's bounds.
    bounds = (
        ("totalMinNodeCount", "totalMaxNodeCount")
        if "totalMinNodeCount" in autoscaling
        else (
            "minNodeCount",
            "maxNodeCount",
        )
    )
    assert (autoscaling[bounds[0]], autoscaling[bounds[1]]) == (plan.nodes.min, plan.nodes.max)
    assert pool.inputs["nodeConfig"]["machineType"] == plan.nodes.machine_type


def test_a_profile_switch_changes_no_gcp_resource(render):
    optimized, baseline = render("prod", "optimized"), render("prod", "baseline")
    assert [(r.typ, r.name, r.inputs) for r in optimized.gcp_resources()] == [
        (r.typ, r.name, r.inputs) for r in baseline.gcp_resources()
    ]


def _bad(mutate) -> tuple[dict[str, str], list[str]]:
    values, secrets = stack_config_values("prod", ROOT)
    # Most cases change a value; the secret cases also change which keys the engine holds as secrets.
    if mutate.__code__.co_argcount == 2:
        mutate(values, secrets)
    else:
        mutate(values)
    return values, secrets


def _unset_secret(key: str):
    def mutate(values: dict[str, str], secrets: list[str]) -> None:
        del values[f"{PROJECT}:{key}"]
        secrets.remove(f"{PROJECT}:{key}")

    return mutate


def _plaintext_secret(key: str):
    def mutate(values: dict[str, str], secrets: list[str]) -> None:
        secrets.remove(f"{PROJECT}:{key}")  # set without --secret: the engine holds it in plaintext

    return mutate


def _set_object(key: str, path: list[str], value):
    def mutate(values: dict[str, str]) -> None:
        data = json.loads(values[f"{PROJECT}:{key}"])
        node = data
        for part in path[:-1]:
            node = node[part]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        values[f"{PROJECT}:{key}"] = json.dumps(data)

    return mutate


BAD_CONFIGS = {
    "unknown key": (lambda v: v.update({f"{PROJECT}:colour": "red"}), "hyperstudy-infra:colour: unknown key"),
    "malformed quantity": (
        _set_object("workloads", ["frontend", "memory", "optimized", "request"], "32MB"),
        "hyperstudy-infra:workloads.frontend.memory.optimized.request",
    ),
    "request above limit": (
        _set_object("workloads", ["redis", "memory", "baseline", "request"], "1Gi"),
        "request 1Gi is above limit 512Mi",
    ),
    "unknown machine type": (
        _set_object("nodes", ["machine_type"], "n9-huge"),
        "hyperstudy-infra:nodes.machine_type: unknown machine type 'n9-huge'",
    ),
    "unknown profile": (lambda v: v.update({f"{PROJECT}:profile": "cheap"}), "hyperstudy-infra:profile"),
    "latest image": (_set_object("images", ["redis"], "redis:latest"), "is not pinned"),
    "missing cluster": (lambda v: v.pop(f"{PROJECT}:cluster"), "hyperstudy-infra:cluster: required"),
    "no surge room": (_set_object("nodes", ["surge_nodes"], 0), "hyperstudy-infra:nodes.surge_nodes"),
    "negative load": (
        _set_object("capacity", ["load", "typical", "small"], -1),
        "hyperstudy-infra:capacity.load.typical.small",
    ),
    "receiver secret not set": (
        _unset_secret("slack_webhook_url"),
        "hyperstudy-infra:slack_webhook_url: secret not set: run `pulumi config set --secret slack_webhook_url",
    ),
    "receiver secret in plaintext": (
        _plaintext_secret("pagerduty_routing_key"),
        "hyperstudy-infra:pagerduty_routing_key: is a receiver's secret in plaintext",
    ),
    "route to an unknown receiver": (
        _set_object("monitoring", ["alerting", "routes", "warning"], ["team-chat", "pager"]),
        "hyperstudy-infra:monitoring.alerting.routes.warning: unknown receiver 'pager'",
    ),
    "retention as large as the volume": (
        _set_object("monitoring", ["storage", "prometheus", "retention_size"], "20Gi"),
        "hyperstudy-infra:monitoring.storage.prometheus.retention_size",
    ),
    "two rule evaluators": (
        lambda v: [
            _set_object("monitoring", ["managed_prometheus"], True)(v),
            _set_object("monitoring", ["prometheus_operator"], True)(v),
        ],
        "hyperstudy-infra:monitoring.prometheus_operator",
    ),
    "a wildcard host": (
        _set_object("ingress", ["hosts"], ["*.hyperstudy.org"]),
        "hyperstudy-infra:ingress.hosts.0: '*.hyperstudy.org' is not a host name a certificate can be issued for",
    ),
    "hosts without an ACME account": (
        _set_object("ingress", ["acme"], KeyError),
        "hyperstudy-infra:ingress.acme: required key is missing",
    ),
    "the renamed authorized_networks key": (
        _set_object("cluster", ["authorized_networks"], ["203.0.113.0/24"]),
        "hyperstudy-infra:cluster.authorized_networks: was renamed to cluster.master_authorized_networks",
    ),
    "a maintenance window GKE refuses": (
        _set_object("cluster", ["maintenance"], {"days": ["sun"], "start_utc": "01:00", "duration_hours": 8}),
        "hyperstudy-infra:cluster.maintenance.days: give GKE only 32 hours of maintenance in some 32 days",
    ),
    "a maintenance window meeting a weekly window": (
        lambda v: [
            _set_object(
                "capacity",
                ["schedule"],
                [
                    {
                        "name": "lab",
                        "weekly": {"days": ["wed"], "start": "09:00", "end": "11:30", "timezone": "Europe/Berlin"},
                        "experiments": {"small": 1},
                    }
                ],
            )(v),
            _set_object(
                "cluster", ["maintenance"], {"days": ["wed", "sat"], "start_utc": "10:00", "duration_hours": 6}
            )(v),
        ],
        "hyperstudy-infra:cluster.maintenance: opens wed 10:00-16:00 UTC, which meets capacity.schedule.lab",
    ),
    "a second Grafana": (
        _set_object("monitoring", ["components", "grafana", "replicas"], 2),
        "hyperstudy-infra:monitoring.components.grafana.replicas: 2 is above 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_stops_with_one_line_before_any_resource(mocks, case):
    mutate, expected = BAD_CONFIGS[case]
    with pytest.raises(pulumi.RunError) as raised:
        values, secrets = _bad(mutate)
        run_program("prod", ROOT, config=values, secret_keys=secrets, mocks=mocks)
    message = str(raised.value)
    assert message.startswith("invalid stack config: ")
    assert expected in message
    assert "\n" not in message
    assert mocks.resources == []


def _decoded(value: str):
    try:
        return json.loads(value)  # objects and numbers as the engine passes them
    except ValueError:
        return value  # a plain string such as `optimized`


def _values_changed(mutate) -> tuple[dict[str, str], list[str]]:
    """Prod's config as the engine passes it, after `mutate` changed the project's keys as plain values (the form
    `tests.sizing.stacks.UNRUNNABLE` changes)."""
    values, secrets = stack_config_values("prod", ROOT)
    prefix = f"{PROJECT}:"
    plain = {key.removeprefix(prefix): _decoded(v) for key, v in values.items() if key.startswith(prefix)}
    plain = {key: v for key, v in plain.items() if f"{prefix}{key}" not in secrets}
    mutate(plain)
    kept = {key: v for key, v in values.items() if not key.startswith(prefix) or key in secrets}
    return {**kept, **{prefix + key: v if isinstance(v, str) else json.dumps(v) for key, v in plain.items()}}, secrets


@pytest.mark.parametrize("case", sorted(UNRUNNABLE))
def test_the_program_refuses_what_the_application_cannot_run_with_the_line_plan_gives(mocks, case):
    mutate, line = UNRUNNABLE[case]
    values, secrets = _values_changed(mutate)
    with pytest.raises(pulumi.RunError) as raised:
        run_program("prod", ROOT, config=values, secret_keys=secrets, mocks=mocks)
    assert str(raised.value) == f"invalid stack config: {line}"
    assert mocks.resources == []


def test_a_workload_declared_in_the_stack_file_alone_renders_and_is_planned(mocks, tmp_path):
    # A worker the built-in facts do not know, called by the backend, with its Prometheus metrics and a route.
    app = {
        **generic_app("nodejs"),
        "component": "worker",
        "clients": ["backend", "traefik"],
        "metrics_path": "/metrics",
        "probes": {"readiness": {"check": {"type": "http", "path": "/ready"}}, "liveness": {"check": {"type": "tcp"}}},
    }
    stack = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    config = stack["config"]
    config[f"{PROJECT}:workloads"]["worker"] = {
        "replicas": 2,
        "cpu_request": "50m",
        "memory": {
            "optimized": {"request": "192Mi", "limit": "256Mi"},
            "baseline": {"request": "256Mi", "limit": "512Mi"},
        },
        "app": app,
    }
    config[f"{PROJECT}:images"]["worker"] = "ghcr.io/hyperstudy/worker:1.0.0"
    config[f"{PROJECT}:ingress"]["routes"] = [
        {"path": "/", "workload": "frontend", "why": "the page"},
        {"path": "/jobs", "workload": "worker", "why": "job status"},
    ]
    path = tmp_path / "Pulumi.worker.yaml"
    path.write_text(yaml.safe_dump(stack, sort_keys=False))

    rendered = run_program(str(path), ROOT, mocks=mocks)
    named = {(r.typ, r.inputs.get("metadata", {}).get("name")): r for r in rendered.resources if r.custom}
    deployment = named[("kubernetes:apps/v1:Deployment", "worker")]
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "ghcr.io/hyperstudy/worker:1.0.0"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["resources"]["limits"] == {"memory": "256Mi"}
    assert {e["name"]: e["value"] for e in container["env"]} == {
        "NODE_OPTIONS": "--max-old-space-size=192 --max-semi-space-size=1"
    }
    service = named[("kubernetes:core/v1:Service", "worker")]
    assert [(p["name"], p["port"]) for p in service.inputs["spec"]["ports"]] == [("http", 8080)]
    policy = named[("kubernetes:networking.k8s.io/v1:NetworkPolicy", "worker")]
    peers = [peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for rule in policy.inputs["spec"]["ingress"]
             for peer in rule["from"] if "podSelector" in peer and "namespaceSelector" not in peer]  # fmt: skip
    assert sorted(peers) == ["backend", "traefik"]
    assert ("kubernetes:monitoring.coreos.com/v1:PodMonitor", "worker") in named
    assert ("kubernetes:policy/v1:PodDisruptionBudget", "worker") in named
    (ingress,) = [r for r in rendered.resources if r.typ == "kubernetes:networking.k8s.io/v1:Ingress"]
    paths = ingress.inputs["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"]) for p in paths] == [
        ("/", "frontend", "http"),
        ("/jobs", "worker", "http"),
    ]

    # `plan` of the same file sizes it: its pods, their sizes, and the heap its limit leaves.
    out = run_cli("plan", "--stack", str(path), "--json")
    assert out.returncode == 0, out.stderr
    worker = json.loads(out.stdout)["workloads"]["worker"]
    assert (worker["replicas"], worker["memory_request"], worker["memory_limit"]) == (2, "192Mi", "256Mi")
    assert rendered.outputs["workloads"]["worker"] == {
        "replicas": 2,
        "memory_request": "192Mi",
        "memory_limit": "256Mi",
    }


def test_the_issuer_waits_for_the_cert_manager_release_and_its_startup_check(mocks):
    run_program("prod", ROOT, mocks=mocks)
    (issuer,) = [r for r in mocks.of_type("kubernetes:cert-manager.io/v1:Issuer")]
    (release,) = [r for r in mocks.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "cert-manager"]
    # The release is created once Helm's post-install hook, the startup API check, has seen the webhook admit a
    # Certificate: the Issuer, registered after it, is never refused for a CA cainjector has not injected yet.
    assert mocks.waits_for(issuer, release)
    assert release.inputs["values"]["startupapicheck"]["enabled"] is True
    assert not release.inputs.get("disableWebhooks") and not release.inputs.get("skipAwait")


def test_everything_in_the_cluster_waits_for_the_pool_the_nat_and_the_charts_that_bring_its_crds(mocks):
    rendered = run_program("prod", ROOT, mocks=mocks)
    (pool,) = mocks.of_type(NODE_POOL)
    (nat,) = mocks.of_type("gcp:compute/routerNat:RouterNat")
    releases = rendered.helm_releases()
    (release,) = [r for r in releases if r.inputs["chart"] == "kube-prometheus-stack"]
    charts = (":PrometheusStack", ":CertManager")
    stack_children = {r.urn for r in rendered.resources if any(a.typ.endswith(charts) for a in mocks.ancestors(r))}
    in_cluster = [
        r
        for r in rendered.resources
        if r.custom
        and r.typ.startswith("kubernetes:")
        and r.typ != "pulumi:providers:kubernetes"
        and r.urn not in stack_children
    ]
    assert len(in_cluster) > 40
    for resource in in_cluster:
        for needed in (pool, nat, release):
            assert mocks.waits_for(resource, needed), f"{resource.typ} {resource.name} does not wait for {needed.name}"
    # The charts themselves wait for the pool and the NAT (their images come through it), not the other way round.
    assert len(releases) == 2
    for chart in releases:
        assert mocks.waits_for(chart, pool) and mocks.waits_for(chart, nat) and not mocks.waits_for(pool, chart)
