"""checkov's Kubernetes checks (https://www.checkov.io), a third-party gate on the offline render of every stack in
both profiles: any failed check that `.checkov.yaml` does not skip fails the suite. Each skip carries its one-line
reason, is still needed, and what it gives up is checked here instead where it can be. checkov lives in its own
virtualenv, .venv-checkov/ (`make test` creates it from requirements-checkov.txt); it runs offline (no policy
download, no update check), one process for all renders.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline.render import write

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".checkov.yaml"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))
CASES = [(stack, profile) for stack in STACKS for profile in ("optimized", "baseline")]
TIMEOUT_S = 300
# Keys the config may hold: anything else (soft-fail, skip-path, skip-framework, check, ...) could weaken the gate
# without a skip-check entry and its reason.
CONFIG_KEYS = {"framework", "compact", "quiet", "skip-download", "skip-check"}
SKIP_LINE = re.compile(r"^\s*-\s*(?P<check>\S+?)\s*(?:#\s*(?P<why>.*?))?\s*$")
CHECK_ID = re.compile(r"^CKV2?_K8S_\d+$")
POD_KINDS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}


@dataclass(frozen=True, order=True)
class Finding:
    """One failed check: the check, the object (`Kind.namespace.name`) and its file under the scanned tree."""

    check_id: str
    resource: str
    file: str

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource} ({self.file})"


@dataclass(frozen=True)
class Scan:
    summary: dict[str, Any]
    failed: list[Finding]


@pytest.fixture(scope="module")
def checkov() -> Path:
    """.venv-checkov/bin/checkov: a failure in CI (CI=true) when missing, elsewhere a skip with the reason. Tests
    ask for it before the render, so a missing checkov costs no render."""
    if CHECKOV.is_file() and os.access(CHECKOV, os.X_OK):
        return CHECKOV
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHECKOV} is missing: `make test` creates it (make .venv-checkov/.installed)")
    pytest.skip(f"{CHECKOV} not found: run `make .venv-checkov/.installed` to run the checkov gate")


def _documents(stdout: str) -> list[dict[str, Any]]:
    """checkov's JSON output: one report, a list of reports (several frameworks), or reports one after another."""
    decoder, index, found = json.JSONDecoder(), 0, []
    while index < len(stdout):
        if stdout[index].isspace():
            index += 1
            continue
        document, index = decoder.raw_decode(stdout, index)
        found.extend(document if isinstance(document, list) else [document])
    return found


def _scan(checkov: Path, directory: Path, *options: str, home: Path) -> Scan:
    """One checkov process over `directory`. It runs in `home` (cwd and HOME), so no .checkov.yaml of the working
    directory or of the user's home joins in: only the options given."""
    command = [str(checkov), "--directory", str(directory), *options, "--output", "json"]
    # No update check against PyPI and no policy metadata download: the gate needs no network.
    env = {**os.environ, "HOME": str(home), "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
    try:
        done = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"checkov did not finish within {TIMEOUT_S} s: {' '.join(command)}")
    # 0: no failed check, 1: failed checks; anything else is checkov itself failing (bad option, crash).
    assert done.returncode in (0, 1), f"checkov exited {done.returncode}:\n{done.stderr[-3000:]}"
    documents = _documents(done.stdout)
    summaries = [d.get("summary", d) for d in documents]
    summary = {key: sum(s.get(key, 0) for s in summaries) for key in ("passed", "failed", "parsing_errors")}
    summary["resource_count"] = sum(s.get("resource_count", 0) for s in summaries)
    failed = sorted(
        Finding(check["check_id"], check["resource"], check["file_path"].lstrip("/"))
        for document in documents
        for check in document.get("results", {}).get("failed_checks", [])
    )
    assert (done.returncode == 1) == bool(failed), f"exit code {done.returncode} but {len(failed)} failed checks"
    return Scan(summary, failed)


def _gate(checkov: Path, directory: Path, home: Path) -> Scan:
    """The gate's own invocation: the project's config, nothing else."""
    return _scan(checkov, directory, "--config-file", str(CONFIG), home=home)


def _assert_no_failed_check(scan: Scan) -> None:
    if scan.failed:
        counts = Counter(finding.check_id for finding in scan.failed)
        per_check = ", ".join(f"{check} ×{count}" for check, count in sorted(counts.items()))
        lines = "\n".join(f"  {finding}" for finding in scan.failed)
        pytest.fail(
            f"checkov: {len(scan.failed)} failed checks ({per_check}); fix the manifests, or skip the check in "
            f".checkov.yaml with a reason if it cannot apply:\n{lines}"
        )


def _skips() -> dict[str, str]:
    """The skip-check entries of the config, each with the comment on its line ('' when it has none)."""
    lines = CONFIG.read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("skip-check:")), len(lines))
    skips = {}
    for line in lines[start + 1 :]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = SKIP_LINE.match(line)
        if match is None:
            break
        skips[match["check"]] = match["why"] or ""
    return skips


@pytest.fixture(scope="module")
def tree(tmp_path_factory, render) -> Path:
    """Every stack × profile rendered, its Kubernetes objects under `<tree>/<stack>-<profile>/`."""
    base = tmp_path_factory.mktemp("checkov")
    for stack, profile in CASES:
        out = base / "render" / f"{stack}-{profile}"
        write(render(stack, profile), out)
        shutil.copytree(out / "kubernetes", base / "tree" / f"{stack}-{profile}")
    return base / "tree"


def _objects(tree: Path) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, yaml.safe_load(path.read_text())) for path in sorted(tree.rglob("*.yaml"))]


def _privileged_deployment() -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "privileged"}
    container = {"name": "app", "image": "docker.io/library/busybox:1.37.0", "securityContext": {"privileged": True}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "privileged", "namespace": "guard", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


@pytest.fixture(scope="module")
def gate(checkov, tree, tmp_path_factory) -> dict[str, Scan]:
    """The gate's invocation, run once (checkov's start alone is ~2 s of CPU): over every render (`renders/`) and,
    beside them, a privileged Deployment (`guard/`); each part's findings apart, by file."""
    home = tmp_path_factory.mktemp("gate")
    shutil.copytree(tree, home / "scan" / "renders")
    (home / "scan" / "guard").mkdir()
    (home / "scan" / "guard" / "001-guard-deployment-privileged.yaml").write_text(
        yaml.safe_dump(_privileged_deployment())
    )
    scan = _gate(checkov, home / "scan", home)
    # Every finding is in one part or the other: none escapes both by its path.
    assert {f.file.split("/", 1)[0] for f in scan.failed} <= {"renders", "guard"}, scan.failed
    return {
        part: Scan(scan.summary, [f for f in scan.failed if f.file.startswith(f"{part}/")])
        for part in ("renders", "guard")
    }


def test_checkov_finds_no_failed_check_on_any_render(gate, tree):
    scan = gate["renders"]
    objects = _objects(tree)
    assert {path.parent.name for path, _ in objects} == {f"{s}-{p}" for s, p in CASES}
    # Every object was parsed and checked (checkov counts each container as a resource too).
    assert scan.summary["parsing_errors"] == 0
    assert scan.summary["resource_count"] >= len(objects)
    assert scan.summary["passed"] >= 10 * len(CASES)
    _assert_no_failed_check(scan)


def test_the_gate_fails_on_a_privileged_container(gate):
    """The same config and invocation (the same run) report a privileged container, and the gate turns that into a
    failure."""
    scan = gate["guard"]
    assert ("CKV_K8S_16", "Deployment.guard.privileged") in {(f.check_id, f.resource) for f in scan.failed}
    with pytest.raises(pytest.fail.Exception, match=r"CKV_K8S_16 Deployment\.guard\.privileged"):
        _assert_no_failed_check(scan)


def test_config_weakens_the_gate_only_through_justified_skips():
    config = yaml.safe_load(CONFIG.read_text())
    assert set(config) <= CONFIG_KEYS, f"unexpected keys in .checkov.yaml: {sorted(set(config) - CONFIG_KEYS)}"
    assert config["framework"] == ["kubernetes"]
    assert config["skip-download"] is True
    skips = _skips()
    # Every entry is one check on its own line, and the text parse saw exactly what checkov will read.
    assert sorted(skips) == sorted(config.get("skip-check") or [])
    for check, why in skips.items():
        assert CHECK_ID.match(check), f"{check}: skip one Kubernetes check id per line (no lists, wildcards)"
        assert len(why.split()) >= 5, f"{check}: give a one-line reason in a comment next to the skip"


def test_every_skip_is_still_needed(checkov, tree, tmp_path):
    """A skipped check must still fail somewhere in the render: a skip that matches nothing would only hide a
    future regression."""
    skips = sorted(_skips())
    if not skips:
        pytest.skip("no check is skipped")
    # Only the skipped checks, without the config (which skips them).
    options = ["--framework", "kubernetes", "--skip-download", "--quiet", "--check", ",".join(skips)]
    scan = _scan(checkov, tree, *options, home=tmp_path)
    stale = set(skips) - {finding.check_id for finding in scan.failed}
    assert not stale, f"skipped in .checkov.yaml but failing nowhere: remove {sorted(stale)}"


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def test_every_mounted_service_account_token_has_rbac(tree):
    """What the CKV_K8S_38 skip gives up: a pod that mounts its token must have a use for it, a (Cluster)RoleBinding
    of its service account in the same render."""
    bound: set[tuple[str, str, str]] = set()
    mounting = []
    for path, obj in _objects(tree):
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            for subject in obj.get("subjects") or []:
                if subject["kind"] == "ServiceAccount":
                    bound.add((path.parent.name, subject["namespace"], subject["name"]))
        if obj["kind"] in POD_KINDS:
            spec = _pod_spec(obj)
            if spec.get("automountServiceAccountToken") is not False:
                account = (path.parent.name, obj["metadata"]["namespace"], spec.get("serviceAccountName", "default"))
                mounting.append((f"{path.parent.name}/{obj['kind']}/{obj['metadata']['name']}", account))
    unbound = [where for where, account in mounting if account not in bound]
    assert not unbound, f"these pods mount a service account token that no RoleBinding grants anything: {unbound}"
