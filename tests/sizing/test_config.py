"""sizing/config/: prod's stack config loads, and every class of bad input is one ConfigError naming its key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sizing.config.loader import load_stack, parse_stack_config, read_stack_values
from sizing.config.stack import StackConfig
from sizing.core.errors import ConfigError
from sizing.facts.catalogue import MACHINE_TYPES
from sizing.plan.build import build_plan

NS = "hyperstudy-infra"
ROOT = Path(__file__).resolve().parents[2]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting `a.b.c` of the values to `value` (intermediate mappings created)."""

    def mutate(values: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(values: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = values
        for part in parents:
            node = node[part]
        del node[leaf]

    return mutate


def _rename_workload(old: str, new: str) -> Callable[[dict[str, Any]], None]:
    def mutate(values: dict[str, Any]) -> None:
        values["workloads"][new] = values["workloads"].pop(old)
        if old in values.get("images", {}):
            values["images"][new] = values["images"].pop(old)

    return mutate


def _error(parse, values: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse(values)
    return err.value


def test_prod_loads(prod_values, parse) -> None:
    config = parse(prod_values)
    assert config.profile == "optimized"
    assert list(config.workloads) == ["backend", "frontend", "redis", "pod-router", "traefik", "metrics-service"]
    assert config.workloads["backend"].sized_by == "formula"
    assert config.workloads["backend"].memory.optimized is None
    assert config.workloads["frontend"].memory.optimized.request == 32  # MiB, parsed from "32Mi"
    assert config.workloads["backend"].memory.baseline.limit == 1024  # from "1Gi"
    assert config.workloads["backend"].cpu_request == 250
    assert config.nodes.machine_type == "e2-standard-2"
    assert config.nodes.overhead.memory == 1024
    assert config.nodes.overhead.cpu == 400
    assert config.capacity.memory_mib("typical") == 165
    assert config.capacity.memory_mib("peak") == 300
    assert config.machine() == MACHINE_TYPES["e2-standard-2"]


def test_load_stack_reads_the_same_config_as_parse(prod_values, parse) -> None:
    assert load_stack("prod", ROOT) == parse(prod_values)


def test_read_stack_values_keeps_only_the_project_namespace(tmp_path: Path) -> None:
    stack = tmp_path / "Pulumi.x.yaml"
    stack.write_text(
        "config:\n  gcp:project: p\n  kubernetes:context: c\n  hyperstudy-infra:profile: baseline\n  bare: 1\n"
    )
    # an unqualified key belongs to the project, as in Pulumi
    assert read_stack_values(stack, NS) == {"profile": "baseline", "bare": 1}


def test_config_is_frozen(prod_values, parse) -> None:
    config = parse(prod_values)
    with pytest.raises(ValidationError):
        config.profile = "baseline"
    with pytest.raises(ValidationError):
        config.workloads["redis"].replicas = 3


def test_with_profile_switches_only_the_profile(prod_values, parse) -> None:
    config = parse(prod_values)
    baseline = config.with_profile("baseline")
    assert baseline.profile == "baseline"
    assert config.profile == "optimized"
    assert baseline.workloads == config.workloads


# (id, mutation, key, problem): `problem` is matched exactly unless it ends with "…", then as a prefix.
BAD_INPUT = [
    ("unknown-top-level-key", _set("colour", "blue"), "colour", "unknown key"),
    ("unknown-nested-key", _set("workloads.frontend.colour", "blue"), "workloads.frontend.colour", "unknown key"),
    ("unknown-deep-key", _set("capacity.headroom.extra_pct", 5), "capacity.headroom.extra_pct", "unknown key"),
    (
        "negative-typical-count",
        _set("capacity.load.typical.small", -1),
        "capacity.load.typical.small",
        "must be 0 or more, got -1",
    ),
    (
        "negative-peak-count",
        _set("capacity.load.peak.medium", -2),
        "capacity.load.peak.medium",
        "must be 0 or more, got -2",
    ),
    (
        "negative-shape-users",
        _set("capacity.shapes.small.experimenter", -1),
        "capacity.shapes.small.experimenter",
        "Input should be greater than or equal to 0",
    ),
    (
        "negative-coefficient",
        _set("capacity.formula.per_role_mib.participant_video", -15),
        "capacity.formula.per_role_mib.participant_video",
        "Input should be greater than or equal to 0",
    ),
    (
        "zero-replicas",
        _set("workloads.redis.replicas", 0),
        "workloads.redis.replicas",
        "Input should be greater than or equal to 1",
    ),
    (
        "request-above-limit",
        _set("workloads.frontend.memory.optimized", {"request": "256Mi", "limit": "128Mi"}),
        "workloads.frontend.memory.optimized.request",
        "request 256Mi is above limit 128Mi",
    ),
    (
        "request-above-limit-baseline",
        _set("workloads.redis.memory.baseline.request", "1Gi"),
        "workloads.redis.memory.baseline.request",
        "request 1Gi is above limit 512Mi",
    ),
    (
        "zero-request",
        _set("workloads.frontend.memory.optimized.request", "0"),
        "workloads.frontend.memory.optimized.request",
        "must be more than 0",
    ),
    (
        "malformed-quantity",
        _set("workloads.frontend.memory.optimized.limit", "256MB"),
        "workloads.frontend.memory.optimized.limit",
        "'256MB' is not a Kubernetes quantity (e.g. '256Mi', '1Gi', '250m')",
    ),
    (
        "fractional-mib",
        _set("workloads.frontend.memory.optimized.limit", "100M"),
        "workloads.frontend.memory.optimized.limit",
        "'100M' is not a whole number of MiB (use Mi or Gi, e.g. '256Mi')",
    ),
    (
        "float-quantity",
        _set("nodes.overhead.memory", 1.5),
        "nodes.overhead.memory",
        "1.5 is not a quantity (write it as a string such as '256Mi')",
    ),
    ("malformed-cpu", _set("workloads.redis.cpu_request", "100 m"), "workloads.redis.cpu_request", "'100 m' is not a…"),
    ("zero-cpu", _set("workloads.redis.cpu_request", "0"), "workloads.redis.cpu_request", "must be more than 0"),
    (
        "unknown-machine-type",
        _set("nodes.machine_type", "e2-giant"),
        "nodes.machine_type",
        "unknown machine type 'e2-giant' (known: e2-highmem-2, e2-medium, e2-small, e2-standard-2…",
    ),
    (
        "unknown-shape-in-load",
        _set("capacity.load.peak.huge", 1),
        "capacity.load.peak.huge",
        "unknown experiment shape (known: large, medium, small)",
    ),
    (
        "peak-below-typical",
        _set("capacity.load", {"typical": {"medium": 1}, "peak": {"small": 1}}),
        "capacity.load.peak",
        "peak load needs less memory than typical load",
    ),
    ("missing-top-level", _drop("nodes"), "nodes", "required key is missing"),
    ("missing-nested", _drop("nodes.overhead"), "nodes.overhead", "required key is missing"),
    (
        "missing-in-workload",
        _drop("workloads.redis.cpu_request"),
        "workloads.redis.cpu_request",
        "required key is missing",
    ),
    ("missing-load-level", _drop("capacity.load.peak"), "capacity.load.peak", "required key is missing"),
    (
        "missing-optimized-sizes",
        _drop("workloads.frontend.memory.optimized"),
        "workloads.frontend.memory.optimized",
        "required key is missing (or set sized_by: formula)",
    ),
    (
        "formula-with-optimized-sizes",
        _set("workloads.backend.memory.optimized", {"request": "256Mi", "limit": "512Mi"}),
        "workloads.backend.memory.optimized",
        "must be omitted: sized_by is formula",
    ),
    (
        "new-machine-type-incomplete",
        _set("catalogue.machine_types.n2-standard-2", {"vcpu": 2}),
        "catalogue.machine_types.n2-standard-2",
        "new machine type needs memory, on_demand_usd_month, spot_usd_month",
    ),
    ("unknown-profile", _set("profile", "fast"), "profile", "Input should be 'optimized' or 'baseline'"),
    ("unknown-runtime", _set("workloads.redis.runtime", "java"), "workloads.redis.runtime", "Input should be…"),
    (
        "fraction-out-of-range",
        _set("runtime.nodejs_heap_fraction", 1.0),
        "runtime.nodejs_heap_fraction",
        "Input should be less than 1",
    ),
    ("uppercase-workload-name", _rename_workload("redis", "Redis"), "workloads.Redis", "name must be a lowercase DNS…"),
    ("no-workloads", _set("workloads", {}), "workloads", "at least one workload is required"),
]


@pytest.mark.parametrize(("mutate", "key", "problem"), [case[1:] for case in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_one_config_error(prod_values, parse, mutate, key: str, problem: str) -> None:
    mutate(prod_values)
    err = _error(parse, prod_values)
    assert err.key == f"{NS}:{key}"
    if problem.endswith("…"):
        assert err.problem.startswith(problem[:-1]), err.problem
    else:
        assert err.problem == problem
    assert str(err) == f"{err.key}: {err.problem}"
    assert "\n" not in str(err)


def test_override_of_a_known_machine_type_changes_only_given_fields(prod_values, parse) -> None:
    prod_values["catalogue"] = {"machine_types": {"e2-standard-2": {"on_demand_usd_month": 40.0}}}
    config = parse(prod_values)
    known = MACHINE_TYPES["e2-standard-2"]
    assert config.machine() == known.model_copy(update={"on_demand_usd_month": 40.0})
    # and the cost follows: 2 nodes × (40 + 100 GB × 0.10)
    assert build_plan(config, "test").cost.monthly_usd == pytest.approx(2 * (40.0 + 100 * 0.10))


def test_disk_price_override(prod_values, parse) -> None:
    prod_values["catalogue"] = {"disk_usd_gb_month": {"pd-balanced": 0.5}}
    price = MACHINE_TYPES["e2-standard-2"].on_demand_usd_month
    assert build_plan(parse(prod_values), "test").cost.node_usd_month == pytest.approx(price + 100 * 0.5, abs=0.005)


def test_new_machine_type_with_every_field(prod_values, parse) -> None:
    prod_values["catalogue"] = {
        "machine_types": {
            "n2-standard-2": {"vcpu": 2, "memory": "8Gi", "on_demand_usd_month": 70.0, "spot_usd_month": 20.0}
        }
    }
    prod_values["nodes"]["machine_type"] = "n2-standard-2"
    machine = parse(prod_values).machine()
    assert (machine.vcpu, machine.memory_mib, machine.on_demand_usd_month) == (2, 8192, 70.0)


def test_memory_override_of_a_known_machine_type(prod_values, parse) -> None:
    prod_values["catalogue"] = {"machine_types": {"e2-standard-2": {"memory": "16Gi"}}}
    machine = parse(prod_values).machine()
    assert machine.memory_mib == 16384
    assert machine.vcpu == MACHINE_TYPES["e2-standard-2"].vcpu


@pytest.mark.parametrize("name", ["café", "redis-", "rédis"])
def test_workload_name_must_be_a_dns_label(prod_values, parse, name: str) -> None:
    _rename_workload("redis", name)(prod_values)
    err = _error(parse, prod_values)
    assert err.key == f"{NS}:workloads.{name}"


def test_quantity_with_trailing_newline_is_a_one_line_error(prod_values, parse) -> None:
    prod_values["workloads"]["frontend"]["memory"]["optimized"]["request"] = "32Mi\n"
    err = _error(parse, prod_values)
    assert err.key == f"{NS}:workloads.frontend.memory.optimized.request"
    assert "\n" not in str(err)


def test_quantity_with_a_huge_exponent_is_a_config_error(prod_values, parse) -> None:
    prod_values["workloads"]["frontend"]["memory"]["optimized"]["limit"] = "1e999999999999999999"
    err = _error(parse, prod_values)
    assert err.key == f"{NS}:workloads.frontend.memory.optimized.limit"


def test_profile_override_of_load_stack() -> None:
    assert load_stack("prod", ROOT, profile="baseline").profile == "baseline"
    with pytest.raises(ConfigError) as err:
        load_stack("prod", ROOT, profile="fast")
    assert err.value.key == "--profile"
    assert err.value.problem == "unknown profile 'fast' (known: optimized, baseline)"


def test_missing_stack_file(tmp_path: Path, write_stack, prod_values) -> None:
    project = write_stack(prod_values)
    with pytest.raises(ConfigError) as err:
        load_stack("nope", project)
    assert err.value.key == str(project / "Pulumi.nope.yaml")
    assert err.value.problem == "stack file not found; known stacks: test"


def test_invalid_yaml_names_the_line(tmp_path: Path, write_stack, prod_values) -> None:
    project = write_stack(prod_values)
    (project / "Pulumi.bad.yaml").write_text("config:\n  hyperstudy-infra:profile: [optimized\n")
    with pytest.raises(ConfigError) as err:
        load_stack("bad", project)
    assert err.value.key == str(project / "Pulumi.bad.yaml")
    assert err.value.problem.startswith("not valid YAML (line ")


def test_stack_given_as_a_file_path(write_stack, prod_values) -> None:
    prod_values["profile"] = "baseline"
    project = write_stack(prod_values, name="other")
    config = load_stack(str(project / "Pulumi.other.yaml"), ROOT)
    assert isinstance(config, StackConfig)
    assert config.profile == "baseline"


def test_namespace_comes_from_the_project_file(write_stack, prod_values) -> None:
    project = write_stack(prod_values)
    (project / "Pulumi.yaml").write_text("name: other-project\nruntime: python\n")
    # the stack's keys are under hyperstudy-infra:, so for "other-project" every required key is missing
    with pytest.raises(ConfigError) as err:
        load_stack("test", project)
    assert err.value.key.startswith("other-project:")
    assert err.value.problem == "required key is missing"


# --- rules the program used to find only after registering resources ------------------------------------------

MONITORING_CASES = [
    ({"capacity_shape": "idle"}, "monitoring.capacity_shape", "needs no memory"),
    (
        {"alerts": {"memory_near_limit": {"threshold": 1.5, "for": "5m"}}},
        "alerts.memory_near_limit.threshold",
        "0 and 1",
    ),
    ({"release": "kube prometheus"}, "monitoring.release", "pattern"),
    ({"prometheus_operator": False, "managed_prometheus": False}, "monitoring", "must be true"),
    # The form of earlier releases, a README whose anchors the alerts linked into: a page per alert now.
    (
        {"runbook_url": "https://github.com/hyperstudy/hyperstudy-infra/blob/main/README.md"},
        "monitoring.runbook_url",
        "must contain {alert} where the alert's name goes",
    ),
    ({"runbook_url": "ftp://ops.example.org/{alert}"}, "monitoring.runbook_url", "pattern"),
]


@pytest.mark.parametrize(("monitoring", "key", "problem"), MONITORING_CASES)
def test_monitoring_settings_that_could_never_work_are_refused(prod_values, monitoring, key, problem) -> None:
    prod_values["capacity"]["shapes"]["idle"] = {}
    prod_values["monitoring"] = monitoring
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(prod_values, NS)
    assert raised.value.key.endswith(key)
    assert problem in raised.value.problem


@pytest.mark.parametrize("location", ["europe-west10", "europe-west12-b", "us-central1", "asia-southeast1-a"])
def test_every_gcp_region_and_zone_form_is_accepted(prod_values, location) -> None:
    prod_values["cluster"]["location"] = location
    assert parse_stack_config(prod_values, NS).cluster.location == location
