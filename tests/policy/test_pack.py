"""The pack's entry point and wiring: one place builds the PolicyPack, importing the rules builds none, the engine's
`PULUMI_STACK` picks the plan, and `PulumiPolicy.yaml` runs the pack in the project's virtualenv.

`policy/__main__.py` is only ever run in a subprocess with `PolicyPack` replaced by a recorder, under a timeout:
the real class starts a gRPC server and blocks, so a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pulumi_policy
import pytest
import yaml

from policy.policies import policies
from policy.stack_plan import PlanUnavailable, node_lower_bound, stack_from_environment

ROOT = Path(__file__).resolve().parents[2]
PACK = ROOT / "policy"
SKIPPED_DIRS = {"venv", "build", "node_modules", "__pycache__"}

# Runs the pack's entry point with PolicyPack recorded, then one NodePool through the node-pool policy.
_RUN_ENTRY_POINT = """
import json, runpy, sys
import pulumi_policy, pulumi_policy.policy
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs

built = []

class RecordingPack:
    def __init__(self, name, policies, enforcement_level=None, **kwargs):
        built.append((name, policies, enforcement_level))

pulumi_policy.PolicyPack = pulumi_policy.policy.PolicyPack = RecordingPack
runpy.run_path(".", run_name="__main__")
(name, policies, level), = built
pool = {"location": "us-central1", "autoscaling": {"totalMinNodeCount": 2.0, "totalMaxNodeCount": 3.0}}
options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
violations = []
for policy in policies:
    if policy.name == "node-pool-autoscaling-bounds":
        args = ResourceValidationArgs("gcp:container/nodePool:NodePool", pool, "urn", "hyperstudy", options, None)
        policy.validate(args, lambda message, urn=None: violations.append(message))
print(json.dumps({"name": name, "level": level.value, "policies": [p.name for p in policies], "pool": violations}))
"""


def _python_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).parts
        if not any(part in SKIPPED_DIRS or part.startswith(".") for part in parts[:-1]):
            files.append(path)
    return files


def _constructs_policy_pack(path: Path) -> int:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    calls = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            calls += name == "PolicyPack"
    return calls


def _run_entry_point(environment: dict[str, str]) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULUMI_")}
    env.update(environment)
    result = subprocess.run(
        [sys.executable, "-c", _RUN_ENTRY_POINT],
        cwd=PACK,  # where the engine starts the pack: `python -m pulumi.policy <engine> .` in the pack's folder
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_only_the_packs_entry_point_constructs_a_policy_pack():
    # A syntax-aware grep: a PolicyPack(...) call in code, not the word in a string or a comment.
    constructing = {str(path.relative_to(ROOT)): n for path in _python_files() if (n := _constructs_policy_pack(path))}
    assert constructing == {"policy/__main__.py": 1}


def test_importing_the_rules_constructs_no_pack(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a PolicyPack was constructed on import")

    monkeypatch.setattr(pulumi_policy.PolicyPack, "__init__", refuse)
    for module in [m for m in sys.modules if m == "policy" or m.startswith("policy.")]:
        monkeypatch.delitem(sys.modules, module)
    rules = importlib.import_module("policy.policies")
    for module in ("policy", "policy.kube", "policy.runtime_memory", "policy.stack_plan"):
        importlib.import_module(module)
    assert len(rules.policies(2)) == 12


def test_the_entry_point_builds_the_mandatory_pack_for_the_previewed_stack():
    built = _run_entry_point({"PULUMI_STACK": "prod", "PULUMI_PROJECT": "hyperstudy-infra"})
    assert built["name"] == "hyperstudy-safety"
    assert built["level"] == "mandatory"
    assert built["policies"] == [p.name for p in policies(2)]
    assert built["pool"] == []  # prod's plan: lower bound 2, and the pool's minimum is 2


def test_the_entry_point_reports_an_unknown_stack_through_the_node_pool_policy():
    built = _run_entry_point({"PULUMI_STACK": "nosuch"})
    assert built["pool"] == [
        "NodePool hyperstudy: autoscaling.totalMinNodeCount cannot be checked: the sizing plan of stack 'nosuch' "
        f"could not be built ({ROOT / 'Pulumi.nosuch.yaml'}: stack file not found; "
        "known stacks: example, prod, staging)"
    ]


def test_the_entry_point_outside_the_engine_says_how_to_run_it():
    built = _run_entry_point({})
    assert built["pool"] == [
        "NodePool hyperstudy: autoscaling.totalMinNodeCount cannot be checked: PULUMI_STACK is not set: run the "
        "pack through `pulumi preview --policy-pack policy`"
    ]


@pytest.mark.parametrize(
    ("environ", "stack"),
    [
        ({"PULUMI_STACK": "prod"}, "prod"),
        ({"PULUMI_STACK": "acme/hyperstudy-infra/prod"}, "prod"),
        ({"PULUMI_STACK": " "}, None),
        ({}, None),
    ],
)
def test_the_stack_comes_from_the_engines_environment(environ, stack):
    assert stack_from_environment(environ) == stack


def test_a_stack_that_does_not_plan_is_unavailable_with_its_config_error(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: hyperstudy-infra\nruntime: python\n")
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  hyperstudy-infra:workloads: {}\n")
    unavailable = node_lower_bound("bad", tmp_path)
    assert isinstance(unavailable, PlanUnavailable)
    assert unavailable.stack == "bad"
    assert unavailable.reason.startswith("hyperstudy-infra:")


def test_the_pack_runs_in_the_projects_virtualenv():
    pack = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert pack["runtime"]["name"] == "python"
    # Relative to the pack's folder (the analyzer's working directory): the project's own venv.
    assert (PACK / pack["runtime"]["options"]["virtualenv"]).resolve() == (
        ROOT / project["runtime"]["options"]["virtualenv"]
    ).resolve()
    assert pack["version"]
