"""Docs that must stay true to the code."""

from __future__ import annotations

import re

from platformctl import configdoc
from stacks import config as config_model
from tests.conftest import REPO


def test_config_reference_is_generated_from_the_model():
    committed = (REPO / configdoc.DOC_PATH).read_text(encoding="utf-8")
    assert committed == configdoc.render(), (
        "docs/config.md is stale: run `platformctl generate --write`"
    )


def test_config_reference_lists_every_key_of_the_model():
    text = configdoc.render()

    def keys(model, prefix):
        for field in model.model_fields.values():
            if model is config_model.PlatformConfig and field.alias == "region":
                continue
            yield prefix + field.alias
            if isinstance(field.annotation, type) and issubclass(field.annotation,
                                                                 config_model.BaseModel):
                yield from keys(field.annotation, prefix + field.alias + ".")

    for key in keys(config_model.PlatformConfig, "platform:"):
        assert f"| `{key}` |" in text


def test_readme_starts_with_the_two_commands():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```(?:bash|sh)?\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2
    assert commands[0].endswith(".venv/bin/platformctl review dev")
    assert commands[1] == "bash .ci/run"
    # .ci/run ends by running the suite, after installing what it needs.
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == ".venv/bin/pytest"


def test_readme_shows_a_pr_comment_for_a_real_change():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "### `dev`: **Blocked**: 1 mandatory violation(s), $197.18/month" in readme
    assert "- +$32.85/month: NAT gateway in us-east-1b added (dev-nat-us-east-1b)" in readme


def test_readme_links_the_config_reference():
    assert "docs/config.md" in (REPO / "README.md").read_text(encoding="utf-8")


def test_only_the_config_model_reads_pulumi_config():
    readers = []
    for path in REPO.glob("**/*.py"):
        if ".venv" in path.parts or path.parts[-2] == "tests":
            continue
        if "pulumi.Config(" in path.read_text(encoding="utf-8"):
            readers.append(path.relative_to(REPO).as_posix())
    assert readers == ["stacks/config.py"]


def test_readme_lists_every_policy_with_its_enforcement():
    from platform_guard.policies import ALL

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for policy in ALL:
        assert f"| `{policy.name}` | {policy.enforcement_level.value} |" in readme, policy.name
