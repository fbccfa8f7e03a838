"""All platform-guard policies, in one list. Only the pack's `__main__.py` builds a PolicyPack
from it; the offline adapter (platformctl.guard) runs the same objects."""

from __future__ import annotations

from platform_guard.policies import budget, cost_traps, runtime, security, tagging

ALL = [*tagging.POLICIES, *budget.POLICIES, *cost_traps.POLICIES, *security.POLICIES,
       *runtime.POLICIES]
BY_NAME = {policy.name: policy for policy in ALL}

assert len(BY_NAME) == len(ALL), "policy names must be unique"
