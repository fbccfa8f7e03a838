"""The usual mistakes with every command: exit 2, one or two lines saying what to do, never a
traceback (unknown stack, missing file, bad flag, an abbreviation, an extra positional, an
unwritable output, outside a checkout, the project file as a stack)."""

from __future__ import annotations

import json
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


# Every mistake through the real command's entry point (`platformctl.cli.entry`, what
# `python -m platformctl.cli` runs), in one interpreter of its own: each case in its directory,
# with its own stdout and stderr, its exit code from SystemExit. One process instead of one per
# case (the imports cost half a second each), still outside pytest's own handling.
DRIVER = """
import contextlib, io, json, os, sys
from platformctl import cli
results = []
for argv, cwd in json.loads(sys.stdin.read()):
    os.chdir(cwd)
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["platformctl", *argv]
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.entry()
        except SystemExit as exc:
            code = exc.code
        except BaseException:  # a traceback the command would have printed
            import traceback
            traceback.print_exc()
            code = "traceback"
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> list[dict]:
    outside = tmp_path_factory.mktemp("outside")
    cases = [(argv, str(REPO if where == "repo" else outside)) for argv, where, _ in MISTAKES]
    done = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(cases),
                          capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("index", range(len(MISTAKES)),
                         ids=[" ".join(m[0]) + f" ({m[1]})" for m in MISTAKES])
def test_a_mistake_is_exit_2_and_a_line_or_two(outcomes, index):
    _, _, said = MISTAKES[index]
    result = outcomes[index]
    assert result["code"] == 2, (result["code"], result["stderr"])
    assert "Traceback" not in result["stderr"]
    lines = [line for line in result["stderr"].splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, result["stderr"]
    assert said in result["stderr"], result["stderr"]
    assert result["stdout"] == ""


def test_the_real_command_line_says_a_mistake_the_same_way(tmp_path):
    """One mistake through `python -m platformctl.cli` as a person types it: the driver above
    runs what this runs."""
    result = subprocess.run([sys.executable, "-m", "platformctl.cli", "review", "dev",
                             "--bogus"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "platformctl review: unrecognized arguments: --bogus" in result.stderr
