"""`python -m sizing` as its own process, a few times: the other CLI tests call its `main` in process
(tests/sizing/stacks.py `run_cli`), so these prove that the module entry point, the interpreter's streams and the
exit status carry the same results."""

from __future__ import annotations

import json

import pytest

from sizing.core.clock import EPOCH_VARIABLE
from tests.sizing.stacks import run_cli, run_cli_process

pytestmark = pytest.mark.programs


def test_plan_json_is_the_same_in_its_own_process(monkeypatch):
    monkeypatch.setenv(EPOCH_VARIABLE, "1796083200")  # one instant for both: the plan's maintenance is dated
    real = run_cli_process("plan", "--stack", "prod", "--json")
    assert real.returncode == 0 and real.stderr == ""
    assert json.loads(real.stdout) == json.loads(run_cli("plan", "--stack", "prod", "--json").stdout)


def test_bad_input_is_one_line_and_exit_2_in_its_own_process():
    real = run_cli_process("plan", "--stack", "nope")
    assert real.returncode == 2 and real.stdout == ""
    assert real.stderr.count("\n") == 1 and real.stderr.startswith("error: ") and "Traceback" not in real.stderr
    assert (real.returncode, real.stdout, real.stderr) == (lambda r: (r.returncode, r.stdout, r.stderr))(
        run_cli("plan", "--stack", "nope")
    )


def test_a_usage_error_exits_2_with_the_usage_and_one_error_line():
    real = run_cli_process("plna", "--stack", "prod")
    usage, error = real.stderr.splitlines()
    assert real.returncode == 2 and usage.startswith("usage: python -m sizing")
    assert error.startswith("error: ") and "(did you mean plan?)" in error
    assert run_cli("plna", "--stack", "prod").stderr == real.stderr
