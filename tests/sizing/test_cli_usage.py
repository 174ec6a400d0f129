"""`python -m sizing` as a new user meets it (issue 16): usage and help with examples and exit codes, the nearest
command, option, stack, profile or key suggested, paths read as paths, never an exception's class name, `-o
table|json|yaml` on every command, tables that fit the terminal, and the exit codes of `status` and `schedule`.

In process (`main` with capsys); the status tests talk to a small local HTTP server that answers as Prometheus
does with no series at all.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sizing.cli.commands import main
from tests.sizing.stacks import ROOT

NS = "hyperstudy-infra"
COMMANDS = ["plan", "recommend", "fit", "rightsize", "status", "schedule", "project", "slots", "contract"]
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Warning)\b")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Exit 2, nothing on stdout, one stderr line `error: …` with no exception class name in it."""
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, ""), err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert not CLASS_NAME.search(err), err
    return err.rstrip("\n")


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    """Exit 2, nothing on stdout, the usage then one `error: …` line; returns (usage, error line)."""
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, ""), err
    lines = err.splitlines()
    assert lines[0].startswith("usage: python -m sizing"), err
    assert lines[-1].startswith("error: ") and not any(line.startswith("error: ") for line in lines[:-1]), err
    return "\n".join(lines[:-1]), lines[-1]


# --- usage and help -----------------------------------------------------------------------------------------


def test_bare_command_prints_the_usage_and_exits_2(capsys) -> None:
    code, out, err = run(capsys)
    assert (code, out) == (2, "")
    assert err.startswith("usage: python -m sizing")
    for command in COMMANDS:
        assert re.search(rf"^    {command} ", err, re.MULTILINE), command
    assert "examples:" in err and "exit codes:" in err


EXIT_CODES = {
    "": [0, 1, 2, 3],
    "plan": [0, 2],
    "recommend": [0, 2],
    "fit": [0, 2],
    "status": [0, 1, 2, 3],
    "schedule": [0, 1, 2],
    "schedule add": [0, 1, 2],
    "schedule remove": [0, 1, 2],
    "project": [0, 2],
    "slots": [0, 2],
    "contract": [0, 1, 2],
}


@pytest.mark.parametrize("command", list(EXIT_CODES))
def test_help_has_examples_and_exit_codes(capsys, command: str) -> None:
    code, out, err = run(capsys, *command.split(), "--help")
    assert (code, err) == (0, "")
    examples = out[out.index("\nexamples:\n") : out.index("\nexit codes:\n")]
    # Each example is a command line of this very command (a line ending in a backslash continues on the next).
    runnable = [line.strip() for line in examples.replace("\\\n", " ").splitlines()[2:] if line.strip()]
    assert runnable and all(f"python -m sizing {command}".rstrip() in line for line in runnable), runnable
    codes = out[out.index("\nexit codes:\n") :].splitlines()[2:]
    assert [int(line.split()[0]) for line in codes if re.match(r"^  \d  ", line)] == EXIT_CODES[command]


def test_fit_help_states_the_verdict_rules(capsys) -> None:
    from sizing.observe.verdict import RULES

    code, out, _ = run(capsys, "fit", "--help")
    assert code == 0 and RULES in out


@pytest.mark.parametrize(
    ("argv", "command", "missing"),
    [
        (["plan"], "plan", "--stack"),
        (["schedule"], "schedule", "--stack"),
        (["status", "--stack", "prod"], "status", "--prometheus"),
        (["contract"], "contract", "one of the arguments --file --url is required"),
        (["schedule", "add", "lab", "--stack", "prod"], "schedule add", "--start"),
        (["schedule", "remove", "--stack", "prod"], "schedule remove", "name"),
        (["--project-dir", "."], "", "COMMAND"),
    ],
)
def test_a_missing_argument_shows_the_commands_usage(capsys, argv: list[str], command: str, missing: str) -> None:
    usage, error = usage_error(capsys, *argv)
    assert usage.startswith(f"usage: python -m sizing {command} ".replace("  ", " "))
    assert missing in error


# --- the nearest command, option, stack, profile, key ---------------------------------------------------------


def test_an_unknown_command_suggests_the_nearest(capsys) -> None:
    _, error = usage_error(capsys, "plna", "--stack", "prod")
    assert error.endswith("(did you mean plan?)") and "choose from plan, recommend" in error


def test_an_unknown_option_suggests_the_nearest(capsys) -> None:
    usage, error = usage_error(capsys, "plan", "--stack", "prod", "--profle", "baseline")
    assert usage.startswith("usage: python -m sizing plan ")
    assert error == "error: unrecognized arguments: --profle (did you mean --profile?) baseline"


def test_an_unknown_choice_suggests_the_nearest(capsys) -> None:
    error = one_line_error(capsys, "plan", "--stack", "prod", "-o", "jsno")
    assert error.endswith("(choose from table, json, yaml) (did you mean json?)")


def test_an_unknown_stack_lists_the_known_ones_and_the_nearest(capsys) -> None:
    error = one_line_error(capsys, "plan", "--stack", "prdo")
    assert (
        error == f"error: {ROOT}/Pulumi.prdo.yaml: stack file not found (did you mean prod?); "
        "known stacks: example, prod, staging"
    )
    far = one_line_error(capsys, "plan", "--stack", "qa")
    assert far == f"error: {ROOT}/Pulumi.qa.yaml: stack file not found; known stacks: example, prod, staging"


def test_an_unknown_profile_suggests_the_nearest(capsys) -> None:
    error = one_line_error(capsys, "recommend", "--stack", "prod", "--profile", "optimised")
    assert (
        error == "error: --profile: unknown profile 'optimised' (did you mean optimized?) (known: optimized, baseline)"
    )


def test_an_unknown_compare_target_names_profiles_and_stacks(capsys) -> None:
    error = one_line_error(capsys, "plan", "--stack", "prod", "--compare", "baselin")
    assert error == (
        "error: --compare: 'baselin' is neither a profile (optimized, baseline) nor a stack "
        "(known: example, prod, staging) (did you mean baseline?)"
    )


@pytest.mark.parametrize(
    ("path", "value", "key", "nearest"),
    [
        ("nodes.surge_node", 1, "nodes.surge_node", "surge_nodes"),
        ("workload", {}, "workload", "workloads"),
        ("workloads.frontend.replica", 2, "workloads.frontend.replica", "replicas"),
        ("capacity.headroom.requst_pct", 10, "capacity.headroom.requst_pct", "request_pct"),
        ("nodes.colour", "blue", "nodes.colour", None),
    ],
)
def test_an_unknown_key_suggests_the_nearest(capsys, write_stack, prod_values, path, value, key, nearest) -> None:
    *parents, leaf = path.split(".")
    node = prod_values
    for part in parents:
        node = node[part]
    node[leaf] = value
    error = one_line_error(capsys, "--project-dir", str(write_stack(prod_values)), "plan", "--stack", "test")
    hint = f" (did you mean {nearest}?)" if nearest else ""
    assert error == f"error: {NS}:{key}: unknown key{hint}"


def test_an_unknown_key_of_a_window_suggests_the_nearest(capsys, write_stack, prod_values) -> None:
    prod_values["capacity"]["schedule"] = [
        {"name": "lab", "weeky": {"days": ["tue"]}, "experiments": {"small": 1}},
    ]
    error = one_line_error(capsys, "--project-dir", str(write_stack(prod_values)), "plan", "--stack", "test")
    assert error == f"error: {NS}:capacity.schedule.lab.weeky: unknown key (did you mean weekly?)"


# --- paths as paths, no class names ---------------------------------------------------------------------------


def test_a_stack_path_is_read_as_a_path(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "x.yaml"
    assert one_line_error(capsys, "plan", "--stack", str(missing)) == f"error: {missing}: stack file not found"
    copy = tmp_path / "mine.yml"
    copy.write_text((ROOT / "Pulumi.prod.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    code, out, _ = run(capsys, "plan", "--stack", str(copy), "-o", "json")
    assert code == 0 and json.loads(out)["workloads"]["backend"]["memory_limit"] == "512Mi"
    folder = tmp_path / "stacks.yaml"
    folder.mkdir()
    assert one_line_error(capsys, "plan", "--stack", str(folder)) == f"error: {folder}: is a folder, not a stack file"


def test_outside_the_project_the_repository_is_the_default_project(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "plan", "--stack", "prod", "-o", "json")
    assert (code, err) == (0, "") and json.loads(out)["stack"] == "prod"


def test_a_project_dir_without_a_project_is_one_line(capsys, tmp_path: Path) -> None:
    error = one_line_error(capsys, "--project-dir", str(tmp_path), "plan", "--stack", "prod")
    assert error == (
        f"error: {tmp_path}/Pulumi.yaml: no Pulumi project in {tmp_path} (--project-dir takes the folder of "
        "Pulumi.yaml)"
    )
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert "no Pulumi project in" in one_line_error(capsys, "--project-dir", str(a_file), "plan", "--stack", "prod")


def test_a_quantity_the_library_cannot_read_names_no_exception_class(capsys, monkeypatch, write_stack, prod_values):
    """The kubernetes library's parser raising decimal's Overflow: the line says what to fix, not `Overflow`."""
    import decimal

    from sizing.core import quantity

    def overflowing(text: str) -> decimal.Decimal:
        raise decimal.Overflow("above Emax")

    project = str(write_stack(prod_values))
    monkeypatch.setattr(quantity, "_library_parse_quantity", lambda: overflowing)
    error = one_line_error(capsys, "--project-dir", project, "plan", "--stack", "test")
    assert error.endswith("is not a Kubernetes quantity: too large, or not a number"), error


def test_an_unreachable_prometheus_names_no_exception_class(capsys) -> None:
    error = one_line_error(capsys, "status", "--stack", "prod", "--prometheus", "http://127.0.0.1:1")
    assert error == "error: --prometheus: http://127.0.0.1:1 is unreachable (nothing answers there)"


# --- -o table|json|yaml ---------------------------------------------------------------------------------------


OUTPUT_COMMANDS = [
    ["plan", "--stack", "prod"],
    ["plan", "--stack", "prod", "--compare", "baseline"],
    ["recommend", "--stack", "prod"],
    ["schedule", "--stack", "staging"],
    ["project", "--video", "10", "--experimenters", "2"],
    ["slots", "--stack", "prod", "--video", "10", "--experimenters", "2"],
    ["contract", "--file", str(ROOT / "examples" / "metrics-pass.txt")],
    ["fit", "--stack", "prod", "--from", str(ROOT / "examples" / "fit-export.json")],
    ["rightsize", "--stack", "prod", "--from", str(ROOT / "examples" / "rightsize-export.json")],
    ["recommend", "--stack", "prod", "--rightsized", "--from", str(ROOT / "examples" / "rightsize-export.json")],
]


@pytest.mark.parametrize("argv", OUTPUT_COMMANDS, ids=lambda argv: "-".join(argv[:2]).strip("-"))
def test_every_command_prints_json_and_the_same_data_as_yaml(capsys, monkeypatch, argv: list[str]) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796083200")  # the plan's clock: four runs, one instant
    code_flag, legacy, _ = run(capsys, *argv, "--json")
    code_json, as_json, _ = run(capsys, *argv, "-o", "json")
    code_yaml, as_yaml, _ = run(capsys, *argv, "-o", "yaml")
    code_table, table, _ = run(capsys, *argv)
    assert code_flag == code_json == code_yaml == code_table == 0
    assert as_json == legacy  # --json is kept, byte for byte
    data = json.loads(as_json)
    assert yaml.safe_load(as_yaml) == data
    assert not table.lstrip().startswith(("{", "[")) and table != as_json


def test_json_and_output_are_one_choice(capsys) -> None:
    error = one_line_error(capsys, "plan", "--stack", "prod", "--json", "-o", "yaml")
    assert error == "error: argument -o/--output: not allowed with argument --json"


# --- tables fit the terminal ----------------------------------------------------------------------------------


@pytest.fixture
def tables(monkeypatch) -> list[str]:
    """Every table the commands print, as printed: `table` wrapped where each CLI module calls it."""
    from sizing.cli import commands, compare, rightsize, schedule, tables

    printed: list[str] = []

    def recording(*args: Any, **kwargs: Any) -> str:
        printed.append(tables.table(*args, **kwargs))
        return printed[-1]

    for module in (commands, compare, rightsize, schedule):
        monkeypatch.setattr(module, "table", recording)
    return printed


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize(
    "argv",
    [
        ["plan", "--stack", "prod"],
        ["plan", "--stack", "prod", "--compare", "baseline"],
        ["recommend", "--stack", "prod"],
        ["schedule", "--stack", "staging"],
        ["contract", "--file", str(ROOT / "examples" / "metrics-fail.txt")],
        ["fit", "--stack", "prod", "--from", str(ROOT / "examples" / "fit-export.json")],
        ["rightsize", "--stack", "prod", "--from", str(ROOT / "examples" / "rightsize-export.json")],
        ["recommend", "--stack", "prod", "--rightsized", "--from", str(ROOT / "examples" / "rightsize-export.json")],
    ],
    ids=lambda argv: "-".join(argv[:2] + argv[3:4]).strip("-"),
)
def test_tables_fit_the_terminal(capsys, monkeypatch, tables: list[str], argv: list[str], columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, _ = run(capsys, *argv)
    assert code in (0, 1) and tables
    for text in tables:
        assert text in out
        assert max(len(line) for line in text.splitlines()) <= columns, text
        # Every column has a header: each dashed span has header text above it.
        lines = text.splitlines()
        rule = next(i for i, line in enumerate(lines) if line and set(line) <= {"-", " "})
        at = 0
        for dashes in lines[rule].split("  "):
            assert any(lines[h][at : at + len(dashes)].strip() for h in range(rule)), text
            at += len(dashes) + 2


def test_wide_tables_are_unchanged_off_a_terminal(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    wide = run(capsys, "recommend", "--stack", "prod")[1]
    assert "(not shown" not in wide and max(len(line) for line in wide.splitlines()) > 150


# --- exit codes: status 3 (blind), schedule 1 (a window does not fit) --------------------------------------------


def _empty_api(path: str) -> tuple[int, str, bytes]:
    """Prometheus' HTTP API with no series: every instant query answers an empty vector (time() its scalar)."""
    if "time%28%29" in path or "time()" in path:
        data: dict[str, Any] = {"resultType": "scalar", "result": [1796083200, "1796083200"]}
    else:
        data = {"resultType": "vector", "result": []}
    return 200, "application/json", json.dumps({"status": "success", "data": data}).encode()


@pytest.fixture
def empty_prometheus(http_server) -> str:
    return http_server(_empty_api)


def test_status_exits_3_when_no_formula_sized_pod_reports(capsys, empty_prometheus: str) -> None:
    code, out, err = run(capsys, "status", "--stack", "prod", "--prometheus", empty_prometheus)
    assert (code, err) == (3, "")
    assert "no formula-sized pod reports a working set: monitoring is blind" in out
    code, out, _ = run(capsys, "status", "--stack", "prod", "--prometheus", empty_prometheus, "-o", "json")
    assert code == 3 and json.loads(out)["pods"] == []


def test_schedule_exits_1_when_a_window_does_not_fit(capsys, write_stack, prod_values) -> None:
    prod_values["capacity"]["schedule"] = [
        {
            "name": "fits",
            "weekly": {"days": ["tue"], "start": "14:00", "end": "16:00", "timezone": "Europe/Berlin"},
            "experiments": {"small": 1},
        },
        {
            "name": "too-big",
            "weekly": {"days": ["wed"], "start": "14:00", "end": "16:00", "timezone": "Europe/Berlin"},
            "experiments": {"large": 1},
        },
    ]
    project = str(write_stack(prod_values))
    code, out, _ = run(capsys, "--project-dir", project, "schedule", "--stack", "test")
    assert code == 1 and "does not fit: hyperstudy-infra:capacity.schedule.too-big" in out
    code, out, _ = run(capsys, "--project-dir", project, "schedule", "--stack", "test", "-o", "json")
    assert code == 1 and [w["fits"] for w in json.loads(out)["windows"]] == [True, False]
    prod_values["capacity"]["schedule"] = prod_values["capacity"]["schedule"][:1]
    project = str(write_stack(prod_values))
    assert run(capsys, "--project-dir", project, "schedule", "--stack", "test")[0] == 0
