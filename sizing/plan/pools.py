"""The cheapest-pool search: every machine type of the catalogue, on-demand and spot, planned for the stack's complete
set of pods by the same planner as the stack's own pool, ranked by monthly cost at the minimum.

An option is feasible when its machine holds every pod (the planner's checks: the largest limit fits a node's free
memory after overhead, every CPU request fits the plannable CPU, a shared-core type's sustained share included) and
the stack allows it (spot only with `nodes.allow_spot`). Spread, node-loss survival and peak load are part of every
plan, so they shape min and max rather than rule a machine out.

Every option is priced with the stack's boot disk and commitment (what `plan` compares). `recommend` also searches
the bill's options (`bill_search`): each boot disk type the catalogue prices, down to the stack's boot disk floor, and
each committed-use term for on-demand pools. A boot disk's size changes the price and nothing the planner checks, so
of the sizes from the floor up only the floor can be cheapest: it is the one size searched beside the stack's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sizing.core.errors import ConfigError
from sizing.core.model import COMMITMENT_TERMS, DISK_TYPES, Commitment
from sizing.plan.bill import BootDisk, DiskFloor, boot_disk_floor, commitment_note, configured_disk, node_price
from sizing.plan.nodes import Demand, plan_pool, room
from sizing.plan.types import BillSearch, NodePlan, PoolOption, Recommendation

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


def _option(
    config: StackConfig, plan: NodePlan, spot: bool, commitment: Commitment | None = None, disk: BootDisk | None = None
) -> PoolOption:
    disk = disk or configured_disk(config)
    price = node_price(config, plan.machine_type, spot, commitment, disk)
    allowed = config.nodes.spot_allowed or not spot
    return PoolOption(
        machine_type=plan.machine_type,
        spot=spot,
        min=plan.min,
        min_proven=plan.min_proven,
        max=plan.max,
        monthly_usd=round(price.pool_usd_month(plan.min, plan.min), 2),
        max_monthly_usd=round(price.pool_usd_month(plan.max, plan.min), 2),
        binding=plan.binding,
        feasible=allowed,
        reason=None if allowed else f"{config.key('nodes.allow_spot')}: spot nodes are not allowed in this stack",
        disk_size_gb=disk.size_gb,
        disk_type=disk.disk_type,
        commitment=price.commitment,
    )


def _infeasible(config: StackConfig, machine_type: str, spot: bool, err: ConfigError) -> PoolOption:
    disk = configured_disk(config)
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
        disk_size_gb=disk.size_gb,
        disk_type=disk.disk_type,
        commitment=node_price(config, machine_type, spot).commitment,
    )


def search(config: StackConfig, demand: Demand) -> Search:
    """Plan `demand` on every machine type of the stack's catalogue, on-demand and spot."""
    options, plans, errors = [], {}, {}
    for name, machine in config.catalogue.machine_types_merged().items():
        try:
            plans[name] = plan = plan_pool(config, demand, name, machine, spot=False)
        except ConfigError as err:
            errors[name] = err
            options += [_infeasible(config, name, spot, err) for spot in (False, True)]
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
            lower = space.lower_bound
            floor = round(node_price(config, name, spot).pool_usd_month(lower, lower), 2)
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


def bill_search(config: StackConfig, found: Search, floor: DiskFloor) -> BillSearch:
    """Every feasible option of `found` over the bill's options too: the stack's boot disk and each disk type at
    `floor`, on demand with no commitment and each term the catalogue discounts the series for, and spot (never
    committed). Ranked as `search` ranks; the cheapest committed option is reported apart from the cheapest one."""
    disks = [configured_disk(config)] if config.nodes.disk_size_gb >= floor.size_gb else []
    disks += [BootDisk(floor.size_gb, kind) for kind in DISK_TYPES if BootDisk(floor.size_gb, kind) not in disks]
    options = []
    for name, plan in found.plans.items():
        terms = ["none", *(t for t in COMMITMENT_TERMS if config.catalogue.commitment_discount(name, t) is not None)]
        for spot in (False, True) if config.nodes.spot_allowed else (False,):
            for term in ("none",) if spot else terms:
                options += [_option(config, plan, spot, term, disk) for disk in disks]
    ranked = tuple(sorted(options, key=_bill_rank))
    current = found.option(config.nodes.machine_type, config.nodes.spot).monthly_usd
    cheapest = next(o for o in ranked if o.commitment == "none")
    committed = next((o for o in ranked if o.commitment != "none"), None)
    if committed is not None and _bill_rank(committed) > _bill_rank(cheapest):
        committed = None
    return BillSearch(
        disk_floor_gb=floor.size_gb,
        disk_floor_detail=floor.detail,
        cheapest=cheapest,
        cheapest_saves_usd_month=None if current is None else round(current - cheapest.monthly_usd, 2),
        committed=committed,
        committed_saves_usd_month=None
        if current is None or committed is None
        else round(current - committed.monthly_usd, 2),
        committed_binds=None if committed is None else commitment_note(committed.commitment),
        options=ranked,
    )


def _bill_rank(option: PoolOption) -> tuple:
    # Ties go to the plainer choice: no commitment, then the larger and faster disk.
    return (
        *_rank(option)[:5],
        option.commitment != "none",
        -option.disk_size_gb,
        option.disk_type,
        option.machine_type,
        option.spot,
    )


def recommend(config: StackConfig, stack: str, demand: Demand) -> Recommendation:
    """Search the catalogue for `demand`, then the bill's options for the pools that hold it; a `ConfigError` when
    no machine type can hold it."""
    found = search(config, demand)
    best = found.best
    if best is None:
        raise found.nothing_feasible(config)
    current = found.option(config.nodes.machine_type, config.nodes.spot)
    overpay = None if current.monthly_usd is None else round(current.monthly_usd - best.monthly_usd, 2)
    floor = boot_disk_floor(config, [*demand.pods, *demand.agents])
    return Recommendation(
        stack=stack,
        profile=config.profile,
        current=current,
        best=best,
        overpay_usd_month=overpay,
        options=found.options,
        bill=bill_search(config, found, floor),
    )
