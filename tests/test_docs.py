"""Docs that must stay true to the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from platformctl import configdoc
from stacks import config as config_model
from tests.conftest import REPO, repository_files


def test_config_reference_is_generated_from_the_model():
    committed = (REPO / configdoc.DOC_PATH).read_text(encoding="utf-8")
    assert committed == configdoc.render(), (
        "docs/config-reference.md is stale: run `platformctl generate --write`"
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
    # .ci/run installs what it needs, then runs the suite, the end-to-end tier and the
    # service benchmarks (bench/), in that order, and nothing else after the suite.
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()
    commands = [line for line in ci if not line.startswith("#")]
    suite = commands.index(".venv/bin/pytest")
    assert commands[suite + 1] == ".venv/bin/pytest -m e2e"
    after = [c.split()[1] for c in commands[suite + 2:] if c.startswith(".venv/bin/python bench/")]
    assert after == ["bench/load.py", "bench/release.py", "bench/slow_database.py",
                     "bench/service_regression.py", "bench/service_regression.py"]


def test_readme_links_the_config_reference():
    assert "docs/config-reference.md" in (REPO / "README.md").read_text(encoding="utf-8")


def test_only_the_config_model_reads_pulumi_config():
    readers = []
    for path in repository_files("*.py"):
        if path.parts[-2] == "tests":
            continue
        if "pulumi.Config(" in path.read_text(encoding="utf-8"):
            readers.append(path.relative_to(REPO).as_posix())
    assert readers == ["stacks/config.py"]


def test_policy_docs_list_every_policy_with_its_enforcement():
    from platform_guard.policies import ALL

    from platformctl.runtime_checks import CHECKS

    readme = (REPO / "docs" / "cost-and-policies.md").read_text(encoding="utf-8")
    for policy in [*ALL, *CHECKS]:
        assert f"| `{policy.name}` | {policy.enforcement_level.value} |" in readme, policy.name


# -- the README is the front door; docs/ carries the reference ---------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _markdown_files() -> list[Path]:
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "*.md"], capture_output=True,
                             text=True, check=True).stdout.split()
    return [REPO / p for p in tracked if not p.startswith("charts/") or p == "charts/README.md"]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", text, flags=re.M)}


def broken_links(files: list[Path]) -> list[str]:
    broken = []
    for path in files:
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue  # a URL: not checked offline
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                broken.append(f"{path.relative_to(REPO)}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{path.relative_to(REPO)}: {target} (no such heading)")
    return broken


def test_every_link_in_the_docs_resolves():
    files = _markdown_files()
    assert REPO / "README.md" in files and len(files) > 10
    assert broken_links(files) == []


def test_a_broken_link_is_found(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [gone](missing.md) [bad](#nowhere)\n"
                    "[web](https://example.com)\n```\n[in code](ignored.md)\n```\n")
    (tmp_path / "README.md").write_text("x")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        assert broken_links([page]) == ["page.md: missing.md (no such file)",
                                        "page.md: #nowhere (no such heading)"]
    finally:
        REPO = saved


def test_the_readme_is_a_front_door_and_links_every_docs_page():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 200
    pages = sorted(p.name for p in (REPO / "docs").glob("*.md"))
    assert [p for p in pages if f"(docs/{p})" not in readme] == []


def test_the_design_diagram_is_the_recordings(evaluations):
    """docs/design.md's diagram is drawn from the prod recording (`platformctl generate`): a
    component added, moved or rewired without regenerating it fails here."""
    from platformctl import cli, design

    files = cli.generated_files(REPO, evaluations["prod"])
    assert (REPO / design.DESIGN_PATH).read_text(encoding="utf-8") == files[design.DESIGN_PATH]
    diagram = design.diagram(evaluations["prod"])
    for component in ("Network", "Cluster", "Database", "Backup", "ObservabilityStack",
                      "AdmissionControl", "Tenancy", "SecretsStack", "ArgoBootstrap",
                      "ChaosExperiments"):
        assert f'{component}["{component}<br/>' in diagram, component
    assert "Network --> Cluster" in diagram and "Database --> Backup" in diagram


def test_every_decision_record_is_indexed_and_has_its_parts():
    adr = REPO / "docs" / "adr"
    index = (adr / "README.md").read_text(encoding="utf-8")
    records = sorted(p.name for p in adr.glob("[0-9][0-9][0-9][0-9]-*.md"))
    assert len(records) >= 9
    for name in records:
        assert f"]({name})" in index, name
        text = (adr / name).read_text(encoding="utf-8")
        assert all(part in text for part in ("**Status:**", "**Context.**", "**Decision.**",
                                             "**Rejected.**", "**Consequences.**")), name
