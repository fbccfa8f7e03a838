"""`platformctl new-team NAME`: a team added to every stack file of the project, as a person
would add it by hand (the text appended to each `platform:teams:` list, comments kept), then
every stack file validated by the config model, then its quota held to each stack's room (the
review's `quota-capacity` computation, the releases rendered: a quota that does not fit is
refused here with the most that does, not in the pull request's review); if any refuses it, or
the command is interrupted, every file is put back as it was (nothing half-applied) and the
error names the file and key.

What a team gets is in `platform:teams[]` (docs/config-reference.md): namespaces (default: one
named after it), admin and viewer groups, a quota, hosts on the shared load balancer, and, for
the services that use the database, short-lived PostgreSQL credentials (`services`: named here
`--database-service`, since that is all the list means)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from stacks.config import ConfigError

TEAMS_KEY = re.compile(r"^(?P<indent>\s*)platform:teams:\s*(#.*)?$", re.M)


@dataclass(frozen=True)
class Room:
    """What one stack can promise the new team (`quota-capacity`'s computation: the node
    groups at maxSize, in production with one node lost, after the platform's own pods and the
    other teams' quotas); `fits` None: not evaluated, `reason` says why."""

    stack: str
    fits: bool | None
    cpu_m: float = 0
    memory_mib: float = 0
    pods: float = 0
    label: str = ""
    reason: str = ""


def quota_room(path: Path, project: Path, name: str) -> Room:
    """The room for team `name` in the stack file `path` (which has it): the stack evaluated
    and its releases rendered, as the review does."""
    from platformctl import pipeline, review

    result = pipeline.review_stack(path, project, pipeline.Steps(render=True, verdicts=False,
                                                                 cost=False))
    if result.render_failure is not None:
        return Room(path.name, None, reason=f"the Helm releases could not be rendered: "
                                            f"{result.render_failure}")
    assessment = review._assessment(result.evaluation)
    fit = assessment.quotas if assessment is not None else None
    team = next((t for t in fit.teams if t.team == name), None) if fit is not None else None
    if fit is None or team is None:
        return Room(path.name, None, reason="the stack has no node groups the check can read")
    return Room(path.name, fit.fits and not fit.unbounded, team.room_cpu_m, team.room_memory_mib,
                team.room_pods, fit.label)


def _refusal(name: str, quota: Mapping[str, str | int], rooms: Sequence[Room]) -> list[str]:
    asked = (f"{quota.get('requestsCpu', '2')} CPU, {quota.get('requestsMemory', '3Gi')} "
             f"memory, {quota.get('pods', 20)} pods" + ("" if quota else ", the default"))
    short = [r for r in rooms if r.fits is False]
    problems = [f"{r.stack}: team {name}'s quota ({asked}) does not fit {r.label}: with the "
                f"other teams' quotas as they are it can have at most {r.cpu_m:,.0f}m CPU, "
                f"{r.memory_mib:,.0f} MiB and {r.pods:,.0f} pods" for r in short]
    cpu, memory = min(r.cpu_m for r in short), min(r.memory_mib for r in short)
    pods = min(r.pods for r in short)
    if cpu >= 1 and memory >= 1 and pods >= 1:
        problems.append(f"allowed: --requests-cpu {int(cpu)}m --requests-memory {int(memory)}Mi "
                        f"--pods {int(pods)} or less (what every stack has room for), or a node "
                        "group's larger maxSize within the budget ceiling (the review of the "
                        "stack names the largest allowed)")
    else:
        problems.append("allowed: a node group's larger maxSize within the budget ceiling "
                        "(the review of the stack names the largest allowed), or smaller quotas "
                        "for the other teams: there is no room left for another team")
    return problems


def _entry(name: str, hosts: Sequence[str], database_services: Sequence[str],
           indent: str, quota: Mapping[str, str | int] | None = None) -> str:
    lines = [f"{indent}- name: {name}"]
    if quota:
        # Quantities quoted: `requestsCpu: 1` would be a YAML number, which the config refuses.
        listed = ", ".join(f"{key}: {json.dumps(value)}" for key, value in quota.items())
        lines.append(f"{indent}  quota: {{{listed}}}  # per namespace; the rest as the preset's")
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
        database_services: Sequence[str] = (), quota: Mapping[str, str | int] | None = None,
        room: Callable[[Path, Path, str], Room] | None = None
        ) -> tuple[list[Path], list[Room]]:
    """Add the team to every Pulumi.<stack>.yaml; returns the files written and what each stack
    has room for (`room`: how to tell, `quota_room` by default). Raises ConfigError (every file
    restored) when a stack's config model refuses the result, or when its quota (`quota`:
    requestsCpu, requestsMemory, pods; else the preset's) does not fit a stack's nodes."""
    from platformctl.budget import stack_files
    from platformctl.harness import load_config

    files = stack_files(project)
    if not files:
        raise ConfigError(str(project), ["no stack files (Pulumi.<stack>.yaml) to add a team to"])
    originals = {path: path.read_text(encoding="utf-8") for path in files}
    problems: list[str] = []
    settled = False  # anything else (Ctrl-C during the capacity check) puts every file back
    try:
        for path, text in originals.items():
            cfg = load_config(path, project)
            if any(team.name == name for team in cfg.teams):
                problems.append(f"{path.name}: platform:teams: {name!r} is already a team there")
                continue
            path.write_text(_with_team(text, lambda indent: _entry(
                name, hosts, database_services, indent, quota)), encoding="utf-8")
        if not problems:
            for path in files:
                try:
                    load_config(path, project)
                except ConfigError as exc:
                    problems += [f"{path.name}: {p}" for p in exc.problems]
        check = room or quota_room
        rooms = [check(path, project, name) for path in files] if not problems else []
        if any(r.fits is False for r in rooms):
            problems += _refusal(name, quota or {}, rooms)
        settled = True
    finally:
        if problems or not settled:
            for path, text in originals.items():
                path.write_text(text, encoding="utf-8")
    if problems:
        raise ConfigError("new-team", problems)
    return files, rooms
