"""Small stacks for the planner's tests (raw values with only the keys a plan needs, and how a test plans them), the
application facts and images that make a synthetic workload runnable (`runnable`, shared with bench/bench.py), the
stacks the application cannot run with the line both the CLI and the program refuse them with (`UNRUNNABLE`), and
how a test runs `python -m sizing`: in this process, or as a user does."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sizing.config.workloads import built_in_apps
from sizing.core.errors import ConfigError
from sizing.plan.build import build_plan
from sizing.plan.types import Plan

ROOT = Path(__file__).resolve().parents[2]


def generic_app(runtime: str = "none", kind: str = "Deployment") -> dict[str, Any]:
    """The application facts of a synthetic workload: an HTTP service of that runtime on 8080, checked by TCP
    connects, reached by Traefik only."""
    return {
        "kind": kind,
        "component": "synthetic",
        "runtime": runtime,
        "port": 8080,
        "port_name": "http",
        "probes": {"readiness": {"check": {"type": "tcp"}}, "liveness": {"check": {"type": "tcp"}}},
        "run_as_user": 10001,
        "run_as_group": 10001,
        "clients": ["traefik"],
    }


def runnable(workloads: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The `workloads` and `images` keys of a stack of synthetic workloads: each one whose name has no built-in
    application facts and that gives none gets `generic_app` of its runtime (a StatefulSet when formula-sized, as
    formula sizing needs), and every one an image."""
    built_in = set(built_in_apps())
    completed = {
        name: workload
        if name in built_in or "app" in workload
        else {
            **workload,
            "app": generic_app(
                workload.get("runtime", "none"),
                "StatefulSet" if workload.get("sized_by") == "formula" else "Deployment",
            ),
        }
        for name, workload in workloads.items()
    }
    return {"workloads": completed, "images": {name: f"example.org/{name}:1.0.0" for name in workloads}}


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
        **runnable({name: workload(spec) for name, spec in workloads.items()}),
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


def _routes(*routes: tuple[str, str]) -> list[dict[str, str]]:
    return [{"path": path, "workload": workload, "why": "a test route"} for path, workload in routes]


def _new_workload(values: dict[str, Any], name: str, **fields: Any) -> None:
    """Adds workload `name` to prod's raw values: the frontend's sizes, an image, and `fields` (its `app`)."""
    values["workloads"][name] = {**values["workloads"]["frontend"], **fields}
    values["images"][name] = f"ghcr.io/hyperstudy/{name}:1.0.0"


def _set_key(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(values: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        node = values
        for part in parents:
            node = node.setdefault(part, {})
        if value is KeyError:
            del node[leaf]
        else:
            node[leaf] = value

    return mutate


def _scaled_with_a_long_name(values: dict[str, Any]) -> None:
    # The formula-sized workload under a 35-character name, and a window: `<name>-teaching-lab-up` is 51 characters,
    # `-down` 53.
    name = "participant-session-backend-primary"
    backend = values["workloads"].pop("backend")
    values["workloads"][name] = {**backend, "app": generic_app("nodejs", "StatefulSet")}
    values["images"][name] = values["images"].pop("backend")
    values["capacity"]["schedule"] = [
        {
            "name": "teaching-lab",
            "weekly": {"days": ["wed"], "start": "09:00", "end": "11:30", "timezone": "Europe/Berlin"},
            "experiments": {"medium": 3},
        }
    ]


_BUILT_IN = "backend, frontend, metrics-service, pod-router, redis, traefik"
# Stacks the application cannot run: a change to prod's raw values (as `read_stack_values` gives them) and the one
# line that `python -m sizing plan` (after `error: `) and the program (after `invalid stack config: `) refuse it
# with, both from the stack config's validation.
UNRUNNABLE: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "a workload without application facts": (
        lambda v: _new_workload(v, "worker"),
        "hyperstudy-infra:workloads.worker.app: required key is missing: worker has no built-in application facts, "
        f"so give them in full (built-in defaults exist for {_BUILT_IN})",
    ),
    "a workload with part of its application facts": (
        lambda v: _new_workload(v, "worker", app={"kind": "Deployment"}),
        "hyperstudy-infra:workloads.worker.app.component: required key is missing",
    ),
    "an application fact of no name": (
        _set_key("workloads.frontend.app", {"colour": "red"}),
        "hyperstudy-infra:workloads.frontend.app.colour: unknown key",
    ),
    "a workload without an image": (
        _set_key("images.redis", KeyError),
        "hyperstudy-infra:images.redis: required key is missing (a pinned image per workload)",
    ),
    "a runtime the image does not run": (
        _set_key("workloads.traefik.runtime", "none"),
        "hyperstudy-infra:workloads.traefik.runtime: is 'none', but the traefik image runs 'go' "
        "(workloads.traefik.app.runtime): its memory setting would be derived for the wrong runtime",
    ),
    "more replicas than the application runs": (
        _set_key("workloads.redis.replicas", 3),
        "hyperstudy-infra:workloads.redis.replicas: 3 is above 1, the most pods redis can run "
        "(workloads.redis.app.max_replicas): further pods would not share its state",
    ),
    "formula sizing of a Deployment": (
        lambda v: v["workloads"]["frontend"].update(
            sized_by="formula", memory={"baseline": v["workloads"]["frontend"]["memory"]["baseline"]}
        ),
        "hyperstudy-infra:workloads.frontend.sized_by: formula needs a StatefulSet, and frontend is a Deployment "
        "(workloads.frontend.app.kind): the monitoring matches formula-sized pods by their `<name>-<ordinal>` names, "
        "which only StatefulSet pods have",
    ),
    "a window whose CronJob name Kubernetes would refuse": (
        _scaled_with_a_long_name,
        "hyperstudy-infra:capacity.schedule.teaching-lab: its CronJob would be named "
        "'participant-session-backend-primary-teaching-lab-down', 53 characters: Kubernetes takes at most 52 (its "
        "Jobs add 11); shorten the window's name",
    ),
    "a route to a workload the stack does not run": (
        _set_key("ingress.routes", _routes(("/", "frontend"), ("/reports", "reports"))),
        f"hyperstudy-infra:ingress.routes.1.workload: 'reports' is no workload of this stack (workloads: {_BUILT_IN})",
    ),
    "a path routed twice": (
        _set_key("ingress.routes", _routes(("/api", "backend"), ("/api/", "backend"))),
        "hyperstudy-infra:ingress.routes.1.path: '/api/' is routed twice (also routes.0)",
    ),
    "a route to a workload that does not admit Traefik": (
        _set_key("ingress.routes", _routes(("/cache", "redis"))),
        "hyperstudy-infra:ingress.routes.0.workload: redis does not admit traefik, which serves the routes: add it "
        "to workloads.redis.app.clients",
    ),
    "a route that makes metrics public": (
        _set_key("ingress.routes", _routes(("/", "backend"))),
        "hyperstudy-infra:ingress.routes.0.path: '/' would make backend's /metrics, /health public (its metrics or "
        "health checks): route narrower prefixes",
    ),
    "a release that is no label value": (
        _set_key("monitoring.release", "kube prometheus"),
        "hyperstudy-infra:monitoring.release: String should match pattern "
        "'^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$'",
    ),
}
