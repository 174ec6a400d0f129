"""The rule groups as data: promtool's lint, names, alert metadata, runbook anchors, the metric contract, scoping.

What the rules compute is tested by `promtool test rules` in test_rules_promtool.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from cloudcoil.models.prometheus_operator.v1 import PrometheusRule

from monitoring import names
from monitoring.rules import (
    ALERTS_GROUP,
    DAILY_GROUP,
    RECORDING_GROUP,
    SCALER_MISSED_AFTER_SECONDS,
    SETTINGS,
    alert_settings,
    expected_cronjobs,
    recorded_names,
    rule_groups,
    rules_file,
    scaler_cronjob_regex,
    scaler_job_regex,
    scheduled_not_ready_for,
    shape_bytes,
    slots_expr,
)
from monitoring.selectors import build_selectors, planned_containers
from sizing.config.capacity import UserMix
from sizing.config.loader import load_stack
from sizing.config.monitoring import Alert
from sizing.config.stack import StackConfig
from sizing.config.workloads import WorkloadConfig
from sizing.core.capacity import slots
from sizing.core.durations import duration_seconds, duration_text
from sizing.core.errors import ConfigError
from sizing.observe import contract
from sizing.observe.promql import (
    label_replace_workload,
    longest_first,
    pod_regex,
    real_containers,
    statefulset_pod_regex,
)
from sizing.plan.build import build_plan
from sizing.plan.pool_name import GKE_NODE_POOL_LABEL, stack_pool_name
from tests.monitoring.conftest import SCHEDULE, scheduled_config

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# level:metric:operations (Prometheus' recording rule naming convention).
RECORD_NAME = re.compile(r"^[a-z][a-z0-9_]*:[a-z][a-z0-9_]*:[a-z][a-z0-9_]*$")
ALERT_NAME = re.compile(r"^HyperStudy[A-Z][A-Za-z]+$")
# Rendered only for a stack with `capacity.schedule`.
SCHEDULE_ALERTS = {names.ALERT_SCHEDULED_CAPACITY_NOT_READY, names.ALERT_SCHEDULED_SCALING_FAILED}
# Node-level series carry no namespace of their own: they are selected by metric name alone (and `resource`, or the
# node pool label of `kube_node_labels`).
NODE_LEVEL = {contract.NODE_INFO, contract.NODE_ALLOCATABLE, contract.NODE_LABELS, contract.NODE_UNSCHEDULABLE}
# Series read without the namespace, by design: HyperStudyMemoryOvercommit counts the Pending and Running pods of
# every namespace, as kubernetes-mixin does, and the pool's other requests are those of every namespace's active pods
# scheduled on the pool's nodes.
CLUSTER_WIDE = {
    (names.ALERT_MEMORY_OVERCOMMIT, contract.REQUESTS),
    (names.ALERT_MEMORY_OVERCOMMIT, contract.POD_PHASE),
    (names.OTHER_POOL_REQUESTS, contract.REQUESTS),
    (names.OTHER_POOL_REQUESTS, contract.POD_PHASE),
    (names.OTHER_POOL_REQUESTS, contract.POD_INFO),
    # The backend's requests count only while its pods are Pending or Running on the pool's nodes.
    (names.BACKEND_HELD, contract.POD_PHASE),
    (names.BACKEND_HELD, contract.POD_INFO),
}
# Records of the whole cluster (of the stack's pool): each carries the stack's namespace label all the same.
CLUSTER_LEVEL = {
    names.NODES,
    names.COST,
    names.POOL_ALLOCATABLE,
    names.OTHER_POOL_REQUESTS,
    names.COST_BY_ROLE,
    names.SAVINGS,
    names.SAVINGS_RATIO,
    names.BILL,
    names.OBSERVED_SAVINGS,
    names.OBSERVED_SAVINGS_RATIO,
    names.COST_MAX_1D,
    names.COST_AVG_1D,
}
# Those computed from cluster-wide or node-level series: they get the namespace label with label_replace.
LABELLED_WITH_NAMESPACE = {names.NODES, names.POOL_ALLOCATABLE, names.OTHER_POOL_REQUESTS}
# kube-state-metrics series read cluster-wide or node-level, and the labels that identify one of them: two replicas or
# jobs export each twice, so each is read through `max by (<these>)`.
KSM_IDENTITY = {
    # kube_node_info is read for the kubelet versions of the pool's nodes (is it being upgraded?).
    contract.NODE_INFO: ["node", "kubelet_version"],
    contract.NODE_UNSCHEDULABLE: ["node"],
    contract.NODE_ALLOCATABLE: ["node"],
    contract.NODE_LABELS: ["node"],
    contract.REQUESTS: ["namespace", "pod", "container"],
    contract.POD_PHASE: ["namespace", "pod"],
    contract.POD_INFO: ["namespace", "pod", "node"],
}
# Requested vs used per container: the base at the scrape interval, the day of it in the daily group (the ratios of
# two day records read at once).
DRIFT_BASE = {
    names.CONTAINER_CPU_USAGE,
    names.CONTAINER_MEMORY_USAGE,
    names.CONTAINER_CPU_REQUEST,
    names.CONTAINER_MEMORY_REQUEST,
    names.CONTAINER_MEMORY_LIMIT,
}
DRIFT_DAILY_RATIOS = {
    names.CONTAINER_CPU_P95_REQUEST_1D,
    names.CONTAINER_MEMORY_MAX_REQUEST_1D,
    names.CONTAINER_MEMORY_MAX_LIMIT_1D,
}
DRIFT_DAILY = {
    names.CONTAINER_CPU_P95_1D,
    names.CONTAINER_CPU_MAX_1D,
    names.CONTAINER_MEMORY_P95_1D,
    names.CONTAINER_MEMORY_MAX_1D,
    names.CONTAINER_CPU_ABOVE_REQUEST_1D,
    names.CONTAINER_MEMORY_ABOVE_REQUEST_1D,
    *DRIFT_DAILY_RATIOS,
}
# V8's spaces outside what --max-old-space-size caps.
NOT_OLD_GENERATION = "new|new_large_object|read_only"


def rule_names_in(module: Any, prefix: str = "") -> set[str]:
    return {v for k, v in vars(module).items() if k.isupper() and isinstance(v, str) and k.startswith(prefix)}


RECORDING_NAMES = {v for v in rule_names_in(names) if RECORD_NAME.match(v) and v not in contract.CONTRACT}
ALERT_NAMES = rule_names_in(names, "ALERT_")


@pytest.fixture(params=["prod", "prod-baseline", "staging", "scheduled"])
def stack(request: pytest.FixtureRequest, prod_config, prod_plan, staging_config, staging_plan):
    if request.param == "prod":
        return prod_config, prod_plan
    if request.param == "staging":
        return staging_config, staging_plan
    if request.param == "scheduled":
        # `other_config` with planned windows: the schedule's alerts are rendered too.
        return request.getfixturevalue("scheduled_stack_config"), request.getfixturevalue("scheduled_stack_plan")
    baseline = prod_config.with_profile("baseline")
    return baseline, build_plan(baseline, "prod")


def rules(groups: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for group in groups:
        yield from group["rules"]


def alerts(groups: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for r in rules(groups) if "alert" in r}


def selectors_read(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def matchers(vs: promql_parser.VectorSelector) -> dict[str, tuple[str, str]]:
    return {m.name: (str(m.op), m.value) for m in vs.matchers.matchers}


# --- promtool and the CRD. ---


def test_promtool_check_rules_with_every_lint(stack, run_promtool):
    config, plan = stack
    done = run_promtool(
        "check", "rules", "--lint=all", "--lint-fatal", "rules.yaml", files={"rules.yaml": rules_file(config, plan)}
    )
    assert "SUCCESS" in done.stdout


def test_promtool_would_catch_a_broken_rule(prod_config, prod_plan, run_promtool):
    groups = rule_groups(prod_config, prod_plan)
    groups[0]["rules"].append(dict(groups[0]["rules"][0]))  # a duplicate rule
    done = run_promtool(
        "check",
        "rules",
        "--lint=all",
        "--lint-fatal",
        "dup.yaml",
        files={"dup.yaml": {"groups": groups}},
        expect_ok=False,
    )
    assert done.returncode != 0
    groups = rule_groups(prod_config, prod_plan)
    groups[0]["rules"][0]["expr"] += " +"
    done = run_promtool("check", "rules", "bad.yaml", files={"bad.yaml": {"groups": groups}}, expect_ok=False)
    assert done.returncode != 0


def test_groups_are_a_valid_prometheus_rule_spec(stack):
    config, plan = stack
    obj = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "hyperstudy-memory", "namespace": config.kubernetes.namespace},
        "spec": {"groups": rule_groups(config, plan)},
    }
    model = PrometheusRule.model_validate(obj)
    # The models ignore unknown fields; a round trip that loses nothing proves there were none.
    assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == obj


# --- Determinism and the file form. ---


def test_rules_are_deterministic_and_the_file_holds_the_groups(prod_config, prod_plan):
    assert rule_groups(prod_config, prod_plan) == rule_groups(prod_config, prod_plan)
    text = rules_file(prod_config, prod_plan)
    assert text == rules_file(prod_config, prod_plan)
    assert yaml.safe_load(text) == {"groups": rule_groups(prod_config, prod_plan)}
    assert "|-\n" in text, "multi-line expressions are literal blocks"


def test_groups_and_intervals(prod_config, prod_plan):
    groups = {g["name"]: g for g in rule_groups(prod_config, prod_plan)}
    assert list(groups) == [RECORDING_GROUP, DAILY_GROUP, ALERTS_GROUP]
    daily = {r["record"] for r in groups[DAILY_GROUP]["rules"]}
    assert daily == {
        names.COST_MAX_1D,
        names.COST_AVG_1D,
        names.WORKING_SET_MAX_1D,
        names.WORKING_SET_AVG_1D,
        *DRIFT_DAILY,
    }
    # A day of a record: a range or a subquery over `1d`, or a ratio of two such records read at once.
    for rule in groups[DAILY_GROUP]["rules"]:
        assert "[1d]" in rule["expr"] or "[1d:5m]" in rule["expr"] or rule["record"] in DRIFT_DAILY_RATIOS, rule
    # The drift base is recorded at the scrape interval: the daily records read it, never cAdvisor's raw series.
    assert {r.get("record") for r in groups[RECORDING_GROUP]["rules"]} >= DRIFT_BASE
    daily_reads = {vs.name for r in groups[DAILY_GROUP]["rules"] for vs in selectors_read(r["expr"])}
    assert daily_reads.isdisjoint(contract.CONTRACT), daily_reads & set(contract.CONTRACT)
    assert groups[DAILY_GROUP]["interval"] == "5m"
    # The recording and alerting groups evaluate at the scrape interval, defined once for rules and scrape configs.
    assert names.SCRAPE_INTERVAL == "30s"
    assert groups[RECORDING_GROUP]["interval"] == groups[ALERTS_GROUP]["interval"] == names.SCRAPE_INTERVAL
    assert all("alert" in r for r in groups[ALERTS_GROUP]["rules"])
    assert not any("[1d]" in r["expr"] for r in groups[RECORDING_GROUP]["rules"])


# --- Names. ---


def test_recorded_names_follow_level_metric_operations_and_come_from_names(stack):
    config, plan = stack
    groups = rule_groups(config, plan)
    for rule in rules(groups):
        if "record" in rule:
            assert RECORD_NAME.match(rule["record"]), rule["record"]
            assert rule["record"] in RECORDING_NAMES
        else:
            assert ALERT_NAME.match(rule["alert"]) and rule["alert"] in ALERT_NAMES
    assert recorded_names(groups) == RECORDING_NAMES, "every recording rule of names.py is recorded"
    assert set(alerts(groups)) == (ALERT_NAMES if plan.schedule is not None else ALERT_NAMES - SCHEDULE_ALERTS)


def test_every_shape_has_slots_and_shapes_without_memory_are_left_out(staging_config, staging_plan, prod_config):
    assert "observers" in staging_config.capacity.shapes
    slots = [r for r in rules(rule_groups(staging_config, staging_plan)) if r.get("record") == names.SLOTS]
    shapes = {name for name, mix in staging_config.capacity.shapes.items() if mix.users}
    assert sorted(r["labels"]["shape"] for r in slots) == sorted(shapes)
    assert set(shape_bytes(staging_config)) == shapes
    formula = prod_config.capacity.formula
    assert shape_bytes(prod_config) == {
        name: formula.users_mib(mix) * 1048576 for name, mix in prod_config.capacity.shapes.items()
    }
    assert shape_bytes(prod_config)["medium"] == 200 * 1048576


def test_a_capacity_shape_without_memory_is_refused(prod_config, prod_plan):
    shapes = {**prod_config.capacity.shapes, "observers": UserMix()}
    config = prod_config.model_copy(
        update={
            "capacity": prod_config.capacity.model_copy(update={"shapes": shapes}),
            "monitoring": prod_config.monitoring.model_copy(update={"capacity_shape": "observers"}),
        }
    )
    with pytest.raises(ConfigError, match=r"monitoring\.capacity_shape"):
        rule_groups(config, prod_plan)


def test_without_a_formula_sized_workload_the_backend_rules_are_left_out(prod_config, run_promtool):
    backend = prod_config.workloads["backend"]
    static = WorkloadConfig.model_validate(
        {**backend.model_dump(by_alias=True), "sized_by": "config", "memory": {
            "optimized": {"request": "256Mi", "limit": "512Mi"}, "baseline": {"request": "512Mi", "limit": "1Gi"}}}
    )  # fmt: skip
    config = prod_config.model_copy(update={"workloads": {**prod_config.workloads, "backend": static}})
    plan = build_plan(config, "prod")
    groups = rule_groups(config, plan)
    recorded = recorded_names(groups)
    backend_records = {names.PREDICTED, names.SLOTS, names.PREDICTION_ACCURACY, names.MEMORY_BY_ROLE}
    assert not recorded & (backend_records | {names.BACKEND_HELD})
    assert recorded == RECORDING_NAMES - backend_records - {names.BACKEND_HELD}
    assert names.ALERT_CAPACITY_LOW not in alerts(groups) and names.ALERT_MEMORY_NEAR_LIMIT in alerts(groups)
    assert names.ALERT_PREDICTION_DRIFT not in alerts(groups)
    # Without a backend the pool's memory (and cost) is the other workloads' requests and what is unused.
    by_name = {rule_name(r): r["expr"] for r in rules(groups)}
    parts = by_name[names.POOL_MEMORY_BY_PART]
    assert re.findall(r'"role", "([a-z_]+)"', parts) == ["other_workloads", "unused"]
    assert names.BACKEND_HELD not in parts and names.PREDICTED not in parts
    assert "unless" not in by_name[names.OTHER_POOL_REQUESTS]
    run_promtool("check", "rules", "--lint=all", "--lint-fatal", "r.yaml", files={"r.yaml": rules_file(config, plan)})


# --- Alerts: metadata from config. ---


def test_every_alert_has_config_severity_for_and_annotations(stack):
    config, plan = stack
    for name, rule in alerts(rule_groups(config, plan)).items():
        settings = alert_settings(config, name)
        # The stack's name says which stack to plan and deploy from (`make plan STACK=<stack>`).
        assert rule["labels"] == {"severity": settings.severity, "stack": plan.stack}
        if name == names.ALERT_SCHEDULED_CAPACITY_NOT_READY:
            # The shortest scale-up lead of the windows plus its own `for` (the exact figures: below).
            lead = min(w.lead_minutes for w in config.capacity.schedule)
            assert rule["for"] == f"{lead}m" and settings.for_ == "0m"
        else:
            assert rule["for"] == settings.for_
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}
        assert annotations["summary"].strip() and annotations["description"].strip()
        assert annotations["runbook_url"] == config.monitoring.runbook_url.replace("{alert}", name)
        assert "{{" in annotations["description"], "the description names what fired"


def test_thresholds_and_sizes_come_from_config_and_plan(staging_config, staging_plan):
    groups = rule_groups(staging_config, staging_plan)
    rules_by_name = alerts(groups)
    a = staging_config.monitoring.alerts
    ns = 'namespace="study-staging"'
    assert staging_plan.stack == "staging"
    assert rules_by_name[names.ALERT_MEMORY_NEAR_LIMIT]["expr"] == (
        f"{names.CONTAINER_LIMIT_UTILISATION}{{{ns}}} > {a.memory_near_limit.threshold}"
    )
    drift = rules_by_name[names.ALERT_PREDICTION_DRIFT]["expr"]
    assert drift.startswith(f"{names.PREDICTION_ACCURACY}{{{ns}}} - 1 > {a.prediction_drift.threshold}\n")
    assert "abs(" not in drift, "only a pod above the prediction drifts"
    assert drift.endswith(
        f'sum by (namespace, pod) ({contract.CONNECTED_USERS}{{{ns}, pod=~"^(backend)-[0-9]+$"}}) > 0'
    ), "and only while it has users"
    assert rules_by_name[names.ALERT_CAPACITY_LOW]["expr"] == (
        f'{names.SLOTS}{{{ns}, shape="small"}} < {a.capacity_low.threshold:g}'
    )
    assert rules_by_name[names.ALERT_NODE_POOL_AT_MAX]["expr"].startswith(
        f"{names.NODES}{{{ns}}} >= {staging_plan.nodes.max - 1}\nunless on ()\n(\n"
    )
    assert stack_pool_name(staging_config) in rules_by_name[names.ALERT_NODE_POOL_AT_MAX]["annotations"]["description"]
    assert "(768 * 1048576)" in rules_by_name[names.ALERT_HEAP_NEAR_LIMIT]["expr"]
    # Slots are counted under the near-limit threshold, one record per shape that needs memory.
    slots = [r for r in rules(groups) if r.get("record") == names.SLOTS]
    sizes = shape_bytes(staging_config)
    assert len(slots) == len(sizes)
    for rule in slots:
        assert rule["labels"] == {"shape": rule["labels"]["shape"]}, "the namespace comes from the expression"
        assert rule["expr"].startswith("sum by (namespace) (\n")
        # The threshold as its exact fraction (0.8 → 4 / 5), applied to the limit.
        ratio = Fraction(repr(a.memory_near_limit.threshold))
        assert f"* {ratio.numerator} / {ratio.denominator}\n" in rule["expr"]
        assert f"/ {sizes[rule['labels']['shape']]}\n" in rule["expr"]
        assert rule["expr"].endswith('or\nlabel_replace(vector(0), "namespace", "study-staging", "", "")')
    by_name = {rule_name(r): r["expr"] for r in rules(groups)}
    base = staging_config.capacity.formula.base_mib * 1048576
    assert f"* {base},\n" in by_name[names.POOL_MEMORY_BY_PART]
    assert f'{names.NODE_POOL_LABEL}="{stack_pool_name(staging_config)}"' in by_name[names.NODES]
    text = rules_file(staging_config, staging_plan)
    assert 'namespace="hyperstudy"' not in text and 'namespace="study-staging"' in text
    assert "58.91" not in text and f"* {staging_plan.cost.node_usd_month}" in text


# --- Runbooks: the docs page each rendered runbook_url points at, and the README's index of them. ---

REPOSITORY_BLOB = "https://github.com/hyperstudy/hyperstudy-infra/blob/main/"


def github_anchor(heading: str) -> str:
    """GitHub's heading slug: lowercase, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_runbook_url_is_a_page_of_the_docs_with_its_three_sections(
    prod_config, prod_plan, scheduled_stack_config, scheduled_stack_plan
):
    # The Watchdog only where the evaluator has none of its own: the real staging stack (Managed Prometheus).
    staging = load_stack("staging", ROOT)
    rendered = {
        **alerts(rule_groups(prod_config, prod_plan)),
        **alerts(rule_groups(scheduled_stack_config, scheduled_stack_plan)),
        **alerts(rule_groups(staging, build_plan(staging, "staging"))),
    }
    assert set(rendered) == ALERT_NAMES | {names.WATCHDOG}, "every alert's runbook link is checked"
    text = README.read_text()
    index = text.split("\n## Alerts\n", 1)[1]
    headings = {github_anchor(h): h for h in re.findall(r"^### (.+)$", index, flags=re.M)}
    for name, rule in rendered.items():
        url = rule["annotations"]["runbook_url"]
        assert url == f"{REPOSITORY_BLOB}docs/runbooks/{name}.md", url
        page = (ROOT / url.removeprefix(REPOSITORY_BLOB)).read_text()
        assert page.startswith(f"# {name}\n"), name
        assert all(part in page for part in ("**Meaning.**", "**First checks.**", "**Fixes.**")), name
        # The README's Alerts section keeps a heading per alert (the anchors earlier releases linked to), each
        # leading to the same page.
        assert headings[github_anchor(name)] == name, f"no '### {name}' in {README.name}"
        section = index.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        assert f"(docs/runbooks/{name}.md)" in section, name
    assert set(headings) == {github_anchor(n) for n in rendered}
    assert {p.stem for p in (DOCS / "runbooks").glob("*.md")} - {"index"} == set(rendered), "a page per alert"


def test_runbook_url_is_a_template_of_the_alerts_name(prod_config, prod_plan):
    monitoring = prod_config.monitoring.model_copy(update={"runbook_url": "https://ops.example.org/rb/{alert}/"})
    config = prod_config.model_copy(update={"monitoring": monitoring})
    for name, rule in alerts(rule_groups(config, prod_plan)).items():
        assert rule["annotations"]["runbook_url"] == f"https://ops.example.org/rb/{name}/"


def test_the_node_loss_runbook_says_how_to_release_a_statefulsets_pod():
    page = (DOCS / "runbooks" / f"{names.ALERT_WORKLOAD_UNAVAILABLE}.md").read_text()
    assert "\n## A node that does not come back\n" in page
    assert "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute" in page
    assert "node.kubernetes.io/out-of-service-" in page, "and how to remove it"
    links = sum(p.read_text().count("#a-node-that-does-not-come-back)") for p in DOCS.rglob("*.md"))
    assert links >= 2


def test_docs_tables_list_the_contract_and_every_recording_rule():
    page = (DOCS / "monitoring" / "metric-contract.md").read_text()
    for metric in contract.CONTRACT:
        assert f"| `{metric}`" in page, metric
    records = (DOCS / "monitoring" / "recording-rules.md").read_text()
    for record in RECORDING_NAMES:
        assert f"| `{record}`" in records, record


# --- The metric contract and scoping, read from the PromQL AST. ---


def test_every_metric_read_is_recorded_here_or_in_the_contract(stack):
    config, plan = stack
    groups = rule_groups(config, plan)
    known = recorded_names(groups) | set(contract.CONTRACT)
    read = set()
    for rule in rules(groups):
        for vs in selectors_read(rule["expr"]):
            assert vs.name, f"selector without a metric name in {rule.get('record') or rule.get('alert')}"
            read.add(vs.name)
    assert read <= known, read - known


def rule_name(rule: dict[str, Any]) -> str:
    return rule.get("record") or rule["alert"]


def test_series_are_selected_by_namespace_and_metric_name_never_by_job(stack):
    """The issue's contract: by the stack's namespace and by metric name; whatever `job` the scrape gives them."""
    config, plan = stack
    equal = "MatchOp.Equal"
    groups = rule_groups(config, plan)
    recorded = recorded_names(groups)
    cluster_wide: set[tuple[str, str]] = set()
    # The drift base reads every container the plan sizes where its pods run: the chart's namespaces too, each
    # namespace's planned containers by name (and CPU requests beside memory ones).
    planned = dict(planned_containers(config, plan))
    drift_namespaces: set[str] = set()
    for rule in rules(groups):
        for vs in selectors_read(rule["expr"]):
            m = matchers(vs)
            where = f"{vs.name} in {rule_name(rule)}"
            assert "job" not in m, where
            raw = vs.name in contract.CONTRACT
            if raw and rule_name(rule) in DRIFT_BASE:
                namespace = m["namespace"][1]
                assert m["namespace"][0] == equal and namespace in planned, where
                pairs = {(x.name, str(x.op), x.value) for x in vs.matchers.matchers}
                assert ("container", "MatchOp.Re", f"^({'|'.join(planned[namespace])})$") in pairs, where
                resource = {names.CONTAINER_CPU_REQUEST: "cpu"}.get(rule_name(rule), "memory")
                if vs.name in (contract.REQUESTS, contract.LIMITS):
                    assert m.get("resource") == (equal, resource), where
                drift_namespaces.add(namespace)
                continue
            if vs.name in (contract.REQUESTS, contract.LIMITS, contract.NODE_ALLOCATABLE):
                assert m.get("resource") == (equal, "memory"), where
            if vs.name in NODE_LEVEL:
                allowed = {names.NODE_POOL_LABEL} if vs.name == contract.NODE_LABELS else {"resource"}
                assert set(m) <= allowed, f"{where}: node-level series by name (and resource or pool) alone"
                if vs.name == contract.NODE_LABELS:
                    # Every node label series is the stack's pool's: unfiltered, it would count every node.
                    assert m[names.NODE_POOL_LABEL] == (equal, stack_pool_name(config)), where
            elif "namespace" not in m:
                assert (rule_name(rule), vs.name) in CLUSTER_WIDE, f"{where}: read without the namespace"
                cluster_wide.add((rule_name(rule), vs.name))
            else:
                # A workload's series, or a record: every record carries the namespace, cluster-level ones too.
                assert m["namespace"] == (equal, config.kubernetes.namespace), where
            if vs.name == contract.POD_PHASE:
                assert m == {"phase": ("MatchOp.Re", "Pending|Running")}, f"{where}: the pods that hold room"
            if not raw:
                assert vs.name in recorded, where
    assert cluster_wide == CLUSTER_WIDE, "every series read cluster-wide is read so on purpose"
    assert drift_namespaces == set(planned), "every namespace with a planned container is read"
    assert not re.search(r"(?<!\w)job=", rules_file(config, plan))


def max_by_reads(expr: str) -> list[tuple[str, list[str] | None]]:
    """(metric, grouping labels) of every `max [by (...)] (<selector>)` of the expression; None without `by`."""
    found: list[tuple[str, list[str] | None]] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.AggregateExpr) and str(node.op) == "max":
            inner = node.expr
            while isinstance(inner, promql_parser.ParenExpr):
                inner = inner.expr
            if isinstance(inner, promql_parser.VectorSelector):
                found.append((inner.name, list(node.modifier.labels) if node.modifier is not None else None))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def test_node_level_and_cluster_wide_series_are_deduplicated(stack):
    """Two kube-state-metrics replicas or jobs export each node, pod and container twice: every node-level or
    cluster-wide read goes through `max by (<what identifies the series>)`, which collapses them."""
    config, plan = stack
    groups = rule_groups(config, plan)
    checked = set()
    for rule in rules(groups):
        reads = [
            vs for vs in selectors_read(rule["expr"]) if vs.name in KSM_IDENTITY and "namespace" not in matchers(vs)
        ]
        deduplicated = max_by_reads(rule["expr"])
        for vs in reads:
            identity = KSM_IDENTITY[vs.name]
            # `max(<allocatable>)`: the largest node, which a duplicate cannot change.
            plain_max = vs.name == contract.NODE_ALLOCATABLE and (vs.name, None) in deduplicated
            assert plain_max or (vs.name, identity) in deduplicated, f"{vs.name} in {rule_name(rule)}"
            checked.add(vs.name)
        counts = {name: sum(1 for vs in reads if vs.name == name) for name in KSM_IDENTITY}
        for name, count in counts.items():
            assert sum(1 for n, _ in deduplicated if n == name) >= count, f"{name} in {rule_name(rule)}"
    assert checked == set(KSM_IDENTITY)
    text = {rule_name(r): r["expr"] for r in rules(groups)}
    pool = f'{contract.NODE_LABELS}{{{names.NODE_POOL_LABEL}="{stack_pool_name(config)}"}}'
    # Each node of the pool once, 0 without any.
    assert f"count( max by (node) ({pool}) ) or vector(0)" in " ".join(text[names.NODES].split())


def test_memory_overcommit_reads_only_the_contract_in_the_mixin_form(stack):
    """Σ requests of Pending and Running pods − (Σ allocatable − max allocatable) > threshold, over every namespace
    and every node (not only the pool's), guarded against a one-node cluster."""
    config, plan = stack
    expr = alerts(rule_groups(config, plan))[names.ALERT_MEMORY_OVERCOMMIT]["expr"]
    assert {vs.name for vs in selectors_read(expr)} == {
        contract.REQUESTS,
        contract.NODE_ALLOCATABLE,
        contract.POD_PHASE,
    }
    assert {contract.POD_PHASE, contract.POD_INFO, contract.NODE_LABELS} <= set(contract.CONTRACT)
    # Requests count only for pods whose phase is Pending or Running (a phase series at 1), joined by pod.
    phase = f'(max by (namespace, pod) ({contract.POD_PHASE}{{phase=~"Pending|Running"}}) == 1)'
    requests = f'max by (namespace, pod, container) ({contract.REQUESTS}{{resource="memory"}})'
    assert re.search(rf"{re.escape(requests)}\s+\* on \(namespace, pod\) group_left \(\)\s+{re.escape(phase)}", expr)
    threshold = config.monitoring.alerts.memory_overcommit.threshold
    assert re.search(rf"\) > {threshold:g}\s+and on \(\)\s+\(sum\(max by \(node\)", expr), expr
    assert f'max({contract.NODE_ALLOCATABLE}{{resource="memory"}})) > 0' in expr


def test_the_heap_alert_reads_the_old_generation_against_each_ceiling(stack):
    """Each Node.js workload's old-generation spaces (not the young generation nor the read-only snapshot, which
    --max-old-space-size does not cap), each space once per pod, against its own ceiling."""
    config, plan = stack
    groups = rule_groups(config, plan)
    expr = alerts(groups)[names.ALERT_HEAP_NEAR_LIMIT]["expr"]
    read = selectors_read(expr)
    nodejs = {n for n, w in plan.workloads.items() if w.runtime.kind == "nodejs" and w.runtime.memory_mib}
    assert len(read) == len(nodejs)
    for vs in read:
        assert vs.name == contract.NODEJS_HEAP_SPACE_USED
        assert matchers(vs)["space"] == ("MatchOp.NotRe", NOT_OLD_GENERATION)
    assert max_by_reads(expr) == [(contract.NODEJS_HEAP_SPACE_USED, ["namespace", "pod", "space"])] * len(nodejs)
    for name in nodejs:
        assert f"/ ({plan.workloads[name].runtime.memory_mib} * 1048576)" in expr
    assert not any(vs.name == contract.NODEJS_HEAP_USED for r in rules(groups) for vs in selectors_read(r["expr"]))


def test_the_pool_label_is_the_one_gke_sets_as_kube_state_metrics_exports_it(
    prod_config, prod_plan, staging_config, staging_plan
):
    """`label_` and GKE's node pool label key with every character outside [a-zA-Z0-9_] replaced by `_`; its value
    the pool name the program gives the stack's pool."""
    exported = "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", GKE_NODE_POOL_LABEL)
    assert exported == names.NODE_POOL_LABEL
    assert GKE_NODE_POOL_LABEL == "cloud.google.com/gke-nodepool"
    for config, plan in ((prod_config, prod_plan), (staging_config, staging_plan)):
        assert build_selectors(config, plan).pool == stack_pool_name(config)


def test_cluster_level_records_carry_the_stack_namespace(stack):
    """The records computed from node-level or cluster-wide series are labelled with the namespace (0 when there is
    nothing to count); the others inherit it and read it back."""
    config, plan = stack
    namespace = config.kubernetes.namespace
    groups = rule_groups(config, plan)
    assert CLUSTER_LEVEL.issubset(recorded_names(groups))
    by_name = {rule_name(r): r for r in rules(groups)}
    for name in LABELLED_WITH_NAMESPACE:
        expr = by_name[name]["expr"]
        assert expr.startswith("label_replace(\n") and expr.endswith(f'  "namespace", "{namespace}", "", ""\n)'), name
        assert "\n  or vector(0),\n" in expr, f"{name}: 0 rather than no series"
    for name in CLUSTER_LEVEL - LABELLED_WITH_NAMESPACE:
        # Every other cluster-level record is computed from one that carries the namespace label.
        assert f'{{namespace="{namespace}"}}' in by_name[name]["expr"], name
    node_pool = by_name[names.ALERT_NODE_POOL_AT_MAX]["expr"]
    assert node_pool.startswith(f'{names.NODES}{{namespace="{namespace}"}} >= ')


def test_cadvisor_selectors_drop_the_pod_cgroup_and_the_pause_container(prod_config, prod_plan):
    for rule in rules(rule_groups(prod_config, prod_plan)):
        for vs in selectors_read(rule["expr"]):
            if vs.name == contract.WORKING_SET:
                pairs = {(m.name, str(m.op), m.value) for m in vs.matchers.matchers}
                assert {("container", "MatchOp.NotEqual", ""), ("container", "MatchOp.NotEqual", "POD")} <= pairs


def test_every_vector_join_names_its_labels(stack):
    """Arithmetic, comparison and `and` between two vectors say `on (...)`, so extra scrape labels cannot break them."""
    config, plan = stack
    joins = 0
    for rule in rules(rule_groups(config, plan)):
        for node in vector_binary_ops(promql_parser.parse(rule["expr"])):
            if str(node.op).strip() == "or":
                continue  # a union: series of both sides are kept, there is nothing to match
            joins += 1
            matching = node.modifier.matching if node.modifier is not None else None
            assert matching is not None and str(matching.type) == "LabelModifierType.Include", (
                f"{node.op} without on (...) in {rule_name(rule)}"
            )
    assert joins >= 10


def vector_binary_ops(expr: Any) -> list[Any]:
    found = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.BinaryExpr) and is_vector(node.lhs) and is_vector(node.rhs):
            found.append(node)

    promql_parser.walk(expr, visit)
    return found


def is_vector(node: Any) -> bool:
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    if isinstance(node, promql_parser.NumberLiteral):
        return False
    if isinstance(node, promql_parser.Call) and str(node.func.return_type) == "ValueType.Scalar":
        return False  # time(): a scalar, nothing to match
    if isinstance(node, promql_parser.BinaryExpr):
        return is_vector(node.lhs) or is_vector(node.rhs)
    if isinstance(node, promql_parser.UnaryExpr):
        return is_vector(node.expr)
    return True


# --- Scheduled capacity (capacity.schedule). ---
# The series the schedule's alerts read, and the labels that identify one: two kube-state-metrics replicas or jobs
# export each twice, so each is read through `max by (<these>)`.
SCHEDULE_IDENTITY = {
    contract.STATEFULSET_REPLICAS: ["namespace", "statefulset"],
    contract.STATEFULSET_READY: ["namespace", "statefulset"],
    contract.JOB_FAILED: ["namespace", "job_name"],
    contract.JOB_PODS_FAILED: ["namespace", "job_name"],
    contract.JOB_PODS_SUCCEEDED: ["namespace", "job_name"],
    contract.JOB_START_TIME: ["namespace", "job_name"],
    contract.CRONJOB_NEXT_SCHEDULE_TIME: ["namespace", "cronjob"],
    contract.CRONJOB_SUSPENDED: ["namespace", "cronjob"],
    contract.CRONJOB_LAST_SCHEDULE_TIME: ["namespace", "cronjob"],
    contract.CRONJOB_LAST_SUCCESS_TIME: ["namespace", "cronjob"],
}
# The StatefulSet series every stack reads too (HyperStudyWorkloadUnavailable).
WORKLOAD_SERIES = {contract.STATEFULSET_REPLICAS, contract.STATEFULSET_READY}


def without_schedule(config: StackConfig) -> StackConfig:
    return config.model_copy(update={"capacity": config.capacity.model_copy(update={"schedule": ()})})


def with_alert(config: StackConfig, key: str, settings: Alert) -> StackConfig:
    changed = config.monitoring.alerts.model_copy(update={key: settings})
    return config.model_copy(update={"monitoring": config.monitoring.model_copy(update={"alerts": changed})})


def test_a_stack_without_a_schedule_renders_the_rules_it_did(scheduled_stack_config, scheduled_stack_plan):
    """The schedule adds its two alerts and changes nothing else: the same stack without windows renders exactly the
    rules minus those two (prod, which has none, was compared byte for byte before and after the change)."""
    config = without_schedule(scheduled_stack_config)
    plan = build_plan(config, "staging")
    assert plan.schedule is None
    scheduled = rule_groups(scheduled_stack_config, scheduled_stack_plan)
    assert set(alerts(scheduled)) - set(alerts(rule_groups(config, plan))) == SCHEDULE_ALERTS
    for group in scheduled:
        group["rules"] = [r for r in group["rules"] if r.get("alert") not in SCHEDULE_ALERTS]
    assert rule_groups(config, plan) == scheduled


def test_prod_has_no_schedule_and_reads_none_of_its_series(prod_config, prod_plan):
    assert not prod_config.capacity.schedule and prod_plan.schedule is None
    text = rules_file(prod_config, prod_plan)
    for name in (*SCHEDULE_ALERTS, *(set(SCHEDULE_IDENTITY) - WORKLOAD_SERIES)):
        assert name not in text, name


def test_the_not_ready_alert_compares_desired_and_ready_replicas_of_the_backend(
    scheduled_stack_config, scheduled_stack_plan
):
    """Desired − ready above the threshold, only while the desired replicas are above the configured ones (a
    scale-up holds them there): a pod not ready outside the windows is not a window starting short."""
    rule = alerts(rule_groups(scheduled_stack_config, scheduled_stack_plan))[names.ALERT_SCHEDULED_CAPACITY_NOT_READY]
    ns, sts = 'namespace="study-staging"', 'statefulset="backend"'
    schedule = scheduled_stack_plan.schedule
    assert schedule.workload == "backend"
    assert schedule.base_replicas == scheduled_stack_plan.workloads["backend"].replicas == 2
    desired = f"max by (namespace, statefulset) ({contract.STATEFULSET_REPLICAS}{{{ns}, {sts}}})"
    assert rule["expr"] == (
        f"{desired}\n"
        "- on (namespace, statefulset)\n"
        f"max by (namespace, statefulset) ({contract.STATEFULSET_READY}{{{ns}, {sts}}})\n"
        "> 0\n"
        "and on (namespace, statefulset)\n"
        f"{desired}\n"
        "> 2"
    )
    # `and` binds looser than `-` and `>`: (desired − ready > 0) and (desired > 2), the value desired − ready.
    top = promql_parser.parse(rule["expr"])
    assert str(top.op).strip() == "and" and str(top.rhs.op).strip() == ">" and str(top.lhs.op).strip() == ">"
    assert "above its configured 2;" in rule["annotations"]["description"]
    # The shortest lead of the windows: open-day's 12 minutes, not teaching-lab's 25 nor the default 10.
    assert sorted(w.lead_minutes for w in scheduled_stack_config.capacity.schedule) == [12, 25]
    assert rule["for"] == "12m"
    assert rule["labels"] == {"severity": "critical", "stack": "staging"}
    assert "teaching-lab, open-day" in rule["annotations"]["description"]


def test_the_not_ready_pending_time_is_the_shortest_lead_plus_its_own_for(
    scheduled_stack_config, scheduled_stack_plan, prod_config
):
    """The pods have the scale-up's lead to become ready; the alert's own `for` (0m by default) adds to it."""
    config = with_alert(
        scheduled_stack_config, "scheduled_capacity_not_ready", Alert(threshold=1, for_="3m30s", severity="warning")
    )
    rule = alerts(rule_groups(config, scheduled_stack_plan))[names.ALERT_SCHEDULED_CAPACITY_NOT_READY]
    assert rule["for"] == "15m30s" and "\n> 1\nand on (namespace, statefulset)\n" in rule["expr"]
    assert rule["labels"] == {"severity": "warning", "stack": "staging"}
    # The real staging stack: the teaching lab's default 10 minutes, shorter than the open day's 20.
    staging = load_stack("staging", ROOT)
    assert [w.lead_minutes for w in staging.capacity.schedule] == [10, 20]
    assert scheduled_not_ready_for(staging) == "10m"
    # A window scaled at its very start leaves no time: the alert's own `for` is all there is.
    at_start = scheduled_config(prod_config, [SCHEDULE[0], {**SCHEDULE[1], "lead_minutes": 0}])
    assert scheduled_not_ready_for(at_start) == "0m"
    five = with_alert(at_start, "scheduled_capacity_not_ready", Alert(threshold=0, for_="5m"))
    assert scheduled_not_ready_for(five) == "5m"


def test_prometheus_durations_round_trip():
    assert duration_seconds("1h30m") == 5400 and duration_seconds("10m30s") == 630 and duration_seconds("0") == 0
    assert duration_seconds("1d") == 86400 and duration_seconds("250ms") == 0.25 and duration_seconds("2w") == 1209600
    assert [duration_text(s) for s in (0, 600, 630, 5400, 0.25)] == ["0m", "10m", "10m30s", "1h30m", "250ms"]


def test_the_scaling_alert_selects_the_scaler_jobs_of_the_windows(scheduled_stack_config, scheduled_stack_plan):
    pattern = scaler_job_regex(scheduled_stack_plan)
    assert pattern == "^backend-(teaching-lab|open-day)-(?:up|down)-.+$"
    # The CronJob controller's runs (`<cronjob>-<minutes since the epoch>`), and a run started by hand.
    for job, window in (
        ("backend-teaching-lab-up-29412345", "teaching-lab"),
        ("backend-open-day-down-29412345", "open-day"),
        ("backend-teaching-lab-up-manual", "teaching-lab"),
    ):
        match = re.fullmatch(pattern, job)
        assert match and match.group(1) == window, job
    for job in (
        "backend-nightly-up-29412345",  # no window of this stack
        "redis-teaching-lab-up-29412345",  # another workload
        "backend-teaching-lab-29412345",  # neither up nor down
        "backend-teaching-lab-up",  # the CronJob's own name, never a Job's
        "xbackend-teaching-lab-up-1",
    ):
        assert not re.fullmatch(pattern, job), job
    rule = alerts(rule_groups(scheduled_stack_config, scheduled_stack_plan))[names.ALERT_SCHEDULED_SCALING_FAILED]
    expr = rule["expr"]
    cronjobs = scaler_cronjob_regex(scheduled_stack_plan)
    assert cronjobs == "^backend-(teaching-lab|open-day)-(?:up|down)$"
    # Every part is labelled with its CronJob; the window comes from that, once, outermost.
    assert expr.startswith("label_replace(\n") and expr.endswith(f'"window", "$1", "cronjob", "{cronjobs}"\n)')
    job_cronjob = "^(backend-(?:teaching-lab|open-day)-(?:up|down))-.+$"
    assert f'"cronjob", "$1", "job_name", "{job_cronjob}"' in expr
    assert re.fullmatch(job_cronjob, "backend-teaching-lab-up-29412345").group(1) == "backend-teaching-lab-up"
    assert re.findall(r'"reason", "([a-z]+)", "", ""', expr) == [
        "failed",
        "unfinished",
        "missed",
        "suspended",
        "missing",
    ]
    read = {}
    for vs in selectors_read(expr):
        read.setdefault(vs.name, []).append(matchers(vs))
    assert set(read) == {
        contract.JOB_FAILED,
        contract.JOB_PODS_FAILED,
        contract.JOB_PODS_SUCCEEDED,
        contract.JOB_START_TIME,
        contract.CRONJOB_LAST_SCHEDULE_TIME,
        contract.CRONJOB_LAST_SUCCESS_TIME,
        contract.CRONJOB_NEXT_SCHEDULE_TIME,
        contract.CRONJOB_SUSPENDED,
        contract.STATEFULSET_REPLICAS,
    }
    # The failing Jobs are read twice: as `failed`, and to leave `unfinished` to the runs none of them explains.
    for name in (contract.JOB_FAILED, contract.JOB_PODS_FAILED, contract.JOB_PODS_SUCCEEDED, contract.JOB_START_TIME):
        for m in read[name]:
            assert m["namespace"] == ("MatchOp.Equal", "study-staging") and m["job_name"] == ("MatchOp.Re", pattern)
        assert len(read[name]) == 2, name
    assert all(m["condition"] == ("MatchOp.Equal", "true") for m in read[contract.JOB_FAILED])
    # Failed, or pods failed while none succeeded (a Job still retrying): a retried pod that then succeeded is not.
    assert "== 1\n      or\n" in expr and "> 0\n        unless on (namespace, job_name)\n" in expr
    # Missed: due more than twice the starting deadline ago; suspended: spec.suspend.
    (m,) = read[contract.CRONJOB_NEXT_SCHEDULE_TIME]
    assert m == {"namespace": ("MatchOp.Equal", "study-staging"), "cronjob": ("MatchOp.Re", cronjobs)}
    assert SCALER_MISSED_AFTER_SECONDS == 600
    assert (
        f'time() - max by (namespace, cronjob) ({contract.CRONJOB_NEXT_SCHEDULE_TIME}{{namespace="study-staging", '
        f'cronjob=~"{cronjobs}"}}) > 600,' in expr
    )
    suspended, *absent = read[contract.CRONJOB_SUSPENDED]
    assert suspended == m
    assert f'cronjob=~"{cronjobs}"}}) == 1,\n' in expr
    # Missing: one absent() per CronJob the plan's actions run (the open day's replicas fit the configured 2: it
    # has no CronJob), while kube-state-metrics reports the StatefulSet they scale.
    assert expected_cronjobs(scheduled_stack_plan) == ("backend-teaching-lab-up", "backend-teaching-lab-down")
    assert absent == [
        {"namespace": ("MatchOp.Equal", "study-staging"), "cronjob": ("MatchOp.Equal", name)}
        for name in expected_cronjobs(scheduled_stack_plan)
    ]
    assert expr.count("absent(") == 2
    assert (
        "\n    )\n    and on (namespace)\n    max by (namespace, statefulset) "
        f'({contract.STATEFULSET_REPLICAS}{{namespace="study-staging", statefulset="backend"}}),\n' in expr
    )
    assert rule["for"] == "2m" and rule["labels"] == {"severity": "warning", "stack": "staging"}


def test_the_missed_run_margin_is_beyond_the_cronjobs_starting_deadline():
    """A run the controller starts late, but within its starting deadline, never counts as missed."""
    from components.schedule import STARTING_DEADLINE_SECONDS

    assert SCALER_MISSED_AFTER_SECONDS == 2 * STARTING_DEADLINE_SECONDS


def test_each_cronjob_is_judged_by_its_latest_run(scheduled_stack_config, scheduled_stack_plan):
    """The latest run's scheduled time, unless a Job of the CronJob succeeded at or after it: only then may its Jobs
    (those started at or after that time) fire `failed`, and without a failing Job, `unfinished` once the run is past
    the latest it could succeed, its starting plus its active deadline (the CronJobs' own, not retyped)."""
    from components.schedule import ACTIVE_DEADLINE_SECONDS, STARTING_DEADLINE_SECONDS

    rule = alerts(rule_groups(scheduled_stack_config, scheduled_stack_plan))[names.ALERT_SCHEDULED_SCALING_FAILED]
    expr = " ".join(rule["expr"].split())
    cronjobs = 'namespace="study-staging", cronjob=~"^backend-(teaching-lab|open-day)-(?:up|down)$"'
    scheduled = f"max by (namespace, cronjob) ({contract.CRONJOB_LAST_SCHEDULE_TIME}{{{cronjobs}}})"
    succeeded = f"max by (namespace, cronjob) ({contract.CRONJOB_LAST_SUCCESS_TIME}{{{cronjobs}}})"
    unsettled = f"{scheduled} unless on (namespace, cronjob) ( {succeeded} >= on (namespace, cronjob) {scheduled} )"
    # Once as the Jobs' reference and twice in `unfinished` (its age, and the Jobs that already explain it).
    assert expr.count(unsettled) == 3
    started = f'max by (namespace, job_name) ({contract.JOB_START_TIME}{{namespace="study-staging"'
    assert expr.count(f"label_replace( {started}") == 2
    assert ") >= on (namespace, cronjob) group_left () ( " + unsettled in expr
    deadline = STARTING_DEADLINE_SECONDS + ACTIVE_DEADLINE_SECONDS
    assert f"time() - ( {unsettled} ) > {deadline} unless on (namespace, cronjob)" in expr
    # The job-level failure and the run's Jobs are matched job by job.
    assert expr.count(") and on (namespace, job_name) ( label_replace(") == 2
    description = rule["annotations"]["description"]
    assert "its latest run, due {{ $value | humanizeDuration }} ago, has not succeeded within 10m (its 300 s" in (
        description
    )


# --- Node loss, upgrades and the heartbeat. ---


def test_the_pool_at_max_is_silent_while_the_pool_upgrades(stack):
    """At its maximum, unless one of the pool's nodes is cordoned or the pool's nodes run two kubelet versions (a
    surge upgrade): both read from the pool's nodes only (by the pool label), each node once."""
    config, plan = stack
    expr = alerts(rule_groups(config, plan))[names.ALERT_NODE_POOL_AT_MAX]["expr"]
    pool = f'max by (node) ({contract.NODE_LABELS}{{{names.NODE_POOL_LABEL}="{stack_pool_name(config)}"}})'
    at = plan.nodes.max - config.monitoring.alerts.node_pool_at_max.threshold
    assert " ".join(expr.split()) == (
        f'{names.NODES}{{namespace="{config.kubernetes.namespace}"}} >= {at:g} unless on () ( '
        f"count( count by (kubelet_version) ( max by (node, kubelet_version) ({contract.NODE_INFO}) "
        f"* on (node) group_left () {pool} ) ) > 1 "
        f"or count( max by (node) ({contract.NODE_UNSCHEDULABLE}) * on (node) group_left () {pool} == 1 ) > 0 )"
    )
    top = promql_parser.parse(expr)
    assert str(top.op).strip() == "unless" and list(top.modifier.matching.labels) == []


def test_workload_unavailable_watches_every_app_workload_by_its_kind(stack):
    """Every workload of the stack's config (not the charts'), its StatefulSet's ready or its Deployment's available
    replicas against its desired ones, each deduplicated, at or below the configured ratio, labelled `workload`."""
    config, plan = stack
    rule = alerts(rule_groups(config, plan))[names.ALERT_WORKLOAD_UNAVAILABLE]
    settings = config.monitoring.alerts.workload_unavailable
    assert (settings.threshold, settings.for_, settings.severity) == (0, "2m", "critical")
    expr = rule["expr"]
    kinds = {"statefulset": "StatefulSet", "deployment": "Deployment"}
    for label, kind in kinds.items():
        expected = sorted(n for n, w in config.workloads.items() if w.app.kind == kind)
        for vs in selectors_read(expr):
            m = matchers(vs)
            if label in m:
                assert m["namespace"] == ("MatchOp.Equal", config.kubernetes.namespace)
                assert sorted(m[label][1].strip("^$()").split("|")) == expected, vs.name
    reads = max_by_reads(expr)
    assert sorted(reads) == sorted(
        [
            (contract.STATEFULSET_READY, ["namespace", "statefulset"]),
            (contract.STATEFULSET_REPLICAS, ["namespace", "statefulset"]),
            (contract.DEPLOYMENT_AVAILABLE, ["namespace", "deployment"]),
            (contract.DEPLOYMENT_REPLICAS, ["namespace", "deployment"]),
        ]
    )
    assert expr.count("> 0)\n  <= 0,\n") == 2, "ready ÷ desired (while any is desired) at or below 0"
    assert expr.count('"workload", "$1", ') == 2
    assert set(config.workloads) - set(plan.workloads) == set(), "the app's workloads are the plan's"
    assert not any(c in expr for c in ("prometheus", "grafana", "cert-manager")), "the charts' pods are not the app's"


def test_the_workload_unavailable_ratio_comes_from_config(prod_config, prod_plan):
    config = with_alert(prod_config, "workload_unavailable", Alert(threshold=0.5, for_="5m"))
    rule = alerts(rule_groups(config, prod_plan))[names.ALERT_WORKLOAD_UNAVAILABLE]
    assert rule["expr"].count("<= 0.5,") == 2 and rule["for"] == "5m" and rule["labels"]["severity"] == "warning"


def test_the_watchdog_ships_only_where_the_evaluator_has_none(prod_config, prod_plan):
    """kube-prometheus-stack evaluates its own Watchdog: the operator's rules carry none. Managed Prometheus has no
    rule of its own: its groups carry one, always firing, severity none, with the stack's namespace and runbook."""
    assert names.WATCHDOG not in alerts(rule_groups(prod_config, prod_plan))
    staging = load_stack("staging", ROOT)
    assert staging.monitoring.managed_prometheus and not staging.monitoring.prometheus_operator
    rule = alerts(rule_groups(staging, build_plan(staging, "staging")))[names.WATCHDOG]
    assert rule["expr"] == 'label_replace(vector(1), "namespace", "hyperstudy-staging", "", "")'
    assert "for" not in rule and rule["labels"] == {"severity": "none", "stack": "staging"}
    assert rule["annotations"]["runbook_url"] == staging.monitoring.runbook_url.replace("{alert}", names.WATCHDOG)
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


def test_without_scaling_actions_no_cronjob_is_expected(prod_config):
    """Windows the configured replicas hold get no CronJobs: the alert expects none to exist."""
    small = {**SCHEDULE[1], "experiments": {"small": 1}}
    config = scheduled_config(prod_config, [small])
    plan = build_plan(config, "staging")
    assert plan.schedule is not None and plan.schedule.actions == ()
    assert expected_cronjobs(plan) == ()
    expr = alerts(rule_groups(config, plan))[names.ALERT_SCHEDULED_SCALING_FAILED]["expr"]
    assert "absent(" not in expr and '"missing"' not in expr and '"suspended"' in expr


def test_scaler_jobs_are_told_apart_longest_window_first(prod_config):
    """Windows `lab` and `lab-up`: `backend-lab-up-up-…` is lab-up's scale-up, `backend-lab-up-…` lab's."""
    lab = {**SCHEDULE[0], "name": "lab"}
    lab_up = {**SCHEDULE[0], "name": "lab-up", "weekly": {**SCHEDULE[0]["weekly"], "days": ["thu"]}}
    config = scheduled_config(prod_config, [lab, lab_up])
    pattern = scaler_job_regex(build_plan(config, "staging"))
    assert pattern == "^backend-(lab-up|lab)-(?:up|down)-.+$"
    assert re.fullmatch(pattern, "backend-lab-up-up-29412345").group(1) == "lab-up"
    assert re.fullmatch(pattern, "backend-lab-up-29412345").group(1) == "lab"


def absent_reads(expr: str) -> list[promql_parser.VectorSelector]:
    """The selectors read by `absent()`: whether any series exists, which duplicates cannot change."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.Call) and node.func.name == "absent":
            found.extend(selectors_read(str(node.args[0])))

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def test_the_schedule_series_are_read_by_namespace_and_deduplicated(scheduled_stack_config, scheduled_stack_plan):
    """Each kube-state-metrics series the schedule's alerts read is the stack's namespace's, through `max by` over
    what identifies it, so two kube-state-metrics replicas or jobs give one value (or by `absent()`, whose answer
    duplicates cannot change)."""
    groups = rule_groups(scheduled_stack_config, scheduled_stack_plan)
    seen = set()
    for name in SCHEDULE_ALERTS:
        expr = alerts(groups)[name]["expr"]
        deduplicated = max_by_reads(expr)
        absent = [str(vs) for vs in absent_reads(expr)]
        for vs in selectors_read(expr):
            assert vs.name in SCHEDULE_IDENTITY, vs.name
            assert matchers(vs)["namespace"] == ("MatchOp.Equal", "study-staging")
            if str(vs) in absent:
                assert set(matchers(vs)) == set(SCHEDULE_IDENTITY[vs.name]), f"absent({vs}): one object"
            else:
                assert (vs.name, SCHEDULE_IDENTITY[vs.name]) in deduplicated, f"{vs.name} in {name}"
            seen.add(vs.name)
    assert seen == set(SCHEDULE_IDENTITY) and set(SCHEDULE_IDENTITY) <= set(contract.CONTRACT)


# --- Selectors. ---


def test_pod_regexes_put_the_longest_workload_first():
    assert longest_first(["pod", "backend", "pod-router", "redis"]) == ("pod-router", "backend", "redis", "pod")
    assert statefulset_pod_regex(["backend"]) == "^(backend)-[0-9]+$"
    assert pod_regex(["pod", "pod-router"]).startswith("^(pod-router|pod)-")
    with pytest.raises(ValueError):
        pod_regex([])
    assert real_containers() == ('container!=""', 'container!="POD"')
    assert label_replace_workload("up", ["a"]).startswith('label_replace(up, "workload", "$1", "pod", "^(a)-')


def test_selectors_come_from_the_config_and_plan(prod_config, prod_plan, staging_config, staging_plan):
    s = build_selectors(prod_config, prod_plan)
    assert s.ns == 'namespace="hyperstudy"'
    assert s.pool == stack_pool_name(prod_config)
    assert s.backend == ("backend",) and s.backend_pods == 'pod=~"^(backend)-[0-9]+$"'
    assert set(s.workloads) == set(prod_plan.workloads)
    assert s.workloads.index("pod-router") < s.workloads.index("backend")
    assert s.ksm("m", namespaced=False) == "m"
    assert s.ksm("m", 'resource="memory"') == 'm{namespace="hyperstudy", resource="memory"}'
    assert s.cadvisor("m") == 'm{namespace="hyperstudy", container!="", container!="POD"}'
    assert build_selectors(staging_config, staging_plan).ns == 'namespace="study-staging"'


def test_the_mib_constant_is_sizings_own():
    """Bytes per MiB come from `sizing.core.quantity.MIB_BYTES`: no module of the monitoring types it again."""
    package = ROOT / "components" / "monitoring"
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        for literal in ("1048576", "1024 * 1024", "1024*1024", "2**20", "2 ** 20"):
            assert literal not in text, f"{path.relative_to(ROOT)} types the MiB constant ({literal})"


def test_the_monitoring_package_imports_no_pulumi():
    code = (
        "import sys; import monitoring.rules, monitoring.selectors, monitoring.alertmanager, monitoring.dashboards; "
        "sys.exit(1 if any(m == 'pulumi' or m.startswith('pulumi.') for m in sys.modules) else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr or "pulumi was imported"


def test_slots_are_exact_where_the_threshold_times_the_limit_is_a_whole_byte(prod_config, prod_plan, run_promtool):
    """0.7 × 2880 MiB is 2016 MiB exactly, 200 MiB above a 1816 MiB working set: one slot, as
    `sizing.core.capacity.slots` counts it. In floating point 0.7 × 3019898880 bytes is 2113929215.9999998, a byte
    short, which floored to 0."""
    s = build_selectors(prod_config, prod_plan)
    mib = 1048576
    assert slots(2880, 1816, 200, 0.7) == 1
    pod = {"namespace": s.namespace, "pod": "backend-0", "container": "backend"}

    def series(metric: str, value: int, **labels: str) -> dict[str, str]:
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted({**pod, **labels}.items()))
        return {"series": f"{metric}{{{inner}}}", "values": f"{value}x10"}

    tests = {
        "rule_files": ["slots.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    series(contract.LIMITS, 2880 * mib, resource="memory"),
                    series(contract.WORKING_SET, 1816 * mib),
                ],
                "promql_expr_test": [
                    {
                        "expr": "test:slots",
                        "eval_time": "5m",
                        "exp_samples": [{"labels": f'test:slots{{namespace="{s.namespace}"}}', "value": 1}],
                    }
                ],
            }
        ],
    }
    rules = {"groups": [{"name": "slots", "rules": [{"record": "test:slots", "expr": slots_expr(s, 200 * mib, 0.7)}]}]}
    run_promtool("test", "rules", "tests.yaml", files={"slots.yaml": rules, "tests.yaml": tests})


def test_the_table_of_alerts_holds_each_alert_setting_once(prod_config, prod_plan, staging_config):
    """Every `monitoring.alerts` key has one alert spec and every spec one key; what renders is the table's alerts
    in its order (plus the Watchdog for Managed Prometheus), so a spec left out of the table shows here."""
    from monitoring.rules import ALERTS
    from sizing.config.monitoring import AlertsConfig

    assert sorted(SETTINGS.values()) == sorted(AlertsConfig.model_fields)
    assert len(SETTINGS) == len(ALERTS) == len(AlertsConfig.model_fields)
    order = [spec.name for spec in ALERTS]
    for config in (prod_config, staging_config):
        plan = build_plan(config, "x")
        rendered = [r["alert"] for g in rule_groups(config, plan) for r in g["rules"] if "alert" in r]
        expected = [name for name in order if name in rendered]
        assert rendered == expected + ([names.WATCHDOG] if config.monitoring.managed_prometheus else [])
        for rule in (r for g in rule_groups(config, plan) for r in g["rules"] if r.get("alert") in SETTINGS):
            settings = alert_settings(config, rule["alert"])
            assert rule["labels"]["severity"] == settings.severity
