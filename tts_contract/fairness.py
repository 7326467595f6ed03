"""Who a synthesis request is for, as the engines' fair queues see it.

The control plane sends each engine request's tenant and its weight as Triton request parameters
(`TENANT_PARAM`, `WEIGHT_PARAM`); the models' queues share their capacity between the tenants
waiting in proportion to the weights. A request without them belongs to the anonymous tenant ""
with weight 1, so older clients keep working.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

TENANT_PARAM = "tenant"
WEIGHT_PARAM = "weight"

DEFAULT_WEIGHT = 1.0
WEIGHT_RANGE = (0.01, 100.0)  # a tenant never gets nothing, and never everything by a typo
MAX_TENANT_CHARS = 128


@dataclass(frozen=True)
class Share:
    """A tenant's key in a fair queue and its weight (relative: 3 gets three times what 1 gets)."""

    tenant: str = ""
    weight: float = DEFAULT_WEIGHT

    def __post_init__(self) -> None:
        if len(self.tenant) > MAX_TENANT_CHARS:
            raise ValueError(f"tenant is longer than {MAX_TENANT_CHARS} characters")
        if not math.isfinite(self.weight) or not WEIGHT_RANGE[0] <= self.weight <= WEIGHT_RANGE[1]:
            raise ValueError(f"weight must be within {WEIGHT_RANGE[0]}..{WEIGHT_RANGE[1]}")

    def parameters(self) -> dict[str, str | float]:
        """The Triton request parameters that carry this share."""
        return {TENANT_PARAM: self.tenant, WEIGHT_PARAM: float(self.weight)}

    @classmethod
    def from_parameters(cls, params: Mapping[str, object] | None) -> Share:
        """The share a request's parameters name; missing or malformed values fall back to the defaults."""
        params = params or {}
        tenant = params.get(TENANT_PARAM, "")
        tenant = tenant[:MAX_TENANT_CHARS] if isinstance(tenant, str) else ""
        raw = params.get(WEIGHT_PARAM, DEFAULT_WEIGHT)
        try:
            weight = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            weight = DEFAULT_WEIGHT
        if not math.isfinite(weight):
            weight = DEFAULT_WEIGHT
        weight = min(max(weight, WEIGHT_RANGE[0]), WEIGHT_RANGE[1])
        return cls(tenant=tenant, weight=weight)
