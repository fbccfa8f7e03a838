"""Promotion by digest, and the release records that say what ran where.

`platformctl promote SERVICE --to ENV` moves to ENV exactly what the environment before it (in
`ENVIRONMENTS` order: dev, then prod) runs: the image digest of its Application, and the Git
revision of the service's base (the commit promoted from), to which ENV's Application is pinned.
So a new image and a change of the base (resources, probes, a migration step) reach prod only
through a promotion, after dev. Each promotion writes a release record under
`gitops/releases/<team>/<service>/` in the same change: service, digest, from/to, the source
commit, the time, and what ENV ran before. `--record FILE` rolls back: ENV gets the digest and
revision of that earlier record of ENV, and the rollback is recorded too.

Everything is checked before anything is written: an unknown service, an environment that is
not a promotion target, a digest the source environment does not run, a record of another
service or environment, a base with uncommitted changes are each a clear error (exit 2).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from components.gitops import GITOPS_PATH
from platformctl import catalog, golden
from platformctl.gitcmd import git
from stacks import service as service_spec
from stacks.config import ConfigError, PlatformConfig
from stacks.service import ServiceSpec

RELEASES = f"{GITOPS_PATH}/releases"
RECORD_HEADER = ("# A release record, written by `platformctl promote`: what ran where, from "
                 "which commit.\n# Do not edit; `platformctl promote --record <this file>` "
                 "rolls the environment back to it.\n")
NEW_BUILD = "ci"  # the `from` of a record that brings a new build into the first environment
KEYS = ("service", "team", "kind", "from", "to", "digest", "sourceCommit", "previousDigest",
        "time")


@dataclass(frozen=True)
class Record:
    path: str
    service: str
    team: str
    kind: str  # promotion | rollback
    source: str  # the environment promoted from (a rollback: the environment itself)
    target: str
    digest: str
    commit: str
    previous_digest: str | None
    time: str

    def document(self) -> dict[str, str | None]:
        return dict(zip(KEYS, (self.service, self.team, self.kind, self.source, self.target,
                               self.digest, self.commit, self.previous_digest, self.time),
                        strict=True))


def records_dir(spec: ServiceSpec) -> str:
    return f"{RELEASES}/{spec.team}/{spec.name}"


def read_record(path: Path, shown: str) -> Record:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(shown, [f"not a readable release record: {exc}"]) from None
    if not isinstance(raw, dict) or set(raw) != set(KEYS):
        raise ConfigError(shown, [f"not a release record (keys: {', '.join(KEYS)})"])
    return Record(shown, str(raw["service"]), str(raw["team"]), str(raw["kind"]),
                  str(raw["from"]), str(raw["to"]), str(raw["digest"]),
                  str(raw["sourceCommit"]), raw["previousDigest"], str(raw["time"]))


def _trusted(project: Path, spec: ServiceSpec, record: Record, shown: str,
             order: Sequence[str]) -> None:
    """A record is a file anyone can write in a pull request: a rollback takes from it only a
    digest the first environment has run (its records, what it runs now, or what its
    Application's Git history shows) and a commit of main's history, both well formed; else a
    clear error naming the field."""
    problems = []
    if not re.fullmatch(r"sha256:[a-f0-9]{64}", record.digest):
        problems.append(f"digest: {record.digest!r}: not an image digest; allowed: "
                        "sha256:<64 hex>")
    elif record.digest not in history(project, spec, order[0]) and not _git(
            project, "log", "--format=%H", "-S", record.digest, "--",
            golden.application_path(spec, order[0])):
        # Its records, what it runs now, or what Git says its Application ran (a release from
        # before the records: the one new-service first wrote).
        problems.append(f"digest: {record.digest}: never ran in {order[0]} (its release records, "
                        "its Application and that file's history); allowed: a digest that did")
    if not re.fullmatch(r"[0-9a-f]{40}", record.commit):
        problems.append(f"sourceCommit: {record.commit!r}: not a commit; allowed: 40 hex "
                        "characters")
    else:
        main = _git(project, "rev-parse", "--verify", "--quiet", "main^{commit}") or \
            _git(project, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        if not main or _git(project, "merge-base", "--is-ancestor", record.commit,
                            main.strip()) is None:
            problems.append(f"sourceCommit: {record.commit}: not in main's history; allowed: a "
                            "commit main contains")
    if problems:
        raise ConfigError(shown, problems)


def record_problems(project: Path, spec: ServiceSpec, record: Record,
                    source: str) -> list[str]:
    """What Git history says against a promotion record: its commit must be in HEAD's history,
    and its digest must have been committed into `source`'s Application (what it ran)."""
    problems = []
    if _git(project, "merge-base", "--is-ancestor", record.commit, "HEAD") is None:
        problems.append(f"sourceCommit {record.commit[:12]} is not in this branch's history")
    application = golden.application_path(spec, source)
    if not _git(project, "log", "--format=%H", "-S", record.digest, "--", application):
        problems.append(f"{record.digest} was never committed into {application}")
    return problems


def records(project: Path, spec: ServiceSpec) -> list[Record]:
    """The service's release records, oldest first."""
    directory = project / records_dir(spec)
    return sorted((read_record(p, p.relative_to(project).as_posix())
                   for p in directory.glob("*.yaml")), key=lambda r: (r.time, r.path))


def history(project: Path, spec: ServiceSpec, env: str) -> set[str]:
    """Every digest `env` has run: its records and what its Application runs now."""
    ran = {r.digest for r in records(project, spec) if r.target == env}
    current = golden.deployed_releases(project, spec, [env]).get(env)
    return ran | ({current.digest} if current else set())


def find_spec(project: Path, reference: str,
              source: str = "promote") -> tuple[ServiceSpec, str]:
    """The spec of `name` or `team/name` among services/*.yaml, and its path as shown;
    `source` is what a refusal names (the command or its option)."""
    specs = {}
    for path in sorted((project / "services").glob("*.yaml")):
        spec = service_spec.load(path)
        specs[f"{spec.team}/{spec.name}"] = (spec, path.relative_to(project).as_posix())
    matches = [v for k, v in specs.items() if reference in (k, k.split("/", 1)[1])]
    if len(matches) != 1:
        why = "is ambiguous" if matches else "is not a service of services/*.yaml"
        raise ConfigError(source, [f"service: {reference!r} {why}; allowed: "
                                   + (", ".join(sorted(specs)) or "none")
                                   + (" (or a spec file)" if source != "promote" else "")])
    return matches[0]


def _git(project: Path, *args: str) -> str | None:
    """What git prints, or None when it fails (or there is no git)."""
    try:
        result = git(project, *args)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _committed_source(project: Path, spec: ServiceSpec, spec_path: str, source: str,
                      from_commit: str | None) -> tuple[str, golden.Deployed]:
    """(the commit, what `source`'s Application runs there): read from Git at `from_commit`
    (default HEAD), with the files a promotion reads committed as they are."""
    wanted = from_commit or "HEAD"
    at = _git(project, "rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}")
    if not at:
        raise ConfigError("promote", [f"--from-commit: {wanted!r}: not a commit of this "
                                      "repository; allowed: a commit, branch or tag"])
    application = golden.application_path(spec, source)
    dirty = _git(project, "status", "--porcelain", "--untracked-files=all", "--",
                 application, golden.base_path(spec))
    if dirty:
        files = ", ".join(line.split(maxsplit=1)[-1] for line in dirty.splitlines()[:5])
        raise ConfigError("promote", [
            f"{files}: uncommitted changes in what a promotion reads; commit them first: "
            f"{source}'s Application and the service's base are read as committed"])
    text = _git(project, "show", f"{at}:{application}")
    running = golden.deployed_in(text, spec) if text else None
    if running is None:
        raise ConfigError("promote", [f"{spec.team}/{spec.name} does not run in {source} at "
                                      f"{at[:12]} ({application}); run `platformctl "
                                      f"new-service {spec_path}` and commit first"])
    return at, running


def source_commit(project: Path, spec: ServiceSpec, at: str = "HEAD") -> str:
    """The commit the promotion pins: the last one that changed the service's base, as of
    `at` (so promoting again with no change of the base changes nothing); the base must be
    committed as it is."""
    base = golden.base_path(spec)
    commit = _git(project, "log", "-1", "--format=%H", at, "--", base)
    if not commit:
        raise ConfigError("promote", [f"{project}: no commit of {base} in Git; promote pins "
                                      "the environment to the commit that last changed it"])
    dirty = _git(project, "status", "--porcelain", "--untracked-files=all", "--", base)
    if dirty:
        raise ConfigError("promote", [f"{golden.base_path(spec)}: uncommitted changes "
                                      f"({len(dirty.splitlines())} files); commit them first: "
                                      "the promoted environment runs the base as committed"])
    return commit


@dataclass(frozen=True)
class Promotion:
    files: dict[str, str]  # path -> text, to write
    record: Record | None  # None: the environment already runs it
    summary: str


def promote(project: Path, reference: str, target: str,
            environments: Mapping[str, PlatformConfig], order: Sequence[str], *,
            digest: str | None = None, record_path: str | None = None,
            from_commit: str | None = None, now: datetime | None = None) -> Promotion:
    """`from_commit`: where the source environment's Application is read (default HEAD): a
    promotion moves what it ran there, as committed, never what a working tree says."""
    spec, spec_path = find_spec(project, reference)
    if target not in order:
        raise ConfigError("promote", [f"--to: {target!r}: not an environment of the "
                                      f"project; allowed: {', '.join(order)}"])
    if digest is not None and not re.fullmatch(r"sha256:[a-f0-9]{64}", digest):
        raise ConfigError("promote", [f"--digest: {digest!r}: not an image digest; allowed: "
                                      "sha256:<64 hex>"])
    first = target == order[0]
    source = NEW_BUILD if first else order[order.index(target) - 1]
    deployed = golden.deployed_releases(project, spec, order)
    current = deployed.get(target)
    if record_path is not None:
        if digest is not None:
            raise ConfigError("promote", ["--digest and --record: one or the other (a rollback "
                                          "takes the record's digest)"])
        record = read_record(project / record_path, record_path)
        if (record.team, record.service, record.target) != (spec.team, spec.name, target):
            raise ConfigError(record_path, [
                f"a record of {record.team}/{record.service} in {record.target}; allowed: a "
                f"record of {spec.team}/{spec.name} in {target}"])
        _trusted(project, spec, record, record_path, order)
        # The first environment follows its branch whatever it runs; a later one returns to
        # the revision of the record too.
        revision = (environments[target].gitops.revision if first else record.commit)
        kind, wanted = "rollback", golden.Deployed(record.digest, revision)
        origin = target
    elif first:
        # A new build into the first environment (the service's CI opens this change): the
        # digest it built, signed and pushed; the environment keeps following its branch.
        if digest is None:
            raise ConfigError("promote", [f"--digest: required with --to {target}: the digest "
                                          "the service's CI built and signed"])
        if current is None:
            raise ConfigError("promote", [f"{spec.team}/{spec.name} is not in {target} yet "
                                          f"({golden.application_path(spec, target)} is "
                                          "missing); run `platformctl new-service "
                                          f"{spec_path}` first"])
        kind, wanted, origin = "release", golden.Deployed(digest, current.revision), NEW_BUILD
    else:
        at, running = _committed_source(project, spec, spec_path, source, from_commit)
        if digest is not None and digest != running.digest:
            raise ConfigError("promote", [
                f"--digest: {digest}: not the digest {source} runs at {at[:12]} "
                f"({running.digest}); allowed: only what {source} runs moves to {target}"])
        kind, wanted = "promotion", golden.Deployed(running.digest,
                                                    source_commit(project, spec, at))
        origin = source
    if current == wanted:
        return Promotion({}, None, f"{spec.team}/{spec.name}: {target} already runs "
                                   f"{wanted.digest} at {wanted.revision[:12]}")
    files = golden.render(
        spec, spec_path, environments, golden.existing_applications(project, order),
        # A contract step's release must have run in prod *before* (its PreSync Job runs
        # while prod still runs what it ran): the history as it is, not with this promotion.
        {**deployed, target: wanted}, history(project, spec, order[-1]),
        golden.catalog_targets(project))
    # The environment's Application, and the catalog's entities (a service prod runs is in
    # production).
    catalog_file = catalog.service_path(spec, spec_path)
    wanted_files = {path: text for path, text in files.items()
                    if f"/environments/{target}/" in path or path == catalog_file}
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    commit = (wanted.revision if kind != "release"
              else _git(project, "rev-parse", "--verify", "HEAD^{commit}") or "unknown")
    stem = (f"{records_dir(spec)}/{moment:%Y%m%dT%H%M%SZ}-{target}-{kind}-"
            f"{wanted.digest.removeprefix('sha256:')[:12]}")
    path = next(f"{stem}{suffix}.yaml" for suffix in ("", *(f"-{n}" for n in range(2, 100)))
                if not (project / f"{stem}{suffix}.yaml").exists())
    record = Record(path, spec.name, spec.team, kind, origin, target, wanted.digest, commit,
                    current.digest if current else None, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    wanted_files[record.path] = RECORD_HEADER + yaml.safe_dump(
        record.document(), sort_keys=False)
    verb = {"rollback": "rolled back to", "release": "releases",
            "promotion": f"promoted from {source}:"}[kind]
    return Promotion(wanted_files, record,
                     f"{spec.team}/{spec.name}: {target} {verb} {wanted.digest} at "
                     f"{wanted.revision[:12]} (was {current.digest if current else 'not there'})")
