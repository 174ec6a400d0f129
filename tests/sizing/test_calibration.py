"""`sizing.observe.calibration` and `python -m sizing fit --from`: recovery of known coefficients from synthetic
histories, the intervals' coverage, the refusals of what the data cannot identify, the export, and `--write`.

Stated tolerance (README, "Calibrating the formula"): from two pods over three days at a 30 s step, with 2 MiB noise,
GC spikes and restarts, each coefficient within 0.5 MiB of the truth and inside its 95 % interval.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sizing.config.writer import round_trip, set_formula
from sizing.core.errors import ConfigError
from sizing.core.model import ROLES
from sizing.observe.calibration import (
    EXPORT_FORMAT,
    MIN_SAMPLES,
    Samples,
    fit,
    fitted_formula,
    load_export,
    queries,
    with_formula,
)
from tests.sizing.load_history import TRUE, export, pod_history
from tests.sizing.stacks import ROOT, assert_bad_input, run_cli

NAMESPACE_K8S = "hyperstudy"
START = 1_750_000_000.0
TOLERANCE_MIB = 0.5


def _history(days: float = 3, step: float = 30, pods: int = 2, seed: int = 0, **options: Any) -> dict[str, Any]:
    points = int(days * 86400 / step)
    histories = [pod_history(f"backend-{i}", points, step, seed=seed * 100 + i, **options) for i in range(pods)]
    return export(histories, NAMESPACE_K8S, START, step)


def _truth(name: str) -> float:
    return TRUE["base_mib"] if name == "base_mib" else TRUE["per_role_mib"][name]


def _all(values: Any) -> dict[str, Any]:
    """A coefficients-shaped model flattened: base_mib and each role."""
    return {"base_mib": values.base_mib, **values.per_role_mib}


@pytest.fixture(scope="module")
def three_days() -> dict[str, Any]:
    return _history()


@pytest.fixture
def config(prod_config_k8s):
    return prod_config_k8s


@pytest.fixture
def prod_config_k8s(parse, prod_values):
    prod_values["kubernetes"] = {**prod_values.get("kubernetes", {}), "namespace": NAMESPACE_K8S}
    return parse(prod_values)


def test_recovers_the_true_coefficients_within_the_stated_tolerance(three_days, config):
    result = fit(Samples(three_days), config)
    fitted, intervals = _all(result.coefficients), _all(result.intervals)
    for name, value in fitted.items():
        assert abs(value - _truth(name)) <= TOLERANCE_MIB, (name, value)
        low, high = intervals[name]
        assert low <= _truth(name) <= high, (name, intervals[name])
    assert result.samples == 2 * 3 * 2880
    assert result.pods == 2
    assert result.days == pytest.approx(3, abs=0.01)
    # The noise is 2 MiB: the median residual is about 0.67 σ, the 95th about 2 σ; the outliers make the max.
    assert 1.0 < result.residual_mib.p50 < 2.0
    assert 3.0 < result.residual_mib.p95 < 5.0
    assert result.residual_mib.max > 20
    assert result.r2 > 0.95
    assert result.outliers > 0


def test_outliers_do_not_pull_the_fit(config):
    """GC spikes only ever add memory: a least-squares fit would lift the base; the robust fit does not."""
    clean = fit(Samples(_history(days=1, seed=7, outliers=False)), config)
    dirty = fit(Samples(_history(days=1, seed=7)), config)
    assert abs(dirty.coefficients.base_mib - clean.coefficients.base_mib) < 0.3
    assert dirty.outliers > clean.outliers


@pytest.mark.parametrize("ar_rho", [0.0, 0.98], ids=["independent-noise", "drifting-memory"])
def test_the_95_percent_intervals_cover_the_truth_about_95_percent_of_the_time(config, ar_rho):
    """40 one-day histories: each coefficient's interval holds the truth in at least 32 (80 %), all intervals
    together in at least 90 %. With drifting memory (AR(1) noise, ~50 minutes' memory at a 60 s step) intervals that
    count every sample as independent would hold it a third of the time or less; too narrow an interval fails this."""
    hits = dict.fromkeys(("base_mib", *ROLES), 0)
    runs = 40
    for seed in range(runs):
        data = _history(days=1, step=60, seed=1000 + seed, ar_rho=ar_rho)
        intervals = _all(fit(Samples(data), config).intervals)
        for name, (low, high) in intervals.items():
            hits[name] += low <= _truth(name) <= high
    assert all(count >= 0.8 * runs for count in hits.values()), hits
    assert sum(hits.values()) >= 0.9 * runs * len(hits), hits


def test_the_coverage_check_catches_intervals_that_ignore_drift(config, monkeypatch):
    """The guard: with every sample its own cluster (the independent-sample covariance), drifting memory leaves the
    truth outside most intervals, and the check above would fail."""
    import sizing.observe.calibration as calibration

    monkeypatch.setattr(calibration, "CLUSTER_S", 1e-9)
    hits = 0
    for seed in range(10):
        intervals = _all(fit(Samples(_history(days=1, step=60, seed=1000 + seed, ar_rho=0.98)), config).intervals)
        hits += sum(low <= _truth(name) <= high for name, (low, high) in intervals.items())
    assert hits < 0.8 * 10 * 4


def test_coefficients_are_never_negative(config):
    """A role that adds nothing (0 MiB) is fitted at 0, not at a negative number the noise suggests."""
    truth = {"base_mib": 150.0, "per_role_mib": {**TRUE["per_role_mib"], "participant_no_video": 0.0}}
    result = fit(Samples(_history(days=1, seed=3, coefficients=truth)), config)
    assert all(value >= 0 for value in _all(result.coefficients).values())
    assert all(low >= 0 for low, _ in _all(result.intervals).values())
    assert result.coefficients.per_role_mib["participant_no_video"] < 0.3


def _flat(users: dict[str, list[int]], working_set_mib: list[float]) -> dict[str, Any]:
    """An export of one pod with these users and working set, a minute apart."""
    from tests.sizing.load_history import PodHistory

    return export([PodHistory("backend-0", users, working_set_mib)], NAMESPACE_K8S, START, 60)


def _varied(points: int) -> dict[str, list[int]]:
    return {
        "participant_video": [i % 7 for i in range(points)],
        "participant_no_video": [(i * 3) % 5 for i in range(points)],
        "experimenter": [(i // 4) % 3 for i in range(points)],
    }


def _refusal(config, data: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        fit(Samples(data), config)
    return err.value


def test_too_few_samples_are_refused(config):
    points = MIN_SAMPLES - 1
    err = _refusal(config, _flat(_varied(points), [100.0] * points))
    assert err.key.endswith("capacity.formula")
    assert f"({points};" in str(err)


def test_no_users_at_all_is_refused(config):
    points = 500
    err = _refusal(config, _flat({role: [0] * points for role in ROLES}, [100.0] * points))
    assert err.key.endswith("capacity.formula.per_role_mib")
    assert "no users at all" in str(err)


@pytest.mark.parametrize("role", ROLES)
def test_a_role_that_never_varies_is_refused_by_name(config, role):
    points = 500
    users = {**_varied(points), role: [2] * points}
    err = _refusal(config, _flat(users, [100.0 + i % 11 for i in range(points)]))
    assert err.key.endswith(f"capacity.formula.per_role_mib.{role}")
    assert f"{role} never varies" in str(err)


def test_roles_in_lockstep_are_refused_by_name(config):
    """Every experimenter brings exactly two video participants: the data cannot split their memory."""
    points = 500
    experimenters = [(i // 4) % 3 for i in range(points)]
    users = {
        "participant_video": [2 * n for n in experimenters],
        "participant_no_video": [(i * 3) % 5 for i in range(points)],
        "experimenter": experimenters,
    }
    err = _refusal(config, _flat(users, [100.0 + i % 11 for i in range(points)]))
    assert "moves in lockstep" in str(err)
    assert err.key.rsplit(".", 1)[-1] in ("participant_video", "experimenter")


def test_samples_align_per_pod_and_timestamp(config):
    """A timestamp missing from one series (a failed scrape) drops that sample, never shifts the others."""
    data = _history(days=0.1, step=60, pods=2, seed=5)
    series = data["results"]["participant_video"][0]
    dropped = series["values"].pop(10)
    samples = Samples(data)
    assert len(samples) == 2 * 144 - 1
    pairs = set(zip(samples.pods, samples.times, strict=True))
    assert (series["metric"]["pod"], float(dropped[0])) not in pairs


def test_queries_select_the_formula_pods_as_the_rules_do(config):
    found = queries(config)
    assert set(found) == {"working_set", *ROLES}
    assert 'namespace="hyperstudy"' in found["working_set"]
    assert 'container!=""' in found["working_set"] and 'container!="POD"' in found["working_set"]
    assert 'pod=~"backend-[0-9]+"' in found["working_set"] or "backend" in found["working_set"]
    for role in ROLES:
        # A pod without the role's series counts 0 of it while it is scraped, as the rules count it.
        assert f'role="{role}"' in found[role] and "or on (namespace, pod) 0 *" in found[role]


def test_queries_refuse_a_stack_without_formula_workloads(parse, prod_values):
    for workload in prod_values["workloads"].values():
        workload.pop("sized_by", None)
        workload["memory"].setdefault("optimized", {"request": "64Mi", "limit": "128Mi"})
    with pytest.raises(ConfigError, match="no workload has sized_by: formula"):
        queries(parse(prod_values))


def test_fitted_formula_rounds_to_whole_mib_and_keeps_the_rest(three_days, config):
    formula = fitted_formula(fit(Samples(three_days), config), config.capacity.formula)
    assert formula.base_mib == TRUE["base_mib"]
    assert formula.per_role_mib.model_dump() == TRUE["per_role_mib"]
    changed = with_formula(config, formula)
    assert changed.capacity.formula == formula
    assert changed.kubernetes == config.kubernetes and changed.workloads == config.workloads


# --- the export ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda r: r["working_set"][0].update(values=[[1, "abc"]]), "not [time"),
        (lambda r: r["working_set"][0].update(values=[[1]]), "not [time"),
        (lambda r: r["working_set"][0].update(metric=None), "not {metric, values}"),
        (lambda r: r["experimenter"][0]["metric"].pop("pod"), "no pod label"),
        (lambda r: r["working_set"].append(r["working_set"][0]), "two series"),
        (lambda r: r.update(working_set="x"), "lacks the working set"),
    ],
)
def test_load_export_refuses_malformed_series_in_one_line(tmp_path, config, change, problem):
    data = _history(days=0.1)
    change(data["results"])
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=re.escape(problem)):
        load_export(path, config)


def test_load_export_refuses_another_namespace_or_format(tmp_path, config):
    path = tmp_path / "export.json"
    path.write_text(json.dumps({**_history(days=0.1), "namespace": "elsewhere"}))
    with pytest.raises(ConfigError, match="holds namespace 'elsewhere'"):
        load_export(path, config)
    path.write_text(json.dumps({**_history(days=0.1), "format": "something/2"}))
    with pytest.raises(ConfigError, match=EXPORT_FORMAT):
        load_export(path, config)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not a JSON export"):
        load_export(path, config)
    with pytest.raises(ConfigError, match="not found"):
        load_export(tmp_path / "absent.json", config)


# --- the CLI, offline ------------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the project's stack files and Pulumi.yaml, prod's namespace set to the history's."""
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def _export_file(project: Path, data: dict[str, Any]) -> Path:
    from sizing.config.loader import load_stack

    data = {**data, "namespace": load_stack("prod", project).kubernetes.namespace}
    path = project / "export.json"
    path.write_text(json.dumps(data))
    return path


def test_cli_fit_from_an_export_has_the_json_keys(project, three_days):
    path = _export_file(project, three_days)
    result = run_cli("--project-dir", str(project), "fit", "--stack", "prod", "--from", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for name, value in _all_json(data["coefficients"]).items():
        assert abs(value - _truth(name)) <= TOLERANCE_MIB
    for name, (low, high) in _all_json(data["intervals"]).items():
        assert low <= _truth(name) <= high
    assert set(data["residual_mib"]) == {"p50", "p95", "max"}
    assert data["samples"] == 2 * 3 * 2880 and 0.95 < data["r2"] <= 1
    assert data["current"]["base_mib"] == 100 and data["current"]["per_role_mib"]["experimenter"] == 25
    assert data["effect"] == _effect_of(project, data["fitted"])
    assert data["current_effect"] == _effect_of(project, data["current"])


def _effect_of(project: Path, formula: dict[str, Any]) -> dict[str, Any]:
    """The backend's sizes and the node bounds of prod planned in-process with `formula`."""
    from sizing.config.loader import load_stack
    from sizing.plan.build import build_plan

    config = load_stack("prod", project)
    current = config.capacity.formula
    formula_model = current.model_copy(
        update={
            "base_mib": formula["base_mib"],
            "per_role_mib": current.per_role_mib.model_copy(update=formula["per_role_mib"]),
        }
    )
    plan = build_plan(with_formula(config, formula_model), "prod")
    backend = plan.workloads["backend"]
    return {
        "memory_request": backend.memory_request,
        "memory_limit": backend.memory_limit,
        "workloads": {"backend": {"memory_request": backend.memory_request, "memory_limit": backend.memory_limit}},
        "nodes": {"min": plan.nodes.min, "max": plan.nodes.max},
    }


def test_cli_fit_effect_shows_a_larger_formula(project):
    """A backend measured at 400 MiB idle needs a larger request and limit than prod's formula gives it."""
    heavy = {"base_mib": 400.0, "per_role_mib": TRUE["per_role_mib"]}
    path = _export_file(project, _history(days=0.5, step=60, coefficients=heavy, outliers=False))
    result = run_cli("--project-dir", str(project), "fit", "--stack", "prod", "--from", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["fitted"]["base_mib"] == 400
    effect, now = data["effect"], data["current_effect"]
    assert _mib(effect["memory_request"]) > _mib(now["memory_request"])
    assert _mib(effect["memory_limit"]) > _mib(now["memory_limit"])
    assert effect == _effect_of(project, data["fitted"])


def _all_json(values: dict[str, Any]) -> dict[str, Any]:
    return {"base_mib": values["base_mib"], **values["per_role_mib"]}


def _mib(quantity: str) -> float:
    from sizing.core.quantity import to_mib

    return float(to_mib(quantity))


def test_cli_fit_tables_name_config_and_fitted(project, three_days):
    path = _export_file(project, three_days)
    result = run_cli("--project-dir", str(project), "fit", "--stack", "prod", "--from", str(path))
    assert result.returncode == 0, result.stderr
    assert "95 % interval" in result.stdout
    assert "in whole MiB: base 120, participant_video 18, participant_no_video 7, experimenter 30" in result.stdout
    assert "effect: request" in result.stdout


def test_cli_write_changes_only_the_coefficient_lines(project, three_days):
    path = _export_file(project, three_days)
    stack = project / "Pulumi.prod.yaml"
    before = stack.read_text(encoding="utf-8")
    result = run_cli("--project-dir", str(project), "fit", "--stack", "prod", "--from", str(path), "--write")
    assert result.returncode == 0, result.stderr
    after = stack.read_text(encoding="utf-8")
    changed = [(old, new) for old, new in zip(before.splitlines(), after.splitlines(), strict=True) if old != new]
    assert [new.strip() for _, new in changed] == [
        "base_mib: 120",
        "participant_video: 18",
        "participant_no_video: 7",
        "experimenter: 30",
    ]
    assert "wrote capacity.formula" in result.stdout and "backend" in result.stdout
    # The file as written is a valid stack with the fitted formula.
    from sizing.config.loader import load_stack

    formula = load_stack("prod", project).capacity.formula
    assert formula.base_mib == 120 and formula.per_role_mib.experimenter == 30


def test_cli_write_refuses_a_formula_that_fails_the_plan(project):
    """A fitted formula no node can hold is reported and not written: the next preview would fail on it."""
    huge = {"base_mib": 9000.0, "per_role_mib": TRUE["per_role_mib"]}
    path = _export_file(project, _history(days=0.5, step=60, coefficients=huge, outliers=False))
    stack = project / "Pulumi.prod.yaml"
    before = stack.read_text(encoding="utf-8")
    result = run_cli("--project-dir", str(project), "fit", "--stack", "prod", "--from", str(path), "--write")
    line = assert_bad_input(result, "capacity.formula")
    assert "not written" in line
    assert stack.read_text(encoding="utf-8") == before


def test_stack_files_round_trip_byte_for_byte():
    for stack in ROOT.glob("Pulumi.*.yaml"):
        text = stack.read_text(encoding="utf-8")
        assert round_trip(text) == text, stack.name


def test_set_formula_adds_a_missing_formula(tmp_path):
    path = tmp_path / "Pulumi.x.yaml"
    path.write_text("config:\n  # kept\n  ns:capacity:\n    shapes: {small: {experimenter: 1}}\n")
    set_formula(path, "ns", {"base_mib": 1, "per_role_mib": {"experimenter": 2}})
    assert path.read_text() == (
        "config:\n  # kept\n  ns:capacity:\n    shapes: {small: {experimenter: 1}}\n"
        "    formula:\n      base_mib: 1\n      per_role_mib:\n        experimenter: 2\n"
    )


def test_cli_fit_refusal_is_one_line_naming_the_role(project):
    points = 500
    users = {**_varied(points), "participant_no_video": [0] * points}
    path = _export_file(project, _flat(users, [100.0 + i % 11 for i in range(points)]))
    result = run_cli("--project-dir", str(project), "fit", "--stack", "prod", "--from", str(path), "--json")
    assert "participant_no_video never varies" in assert_bad_input(result, "capacity.formula.per_role_mib")


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["--from", "absent.json"], "absent.json"),
        (["--from", "export.json", "--save", "again.json"], "--save"),
        (["--prometheus", "ftp://example"], "--prometheus"),
        (["--prometheus", "http://127.0.0.1:1"], "--prometheus"),
        (["--from", "export.json", "--since", "3x"], "--since"),
    ],
)
def test_cli_fit_bad_input_is_one_line(project, three_days, args, key):
    _export_file(project, three_days)
    result = run_cli("--project-dir", str(project), "fit", "--stack", "prod", *args, cwd=project)
    assert_bad_input(result, key)
