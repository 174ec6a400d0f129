"""Shared test set-up: the recording Pulumi mocks, installed once before any program code runs, and fixtures."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from offline.mocks import RecordingMocks, install
from offline.render import Rendered
from sizing.core.clock import EPOCH_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "hyperstudy-infra"


MOCKS = RecordingMocks()
install(MOCKS, project=PROJECT, stack="prod")


@pytest.fixture(scope="session")
def recording_mocks() -> RecordingMocks:
    """The one mocks instance the runtime uses, for module-scoped fixtures that run the program once."""
    return MOCKS


@pytest.fixture
def mocks(recording_mocks: RecordingMocks) -> RecordingMocks:
    """The recorder, emptied for this test."""
    recording_mocks.resources.clear()
    return recording_mocks


@pytest.fixture
def ran() -> Iterator[list]:
    """Checks inside apply callbacks append here: a test whose check never ran (an unknown output skips the callback
    silently) fails at teardown instead of passing."""
    calls: list = []
    yield calls
    assert calls, "the check inside apply never ran"


@pytest.fixture(scope="session")
def render(recording_mocks: RecordingMocks) -> Callable[..., Rendered]:
    """`render(stack, profile=None)`: the stack's offline render (`offline.render.run_program` of this project, the
    stack file's profile unless given), made once per session and clock (`SOURCE_DATE_EPOCH`) and handed out as a
    copy, which a test may change. Once per session means once per xdist worker: the modules that share renders are
    one xdist group (pyproject.toml). A test of the render itself, or of what the mocks recorded, runs the program."""
    from offline.render import run_program

    made: dict[tuple[str, str | None, str | None], Rendered] = {}

    def get(stack: str, profile: str | None = None) -> Rendered:
        key = (stack, profile, os.environ.get(EPOCH_VARIABLE))
        if key not in made:
            made[key] = run_program(stack, ROOT, profile=profile, mocks=recording_mocks)
        return copy.deepcopy(made[key])

    return get


@pytest.fixture(scope="session")
def prod_config():
    """The prod stack's validated config (optimized profile)."""
    from sizing.config.loader import load_stack

    return load_stack("prod", ROOT)


@pytest.fixture(scope="session")
def prod_plan(prod_config):
    """The prod stack's sizing plan (optimized profile)."""
    from sizing.plan.build import build_plan

    return build_plan(prod_config, "prod")


@pytest.fixture(scope="session")
def prometheus_binaries():
    """prometheus and promtool from .bin/ (tools/install-prometheus); CI fails without them, elsewhere tests skip."""
    from tests.prometheus_server import require_binaries

    return require_binaries()


# A page: (status, content type, body), for the path asked.
Respond = Callable[[str], tuple[int, str, bytes]]


@pytest.fixture
def http_server() -> Iterator[Callable[[Respond], str]]:
    """`http_server(respond)`: a local HTTP server answering every GET with `respond(path)`, its base URL returned;
    each is shut down at teardown (a fake /metrics endpoint, or a Prometheus API answering nothing)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    servers: list[ThreadingHTTPServer] = []

    def start(respond: Respond) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, content_type, body = respond(self.path)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


@pytest.fixture
def prometheus_server(prometheus_binaries, tmp_path) -> Iterator:
    """Start real Prometheus servers: `prometheus_server(rules=..., series=[...], live=..., history=...)` takes
    `start_prometheus`'s options (tests/prometheus_server.py) and returns a running server; each is stopped by PID at
    teardown, whatever the test did."""
    from tests.prometheus_server import prometheus_factory

    with prometheus_factory(tmp_path, prometheus_binaries) as start:
        yield start


# How xdist shares the suite out (`pytest_xdist_make_scheduler`): a module is one unit, run by one worker, so its
# module-scoped fixtures (a Prometheus server, the promtool batch) are made once; the modules that share the session's
# renders (`render`) are one unit together, so each stack and profile renders once. Units go out in the order
# collected; the long ones first (`FIRST`, the rest keep their order), so that none starts last and runs alone, and
# the ones that mostly wait on a server between those that keep a core busy.
RENDER_MODULES = (
    "tests/artifacts/test_render.py",
    "tests/artifacts/test_checkov.py",
    "tests/offline/test_diff.py",
    "tests/test_main.py",
    "tests/policy/test_policies.py",
    "tests/artifacts/test_public_routes.py",
    "tests/artifacts/test_scaling_jobs.py",
    "tests/artifacts/test_maintenance_render.py",
)
FIRST = (
    # promtool's batch keeps both cores busy while the other worker mostly waits on Prometheus servers.
    "tests/monitoring/test_rules_promtool.py",
    "tests/monitoring/test_schedule_alerts_prometheus.py",
    "tests/monitoring/test_rules_prometheus.py",
    # Each a minute or less, mostly waiting on a real server, a backfill or a make: early, beside the renders.
    "tests/monitoring/test_drift_prometheus.py",
    "tests/test_readme_workflows.py",
    "tests/sizing/test_rightsize_prometheus.py",
    "tests/monitoring/test_drift_promtool.py",
    *RENDER_MODULES,
    "tests/monitoring/test_alertmanager.py",
    "tests/sizing/test_calibration.py",
    "tests/sizing/test_calibration_prometheus.py",
    "tests/components/test_app.py",
    "tests/test_prometheus_server.py",
    "tests/sizing/test_properties.py",
    "tests/components/test_schedule.py",
    "tests/artifacts/test_golden.py",
)


def xdist_unit(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return "renders" if module in RENDER_MODULES else module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: i for i, module in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(FIRST)))


@pytest.hookimpl(optionalhook=True)  # xdist's hooks: unknown with -p no:xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleUnits(LoadScopeScheduling):
        def __init__(self, config: pytest.Config, log=None) -> None:
            super().__init__(config, log)
            config.option.loadscopereorder = False  # the collection's order, not the units' sizes

        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(nodeid)

    return ModuleUnits(config, log)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """Tell the workers that each runs whole modules (`one_worker_runs_each_module`, tests/promtool_batch.py)."""
    node.workerinput["whole_modules"] = True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report ends with the log tail of every Prometheus server still running."""
    report = yield
    if report.failed:
        from tests.prometheus_server import PrometheusServer

        for server in list(PrometheusServer.running):
            report.sections.append((f"prometheus log tail ({server.url})", server.log_tail()))
    return report
