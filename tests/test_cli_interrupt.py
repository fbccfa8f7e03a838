"""A person's Ctrl-C is one line and exit 130, never a traceback, at every stage of a review:
imports, the evaluation, rendering, `--all`'s child processes; and output paths are checked
before any work."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import pytest

from platformctl import cli
from tests.conftest import REPO

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
HIDE_CURSOR, SHOW_CURSOR = "\x1b[?25l", "\x1b[?25h"


def _interrupted(args: list[str], stage: str | None,
                 after: float = 0.0) -> tuple[int, str, str]:
    """Run `platformctl ARGS` with stderr on a terminal (so it shows its steps), press Ctrl-C
    `after` seconds once the step that starts with `stage` shows (None: `after` seconds from the
    start, before any step); returns the exit code, the lines the terminal shows and what it
    was sent (escape sequences too)."""
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # CI turns the steps off
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "platformctl.cli", *args], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=terminal, env=env,
                               start_new_session=True)
    os.close(terminal)
    sent, signalled = "", None
    deadline = time.monotonic() + 60
    if stage is None:
        signalled = time.monotonic() + after
    try:
        while time.monotonic() < deadline:
            if signalled is not None and time.monotonic() >= signalled > 0:
                os.killpg(process.pid, signal.SIGINT)  # as a terminal sends it: to the group
                signalled = -1.0
            ready, _, _ = select.select([controller], [], [], 0.02)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the terminal's other end closed: the process is done
                    break
                if not chunk:
                    break
                sent += chunk.decode("utf-8", "replace")
                if signalled is None and stage in ESCAPES.sub("", sent):
                    signalled = time.monotonic() + after
            elif process.poll() is not None:
                break
        assert signalled == -1.0, f"the command finished before {stage!r} showed: {sent!r}"
        code = process.wait(timeout=60)
    finally:
        os.close(controller)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    lines = [line.strip() for line in re.split(r"[\r\n]", ESCAPES.sub("", sent)) if line.strip()]
    return code, "\n".join(lines), sent


def _worktrees() -> int:
    return len(subprocess.run(["git", "-C", str(REPO), "worktree", "list"], check=True,
                              capture_output=True, text=True).stdout.splitlines())


@pytest.mark.e2e  # the command's own process at a terminal (pytest -m e2e, after the suite)
@pytest.mark.parametrize(("args", "stage", "after"), [
    (["review", "dev"], None, 0.3),  # the imports: no step has shown yet
    (["review", "dev"], "evaluating dev", 0),
    (["review", "dev"], "rendering", 0),  # the rendering (a few tenths) and the policies
    (["review", "--all"], "reviewing every stack", 0.3),  # its child processes under way
    (["review", "dev", "--base", "HEAD~1"], "evaluating dev", 0),  # a worktree, its process
], ids=["imports", "evaluation", "rendering", "all", "base"])
def test_ctrl_c_is_one_line_and_exit_130(args, stage, after):
    before = _worktrees()
    code, shown, sent = _interrupted(args, stage, after)
    assert code == 130, shown
    assert shown.splitlines()[-1] == "interrupted", shown  # the last thing on the terminal
    assert "Traceback" not in shown and "Error" not in shown, shown
    if stage is None:
        assert shown == "interrupted"  # no step had shown
    else:  # the spinner hid the cursor; it is shown again before the command leaves
        assert sent.rfind(SHOW_CURSOR) > sent.rfind(HIDE_CURSOR) > -1
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
