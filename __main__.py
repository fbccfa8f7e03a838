"""Entry point for the Pulumi CLI: `pulumi up --stack dev`. The program is `stacks.platform.run`."""

import pulumi

from stacks.platform import run

for key, value in run().items():
    pulumi.export(key, value)
