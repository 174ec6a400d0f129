"""The public entry as config and in the plan: host names certificates can be issued for, an ACME account, and
every pod cert-manager runs on the pool (its solver pods too, even under a cluster's own cert-manager)."""

from __future__ import annotations

from typing import Any

import pytest

from sizing.config.ingress import ACME_SERVERS
from sizing.core.errors import ConfigError
from sizing.facts.charts import CERT_MANAGER
from sizing.plan.build import build_plan

NS = "hyperstudy-infra"


def _refusal(parse, values: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse(values)
    return err.value


def test_prod_serves_one_host_with_lets_encrypt(parse, prod_values) -> None:
    ingress = parse(prod_values).ingress
    assert ingress.hosts == ["app.hyperstudy.org"]
    assert ingress.acme is not None and ingress.acme.directory == ACME_SERVERS["production"]
    assert ingress.install_cert_manager and ingress.hsts_max_age_seconds == 31536000


@pytest.mark.parametrize(
    "host",
    [
        "*.hyperstudy.org",
        "https://app.hyperstudy.org",
        "app.hyperstudy.org/",
        "App.Hyperstudy.org",
        "10.0.0.1",
        "localhost",
    ],
)
def test_a_host_no_certificate_can_be_issued_for_is_refused(parse, prod_values, host) -> None:
    prod_values["ingress"]["hosts"] = [host]
    err = _refusal(parse, prod_values)
    assert err.key == f"{NS}:ingress.hosts.0"
    assert "is not a host name a certificate can be issued for" in err.problem


def test_a_host_named_twice_is_refused(parse, prod_values) -> None:
    prod_values["ingress"]["hosts"] = ["app.hyperstudy.org", "app.hyperstudy.org"]
    assert _refusal(parse, prod_values).key == f"{NS}:ingress.hosts"


def test_hosts_need_an_acme_account(parse, prod_values) -> None:
    del prod_values["ingress"]["acme"]
    err = _refusal(parse, prod_values)
    assert (err.key, err.problem) == (
        f"{NS}:ingress.acme",
        "required key is missing (who issues the hosts' certificates)",
    )


def test_the_acme_directory_is_production_or_staging(parse, prod_values) -> None:
    prod_values["ingress"]["acme"]["server"] = "https://acme.example.org/directory"
    assert _refusal(parse, prod_values).key == f"{NS}:ingress.acme.server"


def test_solver_replicas_follow_the_hosts_and_cannot_be_set(parse, prod_values) -> None:
    prod_values["ingress"]["components"]["acme-solver"]["replicas"] = 2
    err = _refusal(parse, prod_values)
    assert (err.key, err.problem) == (
        f"{NS}:ingress.components.acme-solver.replicas",
        "must be omitted: one acme-solver pod runs per public host",
    )


def test_the_startup_check_is_one_pod_and_takes_no_replicas(parse, prod_values) -> None:
    plan = build_plan(parse(prod_values), "prod")
    check = plan.chart_workloads["cert-manager-startupapicheck"]
    # One pod while the chart installs, sized by its own entry, held by the plan like every pod on the pool.
    assert (check.replicas, check.per_node, check.source) == (1, False, CERT_MANAGER.name)
    assert (check.memory_request, check.memory_limit, check.cpu_request) == ("32Mi", "64Mi", "10m")
    assert check.runtime.env == {"GOMEMLIMIT": "57MiB"}  # ⌊0.9 × 64⌋: cmctl is a Go program
    assert check.config_path == "ingress.components.cert-manager-startupapicheck"
    prod_values["ingress"]["components"]["cert-manager-startupapicheck"]["replicas"] = 2
    err = _refusal(parse, prod_values)
    assert (err.key, err.problem) == (
        f"{NS}:ingress.components.cert-manager-startupapicheck.replicas",
        "must be omitted: cert-manager-startupapicheck is a hook Job's one pod, run while the chart installs",
    )


def test_every_cert_manager_pod_is_planned_and_solvers_follow_the_hosts(parse, prod_values) -> None:
    prod_values["ingress"]["hosts"] = ["app.hyperstudy.org", "www.hyperstudy.org"]
    plan = build_plan(parse(prod_values), "prod")
    ours = {n: w for n, w in plan.chart_workloads.items() if w.source == CERT_MANAGER.name}
    assert set(ours) == {pod.name for pod in CERT_MANAGER.pods}
    assert ours["acme-solver"].replicas == 2  # one challenge per host at a time
    assert ours["cert-manager"].runtime.env == {"GOMEMLIMIT": "115MiB"}  # ⌊0.9 × 128⌋
    assert ours["acme-solver"].runtime.env == {}  # started by the controller: no env to set


def test_a_clusters_own_cert_manager_leaves_only_the_solver_on_the_stacks_pool(parse, prod_values) -> None:
    prod_values["ingress"]["install_cert_manager"] = False
    plan = build_plan(parse(prod_values), "prod")
    assert {n for n, w in plan.chart_workloads.items() if w.source == CERT_MANAGER.name} == {"acme-solver"}


def test_without_hosts_nothing_of_cert_manager_runs(parse, prod_values) -> None:
    prod_values["ingress"] = {}
    plan = build_plan(parse(prod_values), "prod")
    assert not any(w.source == CERT_MANAGER.name for w in plan.chart_workloads.values())


@pytest.mark.parametrize(("location", "region"), [("us-central1-a", "us-central1"), ("europe-west1", "europe-west1")])
def test_the_clusters_region(parse, prod_values, location, region) -> None:
    prod_values["cluster"]["location"] = location
    assert parse(prod_values).cluster.region == region


def test_a_stack_without_hosts_says_nobody_can_reach_it(parse, prod_values) -> None:
    prod_values["ingress"] = {}
    warnings = build_plan(parse(prod_values), "prod").warnings
    assert warnings[0].startswith(f"{NS}:ingress.hosts: no public host, so the load balancer answers every request")
