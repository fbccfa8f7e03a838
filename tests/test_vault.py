"""Vault: deployed by the real stacks (raft, KMS auto-unseal, audit log, nothing public) and
configured once the operator has given the stack its address and token; both sides tested.
No Vault token, secret or database password in plaintext anywhere outside a secret; the
database roles' TTLs are bounded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from components import vault
from platformctl.harness import evaluate
from platformctl.recording import Evaluation, Secret, unwrap_secrets
from platformctl.stackfile import SECRET_PLACEHOLDER
from tests import k8s_objects
from tests.conftest import DELETE, REPO, config_error, mutate, stack_config, write_stack
from tests.k8s_objects import manifest
from tests.units import eks_cluster, evaluate_alone, existing_database

SECRETS_STACK = "platform:index:SecretsStack"
RELEASE = "kubernetes:helm.sh/v3:Release"


def _release(evaluation: Evaluation, chart: str):
    return k8s_objects.release(evaluation, chart)


def configured_stack(directory: Path, base: str = "prod") -> Path:
    """A stack file as the operator leaves it after initialising Vault: the address set, the
    token a `secure:` value (ciphertext; offline it reads as the placeholder)."""
    config = mutate(stack_config(base), "platform:vault", {
        "address": "https://127.0.0.1:8200", "token": {"secure": "v1:aGVsbG8=:c2VjcmV0"}})
    config = mutate(config, "platform:teams", [
        {"name": "checkout", "services": ["checkout", "checkout-worker"]},
        {"name": "search", "namespaces": ["search", "search-jobs"], "services": ["indexer"]}])
    return write_stack(directory, config)


@pytest.fixture(scope="module")
def configured(tmp_path_factory) -> Evaluation:
    return evaluate(configured_stack(tmp_path_factory.mktemp("vault")), project_dir=REPO)


# -- deployed, before it is configured ------------------------------------------------------

def test_vault_runs_raft_with_kms_auto_unseal_and_an_audit_volume(evaluations):
    for name, servers in (("dev", 1), ("prod", 3)):
        evaluation = evaluations[name]
        values = _release(evaluation, "vault").inputs["values"]
        server = values["server"]
        assert server["ha"]["replicas"] == servers and server["ha"]["raft"]["enabled"]
        hcl = server["ha"]["raft"]["config"]
        assert 'storage "raft"' in hcl and hcl.count("retry_join") == servers
        (alias,) = evaluation.of_type("aws:kms/alias:Alias")[-1:]
        assert f'kms_key_id = "{alias.inputs["name"]}"' in hcl and 'seal "awskms"' in hcl
        assert server["auditStorage"]["enabled"] and server["dataStorage"]["storageClass"] == "gp3"
        # Installs before initialisation: ready while uninitialised or sealed.
        assert "uninitcode=204" in server["readinessProbe"]["path"]
        # Nothing public: ClusterIP services, no ingress; delivery is VSO, not the injector.
        assert server["service"]["type"] == values["ui"]["serviceType"] == "ClusterIP"
        assert server["ingress"]["enabled"] is False and values["injector"]["enabled"] is False


def test_the_unseal_key_rotates_is_protected_in_prod_and_only_vault_may_use_it(evaluations):
    for name in ("dev", "prod"):
        evaluation = evaluations[name]
        key = evaluation.one("aws:kms/key:Key", f"{name}-vault-unseal")
        assert key.inputs["enableKeyRotation"] is True
        assert key.inputs["deletionWindowInDays"] == 30
        assert key.protect is (name == "prod")
        policy = evaluation.one("aws:iam/rolePolicy:RolePolicy", f"{name}-vault")
        statement, resolve = yaml.safe_load(policy.inputs["policy"])["Statement"]
        # ...and it resolves the deploying role its AWS logins are bound to, nothing else.
        assert resolve["Action"] == "iam:GetRole"
        assert resolve["Resource"] == [evaluation.config.cluster.admin_role_arn]
        assert statement["Action"] == ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
        assert statement["Resource"] == key.outputs.get("arn", statement["Resource"])
        assert statement["Resource"].startswith("arn:aws:kms:")
        association = evaluation.one("aws:eks/podIdentityAssociation:PodIdentityAssociation",
                                     f"{name}-vault")
        assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
            "vault", "vault")


def test_without_vault_settings_the_program_says_what_is_missing(stack):
    assert stack.outputs["vaultConfigured"].value is False
    assert not [r for r in stack.resources if r.type.startswith(("vault:", "pulumi:providers:vault"))]
    (warning,) = [w for w in stack.warnings if "platform:vault.address" in w]
    assert "platform:vault.token" in warning and "vault operator init" in warning
    assert "vault token revoke" in warning and "pulumi config rm" in warning
    steps = stack.outputs["vaultBootstrap"].value
    assert f"--stack {stack.stack} --secret --path platform:vault.token" in steps


def test_services_get_their_credentials_through_the_operator(stack, crds):
    bodies = [manifest(r) for r in stack.resources
              if r.type.startswith("kubernetes:secrets.hashicorp.com/")]
    assert {b["kind"] for b in bodies} == {"VaultAuth", "VaultDynamicSecret"}
    for body in bodies:
        assert crds.crd(body["apiVersion"], body["kind"]).chart == "vault-secrets-operator 1.4.1"
        assert crds.errors(body) == []
    (secret,) = [b for b in bodies if b["kind"] == "VaultDynamicSecret"]
    assert secret["spec"]["path"] == "creds/checkout-checkout"
    assert secret["spec"]["destination"]["name"] == "checkout-db"
    assert _release(stack, "vault-secrets-operator").inputs["values"][
        "defaultVaultConnection"]["address"] == vault.IN_CLUSTER_ADDRESS


# -- configured -----------------------------------------------------------------------------

def _of(evaluation: Evaluation, type_token: str) -> list:
    return evaluation.of_type(type_token)


def test_with_vault_settings_it_is_configured(configured):
    assert configured.outputs["vaultConfigured"].value is True
    assert configured.outputs["vaultBootstrap"].value is None
    assert not [w for w in configured.warnings if "platform:vault.address" in w]
    (audit,) = _of(configured, "vault:index/audit:Audit")
    assert audit.inputs["type"] == "file"
    mounts = {m.inputs["path"]: m.inputs for m in _of(configured, "vault:index/mount:Mount")}
    assert mounts["secret"]["options"] == {"version": "2"} and mounts["database"]["type"] == (
        "database")
    auths = {a.inputs["type"]: a.inputs for a in _of(configured,
                                                      "vault:index/authBackend:AuthBackend")}
    assert set(auths) == {"kubernetes", "aws"}
    roles = {r.inputs["roleName"]: r.inputs
             for r in _of(configured, "vault:kubernetes/authBackendRole:AuthBackendRole")}
    assert roles["team-search"]["boundServiceAccountNamespaces"] == ["search", "search-jobs"]
    assert roles["team-search"]["boundServiceAccountNames"] == ["vault-secrets"]
    policies = {p.inputs["name"]: p.inputs["policy"] for p in _of(configured,
                                                                 "vault:index/policy:Policy")}
    assert 'path "database/creds/search-indexer"' in policies["team-search"]
    assert "checkout" not in policies["team-search"]  # a team reads its own secrets only
    # Every resource that talks to Vault goes through the stack's Vault provider.
    for resource in configured.resources:
        if resource.type.startswith("vault:"):
            assert resource.provider and "pulumi:providers:vault" in resource.provider


def test_database_roles_have_bounded_ttls(configured):
    roles = _of(configured, "vault:database/secretBackendRole:SecretBackendRole")
    assert {r.inputs["name"] for r in roles} == {
        "checkout-checkout", "checkout-checkout-worker", "search-indexer"}
    for role in roles:
        assert 0 < role.inputs["defaultTtl"] <= role.inputs["maxTtl"] <= 86400
        statements = " ".join(role.inputs["creationStatements"])
        assert "VALID UNTIL '{{expiration}}'" in statements
        assert role.inputs["revocationStatements"]


def test_the_master_password_is_handed_over_once_then_rotated(configured):
    (connection,) = _of(configured, "vault:database/secretBackendConnection:SecretBackendConnection")
    block = connection.inputs["postgresql"]
    # The password makes the block secret on the wire (or at least its own field).
    assert isinstance(block, Secret) or isinstance(block["passwordWo"], Secret)
    postgres = unwrap_secrets(block)
    assert postgres["passwordWo"]  # write-only: handed over, not kept in this resource's state
    assert "password" not in postgres
    assert "{{password}}" in postgres["connectionUrl"]
    assert sorted(connection.inputs["allowedRoles"]) == [
        "checkout-checkout", "checkout-checkout-worker", "search-indexer"]
    (rotate,) = _of(configured, "vault:generic/endpoint:Endpoint")
    assert rotate.inputs["path"] == "database/rotate-root/platform"
    assert connection.urn in rotate.dependencies
    assert rotate.inputs["disableDelete"] is True


def _plaintext_leaves(value: Any, path: str = ""):
    if isinstance(value, Secret):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _plaintext_leaves(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _plaintext_leaves(item, f"{path}[{index}]")
    else:
        yield path, value


@pytest.mark.parametrize("which", ["dev", "prod", "configured"])
def test_no_token_secret_or_password_in_plaintext(evaluations, configured, which):
    configured = configured if which == "configured" else evaluations[which]
    env = configured.config.environment
    password = configured.one("random:index/randomPassword:RandomPassword",
                              f"{env}-master-password").outputs["result"]
    grafana = configured.one("random:index/randomPassword:RandomPassword",
                             f"{env}-grafana-admin").outputs["result"]
    needles = {"the Vault token": SECRET_PLACEHOLDER, "the master password": password,
               "Grafana's password": grafana}
    for resource in configured.resources:
        for path, leaf in _plaintext_leaves(resource.inputs):
            for what, needle in needles.items():
                assert needle not in str(leaf), f"{what} in {resource.name}{path}"
    for name, output in configured.outputs.items():
        if output.secret:
            continue
        for what, needle in needles.items():
            assert needle not in str(output.value), f"{what} in output {name}"


@pytest.mark.parametrize(("vault", "message"), [
    ({"address": "http://vault.example.com:8200", "token": {"secure": "v1:x"}},
     "platform:vault.address: 'http://vault.example.com:8200': is not an https:// URL"),
    ({"address": "http://127.0.0.1:8200", "token": {"secure": "v1:x"}},
     "Vault serves TLS only"),
    ({"token": {"secure": "v1:x"}}, "platform:vault.address: null: a token needs the address"),
    ({"replicas": 2}, "platform:vault.replicas: 2: is even"),
    ({"credentialsMaxTtlSeconds": 604800}, "platform:vault.credentialsMaxTtlSeconds: 604800"),
])
def test_bad_vault_settings_are_config_errors(tmp_path, capsys, vault, message):
    path = write_stack(tmp_path, mutate(stack_config("dev"), "platform:vault", vault))
    err = config_error(path, capsys)
    assert message in err, err
    assert "v1:x" not in err


def _vault_alone(cfg) -> None:
    """The secrets stack of a stack file's config, alone: on an EKS cluster in an existing VPC,
    with an existing database."""
    cluster = eks_cluster(cfg)
    vault.SecretsStack(cfg.environment, cfg.vault, cfg.teams, cluster.target,
                       existing_database(cfg, cluster.node_security_group), cfg.region,
                       protect=cfg.preset == "prod",
                       monitoring_namespace=cfg.observability.namespace,
                       admin_role_arn=cfg.cluster.admin_role_arn,
                       key_administrators=cluster.key_administrators)


def test_after_the_bootstrap_pulumi_logs_in_as_the_deploying_role(tmp_path):
    """Address without token: the provider logs in through the AWS auth method as the role
    `pulumi up` runs as; the root token is no longer needed (and revoked)."""
    config = mutate(stack_config("prod"), "platform:vault", {"address": "https://127.0.0.1:8200"})
    evaluation = evaluate_alone(write_stack(tmp_path, config), _vault_alone)
    (provider,) = evaluation.of_type("pulumi:providers:vault")
    assert "token" not in provider.inputs
    login = json.loads(provider.inputs["authLoginAws"]) if isinstance(
        provider.inputs["authLoginAws"], str) else provider.inputs["authLoginAws"]
    assert login["role"] == vault.PULUMI_ROLE
    assert login["headerValue"] == "platform-prod-vault"
    (role,) = evaluation.of_type("vault:aws/authBackendRole:AuthBackendRole")
    assert role.inputs["boundIamPrincipalArns"] == [evaluation.config.cluster.admin_role_arn]
    assert role.inputs["authType"] == "iam" and role.inputs["tokenPolicies"] == [
        vault.PULUMI_ROLE]
    (client,) = evaluation.of_type("vault:aws/authBackendClient:AuthBackendClient")
    assert client.inputs["iamServerIdHeaderValue"] == "platform-prod-vault"


def _grants(policy: str) -> dict[str, set[str]]:
    import re as _re

    return {m[0]: set(json.loads(m[1])) for m in _re.findall(
        r'path "([^"]+)" \{\n  capabilities = (\[[^\]]*\])', policy)}


def _allows(grants: dict[str, set[str]], path: str, capability: str) -> bool:
    """Vault's matching, as far as these policies use it: exact, or a trailing `*` glob."""
    return any(capability in caps and (pattern == path or (
        pattern.endswith("*") and path.startswith(pattern[:-1])))
        for pattern, caps in grants.items())


def test_the_scoped_policy_covers_what_the_program_manages_and_not_its_own_login(configured):
    """Each Vault resource the program manages, as the API path the provider writes it at,
    is allowed by the platform-pulumi policy; its own role and policy are read-only."""
    policies = {p.inputs["name"]: p.inputs["policy"] for p in _of(configured,
                                                                 "vault:index/policy:Policy")}
    grants = _grants(policies[vault.PULUMI_ROLE])
    written = [f"sys/audit/{a.inputs['path']}" for a in _of(configured, "vault:index/audit:Audit")]
    written += [f"sys/auth/{a.inputs['path']}"
                for a in _of(configured, "vault:index/authBackend:AuthBackend")]
    written += [f"sys/mounts/{m.inputs['path']}" for m in _of(configured, "vault:index/mount:Mount")]
    written += [f"auth/kubernetes/role/{r.inputs['roleName']}" for r in _of(
        configured, "vault:kubernetes/authBackendRole:AuthBackendRole")]
    written += ["auth/kubernetes/config", "auth/aws/config/client"]
    written += [f"sys/policies/acl/{name}" for name in policies if name.startswith("team-")]
    written += [f"database/roles/{r.inputs['name']}" for r in _of(
        configured, "vault:database/secretBackendRole:SecretBackendRole")]
    written += ["database/config/platform", "database/rotate-root/platform"]
    for path in written:
        assert _allows(grants, path, "update") or _allows(grants, path, "create"), path
    for own in (f"sys/policies/acl/{vault.PULUMI_ROLE}",
                f"auth/aws/role/{vault.PULUMI_ROLE}"):
        assert _allows(grants, own, "read") and not _allows(grants, own, "update"), own
    assert not _allows(grants, "sys/audit/other", "delete")  # only its own audit device
    assert not _allows(grants, "secret/data/checkout/x", "read")  # no team secrets
    # The audit trail, every login method and the mounts' secrets outlive anything it does:
    # deleting them takes the root token.
    for path in ("sys/audit/file", "sys/auth/aws", "sys/auth/kubernetes", "sys/mounts/secret",
                 "sys/mounts/database"):
        assert _allows(grants, path, "update") and not _allows(grants, path, "delete"), path
    # It writes the configured teams' policies and roles by name, nothing else.
    assert not _allows(grants, "sys/auth/userpass", "create")
    assert not _allows(grants, "sys/policies/acl/team-intruder", "update")
    assert not _allows(grants, "sys/policies/acl/admin", "update")
    assert not _allows(grants, "auth/kubernetes/role/anything", "update")
    assert not _allows(grants, "database/roles/checkout-intruder", "create")
    assert _allows(grants, "sys/policies/acl/team-intruder", "delete")  # removing denies only


# -- TLS inside the cluster -----------------------------------------------------------------

CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
ISSUER = "kubernetes:cert-manager.io/v1:Issuer"


def test_vault_serves_tls_with_a_certificate_the_platform_issues(rendered, crds):
    for evaluation in rendered.values():
        values = _release(evaluation, "vault").inputs["values"]
        hcl = values["server"]["ha"]["raft"]["config"]
        assert "tls_disable" not in hcl
        assert f'tls_cert_file   = "{vault.TLS_DIR}/tls.crt"' in hcl
        assert 'leader_api_addr = "https://' in hcl and "leader_ca_cert_file" in hcl
        server = k8s_objects.rendered_object(evaluation, "vault", "StatefulSet", "vault")
        container = server["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["VAULT_ADDR"] == "https://127.0.0.1:8200"
        assert env["VAULT_CACERT"] == f"{vault.TLS_DIR}/ca.crt"
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts[vault.TLS_DIR] == vault.TLS_SECRET
        probe = container["readinessProbe"]["httpGet"]
        assert probe["scheme"] == "HTTPS"
        # The certificate: issued by the Vault CA, for every name Vault is reached by.
        certificates = {c.inputs["metadata"]["name"]: c for c in evaluation.of_type(CERTIFICATE)}
        server_cert = certificates[vault.TLS_SECRET]
        spec = server_cert.inputs["spec"]
        assert spec["issuerRef"] == {"name": "vault-ca", "kind": "Issuer"}
        assert {"vault.vault.svc", "vault-0.vault-internal", "*.vault-internal.vault.svc"} <= set(
            spec["dnsNames"]) and spec["ipAddresses"] == ["127.0.0.1"]
        assert server_cert.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == (
            "condition=Ready")
        assert certificates[vault.CA_SECRET].inputs["spec"]["isCA"] is True
        assert server_cert.urn in _release(evaluation, "vault").dependencies
        for resource in [*evaluation.of_type(CERTIFICATE), *evaluation.of_type(ISSUER)]:
            assert crds.errors(manifest(resource)) == [], resource.name
            assert crds.crd(manifest(resource)["apiVersion"], manifest(resource)["kind"]).chart \
                == "cert-manager v1.21.1"


def test_everything_that_talks_to_vault_verifies_its_certificate(rendered):
    for evaluation in rendered.values():
        connection = _release(evaluation, "vault-secrets-operator").inputs["values"][
            "defaultVaultConnection"]
        assert connection["address"].startswith("https://")
        assert connection["caCertSecret"] == vault.TLS_SECRET
        monitor = k8s_objects.rendered_object(evaluation, "vault", "ServiceMonitor", "vault")
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["scheme"] == "https"
        assert endpoint["tlsConfig"] == {
            "ca": {"secret": {"name": vault.TLS_SECRET, "key": "ca.crt"}},
            "serverName": "vault.vault.svc"}  # not insecureSkipVerify


def test_pulumi_verifies_vault_with_the_configured_ca(tmp_path):
    config = mutate(stack_config("prod"), "platform:vault", {
        "address": "https://127.0.0.1:8200", "caCertFile": "vault-ca.pem"})
    evaluation = evaluate_alone(write_stack(tmp_path, config), _vault_alone)
    (provider,) = evaluation.of_type("pulumi:providers:vault")
    assert provider.inputs["caCertFile"] == "vault-ca.pem"


def _connection(evaluation: Evaluation):
    (connection,) = evaluation.of_type(
        "vault:database/secretBackendConnection:SecretBackendConnection")
    postgresql = connection.inputs["postgresql"]
    return postgresql.value if isinstance(postgresql, Secret) else postgresql


def test_with_the_rds_ca_bundle_vault_verifies_the_database(tmp_path, configured):
    # The shipped stacks name the region's bundle: verified, against exactly that bundle.
    postgresql = _connection(configured)
    assert postgresql["connectionUrl"].endswith("?sslmode=verify-full")
    assert postgresql["tlsCa"] == (REPO / "certs" / "rds-ca-us-east-1.pem").read_text()
    assert not any("caBundleFile is not set" in w for w in configured.warnings)
    # Without one (allowed outside prod): encrypted, not verified, and said so.
    config = yaml.safe_load(configured_stack(tmp_path, base="dev").read_text())["config"]
    config = mutate(config, "platform:database.caBundleFile", DELETE)
    config = mutate(config, "platform:teams", [{"name": "checkout", "services": ["checkout"]}])
    evaluation = evaluate_alone(write_stack(tmp_path, config), _vault_alone)
    assert _connection(evaluation)["connectionUrl"].endswith("?sslmode=require")
    assert "tlsCa" not in _connection(evaluation)
    assert any("platform:database.caBundleFile is not set" in w for w in evaluation.warnings)


def test_a_missing_or_wrong_ca_bundle_is_a_config_error(tmp_path, capsys):
    """Relative to the project directory (where `pulumi up` runs the program)."""
    from platformctl import cli

    project = tmp_path / "project"
    shutil.copytree(REPO / "certs", project / "certs")
    shutil.copy2(REPO / "Pulumi.yaml", project / "Pulumi.yaml")
    (project / "notes.txt").write_text("not a certificate\n")
    # A real bundle, of another region: the database's root is not in it.
    other = project / "eu-west-1.pem"
    other.write_text((REPO / "certs" / "rds-ca-us-east-1.pem").read_text())
    for value, message in (("nope.pem", "is not a file"),
                           ("notes.txt", "holds no PEM certificate")):
        config = mutate(stack_config("prod"), "platform:database.caBundleFile", value)
        path = write_stack(project, config)
        assert cli.main(["review", str(path), "--project-dir", str(project)]) == cli.EXIT_USAGE
        assert f"platform:database.caBundleFile: '{value}': {message}" in capsys.readouterr().err
    config = mutate(stack_config("prod"), "aws:region", "eu-west-1")
    config = mutate(config, "platform:database.caBundleFile", "eu-west-1.pem")
    path = write_stack(project, config)
    assert cli.main(["review", str(path), "--project-dir", str(project)]) == cli.EXIT_USAGE
    assert ("platform:database.caBundleFile: 'eu-west-1.pem': holds no 'Amazon RDS eu-west-1 "
            "Root CA RSA2048 G1' certificate") in capsys.readouterr().err


def test_prod_refuses_to_run_without_the_ca_bundle(tmp_path, capsys):
    """The prod lock: no client of a prod database connects without verifying it."""
    from platformctl import cli

    config = mutate(stack_config("prod"), "platform:database.caBundleFile", DELETE)
    path = write_stack(tmp_path, config)
    assert cli.main(["review", str(path), "--project-dir", str(REPO)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "platform:database.caBundleFile" in err and "prod-preset stack" in err


# -- Vault's own database login (not the master user) ---------------------------------------

def test_vault_logs_in_to_postgresql_as_its_own_role_made_by_a_one_shot_job(configured):
    postgresql = _connection(configured)
    assert postgresql["username"] == vault.VAULT_DB_ROLE  # not the master user
    (job,) = configured.of_type("kubernetes:batch/v1:Job")
    assert job.inputs["metadata"]["name"] == "vault-db-handover-v1"
    (connection,) = configured.of_type(
        "vault:database/secretBackendConnection:SecretBackendConnection")
    assert job.urn in connection.dependencies
    pod = job.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    env = {e["name"]: e.get("value") for e in container["env"]}
    # The server verified against the stack's bundle (mounted beside the script).
    assert env["PGSSLMODE"] == "verify-full" and "PGPASSWORD" not in env  # from the Secret only
    assert env["PGSSLROOTCERT"] == "/handover/root.crt"
    (script,) = [c for c in configured.of_type("kubernetes:core/v1:ConfigMap")
                 if c.inputs["metadata"]["name"] == "vault-db-handover-v1"]
    assert script.inputs["data"]["root.crt"] == (REPO / "certs" / "rds-ca-us-east-1.pem").read_text()
    sql = vault.handover_sql()
    assert "CREATEROLE NOSUPERUSER" in sql and "SUPERUSER" not in sql.replace("NOSUPERUSER", "")
    assert "createrole_self_grant = 'set, inherit'" in sql
    assert "WITH ADMIN OPTION" in sql
    # ...and then nobody knows the master password (break-glass: masterPasswordVersion).
    assert "ALTER ROLE CURRENT_USER PASSWORD" in vault.HANDOVER_SCRIPT
    (handover_secret,) = [s for s in configured.of_type("kubernetes:core/v1:Secret")
                          if s.inputs["metadata"]["name"] == "vault-db-handover-v1"]
    data = handover_secret.inputs["stringData"]
    assert isinstance(data, Secret) or all(isinstance(v, Secret) for v in data.values())


def test_the_sql_vault_and_the_handover_job_run_parses_as_postgresql():
    """PostgreSQL's own parser (libpg_query) on every statement, the DO blocks' PL/pgSQL too,
    with psql's variables and Vault's templates filled in."""
    import pglast

    def check(sql: str) -> None:
        for raw in pglast.parse_sql(sql):
            statement = raw.stmt
            if isinstance(statement, pglast.ast.DoStmt):
                (body,) = [a.arg.sval for a in statement.args if a.defname == "as"]
                pglast.parse_plpgsql(f"DO $$ {body} $$")

    handover = "\n".join(line for line in vault.handover_sql().splitlines()
                          if not line.startswith("\\"))
    check(handover.replace(":'admin_password'", "'x'").replace(':"dbname"', '"platform"'))
    check(vault.HANDOVER_SCRIPT.split('printf "')[1].split("\\n")[0].replace(
        ":'new_password'", "'x'"))
    filled = {"{{name}}": "v-checkout-1", "{{password}}": "x", "{{expiration}}": "2030-01-01"}
    for statement in (*vault.creation_statements("checkout"),
                      *vault.revocation_statements("checkout")):
        for template, value in filled.items():
            statement = statement.replace(template, value)
        check(statement)
    with pytest.raises(pglast.parser.ParseError):
        check("GRANT svc_x TO vault_admin WITH ADMINISTRATOR")


def test_prod_puts_one_vault_server_in_each_az(rendered):
    """Raft serves while a majority of the servers does: prod's three servers are one per AZ
    (required), so an AZ's loss leaves two. The chart's default (one per node) could put two
    in one AZ. The capacity check places them so, and drains each node with them so."""
    from platform_facts import capacity
    from platformctl.runtime_checks import Release

    evaluation = rendered["prod"]
    server = k8s_objects.rendered_object(evaluation, "vault", "StatefulSet", "vault")
    assert server["spec"]["replicas"] == 3
    (term,) = server["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "topology.kubernetes.io/zone"
    # The term selects the servers' own labels (else it would keep nothing apart).
    release = _release(evaluation, "vault")
    objects = [o.object for r in evaluation.rendered if r.resource.urn == release.urn
               for o in r.objects]
    (workload,) = [w for w in capacity.workloads([Release(release.urn, "vault", "vault", "vault",
                                                          objects)])
                   if w.kind == "StatefulSet" and w.name == "vault"]
    assert workload.apart == ("topology.kubernetes.io/zone",) and workload.zonal_volumes


def test_more_vault_servers_than_azs_are_spread_by_preference_and_warned(tmp_path):
    config = mutate(stack_config("prod"), "platform:network.azCount", 2)
    evaluation = evaluate_alone(write_stack(tmp_path, config), _vault_alone)
    (warning,) = [w for w in evaluation.warnings if "platform:vault.replicas" in w]
    assert "platform:vault.replicas 3 over platform:network.azCount 2 AZs" in warning
    assert "holds 2, a majority" in warning and "raft serves with 2 of 3" in warning
    server = _release(evaluation, "vault").inputs["values"]["server"]
    (term,) = server["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    (constraint,) = server["topologySpreadConstraints"]
    assert (constraint["topologyKey"], constraint["whenUnsatisfiable"]) == (
        "topology.kubernetes.io/zone", "ScheduleAnyway")
    # Five over three AZs spread evenly keeps a majority through any AZ's loss, but the spread
    # is only preferred: still warned.
    assert "short of a majority" in vault.quorum_warning(5, 3)
    assert vault.quorum_warning(3, 3) is None and vault.quorum_warning(1, 2) is None
