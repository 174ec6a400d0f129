"""The scaling CronJobs in the offline render of every stack: exactly the plan's actions, RBAC that lets their
pods patch the backend's scale and do nothing else, and a backend forced exactly where no CronJob scales it
(kubernetes-validate, the quantity grammar and checkov check the same objects in test_render.py and test_checkov.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.workload import PATCH_FORCE, SAFE_TO_EVICT
from offline.render import Rendered
from sizing.config.loader import load_stack
from sizing.config.stack import formula_workloads
from sizing.plan.build import build_plan

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
CASES = [(stack, profile) for stack in STACKS for profile in ("optimized", "baseline")]
# The one grant of the scaler, written out.
SCALE_RULE = {
    "apiGroups": ["apps"],
    "resources": ["statefulsets/scale"],
    "verbs": ["patch"],
    "resourceNames": ["backend"],
}


@pytest.fixture(scope="module", params=CASES, ids=[f"{s}-{p}" for s, p in CASES])
def rendered(request, render) -> tuple[Rendered, list[dict[str, Any]]]:
    stack, profile = request.param
    result = render(stack, profile)
    return result, result.kubernetes_objects()


def _of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    return cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _grants(objects: list[dict[str, Any]], namespace: str, account: str) -> list[dict[str, Any]]:
    """Every rule any (Cluster)RoleBinding of the render grants the service account."""
    roles = {("Role", o["metadata"]["namespace"], o["metadata"]["name"]): o for o in _of_kind(objects, "Role")}
    roles |= {("ClusterRole", None, o["metadata"]["name"]): o for o in _of_kind(objects, "ClusterRole")}
    subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
    rules = []
    for binding in _of_kind(objects, "RoleBinding") + _of_kind(objects, "ClusterRoleBinding"):
        if subject not in binding.get("subjects", []):
            continue
        ref = binding["roleRef"]
        scope = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        role = roles.get((ref["kind"], scope, ref["name"]))
        assert role is not None, f"{binding['metadata']['name']} binds {ref['kind']} {ref['name']}, not in the render"
        rules += role.get("rules", [])
    return rules


def test_the_cronjobs_are_the_plans_scaling_actions(rendered):
    result, objects = rendered
    config = load_stack(result.stack, ROOT, result.outputs["profile"])
    schedule = build_plan(config, result.stack).schedule
    actions = schedule.actions if schedule is not None else ()
    cronjobs = {o["metadata"]["name"]: o for o in _of_kind(objects, "CronJob")}
    assert sorted(cronjobs) == sorted(f"{schedule.workload}-{a.name}" for a in actions)
    for action in actions:
        cronjob = cronjobs[f"{schedule.workload}-{action.name}"]
        assert (cronjob["spec"]["schedule"], cronjob["spec"]["timeZone"]) == (action.schedule, action.time_zone)
        (container,) = _pod_spec(cronjob)["containers"]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["REPLICAS"] == str(action.replicas)
        assert env.get("ONLY_YEAR") == (None if action.year is None else str(action.year))
        # Per-date exceptions only where the action has any: `YYYY-MM-DD=N` pairs, by date.
        exceptions = " ".join(f"{day}={n}" for day, n in sorted(action.replicas_on.items())) or None
        assert env.get("REPLICAS_ON") == exceptions
        assert set(container["resources"]["requests"]) == {"memory", "cpu"}
        assert set(container["resources"]["limits"]) == {"memory"}
    if (result.stack, result.outputs["profile"]) == ("staging", "optimized"):
        # Until the open day has passed. The baseline profile's larger pods hold both windows at the configured
        # replicas: no action, no CronJob.
        assert len(cronjobs) == 4 or schedule.computed_at.year > 2027, "staging books a weekly lab and an open day"


def test_the_scalers_role_grants_exactly_patch_on_the_backends_scale(rendered):
    result, objects = rendered
    cronjobs = _of_kind(objects, "CronJob")
    if (result.stack, result.outputs["profile"]) == ("staging", "optimized"):
        assert cronjobs, "staging's schedule renders its CronJobs"
    for cronjob in cronjobs:
        namespace = cronjob["metadata"]["namespace"]
        account = _pod_spec(cronjob)["serviceAccountName"]
        assert account != "default"
        assert _grants(objects, namespace, account) == [SCALE_RULE], cronjob["metadata"]["name"]
        # The check sees a wider grant: the same Role also letting the scaler read the StatefulSet.
        read = {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get"]}
        widened = [{**o, "rules": [*o["rules"], read]} if o["kind"] == "Role" else o for o in objects]
        assert _grants(widened, namespace, account) == [SCALE_RULE, read]


def test_nothing_else_may_scale_or_patch_a_statefulset(rendered):
    """The scaler's grant is the only one on StatefulSets, and a render without CronJobs has none."""
    _, objects = rendered
    touching = [
        (o["kind"], o["metadata"]["name"], rule)
        for o in _of_kind(objects, "Role") + _of_kind(objects, "ClusterRole")
        for rule in o.get("rules", [])
        if any(r.startswith("statefulsets") or r == "*" for r in rule.get("resources", []))
    ]
    expected = [("Role", "backend-scaler", SCALE_RULE)] if _of_kind(objects, "CronJob") else []
    assert touching == expected


def test_a_scaled_statefulset_is_forced_exactly_when_no_cronjob_scales_it(rendered):
    """Each backend StatefulSet either has CronJobs that scale it (and Pulumi ignores its replicas) or carries
    pulumi.com/patchForce (and Pulumi takes its replicas back from a scaler that may have owned them): never both,
    never neither. Its pods, and no others, ask the cluster autoscaler not to evict them."""
    result, objects = rendered
    serving = set(formula_workloads(load_stack(result.stack, ROOT, result.outputs["profile"])))
    assert serving, "every stack sizes its backend by the formula"
    scaled = {
        variable["value"]
        for cronjob in _of_kind(objects, "CronJob")
        for variable in _pod_spec(cronjob)["containers"][0]["env"]
        if variable["name"] == "STATEFULSET"
    }
    assert scaled <= serving
    for controller in _of_kind(objects, "StatefulSet") + _of_kind(objects, "Deployment"):
        name = controller["metadata"]["name"]
        forced = (controller["metadata"].get("annotations") or {}).get(PATCH_FORCE) == "true"
        pod_annotations = controller["spec"]["template"]["metadata"].get("annotations")
        if name in serving:
            assert forced != (name in scaled), name
            assert pod_annotations == {SAFE_TO_EVICT: "false"}, name
        else:
            assert not forced and pod_annotations is None, name
