"""The backend's scheduled scaling under Pulumi mocks (`components/schedule.py`, wired in `components/app.py`): one
CronJob per action of the plan, a Role that grants one patch and nothing else, restricted pods, and a backend that
Pulumi leaves to the jobs; a stack without actions gets none of it, and its backend is applied with
`pulumi.com/patchForce`. The jobs' script runs here too, with `sh` against a local fake API server that keeps field
ownership as the API server does, and the rollback during a window is replayed against it.

Checks run inside `.apply()` of a `@pulumi.runtime.test` test and record that they ran (the `ran` fixture).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pulumi
import pytest
import yaml
from pydantic import ValidationError

from components.app import HyperStudyApp, HyperStudyAppArgs
from components.schedule import (
    SCALE_SCRIPT,
    SCALER_IMAGE,
    BackendSchedule,
    BackendScheduleArgs,
)
from components.workload import COMPONENT, INSTANCE, MANAGED_BY, NAME, PART_OF, PATCH_FORCE, SAFE_TO_EVICT
from sizing.config.loader import load_stack
from sizing.config.stack import StackConfig
from sizing.plan.build import build_plan
from sizing.plan.types import Plan, ScaleAction

if TYPE_CHECKING:  # importing conftest at run time would load it twice and install a second set of mocks
    from tests.conftest import RecordingMocks, Registered

ROOT = Path(__file__).resolve().parents[2]
CRONJOB = "kubernetes:batch/v1:CronJob"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
CONTROLLERS = ("kubernetes:apps/v1:Deployment", STATEFULSET)
SCHEDULE_TYPE = "hyperstudy:schedule:BackendSchedule"
POOL = "hyperstudy-staging-pool"
# Staging's plan as of a fixed instant: both windows still to come, so a weekly and a one-off pair of actions.
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# The one grant of the scaler, written out.
SCALE_RULE = {
    "apiGroups": ["apps"],
    "resources": ["statefulsets/scale"],
    "verbs": ["patch"],
    "resourceNames": ["backend"],
}


# --- fixtures and helpers ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def staging_config() -> StackConfig:
    return load_stack("staging", ROOT)


@pytest.fixture(scope="module")
def staging_plan(staging_config: StackConfig) -> Plan:
    plan = build_plan(staging_config, "staging", now=NOW)
    schedule = plan.schedule
    # The tests below exercise both kinds of action: guard that the stack still gives them.
    assert schedule is not None and schedule.workload == "backend"
    assert {a.year is None for a in schedule.actions} == {True, False}
    assert {a.direction for a in schedule.actions} == {"up", "down"}
    return plan


def build(config: StackConfig, plan: Plan, **args: Any) -> HyperStudyApp:
    return HyperStudyApp("hyperstudy", HyperStudyAppArgs(config=config, plan=plan, **args))


def children(app: HyperStudyApp) -> list[pulumi.Resource]:
    resources: list[pulumi.Resource] = [app.namespace, app.default_deny]
    for w in app.workloads.values():
        resources += [w.service_account, w.controller, w.service, w.network_policy]
    if app.schedule is not None:
        resources += [app.schedule, app.schedule.service_account, app.schedule.role, app.schedule.role_binding]
        resources += list(app.schedule.cron_jobs.values())
    return resources


def settled(app: HyperStudyApp, ran: list[bool], check: Callable[[], None]) -> pulumi.Output:
    """An output that runs `check` once the app's workloads and its schedule are registered with the mocks."""

    def run(_: Any) -> None:
        check()
        ran.append(True)

    return pulumi.Output.all(*[r.urn for r in children(app)]).apply(run)


def registered(mocks: RecordingMocks, config: StackConfig, plan: Plan, **args: Any) -> list[Registered]:
    """Every resource the app registers, once all are (asserts then run outside apply, on the copy)."""
    done: list[bool] = []

    @pulumi.runtime.test
    def program() -> pulumi.Output:
        mocks.resources.clear()
        return settled(build(config, plan, **args), done, lambda: None)

    program()
    assert done, "the app never settled"
    return list(mocks.resources)


def pod_spec(cronjob: Registered) -> dict[str, Any]:
    return cronjob.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def container(cronjob: Registered) -> dict[str, Any]:
    (only,) = pod_spec(cronjob)["containers"]
    return only


def env(cronjob: Registered) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(cronjob).get("env", [])}


# --- the CronJobs -------------------------------------------------------------------------------------------------


@pulumi.runtime.test
def test_one_cronjob_per_action_at_its_schedule_and_time_zone(mocks, ran, staging_config, staging_plan):
    app = build(staging_config, staging_plan)
    actions = staging_plan.schedule.actions

    def check() -> None:
        cronjobs = {r.name: r for r in mocks.of_type(CRONJOB)}
        assert sorted(cronjobs) == sorted(f"backend-{a.name}" for a in actions)
        assert "backend-teaching-lab-up" in cronjobs
        for action in actions:
            cronjob = cronjobs[f"backend-{action.name}"]
            assert cronjob.inputs["metadata"]["name"] == f"backend-{action.name}"
            assert cronjob.inputs["metadata"]["namespace"] == "hyperstudy-staging"
            spec = cronjob.inputs["spec"]
            assert spec["schedule"] == action.schedule
            assert spec["timeZone"] == action.time_zone
            assert spec["concurrencyPolicy"] == "Forbid"
            assert spec["startingDeadlineSeconds"] == 300
            assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (1, 3)
            job = spec["jobTemplate"]["spec"]
            assert job["backoffLimit"] == 4
            assert job["activeDeadlineSeconds"] == 300
            assert job["ttlSecondsAfterFinished"] >= 86400
            assert pod_spec(cronjob)["restartPolicy"] == "Never"
            expected = {"REPLICAS": str(action.replicas), "NAMESPACE": "hyperstudy-staging", "STATEFULSET": "backend"}
            if action.year is not None:
                # A one-off window: cron in UTC, and the script acts only in the window's year.
                assert action.time_zone == "Etc/UTC"
                expected["ONLY_YEAR"] = str(action.year)
            if action.replicas_on:
                expected["REPLICAS_ON"] = " ".join(f"{d}={n}" for d, n in sorted(action.replicas_on.items()))
            assert env(cronjob) == expected, cronjob.name
        weekly = cronjobs["backend-teaching-lab-up"].inputs["spec"]
        assert weekly["timeZone"] == "Europe/Berlin"
        assert "ONLY_YEAR" not in env(cronjobs["backend-teaching-lab-up"])
        # Up raises the replicas above the configured ones, down returns to them.
        base = staging_plan.schedule.base_replicas
        for action in actions:
            replicas = int(env(cronjobs[f"backend-{action.name}"])["REPLICAS"])
            assert replicas > base if action.direction == "up" else replicas == base

    return settled(app, ran, check)


def with_exceptions(plan: Plan, action_name: str, replicas_on: dict[str, int]) -> Plan:
    """The plan with one action's per-date exceptions replaced."""
    schedule = plan.schedule
    assert action_name in {a.name for a in schedule.actions}
    actions = tuple(
        a.model_copy(update={"replicas_on": replicas_on}) if a.name == action_name else a for a in schedule.actions
    )
    return plan.model_copy(update={"schedule": schedule.model_copy(update={"actions": actions})})


def test_an_actions_exceptions_reach_its_pod_as_replicas_on_by_date(mocks, staging_config, staging_plan):
    """Space-separated `YYYY-MM-DD=N` pairs sorted by date, after the other variables, on that action's pod only;
    nothing else the app registers changes."""
    plan = with_exceptions(staging_plan, "teaching-lab-up", {"2027-03-02": 5, "2026-12-08": 14, "2026-12-15": 0})
    usual = {(r.typ, r.name): r.inputs for r in registered(mocks, staging_config, staging_plan) if r.custom}
    excepted = {(r.typ, r.name): r for r in registered(mocks, staging_config, plan) if r.custom}
    assert sorted(excepted) == sorted(usual)

    cronjob = excepted[(CRONJOB, "backend-teaching-lab-up")]
    replicas = str(next(a.replicas for a in plan.schedule.actions if a.name == "teaching-lab-up"))
    assert container(cronjob)["env"] == [
        {"name": "REPLICAS", "value": replicas},
        {"name": "NAMESPACE", "value": "hyperstudy-staging"},
        {"name": "STATEFULSET", "value": "backend"},
        {"name": "REPLICAS_ON", "value": "2026-12-08=14 2026-12-15=0 2027-03-02=5"},
    ]
    assert container(cronjob)["command"] == ["/bin/sh", "-c", SCALE_SCRIPT]
    # Without the variable, the CronJob is exactly the usual one; every other object is unchanged.
    inputs = json.loads(json.dumps(cronjob.inputs))
    inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"].pop()
    assert inputs == usual[(CRONJOB, "backend-teaching-lab-up")]
    others = {key: r.inputs for key, r in excepted.items() if key != (CRONJOB, "backend-teaching-lab-up")}
    assert others == {key: value for key, value in usual.items() if key != (CRONJOB, "backend-teaching-lab-up")}


@pulumi.runtime.test
def test_the_role_grants_patch_on_the_backends_scale_and_nothing_else(mocks, ran, staging_config, staging_plan):
    app = build(staging_config, staging_plan)

    def check() -> None:
        (role,) = [r for r in mocks.of_type(ROLE) if r.name == "backend-scaler"]
        assert role.inputs["rules"] == [SCALE_RULE]
        (binding,) = [r for r in mocks.of_type(ROLE_BINDING) if r.name == "backend-scaler"]
        assert binding.inputs["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role.inputs["metadata"]["name"],
        }
        assert binding.inputs["subjects"] == [
            {"kind": "ServiceAccount", "name": "backend-scaler", "namespace": "hyperstudy-staging"}
        ]
        account = mocks.named(SERVICE_ACCOUNT, "backend-scaler")
        assert account.inputs["metadata"]["name"] == "backend-scaler"
        assert account.inputs["automountServiceAccountToken"] is True
        # The scaler's account is bound nowhere else, and no cluster-wide role mentions scale.
        bindings = [r for r in mocks.of_type(ROLE_BINDING) if "backend-scaler" in json.dumps(r.inputs["subjects"])]
        assert bindings == [binding]
        assert not [r for r in mocks.of_type(CLUSTER_ROLE) if "scale" in json.dumps(r.inputs["rules"])]
        for cronjob in mocks.of_type(CRONJOB):
            assert pod_spec(cronjob)["serviceAccountName"] == "backend-scaler"
            assert pod_spec(cronjob)["automountServiceAccountToken"] is True
        # Every other pod keeps its token unmounted but Traefik's.
        mounting = {r.name for r in mocks.resources if r.typ in CONTROLLERS}
        mounting = {n for n in mounting if mocks.named(SERVICE_ACCOUNT, n).inputs["automountServiceAccountToken"]}
        assert mounting == {"traefik"}

    return settled(app, ran, check)


@pulumi.runtime.test
def test_scaler_pods_are_restricted_pinned_labelled_and_on_the_pool(mocks, ran, staging_config, staging_plan):
    app = build(staging_config, staging_plan, node_pool=POOL)

    def check() -> None:
        cronjobs = mocks.of_type(CRONJOB)
        assert len(cronjobs) == len(staging_plan.schedule.actions)
        for cronjob in cronjobs:
            spec = pod_spec(cronjob)
            assert spec["securityContext"] == {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 101,
                "seccompProfile": {"type": "RuntimeDefault"},
            }
            assert spec["enableServiceLinks"] is False
            assert spec["nodeSelector"] == {"cloud.google.com/gke-nodepool": POOL}
            main = container(cronjob)
            assert main["securityContext"] == {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
                "readOnlyRootFilesystem": True,
            }
            assert main["image"] == SCALER_IMAGE
            repository, digest = main["image"].split("@")
            assert repository.endswith("/curl:8.11.1") and digest.startswith("sha256:") and len(digest) == 71
            assert main["command"] == ["/bin/sh", "-c", SCALE_SCRIPT]
            assert main["resources"] == {"requests": {"memory": "16Mi", "cpu": "10m"}, "limits": {"memory": "32Mi"}}
            for labels in (
                cronjob.inputs["metadata"]["labels"],
                cronjob.inputs["spec"]["jobTemplate"]["metadata"]["labels"],
                cronjob.inputs["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"],
            ):
                assert labels[NAME] == "backend-scaler"
                assert labels[INSTANCE] == "hyperstudy-staging"
                assert labels[COMPONENT] == "scheduler"
                assert labels[PART_OF] == "hyperstudy"
                assert labels[MANAGED_BY] == "pulumi"
        # The workloads' selectors (name + instance) never select a scaler pod.
        for ctrl in (r for r in mocks.resources if r.typ in CONTROLLERS):
            assert ctrl.inputs["spec"]["selector"]["matchLabels"][NAME] != "backend-scaler"

    return settled(app, ran, check)


@pulumi.runtime.test
def test_the_schedule_is_a_child_of_the_app_and_waits_for_the_statefulset(mocks, ran, staging_config, staging_plan):
    app = build(staging_config, staging_plan)
    schedule = app.schedule
    assert isinstance(schedule, BackendSchedule)

    def check(urns: list[str]) -> None:
        schedule_urn, app_urn = urns
        component = mocks.by_urn(schedule_urn)
        assert component.parent == app_urn
        assert schedule_urn.endswith(f"{SCHEDULE_TYPE}::backend")
        owned = [r for r in mocks.resources if r.parent == schedule_urn]
        assert sorted((r.typ, r.name) for r in owned) == sorted(
            [(SERVICE_ACCOUNT, "backend-scaler"), (ROLE, "backend-scaler"), (ROLE_BINDING, "backend-scaler")]
            + [(CRONJOB, f"backend-{a.name}") for a in staging_plan.schedule.actions]
        )
        statefulset = mocks.named(STATEFULSET, "backend")
        namespace = mocks.named("kubernetes:core/v1:Namespace", "hyperstudy-staging")
        for resource in owned:
            assert mocks.waits_for(resource, statefulset), resource.name
            assert mocks.waits_for(resource, namespace), resource.name
        ran.append(True)

    return pulumi.Output.all(schedule.urn, app.urn, *[r.urn for r in children(app)]).apply(lambda urns: check(urns[:2]))


# --- Pulumi leaves the replicas to the jobs -----------------------------------------------------------------------


@pulumi.runtime.test
def test_the_scheduled_backend_ignores_spec_replicas_and_nothing_else_does(mocks, ran, staging_config, staging_plan):
    app = build(staging_config, staging_plan)

    def check() -> None:
        assert app.workloads["backend"].ignored_changes == ("spec.replicas",)
        # What the engine received as the resource option, not only what the component says it passed.
        assert mocks.named(STATEFULSET, "backend").ignore_changes == ("spec.replicas",)
        # Pulumi still creates it with the plan's replicas.
        assert mocks.named(STATEFULSET, "backend").inputs["spec"]["replicas"] == staging_plan.schedule.base_replicas
        for name, workload in app.workloads.items():
            if name != "backend":
                assert workload.ignored_changes == (), name
        others = [r for r in mocks.resources if r.ignore_changes and not (r.typ == STATEFULSET and r.name == "backend")]
        assert others == []
        # With a scaler nothing is forced: ignore_changes is what keeps Pulumi off the scaler's field.
        assert forced(mocks.resources) == set()

    return settled(app, ran, check)


def forced(resources: list[Registered]) -> set[str]:
    """The controllers registered with pulumi.com/patchForce."""
    return {
        r.name
        for r in resources
        if r.typ in CONTROLLERS and (r.inputs["metadata"].get("annotations") or {}).get(PATCH_FORCE) == "true"
    }


@pulumi.runtime.test
def test_a_stack_without_a_schedule_has_no_scaler_and_pulumi_keeps_its_replicas(mocks, ran, prod_config, prod_plan):
    assert prod_plan.schedule is None
    app = build(prod_config, prod_plan)

    def check() -> None:
        assert app.schedule is None
        assert mocks.of_type(CRONJOB) == []
        assert [r.name for r in mocks.of_type(ROLE)] == ["traefik"]
        assert [r.name for r in mocks.of_type(ROLE_BINDING)] == ["traefik"]
        assert "backend-scaler" not in {r.name for r in mocks.of_type(SERVICE_ACCOUNT)}
        assert not [r for r in mocks.resources if r.typ.startswith("hyperstudy:schedule:")]
        assert all(w.ignored_changes == () for w in app.workloads.values())
        assert [r for r in mocks.resources if r.ignore_changes] == []
        # The program cannot tell this stack from one whose schedule was just removed: its backend is forced too.
        assert forced(mocks.resources) == {"backend"}

    return settled(app, ran, check)


@pulumi.runtime.test
def test_a_schedule_whose_windows_have_passed_has_no_scaler(mocks, ran, staging_config, staging_plan):
    """No action left to run (every window over): nothing scales, so Pulumi manages the replicas again."""
    passed = staging_plan.model_copy(update={"schedule": staging_plan.schedule.model_copy(update={"actions": ()})})
    app = build(staging_config, passed)

    def check() -> None:
        assert app.schedule is None and mocks.of_type(CRONJOB) == []
        assert app.workloads["backend"].ignored_changes == ()
        assert mocks.named(STATEFULSET, "backend").ignore_changes == ()
        # The last down job has already set the plan's replicas: the forced apply finds the same value.
        assert forced(mocks.resources) == {"backend"}

    return settled(app, ran, check)


def test_without_a_scaler_the_app_registers_exactly_what_it_did(mocks, staging_config, staging_plan):
    """Staging with its actions removed registers what staging registers minus the scaler's objects, input for
    input, but for the patchForce annotation on the backend: adding a schedule adds objects, and takes the force
    off the one StatefulSet it scales."""
    passed = staging_plan.model_copy(update={"schedule": staging_plan.schedule.model_copy(update={"actions": ()})})
    scheduled = registered(mocks, staging_config, staging_plan)
    unscheduled = registered(mocks, staging_config, passed)

    def inputs(resources: list[Registered]) -> dict[tuple[str, str], Any]:
        return {(r.typ, r.name): r.inputs for r in resources if r.custom}

    added = set(inputs(scheduled)) - set(inputs(unscheduled))
    assert added == {
        (SERVICE_ACCOUNT, "backend-scaler"),
        (ROLE, "backend-scaler"),
        (ROLE_BINDING, "backend-scaler"),
        *((CRONJOB, f"backend-{a.name}") for a in staging_plan.schedule.actions),
    }
    without_scaler = copy.deepcopy(inputs(unscheduled))
    assert without_scaler[(STATEFULSET, "backend")]["metadata"]["annotations"].pop(PATCH_FORCE) == "true"
    assert {k: v for k, v in inputs(scheduled).items() if k not in added} == without_scaler


# --- every case, as the engine receives it --------------------------------------------------------------------------

# The backend StatefulSet's registration in each case: its ignore_changes option and its pulumi.com/patchForce.
CASES = {
    # A stack with scaling actions: Pulumi keeps off spec.replicas, the scaler's `curl` owns it after a scale.
    "scheduled": (("spec.replicas",), None),
    # The same stack rolled back (`profile: baseline`): the larger pods hold the windows, no action, no scaler.
    "rolled-back": ((), "true"),
    # The same stack with `capacity.schedule` taken out.
    "schedule-removed": ((), "true"),
    # prod, which never had a schedule: the same registration as a schedule removed, which it cannot be told from.
    "never-scheduled": ((), "true"),
}


@pytest.fixture(scope="module")
def case_stacks(staging_config, staging_plan, prod_config, prod_plan) -> dict[str, tuple[StackConfig, Plan]]:
    baseline = load_stack("staging", ROOT, "baseline")
    rolled_back = build_plan(baseline, "staging", now=NOW)
    assert rolled_back.schedule is not None and rolled_back.schedule.actions == ()
    removed = staging_config.model_copy(
        update={"capacity": staging_config.capacity.model_copy(update={"schedule": ()})}
    )
    assert build_plan(removed, "staging", now=NOW).schedule is None and prod_plan.schedule is None
    return {
        "scheduled": (staging_config, staging_plan),
        "rolled-back": (baseline, rolled_back),
        "schedule-removed": (removed, build_plan(removed, "staging", now=NOW)),
        "never-scheduled": (prod_config, prod_plan),
    }


@pytest.mark.parametrize("case", CASES)
def test_the_backends_registration_options_and_annotations_in_each_case(mocks, case_stacks, case):
    config, plan = case_stacks[case]
    resources = registered(mocks, config, plan)
    controllers = {r.name: r for r in resources if r.typ in CONTROLLERS}
    backend = controllers["backend"]
    ignore_changes, patch_force = CASES[case]
    assert backend.ignore_changes == ignore_changes
    assert (backend.inputs["metadata"].get("annotations") or {}).get(PATCH_FORCE) == patch_force
    # Created with the plan's replicas in every case; what a later update sends is the provider's (replayed below).
    assert backend.inputs["spec"]["replicas"] == plan.workloads["backend"].replicas
    # The pods that hold experiments ask the cluster autoscaler not to evict them, scaled or not.
    assert backend.inputs["spec"]["template"]["metadata"]["annotations"] == {SAFE_TO_EVICT: "false"}
    for name, controller in controllers.items():
        if name != "backend":
            assert controller.ignore_changes == (), name
            assert PATCH_FORCE not in (controller.inputs["metadata"].get("annotations") or {}), name
            assert "annotations" not in controller.inputs["spec"]["template"]["metadata"], name
    assert [r.name for r in resources if r.ignore_changes and r is not backend] == []
    assert bool([r for r in resources if r.typ == CRONJOB]) == (case == "scheduled")


# --- bad input ----------------------------------------------------------------------------------------------------


def test_a_cronjob_name_kubernetes_would_refuse_is_refused_by_the_args_too(staging_config, staging_plan):
    # The stack config refuses such a window first, naming it (tests/sizing/test_app_facts.py); the Args keep a guard.
    long = staging_plan.schedule.model_copy(update={"workload": "b" * 40})
    args = HyperStudyAppArgs(config=staging_config, plan=staging_plan.model_copy(update={"schedule": long}))
    with pytest.raises(ValidationError, match="is no DNS label of at most 52 characters"):
        args.schedule_args()


def test_schedule_args_refuse_no_actions_and_unknown_fields(staging_plan):
    schedule = staging_plan.schedule
    good = {"workload": "backend", "actions": schedule.actions, "namespace": "ns", "instance": "hyperstudy-x"}
    assert BackendScheduleArgs(**good).account == "backend-scaler"
    with pytest.raises(ValidationError):
        BackendScheduleArgs(**{**good, "actions": ()})
    with pytest.raises(ValidationError):
        BackendScheduleArgs(**good, replicas=3)
    with pytest.raises(ValidationError):
        BackendScheduleArgs(**{**good, "actions": (schedule.actions[0], schedule.actions[0])})
    with pytest.raises(ValidationError):
        BackendScheduleArgs(**{**good, "node_pool": "Not_A_Pool"})


@pytest.mark.parametrize(
    "replicas_on",
    [{"2026-12-8": 3}, {"20261208": 3}, {"2026-02-30": 3}, {"2026-12-08 ": 3}, {"2026-12-08": -1}],
    ids=["short-day", "basic-format", "no-such-day", "space", "negative"],
)
def test_schedule_args_refuse_exceptions_the_script_would_never_match_or_fail_on(staging_plan, replicas_on):
    """The script matches `date -u +%F` and reads digits: any other key would never apply, a negative count fail."""
    actions = staging_plan.schedule.actions
    good = {"workload": "backend", "namespace": "ns", "instance": "hyperstudy-x"}
    fine = actions[0].model_copy(update={"replicas_on": {"2026-12-08": 3, "2027-01-05": 0}})
    assert BackendScheduleArgs(**good, actions=(fine, *actions[1:])).env(fine)["REPLICAS_ON"] == (
        "2026-12-08=3 2027-01-05=0"
    )
    bad = actions[0].model_copy(update={"replicas_on": replicas_on})
    with pytest.raises(ValidationError, match=actions[0].name):
        BackendScheduleArgs(**good, actions=(bad, *actions[1:]))


def test_every_args_field_is_described():
    for name, field in BackendScheduleArgs.model_fields.items():
        assert field.description, name
    assert BackendScheduleArgs.model_config["frozen"] and BackendScheduleArgs.model_config["extra"] == "forbid"


# --- the script, run against a fake API server ---------------------------------------------------------------------


# A managedFields entry: (manager, operation, subresource).
Entry = tuple[str, str, str]
FieldPath = tuple[str, ...]
_STATEFULSET_PATH = re.compile(r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/statefulsets/(?P<name>[^/]+)(?P<scale>/scale)?")
_ABSENT = object()


def _flatten(node: Any, path: FieldPath = ()) -> dict[FieldPath, Any]:
    """An object's fields by path. A list is one field: the API server merges some lists by key (containers by
    name), so this is coarser, which can add a conflict but never hide one."""
    if isinstance(node, dict) and node:
        out: dict[FieldPath, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, (*path, key)))
        return out
    return {path: node}


def _unflatten(fields: dict[FieldPath, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in sorted(fields.items()):
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = copy.deepcopy(value)
    return out


def _fields_v1(paths: set[FieldPath]) -> dict[str, Any]:
    """managedFields' fieldsV1 notation: {"f:spec": {"f:replicas": {}}}."""
    out: dict[str, Any] = {}
    for path in sorted(paths):
        node = out
        for key in path:
            node = node.setdefault(f"f:{key}", {})
    return out


class _FakeApiServer:
    """An HTTP server on 127.0.0.1 that records every request and answers like the API server would, keeping field
    ownership for the StatefulSets applied to it as the API server's field manager does
    (https://kubernetes.io/docs/reference/using-api/server-side-apply/):

    - a merge patch (an Update) makes its manager the only owner of every field whose value it changes; a request
      that names no `fieldManager` is recorded under its User-Agent up to the first `/` (curl/8.x: `curl`), and one
      on `/scale` with subresource `scale`, the Scale's spec.replicas being the StatefulSet's;
    - a server-side apply (`application/apply-patch+yaml`, `fieldManager` required) that would change a field
      another manager owns is refused with 409 Conflict naming each manager and field, unless `force=true`, which
      takes the field over; otherwise it shares the fields whose value it leaves alone, and a field it stops
      applying goes once nobody owns it; `dryRun=All` answers without storing.

    A merge patch of a scale no StatefulSet here has is answered as accepted, stored nowhere (the script's own
    tests need no object)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.objects: dict[tuple[str, str], dict[FieldPath, Any]] = {}
        self.owners: dict[tuple[str, str], dict[Entry, set[FieldPath]]] = {}
        server = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> bytes:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                return body

            def _answer(self, code: int, document: dict[str, Any]) -> None:
                answer = json.dumps(document).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:
                self._record()
                match = _STATEFULSET_PATH.fullmatch(urlsplit(self.path).path)
                if match is None or match["scale"]:
                    return self._deny()
                with lock:
                    found = server.statefulset(match["ns"], match["name"])
                if found is None:
                    return self._answer(404, _status(404, "NotFound", f'statefulsets.apps "{match["name"]}" not found'))
                self._answer(200, found)

            def do_PATCH(self) -> None:
                body = self._record()
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                match = _STATEFULSET_PATH.fullmatch(url.path)
                kind = self.headers.get("Content-Type", "")
                manager = query.get("fieldManager") or self.headers.get("User-Agent", "").split("/", 1)[0]
                key = (match["ns"], match["name"]) if match else None
                if kind == "application/merge-patch+json" and match and match["scale"]:
                    patch = json.loads(body)
                    with lock:
                        known = key in server.objects
                        if known:
                            server.update(
                                key, (manager, "Update", "scale"), {("spec", "replicas"): patch["spec"]["replicas"]}
                            )
                    return self._answer(200, {"kind": "Scale", "apiVersion": "autoscaling/v1", "spec": patch["spec"]})
                if (
                    kind == "application/apply-patch+yaml"
                    and match
                    and not match["scale"]
                    and query.get("fieldManager")
                ):
                    with lock:
                        code, answer = server.apply(
                            key,
                            yaml.safe_load(body),
                            manager,
                            query.get("force") == "true",
                            query.get("dryRun") == "All",
                        )
                    return self._answer(code, answer)
                self._deny()

            def _deny(self) -> None:
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _refuse(self) -> None:
                self._record()
                self._deny()

            do_POST = do_PUT = do_DELETE = _refuse

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def statefulset(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object with its managedFields, as a GET returns it; None when there is none."""
        key = (namespace, name)
        if key not in self.objects:
            return None
        found = _unflatten(self.objects[key])
        found["metadata"]["managedFields"] = [
            {
                "manager": manager,
                "operation": operation,
                "apiVersion": "apps/v1",
                **({"subresource": subresource} if subresource else {}),
                "fieldsType": "FieldsV1",
                "fieldsV1": _fields_v1(paths),
            }
            for (manager, operation, subresource), paths in sorted(self.owners[key].items())
            if paths
        ]
        return found

    def owners_of(self, namespace: str, name: str, path: FieldPath) -> list[Entry]:
        return sorted(entry for entry, paths in self.owners[(namespace, name)].items() if path in paths)

    def update(self, key: tuple[str, str], entry: Entry, changes: dict[FieldPath, Any]) -> None:
        fields, owners = self.objects[key], self.owners[key]
        for path, value in changes.items():
            if fields.get(path, _ABSENT) == value:
                continue
            fields[path] = value
            for paths in owners.values():
                paths.discard(path)
            owners.setdefault(entry, set()).add(path)

    def apply(
        self, key: tuple[str, str], config: dict[str, Any], manager: str, force: bool, dry_run: bool
    ) -> tuple[int, dict[str, Any]]:
        entry: Entry = (manager, "Apply", "")
        wanted = _flatten(config)
        if key not in self.objects:
            if not dry_run:
                self.objects[key], self.owners[key] = dict(wanted), {entry: set(wanted)}
            return 201, _unflatten(wanted)
        fields = dict(self.objects[key])
        owners = {e: set(paths) for e, paths in self.owners[key].items()}
        conflicts: dict[Entry, list[FieldPath]] = {}
        for path, value in wanted.items():
            if fields.get(path, _ABSENT) != value:
                for other, paths in owners.items():
                    if other != entry and path in paths:
                        conflicts.setdefault(other, []).append(path)
        if conflicts and not force:
            return 409, _conflict(conflicts)
        for path, value in wanted.items():
            if fields.get(path, _ABSENT) != value:
                fields[path] = value
                for paths in owners.values():
                    paths.discard(path)
        for path in owners.get(entry, set()) - set(wanted):
            if not any(path in paths for other, paths in owners.items() if other != entry):
                fields.pop(path, None)
        owners[entry] = set(wanted)
        if not dry_run:
            self.objects[key], self.owners[key] = fields, owners
        return 200, _unflatten(fields)

    def __enter__(self) -> _FakeApiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _status(code: int, reason: str, message: str, **details: Any) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
        **({"details": details} if details else {}),
    }


def _conflict(conflicts: dict[Entry, list[FieldPath]]) -> dict[str, Any]:
    """The API server's 409: `Apply failed with 1 conflict: conflict with "curl" with subresource "scale" using
    apps/v1: .spec.replicas` (the wording pulumi-kubernetes#3312 quotes), one line per manager and field."""
    lines, causes = [], []
    for (manager, _, subresource), paths in sorted(conflicts.items()):
        who = f'"{manager}"' + (f' with subresource "{subresource}"' if subresource else "") + " using apps/v1"
        for path in paths:
            field = "." + ".".join(path)
            lines.append(f"conflict with {who}: {field}")
            causes.append({"type": "FieldManagerConflict", "message": f"conflict with {who}", "field": field})
    count = len(lines)
    message = f"Apply failed with {count} conflict{'s' if count != 1 else ''}: " + "\n".join(lines)
    return _status(409, "Conflict", message, causes=causes)


@pytest.fixture
def api_server() -> Iterator[_FakeApiServer]:
    with _FakeApiServer() as server:
        yield server


@pytest.fixture(scope="module")
def staging_cronjobs(recording_mocks, staging_config, staging_plan) -> dict[str, Registered]:
    """The CronJobs staging registers, by action name: their commands and env are what the tests run."""
    resources = registered(recording_mocks, staging_config, staging_plan)
    return {r.name.removeprefix("backend-"): r for r in resources if r.typ == CRONJOB}


TOKEN = "eyJhbGciOiJSUzI1NiJ9.test-token.signature"


def run_job(
    cronjob: Registered, server: _FakeApiServer, tmp_path: Path, **override: str
) -> subprocess.CompletedProcess:
    """The CronJob's container command with its env, run by the local `sh`; only the API server's URL and the
    service account files point at the test's (no proxy, nothing else from the environment)."""
    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text(TOKEN)
    ca.write_text("")
    variables = {
        "PATH": os.environ["PATH"],
        **env(cronjob),
        "API_SERVER": server.url,
        "TOKEN_FILE": str(token),
        "CA_CERT": str(ca),
        **override,
    }
    return subprocess.run(container(cronjob)["command"], env=variables, capture_output=True, text=True, timeout=120)


def utc_day(days: int = 0) -> str:
    """Today's UTC date, `days` on: what the script reads from `date -u +%F`."""
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def run_today(
    run: Callable[[str], subprocess.CompletedProcess], server: _FakeApiServer
) -> tuple[str, subprocess.CompletedProcess]:
    """`run(today)`, run again from scratch should the UTC date change while it ran (the script reads the date
    itself): the date the run saw, and its result."""
    for _ in range(2):
        server.requests.clear()
        today = utc_day()
        done = run(today)
        if utc_day() == today:
            return today, done
    raise AssertionError("the UTC date changed during both runs")


def test_the_script_sends_exactly_one_merge_patch_of_the_scale(staging_cronjobs, staging_plan, api_server, tmp_path):
    cronjob = staging_cronjobs["teaching-lab-up"]
    (action,) = [a for a in staging_plan.schedule.actions if a.name == "teaching-lab-up"]
    today, done = run_today(lambda _: run_job(cronjob, api_server, tmp_path), api_server)
    assert done.returncode == 0, done.stderr
    # The usual count, or today's exception should the model have one: what the model says a run today sets.
    replicas = str(action.replicas_at(datetime.fromisoformat(today).replace(hour=12, tzinfo=UTC)))
    (request,) = api_server.requests
    assert request["method"] == "PATCH"
    assert request["path"] == "/apis/apps/v1/namespaces/hyperstudy-staging/statefulsets/backend/scale"
    assert request["headers"]["Content-Type"] == "application/merge-patch+json"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["body"] == b'{"spec":{"replicas":%s}}' % replicas.encode()
    assert json.loads(request["body"]) == {"spec": {"replicas": int(replicas)}}
    assert TOKEN not in done.stdout + done.stderr


def test_a_one_off_action_does_nothing_in_another_year(staging_cronjobs, api_server, tmp_path):
    cronjob = staging_cronjobs["open-day-up"]
    assert "ONLY_YEAR" in env(cronjob)
    other = str(datetime.now(UTC).year + 1)
    done = run_job(cronjob, api_server, tmp_path, ONLY_YEAR=other)
    assert done.returncode == 0, done.stderr
    assert api_server.requests == []
    assert other in done.stdout


def test_a_one_off_action_scales_in_its_year(staging_cronjobs, api_server, tmp_path):
    cronjob = staging_cronjobs["open-day-up"]
    # The script reads the year from `date -u`: pretend this is the window's year.
    done = run_job(cronjob, api_server, tmp_path, ONLY_YEAR=str(datetime.now(UTC).year))
    assert done.returncode == 0, done.stderr
    (request,) = api_server.requests
    assert request["method"] == "PATCH"
    assert json.loads(request["body"]) == {"spec": {"replicas": int(env(cronjob)["REPLICAS"])}}


def test_a_replica_count_that_is_no_number_fails_without_a_request(staging_cronjobs, api_server, tmp_path):
    done = run_job(staging_cronjobs["teaching-lab-down"], api_server, tmp_path, REPLICAS='3}, "x": {')
    assert done.returncode == 2
    assert api_server.requests == []


def test_a_run_on_an_exceptions_date_sets_its_count(mocks, staging_config, staging_plan, api_server, tmp_path):
    """The rendered pod of an action with exceptions on yesterday, today and tomorrow (UTC) sets today's count: the
    one `ScaleAction.replicas_at` gives for a run today."""
    actions: list[ScaleAction] = []

    def run(today: str) -> subprocess.CompletedProcess:
        exceptions = {utc_day(-1): 11, today: 13, utc_day(1): 12, "2020-01-01": 10}
        plan = with_exceptions(staging_plan, "teaching-lab-up", exceptions)
        actions.extend(a for a in plan.schedule.actions if a.name == "teaching-lab-up")
        (cronjob,) = [r for r in registered(mocks, staging_config, plan) if r.name == "backend-teaching-lab-up"]
        assert env(cronjob)["REPLICAS_ON"].split() == [f"{d}={n}" for d, n in sorted(exceptions.items())]
        return run_job(cronjob, api_server, tmp_path)

    today, done = run_today(run, api_server)
    assert done.returncode == 0, done.stderr
    (request,) = api_server.requests
    assert request["method"] == "PATCH"
    assert request["path"] == "/apis/apps/v1/namespaces/hyperstudy-staging/statefulsets/backend/scale"
    assert request["body"] == b'{"spec":{"replicas":13}}'
    action = actions[-1]
    assert action.replicas_at(datetime.fromisoformat(today).replace(hour=12, tzinfo=UTC)) == 13 != action.replicas
    assert f"{today} is an exception: 13 replicas instead of {action.replicas}" in done.stdout


def test_exceptions_on_other_dates_leave_the_usual_count(staging_cronjobs, api_server, tmp_path):
    cronjob = staging_cronjobs["teaching-lab-up"]
    replicas = env(cronjob)["REPLICAS"]

    def run(today: str) -> subprocess.CompletedProcess:
        others = f"{utc_day(-1)}=11 {utc_day(1)}=12 {utc_day(7)}=0"
        return run_job(cronjob, api_server, tmp_path, REPLICAS_ON=others)

    _, done = run_today(run, api_server)
    assert done.returncode == 0, done.stderr
    (request,) = api_server.requests
    assert json.loads(request["body"]) == {"spec": {"replicas": int(replicas)}}
    assert "exception" not in done.stdout


@pytest.mark.parametrize("count", ["", "x", "-1", "1.5", '3}, "x": {'], ids=["empty", "word", "minus", "dot", "json"])
def test_an_exception_for_today_that_is_no_number_fails_without_a_request(
    staging_cronjobs, api_server, tmp_path, count
):
    cronjob = staging_cronjobs["teaching-lab-up"]

    def run(today: str) -> subprocess.CompletedProcess:
        return run_job(cronjob, api_server, tmp_path, REPLICAS_ON=f"{utc_day(-1)}=11 {today}={count}")

    _, done = run_today(run, api_server)
    assert done.returncode == 2, done.stdout
    assert "REPLICAS_ON" in done.stderr
    assert api_server.requests == []


def test_the_script_defaults_to_the_in_cluster_api_server_and_service_account_files():
    assert "API_SERVER:-https://kubernetes.default.svc}" in SCALE_SCRIPT
    assert "TOKEN_FILE:-/var/run/secrets/kubernetes.io/serviceaccount/token}" in SCALE_SCRIPT
    assert "CA_CERT:-/var/run/secrets/kubernetes.io/serviceaccount/ca.crt}" in SCALE_SCRIPT
    assert "curl -fsS --retry 5 --retry-all-errors --max-time 30" in SCALE_SCRIPT


# --- a rollback in a window, replayed against the fake API server ---------------------------------------------------

# pulumi-kubernetes applies under its own field manager, `pulumi-kubernetes-<random suffix>` (pulumi-kubernetes#2271).
PULUMI = "pulumi-kubernetes-5e1f9a2c"
REPLICAS: FieldPath = ("spec", "replicas")
# What the field-manager conflict of a rollback mid-window says (and what pulumi-kubernetes#3312 quotes for another
# scaler that writes through `/scale`).
CURL_CONFLICT = (
    'Apply failed with 1 conflict: conflict with "curl" with subresource "scale" using apps/v1: .spec.replicas'
)


def provider_update(server: _FakeApiServer, resource: Registered, preview: bool = False) -> tuple[int, dict]:
    """What pulumi-kubernetes sends for a registered StatefulSet, modelled on its server-side apply path
    (provider/pkg/await/await.go at 94977969, v4.32: `ssaUpdate`, `handleSSAIgnoreFields`, `patchForce`): it reads
    the live object; each ignore_changes path that another manager owns and it does not is dropped from the inputs,
    any other is sent at its live value; the inputs are applied under its field manager, with `force` exactly when
    the object carries pulumi.com/patchForce "true" (the provider option `enablePatchForce` is not set here), and a
    preview is the same apply with dryRun=All. The first apply creates."""
    inputs = {key: copy.deepcopy(resource.inputs[key]) for key in ("apiVersion", "kind", "metadata", "spec")}
    meta = inputs["metadata"]
    url = f"{server.url}/apis/apps/v1/namespaces/{meta['namespace']}/statefulsets/{meta['name']}"
    code, live = _send(urllib.request.Request(url))
    assert code in (200, 404), live
    if code == 200:
        owned_by: dict[str, set[FieldPath]] = {}
        for entry in live["metadata"]["managedFields"]:
            owned_by.setdefault(entry["manager"], set()).update(_paths_v1(entry["fieldsV1"]))
        for ignored in resource.ignore_changes:
            path = tuple(ignored.split("."))
            theirs = any(path in paths for manager, paths in owned_by.items() if manager != PULUMI)
            parent = _at(inputs, path[:-1])
            if theirs and path not in owned_by.get(PULUMI, set()):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = _at(live, path)
    force = (meta.get("annotations") or {}).get(PATCH_FORCE) == "true"
    query = f"?fieldManager={PULUMI}&force={'true' if force else 'false'}" + ("&dryRun=All" if preview else "")
    body = yaml.safe_dump(inputs).encode()
    headers = {"Content-Type": "application/apply-patch+yaml"}
    return _send(urllib.request.Request(url + query, data=body, method="PATCH", headers=headers))


# Straight to the local server, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _send(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    try:
        with _DIRECT.open(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _paths_v1(fields: dict[str, Any], path: FieldPath = ()) -> set[FieldPath]:
    paths: set[FieldPath] = set()
    for key, value in fields.items():
        child = (*path, key.removeprefix("f:"))
        paths |= _paths_v1(value, child) if value else {child}
    return paths


def _at(obj: dict[str, Any], path: FieldPath) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def without_patch_force(resource: Registered) -> Registered:
    """The registration as the program made it before it forced (tag pre-15): the same, without the annotation."""
    inputs = copy.deepcopy(resource.inputs)
    (inputs["metadata"].get("annotations") or {}).pop(PATCH_FORCE, None)
    return dataclasses.replace(resource, inputs=inputs)


@pytest.fixture(scope="module")
def backends(recording_mocks, case_stacks) -> dict[str, Registered]:
    """The backend StatefulSet each case registers."""
    found = {}
    for case in CASES:
        resources = registered(recording_mocks, *case_stacks[case])
        (found[case],) = [r for r in resources if r.typ == STATEFULSET and r.name == "backend"]
    return found


def scaled_for_a_window(server: _FakeApiServer, backends: dict[str, Registered], cronjobs, tmp_path: Path) -> int:
    """Staging's backend as Pulumi creates it, then scaled by the real up job's script: the live state mid-window.
    Returns the window's replicas."""
    code, _ = provider_update(server, backends["scheduled"])
    assert code == 201
    up = cronjobs["teaching-lab-up"]
    done = run_job(up, server, tmp_path, REPLICAS_ON="")
    assert done.returncode == 0, done.stderr
    return int(env(up)["REPLICAS"])


def live_backend(server: _FakeApiServer) -> dict[str, Any]:
    found = server.statefulset("hyperstudy-staging", "backend")
    assert found is not None
    return found


def test_the_scalers_merge_patch_makes_curl_own_spec_replicas(api_server, backends, staging_cronjobs, tmp_path):
    base = backends["scheduled"].inputs["spec"]["replicas"]
    code, _ = provider_update(api_server, backends["scheduled"])
    assert code == 201
    assert api_server.owners_of("hyperstudy-staging", "backend", REPLICAS) == [(PULUMI, "Apply", "")]
    up = staging_cronjobs["teaching-lab-up"]
    done = run_job(up, api_server, tmp_path, REPLICAS_ON="")
    assert done.returncode == 0, done.stderr
    window = int(env(up)["REPLICAS"])
    assert window > base
    assert live_backend(api_server)["spec"]["replicas"] == window
    # The field manager of a request that names none is its User-Agent's product: curl's own.
    assert api_server.owners_of("hyperstudy-staging", "backend", REPLICAS) == [("curl", "Update", "scale")]
    (entry,) = [e for e in live_backend(api_server)["metadata"]["managedFields"] if e["manager"] == "curl"]
    assert entry["subresource"] == "scale" and entry["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


def test_a_pulumi_up_inside_the_window_leaves_the_scalers_replicas(api_server, backends, staging_cronjobs, tmp_path):
    """With the scaler, ignore_changes makes the provider drop spec.replicas, which `curl` owns: no conflict."""
    window = scaled_for_a_window(api_server, backends, staging_cronjobs, tmp_path)
    for preview in (True, False):
        code, answer = provider_update(api_server, backends["scheduled"], preview=preview)
        assert code == 200, answer
    assert live_backend(api_server)["spec"]["replicas"] == window
    assert api_server.owners_of("hyperstudy-staging", "backend", REPLICAS) == [("curl", "Update", "scale")]


@pytest.mark.parametrize("case", ["rolled-back", "schedule-removed"])
def test_without_patch_force_removing_the_scaler_mid_window_fails_on_curls_replicas(
    api_server, backends, staging_cronjobs, tmp_path, case
):
    """The failure this change avoids: `pulumi preview` and `pulumi up` both refused with the conflict naming
    `curl`, and nothing of the update applied (a rollback's sizes included)."""
    window = scaled_for_a_window(api_server, backends, staging_cronjobs, tmp_path)
    before = live_backend(api_server)
    for preview in (True, False):
        code, answer = provider_update(api_server, without_patch_force(backends[case]), preview=preview)
        assert (code, answer["reason"], answer["message"]) == (409, "Conflict", CURL_CONFLICT)
    assert live_backend(api_server) == before
    assert before["spec"]["replicas"] == window


@pytest.mark.parametrize("case", ["rolled-back", "schedule-removed"])
def test_removing_the_scaler_mid_window_applies_the_plans_replicas_with_patch_force(
    api_server, backends, staging_cronjobs, tmp_path, case
):
    window = scaled_for_a_window(api_server, backends, staging_cronjobs, tmp_path)
    rendered = backends[case]
    code, answer = provider_update(api_server, rendered, preview=True)
    assert code == 200, answer
    assert answer["spec"]["replicas"] == rendered.inputs["spec"]["replicas"] < window
    assert live_backend(api_server)["spec"]["replicas"] == window  # a preview changes nothing
    code, answer = provider_update(api_server, rendered)
    assert code == 200, answer
    live = live_backend(api_server)
    # Down to the plan's replicas (the StatefulSet controller then deletes the highest ordinals), now Pulumi's field.
    assert live["spec"]["replicas"] == rendered.inputs["spec"]["replicas"]
    assert api_server.owners_of("hyperstudy-staging", "backend", REPLICAS) == [(PULUMI, "Apply", "")]
    # And the rest of the update applied: the rollback's sizes, or the unchanged template.
    assert live["spec"]["template"] == rendered.inputs["spec"]["template"]
    if case == "rolled-back":
        assert live["spec"]["template"] != backends["scheduled"].inputs["spec"]["template"]


def test_after_the_window_the_same_update_needs_no_force(api_server, backends, staging_cronjobs, tmp_path):
    """The conflict is the window's: once the down job has set the plan's replicas again, applying the same value
    shares the field instead of taking it, and the unforced rollback applies (the fake does not refuse at will)."""
    scaled_for_a_window(api_server, backends, staging_cronjobs, tmp_path)
    down = staging_cronjobs["teaching-lab-down"]
    done = run_job(down, api_server, tmp_path, REPLICAS_ON="")
    assert done.returncode == 0, done.stderr
    code, answer = provider_update(api_server, without_patch_force(backends["rolled-back"]))
    assert code == 200, answer
    assert live_backend(api_server)["spec"]["replicas"] == int(env(down)["REPLICAS"])
    assert api_server.owners_of("hyperstudy-staging", "backend", REPLICAS) == [
        ("curl", "Update", "scale"),
        (PULUMI, "Apply", ""),
    ]
