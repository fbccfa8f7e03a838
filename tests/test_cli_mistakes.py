"""The usual mistakes with every command: exit 2, one or two lines saying what to do, never a
traceback (unknown stack, missing file, bad flag, an abbreviation, an extra positional, an
unwritable output, outside a checkout, the project file as a stack)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

MISTAKES = [
    # (command line, cwd ("repo" or "outside"), what the message must say)
    (["review", "nope"], "repo", "stack file not found"),
    (["review", "missing.yaml"], "repo", "stack file not found: missing.yaml"),
    (["review", "dev", "--bogus"], "repo", "platformctl review: unrecognized arguments: --bogus"),
    (["review", "dev", "--detail"], "repo", "unrecognized arguments: --detail"),
    (["review", "dev", "prod"], "repo", "platformctl review: unrecognized arguments: prod"),
    (["review", "dev", "--output", "/nonexistent-dir/x.md"], "repo", "does not exist"),
    (["review", "Pulumi.yaml"], "repo", "Pulumi.yaml is the project file, not a stack file"),
    (["review", "dev"], "outside", "no Pulumi.yaml in"),
    (["budget", "--bogus"], "repo", "platformctl budget: unrecognized arguments"),
    (["budget"], "outside", "no Pulumi.yaml in"),
    (["readiness", "nope"], "repo", "stack file not found"),
    (["readiness", "dev", "--output", "/nonexistent-dir/r.md"], "repo", "does not exist"),
    (["promote", "checkout"], "repo", "the following arguments are required: --to"),
    (["promote", "nope", "--to", "prod"], "repo", "'nope' is not a service"),
    (["new-service", "nope.yaml"], "repo", "nope.yaml"),
    (["cost"], "repo", "one of the arguments --preview-json --stack-output is required"),
    (["cost", "--preview-json", "/nonexistent.json"], "repo", "/nonexistent.json"),
    (["drill", "restore", "nope", "--checksum-query", "select 1", "--dry-run"], "repo",
     "stack file not found"),
    (["check-gitops", "extra"], "repo", "unrecognized arguments: extra"),
    # What the real run refuses, the dry run refuses too (dev's database is single-AZ).
    (["drill", "failover", "dev", "--dry-run"], "repo", "is single-AZ"),
    (["drill", "failover", "dev"], "repo", "is single-AZ"),
    (["nonsense"], "repo", "invalid choice: 'nonsense'"),
]


@pytest.mark.parametrize(("argv", "where", "said"), MISTAKES,
                         ids=[" ".join(m[0]) + f" ({m[1]})" for m in MISTAKES])
def test_a_mistake_is_exit_2_and_a_line_or_two(tmp_path, argv, where, said):
    cwd = REPO if where == "repo" else tmp_path
    result = subprocess.run([sys.executable, "-m", "platformctl.cli", *argv], cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, result.stderr
    assert said in result.stderr, result.stderr
    assert result.stdout == ""
