"""The review renders with Helm 3, the major pulumi-kubernetes installs with; every release of both
stacks is rendered with Helm 4 too, and any difference between the two that is not explained
below fails. Generated material (keys, certificates, random annotations) is left out of the
comparison: it differs between two renders of the same helm as well.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Callable
from typing import Any

from platformctl import helmbin, rendering

Key = tuple[str, str, str | None, str]  # release, kind, namespace, name


@dataclasses.dataclass(frozen=True)
class Explained:
    """A difference between Helm 3 and Helm 4 renderings, why it exists and why it does not change
    what the cluster runs."""
    path: str  # dotted field path inside the object, list indexes as [n]
    applies: Callable[[Key], bool]
    helm3: Any
    helm4: Any
    why: str


_MISSING = "<absent>"

EXPLAINED = [
    Explained(
        path=f"webhooks[2].{field}",
        applies=lambda key: (key[0].endswith("aws-load-balancer-controller")
                             and key[1] == "ValidatingWebhookConfiguration"),
        helm3=None, helm4=_MISSING,
        why="the chart's defaults set webhookConfig.ingressValidation{Object,Namespace}Selector "
            "to a map of two null keys. Helm 3 keeps null keys of chart defaults when it "
            "coalesces values, so the map is non-empty, the template's `if` is true and the "
            "selector renders empty (null); Helm 4 drops them, the map is empty and the key is "
            "not rendered. The API server treats a null selector as an absent one (match "
            "everything): the webhook is the same.")
    for field in ("objectSelector", "namespaceSelector")
]


def _differences(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b), key=str):
            here = f"{path}.{key}" if path else str(key)
            found += _differences(a.get(key, _MISSING), b.get(key, _MISSING), here)
        return found
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True))
                for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [(path, a, b)]


def _objects(evaluation) -> dict[Key, dict[str, Any]]:
    found: dict[Key, dict[str, Any]] = {}
    for obj in rendering.objects(evaluation):
        key = (obj.release, obj.kind, obj.namespace, obj.name)
        assert key not in found, f"{key} rendered twice"
        found[key] = rendering.without_generated(obj.object)
    return found


def _unexplained(helm3: dict[Key, dict], helm4: dict[Key, dict],
                 used: set[int]) -> list[str]:
    problems = [f"only Helm 3 renders {key}" for key in helm3.keys() - helm4.keys()]
    problems += [f"only Helm 4 renders {key}" for key in helm4.keys() - helm3.keys()]
    for key in sorted(helm3.keys() & helm4.keys(), key=str):
        for path, old, new in _differences(helm3[key], helm4[key]):
            match = [i for i, e in enumerate(EXPLAINED)
                     if e.path == path and e.applies(key) and (e.helm3, e.helm4) == (old, new)]
            used.update(match)
            if not match:
                problems.append(f"{key} {path}: Helm 3 {old!r}, Helm 4 {new!r}")
    return problems


def test_the_review_renders_with_helm_3_the_installers_major():
    version = subprocess.run([str(helmbin.binary()), "version", "--short"], capture_output=True,
                             text=True, check=True).stdout
    assert version.startswith("v3."), version
    assert subprocess.run([str(helmbin.binary("helm4")), "version", "--short"],
                          capture_output=True, text=True, check=True).stdout.startswith("v4.")


def test_helm_3_and_helm_4_render_every_release_alike_but_for_what_is_explained(
        rendered, rendered_by_helm4):
    used: set[int] = set()
    problems = []
    for stack in ("dev", "prod"):
        helm3, helm4 = _objects(rendered[stack]), _objects(rendered_by_helm4[stack])
        assert len(helm3) > 400, (stack, len(helm3))
        problems += [f"{stack}: {p}" for p in _unexplained(helm3, helm4, used)]
    assert not problems, "\n".join(problems)
    stale = [e.path for i, e in enumerate(EXPLAINED) if i not in used]
    assert not stale, f"explained differences that no longer occur: {stale}"


def test_an_unexplained_difference_fails():
    key: Key = ("prod-vault", "StatefulSet", "vault", "vault")
    helm3 = {key: {"spec": {"replicas": 3}}}
    assert _unexplained(helm3, {key: {"spec": {"replicas": 1}}}, set()) == [
        f"{key} spec.replicas: Helm 3 3, Helm 4 1"]
    assert _unexplained(helm3, {}, set()) == [f"only Helm 3 renders {key}"]
    lbc: Key = ("prod-aws-load-balancer-controller", "ValidatingWebhookConfiguration", None, "x")
    used: set[int] = set()
    webhook = {"webhooks": [{}, {}, {"objectSelector": None}]}
    assert _unexplained({lbc: webhook}, {lbc: {"webhooks": [{}, {}, {}]}}, used) == []
    assert used == {0}
    # The explanation is for that one chart's object only.
    assert _unexplained({key: webhook}, {key: {"webhooks": [{}, {}, {}]}}, set())
