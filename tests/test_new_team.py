"""`platformctl new-team`: a team added to every stack file as a hand edit would be (comments
kept), validated by the config model, and nothing written unless every stack accepts it."""

from __future__ import annotations

import shutil

import pytest

from platformctl import cli, newteam
from platformctl.harness import load_config
from tests.conftest import REPO

STACKS = ("Pulumi.dev.yaml", "Pulumi.prod.yaml")


def _rooms(**stacks):
    """A stand-in for the capacity check (rendering each stack: tests/test_new_team_e2e.py runs
    the real one): each stack file's Room by its name, `fits` unless given."""
    def room(path, project, name):
        return stacks.get(path.name) or newteam.Room(path.name, True, 9000, 9000, 100,
                                                     "at maximum size")
    return room


@pytest.fixture
def fits(monkeypatch):
    monkeypatch.setattr(newteam, "quota_room", _rooms())


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", *STACKS):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "certs", root / "certs")
    return root


def test_a_team_joins_every_stack_with_its_comments_kept(project, capsys, fits):
    before = {name: (project / name).read_text() for name in STACKS}
    assert cli.main(["new-team", "payments", "--host", "pay.example.com",
                     "--database-service", "ledger", "--project-dir", str(project)]) == 0
    for name in STACKS:
        text = (project / name).read_text()
        # Appended, never rewritten: every line of the file is still there, comments too.
        assert all(line in text.splitlines() for line in before[name].splitlines())
        cfg = load_config(project / name, project)
        (team,) = [t for t in cfg.teams if t.name == "payments"]
        assert (team.namespaces, team.hosts, team.services) == (
            ("payments",), ("pay.example.com",), ("ledger",))
        assert team.admin_groups == ("payments-admins",)
    assert "wrote Pulumi.dev.yaml" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "said"), [
    (["new-team", "checkout"], "Pulumi.dev.yaml: platform:teams: 'checkout' is already a team"),
    (["new-team", "payments", "--host", "checkout.example.com"],
     "overlaps a host of team 'checkout'"),
    (["new-team", "platform"], "is the platform's own"),
    (["new-team", "Bad_Name"], "teams"),
])
def test_a_team_every_stack_does_not_accept_writes_nothing(project, capsys, argv, said, fits):
    before = {name: (project / name).read_text() for name in STACKS}
    assert cli.main([*argv, "--project-dir", str(project)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err
    assert {name: (project / name).read_text() for name in STACKS} == before


def test_a_quota_that_does_not_fit_is_refused_with_the_most_that_does(project, capsys,
                                                                      monkeypatch):
    before = {name: (project / name).read_text() for name in STACKS}
    monkeypatch.setattr(newteam, "quota_room", _rooms(**{"Pulumi.dev.yaml": newteam.Room(
        "Pulumi.dev.yaml", False, 375, 1073.4, 50, "at maximum size")}))
    assert cli.main(["new-team", "search", "--project-dir", str(project)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert ("Pulumi.dev.yaml: team search's quota (2 CPU, 3Gi memory, 20 pods, the default) "
            "does not fit at maximum size: with the other teams' quotas as they are it can have "
            "at most 375m CPU, 1,073 MiB and 50 pods") in err
    assert "allowed: --requests-cpu 375m --requests-memory 1073Mi --pods 50 or less" in err
    assert {name: (project / name).read_text() for name in STACKS} == before
    # No room at all: the quota options cannot help, a larger maxSize can.
    monkeypatch.setattr(newteam, "quota_room", _rooms(**{"Pulumi.prod.yaml": newteam.Room(
        "Pulumi.prod.yaml", False, 0, 0, 0, "at maximum size with one node lost")}))
    assert cli.main(["new-team", "search", "--requests-cpu", "1", "--project-dir",
                     str(project)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    # (A bare number is a quantity too: written quoted, so the config reads a string.)
    assert "(1 CPU, 3Gi memory, 20 pods)" in err and "no room left for another team" in err
    assert {name: (project / name).read_text() for name in STACKS} == before


def test_the_quota_options_are_written_and_a_check_that_cannot_run_says_so(project, capsys,
                                                                           monkeypatch):
    monkeypatch.setattr(newteam, "quota_room", _rooms(**{"Pulumi.prod.yaml": newteam.Room(
        "Pulumi.prod.yaml", None, reason="the Helm releases could not be rendered: no helm")}))
    assert cli.main(["new-team", "search", "--requests-cpu", "375m", "--requests-memory",
                     "1Gi", "--pods", "10", "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert "Pulumi.dev.yaml: the quota fits (at maximum size)" in out
    assert ("Pulumi.prod.yaml: whether the quota fits was not evaluated (the Helm releases could "
            "not be rendered: no helm); the review checks it") in out
    for name in STACKS:
        (team,) = [t for t in load_config(project / name, project).teams if t.name == "search"]
        assert (team.quota.requests_cpu, team.quota.requests_memory, team.quota.pods) == (
            "375m", "1Gi", 10)


def test_new_team_interrupted_while_checking_puts_every_file_back(project, capsys, monkeypatch):
    before = {name: (project / name).read_text() for name in STACKS}

    def interrupted(path, project_dir, name):
        assert "search" in path.read_text()  # written, being checked
        raise KeyboardInterrupt

    monkeypatch.setattr(newteam, "quota_room", interrupted)
    assert cli.main(["new-team", "search", "--project-dir", str(project)]) == \
        cli.EXIT_INTERRUPTED
    assert "every stack file is as it was" in capsys.readouterr().err
    assert {name: (project / name).read_text() for name in STACKS} == before


def test_a_service_of_an_unknown_team_names_the_command(tmp_path):
    from platformctl import golden
    from stacks import service as service_spec
    from stacks.config import ConfigError

    spec = (REPO / "services" / "checkout.yaml").read_text().replace("team: checkout",
                                                                     "team: payments")
    path = tmp_path / "payments.yaml"
    path.write_text(spec)
    with pytest.raises(ConfigError) as caught:
        golden.check_against(service_spec.load(path), str(path), {
            name: load_config(name, REPO) for name in ("dev", "prod")})
    assert "or add it: `platformctl new-team payments`" in str(caught.value)


@pytest.mark.e2e
def test_new_team_holds_its_quota_to_the_real_capacity_check(project, capsys):
    """The real check (each stack evaluated and rendered, as the review does): dev's nodes at
    maxSize leave no room for a second team at the preset's quota; the most that fits is named,
    and a team given it is accepted, and its stack's review finds its quotas fit."""
    from platformctl import pipeline
    from platformctl.crossguard import check_evaluation

    before = {name: (project / name).read_text() for name in STACKS}
    assert cli.main(["new-team", "search", "--project-dir", str(project)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "Pulumi.dev.yaml: team search's quota (2 CPU, 3Gi memory, 20 pods, the default) " \
           "does not fit at maximum size" in err and "Pulumi.prod.yaml" not in err
    assert {name: (project / name).read_text() for name in STACKS} == before
    suggested = err.split("allowed: ", 1)[1].split(" or less")[0].split()
    # docs/gitops.md quotes this refusal's figures.
    room = "at most " + err.split("at most ", 1)[1].split(" pods", 1)[0] + " pods"
    docs = " ".join((REPO / "docs" / "gitops.md").read_text().split())
    assert room in docs and f"allowed: {' '.join(suggested)} or less" in docs, room
    assert suggested[0] == "--requests-cpu" and suggested[4] == "--pods"
    assert cli.main(["new-team", "search", *suggested, "--project-dir", str(project)]) == 0
    out = capsys.readouterr().out
    assert "Pulumi.dev.yaml: the quota fits (at maximum size)" in out
    for name in STACKS:
        review = pipeline.review_stack(project / name, project, pipeline.Steps(
            render=True, verdicts=False, cost=False))
        report = check_evaluation(review.evaluation)
        assert report.evaluated("quota-capacity") and report.of("quota-capacity") == [], name
