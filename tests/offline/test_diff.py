"""The change-safety proof: a profile switch (the rollback) changes only what is safe to change, and the diff
flags every change that would replace a resource.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from components.schedule import SCALER_COMPONENT
from components.workload import COMPONENT
from offline.diff import diff, diff_json, main, render_diff, render_target, resolve_sides
from offline.render import Rendered
from sizing.config.loader import identify_stack_file
from sizing.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
RUNTIME_ENV = {"NODE_OPTIONS", "GOMEMLIMIT"}
CONTAINER = r"spec\.template\.spec\.containers\[\d+\]"
# What a rollback may change: sizes, runtime memory settings, and what is derived from them for people
# (VPA bounds, dashboards, alert expressions and texts). Each is an in-place update.
SAFE = {
    "Deployment": (
        rf"{CONTAINER}\.resources\.(requests|limits)\.memory",
        rf"{CONTAINER}\.(env\[\d+\]\.value|args\[\d+\])",
    ),
    "StatefulSet": (
        rf"{CONTAINER}\.resources\.(requests|limits)\.memory",
        rf"{CONTAINER}\.(env\[\d+\]\.value|args\[\d+\])",
    ),
    "VerticalPodAutoscaler": (r"spec\.resourcePolicy\.containerPolicies\[\d+\]\.(min|max)Allowed\.memory",),
    "ConfigMap": (r"data\..*",),
    "PrometheusRule": (r"spec\.groups\[\d+\]\.rules\[\d+\]\.(expr|annotations\..*)",),
    "ClusterRules": (r"spec\.groups\[\d+\]\.rules\[\d+\]\.(expr|annotations\..*)",),
    "*": (r"metadata\.annotations\..*",),
}


@pytest.fixture(scope="module", params=STACKS)
def both_profiles(request, render) -> tuple[Rendered, Rendered]:
    stack = request.param
    return render(stack, "optimized"), render(stack, "baseline")


def _object(rendered: Rendered, kind: str, name: str) -> dict:
    for obj in rendered.kubernetes_objects():
        meta = obj["metadata"]
        if obj["kind"] == kind and f"{meta.get('namespace')}/{meta['name']}".removeprefix("None/") == name:
            return obj
    raise AssertionError(f"{kind} {name} not rendered")


def _scaler(rendered: Rendered) -> set[tuple[str, str]]:
    """The scheduled scaling's objects in a render (components/schedule.py): its CronJobs and their RBAC."""
    return {
        (o["kind"], f"{o['metadata']['namespace']}/{o['metadata']['name']}")
        for o in rendered.kubernetes_objects()
        if (o["metadata"].get("labels") or {}).get(COMPONENT) == SCALER_COMPONENT
    }


def test_a_profile_switch_changes_only_sizes_and_what_is_derived_from_them(both_profiles):
    optimized, baseline = both_profiles
    diffs = diff(optimized, baseline)
    assert diffs, "the profiles differ in sizes, so the diff cannot be empty"
    # A rollback adds or removes nothing, with one exception: the baseline's larger pods may hold every scheduled
    # window at the configured replicas, and then its plan has no scaling action, so the CronJobs and their RBAC go
    # (tests/artifacts/test_scaling_jobs.py proves the CronJobs are the plan's actions in either profile).
    assert {d.status for d in diffs} <= {"changed", "removed"}, "a rollback adds nothing"
    removed = {(d.kind, d.name) for d in diffs if d.status == "removed"}
    assert removed == (_scaler(optimized) if not _scaler(baseline) else set())
    diffs = [d for d in diffs if d.status == "changed"]
    assert not any(d.replaces for d in diffs), render_diff(diffs)
    assert not any(d.kind.startswith("gcp:") for d in diffs), "a rollback leaves GCP untouched"
    for d in diffs:
        allowed = SAFE.get(d.kind, ()) + SAFE["*"]
        for change in d.changes:
            assert not change.forcing
            assert any(re.fullmatch(p, change.path) for p in allowed), f"{d.kind} {d.name}: {change.path}"
            env = re.fullmatch(rf"({CONTAINER})\.env\[(\d+)\]\.value", change.path)
            if env:
                container = _object(optimized, d.kind, d.name)["spec"]["template"]["spec"]["containers"]
                index = int(re.search(r"containers\[(\d+)\]", change.path).group(1))
                assert container[index]["env"][int(env.group(2))]["name"] in RUNTIME_ENV, change.path


def test_a_profile_switch_keeps_every_workload_serving_while_it_rolls(both_profiles):
    """Simulate each multi-replica rollout: pods go one at a time only once the replacement is ready."""
    optimized, _ = both_profiles
    for obj in optimized.kubernetes_objects():
        if obj["kind"] not in ("Deployment", "StatefulSet") or obj["spec"]["replicas"] < 2:
            continue
        spec = obj["spec"]
        replicas = spec["replicas"]
        containers = spec["template"]["spec"]["containers"]
        assert all("readinessProbe" in c for c in containers), obj["metadata"]["name"]
        if obj["kind"] == "Deployment":
            rolling = spec["strategy"]["rollingUpdate"]
            assert rolling["maxUnavailable"] == 0
            assert _deployment_rollout_min_ready(replicas, rolling["maxUnavailable"], rolling["maxSurge"]) == replicas
        else:
            strategy = spec["updateStrategy"]
            assert strategy["type"] == "RollingUpdate"
            rolling = strategy.get("rollingUpdate") or {}
            lowest = _statefulset_rollout_min_ready(
                replicas, rolling.get("maxUnavailable", 1), rolling.get("partition", 0)
            )
            # A StatefulSet cannot surge: the equivalent is one pod at a time behind readiness and minReadySeconds.
            assert lowest == replicas - 1 >= 1 and spec.get("minReadySeconds", 0) > 0, obj["metadata"]["name"]
        pdbs = [
            o
            for o in optimized.kubernetes_objects()
            if o["kind"] == "PodDisruptionBudget"
            and o["spec"]["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        ]
        assert len(pdbs) == 1 and pdbs[0]["spec"]["maxUnavailable"] == 1, obj["metadata"]["name"]


def _deployment_rollout_min_ready(replicas: int, max_unavailable: int, max_surge: int) -> int:
    """The fewest ready pods during a Deployment rollout (new pods count once ready; old ones go only while the
    ready count stays at replicas - maxUnavailable or more)."""
    old, new, lowest = replicas, 0, replicas
    while old:
        added = min(replicas + max_surge - (old + new), replicas - new)
        new += added
        removed = min(old, old + new - (replicas - max_unavailable))
        assert added or removed, "the rollout cannot progress (maxSurge and maxUnavailable both 0)"
        old -= removed
        lowest = min(lowest, old + new)
    return lowest


def _statefulset_rollout_min_ready(replicas: int, max_unavailable: int, partition: int) -> int:
    """The fewest ready pods during a StatefulSet rollout: ordinals ≥ partition are replaced from the highest down,
    `maxUnavailable` at a time, each batch ready before the next."""
    ordinals = list(range(replicas - 1, partition - 1, -1))
    lowest = replicas
    for start in range(0, len(ordinals), max_unavailable):
        lowest = min(lowest, replicas - len(ordinals[start : start + max_unavailable]))
    return lowest


def test_the_rollout_simulations_can_see_capacity_drop():
    assert _deployment_rollout_min_ready(3, 0, 1) == 3
    assert _deployment_rollout_min_ready(3, 1, 0) == 2
    assert _statefulset_rollout_min_ready(2, 1, 0) == 1
    assert _statefulset_rollout_min_ready(2, 2, 0) == 0
    assert _statefulset_rollout_min_ready(3, 1, 3) == 3  # partitioned: nothing rolls


def _with(rendered: Rendered, kind: str, name: str, mutate) -> Rendered:
    """A copy of a render with one Kubernetes object (or GCP resource) changed."""
    resources = []
    for r in rendered.resources:
        inputs = r.inputs
        meta = inputs.get("metadata") or {}
        if (inputs.get("kind") == kind and meta.get("name") == name) or (r.typ == kind and r.name == name):
            inputs = copy.deepcopy(inputs)
            mutate(inputs)
        resources.append(replace(r, inputs=inputs))
    return replace(rendered, resources=resources)


def _set(path: str, value):
    """Set a dotted path; `app.kubernetes.io/<x>` label keys count as one part despite their dots."""

    def mutate(obj: dict) -> None:
        *parents, leaf = path.replace("app.kubernetes.io/", "app\0kubernetes\0io/").split(".")
        node = obj
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part.replace("\0", ".")]
        node[int(leaf) if leaf.isdigit() else leaf.replace("\0", ".")] = value

    return mutate


FORCING_CASES = {
    "statefulset serviceName": ("StatefulSet", "backend", "spec.serviceName", "backend-v2", True),
    "statefulset claim size": (
        "StatefulSet",
        "redis",
        "spec.volumeClaimTemplates.0.spec.resources.requests.storage",
        "2Gi",
        True,
    ),
    "deployment selector": ("Deployment", "frontend", "spec.selector.matchLabels.app.kubernetes.io/name", "x", True),
    "selecting pod label": (
        "Deployment",
        "frontend",
        "spec.template.metadata.labels.app.kubernetes.io/name",
        "x",
        True,
    ),
    "service selector": ("Service", "redis", "spec.selector.app.kubernetes.io/name", "other", True),
    "node pool machine type": (
        "gcp:container/nodePool:NodePool",
        "hyperstudy",
        "nodeConfig.machineType",
        "e2-standard-4",
        True,
    ),
    "node pool autoscaling": (
        "gcp:container/nodePool:NodePool",
        "hyperstudy",
        "autoscaling.totalMaxNodeCount",
        9,
        False,
    ),
    "deployment replicas": ("Deployment", "frontend", "spec.replicas", 5, False),
    "non-selecting pod label": (
        "Deployment",
        "frontend",
        "spec.template.metadata.labels.app.kubernetes.io/version",
        "9",
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(FORCING_CASES))
def test_the_diff_flags_exactly_the_changes_that_replace(render, case):
    kind, name, path, value, forcing = FORCING_CASES[case]
    before = render("prod")
    after = _with(before, kind, name, _set(path, value))
    (changed,) = diff(before, after)
    assert changed.replaces is forcing, render_diff([changed])
    assert "[REPLACE]" in render_diff([changed]) if forcing else "[REPLACE]" not in render_diff([changed])


def test_a_helm_releases_values_are_compared_too(render):
    # The chart renders its pods from them: a change of a chart pod's sizes or hooks is a change of the release.
    before = render("prod")
    release = "kubernetes:helm.sh/v3:Release"
    after = _with(before, release, "hyperstudy-cert-manager", _set("values.startupapicheck.enabled", False))
    (changed,) = diff(before, after)
    assert (changed.kind, changed.name, changed.replaces) == ("HelmRelease", "cert-manager/cert-manager", False)
    assert "values.startupapicheck.enabled: True → False" in render_diff([changed])


def test_initial_node_count_is_shown_as_ignored_not_as_a_replacement(render):
    before = render("prod")
    after = _with(before, "gcp:container/nodePool:NodePool", "hyperstudy", _set("initialNodeCount", 7))
    (changed,) = diff(before, after)
    assert not changed.replaces
    assert "[ignored by the program]" in render_diff([changed])


def test_a_charts_values_are_compared_too(render):
    """A Helm release's objects are rendered by Helm, not here: its values are what a change to the chart's
    configuration (an Alertmanager route, a default rule disabled) shows as."""
    before = render("prod")
    (release,) = [r for r in before.helm_releases() if r.inputs["name"] == "kube-prometheus-stack"]
    after = _with(before, release.typ, release.name, _set("values.defaultRules.disabled.KubeCPUOvercommit", False))
    (changed,) = diff(before, after)
    assert (changed.kind, changed.name) == ("HelmRelease", "monitoring/kube-prometheus-stack")
    assert [(c.path, c.before, c.after) for c in changed.changes] == [
        ("values.defaultRules.disabled.KubeCPUOvercommit", True, False)
    ]
    assert not changed.replaces


def test_cli_exit_codes_and_summary(capsys):
    assert main(["prod", "prod:baseline", "--fail-on-replace"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("0 replacements")
    assert main(["prod", "staging", "--fail-on-replace"]) == 3
    assert "[REPLACE]" in capsys.readouterr().out
    assert main(["prod", "prod:cheap"]) == 2
    assert "unknown profile 'cheap'" in capsys.readouterr().err


def _commit_tree(tmp_path: Path) -> Path:
    """A git repository whose one commit holds the project's tracked files as they are in the working tree (so the
    test holds with uncommitted changes too)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    repo = tmp_path / "repo"
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "tree"], check=True)
    return repo


@pytest.mark.programs  # git, and the render in a second process
def test_a_side_at_a_git_revision_renders_that_revision(recording_mocks, tmp_path):
    repo = _commit_tree(tmp_path)
    at_revision = render_target("prod@HEAD", project_dir=repo)
    here = render_target("prod", mocks=recording_mocks)
    assert at_revision.kubernetes_objects() == here.kubernetes_objects()
    assert diff(at_revision, here) == []
    # The revision's own stack file: a key changed there shows up as a change.
    stack_file = repo / "Pulumi.prod.yaml"
    stack_file.write_text(
        stack_file.read_text().replace("replicas: 2\n      cpu_request: 50m", "replicas: 3\n      cpu_request: 50m", 1)
    )
    import subprocess

    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam", "3"],
        check=True,
    )
    changed = {(d.kind, d.name) for d in diff(here, render_target("prod@HEAD", project_dir=repo))}
    assert ("Deployment", "hyperstudy/frontend") in changed


def test_an_unknown_revision_is_one_line_and_exit_2(capsys):
    assert main(["prod@no-such-revision", "prod"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: @no-such-revision: no such git revision") and err.count("\n") == 1


@pytest.mark.programs  # git, and a render of the committed stack file
def test_git_ref_renders_the_committed_stack_file_under_this_program(recording_mocks, tmp_path):
    repo = _commit_tree(tmp_path)
    here = render_target("prod", mocks=recording_mocks)
    assert diff(render_target("git:HEAD:prod", project_dir=repo, mocks=recording_mocks), here) == []
    edited = (
        (repo / "Pulumi.prod.yaml")
        .read_text()
        .replace("replicas: 2\n      cpu_request: 50m", "replicas: 3\n      cpu_request: 50m", 1)
    )
    (repo / "Pulumi.prod.yaml").write_text(edited)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qam", "3"],
        check=True,
    )
    changed = {
        (d.kind, d.name): d for d in diff(here, render_target("git:HEAD:prod", project_dir=repo, mocks=recording_mocks))
    }
    assert [c.path for c in changed["Deployment", "hyperstudy/frontend"].changes] == ["spec.replicas"]
    # The stack defaults to the other side's; a missing file at the revision is one line.
    _, after = resolve_sides("prod", "git:HEAD", project_dir=repo)
    assert (after.stack, after.name) == ("prod", "prod")
    with pytest.raises(ConfigError, match=r"^git:HEAD:nope: no Pulumi.nope.yaml at git revision HEAD"):
        render_target("git:HEAD:nope", project_dir=repo)


def test_an_identical_copy_of_a_stack_file_diffs_to_nothing(tmp_path, capsys):
    """The stack is its config, not its file's name: the README's "copy, edit, diff" workflow."""
    copy_ = tmp_path / "prod-before.yaml"
    shutil.copy(ROOT / "Pulumi.prod.yaml", copy_)
    assert main([str(copy_), "prod"]) == 0
    out = capsys.readouterr().out
    assert "(stack prod: its gcp:project hyperstudy-prod is Pulumi.prod.yaml's)" in out
    assert out.rstrip().endswith("0 changed, 0 added, 0 removed; 0 replacements")
    # An edit of the copy shows as that edit alone.
    copy_.write_text(
        copy_.read_text().replace("replicas: 2\n      cpu_request: 50m", "replicas: 3\n      cpu_request: 50m", 1)
    )
    assert main(["prod", str(copy_), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    objects = {(o["kind"], o["name"]): o for o in data["objects"]}
    assert data["summary"] == {"changed": len(objects), "added": 0, "removed": 0, "replacements": 0}
    assert [c["path"] for c in objects["Deployment", "hyperstudy/frontend"]["changes"]] == ["spec.replicas"]
    # A third frontend pod needs a third node: the pool first, then the workload.
    assert [o["kind"] for o in data["objects"][:2]] == ["gcp:container/nodePool:NodePool", "Deployment"]
    assert data["after"]["stack"] == "prod" and data["after"]["identified_by"].startswith("its gcp:project")


def test_a_stack_file_is_identified_by_its_project_then_its_closest_config(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    stack = "config:\n  gcp:project: {project}\n  hyperstudy-infra:profile: {profile}\n"
    (project / "Pulumi.blue.yaml").write_text(stack.format(project="p1", profile="optimized"))
    (project / "Pulumi.green.yaml").write_text(stack.format(project="p1", profile="baseline"))
    (project / "Pulumi.other.yaml").write_text(stack.format(project="p2", profile="baseline"))
    copy_ = tmp_path / "copy.yaml"
    copy_.write_text(stack.format(project="p1", profile="baseline"))
    assert identify_stack_file(copy_, project) == ("green", "its gcp:project p1 is Pulumi.green.yaml's")
    copy_.write_text(stack.format(project="p1", profile="optimized"))
    assert identify_stack_file(copy_, project)[0] == "blue"
    copy_.write_text(stack.format(project="p3", profile="optimized"))
    assert identify_stack_file(copy_, project) is None
    named = tmp_path / "Pulumi.blue.yaml"  # Pulumi's own convention wins, wherever the file is
    named.write_text(stack.format(project="p2", profile="optimized"))
    assert identify_stack_file(named, project) == ("blue", "its file name")
    # Unidentified, it is the other side's stack, else its file's stem.
    copy_.write_text(stack.format(project="p3", profile="optimized"))
    before, after = resolve_sides(str(copy_), "blue", project_dir=project)
    assert (before.name, after.name) == ("blue", "blue")
    assert resolve_sides(str(copy_), str(copy_), project_dir=project)[0].name == "copy"


def test_the_node_pool_and_workloads_come_first(render):
    diffs = diff(render("prod"), render("staging"))
    groups = [d.group for d in diffs]
    assert groups == sorted(groups) and groups[0] == 0 and 1 in groups and 2 in groups
    text = render_diff(diffs)
    assert text.index("# node pool and cluster") < text.index("# workloads") < text.index("# everything else")
    assert text.index("NodePool hyperstudy") < text.index("Deployment ") < text.index("ConfigMap ")


def _dashboard(rendered: Rendered) -> tuple[str, str, dict]:
    for obj in rendered.kubernetes_objects():
        for key, value in (obj.get("data") or {}).items():
            if key.endswith(".json"):
                return obj["metadata"]["name"], key, json.loads(value)
    raise AssertionError("no dashboard rendered")


def _with_board(rendered: Rendered, name: str, key: str, board: dict) -> Rendered:
    def mutate(obj: dict) -> None:
        obj["data"][key] = json.dumps(board)

    return _with(rendered, "ConfigMap", name, mutate)


def test_a_dashboards_text_changes_fold_into_a_count_and_its_numbers_stay_listed(render):
    before = render("prod")
    name, key, board = _dashboard(before)
    panels = [p for p in board["panels"] if "title" in p]
    for panel in panels[:3]:
        panel["title"] += " (renamed)"
    board["refresh"] = "1m" if board.get("refresh") != "1m" else "5m"  # text too
    board["version"] = int(board.get("version", 1)) + 7  # a number: listed
    (changed,) = diff(before, _with_board(before, name, key, board))
    assert changed.folded == 4
    text = render_diff([changed])
    assert "4 dashboard text changes (titles, queries, descriptions)" in text
    assert f"data.{key}.version:" in text and "(renamed)" not in text
    assert diff_json([changed], resolve_sides("prod", "prod"))["objects"][0]["dashboard_text_changes"] == 4


def test_floats_are_compared_and_shown_rounded(render):
    before = render("prod")
    name, key, board = _dashboard(before)
    (panel, *_) = [p for p in board["panels"] if (p.get("fieldConfig") or {}).get("defaults", {}).get("thresholds")]
    step = panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]
    index = board["panels"].index(panel)
    steps = len(panel["fieldConfig"]["defaults"]["thresholds"]["steps"]) - 1
    path = f"panels.{index}.fieldConfig.defaults.thresholds.steps.{steps}.value"
    noisy = copy.deepcopy(board)
    _set(path, float(step["value"]) * (1 + 1e-12))(noisy)
    assert diff(before, _with_board(before, name, key, noisy)) == []  # noise beyond 9 significant digits is no change
    _set(path, 0.1 + 0.2 + float(step["value"]) / 3)(noisy)
    (changed,) = diff(before, _with_board(before, name, key, noisy))
    shown = render_diff([changed]).splitlines()[2]  # under the group heading and the object
    assert re.search(r"→ [\d.e+]+$", shown) and len(shown.rsplit("→ ", 1)[1]) <= 12, shown
