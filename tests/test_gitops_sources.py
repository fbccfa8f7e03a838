"""Team kustomizations are local: a remote base, component or resource, a Helm chart or a
plugin is refused by `platformctl check-gitops` (the pull-request workflow's `gitops` job) and
by the synced-apps reader the review counts workloads with; a path leaving the team's directory
too. And every service's generated manifests are what `new-service` writes."""

from __future__ import annotations

import pytest
import yaml

from platformctl import cli
from platformctl.gitopscheck import check, remote_problems
from tests.conftest import REPO, golden_path_copy

SERVICE_DIR = "gitops/teams/checkout/checkout"
TEAM_DIR = "gitops/teams/checkout"


@pytest.mark.parametrize(("key", "value"), [
    ("resources", "https://github.com/example-org/evil//deploy?ref=main"),
    ("resources", "github.com/example-org/evil//deploy?ref=v1"),
    ("resources", "git@github.com:example-org/evil.git//deploy"),
    ("resources", "git::https://example.com/repo.git"),
    ("resources", "ssh://git@github.com/example-org/evil"),
    ("components", "https://raw.githubusercontent.com/x/y/main/component"),
    ("bases", "github.com/example-org/base?ref=main"),
    ("resources", "example.com/x/y"),
])
def test_a_remote_source_is_refused(key, value):
    (problem,) = remote_problems({key: [value]}, "k.yaml", SERVICE_DIR, TEAM_DIR)
    assert f"k.yaml: {key}: {value!r}: a remote source" in problem


@pytest.mark.parametrize(("value", "refused"), [
    ("rollout.yaml", False),
    ("../common", False),  # the team's own shared directory
    ("overlays/prod", False),
    ("../../payments/payments", True),  # another team's
    ("../../../platform/analysis", True),
    ("/etc/passwd", True),
])
def test_a_path_stays_inside_its_teams_directory(value, refused):
    found = remote_problems({"resources": [value]}, "k.yaml", SERVICE_DIR, TEAM_DIR)
    assert bool(found) is refused, (value, found)
    if refused:
        assert f"leaves {TEAM_DIR}" in found[0]


@pytest.mark.parametrize("key", ["helmCharts", "helmChartInflationGenerator", "generators",
                                 "transformers", "validators"])
def test_charts_and_plugins_are_refused(key):
    (problem,) = remote_problems({key: [{"name": "x"}]}, "k.yaml", SERVICE_DIR, TEAM_DIR)
    assert problem.startswith(f"k.yaml: {key}: ")


def _copy(tmp_path):
    return golden_path_copy(tmp_path / "project")


def test_the_repository_passes_and_a_remote_base_fails_the_pull_request(tmp_path, capsys):
    assert check(REPO) == []
    project = _copy(tmp_path)
    assert cli.main(["check-gitops", "--project-dir", str(project)]) == cli.EXIT_OK
    capsys.readouterr()
    kustomization = project / SERVICE_DIR / "kustomization.yaml"
    body = yaml.safe_load(kustomization.read_text())
    body["resources"].append("https://github.com/example-org/evil//deploy?ref=main")
    kustomization.write_text(yaml.safe_dump(body))
    assert cli.main(["check-gitops", "--project-dir", str(project)]) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert (f"refused: {SERVICE_DIR}/kustomization.yaml: resources: "
            "'https://github.com/example-org/evil//deploy?ref=main': a remote source") in out
    # A generated manifest edited by hand is stale.
    body["resources"].pop()
    kustomization.write_text(yaml.safe_dump(body))
    rollout = project / SERVICE_DIR / "rollout.yaml"
    rollout.write_text(rollout.read_text().replace("replicas: 2", "replicas: 9"))
    assert cli.main(["check-gitops", "--project-dir", str(project)]) == cli.EXIT_FAILED
    assert f"stale: {SERVICE_DIR}/rollout.yaml" in capsys.readouterr().out


def test_the_synced_apps_reader_refuses_a_remote_source(tmp_path, evaluations):
    from platformctl import synced

    project = _copy(tmp_path)
    kustomization = project / SERVICE_DIR / "kustomization.yaml"
    body = yaml.safe_load(kustomization.read_text())
    body["components"] = ["github.com/example-org/evil//c?ref=main"]
    kustomization.write_text(yaml.safe_dump(body))
    with pytest.raises(synced.SyncedError, match="components: 'github.com/example-org/evil"):
        synced.applications(evaluations["dev"], project)


def test_the_pull_request_workflow_runs_the_check():
    workflow = yaml.safe_load((REPO / ".github/workflows/pull-request.yml").read_text())
    steps = workflow["jobs"]["gitops"]["steps"]
    assert any(s.get("run") == ".venv/bin/platformctl check-gitops" for s in steps)
