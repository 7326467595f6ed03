"""Priority tiers: named default weights of a tenant's fair share of the engines.

Under contention each tenant waiting gets engine capacity in proportion to its weight (admission in
services/admission.py, the engines' own queues through tts_contract.fairness). A tenant's tier sets
its weight; an explicit weight (within WEIGHT_RANGE) overrides it and the tier then reads "custom"
unless one is named with it. Weights are relative, so only their ratios matter.
"""

from __future__ import annotations

from typing import Literal, get_args

from tts_contract.fairness import DEFAULT_WEIGHT, WEIGHT_RANGE

TierName = Literal["economy", "standard", "premium", "enterprise"]
TIERS: dict[str, float] = {"economy": 0.5, "standard": DEFAULT_WEIGHT, "premium": 3.0, "enterprise": 10.0}
DEFAULT_TIER = "standard"
CUSTOM_TIER = "custom"  # a weight set without naming a tier

assert list(TIERS) == list(get_args(TierName))
assert all(WEIGHT_RANGE[0] <= w <= WEIGHT_RANGE[1] for w in TIERS.values())


def resolve(tier: str | None, weight: float | None, current: tuple[str, float] | None = None) -> tuple[str, float]:
    """The (tier, weight) a tenant gets from what an admin gave: a tier alone takes the tier's weight, a
    weight alone is "custom", both keep both. Nothing given keeps `current` (or the default tier)."""
    if tier is not None and tier not in TIERS:
        raise ValueError(f"tier must be one of {', '.join(TIERS)}")
    if weight is not None and not WEIGHT_RANGE[0] <= weight <= WEIGHT_RANGE[1]:
        raise ValueError(f"weight must be within {WEIGHT_RANGE[0]}..{WEIGHT_RANGE[1]}")
    if tier is None and weight is None:
        return current or (DEFAULT_TIER, TIERS[DEFAULT_TIER])
    if tier is None:
        return CUSTOM_TIER, float(weight)  # type: ignore[arg-type]
    return tier, float(TIERS[tier] if weight is None else weight)
