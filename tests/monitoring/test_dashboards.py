"""The Grafana dashboards: uids and titles stable per stack and distinct between stacks, links within the stack,
deterministic JSON, the datasource variable everywhere, queries that
parse and read only contract metrics or recorded rules, windows from `$__rate_interval`, a grid without overlaps,
units on every panel, and the plan's and config's numbers flowing into the JSON."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import promql_parser
import pytest

from monitoring import names
from monitoring.dashboards import SLUGS, dashboard_json, dashboards, uids
from monitoring.dashboards.capacity import REPLICAS_TITLE, SCHEDULE_ROW, WINDOWS_TITLE
from monitoring.dashboards.common import MAX_UID_LENGTH, TITLES
from monitoring.dashboards.memory import OOM_TILE_WINDOW
from monitoring.rules import recorded_names, rule_groups
from monitoring.selectors import planned_containers
from sizing.config.capacity import UserMix
from sizing.config.loader import load_stack
from sizing.config.monitoring import Alert
from sizing.core.errors import ConfigError
from sizing.core.quantity import MIB_BYTES as MIB
from sizing.observe import contract
from sizing.plan.build import build_plan
from tests.monitoring.conftest import SCHEDULE, scheduled_config

ROOT = Path(__file__).resolve().parents[2]
# prod's namespace is `hyperstudy`: its uids and titles are what they always were.
EXPECTED = {
    "hyperstudy-memory": "HyperStudy / Memory Monitoring",
    "hyperstudy-capacity": "HyperStudy / Capacity Planning",
    "hyperstudy-cost": "HyperStudy / Cost Analysis",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
VALUE_PANELS = {"timeseries", "stat", "gauge"}
UNITS = {"bytes", "percentunit", "currencyUSD", "short"}
# Recording rules follow level:metric:operations, the only names in names.py with two colons.
RULES = {v for k, v in vars(names).items() if k.isupper() and isinstance(v, str) and v.count(":") == 2}
READABLE = set(contract.CONTRACT) | RULES
# A window nobody types by hand: a rate()/increase() whose range parses to it came from $__rate_interval.
RATE_SENTINEL, RATE_SENTINEL_DELTA = "17m17s", timedelta(minutes=17, seconds=17)


# --- helpers ---
def panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in model["panels"]:
        yield panel
        yield from panel.get("panels", [])


def value_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(model) if p["type"] != "row"]


def exprs(model: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in value_panels(model) for t in p.get("targets", [])]


def panel(model: dict[str, Any], title: str) -> dict[str, Any]:
    found = [p for p in panels(model) if p.get("title") == title]
    assert len(found) == 1, f"{len(found)} panels titled {title!r}"
    return found[0]


def steps(p: dict[str, Any]) -> list[float]:
    return [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"] if s["value"] is not None]


def substitute(expr: str, rate_interval: str = "5m") -> str:
    """Grafana's variables replaced by literals so a PromQL parser can read the query."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__interval", "1m").replace("$__range", "1h")
    return re.sub(r"\$\{?\w+\}?", "hyperstudy", expr)


def nodes(expr: str, rate_interval: str = "5m") -> list[Any]:
    found: list[Any] = []
    promql_parser.walk(promql_parser.parse(substitute(expr, rate_interval)), found.append)
    return found


@pytest.fixture(scope="module")
def models(prod_config, prod_plan) -> dict[str, dict[str, Any]]:
    return dashboards(prod_config, prod_plan)


@pytest.fixture(scope="module")
def all_exprs(models) -> list[str]:
    return [e for m in models.values() for e in exprs(m)]


@pytest.fixture(scope="module")
def staging_models() -> dict[str, dict[str, Any]]:
    """The real staging stack (`Pulumi.staging.yaml`, namespace hyperstudy-staging)."""
    config = load_stack("staging", ROOT)
    return dashboards(config, build_plan(config, "staging"))


# --- identity and determinism ---
def test_three_dashboards_with_stable_uids_and_prefixed_titles(models, prod_config):
    assert tuple(models) == uids(prod_config) == tuple(EXPECTED)
    assert tuple(TITLES) == SLUGS, "every dashboard has a title and a builder, in the same order"
    for uid, model in models.items():
        assert model["uid"] == uid
        assert model["title"] == EXPECTED[uid]
        assert "hyperstudy" in model["tags"]
        assert model["refresh"] and model["time"]["from"].startswith("now-") and model["time"]["to"] == "now"


def test_a_second_stack_gets_its_own_uids_and_titles(models, staging_models):
    """Two stacks sharing one Grafana: uids from the namespace, titles qualified outside `hyperstudy`."""
    assert load_stack("staging", ROOT).kubernetes.namespace == "hyperstudy-staging"
    assert tuple(staging_models) == (
        "hyperstudy-staging-memory",
        "hyperstudy-staging-capacity",
        "hyperstudy-staging-cost",
    )
    assert not set(staging_models) & set(models)
    for (uid, model), prod_title in zip(staging_models.items(), EXPECTED.values(), strict=True):
        assert model["uid"] == uid and len(uid) <= MAX_UID_LENGTH
        assert model["title"] == f"{prod_title} (hyperstudy-staging)"


def test_links_lead_to_the_same_stacks_other_dashboards(models, staging_models):
    for stack_models in (models, staging_models):
        for uid, model in stack_models.items():
            links = model["links"]
            assert {link["url"] for link in links} == {f"/d/{other}" for other in stack_models if other != uid}
            assert {link["title"] for link in links} == {stack_models[u]["title"].split(" / ")[1].split(" (")[0]
                                                         for u in stack_models if u != uid}  # fmt: skip
            for link in links:
                assert link["type"] == "link" and link["includeVars"] and link["keepTime"]
                assert link["tooltip"] in {m["title"] for m in stack_models.values()}


def test_a_namespace_too_long_for_a_grafana_uid_is_refused(prod_config, prod_plan):
    longest = max(len(slug) for slug in SLUGS) + 1
    fits = prod_config.kubernetes.model_copy(update={"namespace": "n" * (MAX_UID_LENGTH - longest)})
    assert all(
        len(uid) <= MAX_UID_LENGTH for uid in dashboards(prod_config.model_copy(update={"kubernetes": fits}), prod_plan)
    )
    too_long = prod_config.kubernetes.model_copy(update={"namespace": "n" * (MAX_UID_LENGTH - longest + 1)})
    with pytest.raises(ConfigError, match=r"kubernetes\.namespace"):
        dashboards(prod_config.model_copy(update={"kubernetes": too_long}), prod_plan)


def test_json_text_is_deterministic(prod_config, prod_plan):
    first = {uid: dashboard_json(m) for uid, m in dashboards(prod_config, prod_plan).items()}
    again = {uid: dashboard_json(m) for uid, m in dashboards(prod_config.model_copy(), prod_plan.model_copy()).items()}
    assert first == again
    assert all(text.endswith("}\n") and '\n  "panels": [' in text for text in first.values())


# --- variables and datasources ---
def test_datasource_and_namespace_variables(models, prod_config):
    for model in models.values():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert variables["namespace"]["current"]["value"] == prod_config.kubernetes.namespace


def test_every_panel_and_query_uses_the_datasource_variable(models):
    for model in models.values():
        for p in value_panels(model):
            assert p["datasource"] == DATASOURCE, p["title"]
            assert p["targets"], f"{p['title']} has no query"
            for target in p["targets"]:
                assert target["datasource"] == DATASOURCE, p["title"]


def test_panel_ids_titles_and_query_ref_ids_are_unique(models):
    for model in models.values():
        ids = [p["id"] for p in panels(model)]
        assert len(ids) == len(set(ids)) and 0 not in ids
        titles = [p["title"] for p in panels(model)]
        assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)
        for p in value_panels(model):
            refs = [t["refId"] for t in p["targets"]]
            assert all(refs) and len(refs) == len(set(refs)), p["title"]


def test_namespaced_queries_read_the_namespace_variable(all_exprs):
    namespaced = [e for e in all_exprs if "namespace=" in e]
    assert namespaced
    assert all('namespace="$namespace"' in e for e in namespaced)
    assert not any('namespace="hyperstudy"' in e for e in all_exprs), "namespace hard-coded instead of $namespace"


def test_every_recorded_series_is_read_by_the_namespace_and_no_series_by_job(all_exprs):
    """Cluster-level records carry the stack's namespace too: a shared Prometheus holds one copy per stack."""
    read = 0
    for expr in all_exprs:
        for node in nodes(expr.replace("$namespace", "NAMESPACE_VARIABLE")):
            if isinstance(node, promql_parser.VectorSelector):
                labels = {m.name: m.value for m in node.matchers.matchers}
                assert "job" not in labels, expr
                if node.name in RULES:
                    assert labels.get("namespace") == "NAMESPACE_VARIABLE", expr
                    read += 1
    assert read >= 20


# --- PromQL ---
def test_every_query_parses(all_exprs):
    for expr in all_exprs:
        try:
            promql_parser.parse(substitute(expr))
        except Exception as err:  # the parser raises a bare Exception subclass
            pytest.fail(f"{expr!r} does not parse: {err}")


def test_queries_read_only_contract_metrics_and_recording_rules(all_exprs):
    read = set()
    for expr in all_exprs:
        for node in nodes(expr):
            if isinstance(node, promql_parser.VectorSelector):
                assert node.name, f"selector without a metric name in {expr!r}"
                read.add(node.name)
    assert read <= READABLE, f"not in contract.CONTRACT nor a recording rule: {sorted(read - READABLE)}"
    # The dashboards show what the rules record: most of the rule names are read somewhere.
    assert {names.SLOTS, names.PREDICTED, names.COST, names.SAVINGS, names.EFFICIENCY} <= read


def test_every_rule_a_dashboard_reads_is_recorded(all_exprs, prod_config, prod_plan):
    read = {n.name for e in all_exprs for n in nodes(e) if isinstance(n, promql_parser.VectorSelector)}
    missing = (read & RULES) - recorded_names(rule_groups(prod_config, prod_plan))
    assert not missing, f"dashboards read rules nobody records: {sorted(missing)}"


# A window the dashboard names on purpose: the OOM tile counts kills of the last day, whatever the time range.
FIXED_WINDOWS = {timedelta(hours=24)}


def test_rate_and_increase_use_the_rate_interval_or_a_named_window(all_exprs):
    windowed = 0
    for expr in all_exprs:
        for node in nodes(expr, rate_interval=RATE_SENTINEL):
            if isinstance(node, promql_parser.Call) and node.func.name in {"rate", "increase", "irate", "delta"}:
                (matrix,) = [a for a in node.args if isinstance(a, promql_parser.MatrixSelector)]
                assert matrix.range in {RATE_SENTINEL_DELTA, *FIXED_WINDOWS}, (
                    f"{expr!r}: window is not $__rate_interval"
                )
                windowed += matrix.range == RATE_SENTINEL_DELTA
            if isinstance(node, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
                assert node.range in {RATE_SENTINEL_DELTA, *FIXED_WINDOWS}, f"{expr!r}: a range that is not allowed"
    assert windowed, "the OOM-kill timeseries uses increase(): it should have been checked"


def test_the_oom_tile_counts_kills_of_the_last_day_not_the_last_termination_forever(models):
    (expr,) = exprs({"panels": [panel(models["hyperstudy-memory"], f"Containers OOM-killed ({OOM_TILE_WINDOW})")]})
    assert f"increase({contract.RESTARTS}" in expr and f"[{OOM_TILE_WINDOW}]" in expr
    assert f"max_over_time({contract.LAST_TERMINATED}" in expr


def test_oom_query_joins_restarts_with_last_terminated_reason(models):
    (expr,) = exprs({"panels": [panel(models["hyperstudy-memory"], "OOM kills")]})
    assert f"increase({contract.RESTARTS}" in expr and contract.LAST_TERMINATED in expr and 'reason="OOMKilled"' in expr


# --- layout and units ---
def test_panels_do_not_overlap_and_stay_on_the_grid(models):
    for uid, model in models.items():
        boxes = [(p["title"], p["gridPos"]) for p in panels(model)]
        for title, g in boxes:
            assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["y"] >= 0 and g["x"] + g["w"] <= 24, (uid, title)
        for (t1, a), (t2, b) in combinations(boxes, 2):
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or b["y"] + b["h"] <= a["y"]
            )
            assert apart, f"{uid}: {t1!r} overlaps {t2!r}"


def test_every_value_panel_has_a_unit(models):
    for model in models.values():
        for p in value_panels(model):
            assert p["type"] in VALUE_PANELS, p["title"]
            assert p["fieldConfig"]["defaults"].get("unit") in UNITS, p["title"]


def test_money_is_in_dollars_and_memory_in_bytes(models):
    cost = models["hyperstudy-cost"]
    assert panel(cost, "Monthly cost now")["fieldConfig"]["defaults"]["unit"] == "currencyUSD"
    assert panel(cost, "Savings vs baseline now")["fieldConfig"]["defaults"]["unit"] == "currencyUSD"
    assert panel(cost, "Savings ratio now")["fieldConfig"]["defaults"]["unit"] == "percentunit"
    memory = models["hyperstudy-memory"]
    assert panel(memory, "backend: usage vs request and limit")["fieldConfig"]["defaults"]["unit"] == "bytes"
    assert panel(memory, "Memory efficiency")["fieldConfig"]["defaults"]["unit"] == "percentunit"


# --- content from the plan and the config ---
def test_a_slots_stat_per_configured_shape(models, prod_config, prod_plan):
    capacity = models["hyperstudy-capacity"]
    for shape in prod_config.capacity.shapes:
        assert f'shape="{shape}"' in panel(capacity, f"Slots: {shape}")["targets"][0]["expr"]
    # A new shape gets its stat; a shape whose users need no memory has no slots series (the rules skip it).
    shapes = {**prod_config.capacity.shapes, "huge": UserMix(participant_video=40, experimenter=4), "idle": UserMix()}
    bigger = prod_config.model_copy(update={"capacity": prod_config.capacity.model_copy(update={"shapes": shapes})})
    titles = {p["title"] for p in panels(dashboards(bigger, prod_plan)["hyperstudy-capacity"])}
    assert "Slots: huge" in titles and "Slots: idle" not in titles


def test_a_usage_panel_and_a_request_gauge_per_workload(models, prod_plan):
    memory = models["hyperstudy-memory"]
    for name, workload in prod_plan.workloads.items():
        queries = [t["expr"] for t in panel(memory, f"{name}: usage vs request and limit")["targets"]]
        assert {names.WORKLOAD_WORKING_SET, names.WORKLOAD_REQUESTS, names.WORKLOAD_LIMITS} <= {
            q.split("{")[0] for q in queries
        }
        gauge = panel(memory, f"{name}: working set ÷ request")
        assert gauge["fieldConfig"]["defaults"]["max"] == pytest.approx(
            workload.memory_limit_mib / workload.memory_request_mib
        )


def test_a_requested_vs_used_panel_per_planned_container(models, prod_config, prod_plan):
    """Every container the plan sizes, the charts' in their own namespaces, under the row, each reading the drift
    records of its namespace and name, with the drift alert's thresholds from the config."""
    memory = models["hyperstudy-memory"]
    row = [p["title"] for p in memory["panels"]]
    start = row.index("Requested vs used per container")
    ends = [i for i, p in enumerate(memory["panels"]) if p["type"] == "row" and i > start]
    under = memory["panels"][start + 1 : ends[0]]
    expected = [(ns, c) for ns, names_ in planned_containers(prod_config, prod_plan) for c in names_]
    assert [p["title"] for p in under] == [f"{c} ({ns}): used ÷ requested" for ns, c in expected]
    assert ("monitoring", "config-reloader") in expected and ("hyperstudy", "acmesolver") in expected
    drift = prod_config.monitoring.alerts.request_drift
    for p, (ns, c) in zip(under, expected, strict=True):
        own = "$namespace" if ns == prod_config.kubernetes.namespace else ns
        for target in p["targets"]:
            assert f'namespace="$namespace", pod_namespace="{own}", container="{c}"' in target["expr"]
        read = {q for target in p["targets"] for q in re.findall(r"([a-z_:0-9]+)\{", target["expr"])}
        assert read == {
            names.CONTAINER_CPU_P95_REQUEST_1D,
            names.CONTAINER_CPU_MAX_1D,
            names.CONTAINER_CPU_REQUEST,
            names.CONTAINER_MEMORY_MAX_REQUEST_1D,
            names.CONTAINER_MEMORY_MAX_LIMIT_1D,
        }
        assert steps(p) == [drift.below_ratio, drift.threshold]


def test_heap_ceiling_comes_from_the_plan(prod_config, prod_plan):
    def backend_divisor(config, plan) -> int:
        heap = panel(dashboards(config, plan)["hyperstudy-memory"], "Heap used ÷ heap ceiling")
        (expr,) = [t["expr"] for t in heap["targets"] if "(backend)" in t["expr"]]
        return int(expr.rsplit("/", 1)[1])

    baseline_config = prod_config.with_profile("baseline")
    baseline_plan = build_plan(baseline_config, "prod")
    optimized = backend_divisor(prod_config, prod_plan)
    assert optimized == prod_plan.workloads["backend"].runtime.memory_mib * MIB
    rolled_back = backend_divisor(baseline_config, baseline_plan)
    assert rolled_back == baseline_plan.workloads["backend"].runtime.memory_mib * MIB != optimized


def test_memory_pressure_threshold_comes_from_the_alert_config(models, prod_config, prod_plan):
    current = prod_config.monitoring.alerts.memory_near_limit.threshold
    title = "Memory pressure: working set above the alert threshold of the limit"
    before = panel(models["hyperstudy-memory"], title)
    assert before["targets"][0]["expr"].endswith(f"> {current:g}") and current in steps(before)

    alerts = prod_config.monitoring.alerts.model_copy(update={"memory_near_limit": Alert(threshold=0.8, for_="5m")})
    changed = prod_config.model_copy(
        update={"monitoring": prod_config.monitoring.model_copy(update={"alerts": alerts})}
    )
    after = panel(dashboards(changed, prod_plan)["hyperstudy-memory"], title)
    assert after["targets"][0]["expr"].endswith("> 0.8") and 0.8 in steps(after) and current not in steps(after)


def test_baseline_cost_is_a_reference_line(models, prod_config, prod_plan):
    title = "Monthly cost vs baseline"
    before = panel(models["hyperstudy-cost"], title)
    assert prod_plan.cost.baseline_monthly_usd in steps(before)
    assert before["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] != "off"

    cost = prod_plan.cost.model_copy(update={"baseline_monthly_usd": 176.73})
    after = panel(dashboards(prod_config, prod_plan.model_copy(update={"cost": cost}))["hyperstudy-cost"], title)
    assert 176.73 in steps(after) and prod_plan.cost.baseline_monthly_usd not in steps(after)


def test_node_bounds_come_from_the_plan(models, prod_config, prod_plan):
    title = "Nodes vs autoscaler bounds"
    before = panel(models["hyperstudy-cost"], title)
    assert steps(before) == [prod_plan.nodes.min, prod_plan.nodes.max]

    bounds = prod_plan.nodes.model_copy(update={"min": 3, "max": 7})
    after = dashboards(prod_config, prod_plan.model_copy(update={"nodes": bounds}))["hyperstudy-cost"]
    assert steps(panel(after, title)) == steps(panel(after, "Nodes now")) == [3, 7]


def test_namespace_default_follows_the_config(prod_config, prod_plan):
    kubernetes = prod_config.kubernetes.model_copy(update={"namespace": "study-staging"})
    model = dashboards(prod_config.model_copy(update={"kubernetes": kubernetes}), prod_plan)["study-staging-cost"]
    (namespace,) = [v for v in model["templating"]["list"] if v["name"] == "namespace"]
    assert namespace["query"] == "study-staging" and namespace["current"]["value"] == "study-staging"


def test_prometheus_itself_parses_every_query(all_exprs, run_promtool):
    """promtool (Prometheus' own parser) reads each query wrapped as a recording rule, variables substituted."""
    rules = [{"record": f"dashboard:query_{i}:check", "expr": substitute(e)} for i, e in enumerate(all_exprs)]
    run_promtool(
        "check", "rules", "dashboards.yaml", files={"dashboards.yaml": {"groups": [{"name": "d", "rules": rules}]}}
    )


def test_the_near_limit_tile_counts_what_the_alert_fires_for(models, prod_config, prod_plan):
    (expr,) = exprs({"panels": [panel(models["hyperstudy-memory"], "Containers near their limit")]})
    (alert,) = [
        r
        for g in rule_groups(prod_config, prod_plan)
        for r in g["rules"]
        if r.get("alert") == names.ALERT_MEMORY_NEAR_LIMIT
    ]
    # The same per-container record and threshold; only the namespace is the dashboard's variable.
    assert alert["expr"].replace('namespace="hyperstudy"', 'namespace="$namespace"') in expr


# --- the scheduled windows (capacity.schedule) ---
def table_rows(markdown: str) -> list[list[str]]:
    """The body rows of the Markdown table in `markdown`, as cells (an escaped `\\|` stays in its cell)."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines[1:]]


def schedule_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(model) if p.get("title") in (SCHEDULE_ROW, WINDOWS_TITLE, REPLICAS_TITLE)]


@pytest.fixture(scope="module")
def staging_stack():
    config = load_stack("staging", ROOT)
    return config, build_plan(config, "staging")


def test_prod_has_no_schedule_and_no_scheduled_windows_row(models, all_exprs, prod_plan):
    assert prod_plan.schedule is None
    for model in models.values():
        assert schedule_panels(model) == []
        assert not any(p["type"] == "text" for p in panels(model))
    read = {n.name for e in all_exprs for n in nodes(e) if isinstance(n, promql_parser.VectorSelector)}
    assert not read & {contract.STATEFULSET_REPLICAS, contract.STATEFULSET_READY}


def test_the_staging_capacity_dashboard_lists_every_window_of_the_plan(staging_models, staging_stack):
    config, plan = staging_stack
    assert plan.schedule is not None and len(plan.schedule.windows) == 2
    capacity = staging_models["hyperstudy-staging-capacity"]
    row = panel(capacity, SCHEDULE_ROW)
    assert row["type"] == "row"
    table = panel(capacity, WINDOWS_TITLE)
    assert table["type"] == "text" and table["options"]["mode"] == "markdown"
    content = table["options"]["content"]
    leads = {w.name: (w.lead_minutes, w.grace_minutes) for w in config.capacity.schedule}
    expected = [
        [
            w.name,
            w.when,
            ", ".join(f"{n} {shape}" for shape, n in w.experiments.items()),
            str(w.backend_replicas),
            str(w.nodes),
            "yes" if w.fits else "**no**",
            f"{leads[w.name][0]} min before / {leads[w.name][1]} min after",
        ]
        for w in plan.schedule.windows
    ]
    assert table_rows(content) == expected
    # Staging's own figures, as `python -m sizing schedule --stack staging` prints them.
    # (three backends on staging's two nodes: the third joins them, spread by skew)
    assert expected[0][:7] == ["teaching-lab", "wed 09:00-11:30 Europe/Berlin", "3 medium", "3", "2", "yes",
                               "10 min before / 15 min after"]  # fmt: skip
    assert expected[1][2:4] == ["4 small, 2 medium", "3"]
    assert f"`backend` runs {plan.schedule.base_replicas} replicas" in content
    # The row comes right after the slots, the two panels side by side.
    titles = [p["title"] for p in panels(capacity)]
    assert titles.index(SCHEDULE_ROW) == titles.index("Available experiment slots by shape") + 1
    replicas = panel(capacity, REPLICAS_TITLE)
    assert table["gridPos"]["y"] == replicas["gridPos"]["y"] and table["gridPos"]["x"] + 12 == replicas["gridPos"]["x"]


def test_the_replicas_panel_shows_desired_and_ready_beside_the_slots(staging_models, staging_stack):
    config, plan = staging_stack
    p = panel(staging_models["hyperstudy-staging-capacity"], REPLICAS_TITLE)
    assert p["type"] == "timeseries" and p["datasource"] == DATASOURCE
    assert p["fieldConfig"]["defaults"]["unit"] == "short"
    targets = {t["legendFormat"]: t for t in p["targets"]}
    sts = 'namespace="$namespace", statefulset="backend"'
    assert (
        targets["desired replicas"]["expr"]
        == f"max by (namespace, statefulset) ({contract.STATEFULSET_REPLICAS}{{{sts}}})"
    )
    assert (
        targets["ready replicas"]["expr"] == f"max by (namespace, statefulset) ({contract.STATEFULSET_READY}{{{sts}}})"
    )
    slots = targets["{{shape}} slots"]
    shape = config.monitoring.capacity_shape
    assert slots["expr"] == f'{names.SLOTS}{{namespace="$namespace", shape="{shape}"}}'
    # The slots on their own axis, without the replicas' dashed lines.
    (override,) = p["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byFrameRefID", "options": slots["refId"]}
    assert {"id": "custom.axisPlacement", "value": "right"} in override["properties"]
    # Dashed at the replicas a window needs above the configured ones: staging's windows both take 3.
    assert plan.schedule.base_replicas == 2
    assert steps(p) == sorted({w.backend_replicas for w in plan.schedule.windows} - {2}) == [3]
    assert p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
    for t in p["targets"]:
        assert t["datasource"] == DATASOURCE
        read = {n.name for n in nodes(t["expr"]) if isinstance(n, promql_parser.VectorSelector)}
        assert read <= READABLE


def test_the_staging_dashboards_pass_the_layout_and_query_checks(staging_models, run_promtool):
    """What the prod-only checks above hold, for staging's dashboards with the scheduled row: a grid without
    overlaps, unique titles and ids, a unit and the datasource on every value panel, queries Prometheus parses."""
    queries = []
    for uid, model in staging_models.items():
        ids = [p["id"] for p in panels(model)]
        titles = [p["title"] for p in panels(model)]
        assert len(ids) == len(set(ids)) and len(titles) == len(set(titles)), uid
        boxes = [(p["title"], p["gridPos"]) for p in panels(model)]
        for (t1, a), (t2, b) in combinations(boxes, 2):
            apart = (
                a["x"] + a["w"] <= b["x"]
                or b["x"] + b["w"] <= a["x"]
                or a["y"] + a["h"] <= b["y"]
                or (b["y"] + b["h"] <= a["y"])
            )
            assert apart, f"{uid}: {t1!r} overlaps {t2!r}"
        for p in value_panels(model):
            if p["type"] == "text":
                continue
            assert p["type"] in VALUE_PANELS and p["fieldConfig"]["defaults"].get("unit") in UNITS, p["title"]
            assert p["datasource"] == DATASOURCE, p["title"]
            queries += [t["expr"] for t in p["targets"]]
    rules = [{"record": f"dashboard:query_{i}:check", "expr": substitute(e)} for i, e in enumerate(queries)]
    run_promtool("check", "rules", "d.yaml", files={"d.yaml": {"groups": [{"name": "d", "rules": rules}]}})


def test_a_window_that_does_not_fit_is_marked_with_its_reason(prod_config):
    """A plan that refuses a window (planned without failing, as `python -m sizing schedule` does) shows it."""
    too_big = {**SCHEDULE[0], "experiments": {"large": 20}}
    config = scheduled_config(prod_config, [too_big, SCHEDULE[1]])
    plan = build_plan(config, "staging", strict=False)
    (refused,) = [w for w in plan.schedule.windows if not w.fits]
    content = panel(dashboards(config, plan)["study-staging-capacity"], WINDOWS_TITLE)["options"]["content"]
    assert table_rows(content)[0][5] == "**no**" and table_rows(content)[1][5] == "yes"
    assert f"- **{refused.name}** does not fit: {refused.reason}" in content


def test_without_a_schedule_the_dashboards_are_what_they_were(scheduled_stack_config, scheduled_stack_plan):
    """The same stack without windows: the memory and cost dashboards are identical, and the capacity dashboard is
    the scheduled one without the row and its two panels (only the panels below move up and are renumbered)."""
    config = scheduled_stack_config.model_copy(
        update={"capacity": scheduled_stack_config.capacity.model_copy(update={"schedule": ()})}
    )
    plan = build_plan(config, "staging")
    assert plan.schedule is None
    with_windows = dashboards(scheduled_stack_config, scheduled_stack_plan)
    without = dashboards(config, plan)
    for uid in ("study-staging-memory", "study-staging-cost"):
        assert with_windows[uid] == without[uid]

    def content(model: dict[str, Any], skip: tuple[str, ...] = ()) -> list[Any]:
        return [
            (p["title"], p["type"], p.get("gridPos", {}).get("w"), [t["expr"] for t in p.get("targets", [])])
            for p in panels(model)
            if p["title"] not in skip
        ]

    capacity = with_windows["study-staging-capacity"]
    assert len(schedule_panels(capacity)) == 3
    skip = (SCHEDULE_ROW, WINDOWS_TITLE, REPLICAS_TITLE)
    assert content(capacity, skip) == content(without["study-staging-capacity"])
    assert {k: v for k, v in capacity.items() if k != "panels"} == {
        k: v for k, v in without["study-staging-capacity"].items() if k != "panels"
    }
