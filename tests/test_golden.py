"""The golden path: the example service regenerates byte for byte; what it generates validates
(kubernetes-validate strict, the upstream CRDs), passes the Gatekeeper policies as deployed to
prod (checkov: tests/test_checkov.py), and its canary queries and SLO rules are valid PromQL
(promtool); promotion keeps its digest; bad specs are clear errors."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components.admission import POLICIES
from platformctl import cli, golden, releases
from platformctl.harness import load_config
from stacks import service as service_spec
from tests.conftest import REPO, golden_path_copy
from tests.test_admission import violations

SPEC = REPO / "services" / "checkout.yaml"
BASE = REPO / "gitops" / "teams" / "checkout" / "checkout"
PROMTOOL = shutil.which("promtool")


@pytest.fixture(scope="module")
def environments():
    return {env: load_config(env, REPO) for env in cli.ENVIRONMENTS}


def _render(spec, environments, deployed=None, history=()):
    return golden.render(spec, "services/checkout.yaml", environments,
                         golden.existing_applications(REPO, cli.ENVIRONMENTS), deployed, history)


def generated_objects() -> list[dict[str, Any]]:
    files = [*BASE.glob("*.yaml"), *(REPO / "gitops" / "environments").glob("*/checkout-*.yaml")]
    from platformctl.golden import KUSTOMIZE_FILES

    return [doc for path in sorted(files) if path.name not in KUSTOMIZE_FILES
            for doc in yaml.safe_load_all(path.read_text())]


def test_the_example_regenerates_byte_for_byte(environments):
    spec = service_spec.load(SPEC)
    files = _render(spec, environments, golden.deployed_releases(REPO, spec, cli.ENVIRONMENTS),
                    releases.history(REPO, spec, "prod"))
    # ... and the service's catalog-info.yaml and the root Location (the software catalog).
    assert len(files) == 16 + len(spec.migrations.steps) + 2 * len(cli.ENVIRONMENTS) + 2
    for path, text in files.items():
        assert (REPO / path).read_text() == text, path
    assert cli.main(["new-service", str(SPEC), "--check", "--project-dir", str(REPO)]) == 0


def test_libyaml_and_pythons_emitter_write_the_same_text():
    """The generated files are written by libyaml's emitter where PyYAML has it: a machine
    without it (the pure-Python emitter) must write the same bytes, or the drift check would
    differ between machines. Every generated document, and values at the emitters' edges."""
    class Python(yaml.SafeDumper):
        def ignore_aliases(self, data):
            return True

    assert golden._PlainDumper.__mro__[1] is yaml.CSafeDumper  # libyaml is what ran
    edges = {"long": "word " * 60, "lines": "one\ntwo\n", "trailing": "space ", "quote": "it's",
             "unicode": "Grüße ✓", "colon": "a: b", "empty": "", "yes": "yes", "null": None,
             "number-like": "0123", "tab": "a\tb", "list": [[], {}, [1, 2.5, True]],
             "url": "https://grafana.example.org/d/platform-slo?var-service=checkout&x=1",
             "shared": (shared := {"k": "v"}), "again": shared}
    for document in [*generated_objects(), edges]:
        assert golden._yaml(document) == yaml.dump(document, Dumper=Python, sort_keys=False,
                                                   width=100)


def test_generated_objects_validate(environments, crds):
    objects = generated_objects()
    kinds = {o["kind"] for o in objects}
    assert kinds == {"ServiceAccount", "Rollout", "AnalysisTemplate", "Service",
                     "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
                     "ServiceMonitor", "PrometheusRule", "Application", "VaultStaticSecret",
                     "Ingress", "Job"}
    for body in objects:
        if crds.serves(body["apiVersion"], body["kind"]):
            # A custom resource: the CRD of the vendored chart that installs it.
            assert crds.errors(body) == [], body["kind"]
        else:
            kubernetes_validate.validate(body, "1.36.0", strict=True)


def test_the_rollout_passes_every_admission_policy_of_prod(evaluations):
    (rollout,) = yaml.safe_load_all((BASE / "rollout.yaml").read_text())
    gatekeeper = evaluations["prod"].config.security.gatekeeper
    for policy in POLICIES:
        assert violations(policy.id, rollout, policy.values(gatekeeper)) == [], policy.id
    # ...and the same Rollout with a tag instead of the digest would be denied in prod.
    tagged = json.loads(json.dumps(rollout))
    tagged["spec"]["template"]["spec"]["containers"][0]["image"] = (
        "111111111111.dkr.ecr.us-east-1.amazonaws.com/checkout:latest")
    assert violations("allowed-images", tagged,
                      next(p for p in POLICIES if p.id == "allowed-images").values(gatekeeper))


TLS_ENV = {"PGSSLMODE", "PGSSLROOTCERT", "PGCHANNELBINDING"}


def test_the_rollout_is_a_gated_canary_with_vault_credentials():
    (rollout,) = yaml.safe_load_all((BASE / "rollout.yaml").read_text())
    canary = rollout["spec"]["strategy"]["canary"]
    weights = [s["setWeight"] for s in canary["steps"] if "setWeight" in s]
    assert weights == [10, 50, 100]
    assert canary["analysis"]["templates"] == [{"templateName": golden.ANALYSIS}]
    container = rollout["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    # The database login arrives as files the service reads again for each new connection (no
    # password in the environment), from the Secret the Vault Secrets Operator keeps current.
    assert not any(name.startswith("PG") and name not in TLS_ENV for name in env)
    # TLS as the platform sets it for the namespace: verify-full against the bundle, channel
    # binding, from the postgres-tls ConfigMap the Tenancy component makes.
    assert env["PGSSLMODE"]["valueFrom"] == {"configMapKeyRef": {
        "name": "postgres-tls", "key": "sslmode"}}
    assert env["PGCHANNELBINDING"]["valueFrom"] == {"configMapKeyRef": {
        "name": "postgres-tls", "key": "channelbinding"}}
    assert env["PGSSLROOTCERT"]["value"] == "/etc/postgres-tls/root.crt"
    assert {"name": "postgres-tls", "configMap": {"name": "postgres-tls"}} in (
        rollout["spec"]["template"]["spec"]["volumes"])
    assert env["DB_CREDENTIALS_DIR"]["value"] == golden.DB_CREDENTIALS_DIR
    assert {"name": "database", "mountPath": golden.DB_CREDENTIALS_DIR,
            "readOnly": True} in container["volumeMounts"]
    assert {"name": "database", "secret": {"secretName": "checkout-db"}} in (
        rollout["spec"]["template"]["spec"]["volumes"])
    assert not any(k.startswith("checkov.io/") and "CKV_K8S_35" in v
                   for k, v in rollout["metadata"]["annotations"].items())
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(container)
    # KV secrets arrive as read-only files from the Secret the operator syncs.
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["secret-payment-provider"]["readOnly"] is True
    volumes = {v["name"]: v for v in rollout["spec"]["template"]["spec"]["volumes"]}
    assert volumes["secret-payment-provider"]["secret"]["secretName"] == (
        "checkout-payment-provider")
    (static,) = yaml.safe_load_all((BASE / "secret-payment-provider.yaml").read_text())
    assert static["spec"]["path"] == "checkout/checkout/payment-provider"


def _instantiate(query: str, canary_hash: str) -> str:
    expr = (query.replace("{{args.service}}", "checkout").replace("{{args.namespace}}",
                                                                  "checkout")
            .replace("{{args.canary-hash}}", canary_hash))
    assert "{{" not in expr
    return expr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is installed by .ci/run")
def test_canary_queries_and_slo_rules_are_valid_promql(tmp_path):
    rules = [{"record": f"canary:{name.replace('-', '_')}", "expr": _instantiate(query, "x")}
             for name, query in golden.analysis_queries().items()]
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump({"groups": [
        {"name": "canary", "rules": rules}]}))
    (rule,) = yaml.safe_load_all((BASE / "prometheusrule.yaml").read_text())
    (tmp_path / "slo.yaml").write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run([PROMTOOL, "check", "rules", "canary.yaml", "slo.yaml"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _series(version: str, ok_per_s: float, errors_per_s: float, slow: bool) -> list[dict]:
    """A version's pods, as the ServiceMonitor labels them: requests by code, and latency
    buckets (all under 100 ms, or all between 0.5 and 1 s)."""
    labels = f'service="checkout",namespace="checkout",rollouts_pod_template_hash="{version}"'
    total = ok_per_s + errors_per_s
    series = [{"series": f'http_requests_total{{{labels},code="200"}}',
               "values": f"0+{ok_per_s * 60:g}x15"},
              {"series": f'http_requests_total{{{labels},code="503"}}',
               "values": f"0+{errors_per_s * 60:g}x15"}]
    for le, share in (("0.1", 0 if slow else 1), ("0.5", 0 if slow else 1), ("1", 1),
                      ("+Inf", 1)):
        series.append({"series": f'http_request_duration_seconds_bucket{{{labels},le="{le}"}}',
                       "values": f"0+{total * share * 60:g}x15"})
    return series


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is installed by .ci/run")
def test_the_canary_analysis_judges_the_canarys_pods_alone(tmp_path):
    """promtool runs the AnalysisTemplate's queries, with its success conditions, on synthetic
    series: a healthy canary passes beside a failing stable version; a canary with 2% errors,
    or a slow one, fails beside a healthy stable version."""
    (template,) = yaml.safe_load_all((BASE / "analysistemplate.yaml").read_text())
    conditions = {}
    for metric in template["spec"]["metrics"]:
        _, operator, threshold = metric["successCondition"].split()
        conditions[metric["name"]] = (metric["provider"]["prometheus"]["query"], operator,
                                      threshold)
    assert set(conditions) == {"success-rate", "latency-p99"}
    series = [*_series("stable-bad", 5, 5, slow=True), *_series("stable-good", 10, 0, False),
              *_series("canary-good", 10, 0, False), *_series("canary-5xx", 9.8, 0.2, False),
              *_series("canary-slow", 10, 0, slow=True)]
    verdicts = {"canary-good": {"success-rate": 1, "latency-p99": 1},
                "canary-5xx": {"success-rate": 0, "latency-p99": 1},
                "canary-slow": {"success-rate": 1, "latency-p99": 0}}
    tests = [{"expr": f"({_instantiate(query, canary)}) {operator} bool {threshold}",
              "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": verdict[name]}]}
             for canary, verdict in verdicts.items()
             for name, (query, operator, threshold) in conditions.items()]
    # Control: the same gate without the hash reads every version, and the failing stable
    # version's errors would fail the healthy canary.
    query, operator, threshold = conditions["success-rate"]
    unscoped = query.replace(',rollouts_pod_template_hash="{{args.canary-hash}}"', "")
    assert unscoped != query
    tests.append({"expr": f"({_instantiate(unscoped, 'canary-good')}) {operator} bool "
                          f"{threshold}",
                  "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": 0}]})
    (tmp_path / "empty.yaml").write_text("groups: []\n")
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({
        "rule_files": ["empty.yaml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}]}))
    result = subprocess.run([PROMTOOL, "test", "rules", "test.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_public_canaries_split_requests_not_replicas():
    (rollout,) = yaml.safe_load_all((BASE / "rollout.yaml").read_text())
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["canaryService"] == "checkout-canary"
    assert canary["stableService"] == "checkout-stable"
    assert canary["trafficRouting"] == {"alb": {"ingress": "checkout", "rootService": "checkout",
                                                "servicePort": 80}}
    # The analysis gets the canary's pod-template hash, and reads only series carrying it.
    args = {a["name"]: a for a in canary["analysis"]["args"]}
    assert args["canary-hash"]["valueFrom"] == {"podTemplateHashValue": "Latest"}
    (monitor,) = yaml.safe_load_all((BASE / "servicemonitor.yaml").read_text())
    assert monitor["spec"]["podTargetLabels"] == ["rollouts-pod-template-hash"]
    # The Ingress routes to the root Service through the controller's action...
    (ingress,) = yaml.safe_load_all((BASE / "ingress.yaml").read_text())
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": "checkout", "port": {"name": "use-annotation"}}
    # ...the split Services exist, with the port the Rollout names, and Prometheus scrapes
    # through the root Service alone (each pod once).
    services = {}
    for name in ("service.yaml", "service-stable.yaml", "service-canary.yaml"):
        (body,) = yaml.safe_load_all((BASE / name).read_text())
        services[body["metadata"]["name"]] = body
        assert body["spec"]["ports"][0]["port"] == 80
    selected = [n for n, body in services.items()
                if all(body["metadata"]["labels"].get(k) == v
                       for k, v in monitor["spec"]["selector"]["matchLabels"].items())
                and all(e["key"] not in body["metadata"]["labels"]
                        for e in monitor["spec"]["selector"]["matchExpressions"])]
    assert selected == ["checkout"]
    # Argo CD leaves what the controller writes alone.
    for env in cli.ENVIRONMENTS:
        app = yaml.safe_load((REPO / "gitops" / "environments" / env /
                              "checkout-checkout.yaml").read_text())
        assert {(d["kind"], tuple(d["managedFieldsManagers"]))
                for d in app["spec"]["ignoreDifferences"]} == {
            ("Ingress", ("rollouts-controller",)), ("Service", ("rollouts-controller",))}
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]


def test_the_cluster_analysis_template_is_the_generated_one():
    assert (REPO / golden.CLUSTER_ANALYSIS_PATH).read_text() == (
        golden.cluster_analysis_template())


def test_regenerating_keeps_what_each_environment_runs(environments):
    spec = service_spec.load(SPEC)
    promoted = golden.Deployed("sha256:" + "1" * 64, "0123456789abcdef0123456789abcdef01234567")
    files = _render(spec, environments, {"prod": promoted}, _ran_in_prod(spec))
    prod = yaml.safe_load(files["gitops/environments/prod/checkout-checkout.yaml"])
    dev = yaml.safe_load(files["gitops/environments/dev/checkout-checkout.yaml"])
    # prod: the digest and the revision it was promoted with, pinned...
    assert prod["spec"]["source"]["kustomize"]["images"] == [
        f"{spec.image.repository}@{promoted.digest}"]
    assert prod["spec"]["source"]["targetRevision"] == promoted.revision
    # ...dev: the spec's digest (until CI sets another), following the stack's branch.
    assert dev["spec"]["source"]["kustomize"]["images"] == [
        f"{spec.image.repository}@{spec.image.digest}"]
    assert dev["spec"]["source"]["targetRevision"] == "main"
    base = {p: t for p, t in files.items() if p.startswith("gitops/teams/")}
    assert base == {p: t for p, t in _render(spec, environments, None,
                                             _ran_in_prod(spec)).items()
                    if p.startswith("gitops/teams/")}


def _ran_in_prod(spec) -> set[str]:
    """The releases the example's contract steps wait for, as if prod had run them."""
    return {step.after for step in spec.migrations.steps if step.after}


def test_a_new_service_starts_in_dev_and_reaches_prod_only_by_promotion(environments):
    spec = service_spec.load(SPEC)
    files = _render(spec, environments, None, _ran_in_prod(spec))
    assert "gitops/environments/dev/checkout-checkout.yaml" in files
    assert not any("/environments/prod/" in path for path in files)


def test_dependencies_become_exact_egress_allows(environments):
    raw = yaml.safe_load(SPEC.read_text())
    raw["dependencies"] = [{"service": "payments", "namespace": "payments", "port": 8443}]
    raw["ingressFrom"] = ["storefront"]
    spec = service_spec.ServiceSpec.model_validate(raw)
    policy = golden.network_policy(spec, "checkout")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (egress,) = policy["egress"]
    assert egress["ports"] == [{"protocol": "TCP", "port": 8443}]
    assert egress["to"][0]["podSelector"] == {"matchLabels": {
        "app.kubernetes.io/name": "payments"}}
    kubernetes_validate.validate(golden.network_policy(spec, "checkout"), "1.36.0", strict=True)


def _write(tmp_path: Path, changes: dict[str, Any]) -> Path:
    raw = {**yaml.safe_load(SPEC.read_text()), **changes}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_public_service_gets_https_on_the_shared_load_balancer():
    (ingress,) = yaml.safe_load_all((BASE / "ingress.yaml").read_text())
    annotations = ingress["metadata"]["annotations"]
    # Group and scheme are the class's (IngressClassParams), never the Ingress's to choose.
    assert "alb.ingress.kubernetes.io/group.name" not in annotations
    assert "alb.ingress.kubernetes.io/scheme" not in annotations
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert ingress["spec"]["tls"] == [{"hosts": ["checkout.example.com"]}]
    (rollout,) = yaml.safe_load_all((BASE / "rollout.yaml").read_text())
    # The pods carry the label the namespace's allow-load-balancers policy admits.
    assert rollout["spec"]["template"]["metadata"]["labels"][
        "platform.example.org/exposure"] == "public"


def test_an_internal_service_gets_no_ingress():
    raw = {**yaml.safe_load(SPEC.read_text()), "exposure": "internal"}
    raw.pop("host")
    spec = service_spec.ServiceSpec.model_validate(raw)
    objects = golden.manifests(spec, "checkout", "https://example.com/runbooks")
    assert "ingress.yaml" not in objects
    # No load balancer to split requests: the canary is by replicas, with no split Services.
    assert "trafficRouting" not in objects["rollout.yaml"]["spec"]["strategy"]["canary"]
    assert not any(name.startswith("service-") for name in objects)
    assert "platform.example.org/exposure" not in objects["rollout.yaml"]["metadata"]["labels"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"team": "payments"}, "team: 'payments': not a team of the dev stack"),
    ({"name": "orders"}, "database: true: 'orders' is not in platform:teams[checkout].services"),
    ({"image": {"repository": "docker.io/library/nginx", "digest": "sha256:" + "a" * 64}},
     "image.repository: 'docker.io/library/nginx': not in the dev stack's allowed registries"),
    ({"image": {"repository": "111111111111.dkr.ecr.us-east-1.amazonaws.com/checkout",
                "digest": "latest"}}, "image.digest: 'latest'"),
    ({"port": 80}, "port: 80"),
    ({"canary": [{"weight": 50}, {"weight": 10}]}, "canary: [50, 10]: weights must rise"),
    ({"scaling": {"minReplicas": 4, "maxReplicas": 3}}, "scaling.maxReplicas: 3: is below"),
    ({"replicas": 3}, "replicas: 3: unknown key"),
    ({"host": None}, "host: null: required with exposure: public"),
    ({"host": "Not A Host"}, "host: 'Not A Host'"),
    ({"resources": {"cpuRequest": "64", "memoryRequest": "256Mi", "memoryLimit": "512Mi"}},
     "resources.cpuRequest: 64,000m x maxReplicas 6 = 384,000m, above the 2,000m of "
     "platform:teams[checkout].quota of the dev stack"),
    ({"scaling": {"minReplicas": 2, "maxReplicas": 200}}, "scaling.maxReplicas: 200: above the 20 "
     "pods"),
    ({"resources": {"cpuRequest": "250m", "memoryRequest": "1Gi", "memoryLimit": "512Mi"}},
     "resources.memoryRequest: '1Gi': is above memoryLimit (512Mi)"),
    ({"resources": {"cpuRequest": "100m", "memoryRequest": "1Gi", "memoryLimit": "12Gi"}},
     "resources.memoryLimit: 12Gi: above the namespace LimitRange's 8Gi per container"),
    ({"host": "payments.example.com"}, "host: 'payments.example.com': not a host of team "
     "'checkout' in the dev stack (platform:teams[checkout].hosts: checkout.example.com)"),
    ({"migrations": {"command": ["migrate"], "steps": [
        {"name": "0001_orders", "phase": "expand"},
        {"name": "0002_drop_item", "phase": "contract", "contracts": "0003_sku",
         "after": "sha256:" + "a" * 64},
        {"name": "0003_sku", "phase": "expand"}]}},
     "migrations.steps[1].contracts: '0003_sku': comes after this contract step: a contract "
     "ships after its expand, never before"),
    ({"migrations": {"command": ["migrate"], "steps": [
        {"name": "0001_orders", "phase": "expand"},
        {"name": "0002_drop", "phase": "contract", "contracts": "0001_orders"}]}},
     "migrations.steps[1].after: null: required for a contract step"),
    ({"migrations": {"command": ["migrate"], "steps": [
        {"name": "0001_orders", "phase": "expand", "after": "sha256:" + "a" * 64}]}},
     "migrations.steps[0].after: 'sha256:" + "a" * 64 + "': only for a contract step"),
    ({"migrations": {"command": ["migrate"], "steps": [
        {"name": "0002_b", "phase": "expand"}, {"name": "0001_a", "phase": "expand"}]}},
     "migrations.steps[1].name: '0001_a': comes after '0002_b'"),
    ({"migrations": {"command": ["migrate"], "steps": [{"name": "drop it", "phase": "expand"}]}},
     "migrations.steps[0].name: 'drop it'"),
    ({"database": False, "name": "checkout"}, "migrations: '4 steps': need database: true"),
])
def test_bad_specs_are_clear_errors(tmp_path, capsys, changes, message):
    path = _write(tmp_path, changes)
    assert cli.main(["new-service", str(path), "--project-dir", str(REPO), "--check"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and "Traceback" not in err, err


@pytest.mark.parametrize("spec_path", sorted((REPO / "services").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_committed_spec_is_in_sync_with_gitops(spec_path):
    assert cli.main(["new-service", str(spec_path), "--check", "--project-dir", str(REPO)]) == 0


def _project_copy(tmp_path: Path) -> Path:
    """What the golden path reads and writes."""
    return golden_path_copy(tmp_path / "project")


def test_a_second_spec_never_overwrites_another_specs_service(tmp_path, capsys):
    project = _project_copy(tmp_path)
    before = {p: p.read_bytes() for p in (project / "gitops").rglob("*") if p.is_file()}
    twin = project / "services" / "checkout-copy.yaml"
    twin.write_text((project / "services" / "checkout.yaml").read_text())
    assert cli.main(["new-service", str(twin), "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert "name: 'checkout': gitops/" in err
    assert "was generated from services/checkout.yaml" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in (project / "gitops").rglob("*") if p.is_file()} == before


def test_two_services_cannot_serve_one_host(tmp_path, capsys):
    project = _project_copy(tmp_path)
    other = yaml.safe_load((project / "services" / "checkout.yaml").read_text())
    other["name"] = "checkout-v2"
    other["database"] = False  # no Vault database role for it: a different error
    other.pop("migrations")  # ...and so no migrations
    path = project / "services" / "checkout-v2.yaml"
    path.write_text(yaml.safe_dump(other))
    assert cli.main(["new-service", str(path), "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert ("host: 'checkout.example.com': already served by "
            "gitops/teams/checkout/checkout/ingress.yaml (from services/checkout.yaml)") in err
    # ...and the original regenerates as before (its own files, its own host).
    assert cli.main(["new-service", str(project / "services" / "checkout.yaml"),
                     "--project-dir", str(project), "--check"]) == 0


def test_a_leaving_pod_drains_before_it_stops():
    from platformctl.golden import (
        DEREGISTRATION_SECONDS,
        DRAIN_SECONDS,
        GRACE_SECONDS,
        PRESTOP_SECONDS,
    )

    (rollout,) = yaml.safe_load_all((BASE / "rollout.yaml").read_text())
    pod = rollout["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    # Deregistered while preStop sleeps; then SIGTERM and the service's own drain; killed after.
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": PRESTOP_SECONDS}}}
    assert {"name": "DRAIN_SECONDS", "value": str(DRAIN_SECONDS)} in container["env"]
    assert pod["terminationGracePeriodSeconds"] == GRACE_SECONDS > PRESTOP_SECONDS + DRAIN_SECONDS
    (ingress,) = yaml.safe_load_all((BASE / "ingress.yaml").read_text())
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-group-attributes"] \
        == f"deregistration_delay.timeout_seconds={DEREGISTRATION_SECONDS}"
    assert DEREGISTRATION_SECONDS >= DRAIN_SECONDS


def test_the_database_secret_holds_exactly_the_files_the_service_reads(evaluations):
    """The VaultDynamicSecret's keys (the login Vault returns plus the transformation's
    templates) are the files services/checkout/checkout/db.py reads."""
    import sys
    sys.path.insert(0, str(REPO / "services" / "checkout"))
    from checkout import db as checkout_db

    (secret,) = [r for r in evaluations["dev"].of_type(
        "kubernetes:secrets.hashicorp.com/v1beta1:VaultDynamicSecret")
                 if r.inputs["metadata"]["name"] == "checkout-db"]
    templates = secret.inputs["spec"]["destination"]["transformation"]["templates"]
    assert {"username", "password", *templates} == set(checkout_db.FILES)


def test_each_migration_step_is_a_presync_job_of_the_release(evaluations):
    """One PreSync hook Job per step, in the spec's order (sync waves), running the release's
    image (the same reference the Rollout has, so the Application's digest replaces both) with
    the service's identity and database login; it passes prod's admission policies."""
    spec = service_spec.load(SPEC)
    (rollout,) = yaml.safe_load_all((BASE / "rollout.yaml").read_text())
    container = rollout["spec"]["template"]["spec"]["containers"][0]
    gatekeeper = evaluations["prod"].config.security.gatekeeper
    for index, step in enumerate(spec.migrations.steps):
        (job,) = yaml.safe_load_all(
            (BASE / f"migration-{step.name.replace('_', '-')}.yaml").read_text())
        annotations = job["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/hook"] == "PreSync"
        assert annotations["argocd.argoproj.io/sync-wave"] == str(index)
        assert annotations["platform.example.org/migration-phase"] == step.phase
        pod = job["spec"]["template"]["spec"]
        (migrate,) = pod["containers"]
        assert migrate["image"] == container["image"]
        assert migrate["command"] == ["python", "-m", "checkout", "migrate", step.name]
        assert pod["serviceAccountName"] == "checkout" and pod["restartPolicy"] == "Never"
        assert {"name": "database", "secret": {"secretName": "checkout-db"}} in pod["volumes"]
        # Not one of the service's pods: no Service, PDB or Rollout selects it.
        assert job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == (
            "checkout-migrate")
        matching = [p for p in POLICIES if any("Job" in match["kinds"] for match in p.kinds)]
        assert {p.id for p in matching} >= {"allowed-images", "non-root", "resources",
                                             "required-labels"}
        for policy in matching:
            assert violations(policy.id, job, policy.values(gatekeeper)) == [], policy.id


def test_the_example_spec_lists_the_reference_services_migrations():
    import sys

    sys.path.insert(0, str(REPO / "services" / "checkout"))
    from checkout.migrate import steps

    spec = service_spec.load(SPEC)
    assert [s.name for s in spec.migrations.steps] == steps()


def test_the_teams_project_admits_every_kind_the_golden_path_writes():
    """Argo CD refuses to sync a kind the team's AppProject does not list: everything the
    service's base holds (the migration Jobs, the split Services, ...) must be in it."""
    from components.gitops import TEAM_KINDS

    written = {(o["apiVersion"].rpartition("/")[0], o["kind"]) for o in generated_objects()
               if o["kind"] != "Application"}
    assert written <= set(TEAM_KINDS), written - set(TEAM_KINDS)


def _built_by_argocd(tmp_path: Path, env: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """What Argo CD does with an environment's Application (its kustomize images,
    commonAnnotations and patches over the base), done by the real kustomize (kubectl's):
    (the Application's source, the Rollout it applies)."""
    from platformctl import helmbin

    app = yaml.safe_load((REPO / "gitops" / "environments" / env /
                          "checkout-checkout.yaml").read_text())
    source = app["spec"]["source"]
    base = tmp_path / env
    shutil.copytree(REPO / source["path"], base)
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    repository, digest = source["kustomize"]["images"][0].split("@")
    kustomization["images"] = [{"name": repository, "digest": digest}]
    kustomization["commonAnnotations"] = source["kustomize"]["commonAnnotations"]
    if source["kustomize"].get("patches"):
        kustomization["patches"] = source["kustomize"]["patches"]
    (base / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    done = subprocess.run([str(helmbin.binary("kubectl")), "kustomize", str(base)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (rollout,) = [d for d in yaml.safe_load_all(done.stdout) if d and d["kind"] == "Rollout"]
    return source, rollout


def test_dev_pauses_its_canaries_a_minute_and_prod_as_each_spec_says(tmp_path):
    """dev's stack caps every canary pause (platform:gitops.canaryPauseMinutes, 1 in the dev
    preset) through its Application's patch; prod runs the spec's own five-minute pauses."""
    spec = service_spec.load(SPEC)
    for env, pause in (("dev", "1m"), ("prod", "5m")):
        _, rollout = _built_by_argocd(tmp_path, env)
        steps = rollout["spec"]["strategy"]["canary"]["steps"]
        assert [s for s in steps if "setWeight" in s] == [
            {"setWeight": step.weight} for step in spec.canary]
        assert [s["pause"]["duration"] for s in steps if "pause" in s] == [pause, pause]


def test_each_environment_stamps_its_version_and_name_on_the_services_telemetry(tmp_path):
    """The Rollout's pods carry the digest and the environment, and the OpenTelemetry
    variables read them."""
    from platformctl import golden

    source, rollout = _built_by_argocd(tmp_path, "dev")
    repository, digest = source["kustomize"]["images"][0].split("@")
    template = rollout["spec"]["template"]
    assert template["metadata"]["annotations"][golden.VERSION_ANNOTATION] == digest
    assert template["metadata"]["annotations"][golden.ENVIRONMENT_ANNOTATION] == "dev"
    (container,) = template["spec"]["containers"]
    assert container["image"] == f"{repository}@{digest}"
    env = [e["name"] for e in container["env"]]
    values = {e["name"]: e.get("value") for e in container["env"]}
    assert values["OTEL_EXPORTER_OTLP_ENDPOINT"] == \
        "http://otel-gateway.tracing.svc.cluster.local:4318"
    assert values["OTEL_SERVICE_NAME"] == "checkout"
    attributes = values["OTEL_RESOURCE_ATTRIBUTES"]
    assert attributes == ("service.namespace=checkout,deployment.environment.name="
                          "$(PLATFORM_ENVIRONMENT),service.version=$(SERVICE_VERSION)")
    # Kubernetes expands $(VAR) only from variables defined earlier in the list.
    for name in ("PLATFORM_ENVIRONMENT", "SERVICE_VERSION"):
        assert env.index(name) < env.index("OTEL_RESOURCE_ATTRIBUTES")
