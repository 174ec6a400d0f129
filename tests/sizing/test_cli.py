"""`python -m sizing`: JSON and human output of plan / project / slots, and bad input as exit 2 with one line."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from sizing.cli.commands import main
from sizing.facts.catalogue import DISK_USD_GB_MONTH, MACHINE_TYPES
from tests.sizing.stacks import assert_bad_input, run_cli, run_cli_process

ROOT = Path(__file__).resolve().parents[2]
NS = "hyperstudy-infra"


def run_json(*args: str) -> dict[str, Any]:
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


# --- plan ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prod_json() -> dict[str, Any]:
    return run_json("plan", "--stack", "prod")


@pytest.fixture(scope="module")
def prod_baseline_json() -> dict[str, Any]:
    return run_json("plan", "--stack", "prod", "--profile", "baseline")


# kube-prometheus-stack's pods as prod sizes them (monitoring.components), the same in both profiles: (replicas,
# main container request, limit, Σ sidecars' requests, Σ sidecars' limits). node-exporter runs on each of 2 nodes.
PROD_MONITORING = {
    "prometheus": (1, "512Mi", "1Gi", 32, 64),
    "alertmanager": (1, "64Mi", "128Mi", 32, 64),
    "grafana": (1, "128Mi", "256Mi", 128, 256),
    "prometheus-operator": (1, "64Mi", "128Mi", 0, 0),
    "kube-state-metrics": (1, "64Mi", "128Mi", 0, 0),
    "node-exporter": (2, "32Mi", "64Mi", 0, 0),
}
# 512+32 + 64+32 + 128+128 + 64 + 64 + 2×32 requests, 1024+64 + 128+64 + 256+256 + 128 + 128 + 2×64 limits.
PROD_MONITORING_MIB = (1088, 2176)
# cert-manager's pods as prod sizes them (ingress.components): controller, webhook, CA injector, and the HTTP-01
# solver, one per public host (prod has one).
PROD_CERT_MANAGER = {
    "cert-manager": (1, "64Mi", "128Mi", 0, 0),
    "cert-manager-webhook": (1, "32Mi", "64Mi", 0, 0),
    "cert-manager-cainjector": (1, "64Mi", "128Mi", 0, 0),
    "acme-solver": (1, "64Mi", "64Mi", 0, 0),
    "cert-manager-startupapicheck": (1, "32Mi", "64Mi", 0, 0),
}
# 64 + 32 + 64 + 64 + 32 requests, 128 + 64 + 128 + 64 + 64 limits.
PROD_CERT_MANAGER_MIB = (256, 448)


@pytest.mark.parametrize(
    ("fixture", "profile", "sizes", "app_requests_mib", "app_limits_mib"),
    [
        (
            "prod_json",
            "optimized",
            {
                "backend": (2, "256Mi", "512Mi"),
                "frontend": (2, "32Mi", "128Mi"),
                "redis": (1, "32Mi", "128Mi"),
                "pod-router": (2, "64Mi", "112Mi"),
                "traefik": (2, "64Mi", "128Mi"),
                "metrics-service": (1, "64Mi", "128Mi"),
            },
            928,
            2016,
        ),
        (
            "prod_baseline_json",
            "baseline",
            {
                "backend": (2, "512Mi", "1Gi"),
                "frontend": (2, "256Mi", "512Mi"),
                "redis": (1, "256Mi", "512Mi"),
                "pod-router": (2, "256Mi", "512Mi"),
                "traefik": (2, "64Mi", "128Mi"),
                "metrics-service": (1, "64Mi", "128Mi"),
            },
            2496,
            4992,
        ),
    ],
)
def test_plan_json(request, fixture: str, profile: str, sizes, app_requests_mib: int, app_limits_mib: int) -> None:
    data = request.getfixturevalue(fixture)
    assert (data["stack"], data["profile"]) == ("prod", profile)
    workloads = data["workloads"]
    app = {
        n: (w["replicas"], w["memory_request"], w["memory_limit"]) for n, w in workloads.items() if w["source"] == "app"
    }
    assert app == sizes
    charts = {
        n: (
            w["replicas"],
            w["memory_request"],
            w["memory_limit"],
            sum(c["memory_request_mib"] for c in w["sidecars"].values()),
            sum(c["memory_limit_mib"] for c in w["sidecars"].values()),
        )
        for n, w in workloads.items()
        if w["source"] != "app"
    }
    assert charts == {**PROD_MONITORING, **PROD_CERT_MANAGER}
    assert {w["source"] for n, w in workloads.items() if n in PROD_CERT_MANAGER} == {"cert-manager"}
    assert workloads["node-exporter"]["per_node"] and not workloads["prometheus"]["per_node"]
    totals = data["totals"]
    assert totals["memory_request_mib"] == sum(w["replicas"] * w["pod_memory_request_mib"] for w in workloads.values())
    assert totals["memory_limit_mib"] == sum(w["replicas"] * w["pod_memory_limit_mib"] for w in workloads.values())
    monitoring_requests, monitoring_limits = PROD_MONITORING_MIB
    tls_requests, tls_limits = PROD_CERT_MANAGER_MIB
    assert (totals["memory_request_mib"], totals["memory_limit_mib"]) == (
        app_requests_mib + monitoring_requests + tls_requests,
        app_limits_mib + monitoring_limits + tls_limits,
    )
    nodes = data["nodes"]
    assert {k: nodes[k] for k in ("machine_type", "min", "max", "lower_bound", "binding")} == {
        "machine_type": "e2-standard-2",
        "min": 2,
        "max": 3,
        "lower_bound": 2,
        # Spread no longer binds (skew lets two replicas share one node): losing a node needs a second one.
        "binding": "node_loss",
    }
    # node-exporter is on every node of the placement and comes off each node's free memory.
    assert all("node-exporter" in node for node in nodes["placement"])
    assert (nodes["per_node_memory_mib"], nodes["per_node_cpu_m"]) == (32, 20)
    cost = data["cost"]
    node = MACHINE_TYPES["e2-standard-2"].on_demand_usd_month + 100 * DISK_USD_GB_MONTH["pd-balanced"]
    assert cost["monthly_usd"] == pytest.approx(2 * node, abs=0.005) == cost["lines"]["nodes"]
    # Both profiles' cheapest safe pool is 2 × e2-standard-2: surviving a node's loss binds, not memory.
    assert cost["best"] == cost["baseline"] == {"machine_type": "e2-standard-2", "spot": False, "min": 2, "max": 3}
    assert cost["baseline_monthly_usd"] == pytest.approx(cost["monthly_usd"])
    assert cost["savings_pct"] == 0.0
    # Against the bill the document started from, 4 × e2-standard-2 at $240.
    assert cost["observed_baseline_monthly_usd"] == 240
    assert cost["observed_savings_pct"] == pytest.approx(100 * (240 - cost["monthly_usd"]) / 240, abs=0.05)
    assert cost["observed_savings_pct"] >= 50


def test_prod_plan_says_its_receivers_need_their_secrets(prod_json) -> None:
    # Prod routes alerts to receivers (and the Watchdog to its dead-man's switch) whose credentials are Pulumi secrets
    # the repository cannot hold, and its control plane's public endpoint has no authorized networks yet.
    assert [w.split(":")[1].split(" ")[0] for w in prod_json["warnings"]] == [
        "cluster.master_authorized_networks",
        "heartbeat_url",
        "pagerduty_routing_key",
        "slack_webhook_url",
    ]


def test_plan_json_backend_derivation(prod_json) -> None:
    backend = prod_json["workloads"]["backend"]
    assert backend["derivation"] == [
        "request: 100 + 8×5 + 25×1 = 165 MiB ×1.15 = 189.75 MiB → power of two → 256Mi",
        "limit: 100 + 15×10 + 25×2 = 300 MiB ×1.25 = 375 MiB → power of two → 512Mi",
    ]
    assert backend["runtime"] == {
        "kind": "nodejs",
        "memory_mib": 384,
        "setting": "NODE_OPTIONS=--max-old-space-size=384",
        "node_memory": "limit 512 MiB = old space 384 + young generation 48 (3 × 16 MiB semi-space, V8's default, "
        "uncapped) + native 80 (needs 56)",
    }
    assert prod_json["workloads"]["pod-router"]["runtime"]["node_memory"] == (
        "limit 112 MiB = old space 48 + young generation 3 (3 × 1 MiB semi-space, --max-semi-space-size) + native 61 "
        "(needs 56)"
    )
    assert "node_memory" not in prod_json["workloads"]["redis"]["runtime"]
    assert prod_json["workloads"]["frontend"]["derivation"] is None


def test_plan_human_output() -> None:
    # One of the smoke tests of the real command (`python -m sizing` in a process of its own); the others run it in
    # this process.
    result = run_cli_process("plan", "--stack", "prod")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "stack prod · profile optimized" in out
    assert "  request: 100 + 8×5 + 25×1 = 165 MiB ×1.15 = 189.75 MiB → power of two → 256Mi" in out
    assert "  limit: 100 + 15×10 + 25×2 = 300 MiB ×1.25 = 375 MiB → power of two → 512Mi" in out
    assert "memory requests (per pod, sidecars included): 2×256 + 2×32 + 1×32 + 2×64 + 2×64 + 1×64 + " in out
    assert "  + config-reloader" in out and "2 (1/node)" in out
    assert "WARNING: the stack would fail a person:" in out
    assert "binding: node_loss" in out
    assert "--maxmemory 89mb --maxmemory-policy allkeys-lru" in out
    # Each Node.js limit's split, under its own heading.
    heading = out.index("Node.js limits (old space + young generation + native memory beside the heap):")
    assert out.index("  pod-router: limit 112 MiB = old space 48 + young generation 3 (3 × 1 MiB", heading) > heading
    assert "  metrics-service: limit 128 MiB = old space 69 + young generation 3" in out


def test_plan_of_a_written_stack(write_stack, prod_values) -> None:
    prod_values["workloads"]["frontend"]["replicas"] = 3
    prod_values["workloads"]["frontend"]["spread"] = "distinct"
    project = write_stack(prod_values, name="staging")
    data = run_json("--project-dir", str(project), "plan", "--stack", "staging")
    assert data["stack"] == "staging"
    assert data["workloads"]["frontend"]["replicas"] == 3
    # Three replicas one per node, and a fourth node for the one whose node is lost (prod survives a node's loss).
    assert (data["nodes"]["bounds"]["spread"], data["nodes"]["bounds"]["node_loss"]) == (3, 4)
    assert (data["nodes"]["binding"], data["nodes"]["min"]) == ("node_loss", 4)


# --- project -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "mib"),
    [
        (("--video", "10", "--experimenters", "2"), 300),
        (("--no-video", "5", "--experimenters", "1"), 165),
        (("--video", "20", "--experimenters", "3"), 475),
        ((), 100),
    ],
)
def test_project_json(args: tuple[str, ...], mib: int) -> None:
    assert run_json("project", *args) == {"memory_mib": mib}


def test_project_human() -> None:
    result = run_cli("project", "--video", "10", "--experimenters", "2")
    assert result.returncode == 0
    assert result.stdout == "100 + 15×10 + 25×2 = 300 MiB\n"


def test_project_uses_the_stack_formula(write_stack, prod_values) -> None:
    prod_values["capacity"]["formula"] = {"base_mib": 50, "per_role_mib": {"participant_video": 20}}
    project = write_stack(prod_values)
    data = run_json(
        "--project-dir", str(project), "project", "--stack", "test", "--video", "10", "--experimenters", "2"
    )
    assert data == {"memory_mib": 50 + 20 * 10 + 25 * 2}


# --- slots ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mix",
    [
        {"video": 10, "no_video": 0, "experimenters": 2},  # medium, 200 MiB
        {"video": 0, "no_video": 5, "experimenters": 1},  # small, 65 MiB
        {"video": 20, "no_video": 0, "experimenters": 3},  # large, 375 MiB: does not fit beside typical load
        {"video": 0, "no_video": 1, "experimenters": 0},  # 8 MiB
    ],
)
def test_slots_follow_the_definition(prod_json, mix: dict[str, int]) -> None:
    data = run_json(
        "slots",
        "--stack",
        "prod",
        "--video",
        str(mix["video"]),
        "--no-video",
        str(mix["no_video"]),
        "--experimenters",
        str(mix["experimenters"]),
    )
    shape_mib = 15 * mix["video"] + 8 * mix["no_video"] + 25 * mix["experimenters"]
    typical_mib = 100 + 8 * 5 + 25 * 1
    assert (data["shape_mib"], data["typical_mib"]) == (shape_mib, typical_mib)
    assert set(data["workloads"]) == {"backend"}  # the only workload sized by the formula
    backend = data["workloads"]["backend"]
    limit = prod_json["workloads"]["backend"]["memory_limit_mib"]
    replicas = prod_json["workloads"]["backend"]["replicas"]
    # Experiments fit under the near-limit threshold (0.9 in prod), not under the limit itself.
    per_pod = max(0, math.floor((Fraction(9, 10) * limit - typical_mib) / shape_mib))
    assert (backend["memory_limit_mib"], backend["replicas"]) == (limit, replicas)
    assert backend["per_pod"] == per_pod
    assert backend["total"] == per_pod * replicas == data["total"]


def test_slots_medium_in_numbers() -> None:
    # ⌊(0.9 × 512 - 165) / 200⌋ = ⌊1.479⌋ = 1 per pod, 2 backend pods
    data = run_json("slots", "--stack", "prod", "--video", "10", "--experimenters", "2")
    assert (data["workloads"]["backend"]["per_pod"], data["total"]) == (1, 2)


def test_slots_are_never_negative(write_stack, prod_values) -> None:
    # In the baseline profile the backend's configured limit (128Mi here) is below typical formula memory (165).
    prod_values["profile"] = "baseline"
    # An old space of its own: 0.75 of 128 would leave no room for the native memory beside the heap.
    prod_values["workloads"]["backend"]["memory"]["baseline"] = {
        "request": "64Mi",
        "limit": "128Mi",
        "old_space": "64Mi",
    }
    project = write_stack(prod_values)
    data = run_json("--project-dir", str(project), "slots", "--stack", "test", "--video", "10", "--experimenters", "2")
    assert data["profile"] == "baseline"
    assert data["workloads"]["backend"]["memory_limit_mib"] == 128
    assert (data["workloads"]["backend"]["per_pod"], data["workloads"]["backend"]["total"], data["total"]) == (0, 0, 0)


def test_slots_human() -> None:
    result = run_cli("slots", "--stack", "prod", "--video", "10", "--experimenters", "2")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "one more experiment needs 200 MiB; typical load uses 165 MiB; experiments fit up to 90% of the limit "
        "(the near-limit threshold)",
        "backend: 1 per pod × 2 pods = 2 (limit 512 MiB)",
        "total: 2",
    ]


# --- recommend -----------------------------------------------------------------------------------------------


BILL_DIMENSIONS = ("disk_size_gb", "disk_type", "commitment")


def test_recommend_json_for_prod() -> None:
    data = run_json("recommend", "--stack", "prod")
    assert set(data) == {"stack", "profile", "current", "best", "overpay_usd_month", "options", "bill"}
    assert (data["stack"], data["profile"]) == ("prod", "optimized")
    keys = {"machine_type", "spot", "min", "max", "monthly_usd"}
    assert keys <= set(data["current"]) and set(data["best"]) == keys
    assert all(
        set(o) == {*keys, "min_proven", "max_monthly_usd", "binding", "feasible", "reason", *BILL_DIMENSIONS}
        for o in data["options"]
    )
    # The plain options are priced with the stack's own boot disk and commitment.
    assert {(o["disk_size_gb"], o["disk_type"], o["commitment"]) for o in data["options"]} == {
        (100, "pd-balanced", "none")
    }
    feasible = [o for o in data["options"] if o["feasible"]]
    assert data["best"]["monthly_usd"] == min(o["monthly_usd"] for o in feasible)
    assert data["best"] == {k: data["current"][k] for k in keys}
    assert data["overpay_usd_month"] == 0
    # the plan says the same
    assert run_json("plan", "--stack", "prod")["cost"]["best_monthly_usd"] == data["best"]["monthly_usd"]


def test_recommend_table_and_the_plan_name_an_overpaying_pool(write_stack, prod_values) -> None:
    project = write_stack(_mutated(prod_values, "nodes.machine_type", "e2-standard-4"))
    table = run_cli("--project-dir", str(project), "recommend", "--stack", "test")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert any(line.startswith("*e2-standard-2 ") for line in lines)
    assert any(line.startswith("e2-standard-4 ") and "current" in line for line in lines)
    assert any("overpays $97.84: set nodes.machine_type: e2-standard-2" in line for line in lines)
    plan = run_cli("--project-dir", str(project), "plan", "--stack", "test", "--json")
    cost = json.loads(plan.stdout)["cost"]
    assert (cost["best"]["machine_type"], cost["overpay_usd_month"]) == ("e2-standard-2", 97.84)
    text = run_cli("--project-dir", str(project), "plan", "--stack", "test").stdout
    assert "NOT the cheapest safe pool: 2 × e2-standard-2 holds the same pods for $117.84/month, $97.84 less" in text


def test_recommend_profile_override() -> None:
    baseline = run_json("recommend", "--stack", "prod", "--profile", "baseline")
    assert baseline["profile"] == "baseline"
    assert run_json("plan", "--stack", "prod")["cost"]["baseline_monthly_usd"] == baseline["best"]["monthly_usd"]


def test_recommend_with_nothing_feasible_is_one_line_exit_2(write_stack, prod_values) -> None:
    project = write_stack(_mutated(prod_values, "workloads.frontend.memory.optimized.limit", "64Gi"))
    for json_flag in ((), ("--json",)):
        line = assert_bad_input(
            run_cli("--project-dir", str(project), "recommend", "--stack", "test", *json_flag),
            f"{NS}:workloads.frontend",
        )
        assert "no pool holds the stack" in line


# --- bad input -----------------------------------------------------------------------------------------------


def _mutated(prod_values: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    node = prod_values
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return prod_values


@pytest.mark.parametrize(
    ("path", "value", "key"),
    [
        ("workloads.frontend.colour", "blue", f"{NS}:workloads.frontend.colour"),
        ("capacity.load.typical.small", -1, f"{NS}:capacity.load.typical.small"),
        ("workloads.redis.replicas", 0, f"{NS}:workloads.redis.replicas"),
        ("workloads.frontend.memory.optimized", {"request": "1Gi", "limit": "128Mi"}, "optimized.request"),
        ("nodes.machine_type", "e2-giant", f"{NS}:nodes.machine_type"),
        ("workloads.frontend.memory.optimized.limit", "256MB", f"{NS}:workloads.frontend.memory.optimized.limit"),
        ("nodes.overhead.memory", "7Gi", "nodes.overhead.memory"),  # found while planning
        ("workloads.frontend.memory.optimized.limit", "6Gi", "workloads.frontend"),  # larger than a node
        ("nodes.allow_spot", False, f"{NS}:nodes.allow_spot"),  # prod with spot: true below
        ("cost.observed_baseline.monthly_usd", 0, f"{NS}:cost.observed_baseline.monthly_usd"),
    ],
    ids=[
        "unknown-key",
        "negative-count",
        "zero-replicas",
        "request-above-limit",
        "unknown-machine-type",
        "malformed-quantity",
        "overhead-above-allocatable",
        "limit-above-node",
        "spot-not-allowed",
        "observed-bill-zero",
    ],
)
def test_bad_stack_is_one_line_exit_2(write_stack, prod_values, path: str, value: Any, key: str) -> None:
    if path == "nodes.allow_spot":
        prod_values["nodes"]["spot"] = True
    project = write_stack(_mutated(prod_values, path, value))
    for command in (["plan", "--stack", "test"], ["plan", "--stack", "test", "--json"]):
        assert_bad_input(run_cli("--project-dir", str(project), *command), key)


def test_missing_stack_file() -> None:
    line = assert_bad_input(run_cli("plan", "--stack", "nope"), "Pulumi.nope.yaml")
    assert line.endswith(": stack file not found; known stacks: example, prod, staging")


def test_unknown_profile() -> None:
    line = assert_bad_input(run_cli("plan", "--stack", "prod", "--profile", "fast"), "--profile")
    assert line == "error: --profile: unknown profile 'fast' (known: optimized, baseline)"


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("project", "--video", "-1"), "--video"),
        (("project", "--experimenters", "two"), "--experimenters"),
        (("slots", "--stack", "prod", "--no-video", "-3"), "--no-video"),
        (("slots", "--stack", "prod"), "--video/--no-video/--experimenters"),  # an experiment with no users
    ],
)
def test_bad_arguments_are_one_line_exit_2(args: tuple[str, ...], key: str) -> None:
    assert_bad_input(run_cli(*args), key)


def test_missing_project_file(tmp_path: Path) -> None:
    assert_bad_input(run_cli("--project-dir", str(tmp_path), "plan", "--stack", "prod"), "Pulumi.yaml")


def test_stack_file_not_utf8(write_stack, prod_values) -> None:
    project = write_stack(prod_values)
    (project / "Pulumi.bad.yaml").write_bytes(b"config:\n  hyperstudy-infra:profile: \xff\xfe\n")
    assert_bad_input(run_cli("--project-dir", str(project), "plan", "--stack", "bad"), "Pulumi.bad.yaml")


def test_quantity_with_newline_is_one_line(write_stack, prod_values) -> None:
    project = write_stack(_mutated(prod_values, "workloads.frontend.memory.optimized.limit", "128Mi\n"))
    assert_bad_input(run_cli("--project-dir", str(project), "plan", "--stack", "test"), "optimized.limit")


def test_quantity_overflow_is_one_line(write_stack, prod_values) -> None:
    project = write_stack(_mutated(prod_values, "workloads.frontend.memory.optimized.limit", "1e999999999999999999"))
    assert_bad_input(run_cli("--project-dir", str(project), "plan", "--stack", "test"), "optimized.limit")


# --- in process ----------------------------------------------------------------------------------------------


def test_main_plan_json_in_process(capsys) -> None:
    assert main(["--project-dir", str(ROOT), "plan", "--stack", "prod", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["workloads"]["backend"]["memory_limit"] == "512Mi"
    assert data["totals"]["memory_request_mib"] == 928 + PROD_MONITORING_MIB[0] + PROD_CERT_MANAGER_MIB[0]


def test_main_project_in_process(capsys) -> None:
    assert main(["project", "--video", "10", "--experimenters", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"memory_mib": 300}


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("workloads.frontend.colour", "blue", f"error: {NS}:workloads.frontend.colour: unknown key"),
        (
            "capacity.load.peak.medium",
            -1,
            f"error: {NS}:capacity.load.peak.medium: must be 0 or more, got -1",
        ),
        (
            "workloads.redis.replicas",
            0,
            f"error: {NS}:workloads.redis.replicas: Input should be greater than or equal to 1",
        ),
    ],
)
def test_main_bad_input_in_process(capsys, write_stack, prod_values, path: str, value: Any, expected: str) -> None:
    project = write_stack(_mutated(prod_values, path, value))
    assert main(["--project-dir", str(project), "plan", "--stack", "test"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == expected + "\n"


def test_main_argument_error_in_process(capsys) -> None:
    assert main(["project", "--video", "-1"]) == 2
    assert capsys.readouterr().err == "error: argument --video: must be 0 or more, got -1\n"


@pytest.mark.parametrize(("args", "word"), [(("plan",), "--stack"), (("frobnicate",), "frobnicate")])
def test_a_malformed_command_line_shows_the_usage_then_one_error_line(args: tuple[str, ...], word: str) -> None:
    result = run_cli(*args)
    assert (result.returncode, result.stdout) == (2, "")
    lines = result.stderr.splitlines()
    assert lines[0].startswith("usage: python -m sizing") and "Traceback" not in result.stderr
    assert lines[-1].startswith("error: ") and word in lines[-1]
