"""docs/onboarding.md, executed: every ```bash block, in order, in a scratch copy of this
repository (its own Git history, where prod already runs checkout by a recorded promotion, as in
the repository), each command required to succeed; then what the guide promised is checked."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, repository_copy

pytestmark = pytest.mark.e2e  # pytest -m e2e (.ci/run runs it after the suite)

GUIDE = REPO / "docs" / "onboarding.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.DOTALL | re.MULTILINE)
RECORDS = Path("gitops/releases/checkout/checkout")
ENV = {**os.environ, "GIT_AUTHOR_NAME": "new engineer", "GIT_AUTHOR_EMAIL": "new@example.com",
       "GIT_COMMITTER_NAME": "new engineer", "GIT_COMMITTER_EMAIL": "new@example.com",
       "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "commit.gpgsign",
       "GIT_CONFIG_VALUE_0": "false", "NO_COLOR": "1", "COLUMNS": "120"}


def _run(project: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=project, env=ENV,
                          capture_output=True, text=True, timeout=300)


def _scratch(project: Path) -> Path:
    """This repository's files as they are (tracked and new), `.venv` the one installed, a Git
    history of its own, and prod running checkout by a promotion recorded in that history."""
    repository_copy(project, leave_out=str(RECORDS))
    (project / ".venv").symlink_to(REPO / ".venv")
    setup = ("git init -q -b main && git add -A && git commit -qm 'the platform' && "
             ".venv/bin/platformctl promote checkout --to prod && git add -A && "
             "git commit -qm 'checkout: to prod'")
    done = _run(project, setup)
    assert done.returncode == 0, done.stdout + done.stderr
    return project


def test_the_onboarding_guide_runs_as_written(tmp_path):
    blocks = BLOCK.findall(GUIDE.read_text())
    assert len(blocks) >= 6
    project = _scratch(tmp_path / "project")
    (first,) = (project / RECORDS).glob("*.yaml")
    outputs = []
    for block in blocks:
        done = _run(project, block)
        assert done.returncode == 0, f"{block}\n--- exit {done.returncode}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        outputs.append(done.stdout)
    text = "\n".join(outputs)
    # The change reached the manifests and main, and prod by a second recorded promotion...
    analysis = (project / "gitops/teams/checkout/checkout/analysistemplate.yaml").read_text()
    assert "successCondition: result[0] <= 250" in analysis
    records = sorted((project / RECORDS).glob("*.yaml"))
    kinds = [yaml.safe_load(p.read_text())["kind"] for p in records]
    assert kinds.count("promotion") == 2 and kinds[-1] == "rollback"
    # ...and the rollback went back to the release before it: the first record's commit.
    rollback = yaml.safe_load(records[-1].read_text())
    assert rollback["sourceCommit"] == yaml.safe_load(first.read_text())["sourceCommit"]
    assert "Reached prod by a recorded promotion" in text
    assert "every stack passes, within the cap" in text
    assert "Delivery per service" in text
    catalog = next(yaml.safe_load_all((project / "services/checkout/catalog-info.yaml")
                                      .read_text()))
    assert catalog["spec"]["lifecycle"] == "production"
