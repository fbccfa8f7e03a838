"""What Argo CD would sync into a stack's cluster, read from gitops/ (platformctl/synced.py)."""

from __future__ import annotations

import shutil

import pytest

from platformctl import cli, synced
from tests.conftest import REPO


def test_each_stack_syncs_its_environments_team_services(evaluations):
    for name, evaluation in evaluations.items():
        (app,) = synced.applications(evaluation, REPO)
        assert (app.name, app.path) == ("checkout-checkout", "gitops/teams/checkout/checkout")
        kinds = sorted(o["kind"] for o in app.objects)
        assert {"Rollout", "HorizontalPodAutoscaler", "Service"} <= set(kinds), name


def test_prod_is_read_at_the_commit_it_was_promoted_from(evaluations):
    """prod's Application pins the commit `platformctl promote` promoted (before the contract
    step joined the base): the review counts what prod would sync, not the working tree."""
    import subprocess

    import yaml

    app = yaml.safe_load((REPO / "gitops/environments/prod/checkout-checkout.yaml").read_text())
    pinned = app["spec"]["source"]["targetRevision"]
    if subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{pinned}^{{commit}}"],
                      capture_output=True).returncode != 0:
        pytest.skip(f"this clone lacks prod's pinned commit {pinned[:12]} (a shallow clone)")
    jobs = {}
    for name, evaluation in evaluations.items():
        (synced_app,) = synced.applications(evaluation, REPO)
        jobs[name] = {o["metadata"]["name"] for o in synced_app.objects if o["kind"] == "Job"}
    assert "checkout-migrate-0004-orders-drop-item" in jobs["dev"]
    assert jobs["prod"] == jobs["dev"] - {"checkout-migrate-0004-orders-drop-item"}


def _copy_gitops(tmp_path):
    shutil.copytree(REPO / "gitops", tmp_path / "gitops")
    return tmp_path


def test_a_listed_file_that_is_missing_is_one_clear_error(evaluations, tmp_path):
    root = _copy_gitops(tmp_path)
    (root / "gitops/teams/checkout/checkout/rollout.yaml").unlink()
    with pytest.raises(synced.SyncedError, match=r"^gitops/teams/checkout/checkout/rollout.yaml: "):
        synced.applications(evaluations["dev"], root)
    shutil.rmtree(root / "gitops/teams/checkout")
    with pytest.raises(synced.SyncedError, match="Application checkout-checkout syncs "
                                                 "gitops/teams/checkout/checkout, which has no "
                                                 "kustomization.yaml here"):
        synced.applications(evaluations["dev"], root)


def test_a_file_that_is_not_utf8_is_one_clear_error(evaluations, tmp_path):
    root = _copy_gitops(tmp_path)
    (root / "gitops/teams/checkout/checkout/service.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(synced.SyncedError, match=r"^gitops/teams/checkout/checkout/service.yaml: "
                                                 r"not UTF-8 at line 1"):
        synced.applications(evaluations["dev"], root)


def test_applications_of_other_repositories_and_missing_environments_are_skipped(
        evaluations, tmp_path):
    root = _copy_gitops(tmp_path)
    app = root / "gitops/environments/dev/checkout-checkout.yaml"
    app.write_text(app.read_text().replace("https://github.com/example-org/platform.git",
                                           "https://github.com/example-org/elsewhere.git"))
    assert synced.applications(evaluations["dev"], root) == []
    shutil.rmtree(root / "gitops/environments/prod")
    assert synced.applications(evaluations["prod"], root) == []


def test_the_review_reports_a_broken_gitops_directory_without_a_traceback(monkeypatch, capsys,
                                                                          tmp_path):
    def broken(evaluation, root):
        raise synced.SyncedError("gitops/environments/dev/kustomization.yaml: No such file")

    monkeypatch.setattr(synced, "applications", broken)
    # The review gets a copy of dev's recording, unrendered: its rendering reads gitops/.
    assert cli.main(["review", "dev", "--project-dir", str(REPO)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "error: gitops/environments/dev/kustomization.yaml: No such file" in err
    assert "Traceback" not in err
