"""A person's Ctrl-C is one line and exit 130, never a traceback, at every stage of a review:
imports, the evaluation, rendering, `--all`'s child processes; and output paths are checked
before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from platformctl import cli
from tests.conftest import REPO


def _interrupted(args: list[str], after: float) -> subprocess.CompletedProcess[str]:
    process = subprocess.Popen([sys.executable, "-m", "platformctl.cli", *args], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    time.sleep(after)
    os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to the whole group
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def _worktrees() -> int:
    return len(subprocess.run(["git", "-C", str(REPO), "worktree", "list"], check=True,
                              capture_output=True, text=True).stdout.splitlines())


@pytest.mark.parametrize(("args", "after"), [
    (["review", "dev"], 0.3),  # imports
    (["review", "dev"], 0.8),  # the evaluation (the whole takes ~2.5 s)
    (["review", "dev"], 1.6),  # the rendering and the policies
    (["review", "--all"], 1.5),  # child processes
    (["review", "dev", "--base", "HEAD~1"], 2.0),  # a worktree and its review process
])
def test_ctrl_c_is_one_line_and_exit_130(args, after):
    before = _worktrees()
    result = _interrupted(args, after)
    if result.returncode == 0:
        pytest.skip("the command finished before the signal")
    assert result.returncode == 130, result.stderr
    assert result.stderr == "interrupted\n", result.stderr
    assert _worktrees() == before  # the --base worktree removed


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--output", "/nonexistent-dir/review.md", "the directory /nonexistent-dir does not exist"),
    ("--json", "/tmp", "is a directory"),
])
def test_an_output_path_is_checked_before_any_work(capsys, flag, value, message):
    started = time.monotonic()
    assert cli.main(["review", "dev", flag, value]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"error: {flag} {value}: {message}" in err
    assert time.monotonic() - started < 2  # nothing was evaluated


def test_readiness_output_is_checked_first(capsys):
    assert cli.main(["readiness", "dev", "--output", "/nonexistent-dir/r.md"]) == cli.EXIT_USAGE
    assert "the directory /nonexistent-dir does not exist" in capsys.readouterr().err
