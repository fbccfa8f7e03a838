"""`platformctl new-team NAME`: a team added to every stack file of the project, as a person
would add it by hand (the text appended to each `platform:teams:` list, comments kept), then
every stack file validated by the config model; if any refuses it, every file is put back as it
was (nothing half-applied) and the error names the file and key.

What a team gets is in `platform:teams[]` (docs/config-reference.md): namespaces (default: one
named after it), admin and viewer groups, a quota, hosts on the shared load balancer, and, for
the services that use the database, short-lived PostgreSQL credentials (`services`: named here
`--database-service`, since that is all the list means)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from stacks.config import ConfigError

TEAMS_KEY = re.compile(r"^(?P<indent>\s*)platform:teams:\s*(#.*)?$", re.M)


def _entry(name: str, hosts: Sequence[str], database_services: Sequence[str],
           indent: str) -> str:
    lines = [f"{indent}- name: {name}"]
    if database_services:
        lines.append(f"{indent}  # Short-lived PostgreSQL credentials from Vault, per service.")
        lines.append(f"{indent}  services: [{', '.join(database_services)}]")
    if hosts:
        lines.append(f"{indent}  hosts: [{', '.join(hosts)}]  # on the shared load balancer")
    return "\n".join(lines) + "\n"


def _with_team(text: str, entry_for) -> str:
    """The stack file's text with the team appended to its `platform:teams:` list (a new list
    at the end of `config:` when it has none)."""
    match = TEAMS_KEY.search(text)
    if match is None:
        return text.rstrip("\n") + "\n  platform:teams:\n" + entry_for("    ")
    key_indent = len(match.group("indent"))
    lines = text[match.end():].split("\n")
    offset, item_indent = match.end(), None
    consumed = 0
    for line in lines[1:]:
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped and indent <= key_indent:
            break
        if stripped.startswith("- ") and item_indent is None:
            item_indent = " " * indent
        consumed += len(line) + 1
    cut = offset + 1 + consumed
    return text[:cut] + entry_for(item_indent or " " * (key_indent + 2)) + text[cut:]


def add(project: Path, name: str, hosts: Sequence[str] = (),
        database_services: Sequence[str] = ()) -> list[Path]:
    """Add the team to every Pulumi.<stack>.yaml; returns the files written. Raises ConfigError
    (every file restored) when a stack's config model refuses the result."""
    from platformctl.budget import stack_files
    from platformctl.harness import load_config

    files = stack_files(project)
    if not files:
        raise ConfigError(str(project), ["no stack files (Pulumi.<stack>.yaml) to add a team to"])
    originals = {path: path.read_text(encoding="utf-8") for path in files}
    problems: list[str] = []
    try:
        for path, text in originals.items():
            cfg = load_config(path, project)
            if any(team.name == name for team in cfg.teams):
                problems.append(f"{path.name}: platform:teams: {name!r} is already a team there")
                continue
            path.write_text(_with_team(text, lambda indent: _entry(
                name, hosts, database_services, indent)), encoding="utf-8")
        if not problems:
            for path in files:
                try:
                    load_config(path, project)
                except ConfigError as exc:
                    problems += [f"{path.name}: {p}" for p in exc.problems]
    finally:
        if problems:
            for path, text in originals.items():
                path.write_text(text, encoding="utf-8")
    if problems:
        raise ConfigError("new-team", problems)
    return files
