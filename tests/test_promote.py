"""Promotion by digest (`platformctl promote`), release records, rollback, and the rule that a
contract migration ships only after the release that stopped using the old shape ran in prod.
Each test works on a Git copy of the project's gitops/ and services/."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from platformctl import cli
from tests.test_golden import _project_copy

APP = "gitops/environments/{env}/checkout-checkout.yaml"
RECORDS = "gitops/releases/checkout/checkout"
BUILT = "sha256:" + "b" * 64
NEWER = "sha256:" + "c" * 64


def _git(project: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = _project_copy(tmp_path)
    _git(root, "init", "-q", "-b", "main")
    _commit(root, "the platform")
    return root


def _commit(project: Path, message: str) -> str:
    _git(project, "add", "-A")
    _git(project, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q",
         "--allow-empty", "-m", message)
    return _git(project, "rev-parse", "HEAD")


def _app(project: Path, env: str) -> tuple[str, str]:
    source = yaml.safe_load((project / APP.format(env=env)).read_text())["spec"]["source"]
    (image,) = source["kustomize"]["images"]
    return image.partition("@")[2], source["targetRevision"]


def _files(project: Path) -> dict[str, bytes]:
    return {p.relative_to(project).as_posix(): p.read_bytes()
            for p in (project / "gitops").rglob("*") if p.is_file()}


def _promote(project: Path, *args: str) -> int:
    return cli.main(["promote", *args, "--project-dir", str(project)])


def _records(project: Path) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((project / RECORDS).glob("*.yaml"))]


def test_a_build_reaches_dev_then_prod_by_digest_with_a_record_each(project, capsys):
    before = len(_records(project))
    assert _promote(project, "checkout", "--to", "dev", "--digest", BUILT) == 0
    assert _app(project, "dev") == (BUILT, "main")  # dev follows its branch
    base_commit = _git(project, "rev-parse", "HEAD")  # the last change of the base
    _commit(project, "checkout: release to dev")
    assert _promote(project, "checkout/checkout", "--to", "prod") == 0
    # prod runs exactly dev's digest, pinned to the commit of the base promoted.
    assert _app(project, "prod") == (BUILT, base_commit)
    records = _records(project)[before:]
    assert [(r["kind"], r["from"], r["to"], r["digest"]) for r in records] == [
        ("release", "ci", "dev", BUILT), ("promotion", "dev", "prod", BUILT)]
    assert records[1]["sourceCommit"] == base_commit and records[1]["service"] == "checkout"
    assert records[1]["previousDigest"] and records[1]["time"].endswith("Z")
    out = capsys.readouterr().out
    assert f"checkout/checkout: prod promoted from dev: {BUILT} at {base_commit[:12]}" in out
    # The result is what new-service regenerates: nothing stale.
    assert cli.main(["new-service", str(project / "services" / "checkout.yaml"), "--check",
                     "--project-dir", str(project)]) == 0
    # Promoting again changes nothing.
    _commit(project, "checkout: promoted")
    files = _files(project)
    assert _promote(project, "checkout", "--to", "prod") == 0
    assert _files(project) == files and "prod already runs" in capsys.readouterr().out


def test_a_base_change_reaches_prod_only_when_promoted(project):
    pinned = _git(project, "rev-parse", "HEAD")
    assert _promote(project, "checkout", "--to", "prod") == 0
    _commit(project, "promoted")
    spec = project / "services" / "checkout.yaml"
    spec.write_text(spec.read_text().replace("cpuRequest: 250m", "cpuRequest: 300m"))
    assert cli.main(["new-service", str(spec), "--project-dir", str(project)]) == 0
    changed = _commit(project, "checkout: more CPU")
    # The base changed on main (dev follows it); prod's Application still reads the commit
    # it was promoted from.
    assert _app(project, "prod")[1] == pinned
    assert _promote(project, "checkout", "--to", "prod") == 0
    assert _app(project, "prod")[1] == changed


def test_rollback_is_promote_with_an_earlier_record(project):
    first = _git(project, "rev-parse", "HEAD")
    assert _promote(project, "checkout", "--to", "dev", "--digest", BUILT) == 0
    _commit(project, "release b")
    assert _promote(project, "checkout", "--to", "prod") == 0
    _commit(project, "promote b")
    (good,) = (project / RECORDS).glob(f"*-prod-promotion-{BUILT[7:19]}.yaml")
    assert _promote(project, "checkout", "--to", "dev", "--digest", NEWER) == 0
    _commit(project, "release c")
    assert _promote(project, "checkout", "--to", "prod") == 0
    assert _app(project, "prod")[0] == NEWER
    _commit(project, "promote c")
    assert _promote(project, "checkout", "--to", "prod", "--record",
                    good.relative_to(project).as_posix()) == 0
    assert _app(project, "prod") == (BUILT, first)
    last = _records(project)[-1]
    assert (last["kind"], last["to"], last["digest"], last["previousDigest"]) == (
        "rollback", "prod", BUILT, NEWER)


@pytest.mark.parametrize(("args", "message"), [
    (["payments", "--to", "prod"], "service: 'payments' is not a service of services/*.yaml; "
                                   "allowed: checkout/checkout"),
    (["checkout", "--to", "prod", "--digest", NEWER],
     f"--digest: {NEWER}: not the digest dev runs"),
    (["checkout", "--to", "staging"], "--to: 'staging': not an environment of the project; "
                                      "allowed: dev, prod"),
    (["checkout", "--to", "dev"], "--digest: required with --to dev"),
    (["checkout", "--to", "dev", "--digest", "latest"], "--digest: 'latest': not an image "
                                                        "digest"),
    (["checkout", "--to", "prod", "--record", "gitops/environments/dev/checkout-checkout.yaml"],
     "not a release record"),
])
def test_bad_promotions_are_clear_errors_and_write_nothing(project, capsys, args, message):
    files = _files(project)
    assert _promote(project, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert _files(project) == files


def test_a_record_of_another_environment_cannot_roll_prod_back(project, capsys):
    assert _promote(project, "checkout", "--to", "dev", "--digest", BUILT) == 0
    _commit(project, "release")
    (dev_record,) = (project / RECORDS).glob("*-dev-release-*.yaml")
    files = _files(project)
    assert _promote(project, "checkout", "--to", "prod", "--record",
                    dev_record.relative_to(project).as_posix()) == 2
    assert "a record of checkout/checkout in dev; allowed: a record of checkout/checkout in " \
           "prod" in capsys.readouterr().err
    assert _files(project) == files


def test_an_uncommitted_base_is_not_promoted(project, capsys):
    rollout = project / "gitops/teams/checkout/checkout/rollout.yaml"
    rollout.write_text(rollout.read_text() + "# a hand edit\n")
    files = _files(project)
    assert _promote(project, "checkout", "--to", "prod") == 2
    assert ("gitops/teams/checkout/checkout/rollout.yaml: uncommitted changes in what a "
            "promotion reads") in capsys.readouterr().err
    assert _files(project) == files


def test_a_contract_step_waits_for_its_release_in_prod(project, capsys):
    spec = project / "services" / "checkout.yaml"
    raw = yaml.safe_load(spec.read_text())
    # The example's contract step, waiting for another release (BUILT) instead.
    (contract,) = [s for s in raw["migrations"]["steps"] if s["phase"] == "contract"]
    contract["after"] = BUILT
    without = {**raw, "migrations": {**raw["migrations"], "steps": [
        s for s in raw["migrations"]["steps"] if s is not contract]}}
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    files = _files(project)
    # BUILT has not run in prod: the contract would remove what prod's release still uses.
    assert cli.main(["new-service", str(spec), "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert ("migrations.steps[3] (0004_orders_drop_item): a contract step ships only once the "
            "release that stopped using the old shape has run in prod; after: " + BUILT) in err
    assert _files(project) == files
    # Ship the release first: dev, then prod (without the contract step)...
    spec.write_text(yaml.safe_dump(without, sort_keys=False))
    assert cli.main(["new-service", str(spec), "--project-dir", str(project)]) == 0
    _commit(project, "the base without the contract step")
    assert _promote(project, "checkout", "--to", "dev", "--digest", BUILT) == 0
    _commit(project, "release")
    assert _promote(project, "checkout", "--to", "prod") == 0
    _commit(project, "promote")
    # ...then the contract step is accepted, and reaches dev's base (prod's when promoted).
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert cli.main(["new-service", str(spec), "--project-dir", str(project)]) == 0
    job = yaml.safe_load((project / "gitops/teams/checkout/checkout/"
                          "migration-0004-orders-drop-item.yaml").read_text())
    assert job["metadata"]["annotations"]["platform.example.org/migration-phase"] == "contract"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("sourceCommit", "refs/heads/attacker-branch",
     "sourceCommit: 'refs/heads/attacker-branch': not a commit"),
    ("sourceCommit", "f" * 40, f"sourceCommit: {'f' * 40}: not in main's history"),
    ("digest", "sha256:" + "e" * 64, f"digest: sha256:{'e' * 64}: never ran in dev"),
    ("digest", "latest", "digest: 'latest': not an image digest"),
])
def test_a_crafted_record_cannot_roll_prod_anywhere(project, capsys, field, value, message):
    """A record is a file a pull request can write: a rollback takes only a digest dev has
    run and a commit of main's history."""
    assert _promote(project, "checkout", "--to", "dev", "--digest", BUILT) == 0
    _commit(project, "release b")
    assert _promote(project, "checkout", "--to", "prod") == 0
    _commit(project, "promote b")
    (good,) = (project / RECORDS).glob(f"*-prod-promotion-{BUILT[7:19]}.yaml")
    crafted = yaml.safe_load(good.read_text())
    crafted[field] = value
    path = good.with_name("crafted.yaml")
    path.write_text(yaml.safe_dump(crafted))
    files = _files(project)
    assert _promote(project, "checkout", "--to", "prod", "--record",
                    path.relative_to(project).as_posix()) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert _files(project) == files



def test_prod_gets_what_dev_runs_as_committed_never_an_uncommitted_dev(project, capsys):
    """`promote --to dev` written but not committed: prod refuses (dev's Application is read
    at HEAD); committed, prod gets exactly that digest, pinned to the commit it was read at."""
    assert _promote(project, "checkout", "--to", "dev", "--digest", BUILT) == 0
    files = _files(project)
    assert _promote(project, "checkout", "--to", "prod", "--digest", BUILT) == 2
    err = capsys.readouterr().err
    assert "gitops/environments/dev/checkout-checkout.yaml: uncommitted changes" in err
    assert _files(project) == files
    released = _commit(project, "release b")
    assert _promote(project, "checkout", "--to", "prod", "--digest", BUILT) == 0
    assert _app(project, "prod")[0] == BUILT
    assert _records(project)[-1]["sourceCommit"] == _git(
        project, "log", "-1", "--format=%H", released, "--", "gitops/teams/checkout/checkout")


def test_the_digest_is_the_one_dev_runs_at_the_commit_not_one_it_ever_ran(project, capsys):
    assert _promote(project, "checkout", "--to", "dev", "--digest", BUILT) == 0
    first = _commit(project, "release b")
    assert _promote(project, "checkout", "--to", "dev", "--digest", NEWER) == 0
    _commit(project, "release c")
    # BUILT ran in dev, but dev runs NEWER now: not promotable from HEAD...
    assert _promote(project, "checkout", "--to", "prod", "--digest", BUILT) == 2
    assert f"--digest: {BUILT}: not the digest dev runs at" in capsys.readouterr().err
    # ...and a digest differing by a character is another digest.
    assert _promote(project, "checkout", "--to", "prod", "--digest", NEWER[:-1] + "d") == 2
    capsys.readouterr()
    # From the commit where dev ran BUILT, it is.
    assert _promote(project, "checkout", "--to", "prod", "--from-commit", first) == 0
    assert _app(project, "prod")[0] == BUILT


def test_an_untracked_file_under_the_base_is_not_promoted(project, capsys):
    assert _promote(project, "checkout", "--to", "dev", "--digest", BUILT) == 0
    _commit(project, "release b")
    (project / "gitops/teams/checkout/checkout/extra.yaml").write_text("kind: ConfigMap\n")
    assert _promote(project, "checkout", "--to", "prod") == 2
    assert "gitops/teams/checkout/checkout/extra.yaml: uncommitted changes" in \
        capsys.readouterr().err


def test_a_bad_from_commit_is_a_clear_error(project, capsys):
    assert _promote(project, "checkout", "--to", "prod", "--from-commit", "nope") == 2
    assert "--from-commit: 'nope': not a commit of this repository" in capsys.readouterr().err


def test_readiness_checks_the_prod_record_against_git_history(project):
    """A promotion through the command passes; a record whose digest dev never ran as
    committed (written by hand) does not, whatever the record says."""
    from platformctl import readiness
    from stacks import service as service_spec

    spec = service_spec.load(project / "services" / "checkout.yaml")
    line = "Reached prod by a recorded promotion"
    # The copy's history is one commit: the shipped record's commit is not in it, so it fails
    # here (it passes in the repository itself); start without records.
    shipped = {x.control: x for x in readiness.service(spec, project)}[line]
    assert shipped.status == readiness.FAIL
    assert any("is not in this branch's history" in e for e in shipped.evidence)
    for path in (project / RECORDS).glob("*.yaml"):
        path.unlink()
    _commit(project, "no records")
    assert {x.control: x for x in readiness.service(spec, project)}[line].status == \
        readiness.NO_EVIDENCE
    assert _promote(project, "checkout", "--to", "dev", "--digest", BUILT) == 0
    _commit(project, "release b")
    assert _promote(project, "checkout", "--to", "prod") == 0
    _commit(project, "promote b")
    assert {x.control: x for x in readiness.service(spec, project)}[line].status == \
        readiness.PASS
    (good,) = (project / RECORDS).glob("*-prod-promotion-*.yaml")
    forged = yaml.safe_load(good.read_text())
    forged["digest"] = NEWER
    (good.parent / "99999999T000000Z-prod-promotion-forged.yaml").write_text(
        yaml.safe_dump(forged))
    checked = {x.control: x for x in readiness.service(spec, project)}[line]
    assert checked.status == readiness.FAIL
    assert any(f"{NEWER} was never committed into" in e for e in checked.evidence)
