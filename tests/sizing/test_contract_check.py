"""`python -m sizing contract`: the shipped examples (examples/metrics-pass.txt passes, examples/metrics-fail.txt
names every problem), each kind of problem on its own, and bad input. Over a file, standard input, and a /metrics
URL served by a local HTTP server; parsed by prometheus_client's own parser."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sizing.cli.commands import main
from sizing.core.errors import ConfigError
from sizing.observe.contract import APP_CONTRACT, CONNECTED_USERS, CONTRACT
from sizing.observe.exposition import check
from tests.sizing.stacks import ROOT

PASS = ROOT / "examples" / "metrics-pass.txt"
FAIL = ROOT / "examples" / "metrics-fail.txt"


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def by_name(text: str) -> dict[str, Any]:
    return {s.name: s for s in check(text, "test").series}


def test_the_app_contract_is_the_documented_one() -> None:
    """Every series of the app's part is in CONTRACT (what the rules and dashboards are tested against), a gauge."""
    assert {s.name for s in APP_CONTRACT} <= set(CONTRACT)
    assert {s.type for s in APP_CONTRACT} == {"gauge"}


def test_the_passing_example_meets_the_contract(capsys) -> None:
    code, out, err = cli(capsys, "contract", "--file", str(PASS), "-o", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["met"] and data["missing"] == [] and data["wrong"] == []
    assert data["present"] == [s.name for s in APP_CONTRACT]
    assert all(s["status"] == "present" and s["problems"] == [] and s["samples"] > 0 for s in data["series"])
    code, out, _ = cli(capsys, "contract", "--file", str(PASS))
    assert code == 0 and out.startswith(f"{PASS} against the app's side of the metric contract: met (6 present")


def test_the_failing_example_names_every_problem(capsys) -> None:
    code, out, err = cli(capsys, "contract", "--file", str(FAIL), "-o", "json")
    assert (code, err) == (1, "")
    data = json.loads(out)
    assert not data["met"]
    problems = {s["name"]: (s["status"], s["problems"]) for s in data["series"]}
    assert problems == {
        "hyperstudy_connected_users": (
            "wrong",
            [
                "labels: 1 of 3 samples have no role label",
                'labels: role="participant" is none of participant_video, participant_no_video, experimenter: the '
                "rules count it nowhere",
            ],
        ),
        "hyperstudy_active_experiments": (
            "wrong",
            ["type: a counter, exported as hyperstudy_active_experiments_total, not a gauge"],
        ),
        "nodejs_heap_size_used_bytes": ("missing", ["not in the exposition (did you mean nodejs_heap_used_bytes?)"]),
        "nodejs_heap_space_size_used_bytes": ("wrong", ["labels: 1 of 1 samples have no space label"]),
        "nodejs_heap_size_total_bytes": ("wrong", ["type: no # TYPE line (untyped), not a gauge"]),
        "process_resident_memory_bytes": ("wrong", ["samples: declared (# TYPE) but no sample"]),
    }
    code, out, _ = cli(capsys, "contract", "--file", str(FAIL))
    assert code == 1 and ": NOT met (0 present, 1 missing, 5 wrong)" in out.splitlines()[0]
    assert "MISSING" in out and "WRONG" in out


GOOD = """\
# TYPE hyperstudy_connected_users gauge
hyperstudy_connected_users{role="experimenter"} 1
# TYPE hyperstudy_active_experiments gauge
hyperstudy_active_experiments 1
# TYPE nodejs_heap_size_used_bytes gauge
nodejs_heap_size_used_bytes 1
# TYPE nodejs_heap_space_size_used_bytes gauge
nodejs_heap_space_size_used_bytes{space="old"} 1
# TYPE nodejs_heap_size_total_bytes gauge
nodejs_heap_size_total_bytes 1
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1
"""


def test_a_minimal_exposition_meets_it_and_a_role_without_users_is_fine() -> None:
    assert check(GOOD, "test").met
    # prom-client exports a labelled gauge with no sample until a value is set: no user yet is no problem.
    no_users = GOOD.replace('hyperstudy_connected_users{role="experimenter"} 1\n', "")
    assert check(no_users, "test").met


@pytest.mark.parametrize(
    ("change", "name", "problem"),
    [
        (
            lambda t: t.replace("nodejs_heap_size_total_bytes", "nodejs_heap_total"),
            "nodejs_heap_size_total_bytes",
            "not in the exposition",
        ),
        (
            lambda t: t.replace(
                "# TYPE hyperstudy_active_experiments gauge", "# TYPE hyperstudy_active_experiments counter"
            ),
            "hyperstudy_active_experiments",
            "type: a counter, exported as hyperstudy_active_experiments_total",
        ),
        (
            lambda t: t.replace("# TYPE process_resident_memory_bytes gauge\n", ""),
            "process_resident_memory_bytes",
            "type: no # TYPE line (untyped)",
        ),
        (
            lambda t: t.replace(
                "# TYPE nodejs_heap_size_used_bytes gauge", "# TYPE nodejs_heap_size_used_bytes summary"
            ),
            "nodejs_heap_size_used_bytes",
            "type: a summary",
        ),
        (lambda t: t.replace('{space="old"}', ""), "nodejs_heap_space_size_used_bytes", "no space label"),
        (lambda t: t.replace('role="experimenter"', 'role="teacher"'), CONNECTED_USERS, 'role="teacher" is none of'),
        (lambda t: t.replace('role="experimenter"', 'kind="experimenter"'), CONNECTED_USERS, "no role label"),
        (
            lambda t: t.replace("process_resident_memory_bytes 1\n", ""),
            "process_resident_memory_bytes",
            "declared (# TYPE) but no sample",
        ),
    ],
)
def test_each_kind_of_problem_alone(change: Callable[[str], str], name: str, problem: str) -> None:
    report = check(change(GOOD), "test")
    assert not report.met
    wrong = {s.name: s for s in report.series if s.status != "present"}
    assert list(wrong) == [name]
    assert any(problem in p for p in wrong[name].problems), wrong[name].problems


def test_openmetrics_is_read_too() -> None:
    text = GOOD + "# EOF\n"
    assert check(text, "test").met
    with pytest.raises(ConfigError, match="not the OpenMetrics"):
        check(GOOD + "# EOF\nmore 1\n# EOF\n", "test")


def test_standard_input(capsys, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(FAIL.read_text(encoding="utf-8")))
    code, out, _ = cli(capsys, "contract", "--file", "-", "-o", "json")
    assert code == 1 and json.loads(out)["source"] == "-"


_PAGES = {"/metrics": PASS.read_bytes(), "/broken": b"x{ 1\n", "/binary": b"\xff\xfe"}


@pytest.fixture
def app(http_server) -> str:
    def respond(path: str) -> tuple[int, str, bytes]:
        body = _PAGES.get(path)
        return (200, "text/plain; version=0.0.4", body) if body is not None else (404, "text/plain", b"not found")

    return http_server(respond)


def test_a_url_is_read(capsys, app: str) -> None:
    code, out, err = cli(capsys, "contract", "--url", f"{app}/metrics")
    assert (code, err) == (0, "") and ": met (6 present" in out


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--file", "absent.txt"], "error: absent.txt: file not found"),
        (["--file", str(ROOT / "examples")], f"error: {ROOT / 'examples'}: is a folder, not an exposition file"),
        (["--url", "ftp://x/metrics"], "error: --url: 'ftp://x/metrics' is not an http(s) URL"),
        (
            ["--url", "http://127.0.0.1:1/metrics"],
            "error: --url: http://127.0.0.1:1/metrics is unreachable (nothing answers there)",
        ),
    ],
)
def test_bad_input_is_one_line(capsys, argv: list[str], error: str) -> None:
    assert cli(capsys, "contract", *argv) == (2, "", error + "\n")


def test_bad_pages_are_one_line(capsys, app: str) -> None:
    assert cli(capsys, "contract", "--url", f"{app}/nope") == (
        2,
        "",
        f"error: --url: {app}/nope answered 404 Not Found\n",
    )
    code, out, err = cli(capsys, "contract", "--url", f"{app}/broken")
    assert (code, out) == (2, "") and err.startswith(f"error: {app}/broken:1: not the Prometheus text format: ")
    code, out, err = cli(capsys, "contract", "--url", f"{app}/binary")
    assert (code, out, err) == (2, "", f"error: {app}/binary: not UTF-8 text (an exposition in the protobuf format?)\n")


def test_a_malformed_line_is_named_by_its_number(capsys, tmp_path: Path) -> None:
    path = tmp_path / "metrics.txt"
    path.write_text(GOOD + 'bad{role="x",role="y"} 1\n', encoding="utf-8")
    code, out, err = cli(capsys, "contract", "--file", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}:13: not the Prometheus text format: ") and len(err.splitlines()) == 1
