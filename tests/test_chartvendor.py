"""`platformctl charts vendor NAME VERSION SOURCE` on a local source: a Git repository made here
with a chart's new tag, vendored into a copy of charts/ (the real helm packages it)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components import charts
from platformctl import cli
from tests.conftest import REPO

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]


def _upstream(root: Path, version: str) -> Path:
    """kubernetes-sigs/metrics-server's layout: charts/metrics-server, tags
    metrics-server-helm-chart-<version>, a LICENSE at the top."""
    repo = root / "upstream"
    chart = repo / "charts" / "metrics-server"
    (chart / "templates").mkdir(parents=True)
    (repo / "LICENSE").write_text("Apache License 2.0 (the upstream's, as of the tag)\n")
    (chart / "Chart.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v2", "name": "metrics-server", "version": version,
        "appVersion": "0.8.2", "kubeVersion": ">=1.19.0-0"}))
    (chart / "values.yaml").write_text("replicas: 1\n")
    (chart / "templates" / "sa.yaml").write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: metrics-server}\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-qm", "chart"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "tag", f"metrics-server-helm-chart-{version}"],
                   check=True)
    return repo


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(REPO / "charts", root / "charts")
    return root


def test_a_bump_is_one_command(project, tmp_path, capsys):
    upstream = _upstream(tmp_path, "3.13.2")
    before = (project / "charts" / "charts.yaml").read_text()
    assert cli.main(["charts", "vendor", "metrics-server", "3.13.2", str(upstream),
                     "--project-dir", str(project)]) == 0
    assert "metrics-server: 3.13.1 -> 3.13.2" in capsys.readouterr().out
    catalog = charts.catalog(project)
    entry = catalog["metrics-server"]
    # The archive helm packaged, its sha256 recorded, the old one gone.
    assert entry.version == "3.13.2" and entry.app_version == "0.8.2"
    assert entry.archive == "metrics-server-3.13.2.tgz"
    assert entry.verify() == project / "charts" / "metrics-server-3.13.2.tgz"
    assert entry.sha256 == hashlib.sha256(entry.archive_path.read_bytes()).hexdigest()
    assert not (project / "charts" / "metrics-server-3.13.1.tgz").exists()
    commit = subprocess.run(["git", "-C", str(upstream), "rev-parse", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    assert entry.source == {"repository": "kubernetes-sigs/metrics-server",
                            "ref": "metrics-server-helm-chart-3.13.2", "commit": commit,
                            "date": entry.source["date"], "path": "charts/metrics-server"}
    assert (project / "charts" / entry.license["file"]).read_text().startswith("Apache License")
    # Every other entry, comments and all, as it was.
    after = (project / "charts" / "charts.yaml").read_text()
    block = after.index("  metrics-server:"), after.index("  cluster-autoscaler:")
    old_block = before.index("  metrics-server:"), before.index("  cluster-autoscaler:")
    assert after[:block[0]] == before[:old_block[0]]
    assert after[block[1]:] == before[old_block[1]:]
    assert "bumped from 3.13.1 to 3.13.2 with `platformctl charts vendor`" in after
    # The README is the generator's for the new catalog.
    assert (project / charts.README_PATH).read_text() == charts.readme(project)
    assert "metrics-server-3.13.2.tgz" in (project / charts.README_PATH).read_text()


def test_vendor_refuses_before_writing_anything(project, tmp_path, capsys):
    upstream = _upstream(tmp_path, "3.13.2")
    before = {p.name: p.read_bytes() for p in (project / "charts").iterdir() if p.is_file()}
    cases = [
        (["nothere", "1.0.0", str(upstream)], "chart 'nothere' is not vendored"),
        (["metrics-server", "3.99.0", str(upstream)], "no tag for metrics-server 3.99.0"),
        (["metrics-server", "3.13.2", str(tmp_path)], "not a Git repository"),
        (["metrics-server", "3.13.2", str(upstream), "--path", "elsewhere"],
         "no directory 'elsewhere'"),
        (["argo-cd", "3.13.2", str(upstream), "--ref", "metrics-server-helm-chart-3.13.2"],
         "has subcharts"),
        (["cluster-autoscaler", "3.13.2", str(upstream), "--ref",
          "metrics-server-helm-chart-3.13.2", "--path", "charts/metrics-server"],
         "is metrics-server 3.13.2, not cluster-autoscaler 3.13.2"),
    ]
    for arguments, message in cases:
        assert cli.main(["charts", "vendor", *arguments, "--project-dir", str(project)]) == 2
        assert message in capsys.readouterr().err, arguments
    assert {p.name: p.read_bytes() for p in (project / "charts").iterdir()
            if p.is_file()} == before


def test_a_vendor_interrupted_while_writing_leaves_charts_as_they_were(project, tmp_path,
                                                                        monkeypatch):
    """All or nothing: a failure (or Ctrl-C, through the same cleanup) after the first write
    puts every file back: the old archive, charts.yaml, the licence, the README; the new
    archive is gone."""
    from platformctl import chartvendor, interrupts

    upstream = _upstream(tmp_path, "3.13.2")
    before = {p.relative_to(project).as_posix(): p.read_bytes()
              for p in project.rglob("*") if p.is_file()}
    registered = []
    real_on_interrupt = interrupts.on_interrupt
    monkeypatch.setattr(interrupts, "on_interrupt",
                        lambda cleanup: registered.append(cleanup) or real_on_interrupt(cleanup))

    def interrupted(root):
        raise KeyboardInterrupt  # as if Ctrl-C came while the README was being written

    monkeypatch.setattr(charts, "readme", interrupted)
    with pytest.raises(KeyboardInterrupt):
        chartvendor.vendor(project, "metrics-server", "3.13.2", upstream)
    after = {p.relative_to(project).as_posix(): p.read_bytes()
             for p in project.rglob("*") if p.is_file()}
    assert after == before
    assert registered and not interrupts._CLEANUPS  # registered for the signal, then released
