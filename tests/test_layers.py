"""The layers of the tree, as import-linter reads them from pyproject.toml ([tool.importlinter]): every contract is
kept, no module imports a layer above its own, and no import cycle exists anywhere in the program's packages. Each
check is also shown to fail on a graph with one bad import added, so a contract that can no longer break (a layer
renamed away, say) does not pass silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest
from importlinter.application import use_cases
from importlinter.application.app_config import settings
from importlinter.configuration import configure
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract
from importlinter.domain.contract import registry

ROOT = Path(__file__).resolve().parent.parent
configure()
# The contract types pyproject.toml uses (the CLI registers every built-in one the same way before it reads them).
registry.register(LayersContract, "layers")
registry.register(ForbiddenContract, "forbidden")
OPTIONS = use_cases.read_user_options(str(ROOT / "pyproject.toml"))
PACKAGES = tuple(OPTIONS.session_options["root_packages"])


def _report(extra: tuple[tuple[str, str], ...] = ()):
    """import-linter's report on the tree, with `extra` (importer, imported) edges added to its graph."""
    builder = settings.GRAPH_BUILDER
    real = builder.build

    def build(**kwargs):
        graph = real(**{**kwargs, "cache_dir": None})
        for importer, imported in extra:
            graph.add_import(importer=importer, imported=imported)
        return graph

    builder.build = build
    try:
        return use_cases.create_report(OPTIONS, cache_dir=None)
    finally:
        builder.build = real


def _broken(report) -> list[str]:
    return [contract.name for contract, check in report.get_contracts_and_checks() if not check.kept]


def test_every_layer_contract_is_kept():
    report = _report()
    assert _broken(report) == []
    assert report.kept_count == len(OPTIONS.contracts_options) == 4


@pytest.mark.parametrize(
    ("importer", "imported", "contract"),
    [
        ("sizing.core.model", "sizing.plan.types", "sizing's layers"),
        ("sizing.facts.charts", "sizing.config.stack", "sizing's layers"),
        ("sizing.plan.types", "sizing.plan.nodes", "the plan's one orchestrator"),
        ("sizing.plan.placement", "sizing.plan.types", "the plan's one orchestrator"),
        ("components.workload", "offline.render", "the program's packages"),
        ("sizing.plan.build", "components.node_pool", "the program's packages"),
        ("monitoring.rules", "components.workload", "the program's packages"),
        ("sizing.plan.types", "monitoring.names", "the program's packages"),
        ("sizing.config.stack", "pulumi", "sizing and monitoring are pure"),
        ("monitoring.selectors", "pulumi_kubernetes", "sizing and monitoring are pure"),
    ],
)
def test_an_upward_import_breaks_its_contract(importer, imported, contract):
    broken = _broken(_report(((importer, imported),)))
    assert [name for name in broken if name.startswith(contract)], broken


def _cycles(graph) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan), each sorted: an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> Iterator[None]:
        # Iterative over an explicit stack of generators: the graph's depth must not meet Python's recursion limit.
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                yield imported
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for start in sorted(graph.modules):
        if start in index:
            continue
        frames = [(start, visit(start))]
        while frames:
            try:
                child = next(frames[-1][1])
            except StopIteration:
                frames.pop()
                continue
            frames.append((child, visit(child)))
    return found


def _graph():
    return grimp.build_graph(*PACKAGES, include_external_packages=False, cache_dir=None)


def test_no_module_takes_part_in_an_import_cycle():
    graph = _graph()
    assert len(graph.modules) > 80  # the whole program, not an empty path
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_across_layers():
    # The result models reaching up for the orchestrator: every planner between them joins the cycle.
    graph = _graph()
    graph.add_import(importer="sizing.plan.types", imported="sizing.plan.build")
    [cycle] = _cycles(graph)
    assert {"sizing.plan.build", "sizing.plan.types", "sizing.plan.nodes", "sizing.plan.schedule"} <= set(cycle)
    assert not any(module.startswith(("sizing.core", "sizing.config", "sizing.cli")) for module in cycle)
    # The bottom layer reaching for the top one.
    graph = _graph()
    graph.add_import(importer="sizing.core.errors", imported="sizing.observe.status")
    [cycle] = _cycles(graph)
    assert {"sizing.core.errors", "sizing.observe.status", "sizing.core.model"} <= set(cycle)
