"""All platform-guard policies, in one list. Only the pack's `__main__.py` builds a PolicyPack
from it; the offline adapter (platformctl.crossguard) runs the same objects. The checks of what the
Helm releases render are not here: CrossGuard never sees those objects, so the review pipeline
runs them itself (platformctl/runtime_checks.py)."""

from __future__ import annotations

from platform_guard.policies import aws_api, budget, cost_traps, operations, security, tagging

ALL = [*tagging.POLICIES, *budget.POLICIES, *cost_traps.POLICIES, *security.POLICIES,
       *operations.POLICIES, *aws_api.POLICIES]
BY_NAME = {policy.name: policy for policy in ALL}

assert len(BY_NAME) == len(ALL), "policy names must be unique"
