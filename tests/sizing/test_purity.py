"""The sizing package is pure: planning a stack imports neither pulumi nor the kubernetes client package, nor
what only `fit` and `status` need (numpy, scipy, requests, ruamel.yaml), which would cost `plan` its 0.5 s.

Checked in a fresh interpreter (this test process has pulumi loaded by the shared conftest).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Plans prod the way `python -m sizing plan` does (runpy runs sizing/__main__.py), then reports what got imported.
SCRIPT = textwrap.dedent(
    """
    import contextlib, io, json, runpy, sys

    import sizing, sizing.cli.commands

    {extra}
    sys.argv = ["sizing", "plan", "--stack", "prod", "--json"]
    out, code = io.StringIO(), None
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module("sizing", run_name="__main__", alter_sys=True)
        except SystemExit as exit_:
            code = exit_.code
    loader = sizing.core.quantity._library_parse_quantity
    print(json.dumps({{
        "code": code,
        "quantity_parser_loaded": loader.cache_info().currsize,
        "quantity_parser_file": loader().__code__.co_filename,
        "plan": json.loads(out.getvalue()),
        "modules": sorted(sys.modules),
    }}))
    """
)


def imported_while_planning(extra: str = "") -> dict:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(extra=extra)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def offending(modules: list[str]) -> list[str]:
    return [m for m in modules if m.startswith("pulumi") or m == "kubernetes" or m.startswith("kubernetes.")]


@pytest.fixture(scope="module")
def report() -> dict:
    return imported_while_planning()


def test_plan_ran(report: dict) -> None:
    assert report["code"] == 0
    assert report["plan"]["workloads"]["backend"]["memory_limit"] == "512Mi"


def test_planning_imports_no_pulumi(report: dict) -> None:
    assert [m for m in report["modules"] if m.startswith("pulumi")] == []


def test_planning_imports_no_kubernetes_package(report: dict) -> None:
    assert [m for m in report["modules"] if m == "kubernetes" or m.startswith("kubernetes.")] == []
    # quantities were parsed during the plan, by the library's quantity file loaded on its own
    assert report["quantity_parser_loaded"] == 1
    assert Path(report["quantity_parser_file"]).parts[-3:] == ("kubernetes", "utils", "quantity.py")


# Imported by `fit`, `status`, `fit --write`, `schedule add/remove` and `contract` only.
CALIBRATION_ONLY = ("numpy", "scipy", "requests", "urllib3", "ruamel", "prometheus_client")


def calibration_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in CALIBRATION_ONLY]


def test_planning_imports_no_calibration_library(report: dict) -> None:
    assert calibration_modules(report["modules"]) == []


def test_the_calibration_check_sees_an_import() -> None:
    assert calibration_modules(imported_while_planning("import numpy")["modules"])


def test_the_check_sees_an_import() -> None:
    # The same probe with pulumi imported on purpose must report it: the check above is not vacuous.
    assert offending(imported_while_planning("import pulumi")["modules"])
