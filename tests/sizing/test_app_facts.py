"""The application's facts as config: `workloads.<name>.app` (the built-in facts of the name, overridden key by
key), `ingress.routes` (the built-in routes to the workloads the stack runs), and the checks of what the application
can run, which `plan` makes as the program does (tests/test_main.py runs the same table through the program)."""

from __future__ import annotations

from typing import Any

import pytest

from sizing.config.loader import parse_stack_config
from sizing.config.stack import StackConfig
from sizing.config.workloads import merge
from sizing.core.errors import ConfigError
from sizing.facts.routes import ROUTES
from sizing.facts.workloads import SPECS, WorkloadSpec
from sizing.plan.build import build_plan
from tests.sizing.stacks import UNRUNNABLE, assert_bad_input, generic_app, run_cli

NS = "hyperstudy-infra"
# A queue worker the built-in facts do not know: declared in the stack file alone.
WORKER_APP = {**generic_app("nodejs"), "component": "worker", "clients": ["backend"]}


def _with_worker(values: dict[str, Any], **fields: Any) -> dict[str, Any]:
    values["workloads"]["worker"] = {
        "replicas": 2,
        "cpu_request": "50m",
        "memory": {
            "optimized": {"request": "192Mi", "limit": "256Mi"},
            "baseline": {"request": "256Mi", "limit": "512Mi"},
        },
        "app": WORKER_APP,
        **fields,
    }
    values["images"]["worker"] = "ghcr.io/hyperstudy/worker:1.0.0"
    return values


# --- what the application cannot run: one line, the same from `plan` as from the program ------------------------


@pytest.mark.parametrize("case", sorted(UNRUNNABLE))
def test_the_config_refuses_what_the_application_cannot_run_with_one_line(prod_values, case):
    mutate, line = UNRUNNABLE[case]
    mutate(prod_values)
    with pytest.raises(ConfigError) as err:
        parse_stack_config(prod_values, NS)
    assert str(err.value) == line


@pytest.mark.parametrize("case", sorted(UNRUNNABLE))
def test_plan_refuses_what_the_application_cannot_run_with_the_same_line(write_stack, prod_values, case):
    mutate, line = UNRUNNABLE[case]
    mutate(prod_values)
    result = run_cli("--project-dir", str(write_stack(prod_values)), "plan", "--stack", "test")
    assert assert_bad_input(result, line.split(":", 2)[1]) == f"error: {line}"


def test_the_refusals_name_the_projects_own_namespace(prod_values):
    prod_values["workloads"]["redis"]["replicas"] = 2
    with pytest.raises(ConfigError) as err:
        parse_stack_config(prod_values, "acme-infra")
    assert err.value.key == "acme-infra:workloads.redis.replicas"


# --- the built-in facts as defaults, overridden key by key -------------------------------------------------------


def test_a_stack_that_gives_no_facts_runs_the_built_in_ones(prod_values):
    config = parse_stack_config(prod_values, NS)
    assert {name: w.app for name, w in config.workloads.items()} == dict(SPECS)
    assert config.ingress.routes == ROUTES


def test_a_given_key_overrides_its_default_and_leaves_the_others(prod_values):
    prod_values["workloads"]["backend"]["app"] = {
        "port": 3001,
        "clients": ["traefik"],  # a list replaces the default's, it does not extend it
        "probes": {"readiness": {"check": {"path": "/ready"}, "period_seconds": 3}, "startup": None},
    }
    app = parse_stack_config(prod_values, NS).workloads["backend"].app
    built_in = SPECS["backend"]
    assert (app.port, app.clients) == (3001, ("traefik",))
    assert app.probes.readiness.check.path == "/ready" and app.probes.readiness.period_seconds == 3
    assert app.probes.readiness.timeout_seconds == built_in.probes.readiness.timeout_seconds
    assert app.probes.liveness == built_in.probes.liveness
    assert app.probes.startup is None  # null removes an optional default
    assert app.model_dump(exclude={"port", "clients", "probes"}) == built_in.model_dump(
        exclude={"port", "clients", "probes"}
    )


def test_a_check_of_another_type_replaces_the_default_check_whole(prod_values):
    prod_values["workloads"]["frontend"]["app"] = {
        "probes": {"liveness": {"check": {"type": "exec", "command": ["/bin/healthy"]}}}
    }
    check = parse_stack_config(prod_values, NS).workloads["frontend"].app.probes.liveness.check
    assert check.model_dump() == {"type": "exec", "command": ("/bin/healthy",)}


def test_merge_merges_mappings_and_replaces_everything_else():
    default = {"a": {"b": 1, "c": [1, 2]}, "check": {"type": "http", "path": "/"}, "d": 1}
    given = {"a": {"c": [3]}, "check": {"type": "tcp"}, "e": 2}
    assert merge(default, given) == {"a": {"b": 1, "c": [3]}, "check": {"type": "tcp"}, "d": 1, "e": 2}
    assert merge(default, {"check": {"path": "/x"}})["check"] == {"type": "http", "path": "/x"}
    assert default == {"a": {"b": 1, "c": [1, 2]}, "check": {"type": "http", "path": "/"}, "d": 1}  # untouched


def test_the_resolved_config_validates_again_unchanged(prod_values):
    config = parse_stack_config(prod_values, NS)
    assert StackConfig.model_validate(config.model_dump()) == config


# --- a workload declared in the stack file alone -----------------------------------------------------------------


def test_a_workload_of_the_stack_file_alone_is_planned_with_its_runtime_from_its_facts(prod_values):
    config = parse_stack_config(_with_worker(prod_values), NS)
    worker = config.workloads["worker"]
    assert worker.runtime == "nodejs"  # not given beside the facts: what the image runs, said once
    assert worker.app == WorkloadSpec.model_validate(WORKER_APP)  # no built-in facts under it: its own alone
    plan = build_plan(config, "test")
    sized = plan.workloads["worker"]
    assert (sized.replicas, sized.memory_request, sized.memory_limit) == (2, "192Mi", "256Mi")
    assert sized.runtime.env == {"NODE_OPTIONS": "--max-old-space-size=192 --max-semi-space-size=1"}  # from its limit
    assert sum(node.count("worker-0") + node.count("worker-1") for node in plan.nodes.placement) == 2


def test_a_runtime_given_beside_the_facts_must_be_theirs(prod_values):
    with pytest.raises(ConfigError, match=r"workloads\.worker\.runtime: is 'go', but the worker image runs 'nodejs'"):
        parse_stack_config(_with_worker(prod_values, runtime="go"), NS)


# --- routes --------------------------------------------------------------------------------------------------------


def test_the_default_routes_leave_out_the_workloads_the_stack_does_not_run(prod_values):
    del prod_values["workloads"]["pod-router"], prod_values["images"]["pod-router"]
    routes = parse_stack_config(prod_values, NS).ingress.routes
    assert [r.workload for r in routes] == ["frontend", "backend"]


def test_given_routes_replace_the_default_ones(prod_values):
    _with_worker(prod_values, app={**WORKER_APP, "clients": ["traefik"]})
    prod_values["ingress"]["routes"] = [{"path": "/jobs", "workload": "worker", "sticky": True, "why": "job status"}]
    (route,) = parse_stack_config(prod_values, NS).ingress.routes
    assert (route.path, route.workload, route.sticky, route.websocket) == ("/jobs", "worker", True, False)
