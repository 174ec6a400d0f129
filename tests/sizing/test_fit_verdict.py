"""`python -m sizing fit`'s verdict (write / keep / collect more data) by the rules `fit --help` states, the shipped
sample export, and `--since` refused with `--from`. The verdicts on real fits come from generated histories
(tests/sizing/load_history.py) whose true coefficients are known."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sizing.cli.commands import main
from sizing.observe.verdict import MAX_RELATIVE_HALF_WIDTH, MIN_DAYS, MIN_R2, verdict
from tests.sizing.load_history import SAMPLE_EXPORT, TRUE, export, pod_history, sample_export
from tests.sizing.stacks import ROOT

# A fit that passes no rule of 1 or 2: a week and more of data, tight intervals the config lies outside, a good R²,
# and a larger limit.
BASE: dict[str, Any] = {
    "stack": "prod",
    "coefficients": {"base_mib": 120.0, "per_role_mib": {"participant_video": 18.0, "experimenter": 30.0}},
    "intervals": {
        "base_mib": [119.0, 121.0],
        "per_role_mib": {"participant_video": [17.5, 18.5], "experimenter": [29.0, 31.0]},
    },
    "r2": 0.99,
    "days": 8.0,
    "current": {"base_mib": 100, "per_role_mib": {"participant_video": 15, "experimenter": 25}},
    "effect": {
        "memory_request": "256Mi",
        "memory_limit": "1Gi",
        "workloads": {"backend": "1Gi"},
        "nodes": {"min": 2, "max": 3},
    },
    "current_effect": {
        "memory_request": "256Mi",
        "memory_limit": "512Mi",
        "workloads": {"backend": "512Mi"},
        "nodes": {"min": 2, "max": 3},
    },
}


def fit_data(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    return data


def test_write_when_the_data_contradicts_the_config_and_the_sizes_change() -> None:
    result = verdict(fit_data())
    assert result.decision == "write"
    assert result.reasons == [
        "the config's base_mib, participant_video, experimenter are outside the 95 % interval",
        "the sizes change: request 256Mi → 256Mi, limit 512Mi → 1Gi, nodes 2-3 → 2-3",
    ]


def test_write_says_when_the_fitted_formula_fails_the_plan() -> None:
    result = verdict(fit_data(effect={"error": "hyperstudy-infra:workloads.backend: larger than a node"}))
    assert result.decision == "write"
    assert result.reasons[-1].startswith("but the fitted formula fails the plan, so --write refuses until it holds")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"days": MIN_DAYS - 0.5}, "the data covers 6.5 days, less than 7: not every weekday's sessions"),
        (
            {"intervals__per_role_mib__experimenter": [10.0, 50.0]},
            f"experimenter is 30.0 ± 20.0 MiB: wider than ± {MAX_RELATIVE_HALF_WIDTH:.0%} of its value",
        ),
    ],
)
def test_collect_more_data_when_the_data_cannot_settle_the_formula(changes: dict[str, Any], reason: str) -> None:
    result = verdict(fit_data(**changes))
    assert (result.decision, result.reasons) == ("collect-more-data", [reason])


def test_a_few_mib_either_way_is_settled_enough() -> None:
    """A 3 MiB coefficient known within ± 2 MiB moves no size: not a reason to collect more data."""
    data = fit_data(
        coefficients__per_role_mib__participant_video=3.0,
        intervals__per_role_mib__participant_video=[1.0, 5.0],
    )
    assert verdict(data).decision == "write"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"r2": MIN_R2 - 0.1}, "the formula explains 0.40 of the working set's variance, less than 0.5"),
        (
            {
                "intervals": {
                    "base_mib": [99.0, 121.0],
                    "per_role_mib": {"participant_video": [14.0, 19.0], "experimenter": [24.5, 31.0]},
                }
            },
            "every coefficient of the config is within the fit's 95 % interval",
        ),
        ({"effect": BASE["current_effect"]}, "the fitted formula changes no request, limit or node bound"),
    ],
)
def test_keep_when_writing_would_not_make_the_sizes_better(changes: dict[str, Any], reason: str) -> None:
    result = verdict(fit_data(**changes))
    assert result.decision == "keep"
    assert any(r.startswith(reason) for r in result.reasons), result.reasons


# --- on real fits --------------------------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("Pulumi.yaml", "Pulumi.prod.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def run_fit(capsys, project: Path, data: dict[str, Any], *extra: str) -> tuple[int, dict[str, Any]]:
    path = project / "export.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    code = main(["--project-dir", str(project), "fit", "--stack", "prod", "--from", str(path), "-o", "json", *extra])
    return code, json.loads(capsys.readouterr().out or "null")


def history(days: float, coefficients: dict[str, Any] = TRUE, step: float = 900.0) -> dict[str, Any]:
    points = int(days * 86400 / step)
    pods = [
        pod_history(f"backend-{i}", points, step, seed=40 + i, coefficients=coefficients, ar_rho=0.9) for i in range(2)
    ]
    return export(pods, "hyperstudy", 1_790_000_000.0, step)


def test_a_heavier_backend_over_eight_days_is_written(capsys, project: Path) -> None:
    heavy = {"base_mib": 240.0, "per_role_mib": TRUE["per_role_mib"]}
    code, data = run_fit(capsys, project, history(8, heavy))
    assert code == 0 and data["verdict"]["decision"] == "write", data["verdict"]
    assert data["effect"]["memory_limit"] != data["current_effect"]["memory_limit"]


def test_three_days_are_too_few(capsys, project: Path) -> None:
    code, data = run_fit(capsys, project, history(3))
    assert code == 0
    assert data["verdict"]["decision"] == "collect-more-data"
    assert data["verdict"]["reasons"][0].startswith("the data covers 3.0 days, less than 7")


def test_the_sample_export_is_the_generators_and_its_verdict_is_keep(capsys) -> None:
    assert json.loads(SAMPLE_EXPORT.read_text(encoding="utf-8")) == sample_export()
    code = main(["fit", "--stack", "prod", "--from", str(SAMPLE_EXPORT)])
    out = capsys.readouterr().out
    assert code == 0
    verdict_lines = out[out.index("\nverdict: ") + 1 :].splitlines()
    assert verdict_lines[:2] == ["verdict: keep", "  - the fitted formula changes no request, limit or node bound"]


def test_since_is_refused_with_from(capsys) -> None:
    code = main(["fit", "--stack", "prod", "--from", str(SAMPLE_EXPORT), "--since", "7d"])
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert captured.err == (
        "error: --since: goes with --prometheus only: an export (--from) holds the range it was saved with\n"
    )
