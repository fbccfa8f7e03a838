"""The floor an offline review is judged against: the Pulumi SDK alone registering N Kubernetes
objects under its documented mocks, with nothing of this project (no config model, tagging,
policies, cost model or rendering).

    .venv/bin/python bench/sdk_floor.py 990        # prints: 990 resources <seconds> s

The objects come in threes, the shape of a team's baseline: a Namespace, its ResourceQuota and
a default-deny NetworkPolicy that allows DNS, the last two depending on the first's outputs.
The time printed covers the registrations only (imports excluded); bench/scale.py compares a
review of a stack with about as many resources to it as a ratio, since machines differ.
"""

from __future__ import annotations

import sys
import time

import pulumi


class _EchoMocks(pulumi.runtime.Mocks):
    """Every resource is created with the inputs it was given; no function is called."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def main(count: int) -> None:
    pulumi.runtime.set_mocks(_EchoMocks(), preview=False)
    import pulumi_kubernetes as k8s  # after set_mocks, as the SDK asks

    groups = count // 3

    @pulumi.runtime.test
    def register():
        last = []
        for index in range(groups):
            team = f"team-{index:04d}"
            namespace = k8s.core.v1.Namespace(
                team, metadata={"name": team, "labels": {"platform.example.com/team": team}})
            k8s.core.v1.ResourceQuota(
                f"{team}-quota", metadata={"name": "team-quota",
                                           "namespace": namespace.metadata.name},
                spec={"hard": {"pods": "50", "requests.cpu": "4", "requests.memory": "8Gi"}})
            policy = k8s.networking.v1.NetworkPolicy(
                f"{team}-default-deny",
                metadata={"name": "default-deny", "namespace": namespace.metadata.name},
                spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                      "egress": [{"to": [{"namespaceSelector": {"matchLabels": {
                          "kubernetes.io/metadata.name": "kube-system"}}}],
                          "ports": [{"protocol": "UDP", "port": 53}]}]})
            last.append(policy.id)
        return pulumi.Output.all(*last)

    started = time.perf_counter()
    register()
    print(f"{groups * 3} resources {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 990)
