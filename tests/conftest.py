"""Shared test set-up: the recording Pulumi mocks, installed once before any program code runs, and fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from offline.mocks import RecordingMocks, install

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


@pytest.fixture
def prometheus_server(prometheus_binaries, tmp_path) -> Iterator:
    """Start real Prometheus servers: `prometheus_server(rules=..., series=[...], live=..., history=...)` takes
    `start_prometheus`'s options (tests/prometheus_server.py) and returns a running server; each is stopped by PID at
    teardown, whatever the test did."""
    from tests.prometheus_server import prometheus_factory

    with prometheus_factory(tmp_path, prometheus_binaries) as start:
        yield start


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report ends with the log tail of every Prometheus server still running."""
    report = yield
    if report.failed:
        from tests.prometheus_server import PrometheusServer

        for server in list(PrometheusServer.running):
            report.sections.append((f"prometheus log tail ({server.url})", server.log_tail()))
    return report
