"""ArgoBootstrap over the real stacks: the root Application watches gitops/ for the stack's
environment, the team AppProjects confine each team, Argo CD is private and HA in prod, the
cluster metadata follows the gitops-bridge contract, and SSO keeps its secret a secret."""

from __future__ import annotations

import shutil
import subprocess

import kubernetes_validate
import pytest
import yaml

from components import gitops
from components.gitops import ArgoBootstrap
from platformctl.recording import Evaluation, Secret
from tests import k8s_objects
from tests.conftest import REPO, config_error, mutate, stack_config, write_stack
from tests.k8s_objects import manifest, owned_objects
from tests.units import evaluate_alone, plain_target

APP = "kubernetes:argoproj.io/v1alpha1:Application"
PROJECT = "kubernetes:argoproj.io/v1alpha1:AppProject"


def _release(evaluation: Evaluation, chart: str):
    return k8s_objects.release(evaluation, chart)


def test_the_root_application_watches_gitops_for_its_environment(stack, crds):
    (root,) = stack.of_type(APP)
    body = manifest(root)
    assert crds.errors(body) == []
    source = body["spec"]["source"]
    environment = stack.config.environment
    assert source["path"] == f"gitops/environments/{environment}"
    assert (REPO / source["path"] / "kustomization.yaml").is_file()
    assert source["repoURL"] == stack.config.gitops.repo_url
    assert source["targetRevision"] == "main"
    assert body["spec"]["project"] == gitops.PLATFORM_PROJECT
    assert body["spec"]["destination"] == {"server": gitops.IN_CLUSTER,
                                           "namespace": "argocd"}
    automated = body["spec"]["syncPolicy"].get("automated")
    if environment == "dev":
        assert automated == {"prune": True, "selfHeal": True}
    else:
        assert automated is None  # prod: promotion is a person syncing a reviewed change
    argocd = _release(stack, "argo-cd")
    assert argocd.urn in root.dependencies


def test_team_projects_confine_each_team(stack, crds):
    projects = {r.inputs["metadata"]["name"]: manifest(r) for r in stack.of_type(PROJECT)}
    for body in projects.values():
        assert crds.errors(body) == []
    for team in stack.config.teams:
        spec = projects[team.name]["spec"]
        assert spec["destinations"] == [{"server": gitops.IN_CLUSTER, "namespace": ns}
                                        for ns in team.namespaces]
        assert spec["sourceRepos"] == [stack.config.gitops.repo_url, *team.repos]
        assert spec["clusterResourceWhitelist"] == []
        kinds = {item["kind"] for item in spec["namespaceResourceWhitelist"]}
        assert "Rollout" in kinds and "ServiceMonitor" in kinds
        assert not kinds & {"Role", "RoleBinding", "ResourceQuota", "LimitRange", "Namespace",
                            "Secret", "ClusterRole", "*"}
        windows = spec.get("syncWindows", [])
        if stack.config.environment == "prod":
            assert windows and all(w["timeZone"] == "UTC" for w in windows)
        else:
            assert windows == []
    platform = projects[gitops.PLATFORM_PROJECT]["spec"]
    # Applications into argocd; the delivery facts' ConfigMap into the monitoring namespace.
    assert platform["destinations"] == [
        {"server": gitops.IN_CLUSTER, "namespace": "argocd"},
        {"server": gitops.IN_CLUSTER, "namespace": stack.config.observability.namespace}]
    assert platform["namespaceResourceWhitelist"] == [
        {"group": "argoproj.io", "kind": "Application"},
        {"group": "argoproj.io", "kind": "ApplicationSet"},
        {"group": "", "kind": "ConfigMap"}]
    assert platform["clusterResourceWhitelist"] == [
        {"group": "argoproj.io", "kind": "ClusterAnalysisTemplate"}]


def test_argo_is_private_pinned_and_ha_in_prod(evaluations):
    for name, ha in (("dev", False), ("prod", True)):
        argocd = _release(evaluations[name], "argo-cd")
        values = argocd.inputs["values"]
        assert argocd.inputs["version"] == "10.1.1"
        assert values["server"]["service"]["type"] == "ClusterIP"
        assert values["server"]["ingress"]["enabled"] is False
        # Redis is a cache: one server in both (gitops.redisHa turns Redis HA on).
        assert values["redis-ha"]["enabled"] is False
        assert values["server"]["replicas"] == values["repoServer"]["replicas"] == (
            2 if ha else 1)
        # One application controller: a second one only shards clusters, and there is one.
        assert values["controller"]["replicas"] == 1
        # A signed-in user outside the admin group gets nothing.
        assert values["configs"]["rbac"]["policy.default"] == ""
        rollouts = _release(evaluations[name], "argo-rollouts")
        assert rollouts.inputs["version"] == "2.41.0"
        assert rollouts.inputs["values"]["dashboard"]["enabled"] is False


def test_cluster_metadata_follows_the_gitops_bridge_contract(stack):
    (secret,) = [r for r in stack.of_type("kubernetes:core/v1:Secret")
                 if r.inputs["metadata"]["name"] == "in-cluster"]
    metadata = secret.inputs["metadata"]
    labels, annotations = metadata["labels"], metadata["annotations"]
    assert labels["argocd.argoproj.io/secret-type"] == "cluster"
    assert labels["environment"] == stack.config.environment
    assert labels["enable_argo_rollouts"] == labels["enable_vault"] == "true"
    assert annotations["aws_region"] == stack.config.region
    assert annotations["aws_vpc_id"] == stack.outputs["vpcId"].value
    assert annotations["aws_cluster_name"] == stack.outputs["clusterName"].value
    assert annotations["addons_repo_url"] == stack.config.gitops.repo_url
    assert annotations["database_address"] == stack.outputs["databaseAddress"].value


def test_gitops_is_environment_agnostic(evaluations):
    # Images name their registry (an account's ECR); nothing else names the environment.
    lines = [line for p in (REPO / "gitops").rglob("*.yaml") for line in p.read_text().splitlines()
             if "@sha256:" not in line]
    text = "\n".join(lines)
    for evaluation in evaluations.values():
        for output in ("vpcId", "clusterName", "databaseAddress"):
            assert str(evaluation.outputs[output].value) not in text
    for value in ("111111111111", "us-east-1", "vpc-"):
        assert value not in text


def test_owned_builtin_objects_validate_strictly(stack):
    bodies = [manifest(r) for r in owned_objects(stack, "platform:index:ArgoBootstrap")
              if not r.type.startswith("kubernetes:argoproj.io")]
    assert {b["kind"] for b in bodies} == {"Namespace", "Secret", "NetworkPolicy"}
    for body in bodies:
        kubernetes_validate.validate(body, "1.36.0", strict=True)


def test_sso_disables_the_local_admin_and_keeps_its_secret(tmp_path):
    config = mutate(stack_config("prod"), "platform:gitops.sso", {
        "issuer": "https://login.example.com", "clientId": "argocd",
        "clientSecret": {"secure": "v1:c2VjcmV0"}, "adminGroup": "platform-admins"})
    evaluation = evaluate_alone(write_stack(tmp_path, config), lambda cfg: ArgoBootstrap(
        cfg.environment, cfg.gitops, cfg.environment, cfg.teams, plain_target(), metadata={},
        addons={}, monitoring_namespace=cfg.observability.namespace))
    values = _release(evaluation, "argo-cd").inputs["values"]
    if isinstance(values, Secret):
        values = values.value
    cm = values["configs"]["cm"]
    assert cm["admin.enabled"] == "false"
    assert "issuer: https://login.example.com" in cm["oidc.config"]
    assert "clientSecret: $oidc.clientSecret" in cm["oidc.config"]
    assert values["configs"]["rbac"]["policy.csv"] == "g, platform-admins, role:admin\n"
    secret = values["configs"]["secret"]["extra"]["oidc.clientSecret"]
    assert isinstance(secret, Secret) or isinstance(
        _release(evaluation, "argo-cd").inputs["values"], Secret)


@pytest.mark.parametrize(("gitops_config", "message"), [
    ({"repoUrl": "git@github.com:example-org/platform.git"},
     "platform:gitops.repoUrl: 'git@github.com:example-org/platform.git'"),
    ({"repoUrl": "https://github.com/example-org/platform.git",
      "syncWindows": [{"kind": "allow", "schedule": "daily", "duration": "7h"}]},
     "platform:gitops.syncWindows[0].schedule: 'daily'"),
])
def test_bad_gitops_settings_are_config_errors(tmp_path, capsys, gitops_config, message):
    path = write_stack(tmp_path, mutate(stack_config("dev"), "platform:gitops", gitops_config))
    err = config_error(path, capsys)
    assert message in err, err


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_environment_lists_its_applications_and_the_platform_apps(env, crds):
    directory = REPO / "gitops" / "environments" / env
    listed = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
    present = sorted(p.name for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    assert listed == present and "platform-addons.yaml" in listed
    appsets = {a["metadata"]["name"]: a for a in
               yaml.safe_load_all((directory / "platform-addons.yaml").read_text())}
    assert set(appsets) == {"platform-analysis", "platform-dora"}
    for appset in appsets.values():
        assert crds.errors(appset) == []
        template = appset["spec"]["template"]["spec"]
        assert template["project"] == gitops.PLATFORM_PROJECT
        # gitops-bridge: where to read comes from the cluster Secret, not from this file.
        assert template["source"]["repoURL"] == "{{.metadata.annotations.addons_repo_url}}"
        path = template["source"]["path"].replace(
            "{{.metadata.annotations.addons_repo_basepath}}", "gitops")
        assert (REPO / path / "kustomization.yaml").is_file()
    selectors = {name: a["spec"]["generators"][0]["clusters"]["selector"]["matchLabels"]
                 for name, a in appsets.items()}
    assert selectors == {"platform-analysis": {"enable_argo_rollouts": "true"},
                         "platform-dora": {"enable_kube_prometheus_stack": "true"}}
    # The facts go where node-exporter is: the cluster Secret names the monitoring namespace.
    assert appsets["platform-dora"]["spec"]["template"]["spec"]["destination"]["namespace"] == \
        "{{.metadata.annotations.monitoring_namespace}}"


def test_the_platform_analysis_template_is_valid(tmp_path, crds):
    directory = REPO / "gitops" / "platform" / "analysis"
    listed = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
    rules = []
    for name in listed:
        for body in yaml.safe_load_all((directory / name).read_text()):
            assert crds.errors(body) == []
            args = {a["name"] for a in body["spec"]["args"]}
            for metric in body["spec"]["metrics"]:
                query = metric["provider"]["prometheus"]["query"]
                used = {part.split("}}")[0] for part in query.split("{{args.")[1:]}
                assert used <= args
                for arg in used:
                    query = query.replace(f"{{{{args.{arg}}}}}", "x")
                rules.append({"record": f"canary:{metric['name'].replace('-', '_')}",
                              "expr": query})
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is installed by .ci/run")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [
        {"name": "analysis", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", "rules.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prod_requires_sso_and_its_admin_is_off(tmp_path, capsys, evaluations):
    from platformctl import cli
    from tests.conftest import DELETE

    prod = _release(evaluations["prod"], "argo-cd").inputs["values"]
    prod = prod.value if isinstance(prod, Secret) else prod
    assert prod["configs"]["cm"]["admin.enabled"] == "false"
    assert prod["configs"]["rbac"]["policy.csv"] == "g, platform-admins, role:admin\n"
    # Without its client secret (set by an operator), `pulumi up` says so.
    assert any("platform:gitops.sso.clientSecret is not set" in w
               for w in evaluations["prod"].warnings)
    path = write_stack(tmp_path, mutate(stack_config("prod"), "platform:gitops.sso", DELETE))
    assert cli.main(["review", str(path), "--project-dir", str(REPO)]) == cli.EXIT_USAGE
    assert "platform:gitops.sso: null: is weakened in a prod-preset stack" in \
        capsys.readouterr().err


def test_argo_cds_default_project_is_locked(evaluations):
    """Argo CD creates `default` allowing every source, destination and kind; the platform
    empties it (server-side apply, forced), so an Application without a project of the
    platform's deploys nothing."""
    for evaluation in evaluations.values():
        (patch,) = [r for r in evaluation.of_type(
            "kubernetes:argoproj.io/v1alpha1:AppProjectPatch")
            if r.inputs["metadata"]["name"] == "default"]
        assert patch.inputs["metadata"]["namespace"] == "argocd"
        assert patch.inputs["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"
        spec = patch.inputs["spec"]
        assert spec["sourceRepos"] == [] and spec["destinations"] == []
        assert spec["clusterResourceWhitelist"] == [] and spec["namespaceResourceWhitelist"] == []


@pytest.mark.parametrize("name", ["platform", "default"])
def test_a_team_cannot_take_the_platforms_names(tmp_path, capsys, name):
    config = mutate(stack_config("dev"), "platform:teams", [{"name": name}])
    assert f"platform:teams[0].name: '{name}': is the platform's own" in config_error(
        write_stack(tmp_path, config), capsys)
