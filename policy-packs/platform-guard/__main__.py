"""platform-guard, for the Pulumi CLI:

    pulumi preview --stack dev --policy-pack policy-packs/platform-guard \\
        --policy-pack-config <(platformctl policy-config dev)

This is the only place that builds the PolicyPack (constructing it starts the analyzer's gRPC
server and blocks); the policies live in platform_guard/policies and run offline too."""

import sys
from pathlib import Path

# The pack is self-contained: its code sits beside this file, whatever the working directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from platform_guard.policies import ALL  # noqa: E402
from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

PolicyPack(
    name="platform-guard",
    description="Tagging, budget, cost traps and security baseline of the platform.",
    # Each policy sets its own level; this applies only to one that does not.
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=ALL,
)
