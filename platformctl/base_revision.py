"""`--base GIT_REF`: the same stack's review at another revision.

The revision is checked out into a temporary git worktree and reviewed there by *its own* code
(program, platformctl, policies, cost model) in a subprocess with the worktree first on the
path, exactly as CI on that revision would have reviewed it; its JSON document is then compared
with this revision's. A stack file that does not exist at the base is a new stack: everything
in it counts as added.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from platformctl import interrupts
from platformctl.document import SCHEMA
from platformctl.gitcmd import git
from stacks.config import ConfigError


def empty_document(stack: str) -> dict[str, Any]:
    return {"schema": SCHEMA, "stack": stack, "resources": [], "total_monthly_usd": 0.0,
            "policies": {"mandatory": [], "advisory": [], "cannot_run": []},
            "cost": {"lines": [], "by_component": {}}}


class BaseReview:
    """The review of `stack` at git revision `ref`, running in the background while this
    revision is reviewed (the machine has two cores: the two evaluations overlap)."""

    def __init__(self, ref: str, stack: str, project_dir: Path):
        self.ref, self.stack = ref, stack
        project_dir = project_dir.resolve()
        top = git(project_dir, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            raise ConfigError("--base", [f"{project_dir} is not in a git repository"])
        self.root = Path(top.stdout.strip())
        commit = git(self.root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        if commit.returncode != 0:
            raise ConfigError("--base", [f"{ref!r} is not a revision of {self.root}"])
        self.sha = commit.stdout.strip()
        stack_arg = stack
        if stack.endswith((".yaml", ".yml")) or "/" in stack:
            try:
                stack_arg = str(Path(stack).resolve().relative_to(project_dir))
            except ValueError:
                raise ConfigError("--base", [f"{stack} is outside the project, so it has no base "
                                             "revision"]) from None
        self.scratch = Path(tempfile.mkdtemp(prefix="platformctl-base-"))
        self.worktree = self.scratch / "base"
        added = git(self.root, "worktree", "add", "--detach", "--force", str(self.worktree),
                     self.sha)
        if added.returncode != 0:
            self._cleanup()
            raise ConfigError("--base", [f"cannot check out {ref}: {added.stderr.strip()}"])
        base_project = self.worktree / project_dir.relative_to(self.root)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(self.worktree), str(self.worktree / "policy-packs" / "platform-guard")])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "platformctl.cli", "review", stack_arg, "--format", "json",
             "--project-dir", str(base_project)],
            cwd=base_project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._interrupt = interrupts.on_interrupt(self.cancel)

    def _cleanup(self) -> None:
        if hasattr(self, "_interrupt"):
            interrupts.done(self._interrupt)
        git(self.root, "worktree", "remove", "--force", str(self.worktree))
        shutil.rmtree(self.scratch, ignore_errors=True)

    def result(self) -> dict[str, Any]:
        try:
            stdout, stderr = self.process.communicate(timeout=600)
        finally:
            self._cleanup()
        code = self.process.returncode
        if code == 2 and "stack file not found" in stderr:
            document = empty_document(self.stack)
        elif code in (0, 1):
            document = json.loads(stdout)
            if document.get("schema") != SCHEMA:
                raise ConfigError("--base", [f"{self.ref} reviews in schema "
                                             f"{document.get('schema')!r}, this revision needs "
                                             f"{SCHEMA!r}"])
        else:
            detail = (stderr.strip().splitlines() or ["(no output)"])[-1]
            raise ConfigError("--base", [f"the review at {self.ref} failed (exit {code}): "
                                         f"{detail}"])
        document["revision"] = f"{self.ref} ({self.sha[:12]})"
        return document

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
        self._cleanup()


def review_at(ref: str, stack: str, project_dir: Path) -> dict[str, Any]:
    """The review document of `stack` at git revision `ref` (ConfigError if impossible)."""
    return BaseReview(ref, stack, project_dir).result()
