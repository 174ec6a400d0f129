"""The cheapest-pool search: every machine type of the catalogue, on-demand and spot, planned for the stack's complete
set of pods by the same planner as the stack's own pool, ranked by monthly cost at the minimum.

An option is feasible when its machine holds every pod (the planner's checks: the largest limit fits a node's free
memory after overhead, every CPU request fits the plannable CPU, a shared-core type's sustained share included) and
the stack allows it (spot only with `nodes.allow_spot`). Spread, node-loss survival and peak load are part of every
plan, so they shape min and max rather than rule a machine out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sizing.core.errors import ConfigError
from sizing.plan.bill import node_usd_month
from sizing.plan.nodes import Demand, plan_pool, room
from sizing.plan.types import NodePlan, PoolOption, Recommendation

if TYPE_CHECKING:
    from sizing.config.stack import StackConfig


@dataclass(frozen=True)
class Search:
    """Every option, ranked (feasible ones first, cheapest at min first); the node plan of every machine type that
    holds the stack, and why each other one cannot."""

    options: tuple[PoolOption, ...]
    plans: dict[str, NodePlan]
    errors: dict[str, ConfigError]

    @property
    def best(self) -> PoolOption | None:
        return self.options[0] if self.options and self.options[0].feasible else None

    def option(self, machine_type: str, spot: bool) -> PoolOption:
        return next(o for o in self.options if o.machine_type == machine_type and o.spot == spot)

    def nothing_feasible(self, config: StackConfig) -> ConfigError:
        """The error that rules out every machine: the one the most generous machine type meets."""
        machines = config.catalogue.machine_types_merged()
        largest = max(self.errors, key=lambda name: (machines[name].memory_mib, machines[name].plannable_cpu_m(), name))
        err = self.errors[largest]
        return ConfigError(
            err.key,
            f"{err.problem}; {largest} is the largest machine type of the catalogue, so no pool holds the stack",
        )


def _rank(option: PoolOption) -> tuple:
    priced = option.monthly_usd is not None
    return (
        not option.feasible,
        not priced,
        option.monthly_usd or 0.0,
        option.min or 0,
        option.max_monthly_usd or 0.0,
        option.machine_type,
        option.spot,
    )


def _option(config: StackConfig, plan: NodePlan, spot: bool) -> PoolOption:
    per_node = node_usd_month(config, plan.machine_type, spot)
    allowed = config.nodes.spot_allowed or not spot
    return PoolOption(
        machine_type=plan.machine_type,
        spot=spot,
        min=plan.min,
        min_proven=plan.min_proven,
        max=plan.max,
        monthly_usd=round(plan.min * per_node, 2),
        max_monthly_usd=round(plan.max * per_node, 2),
        binding=plan.binding,
        feasible=allowed,
        reason=None if allowed else f"{config.key('nodes.allow_spot')}: spot nodes are not allowed in this stack",
    )


def _infeasible(machine_type: str, spot: bool, err: ConfigError) -> PoolOption:
    return PoolOption(
        machine_type=machine_type,
        spot=spot,
        min=None,
        max=None,
        monthly_usd=None,
        max_monthly_usd=None,
        binding=None,
        feasible=False,
        reason=str(err),
    )


def search(config: StackConfig, demand: Demand) -> Search:
    """Plan `demand` on every machine type of the stack's catalogue, on-demand and spot."""
    options, plans, errors = [], {}, {}
    for name, machine in config.catalogue.machine_types_merged().items():
        try:
            plans[name] = plan = plan_pool(config, demand, name, machine, spot=False)
        except ConfigError as err:
            errors[name] = err
            options += [_infeasible(name, spot, err) for spot in (False, True)]
            continue
        options += [_option(config, plan, spot) for spot in (False, True)]
    return Search(options=tuple(sorted(options, key=_rank)), plans=plans, errors=errors)


def cheapest(config: StackConfig, demand: Demand) -> PoolOption:
    """The best option of `search`, found without planning every machine type: candidates go cheapest lower bound
    first, and the search stops once a lower bound alone costs more than the best pool planned so far."""
    candidates, errors = [], {}
    spots = (False, True) if config.nodes.spot_allowed else (False,)
    for name, machine in config.catalogue.machine_types_merged().items():
        try:
            space = room(config, demand, name, machine)
        except ConfigError as err:
            errors[name] = err
            continue
        for spot in spots:
            floor = round(space.lower_bound * node_usd_month(config, name, spot), 2)
            candidates.append((floor, name, spot, machine, space))
    if not candidates:
        raise Search(options=(), plans={}, errors=errors).nothing_feasible(config)
    best: PoolOption | None = None
    plans: dict[str, NodePlan] = {}
    for floor, name, spot, machine, space in sorted(candidates, key=lambda c: c[:3]):
        if best is not None and best.monthly_usd is not None and floor > best.monthly_usd:
            break
        if name not in plans:
            plans[name] = plan_pool(config, demand, name, machine, spot=False, space=space)
        option = _option(config, plans[name], spot)
        if best is None or _rank(option) < _rank(best):
            best = option
    assert best is not None
    return best


def recommend(config: StackConfig, stack: str, demand: Demand) -> Recommendation:
    """Search the catalogue for `demand`; a `ConfigError` when no machine type can hold it."""
    found = search(config, demand)
    best = found.best
    if best is None:
        raise found.nothing_feasible(config)
    current = found.option(config.nodes.machine_type, config.nodes.spot)
    overpay = None if current.monthly_usd is None else round(current.monthly_usd - best.monthly_usd, 2)
    return Recommendation(
        stack=stack,
        profile=config.profile,
        current=current,
        best=best,
        overpay_usd_month=overpay,
        options=found.options,
    )
