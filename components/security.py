"""`SecurityStack`: the security of an environment, as one component.

Three children, installed in this order on the target:

1. `AdmissionControl`: OPA Gatekeeper and the platform's admission policies, and signed images
   (the Sigstore policy-controller). Its webhooks fail closed, so it is declared a
   prerequisite: everything installed after it waits until it serves.
2. `Tenancy`: the team namespaces and their baseline (Pod Security `restricted`, quota,
   limits, default-deny network policies, RBAC), written once Gatekeeper can check them.
3. `SecretsStack`: Vault (KMS auto-unseal, TLS from cert-manager), the Vault Secrets Operator,
   and once Vault is reachable its configuration (auth, engines, policies, the teams' database
   roles), after the team namespaces it delivers secrets into.

The target must serve the monitoring CRDs (ServiceMonitor, PrometheusRule) before this stack
installs: Vault's chart renders ServiceMonitors. `ObservabilityStack` installs them; build it
first on the same target.

The three were top-level components before this one existed: each carries an alias to its
former place (the root stack), and the engine carries that alias down to everything beneath
it, so an existing stack's Gatekeeper, Vault and team namespaces are adopted, not replaced
(tests/test_urns.py proves it against a snapshot of both stacks' URNs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.admission import AdmissionArgs, AdmissionControl
from components.database import DatabaseRef, client_tls
from components.kubernetes import KubernetesTarget
from components.network import NetworkRef
from components.tagging import PlatformComponent
from components.tenancy import Team, Tenancy
from components.vault import SecretsStack, VaultArgs


@dataclass(frozen=True)
class SecurityStackArgs:
    """What `SecurityStack` builds: the stack file's `security`, `vault` and `teams`, and who
    administers it."""

    admission: AdmissionArgs
    """Gatekeeper, its policies and signed images (`platform:security`)."""
    vault: VaultArgs
    """Vault (`platform:vault`)."""
    admin_role_arn: str
    """The IAM role `pulumi up` runs as: it logs in to Vault through Vault's AWS auth."""
    key_administrators: Sequence[pulumi.Input[str]]
    """Who manages Vault's unseal key (never decrypts with it)."""
    teams: Sequence[Team] = ()
    """The teams (`platform:teams`): namespaces with the baseline, their hosts in the ingress
    policy, their services' database credentials from Vault."""
    monitoring_namespace: str = "monitoring"
    """Where Prometheus runs: the network policies let it scrape, the admission policies leave
    it alone."""
    protect: bool = False
    """Pulumi `protect` on Vault's unseal key (losing it loses Vault's data): on in prod."""


class SecurityStack(PlatformComponent):
    """Admission control, the team baseline and secrets of one environment."""

    service = "security"
    type_token = "platform:index:SecurityStack"

    def __init__(self, name: str, args: SecurityStackArgs, target: KubernetesTarget,
                 network: NetworkRef, database: DatabaseRef, region: str,
                 opts: pulumi.ResourceOptions | None = None):
        """`network` and `database`: the team baseline keeps team pods off the public and
        database subnets; Vault issues the teams' database credentials."""
        super().__init__(name, opts)
        # Top-level components before this one existed: adopted from the root stack.
        adopted = pulumi.ResourceOptions(
            parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])
        self.admission = AdmissionControl(
            name, args.admission, target, [args.monitoring_namespace], args.teams,
            opts=adopted)
        self.tenancy = Tenancy(name, args.teams, target, network, args.monitoring_namespace,
                               client_tls(database.config), opts=adopted)
        self.secrets = SecretsStack(
            name, args.vault, args.teams, target, database, region, args.protect,
            args.monitoring_namespace, admin_role_arn=args.admin_role_arn,
            key_administrators=args.key_administrators,
            opts=pulumi.ResourceOptions.merge(adopted, pulumi.ResourceOptions(
                depends_on=[self.tenancy])))
        self.register_outputs({
            "admissionPolicies": sorted(self.admission.constraints),
            "teamNamespaces": sorted(self.tenancy.namespaces),
            "vaultUnsealKeyArn": self.secrets.unseal_key.arn,
        })
