"""Replace or update: what the provider does with a changed resource, as `pulumi preview` would
say it (`~` update, `+-` replace).

The facts are the providers' own, extracted from their sources into `replacement.json` by
:mod:`platform_facts.replacement_extract` (terraform-provider-aws's `ForceNew` and
`RequiresReplace`, pulumi-kubernetes's replace-on-change table, terraform-provider-random's
plan modifiers). A change this module cannot judge (a type with no facts, a nested block whose
schema the extraction could not follow, a provider's own configuration) is "unknown", never
"update".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

FACTS_FILE = Path(__file__).with_name("replacement.json")
_MISSING = object()

Action = Literal["update", "replace", "unknown", "refused"]

# Fields the Kubernetes API server itself refuses to update that pulumi-kubernetes's own
# replace-on-change table (replacement.json) does not list: the provider plans an update, the
# API server answers 422 "field is immutable" or "Forbidden", and `pulumi preview` (its
# server-side dry run) and `pulumi up` fail on that resource. Per built-in kind the platform
# creates directly, read in the API server's update validation (kubernetes/kubernetes,
# pkg/apis/<group>/validation/validation.go, `Validate<Kind>Update`); a kind listed with no
# fields was read and has none beyond pulumi-kubernetes's table. A custom resource's are its
# CRD's transition rules (`x-kubernetes-validations: self == oldSelf`, platformctl.crds).
KUBERNETES_API_IMMUTABLE: dict[str, tuple[str, ...]] = {
    # ValidateStorageClassUpdate: parameters, provisioner (both in pulumi-kubernetes's table),
    # reclaimPolicy (Forbidden) and volumeBindingMode (ValidateImmutableField).
    "storage.k8s.io/v1/StorageClass": ("reclaimPolicy", "volumeBindingMode"),
    # ValidateResourceQuotaUpdate: spec.scopes only (in pulumi-kubernetes's table).
    "v1/ResourceQuota": (),
    # ValidateSecretUpdate / ValidateConfigMapUpdate: type, and data once immutable (in
    # pulumi-kubernetes's table with its enableSecretMutable/enableConfigMapMutable rule).
    "v1/Secret": (), "v1/ConfigMap": (),
    # ValidateRoleBindingUpdate / ValidateClusterRoleBindingUpdate: roleRef (in the table).
    "rbac.authorization.k8s.io/v1/RoleBinding": (),
    "rbac.authorization.k8s.io/v1/ClusterRoleBinding": (),
    # Metadata only (name and namespace, in the table); the rest of these kinds is mutable.
    "v1/Namespace": (), "v1/ServiceAccount": (), "v1/LimitRange": (),
    "rbac.authorization.k8s.io/v1/ClusterRole": (), "rbac.authorization.k8s.io/v1/Role": (),
    "networking.k8s.io/v1/NetworkPolicy": (),
    # ValidateValidatingAdmissionPolicyUpdate / ...BindingUpdate: the object validated anew
    # (old expressions tolerated), no field frozen.
    "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy": (),
    "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding": (),
}

# Updates AWS refuses once the replacements before them put the new subnets or security groups
# in another VPC (replaced because their vpcId is new): the provider plans an update in place,
# `pulumi preview` shows it (it asks AWS nothing for an update), and `pulumi up` fails there,
# after the new VPC and what came before it were created. Type -> input -> the API's refusal,
# the error as AWS words it (where it was seen: docs/review.md).
AWS_KEPT_IN_VPC: dict[str, dict[str, str]] = {
    "aws:rds/subnetGroup:SubnetGroup": {
        "subnetIds": "ModifyDBSubnetGroup refuses subnets of another VPC (InvalidParameterValue: "
                     "\"The new Subnets are not in the same Vpc as the existing subnet group\")"},
    "aws:rds/instance:Instance": {
        "vpcSecurityGroupIds": "ModifyDBInstance refuses security groups of another VPC than "
                               "its DB subnet group's (InvalidParameterCombination: \"The DB "
                               "instance and EC2 security group are in different VPCs\")"},
    # Moved by detaching it from the old VPC and attaching it to the new one.
    "aws:ec2/internetGateway:InternetGateway": {
        "vpcId": "DetachInternetGateway refuses while the VPC it leaves has public addresses "
                 "mapped (DependencyViolation: \"Network vpc-... has some mapped public "
                 "address(es). Please unmap those public address(es) before detaching the "
                 "gateway.\")"},
}
# A refusal above that holds only while the base has resources of these types (what maps
# public addresses in the VPC left behind: its replacements are deleted only at the end).
AWS_REFUSED_WHILE: dict[str, tuple[str, ...]] = {
    "aws:ec2/internetGateway:InternetGateway": (
        "aws:ec2/eip:Eip", "aws:ec2/natGateway:NatGateway", "aws:ec2/instance:Instance"),
}
# What AWS does allow instead: an instance moves to another VPC when the same modification
# switches it to a DB subnet group of another name there (not Multi-AZ while it moves).
AWS_MOVES_WITH: dict[str, str] = {"aws:rds/instance:Instance": "dbSubnetGroupName"}
_DATABASE_MOVE = (
    "Keep the VPC, or move the database first, as AWS documents it: a DB subnet group of "
    "another name on subnets of the new VPC, and the instance switched to it together with "
    "security groups of the new VPC in one modification (single-AZ while it moves); then "
    "retire the old network.")
AWS_REFUSAL_REMEDIATION: dict[str, str] = {
    "aws:rds/subnetGroup:SubnetGroup": _DATABASE_MOVE,
    "aws:rds/instance:Instance": _DATABASE_MOVE,
    "aws:ec2/internetGateway:InternetGateway": (
        "Keep the VPC, or build the new network beside the old one (its own Internet gateway), "
        "move the workloads and the database onto it, then retire the old network."),
}


@cache
def facts() -> dict[str, Any]:
    return json.loads(FACTS_FILE.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Decision:
    action: Action
    fields: tuple[str, ...] = ()  # the inputs that force it (replace) or that it cannot judge
    conditional: bool = False  # replace on some changes of the field only (the provider decides)
    reason: str | None = None


def values_at(value: Any, path: Sequence[str]) -> Any:
    """The value at a dotted input path, mapped over lists (`a.b` of `{"a": [{"b": 1}]}` is
    `[1]`); missing parts are `_MISSING`."""
    if not path:
        return value
    if isinstance(value, list):
        return [values_at(v, path) for v in value]
    if isinstance(value, Mapping):
        return values_at(value.get(path[0], _MISSING), path[1:])
    return _MISSING


def _differs(before: Any, after: Any, path: str) -> bool:
    parts = [p for p in path.replace("[*]", "").split(".") if p]
    was, now = values_at(before, parts), values_at(after, parts)
    return _norm(was) != _norm(now)


def _norm(value: Any) -> Any:
    # An input left out and one set to null are the same to the provider.
    if value is _MISSING or value is None:
        return None
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


def without_ignored(before: Mapping[str, Any], after: Mapping[str, Any],
                    ignore_changes: Iterable[str]) -> dict[str, Any]:
    """`after` with every `ignoreChanges` path set back to its value in `before` (the engine
    applies ignoreChanges before it asks the provider for a diff)."""
    result = json.loads(json.dumps(after))
    for path in ignore_changes:
        parts = path.split(".")
        src: Any = before
        for p in parts:
            src = src.get(p, _MISSING) if isinstance(src, Mapping) else _MISSING
        dst: Any = result
        for p in parts[:-1]:
            if not isinstance(dst, dict):
                dst = None
                break
            dst = dst.setdefault(p, {})
        if isinstance(dst, dict):
            if src is _MISSING:
                dst.pop(parts[-1], None)
            else:
                dst[parts[-1]] = src
    return result


def _kubernetes_paths(type_token: str, after: Mapping[str, Any],
                      provider: Mapping[str, Any] | None) -> list[str]:
    k8s = facts()["kubernetes"]
    _, api, kind = type_token.split(":")
    if api == "helm.sh/v3" and kind == "Release":
        return [p.lstrip(".") for p in k8s["helm_release"]]
    group, _, version = api.rpartition("/")
    group = group or "core"
    paths = list(k8s["metadata"])
    provider = provider or {}
    known = k8s["kinds"].get(group, {}).get(version, {})
    immutable = after.get("immutable") is True
    secret_mutable = str(provider.get("enableSecretMutable", "false")).lower() == "true"
    configmap_mutable = str(provider.get("enableConfigMapMutable", "false")).lower() == "true"
    if group == "core" and kind == "Secret" and (not secret_mutable or immutable):
        paths += k8s["secret_unless_mutable"]
    elif kind in known:
        paths += known[kind]
    elif group == "core" and kind == "ConfigMap" and (not configmap_mutable or immutable):
        paths += k8s["configmap_unless_mutable"]
    return [p.lstrip(".") for p in paths]


def _provider_entry(type_token: str) -> dict[str, Any] | None:
    """The extracted facts of a Terraform-bridged type (aws, random), None for any other."""
    package = type_token.split(":", 1)[0]
    return facts().get(package, {}).get(type_token) if package in ("aws", "random") else None


def kubernetes_api_version(type_token: str) -> str | None:
    """`kubernetes:storage.k8s.io/v1:StorageClass` -> `storage.k8s.io/v1/StorageClass` (core
    kinds: `v1/Secret`); None for a type that is not a Kubernetes object."""
    parts = type_token.split(":")
    if len(parts) != 3 or parts[0] != "kubernetes" or parts[1] == "helm.sh/v3":
        return None
    api = parts[1].removeprefix("core/")
    return f"{api}/{parts[2]}"


def _roc_hits(before: Mapping[str, Any], after: Mapping[str, Any],
              replace_on_changes: Sequence[str]) -> list[str]:
    """The `replaceOnChanges` paths whose value changes (the engine turns a change under any of
    them into a replacement, whatever the provider says; `*` is every input)."""
    hits = []
    for path in replace_on_changes:
        if path == "*":
            if _norm(dict(before)) != _norm(dict(after)):
                hits.append(path)
            continue
        dotted = re.sub(r'\["([^"]+)"\]', r".\1", path).replace("[*]", "")
        if _differs(before, after, dotted):
            hits.append(path)
    return hits


def decide(type_token: str, before: Mapping[str, Any], after: Mapping[str, Any],
           provider: Mapping[str, Any] | None = None, replace_on_changes: Sequence[str] = (),
           api_immutable: Mapping[str, Sequence[str]] | None = None) -> Decision:
    """What the engine does when a resource's inputs go from `before` to `after` (both with
    ignoreChanges already applied): the provider's decision, then the resource's
    `replaceOnChanges`, then (an update of a Kubernetes object) the API server's own immutable
    fields, which refuse it. `provider` is the inputs of the Kubernetes provider the resource
    uses (its enableSecretMutable/enableConfigMapMutable decide Secrets and ConfigMaps);
    `api_immutable` adds custom resources' immutable fields (`group/version/Kind` -> paths,
    from their CRDs' transition rules)."""
    if _norm(dict(before)) == _norm(dict(after)):
        return Decision("update")
    decision = _provider_decision(type_token, before, after, provider)
    if decision.action != "replace" and (roc := _roc_hits(before, after, replace_on_changes)):
        return Decision("replace", tuple(roc), reason="its replaceOnChanges option")
    kind = kubernetes_api_version(type_token)
    if decision.action == "update" and kind is not None:
        frozen = [*KUBERNETES_API_IMMUTABLE.get(kind, ()), *(api_immutable or {}).get(kind, ())]
        hits = [p for p in frozen if _differs(before, after, p)]
        if hits:
            return Decision("refused", tuple(hits), reason=(
                "the Kubernetes API server refuses to update these fields, and "
                "pulumi-kubernetes updates rather than replaces on them: `pulumi preview` "
                "and `pulumi up` fail on this resource"))
    return decision


def _provider_decision(type_token: str, before: Mapping[str, Any], after: Mapping[str, Any],
                       provider: Mapping[str, Any] | None) -> Decision:
    package = type_token.split(":", 1)[0]
    if type_token.startswith("pulumi:providers:"):
        return Decision("unknown", tuple(sorted(k for k in set(before) | set(after)
                                                if before.get(k) != after.get(k))),
                        reason="a provider's own configuration changed: whether the engine "
                               "replaces the provider, and every resource it manages, is not "
                               "modelled")
    if package == "kubernetes":
        hits = [p for p in _kubernetes_paths(type_token, after, provider)
                if _differs(before, after, p)]
        return Decision("replace", tuple(hits)) if hits else Decision("update")
    entry = _provider_entry(type_token)
    if entry is None:
        return Decision("unknown", reason=f"no replacement facts for {type_token}")
    hits = [p for p in entry["force_new"] if _differs(before, after, p)]
    if hits:
        return Decision("replace", tuple(_outermost(hits)))
    maybe = [p for p in entry["conditional"] if _differs(before, after, p)]
    if maybe:
        return Decision("replace", tuple(maybe), conditional=True,
                        reason="the provider replaces on some changes of these fields only")
    blind = [p for p in entry["unresolved"] if _differs(before, after, p)]
    if blind:
        return Decision("unknown", tuple(blind),
                        reason="the provider's schema for these inputs was not read")
    return Decision("update")


def _outermost(paths: Sequence[str]) -> list[str]:
    """`a` and `a.b` both changed: `a` says it."""
    return [p for p in paths if not any(p.startswith(q + ".") for q in paths if q != p)]


def forces_replacement(type_token: str, input_name: str) -> bool | None:
    """Does a change of the top-level input `input_name` (its value unknown after a dependency
    is replaced) make the provider replace the resource? None where not known."""
    package = type_token.split(":", 1)[0]
    if package == "kubernetes":
        return any(p.split(".")[0] == input_name for p in _kubernetes_paths(type_token, {}, None))
    entry = _provider_entry(type_token)
    if entry is None:
        return None
    if any(p.split(".")[0] == input_name for p in entry["force_new"] + entry["conditional"]):
        return True
    if any(p.split(".")[0] == input_name for p in entry["unresolved"]):
        return None
    return False
