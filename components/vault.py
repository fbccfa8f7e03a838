"""`SecretsStack`: Vault in the cluster and the secrets it gives the teams' services.

Vault (pinned `vault` chart) runs with integrated raft storage (3 servers in prod), auto-unseals
with a KMS key of its own through an EKS Pod Identity role, keeps a file audit log on its own
volume, and is reachable only inside the cluster (ClusterIP, no ingress, its UI included).

Runtime delivery is the **Vault Secrets Operator** (pinned chart), not the Agent injector: it
syncs Vault secrets into ordinary Kubernetes Secrets, so any pod consumes them as env or files
with no sidecar per pod (on small nodes, a sidecar per replica is real memory), it renews and
re-issues dynamic database credentials and can restart the workload when they change, and its
objects (VaultAuth, VaultDynamicSecret) are declarative, so they live in Git with the service
and validate against their CRDs. The injector's one advantage, secrets never in etcd, matters
less here: etcd is envelope-encrypted with the cluster's KMS key.

Configuring Vault needs Vault initialised, which only an operator can do: the first `pulumi up`
deploys it; the operator runs `vault operator init` (recovery keys, a root token), makes Vault
reachable from where `pulumi up` runs, and sets `platform:vault.address` and (secret)
`platform:vault.token`; the next `pulumi up` configures it, including the AWS auth login
`platform-pulumi`, bound to the deploying IAM role, with a policy of what the program manages.
The operator then removes the token from the config and revokes it; every later `pulumi up` logs
in as the deploying role. Until Vault is configured the program says exactly that (a warning and
the `vaultBootstrap` output) and creates nothing that needs Vault.

With Vault configured: file audit device; Kubernetes auth; KV v2 at `secret/`; the database
secrets engine on the RDS instance, given the master password once (write-only input; never in
Vault's state in Pulumi) and rotated by Vault at once (`rotate-root`), so from then on only Vault
knows it; a role per service issuing PostgreSQL users that live `credentialsTtlSeconds` (1h) and
at most `credentialsMaxTtlSeconds` (1 day); a policy and a Kubernetes auth role per team, bound
to the team's namespaces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_vault as vault
from pydantic import AfterValidator, Field, SecretStr, model_validator

from components import iam
from components.args import (
    ArgsModel,
    Invalid,
)
from components.database import DatabaseRef, client_tls
from components.kubernetes import ZONE_KEY, KubernetesTarget
from components.tagging import PlatformComponent
from components.tenancy import Team, isolate_namespace

# -- arguments ----------------------------------------------------------------------------------

def _vault_address(value: str) -> str:
    if re.match(r"https://[^/:]+", value) is None:
        raise ValueError("is not an https:// URL; allowed: https://..., e.g. "
                         "https://127.0.0.1:8200 through a kubectl port-forward (Vault serves "
                         "TLS only)")
    return value


VaultAddress = Annotated[str, AfterValidator(_vault_address)]


class VaultArgs(ArgsModel):
    """Vault and its configuration (`platform:vault`). The first `pulumi up` deploys Vault; it
    is configured (auth, engines, policies, database roles) once `address` is set: the first
    time with the root token (`token`) after the operator has initialised it, from then on as
    the deploying role through Vault's AWS auth method, with the root token revoked
    (docs/security.md, "Vault")."""

    replicas: int = Field(ge=1, le=5, description="Vault servers (integrated raft storage); "
                          "odd, so a quorum survives losing a minority. At most "
                          "network.azCount puts one in each AZ (required), so an AZ's loss "
                          "leaves a majority; more are spread by preference, with a warning.")
    storage_gib: int = Field(5, ge=1, le=500, description="gp3 raft volume per server, GiB: "
                             "raft holds the KV data, leases and tokens (megabytes for a "
                             "platform's Vault); the gp3 class grows a volume in place.")
    audit_storage_gib: int = Field(10, ge=1, le=500, description="gp3 audit-log volume per "
                                   "server, GiB.")
    address: VaultAddress | None = Field(
        None, description="Where `pulumi up` reaches Vault to configure it, e.g. "
        "https://127.0.0.1:8200 through `kubectl -n vault port-forward svc/vault 8200`. Set: "
        "Vault is configured, logging in as the deploying role (AWS auth, role "
        "`platform-pulumi`) unless `token` is set.")
    ca_cert_file: str | None = Field(
        None, min_length=1, max_length=500,
        description="The Vault CA's certificate (PEM file, relative to where `pulumi up` runs), "
        "which `pulumi up` verifies Vault with: `kubectl -n vault get secret vault-tls -o "
        "jsonpath='{.data.ca\\.crt}' | base64 -d > vault-ca.pem`. Unset: the provider's "
        "VAULT_CACERT, else the system's trust store (which does not know the Vault CA).")
    token: SecretStr | None = Field(
        None, description="The root token, for the one bootstrap `pulumi up` that creates the "
        "AWS auth login the next runs use (secret: `pulumi config set --secret --path "
        "platform:vault.token <token>`); then remove it and revoke the token.")
    credentials_ttl_seconds: int = Field(
        3600, ge=300, le=86400, description="Default lifetime of a service's database "
        "credentials.")
    credentials_max_ttl_seconds: int = Field(
        86400, ge=300, le=86400, description="Longest a service's database credentials may be "
        "renewed to (at most a day).")

    @model_validator(mode="after")
    def _consistent(self) -> VaultArgs:
        if self.replicas % 2 == 0:
            raise Invalid("replicas", self.replicas, "is even; allowed: 1, 3 or 5 (a raft quorum)")
        if self.token is not None and self.address is None:
            raise Invalid("address", None, "a token needs the address of the Vault it is for")
        if self.credentials_ttl_seconds > self.credentials_max_ttl_seconds:
            raise Invalid("credentialsTtlSeconds", self.credentials_ttl_seconds,
                       "exceeds credentialsMaxTtlSeconds")
        return self

    @property
    def configured(self) -> bool:
        return self.address is not None


NAMESPACE = "vault"
RELEASE = "vault"
SERVER_SELECTOR = {"app.kubernetes.io/name": "vault", "app.kubernetes.io/instance": RELEASE,
                   "component": "server"}
SERVICE_ACCOUNT = "vault"  # the chart's server service account (fullname)
IN_CLUSTER_ADDRESS = f"https://{RELEASE}.{NAMESPACE}.svc:8200"
# The server certificate (cert-manager, signed by the Vault CA below) and where Vault mounts it.
TLS_SECRET = "vault-tls"
CA_SECRET = "vault-ca"
TLS_DIR = "/vault/userconfig/vault-tls"
CERT_MANAGER_API = "cert-manager.io/v1"
AUDIT_PATH = "/vault/audit/vault-audit.log"
TEAM_SERVICE_ACCOUNT = "vault-secrets"  # in each team namespace; VSO authenticates as it
DB_CONNECTION = "platform"
VAULT_DB_ROLE = "vault_admin"  # what Vault's database engine logs in as (not the master user)
# The PostgreSQL client the one-shot handover Job runs (Docker official image via ECR Public).
PSQL_IMAGE = "public.ecr.aws/docker/library/postgres:18.4-alpine"


def handover_sql() -> str:
    """What the handover Job runs as the master user (psql, variables `dbname`,
    `admin_password`): Vault's own login with just what its roles need, CREATEROLE and CREATE
    on the database (the services' schemas), admin of the services' group roles made before it
    took over, and SET/INHERIT on the roles it creates (PostgreSQL 16+ grants the creator ADMIN
    only), never SUPERUSER or rds_superuser."""
    return f"""\\set ON_ERROR_STOP on
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{VAULT_DB_ROLE}') THEN
    CREATE ROLE {VAULT_DB_ROLE} LOGIN CREATEROLE;
  END IF;
END $$;
ALTER ROLE {VAULT_DB_ROLE} WITH LOGIN CREATEROLE NOSUPERUSER NOCREATEDB PASSWORD :'admin_password';
ALTER ROLE {VAULT_DB_ROLE} SET createrole_self_grant = 'set, inherit';
GRANT CREATE ON DATABASE :"dbname" TO {VAULT_DB_ROLE};
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'svc\\_%' LOOP
    EXECUTE format('GRANT %I TO {VAULT_DB_ROLE} WITH ADMIN OPTION, SET TRUE, INHERIT TRUE',
                   r.rolname);
  END LOOP;
END $$;
"""


# The Job's script: the handover above, then the master user's own password replaced by one
# nobody keeps (break-glass: bump platform:database.masterPasswordVersion, which sets it again
# through the RDS API and re-runs this Job).
HANDOVER_SCRIPT = """set -eu
psql -v dbname="$PGDATABASE" -v admin_password="$VAULT_ADMIN_PASSWORD" -f /handover/handover.sql
unknown="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40)"
printf "ALTER ROLE CURRENT_USER PASSWORD :'new_password';\\n" | psql -v new_password="$unknown"
"""
VSO_API = "secrets.hashicorp.com/v1beta1"


def server_names(replicas: int) -> list[str]:
    """The names Vault is reached by: its Services and each server through the headless one."""
    services = [RELEASE, f"{RELEASE}-active", f"{RELEASE}-standby", f"{RELEASE}-internal",
                f"{RELEASE}-ui"]
    names = [n for s in services for n in (s, f"{s}.{NAMESPACE}", f"{s}.{NAMESPACE}.svc")]
    names += [f"{RELEASE}-{i}.{RELEASE}-internal" for i in range(replicas)]
    names += [f"*.{RELEASE}-internal.{NAMESPACE}.svc"]
    return names


def raft_config(key_id: str, region: str, replicas: int) -> str:
    """The server's HCL: raft storage joining its peers over TLS, the awskms seal, a TLS
    listener with the certificate cert-manager issues (TLS_SECRET, mounted at TLS_DIR)."""
    joins = "\n".join(
        f'  retry_join {{\n    leader_api_addr = "https://{RELEASE}-{i}.{RELEASE}-internal:8200"\n'
        f'    leader_ca_cert_file = "{TLS_DIR}/ca.crt"\n'
        "  }" for i in range(replicas))
    return f"""ui = true

listener "tcp" {{
  address         = "[::]:8200"
  cluster_address = "[::]:8201"
  tls_cert_file   = "{TLS_DIR}/tls.crt"
  tls_key_file    = "{TLS_DIR}/tls.key"
  tls_min_version = "tls12"
  # Prometheus scrapes /v1/sys/metrics without a token; only it may reach Vault's namespace
  # besides the operator (NetworkPolicy).
  telemetry {{
    unauthenticated_metrics_access = true
  }}
}}

# Metrics in Prometheus format (vault_core_unsealed, ...) for the ServiceMonitor; no hostname
# prefix so every server's series share names.
telemetry {{
  prometheus_retention_time = "30s"
  disable_hostname          = true
}}

storage "raft" {{
  path = "/vault/data"
{joins}
}}

seal "awskms" {{
  region     = "{region}"
  kms_key_id = "{key_id}"
}}

service_registration "kubernetes" {{}}
"""


def spread(target: KubernetesTarget, replicas: int) -> dict[str, Any]:
    """Where the servers go (server.affinity, server.topologySpreadConstraints). Raft serves
    while a majority of the servers does: one server per AZ (required, `target.apart`) loses
    one to an AZ's loss, where the chart's default, one per node, may put a majority in one
    AZ. More servers than AZs: one per node (required) and spread over the AZs (preferred:
    required would leave a server pending whenever an AZ has no room); the stack warns then."""
    values: dict[str, Any] = {"affinity": target.apart(SERVER_SELECTOR, replicas)}
    if replicas > target.zones:
        values["topologySpreadConstraints"] = [
            {"maxSkew": 1, "topologyKey": ZONE_KEY, "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": SERVER_SELECTOR}}]
    return values


def quorum_warning(replicas: int, zones: int) -> str | None:
    """Why an AZ's loss can stop Vault with these servers and AZs (None: it cannot)."""
    if replicas <= 1 or replicas <= zones:
        return None
    most = -(-replicas // zones)  # an AZ holds at least this many, spread as evenly as can be
    majority = replicas // 2 + 1
    held = ("even spread over them, the AZ with the most holds "
            f"{most}, {'a majority' if most >= majority else 'short of a majority'}")
    return (f"platform:vault.replicas {replicas} over platform:network.azCount {zones} AZs: "
            f"{held}, and the spread is preferred, not required, so losing one AZ can stop "
            f"Vault (raft serves with {majority} of {replicas}); replicas at most azCount puts "
            "one server in each AZ")


def helm_values(config: VaultArgs, key_id: str, region: str,
                target: KubernetesTarget) -> dict[str, Any]:
    """vault chart values, read against the vendored chart (charts/charts.yaml): server.ha.raft.*,
    server.dataStorage/auditStorage, server.readinessProbe, server.affinity (`spread` over the
    target's AZs), injector, ui; the tests render them and check that the chart
    reads every key set here."""
    def volume(gib: int) -> dict[str, Any]:
        return {"enabled": True, "size": f"{gib}Gi", "storageClass": "gp3",
                "accessMode": "ReadWriteOnce"}

    return {
        "global": {"tlsDisable": False},
        "injector": {"enabled": False},  # delivery is the Vault Secrets Operator
        "server": {
            "ha": {"enabled": True, "replicas": config.replicas,
                   # The chart's budget allows floor((n-1)/2) down: 0 for one server, which
                   # blocks every drain; one server has nothing to keep up anyway.
                   "disruptionBudget": {"enabled": config.replicas > 1},
                   "raft": {"enabled": True, "setNodeId": True,
                            "config": raft_config(key_id, region, config.replicas)}},
            "dataStorage": volume(config.storage_gib),
            "auditStorage": volume(config.audit_storage_gib),
            # Ready while uninitialised or sealed: the release installs before the operator
            # initialises Vault (the chart's default probe would fail the atomic install).
            "readinessProbe": {
                "enabled": True,
                "path": "/v1/sys/health?standbyok=true&sealedcode=204&uninitcode=204"},
            "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
            "volumes": [{"name": TLS_SECRET, "secret": {"secretName": TLS_SECRET}}],
            "volumeMounts": [{"name": TLS_SECRET, "mountPath": TLS_DIR, "readOnly": True}],
            # The CLI in the pods (`vault operator init`) trusts the same CA.
            "extraEnvironmentVars": {"VAULT_CACERT": f"{TLS_DIR}/ca.crt"},
            "service": {"type": "ClusterIP"},
            "ingress": {"enabled": False},
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                          "limits": {"memory": "512Mi"}},
            **spread(target, config.replicas),
        },
        "ui": {"enabled": True, "serviceType": "ClusterIP"},
        # A ServiceMonitor on every server (the headless vault-internal Service), not only the
        # active one: a sealed server is exactly what the "Vault sealed" page must see.
        "serverTelemetry": {"serviceMonitor": {
            "enabled": True, "selectors": {"team": "platform"},
            "matchLabels": {"vault-internal": "true"},
            # Verified against the Vault CA (the chart's default skips verification); the
            # targets are pod addresses, so the name checked is the Service's.
            "tlsConfig": {"ca": {"secret": {"name": TLS_SECRET, "key": "ca.crt"}},
                          "serverName": f"{RELEASE}.{NAMESPACE}.svc"}}},
    }


def operator_values(replicas: int) -> dict[str, Any]:
    """vault-secrets-operator chart values (defaultVaultConnection, controller.replicas)."""
    return {
        "defaultVaultConnection": {"enabled": True, "address": IN_CLUSTER_ADDRESS,
                                   # ca.crt of the server certificate's Secret.
                                   "caCertSecret": TLS_SECRET},
        "controller": {"replicas": 2 if replicas > 1 else 1},
    }


def group_role(service: str) -> str:
    return "svc_" + service.replace("-", "_")


def creation_statements(service: str) -> list[str]:
    """A login that lives as long as its lease, acting as the service's group role: what it
    creates belongs to the group role and outlives the login."""
    group = group_role(service)
    return [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{group}') THEN "
        f"CREATE ROLE {group} NOLOGIN; END IF; END $$;",
        f"CREATE SCHEMA IF NOT EXISTS {group} AUTHORIZATION {group};",
        "CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' "
        f"VALID UNTIL '{{{{expiration}}}}' IN ROLE {group};",
        f'ALTER ROLE "{{{{name}}}}" SET role = {group};',
        f'ALTER ROLE "{{{{name}}}}" SET search_path = {group};',
    ]


def revocation_statements(service: str) -> list[str]:
    group = group_role(service)
    return [
        f'REASSIGN OWNED BY "{{{{name}}}}" TO {group};',
        'DROP OWNED BY "{{name}}";',
        'DROP ROLE IF EXISTS "{{name}}";',
    ]


def team_policy(team: Team) -> str:
    """HCL: the team's KV subtree and its services' database credentials, nothing else."""
    paths = {
        f"secret/data/{team.name}/*": ["create", "read", "update", "delete", "list"],
        f"secret/metadata/{team.name}/*": ["read", "list", "delete"],
        **{f"database/creds/{team.name}-{s}": ["read"] for s in team.services},
    }
    return "\n".join(f'path "{path}" {{\n  capabilities = {json.dumps(caps)}\n}}\n'
                     for path, caps in paths.items())


PULUMI_ROLE = "platform-pulumi"  # the AWS auth role (and its policy) `pulumi up` logs in as
AWS_AUTH_PATH = "aws"


def login_header(environment: str) -> str:
    """The X-Vault-AWS-IAM-Server-ID value: binds an AWS login to this Vault (a signed login
    request captured elsewhere is refused here)."""
    return f"platform-{environment}-vault"


def pulumi_policy(kubernetes_auth: str, database: str, audit: str,
                  auth_mounts: Sequence[str], mounts: Sequence[str], team_policies: Sequence[str],
                  kubernetes_roles: Sequence[str], database_roles: Sequence[str]) -> str:
    """HCL: what `pulumi up` changes in Vault and nothing else. It writes the one audit device,
    the auth methods and mounts it manages, the Kubernetes auth roles, team policies and
    database roles of the configured teams by name, and the database engine's connection; it
    may read, not change, its own login and policy, so it cannot widen them (changing them takes
    the root token again: `vault operator generate-root`). It cannot delete the audit device,
    an auth method or a mount (the audit trail, every login, the secrets they hold): that takes
    the root token too. It may delete team policies and roles (a team removed from the config),
    which denies, never grants. Scoped, not harmless: a team policy it writes can grant what a
    team role then uses; the audit device records every such change."""
    write = ["create", "read", "update"]
    paths: dict[str, list[str]] = {
        "sys/audit": ["read", "sudo"],
        f"sys/audit/{audit}": [*write, "sudo"],
        "sys/auth": ["read"],
        **{f"sys/auth/{m}": [*write, "sudo"] for m in auth_mounts},
        "sys/mounts": ["read"],
        **{f"sys/mounts/{m}": write for m in mounts},
        f"auth/{kubernetes_auth}/config": write,
        **{f"auth/{kubernetes_auth}/role/{r}": write for r in kubernetes_roles},
        f"auth/{kubernetes_auth}/role/*": ["delete", "list"],
        f"auth/{AWS_AUTH_PATH}/config/client": write,
        f"auth/{AWS_AUTH_PATH}/role/{PULUMI_ROLE}": ["read"],
        **{f"sys/policies/acl/{p}": write for p in team_policies},
        **{f"sys/policy/{p}": write for p in team_policies},
        "sys/policies/acl/team-*": ["delete"],
        "sys/policy/team-*": ["delete"],
        f"sys/policies/acl/{PULUMI_ROLE}": ["read"],
        f"sys/policy/{PULUMI_ROLE}": ["read"],
        f"{database}/config/*": [*write, "delete"],
        **{f"{database}/roles/{r}": write for r in database_roles},
        f"{database}/roles/*": ["delete", "list"],
        f"{database}/rotate-root/*": ["update"],
        # The provider's own token: renew and look it up.
        "auth/token/lookup-self": ["read"],
        "auth/token/renew-self": ["update"],
        "auth/token/create": ["update"],
    }
    return "\n".join(f'path "{path}" {{\n  capabilities = {json.dumps(caps)}\n}}\n'
                     for path, caps in paths.items())


def bootstrap_steps(stack: str) -> str:
    return (
        "Vault is deployed but not configured. Once its pods run:\n"
        "  1. kubectl -n vault exec vault-0 -- vault operator init -format=json > init.json\n"
        "     (recovery keys and the root token: store them offline, e.g. split among "
        "operators; never in Git)\n"
        "  2. kubectl -n vault port-forward svc/vault 8200   (in another terminal)\n"
        "     kubectl -n vault get secret vault-tls -o jsonpath='{.data.ca\\.crt}' "
        "| base64 -d > vault-ca.pem   (the Vault CA; public)\n"
        f"  3. pulumi config set --stack {stack} --path platform:vault.address "
        "https://127.0.0.1:8200\n"
        f"     pulumi config set --stack {stack} --path platform:vault.caCertFile vault-ca.pem\n"
        f"     pulumi config set --stack {stack} --secret --path platform:vault.token "
        "<root token from init.json>\n"
        "  4. pulumi up   (configures auth, engines, policies and database roles, and the AWS "
        f"auth login `{PULUMI_ROLE}` for the role pulumi up runs as)\n"
        f"  5. pulumi config rm --stack {stack} --path platform:vault.token\n"
        "     vault token revoke <root token>   (from here on pulumi up logs in as "
        f"{PULUMI_ROLE}; a new root token only by `vault operator generate-root` with the "
        "recovery keys)\n"
        "  6. pulumi up   (must show no changes: the scoped login manages everything)")


class SecretsStack(PlatformComponent):
    """Vault, the Vault Secrets Operator, and (once reachable) Vault's configuration."""

    service = "secrets"
    type_token = "platform:index:SecretsStack"

    def __init__(self, name: str, config: VaultArgs, teams: Sequence[Team],
                 target: KubernetesTarget, database: DatabaseRef, region: str, protect: bool,
                 monitoring_namespace: str, *, admin_role_arn: str,
                 key_administrators: Sequence[pulumi.Input[str]],
                 opts: pulumi.ResourceOptions | None = None):
        """`admin_role_arn`: the role `pulumi up` runs as (it configures Vault, logging in
        through Vault's AWS auth); `key_administrators`: who manages the unseal key (never
        decrypts with it)."""
        super().__init__(name, opts)
        if (warning := quorum_warning(config.replicas, target.zones)) is not None:
            pulumi.log.warn(warning, resource=self)
        identity = target.require_identity("SecretsStack (Vault's auto-unseal)")
        self._admin_role_arn = admin_role_arn
        self.unseal_key = aws.kms.Key(
            f"{name}-vault-unseal",
            description=f"Vault auto-unseal in {target.cluster_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            # Losing this key loses Vault's data for good: protected in prod, and deletion
            # waits 30 days everywhere.
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        # The seal names the key by its alias: known before the key exists, so a preview shows
        # the chart's values in full.
        alias_name = f"alias/{target.cluster_name}-vault-unseal"
        alias = aws.kms.Alias(f"{name}-vault-unseal", name=alias_name,
                              target_key_id=self.unseal_key.key_id,
                              opts=pulumi.ResourceOptions(parent=self.unseal_key))
        self.namespace = target.platform_namespace(
            f"{name}-vault", NAMESPACE, parent=self, pod_security="baseline")
        # Only VSO (in this namespace) and Prometheus call Vault; team pods never do.
        isolate_namespace(f"{name}-vault", NAMESPACE, monitoring_namespace,
                          target.options(self, depends_on=[self.namespace]))
        role = identity.service_account_role(
            f"{name}-vault", NAMESPACE, SERVICE_ACCOUNT,
            policy=self.unseal_key.arn.apply(lambda arn: iam.to_json(iam.vault_server(
                arn, [admin_role_arn]))),
            parent=self)
        # Only Vault's role uses the key; administrators manage it and cannot decrypt with it.
        key_policy = aws.kms.KeyPolicy(
            f"{name}-vault-unseal",
            key_id=self.unseal_key.key_id,
            policy=role.arn.apply(lambda arn: iam.to_json(iam.key_policy(
                key_administrators, [iam.key_use(
                    "VaultAutoUnseal", arn, ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"])]))),
            opts=pulumi.ResourceOptions(parent=self.unseal_key, protect=protect),
        )
        certificate = self._tls(name, config, target)
        # Vendored chart (charts/charts.yaml).
        self.release = target.helm_release(
            f"{name}-vault", parent=self, release=RELEASE, chart="vault",
            namespace=NAMESPACE,
            values=helm_values(config, alias_name, region, target), timeout=900,
            depends_on=[self.namespace, role, alias, key_policy,
                        *filter(None, [target.storage_class]), certificate])
        self.operator = target.helm_release(
            f"{name}-vault-secrets-operator", parent=self, release="vault-secrets-operator",
            chart="vault-secrets-operator", namespace=NAMESPACE,
            values=operator_values(config.replicas), depends_on=[self.namespace, certificate])
        self._delivery(name, teams, target, database)

        self.configured = config.configured
        self.bootstrap = None if self.configured else bootstrap_steps(pulumi.get_stack())
        if self.configured:
            self._configure(name, config, teams, database, target, region)
        else:
            pulumi.log.warn(
                "platform:vault.address is not set, so Vault is "
                "deployed but not configured (no auth, engines or database roles yet).\n"
                + self.bootstrap, resource=self)

    def _handover(self, name: str, database: DatabaseRef,
                  target: KubernetesTarget) -> tuple[pulumi.Output, pulumi.Resource]:
        """The login Vault's database engine uses: a one-shot Job, as the master user, makes
        `vault_admin` (handover_sql) and then replaces the master user's password with one
        nobody keeps. Re-run (a new Job) when masterPasswordVersion is bumped, which first sets
        the master password again through the RDS API."""
        version = database.config.master_password_version
        # The server verified as every client verifies it; no channel binding: the master
        # password may predate the SCRAM parameter (an md5 verifier cannot bind).
        tls = client_tls(database.config)
        password = random.RandomPassword(
            f"{name}-vault-db-admin-v{version}", length=32, special=False,
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["result"]))
        opts = target.options(self, depends_on=[self.namespace, database.ready])
        labels = {"team": "platform", "app.kubernetes.io/name": "vault-db-handover"}
        secret = k8s.core.v1.Secret(
            f"{name}-vault-db-handover-v{version}",
            metadata={"name": f"vault-db-handover-v{version}", "namespace": NAMESPACE,
                      "labels": labels},
            string_data={"PGPASSWORD": database.master_password,
                         "VAULT_ADMIN_PASSWORD": password.result},
            opts=opts)
        script = k8s.core.v1.ConfigMap(
            f"{name}-vault-db-handover-v{version}",
            metadata={"name": f"vault-db-handover-v{version}", "namespace": NAMESPACE,
                      "labels": labels},
            data={"handover.sql": handover_sql(), "handover.sh": HANDOVER_SCRIPT,
                  **({"root.crt": tls["root.crt"]} if "root.crt" in tls else {})},
            opts=opts)
        job = k8s.batch.v1.Job(
            f"{name}-vault-db-handover-v{version}",
            metadata={"name": f"vault-db-handover-v{version}", "namespace": NAMESPACE,
                      "labels": labels},
            spec={
                "backoffLimit": 3,
                "ttlSecondsAfterFinished": 86400,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": False,
                        "securityContext": {"runAsNonRoot": True, "runAsUser": 70,
                                            "runAsGroup": 70,
                                            "seccompProfile": {"type": "RuntimeDefault"}},
                        "containers": [{
                            "name": "psql",
                            "image": PSQL_IMAGE,
                            "command": ["sh", "/handover/handover.sh"],
                            "env": [
                                {"name": "PGHOST", "value": database.address},
                                {"name": "PGPORT", "value": pulumi.Output.from_input(
                                    database.port).apply(str)},
                                {"name": "PGDATABASE", "value": database.db_name},
                                {"name": "PGUSER", "value": database.username},
                                {"name": "PGSSLMODE", "value": tls["sslmode"]},
                                {"name": "PGSSLROOTCERT", "value": "/handover/root.crt"},
                                {"name": "PSQLRC", "value": "/dev/null"},
                            ],
                            "envFrom": [{"secretRef": {"name": secret.metadata["name"]}}],
                            "volumeMounts": [{"name": "handover", "mountPath": "/handover",
                                              "readOnly": True}],
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                          "limits": {"memory": "128Mi"}},
                            "securityContext": {"allowPrivilegeEscalation": False,
                                                "readOnlyRootFilesystem": True,
                                                "capabilities": {"drop": ["ALL"]}},
                        }],
                        "volumes": [{"name": "handover",
                                     "configMap": {"name": script.metadata["name"]}}],
                    },
                },
            },
            opts=target.options(self, depends_on=[secret, script, database.ready]))
        return password.result, job

    def _tls(self, name: str, config: VaultArgs, target: KubernetesTarget) -> pulumi.Resource:
        """Vault's TLS: a CA of its own (self-signed, 10 years, in this namespace only) that
        signs the servers' certificate (1 year, renewed 60 days ahead by cert-manager, a new
        key each time). Whatever talks to Vault (VSO, Prometheus, the raft peers, the CLI,
        `pulumi up` through a port-forward) verifies it against that CA's `ca.crt`. Vault reads
        a renewed certificate on SIGHUP or restart (docs/security.md, "Vault")."""
        # Ready means issued: what mounts the Secret waits for it.
        ready = {"pulumi.com/waitFor": "condition=Ready"}

        def resource(resource_name: str, kind: str, object_name: str, spec: dict[str, Any],
                     depends_on: Sequence[pulumi.Resource] = (),
                     annotations: dict[str, str] | None = None) -> pulumi.Resource:
            return k8s.apiextensions.CustomResource(
                f"{name}-{resource_name}", api_version=CERT_MANAGER_API, kind=kind,
                metadata={"name": object_name, "namespace": NAMESPACE,
                          "labels": {"team": "platform"}, "annotations": annotations or {}},
                spec=spec,
                opts=target.options(self, depends_on=[self.namespace, *depends_on]))

        key = {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"}
        self_signed = resource("vault-selfsigned", "Issuer", "vault-selfsigned",
                               {"selfSigned": {}})
        ca = resource("vault-ca", "Certificate", CA_SECRET, {
            "isCA": True, "commonName": f"platform-{name} Vault CA", "secretName": CA_SECRET,
            "duration": "87600h", "renewBefore": "720h", "privateKey": key,
            "issuerRef": {"name": "vault-selfsigned", "kind": "Issuer"}},
            depends_on=[self_signed], annotations=ready)
        issuer = resource("vault-ca-issuer", "Issuer", "vault-ca", {"ca": {"secretName": CA_SECRET}},
                          depends_on=[ca])
        return resource("vault-server-certificate", "Certificate", TLS_SECRET, {
            "secretName": TLS_SECRET, "commonName": f"{RELEASE}.{NAMESPACE}.svc",
            "dnsNames": server_names(config.replicas), "ipAddresses": ["127.0.0.1"],
            "duration": "8760h", "renewBefore": "1440h", "privateKey": key,
            "usages": ["server auth", "digital signature", "key encipherment"],
            "issuerRef": {"name": "vault-ca", "kind": "Issuer"}},
            depends_on=[issuer], annotations=ready)

    def _delivery(self, name: str, teams: Sequence[Team], target: KubernetesTarget,
                  database: DatabaseRef) -> None:
        """In each team namespace: the service account VSO authenticates as, its VaultAuth,
        and per service a VaultDynamicSecret syncing database credentials to `<service>-db`."""
        for team in teams:
            for index, namespace in enumerate(team.namespaces):
                opts = target.options(self, depends_on=[self.operator])
                meta = {"namespace": namespace, "labels": {"team": team.name}}
                k8s.core.v1.ServiceAccount(
                    f"{name}-{namespace}-vault-secrets",
                    metadata={"name": TEAM_SERVICE_ACCOUNT, **meta},
                    automount_service_account_token=False, opts=opts)
                k8s.apiextensions.CustomResource(
                    f"{name}-{namespace}-vault-auth", api_version=VSO_API, kind="VaultAuth",
                    metadata={"name": "default", **meta},
                    spec={"method": "kubernetes", "mount": "kubernetes",
                          "kubernetes": {"role": f"team-{team.name}",
                                         "serviceAccount": TEAM_SERVICE_ACCOUNT,
                                         "audiences": ["vault"]}},
                    opts=opts)
                if index:
                    continue  # services' credentials go to the team's first namespace
                for service in team.services:
                    k8s.apiextensions.CustomResource(
                        f"{name}-{namespace}-{service}-db", api_version=VSO_API,
                        kind="VaultDynamicSecret",
                        metadata={"name": f"{service}-db", **meta},
                        spec={"vaultAuthRef": "default", "mount": "database",
                              "path": f"creds/{team.name}-{service}",
                              # Renew at two thirds of the lease; new credentials before expiry.
                              "renewalPercent": 67,
                              # New credentials restart the service's Rollout (golden path).
                              "rolloutRestartTargets": [{"kind": "argo.Rollout",
                                                         "name": service}],
                              "destination": {
                                  "name": f"{service}-db", "create": True,
                                  "labels": {"team": team.name,
                                             "app.kubernetes.io/name": service},
                                  # Where to connect, next to the login: the files the service reads.
                                  "transformation": {"templates": {
                                      "host": {"text": database.address},
                                      "port": {"text": "5432"},
                                      "dbname": {"text": database.config.database_name}}}}},
                        opts=opts)

    def _configure(self, name: str, config: VaultArgs, teams: Sequence[Team],
                   database: DatabaseRef, target: KubernetesTarget, region: str) -> None:
        assert config.address is not None
        header = login_header(name)
        if config.token is not None:
            # Bootstrap only: the root token, to create the login below (then revoked).
            login: dict[str, Any] = {
                "token": pulumi.Output.secret(config.token.get_secret_value())}
        else:
            # As the role `pulumi up` runs as (AWS credentials of this run, signed for STS).
            login = {"auth_login_aws": vault.ProviderAuthLoginAwsArgs(
                role=PULUMI_ROLE, mount=AWS_AUTH_PATH, header_value=header,
                aws_region=region)}
        provider = vault.Provider(
            f"{name}-vault", address=config.address, skip_child_token=True,
            ca_cert_file=config.ca_cert_file,
            opts=pulumi.ResourceOptions(parent=self), **login)
        opts = pulumi.ResourceOptions(parent=self, provider=provider)

        vault.Audit(f"{name}-audit-file", type="file", path="file",
                    options={"file_path": AUDIT_PATH}, opts=opts)
        # How `pulumi up` logs in after the bootstrap: the AWS auth method, a role bound to the
        # deploying IAM role only, and a policy of what the program manages.
        aws_auth = vault.AuthBackend(f"{name}-aws-auth", type="aws", path=AWS_AUTH_PATH,
                                     opts=opts)
        vault.aws.AuthBackendClient(
            f"{name}-aws-auth", backend=aws_auth.path, iam_server_id_header_value=header,
            sts_region=region, opts=opts)
        own_policy = vault.Policy(
            f"{name}-pulumi", name=PULUMI_ROLE,
            policy=pulumi_policy(
                "kubernetes", "database", "file", auth_mounts=(AWS_AUTH_PATH, "kubernetes"),
                mounts=("secret", "database"),
                team_policies=[f"team-{t.name}" for t in teams],
                kubernetes_roles=[f"team-{t.name}" for t in teams],
                database_roles=[f"{t.name}-{s}" for t in teams for s in t.services]),
            opts=opts)
        vault.aws.AuthBackendRole(
            f"{name}-pulumi", backend=aws_auth.path, role=PULUMI_ROLE, auth_type="iam",
            bound_iam_principal_arns=[self._admin_role_arn],
            token_policies=[own_policy.name],
            token_ttl=900, token_max_ttl=3600, opts=opts)
        kubernetes_auth = vault.AuthBackend(f"{name}-kubernetes-auth", type="kubernetes",
                                            path="kubernetes", opts=opts)
        vault.kubernetes.AuthBackendConfig(
            f"{name}-kubernetes-auth", backend=kubernetes_auth.path,
            kubernetes_host="https://kubernetes.default.svc", opts=opts)
        vault.Mount(f"{name}-kv", path="secret", type="kv", options={"version": "2"},
                    description="Teams' static secrets (KV v2), under secret/<team>/", opts=opts)
        engine = vault.Mount(f"{name}-database", path="database", type="database",
                             description="Short-lived PostgreSQL credentials", opts=opts)
        roles = [f"{t.name}-{s}" for t in teams for s in t.services]
        admin_password, handover = self._handover(name, database, target)
        bundle = database.config.ca_bundle_file
        if bundle is None:
            pulumi.log.warn(
                "platform:database.caBundleFile is not set: Vault's connection to PostgreSQL is "
                "encrypted but does not verify the server's certificate (sslmode=require). "
                "Download the region's RDS CA bundle from https://truststore.pki.rds."
                "amazonaws.com/ and set it to get sslmode=verify-full", resource=self)
        tls = {"sslmode": "verify-full"} if bundle else {"sslmode": "require"}
        connection = vault.database.SecretBackendConnection(
            f"{name}-postgresql",
            backend=engine.path,
            name=DB_CONNECTION,
            allowed_roles=roles,
            verify_connection=True,
            postgresql=vault.database.SecretBackendConnectionPostgresqlArgs(
                connection_url=pulumi.Output.concat(
                    "postgresql://{{username}}:{{password}}@", database.address, ":",
                    pulumi.Output.from_input(database.port).apply(str), "/", database.db_name,
                    f"?sslmode={tls['sslmode']}"),
                # The RDS CA (public), which verify-full checks the server's certificate and
                # name against.
                tls_ca=Path(bundle).read_text() if bundle else None,
                # Vault's own login (the handover Job made it), never the master user.
                username=VAULT_DB_ROLE,
                # Handed over once (write-only: not in this resource's state), then rotated.
                password_wo=admin_password,
                password_wo_version=database.config.master_password_version,
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[handover]),
        )
        # Vault rotates the master password at once: from here on only Vault knows it.
        # Bumping masterPasswordVersion (break-glass) resets it and rotates again.
        version = database.config.master_password_version
        vault.generic.Endpoint(
            f"{name}-rotate-root-v{version}",
            path=pulumi.Output.concat(engine.path, "/rotate-root/", DB_CONNECTION),
            data_json="{}", disable_read=True, disable_delete=True,
            opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                        depends_on=[connection]))
        for team in teams:
            policy = vault.Policy(f"{name}-team-{team.name}", name=f"team-{team.name}",
                                  policy=team_policy(team), opts=opts)
            vault.kubernetes.AuthBackendRole(
                f"{name}-team-{team.name}",
                backend=kubernetes_auth.path,
                role_name=f"team-{team.name}",
                bound_service_account_names=[TEAM_SERVICE_ACCOUNT],
                bound_service_account_namespaces=list(team.namespaces),
                audience="vault",
                token_policies=[policy.name],
                token_ttl=3600,
                token_max_ttl=14400,
                opts=opts)
            for service in team.services:
                vault.database.SecretBackendRole(
                    f"{name}-db-{team.name}-{service}",
                    backend=engine.path,
                    name=f"{team.name}-{service}",
                    db_name=connection.name,
                    creation_statements=creation_statements(service),
                    revocation_statements=revocation_statements(service),
                    default_ttl=config.credentials_ttl_seconds,
                    max_ttl=config.credentials_max_ttl_seconds,
                    opts=opts)
