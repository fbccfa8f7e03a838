"""The software catalog as code: every generated entity is valid by Backstage's own validators
(@backstage/catalog-model's policies and kind validators, run in Node from tools/backstage,
installed by .ci/run), every reference in it resolves, the Location lists every file, the
files are what the commands write, and the service's entities say what the environments run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from platformctl import catalog, cli, golden, releases
from stacks import service as service_spec
from tests.conftest import REPO, golden_path_copy, require_tool

TOOLS = REPO / "tools" / "backstage"
NODE = shutil.which("node")


def needs_backstage() -> None:
    require_tool(bool(NODE) and (TOOLS / "node_modules" / "@backstage" / "catalog-model").is_dir(),
                 "Backstage's packages are not installed: .ci/run installs them (`npm ci` in "
                 "tools/backstage)")


def validate(*files: Path) -> tuple[int, list[dict]]:
    """Backstage's validators on every entity of `files`: exit code and one result each."""
    needs_backstage()
    result = subprocess.run([NODE, str(TOOLS / "validate.cjs"), *map(str, files)],
                            capture_output=True, text=True, timeout=120, cwd=REPO)
    assert not result.stderr.strip(), result.stderr
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()]


def catalog_files(root: Path = REPO) -> list[Path]:
    location = root / catalog.LOCATION_PATH
    return [location, *(root / t for t in catalog.location_targets(location.read_text()))]


def entities(root: Path = REPO) -> list[dict]:
    return [d for path in catalog_files(root) for d in yaml.safe_load_all(path.read_text())
            if isinstance(d, dict)]


@pytest.mark.e2e
def test_every_entity_is_valid_by_backstages_validators():
    code, results = validate(*catalog_files())
    assert code == 0, [r for r in results if r["error"]]
    kinds = {(r["kind"], r["name"]) for r in results}
    assert {("Location", "platform"), ("System", "platform"), ("Group", "platform"),
            ("Group", "checkout"), ("Resource", "dev-cluster"), ("Resource", "prod-database"),
            ("Component", "checkout"), ("API", "checkout-api")} <= kinds


@pytest.mark.e2e
def test_the_validators_refuse_what_backstage_refuses(tmp_path):
    """A name Backstage's field formats refuse, a Component without its lifecycle, and an API
    whose definition file is missing (the catalog resolves $text before it validates)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all([
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
         "metadata": {"name": "Bad_Name!"}, "spec": {"type": "service", "owner": "x",
                                                     "lifecycle": "production"}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
         "metadata": {"name": "ok"}, "spec": {"type": "service", "owner": "x"}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "API", "metadata": {"name": "a"},
         "spec": {"type": "openapi", "lifecycle": "production", "owner": "x",
                  "definition": {"$text": "./missing.yaml"}}},
        {"apiVersion": "backstage.io/v1alpha1", "kind": "Widget", "metadata": {"name": "w"},
         "spec": {}},
    ]))
    code, results = validate(bad)
    assert code == 1
    errors = [r["error"] for r in results]
    assert '"metadata.name" is not valid' in errors[0]
    assert "lifecycle" in errors[1]
    assert "missing.yaml" in errors[2]
    assert errors[3] == "no validator for backstage.io/v1alpha1 Widget"


def test_every_reference_resolves_and_every_file_is_listed():
    """Owners, systems, dependencies and provided APIs name entities the catalog has: the
    repository registers one Location and Backstage finds everything through it."""
    found = entities()
    have = {f"{e['kind'].lower()}:default/{e['metadata']['name']}" for e in found}

    def ref(value: str, kind: str) -> str:
        return value if ":" in value else f"{kind}:default/{value}"

    for e in found:
        spec = e.get("spec", {})
        refs = ([ref(spec["owner"], "group")] if "owner" in spec else []) + \
               ([ref(spec["system"], "system")] if "system" in spec else []) + \
               [*spec.get("dependsOn", []), *spec.get("providesApis", [])]
        assert set(refs) <= have, (e["metadata"]["name"], set(refs) - have)
    on_disk = {p.relative_to(REPO).as_posix() for p in REPO.glob("services/*/catalog-info.yaml")}
    assert on_disk | {catalog.PLATFORM_PATH} == set(
        catalog.location_targets((REPO / catalog.LOCATION_PATH).read_text()))


def test_the_catalog_files_are_what_the_commands_write():
    files = cli.generated_files(REPO)
    for path in (catalog.PLATFORM_PATH, catalog.LOCATION_PATH):
        assert (REPO / path).read_text() == files[Path(path)], (
            f"{path} is stale: platformctl generate --write")
    spec = service_spec.load(REPO / "services" / "checkout.yaml")
    rendered = golden.render(spec, "services/checkout.yaml", cli._environments(REPO),
                             golden.existing_applications(REPO, cli.ENVIRONMENTS),
                             golden.deployed_releases(REPO, spec, cli.ENVIRONMENTS),
                             releases.history(REPO, spec, cli.ENVIRONMENTS[-1]),
                             golden.catalog_targets(REPO))
    path = catalog.service_path(spec, "services/checkout.yaml")
    assert path == "services/checkout/catalog-info.yaml"
    assert (REPO / path).read_text() == rendered[path], (
        "run platformctl new-service services/checkout.yaml")


def test_the_component_says_who_owns_it_where_it_runs_and_where_to_look():
    (component, api) = list(yaml.safe_load_all(
        (REPO / "services" / "checkout" / "catalog-info.yaml").read_text()))
    spec = component["spec"]
    assert spec["owner"] == "group:default/checkout" and spec["system"] == "platform"
    assert spec["lifecycle"] == "production"  # prod runs it (gitops/environments/prod/)
    assert set(spec["dependsOn"]) == {f"resource:default/{env}-{kind}" for env in ("dev", "prod")
                                      for kind in ("cluster", "database")}
    notes = component["metadata"]["annotations"]
    assert notes[catalog.KUBERNETES_SELECTOR] == "app.kubernetes.io/name=checkout"
    assert notes[catalog.KUBERNETES_NAMESPACE] == "checkout"
    assert notes[catalog.ARGOCD_APP] == "checkout-checkout"
    # The Argo CD plugin finds the Application by that name, and the Kubernetes plugin the
    # objects by that selector: both as the golden path writes them.
    app = yaml.safe_load((REPO / "gitops/environments/dev/checkout-checkout.yaml").read_text())
    assert app["metadata"]["name"] == notes[catalog.ARGOCD_APP]
    rollout = yaml.safe_load((REPO / "gitops/teams/checkout/checkout/rollout.yaml").read_text())
    assert rollout["metadata"]["labels"]["app.kubernetes.io/name"] == "checkout"
    titles = [link["title"] for link in component["metadata"]["links"]]
    assert titles == [f"{what}: {env}" for env in ("dev", "prod")
                      for what in ("Argo CD", "SLO dashboard", "Logs", "Traces")] + [
        "Runbook: SLO error budget burn", "Service spec"]
    links = {link["title"]: link["url"] for link in component["metadata"]["links"]}
    assert links["Argo CD: prod"] == ("https://argocd.prod.example.com/applications/argocd/"
                                      "checkout-checkout")
    assert links["SLO dashboard: dev"] == "https://grafana.dev.example.com/d/platform-slos"
    assert "%5C%22checkout%5C%22" in links["Logs: dev"] and "now-1h" in links["Logs: dev"]
    assert links["Runbook: SLO error budget burn"].endswith("/docs/runbooks/"
                                                            "slo-error-budget-burn.md")
    assert (REPO / "docs/runbooks/slo-error-budget-burn.md").is_file()
    assert api["spec"]["definition"] == {"$text": "./openapi.yaml"}
    assert spec["providesApis"] == ["api:default/checkout-api"]


def test_a_service_prod_does_not_run_yet_is_experimental():
    spec = service_spec.load(REPO / "services" / "checkout.yaml")
    environments = cli._environments(REPO)
    (component, _) = catalog.service_entities(spec, "services/checkout.yaml", "checkout",
                                              environments, running=["dev"])
    assert component["spec"]["lifecycle"] == "experimental"
    assert not any(link["title"].endswith(": prod") for link in component["metadata"]["links"])


def _project(tmp_path: Path) -> Path:
    return golden_path_copy(tmp_path / "project")


def test_a_missing_api_definition_and_a_taken_name_are_refused(tmp_path, capsys):
    project = _project(tmp_path)
    spec = (project / "services" / "checkout.yaml").read_text()
    (project / "services" / "checkout.yaml").write_text(
        spec.replace("definition: checkout/openapi.yaml", "definition: checkout/nope.yaml"))
    code = cli.main(["new-service", str(project / "services" / "checkout.yaml"),
                     "--project-dir", str(project)])
    err = capsys.readouterr().err
    assert code == 2 and "api.definition: 'checkout/nope.yaml': no such file" in err
    # A second team's service named like an entity the catalog has.
    (project / "services" / "checkout.yaml").write_text(spec)
    other = project / "other" / "checkout.yaml"
    other.parent.mkdir()
    other.write_text(spec.replace("api: {type: openapi, definition: checkout/openapi.yaml}", ""))
    code = cli.main(["new-service", str(other), "--project-dir", str(project)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "the software catalog already has an entity 'checkout'" in err
