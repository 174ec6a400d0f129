"""Small stacks for the planner's tests (raw values with only the keys a plan needs, and how a test plans them) and
how a test runs `python -m sizing`: in this process, or as a user does."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sizing.core.errors import ConfigError
from sizing.plan.build import build_plan
from sizing.plan.types import Plan

ROOT = Path(__file__).resolve().parents[2]


def synthetic(
    workloads: dict[str, tuple[int, str, str, str] | tuple[int, str, str, str, str, str]],
    machine_type: str = "e2-medium",
    overhead: tuple[str, str] = ("512Mi", "200m"),
    **nodes: Any,
) -> dict[str, Any]:
    """Minimal stack values: workloads as (replicas, cpu, request, limit[, baseline request, baseline limit])."""

    def workload(spec: tuple[Any, ...]) -> dict[str, Any]:
        replicas, cpu, request, limit, *baseline = spec
        base = baseline or [request, limit]
        return {
            "replicas": replicas,
            "cpu_request": cpu,
            "memory": {
                "optimized": {"request": request, "limit": limit},
                "baseline": {"request": base[0], "limit": base[1]},
            },
        }

    return {
        "capacity": {"load": {"typical": {"small": 1}, "peak": {"medium": 1}}},
        "workloads": {name: workload(spec) for name, spec in workloads.items()},
        "nodes": {
            "machine_type": machine_type,
            "overhead": {"memory": overhead[0], "cpu": overhead[1]},
            **nodes,
        },
    }


def plan_of(parse, values: dict[str, Any]) -> Plan:
    return build_plan(parse(values), "test")


def plan_error(parse, values: dict[str, Any]) -> ConfigError:
    config = parse(values)  # the config itself is valid: the plan is what fails
    with pytest.raises(ConfigError) as err:
        build_plan(config, "test")
    return err.value


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`python -m sizing <args>` in this process (its `main`, stdout and stderr captured, run from `cwd`): what the
    command prints and returns, at a hundredth of a subprocess's cost. `run_cli_process` runs the real command."""
    from sizing.cli.commands import main

    out, err = io.StringIO(), io.StringIO()
    here = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exit_:  # argparse: usage errors and --help
                code = exit_.code if isinstance(exit_.code, int) else 1
    finally:
        os.chdir(here)
    return subprocess.CompletedProcess(["python", "-m", "sizing", *args], code, out.getvalue(), err.getvalue())


def run_cli_process(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`python -m sizing <args>` as a user runs it: its own process, interpreter start-up and all."""
    # PYTHONPATH: the package is importable from any working directory (a relative file argument is the user's).
    # No COLUMNS: tables print unwrapped, as into any pipe (GNU readline in a parent process exports its terminal's
    # width, and pytest-xdist's workers inherit it).
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env |= {"PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "sizing", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def assert_bad_input(result: subprocess.CompletedProcess[str], key: str) -> str:
    """Exit 2, nothing on stdout, exactly one stderr line `error: …` naming `key`, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stderr.endswith("\n")
    assert lines[0].startswith("error: "), lines[0]
    assert key in lines[0], lines[0]
    return lines[0]
