"""The state of existing stacks survives refactoring: every URN the shipped stacks had when the
snapshot was taken (tests/fixtures/urns/<stack>.txt) is still a resource's URN, or a URN one
resource takes over through `aliases` (as the engine resolves them, parents' aliases carried down
to their children). A URN that is neither would make `pulumi up` delete that resource and create
a new one: for the VPC, the cluster or the database, an outage or data lost.

When a resource is removed on purpose (the review shows the deletion), list its URN with the reason
in tests/fixtures/urns/removed.txt; `python -m tests.test_urns --write` takes a new snapshot (after
a release that every stack has applied).

Beside each snapshot, the fingerprints (sha256) of each resource's inputs whose change makes its
provider replace it (platform_facts.replacement): a change since the snapshot that deletes a
resource (removed.txt) or replaces one must have its upgrade notes in docs/upgrading.md, which
names the resource: the operator learns before `pulumi up` what it will delete or recreate.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from platformctl.harness import evaluate
from platformctl.recording import Evaluation, make_urn

SNAPSHOTS = Path(__file__).parent / "fixtures" / "urns"
UPGRADING = Path(__file__).resolve().parent.parent / "docs" / "upgrading.md"


def replace_fingerprints(evaluation: Evaluation) -> dict[str, dict[str, str]]:
    """For each custom resource, a sha256 (12 characters) of each input whose change makes its
    provider replace it: no value itself (a secret stays out of the fixtures)."""
    import hashlib
    import json

    from platform_facts.replacement import forces_replacement

    found = {}
    for resource in evaluation.resources:
        if not resource.custom:
            continue
        keys = {name: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode())
                .hexdigest()[:12] for name, value in sorted(resource.inputs.items())
                if forces_replacement(resource.type, name) is True}
        if keys:
            found[resource.urn] = keys
    return found


def fingerprints(stack: str) -> dict[str, dict[str, str]]:
    import json

    return json.loads((SNAPSHOTS / f"{stack}.replace.json").read_text())


def replaced_since(evaluation: Evaluation,
                   before: dict[str, dict[str, str]]) -> list[tuple[str, str, list[str]]]:
    """(URN, resource name, inputs) of the resources whose replace-forcing inputs changed since
    the snapshot: the same URN, or the one it takes over through aliases."""
    now = replace_fingerprints(evaluation)
    formers = evaluation.former_urns()
    found = []
    for resource in evaluation.resources:
        for urn in (resource.urn, *formers.get(resource.urn, ())):
            if urn in before and resource.urn in now:
                changed = sorted(k for k in before[urn].keys() | now[resource.urn].keys()
                                 if before[urn].get(k) != now[resource.urn].get(k))
                if changed:
                    found.append((resource.urn, resource.name, changed))
                break
    return found


def undocumented(evaluation: Evaluation, stack: str, notes: str) -> list[str]:
    """Deletions (removed.txt) and replacements since the snapshot whose resource
    docs/upgrading.md does not name."""
    names = [urn.rsplit("::", 1)[1] for urn in removed_on_purpose()
             if urn.startswith(f"urn:pulumi:{stack}::")]
    names += [name for _, name, _ in replaced_since(evaluation, fingerprints(stack))]
    return sorted({n for n in names if f"`{n}`" not in notes})


def snapshot(stack: str) -> list[str]:
    return (SNAPSHOTS / f"{stack}.txt").read_text().split()


def removed_on_purpose() -> set[str]:
    """URNs of the snapshot deleted deliberately (tests/fixtures/urns/removed.txt, each with its
    reason): the review showed the deletion and the commit says why."""
    lines = (SNAPSHOTS / "removed.txt").read_text().splitlines()
    return {line.split("#", 1)[0].strip() for line in lines
            if line.strip() and not line.startswith("#")}


def lost_urns(evaluation: Evaluation, before: list[str]) -> list[str]:
    """URNs of `before` that no resource of `evaluation` has or takes over."""
    formers = evaluation.former_urns()
    kept = {r.urn for r in evaluation.resources} | {u for urns in formers.values() for u in urns}
    return [urn for urn in before if urn not in kept]


def claimed_twice(evaluation: Evaluation) -> list[str]:
    """Former URNs two resources claim (the engine refuses such a program)."""
    seen: dict[str, str] = {}
    twice = []
    current = {r.urn for r in evaluation.resources}
    for urn, formers in evaluation.former_urns().items():
        for former in formers:
            if former in seen or former in current:
                twice.append(former)
            seen[former] = urn
    return twice


def test_every_urn_of_the_shipped_stacks_is_kept_or_alias_covered(evaluations):
    for name, evaluation in evaluations.items():
        lost = lost_urns(evaluation, snapshot(name))
        assert [u for u in lost if u not in removed_on_purpose()] == [], name
        assert claimed_twice(evaluation) == [], name


def test_every_deletion_and_replacement_since_the_snapshot_has_upgrade_notes(evaluations):
    notes = UPGRADING.read_text(encoding="utf-8")
    for name, evaluation in evaluations.items():
        assert undocumented(evaluation, name, notes) == [], name


def test_a_replacement_without_notes_is_found(evaluations):
    """A change of an input that replaces its resource (the VPC's CIDR) is caught, and passes
    once docs/upgrading.md names the resource."""
    dev = evaluations["dev"]
    (vpc,) = dev.of_type("aws:ec2/vpc:Vpc")
    moved = dataclasses.replace(vpc, inputs={**vpc.inputs, "cidrBlock": "10.99.0.0/16"})
    changed = dataclasses.replace(dev, resources=[moved if r is vpc else r
                                                  for r in dev.resources])
    assert replaced_since(changed, fingerprints("dev")) == [(vpc.urn, vpc.name, ["cidrBlock"])]
    assert vpc.name in undocumented(changed, "dev", "")
    assert vpc.name not in undocumented(changed, "dev", f"... `{vpc.name}` is replaced ...")
    assert replaced_since(dev, fingerprints("dev")) == []


def test_the_snapshots_are_the_shipped_stacks_of_their_time():
    for name in ("dev", "prod"):
        urns = snapshot(name)
        assert len(urns) == len(set(urns)) > 150
        assert all(u.startswith(f"urn:pulumi:{name}::platform::") for u in urns)
    # Every deliberate removal names a URN of a snapshot.
    assert removed_on_purpose() <= set(snapshot("dev")) | set(snapshot("prod"))


def test_a_resource_moved_without_an_alias_is_a_lost_urn(evaluations):
    dev = evaluations["dev"]
    (vpc,) = dev.of_type("aws:ec2/vpc:Vpc")
    moved = dataclasses.replace(vpc, urn=make_urn("dev", "platform", "", vpc.type, vpc.name),
                                parent=None, aliases=[])
    changed = dataclasses.replace(dev, resources=[moved if r is vpc else r
                                                  for r in dev.resources])
    # The VPC itself, and (through the parent chain) nothing else: its children's records
    # still name the old parent URN here.
    assert lost_urns(changed, [vpc.urn]) == [vpc.urn]
    # With the alias the engine would carry it over.
    aliased = dataclasses.replace(moved, aliases=[{"parentUrn": vpc.parent}])
    changed = dataclasses.replace(dev, resources=[aliased if r is vpc else r
                                                  for r in dev.resources])
    assert lost_urns(changed, [vpc.urn]) == []


def test_a_components_alias_carries_its_children_along(evaluations):
    dev = evaluations["dev"]
    (network,) = dev.of_type("platform:index:Network")
    children = [r for r in dev.resources if r.parent == network.urn]
    assert children
    wrapper = make_urn("dev", "platform", "", "platform:index:Wrapper", "dev")
    renamed = {}
    for resource in dev.resources:
        if resource is network or any(a is network for a in dev.ancestors(resource)):
            old_parent = resource.parent
            parent = renamed.get(old_parent, wrapper) if resource is not network else wrapper
            renamed[resource.urn] = make_urn("dev", "platform", parent, resource.type,
                                             resource.name)
    moved = []
    for resource in dev.resources:
        if resource.urn in renamed:
            aliases = [{"noParent": True}] if resource is network else []
            moved.append(dataclasses.replace(
                resource, urn=renamed[resource.urn],
                parent=wrapper if resource is network else renamed[resource.parent],
                aliases=aliases))
        else:
            moved.append(resource)
    changed = dataclasses.replace(dev, resources=moved)
    before = sorted(renamed)
    assert lost_urns(changed, before) == []
    without = dataclasses.replace(changed, resources=[
        dataclasses.replace(r, aliases=[]) for r in changed.resources])
    assert sorted(lost_urns(without, before)) == before


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.test_urns --write")
    repo = Path(__file__).resolve().parent.parent
    for stack in ("dev", "prod"):
        evaluation = evaluate(stack, project_dir=repo)
        urns = sorted(r.urn for r in evaluation.resources)
        (SNAPSHOTS / f"{stack}.txt").write_text("\n".join(urns) + "\n")
        import json

        (SNAPSHOTS / f"{stack}.replace.json").write_text(
            json.dumps(replace_fingerprints(evaluation), indent=1, sort_keys=True) + "\n")
        print(f"{stack}: {len(urns)} URNs")
