"""`platformctl new-team`: a team added to every stack file as a hand edit would be (comments
kept), validated by the config model, and nothing written unless every stack accepts it."""

from __future__ import annotations

import shutil

import pytest

from platformctl import cli
from platformctl.harness import load_config
from tests.conftest import REPO

STACKS = ("Pulumi.dev.yaml", "Pulumi.prod.yaml")


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    root.mkdir()
    for name in ("Pulumi.yaml", *STACKS):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "certs", root / "certs")
    return root


def test_a_team_joins_every_stack_with_its_comments_kept(project, capsys):
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
def test_a_team_every_stack_does_not_accept_writes_nothing(project, capsys, argv, said):
    before = {name: (project / name).read_text() for name in STACKS}
    assert cli.main([*argv, "--project-dir", str(project)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err
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
