"""`cost`: what the stack's bill is measured against (the observed starting bill) and credited (the free tier)."""

from __future__ import annotations

from pydantic import Field

from sizing.core.model import Commitment, Model


class ObservedBill(Model):
    """The node bill a stack started from, as the billing account showed it."""

    monthly_usd: float = Field(gt=0, description="what the nodes cost per month, USD")
    nodes: int = Field(gt=0, description="how many nodes that was")
    machine_type: str = Field(min_length=1, description="their machine type")


class CostConfig(Model):
    """What the stack's bill is measured against, and what it is credited."""

    observed_baseline: ObservedBill | None = Field(
        None, description="the node bill before the optimisation; savings are reported against it"
    )
    free_tier_credit: bool = Field(
        False,
        description="GKE's free-tier credit (one per billing account) goes to this stack's cluster; it applies only "
        "to a zonal cluster the stack creates",
    )
    commitment: Commitment = Field(
        "none",
        description="a resource-based committed-use discount on the pool's machines, sized to its minimum: 1y or 3y "
        "binds the billing account to pay for those vCPUs and memory for the whole term, used or not; never with "
        "spot nodes",
    )
