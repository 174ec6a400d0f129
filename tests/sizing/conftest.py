"""Fixtures of the pure sizing layer: prod's raw config values, stacks written to a temporary project, plans.

Nothing here imports pulumi; the tests of this folder exercise `sizing` alone (in-process and through its CLI).
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, settings

from sizing.config.loader import parse_stack_config, read_stack_values
from sizing.config.stack import StackConfig
from sizing.plan.build import build_plan
from sizing.plan.types import Plan

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "hyperstudy-infra"

# Property tests opt in with `@settings(settings.get_profile("sizing"))`: deterministic in CI, no per-example
# deadline (the first example pays for imports), small enough to keep the whole folder well under 20 s.
settings.register_profile(
    "sizing",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def _unwrapped_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's tables as printed into a pipe, unwrapped, unless a test sets COLUMNS itself: pytest-xdist's workers
    inherit the width GNU readline exports in the process that started them."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(scope="session")
def _prod_values_pristine() -> dict[str, Any]:
    return read_stack_values(ROOT / "Pulumi.prod.yaml", NAMESPACE)


@pytest.fixture
def prod_values(_prod_values_pristine: dict[str, Any]) -> dict[str, Any]:
    """Prod's project-namespace values (namespace stripped), a fresh deep copy that a test may mutate."""
    return copy.deepcopy(_prod_values_pristine)


@pytest.fixture
def parse() -> Callable[[dict[str, Any]], StackConfig]:
    """Validate raw values as the CLI and the program do (namespace `hyperstudy-infra`)."""
    return lambda values: parse_stack_config(values, NAMESPACE)


@pytest.fixture(scope="session")
def prod_optimized(_prod_values_pristine: dict[str, Any]) -> Plan:
    """Prod's plan in the optimized profile."""
    values = {**copy.deepcopy(_prod_values_pristine), "profile": "optimized"}
    return build_plan(parse_stack_config(values, NAMESPACE), "prod")


@pytest.fixture(scope="session")
def prod_baseline(_prod_values_pristine: dict[str, Any]) -> Plan:
    """Prod's plan in the baseline profile (the rollback sizes)."""
    values = {**copy.deepcopy(_prod_values_pristine), "profile": "baseline"}
    return build_plan(parse_stack_config(values, NAMESPACE), "prod")


@pytest.fixture
def write_stack(tmp_path: Path) -> Callable[..., Path]:
    """`write_stack(values, name="test")` writes a project into tmp_path for `--project-dir`; returns tmp_path.

    Pulumi.yaml is copied from the repository; `Pulumi.<name>.yaml` holds `values` under the project's namespace
    (next to a `gcp:` key, which the loader must skip).
    """

    def write(values: dict[str, Any], name: str = "test") -> Path:
        shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
        config: dict[str, Any] = {"gcp:project": "test-project"}
        config.update({f"{NAMESPACE}:{key}": value for key, value in values.items()})
        (tmp_path / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
        return tmp_path

    return write


def _canonical_mib(text: str) -> bool:
    # The API server's form of a whole-MiB memory quantity: "0", or the largest binary suffix with a whole number
    # (the model stops at Pi). A number part divisible by 1024 means a larger suffix was available.
    if text == "0":
        return True
    for suffix in ("Mi", "Gi", "Ti", "Pi"):
        if text.endswith(suffix):
            number = text.removesuffix(suffix)
            if not number.isdigit() or number.startswith("0"):
                return False
            return suffix == "Pi" or int(number) % 1024 != 0
    return False


@pytest.fixture(scope="session")
def canonical_mib() -> Callable[[str], bool]:
    """True when a memory string is in canonical form (no `1024Mi`, no `0Gi`, no leading zeros)."""
    return _canonical_mib


def _check_placement(plan: Plan) -> None:
    nodes = plan.nodes
    pool = plan.pool_workloads
    assert len(nodes.placement) == nodes.min, "the placement is of the minimum node count"
    per_node = {w.name for w in pool.values() if w.per_node}
    for index, node in enumerate(nodes.placement):
        assert sorted(pod for pod in node if pod in per_node) == sorted(per_node), f"node {index}: per-node pods"
    placed = [pod for node in nodes.placement for pod in node if pod not in per_node]
    expected = [f"{w.name}-{i}" for w in pool.values() if not w.per_node for i in range(w.replicas)]
    assert sorted(placed) == sorted(expected), "every pod placed exactly once"
    assert nodes.per_node_memory_mib == sum(pool[name].pod_memory_request_mib for name in per_node)
    owners_by_node = [[pod.rsplit("-", 1)[0] for pod in node if pod not in per_node] for node in nodes.placement]
    for name, w in pool.items():
        if w.per_node:
            continue
        column = [owners.count(name) for owners in owners_by_node]
        # The constraint its controller is rendered with: distinct, one per node; skew, balanced over every node.
        if w.spread == "distinct":
            assert max(column) <= 1, f"{name}: two replicas on a node under required anti-affinity: {column}"
        if w.spread == "skew":
            assert max(column) - min(column) <= 1, f"{name}: spread skew above 1: {column}"
    for index, owners in enumerate(owners_by_node):
        # Free memory and CPU are what is left after the overhead and the per-node pods.
        memory = sum(pool[name].pod_memory_request_mib for name in owners)
        cpu = sum(pool[name].pod_cpu_request_m for name in owners)
        assert memory <= nodes.free_memory_mib, f"node {index}: {memory} MiB requested > {nodes.free_memory_mib} free"
        assert cpu <= nodes.free_cpu_m, f"node {index}: {cpu}m requested > {nodes.free_cpu_m}m free"


@pytest.fixture(scope="session")
def check_placement() -> Callable[[Plan], None]:
    """Assert the plan's placement: min nodes, every pod once, each workload's spread kept, requests within free."""
    return _check_placement
