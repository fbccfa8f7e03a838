"""Extract which input changes make a provider replace a resource, from the providers' own
sources, into `platform_facts/replacement.json` (read by :mod:`platform_facts.replacement`).

Run by a maintainer when a provider is bumped, never by the review (the sources are not on a
user's machine)::

    python -m platform_facts.replacement_extract \\
        --tf-aws-index DIR --tf-aws-tag v6.58.0 \\
        --kubernetes DIR --kubernetes-ref v4.32.0 \\
        --random DIR --random-ref v3.9.0

* AWS: terraform-provider-aws, which pulumi-aws bridges. Its resource schemas are read from a
  git checkout of an index of that provider's Go source that holds one function per file
  (`index/internal/service/<service>/func.<name>.goindex`), tagged per provider release. A
  plugin-SDK attribute with `ForceNew: true` and a plugin-framework attribute with a
  `RequiresReplace()` plan modifier replace the resource; `ForceNewIfChange`/`RequiresReplaceIf`
  replace it on some changes only ("conditional"). A nested block whose schema is built by a
  function the reader cannot follow is recorded as "unresolved", never as "updates in place".
* Kubernetes: pulumi-kubernetes' own table (`provider/pkg/provider/diff.go`: `forceNew`, the
  metadata fields and the Secret/ConfigMap rule) and the Helm release's fields
  (`provider/pkg/provider/helm_release.go`).
* random: terraform-provider-random (pulumi-random bridges it), plugin-framework schemas.

Each Terraform attribute path is turned into the Pulumi input path the review documents carry
(camelCase, the bridge's plural names for list blocks), checked against the installed Pulumi
SDK's own input classes: a path the SDK does not have stops the extraction.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Pulumi type -> Terraform type, for every AWS type the program makes. Checked by extraction:
# the Terraform schema's attributes must be the Pulumi class's inputs.
AWS_TYPES: dict[str, str] = {
    "aws:autoscaling/group:Group": "aws_autoscaling_group",
    "aws:backup/plan:Plan": "aws_backup_plan",
    "aws:backup/selection:Selection": "aws_backup_selection",
    "aws:backup/vault:Vault": "aws_backup_vault",
    "aws:backup/vaultLockConfiguration:VaultLockConfiguration":
        "aws_backup_vault_lock_configuration",
    "aws:budgets/budget:Budget": "aws_budgets_budget",
    "aws:cloudwatch/logGroup:LogGroup": "aws_cloudwatch_log_group",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "aws_cloudwatch_metric_alarm",
    "aws:ec2/defaultCreditSpecification:DefaultCreditSpecification":
        "aws_ec2_default_credit_specification",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "aws_default_security_group",
    "aws:ec2/eip:Eip": "aws_eip",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/internetGateway:InternetGateway": "aws_internet_gateway",
    "aws:ec2/launchTemplate:LaunchTemplate": "aws_launch_template",
    "aws:ec2/natGateway:NatGateway": "aws_nat_gateway",
    "aws:ec2/networkInterface:NetworkInterface": "aws_network_interface",
    "aws:ec2/route:Route": "aws_route",
    "aws:ec2/routeTable:RouteTable": "aws_route_table",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "aws_route_table_association",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/subnet:Subnet": "aws_subnet",
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "aws_vpc_endpoint",
    "aws:eks/accessEntry:AccessEntry": "aws_eks_access_entry",
    "aws:eks/accessPolicyAssociation:AccessPolicyAssociation":
        "aws_eks_access_policy_association",
    "aws:eks/addon:Addon": "aws_eks_addon",
    "aws:eks/cluster:Cluster": "aws_eks_cluster",
    "aws:eks/nodeGroup:NodeGroup": "aws_eks_node_group",
    "aws:eks/podIdentityAssociation:PodIdentityAssociation": "aws_eks_pod_identity_association",
    "aws:fis/experimentTemplate:ExperimentTemplate": "aws_fis_experiment_template",
    "aws:iam/instanceProfile:InstanceProfile": "aws_iam_instance_profile",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "aws_iam_openid_connect_provider",
    "aws:iam/role:Role": "aws_iam_role",
    "aws:iam/rolePolicy:RolePolicy": "aws_iam_role_policy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "aws_iam_role_policy_attachment",
    "aws:kms/alias:Alias": "aws_kms_alias",
    "aws:kms/key:Key": "aws_kms_key",
    "aws:kms/keyPolicy:KeyPolicy": "aws_kms_key_policy",
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication":
        "aws_db_instance_automated_backups_replication",
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:scheduler/schedule:Schedule": "aws_scheduler_schedule",
    "aws:sns/topic:Topic": "aws_sns_topic",
    "aws:sns/topicPolicy:TopicPolicy": "aws_sns_topic_policy",
    "aws:sns/topicSubscription:TopicSubscription": "aws_sns_topic_subscription",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule":
        "aws_vpc_security_group_ingress_rule",
    "aws:xray/group:Group": "aws_xray_group",
}

RANDOM_TYPES: dict[str, tuple[str, str]] = {
    # Pulumi type -> (file, schema function) in terraform-provider-random
    "random:index/randomPassword:RandomPassword": ("internal/provider/resource_password.go",
                                                   "passwordSchemaV3"),
}

# Helpers whose schema is known not to replace anything (tags are updated in place) or to
# replace always.
_BENIGN_CALLS = re.compile(r"^(tftags\.Tags(Schema|SchemaComputed|Attribute|AttributeComputed"
                           r"Only)|framework\.(IDAttribute|ARNAttributeComputedOnly))\(\)$")
_FORCE_NEW_CALLS = re.compile(r"^tftags\.TagsSchemaForceNew\(\)$")

_ACRONYMS = sorted(["ARNs", "ARN", "AWS", "IDs", "ID", "IAM", "IOPS", "JSON", "KMS", "S3", "SNS",
                    "SQS", "URL", "URLs", "VPC", "VPCs", "CIDR", "IPv4", "IPv6", "IP", "DNS",
                    "DB", "EBS", "EC2", "TTL", "SSL", "TLS", "OIDC", "ACL", "AZ", "HTTP",
                    "HTTPS", "API", "MFA", "SSE"], key=len, reverse=True)
_WORD = re.compile("(?:" + "|".join(_ACRONYMS) + r")(?=[A-Z]|\d|$)|[A-Z][a-z0-9]*|\d+")


def attr_const(name: str) -> str:
    """`names.AttrSubnetIDs` -> `subnet_ids` (the provider's attribute-name constants)."""
    words = _WORD.findall(name)
    if "".join(words) != name:
        raise ValueError(f"cannot split attribute constant Attr{name}")
    return "_".join(w.lower() for w in words)


# -- a small reader for Go composite literals ------------------------------------------------

def _skip(text: str, i: int) -> int:
    """The index after the string, rune or comment starting at i (or i if none starts there)."""
    c = text[i]
    if c in "\"'":
        j = i + 1
        while text[j] != c:
            j += 2 if text[j] == "\\" else 1
        return j + 1
    if c == "`":
        return text.index("`", i + 1) + 1
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text.startswith("/*", i):
        return text.index("*/", i) + 2
    return i


def _code(text: str, start: int = 0) -> Iterator[tuple[int, str]]:
    """(index, character) of every character from `start` outside strings, runes and comments."""
    j = start
    while j < len(text):
        k = _skip(text, j)
        if k != j:
            j = k
            continue
        yield j, text[j]
        j += 1


def _top_level(text: str) -> Iterator[tuple[int, str]]:
    """(index, character) of the code characters where no bracket is open (brackets omitted)."""
    depth = 0
    for j, c in _code(text):
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
        elif depth == 0:
            yield j, c


def matching(text: str, i: int) -> int:
    """Index of the bracket closing the one at i."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack: list[str] = []
    for j, c in _code(text, i):
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")}]":
            if c != stack.pop():
                raise ValueError(f"unbalanced {c!r} at {j}")
            if not stack:
                return j
    raise ValueError(f"no bracket closes the one at {i}")


def split_top(body: str, sep: str = ",") -> list[str]:
    """`body` cut at `sep` where no bracket is open (strings and comments skipped)."""
    cuts = [j for j, c in _top_level(body) if c == sep]
    parts = [body[a + 1:b] for a, b in zip([-1, *cuts], [*cuts, len(body)], strict=True)]
    return [p for p in (_strip_comments(p).strip() for p in parts) if p]


def _strip_comments(text: str) -> str:
    out, j = [], 0
    while j < len(text):
        k = _skip(text, j)
        if k != j:
            if text[j] in "\"'`":
                out.append(text[j:k])
            j = k
            continue
        out.append(text[j])
        j += 1
    return "".join(out)


def key_value(part: str) -> tuple[str, str] | None:
    """`key: value` cut at its first top-level colon, or None when it has none."""
    j = next((j for j, c in _top_level(part) if c == ":"), None)
    return None if j is None else (part[:j].strip(), part[j + 1:].strip())


def literal_body(text: str, marker: str, start: int = 0) -> str | None:
    """The inside of the first `marker{...}` literal at or after `start`."""
    i = text.find(marker, start)
    if i < 0:
        return None
    open_at = i + len(marker) - 1
    assert text[open_at] == "{", marker
    return text[open_at + 1:matching(text, open_at)]


# Looks up a package-level string constant used as an attribute key (set while extracting).
_CONSTANTS: Any = None


def attribute_name(key: str) -> str:
    key = key.strip()
    if key.startswith('"'):
        return json.loads(key)
    if key.startswith("names.Attr"):
        return attr_const(key[len("names.Attr"):])
    if re.fullmatch(r"\w+", key) and _CONSTANTS is not None:
        value = _CONSTANTS(key)
        if value is not None:
            return value
    raise ValueError(f"unreadable attribute key {key!r}")


# -- what a schema says ----------------------------------------------------------------------

@dataclass
class SchemaFacts:
    force_new: set[str] = field(default_factory=set)
    conditional: set[str] = field(default_factory=set)
    unresolved: set[str] = field(default_factory=set)
    attributes: set[str] = field(default_factory=set)  # top-level, settable ones


class GoIndex:
    """Reads `func.<name>.goindex` files of one tag of the index checkout."""

    def __init__(self, repo: Path, tag: str):
        self.repo, self.tag = repo, tag
        listing = subprocess.run(["git", "-C", str(repo), "ls-tree", "-r", "--name-only", tag,
                                  "index/"], capture_output=True, text=True, check=True).stdout
        self.files = listing.split()
        self._files = set(self.files)
        self._by_name: dict[str, list[str]] = {}
        for f in self.files:
            self._by_name.setdefault(f.rsplit("/", 1)[-1].lower(), []).append(f)
        self.commit = subprocess.run(["git", "-C", str(repo), "rev-list", "-n1", tag],
                                     capture_output=True, text=True, check=True).stdout.strip()

    def read(self, path: str) -> str:
        return subprocess.run(["git", "-C", str(self.repo), "show", f"{self.tag}:{path}"],
                              capture_output=True, text=True, check=True).stdout

    def function(self, name: str, service: str | None = None) -> tuple[str, str] | None:
        """(path, source) of the function `name`, preferring the service's own package."""
        found = self._by_name.get(f"func.{name}.goindex".lower(), [])
        if service:
            own = [f for f in found if f"/service/{service}/" in f]
            found = own or found
        exact = [f for f in found if f.endswith(f"/func.{name}.goindex")]
        found = exact or found
        return (found[0], self.read(found[0])) if len(found) == 1 else None

    def constant_in(self, service: str):
        def lookup(name: str) -> str | None:
            path = f"index/internal/service/{service}/var.{name}.goindex"
            if path not in self._files:
                return None
            m = re.search(rf"\b{name}\s*=\s*\"([^\"]+)\"", self.read(path))
            return m.group(1) if m else None
        return lookup

    def resource(self, tf_type: str) -> tuple[str, str, str]:
        """(kind, path, source) of the function or method that holds the type's schema."""
        meta = json.loads(self.read(f"index/resources/{tf_type}.json"))
        service = meta["namespace"].rsplit("/", 1)[-1]
        # The index names the schema function by a guess from the type name; the Create
        # function's name is read from the source (resourceGroupCreate -> resourceGroup).
        wanted = [meta["schema_index"].lower()]
        for key, suffix in (("create_index", "Create"), ("read_index", "Read")):
            if meta.get(key, "").endswith(f"{suffix}.goindex"):
                wanted.append(meta[key].replace(f"{suffix}.goindex", ".goindex").lower())
        paths = []
        for name in wanted:
            paths = [f for f in self._by_name.get(name, []) if f"/service/{service}/" in f]
            if len(paths) == 1:
                break
        if len(paths) != 1:
            raise LookupError(f"{tf_type}: no single {meta['schema_index']} in {service}")
        kind = "framework" if meta["sdk_type"].endswith("framework") else "sdk"
        return kind, paths[0], self.read(paths[0])


def _sdk_schema_map(body: str, prefix: str, facts: SchemaFacts, index: GoIndex | None,
                    service: str | None, top: bool) -> None:
    for part in split_top(body):
        kv = key_value(part)
        if kv is None:
            continue
        name = attribute_name(kv[0])
        path = f"{prefix}{name}"
        _sdk_attribute(kv[1], path, facts, index, service, top)


def _sdk_attribute(value: str, path: str, facts: SchemaFacts, index: GoIndex | None,
                   service: str | None, top: bool) -> None:
    value = value.strip()
    if value.startswith("&"):
        value = value[1:]
    if value.startswith("schema.Schema{"):
        value = value[len("schema.Schema"):]
    if not value.startswith("{"):
        if _BENIGN_CALLS.match(value):
            if top and "Computed" not in value:
                facts.attributes.add(path)
            return
        if _FORCE_NEW_CALLS.match(value):
            facts.force_new.add(path)
            facts.attributes.add(path)
            return
        resolved = _resolve_call(value, index, service)
        if resolved is None:
            facts.unresolved.add(path)
            if top:
                facts.attributes.add(path)
            return
        value = resolved
    inner = value[value.index("{") + 1:matching(value, value.index("{"))]
    fields = dict(kv for kv in (key_value(p) for p in split_top(inner)) if kv)
    settable = fields.get("Optional") == "true" or fields.get("Required") == "true"
    if top and settable:
        facts.attributes.add(path)
    if fields.get("ForceNew") == "true":
        facts.force_new.add(path)
    elem = fields.get("Elem", "").strip()
    if elem.startswith("&"):
        elem = elem[1:]
    if elem.startswith("schema.Resource{"):
        res = elem[len("schema.Resource"):]
        res_body = res[1:matching(res, 0)]
        nested = _schema_map_in(res_body)
        if nested is None:
            resolved = _resolve_resource_schema(res_body, index, service)
            if resolved is None:
                facts.unresolved.add(path)
                return
            nested = resolved
        _sdk_schema_map(nested, f"{path}.", facts, index, service, False)
    elif elem and not elem.startswith("schema.Schema{"):
        resolved = _resolve_call(elem, index, service)
        if resolved is None:
            facts.unresolved.add(path)
            return
        nested = _schema_map_in(resolved)
        if nested is not None:
            _sdk_schema_map(nested, f"{path}.", facts, index, service, False)


def _schema_map_in(text: str) -> str | None:
    return literal_body(text, "map[string]*schema.Schema{")


def _resolve_call(expr: str, index: GoIndex | None, service: str | None,
                  depth: int = 0) -> str | None:
    """The literal a helper returns (`fooSchema()` -> `{...}` of its `schema.Schema`, or of an
    `Elem: &schema.Resource{...}` for one returning a resource), when the index holds that
    helper; a package variable made by a helper (`var X = sync.OnceValue(fooFunc(...))`) is
    followed to the helper."""
    m = re.fullmatch(r"(?:\w+\.)?(\w+)\(\)", expr.strip())
    if not m or index is None or depth > 2:
        return None
    name = m.group(1)
    found = index.function(name, service)
    if found is None:
        var = [f for f in index.files if f.endswith(f"/var.{name}.goindex")]
        if len(var) != 1:
            return None
        src = index.read(var[0])
        decl = re.search(rf"var {name} = (?:sync\.OnceValue\()?(\w+)\(", src)
        if not decl:
            return None
        found = index.function(decl.group(1), None)
        if found is None:
            return None
    src = found[1]
    body_at = src.find("func ")
    schema_at = src.find("schema.Schema{", body_at)
    resource_at = src.find("schema.Resource{", body_at)
    if resource_at >= 0 and (schema_at < 0 or resource_at < schema_at):
        lit = src[resource_at + len("schema.Resource"):]
        nested = _schema_map_in(lit[:matching(lit, 0) + 1])
        return None if nested is None else "{Elem: &schema.Resource{Schema: " \
            "map[string]*schema.Schema{" + nested + "}}}"
    if schema_at >= 0:
        lit = src[schema_at + len("schema.Schema"):]
        return lit[:matching(lit, 0) + 1]
    return None


def _resolve_resource_schema(res_body: str, index: GoIndex | None,
                             service: str | None) -> str | None:
    fields = dict(kv for kv in (key_value(p) for p in split_top(res_body)) if kv)
    for key in ("Schema", "SchemaFunc"):
        if key in fields:
            m = re.fullmatch(r"(?:\w+\.)?(\w+)(\(\))?", fields[key].strip())
            if m and index is not None:
                found = index.function(m.group(1), service)
                if found:
                    return _schema_map_in(found[1])
    return None


def _customize_diff(source: str, index: GoIndex | None, service: str | None,
                    facts: SchemaFacts) -> None:
    """Fields a CustomizeDiff replaces the resource on for some changes only."""
    texts = [source]
    m = re.search(r"CustomizeDiff:\s*([^\n]+)", source)
    if m and index is not None:
        for name in re.findall(r"\b(\w+)\b", m.group(1)):
            found = index.function(name, service)
            if found:
                texts.append(found[1])
    for text in texts:
        for call in re.finditer(r"ForceNewIf(?:Change)?\(\s*([^,)]+)", text):
            arg = call.group(1).strip()
            try:
                facts.conditional.add(re.sub(r"\.\d+\.", ".", attribute_name(arg)))
            except ValueError:
                continue
        for call in re.finditer(r"\bd\.ForceNew\(\s*([^,)]+)\)", text):
            try:
                facts.conditional.add(attribute_name(call.group(1)))
            except ValueError:
                continue


def sdk_resource_facts(source: str, index: GoIndex | None = None,
                       service: str | None = None) -> SchemaFacts:
    """What a plugin-SDK resource function's schema says."""
    facts = SchemaFacts()
    top = _schema_map_in(source)
    named = re.search(r"\bSchema(?:Func)?:\s*(?:maps\.Clone\()?(\w+)", source)
    if top is None and named and index is not None and service is not None:
        # `Schema: maps.Clone(topicSchema)`: a package-level variable or function
        for kind in ("var", "func"):
            path = f"index/internal/service/{service}/{kind}.{named.group(1)}.goindex"
            if path in index._files:
                top = _schema_map_in(index.read(path))
                break
    if top is None:
        raise ValueError("no map[string]*schema.Schema literal in the resource function")
    _sdk_schema_map(top, "", facts, index, service, True)
    _customize_diff(source, index, service, facts)
    return facts


def _framework_attributes(body: str, prefix: str, facts: SchemaFacts, top: bool) -> None:
    for part in split_top(body):
        kv = key_value(part)
        if kv is None:
            continue
        path = f"{prefix}{attribute_name(kv[0])}"
        value = kv[1]
        if _BENIGN_CALLS.match(value.strip()):
            if top and "Computed" not in value:
                facts.attributes.add(path)
            continue
        if "{" not in value:
            facts.unresolved.add(path)
            continue
        brace = value.index("{")
        inner = value[brace + 1:matching(value, brace)]
        fields = dict(kv for kv in (key_value(p) for p in split_top(inner)) if kv)
        if top and (fields.get("Optional") == "true" or fields.get("Required") == "true"):
            facts.attributes.add(path)
        modifiers = fields.get("PlanModifiers", "")
        if re.search(r"\bRequiresReplace\(\)", modifiers):
            facts.force_new.add(path)
        elif re.search(r"RequiresReplaceIf", modifiers):
            facts.conditional.add(path)
        nested = literal_body(inner, "Attributes: map[string]schema.Attribute{")
        if nested is not None:
            _framework_attributes(nested, f"{path}.", facts, False)


def framework_resource_facts(source: str) -> SchemaFacts:
    """What a plugin-framework Schema method (or schema function) says."""
    facts = SchemaFacts()
    attrs = literal_body(source, "Attributes: map[string]schema.Attribute{")
    if attrs is None:
        raise ValueError("no Attributes literal in the schema")
    _framework_attributes(attrs, "", facts, True)
    blocks = literal_body(source, "Blocks: map[string]schema.Block{")
    if blocks is not None:
        for part in split_top(blocks):
            kv = key_value(part)
            if kv is None:
                continue
            name = attribute_name(kv[0])
            facts.attributes.add(name)
            if re.search(r"\bRequiresReplace\(\)", kv[1].split("NestedObject")[0]):
                facts.force_new.add(name)
            nested = literal_body(kv[1], "Attributes: map[string]schema.Attribute{")
            if nested is not None:
                _framework_attributes(nested, f"{name}.", facts, False)
    return facts


# -- Terraform names -> the Pulumi SDK's input names ------------------------------------------

def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _sdk_args(pulumi_type: str) -> type:
    package, module_path, cls = pulumi_type.split(":")
    mod = module_path.split("/")[0]
    root = {"aws": "pulumi_aws", "random": "pulumi_random"}[package]
    module = importlib.import_module(root if mod == "index" else f"{root}.{mod}")
    return getattr(module, f"{cls}Args")


def _properties(args_cls: type) -> dict[str, tuple[str, Any]]:
    """Pulumi name -> (python name, annotation) of an input class."""
    out = {}
    hints = getattr(args_cls.__init__, "__annotations__", {})
    for py_name, prop in vars(args_cls).items():
        if isinstance(prop, property) and hasattr(prop.fget, "_pulumi_name"):
            out[prop.fget._pulumi_name] = (py_name, hints.get(py_name))
    return out


def _nested_class(args_cls: type, annotation: Any) -> type | None:
    m = re.search(r"(\w+Args)\b", str(annotation))
    if not m:
        return None
    module = importlib.import_module(args_cls.__module__.rsplit(".", 1)[0])
    return getattr(module, m.group(1), None)


def pulumi_path(pulumi_type: str, tf_path: str) -> str | None:
    """The Pulumi input path of a Terraform attribute path, or None where the SDK has none."""
    cls: type | None = _sdk_args(pulumi_type)
    out = []
    for segment in tf_path.split("."):
        if cls is None:
            return None
        props = _properties(cls)
        camel = _camel(segment)
        candidates = [camel, camel + "s", camel + "es"]
        if camel.endswith("y"):
            candidates.append(camel[:-1] + "ies")
        hit = next((c for c in candidates if c in props), None)
        if hit is None:
            return None
        out.append(hit)
        cls = _nested_class(cls, props[hit][1])
    return ".".join(out)


# -- Kubernetes --------------------------------------------------------------------------------

def kubernetes_facts(diff_go: str, helm_release_go: str) -> dict[str, Any]:
    """pulumi-kubernetes' replace-on-change table, read from its diff.go."""
    variables: dict[str, list[str]] = {}
    helpers: dict[str, list[str]] = {}
    for m in re.finditer(r"func (\w+)\((?:prefix string|prefixes \.\.\.string)\) properties \{",
                         diff_go):
        body = diff_go[m.end():matching(diff_go, m.end() - 1)]
        helpers[m.group(1)] = re.findall(r'prefix \+ "([^"]+)"', body)

    def props(expr: str) -> list[str]:
        expr = expr.strip()
        if expr in variables:
            return variables[expr]
        if expr.startswith("append("):
            inner = expr[len("append("):matching(expr, len("append(") - 1)]
            out: list[str] = []
            for part in split_top(inner):
                out.extend(props(part.rstrip(".").rstrip(".").rstrip(".")))
            return out
        if expr.startswith("properties{"):
            return json.loads("[" + expr[len("properties{"):-1].strip().rstrip(",") + "]")
        call = re.fullmatch(r"(\w+)\((.*)\)(\.\.\.)?", expr, re.S)
        if call and call.group(1) in helpers:
            prefixes = json.loads("[" + call.group(2) + "]")
            return [p + s for p in prefixes for s in helpers[call.group(1)]]
        raise ValueError(f"unreadable properties expression: {expr[:60]}")

    for m in re.finditer(r"^var (\w+) = ", diff_go, re.M):
        if m.group(1) in ("forceNew", "core"):
            continue
        start = m.end()
        brace = diff_go.index("{", start) if diff_go[start:].startswith("properties") else \
            diff_go.index("(", start)
        variables[m.group(1)] = props(diff_go[start:matching(diff_go, brace) + 1])

    def kinds(body: str) -> dict[str, list[str]]:
        out = {}
        for part in split_top(body):
            kv = key_value(part)
            if kv:
                out[json.loads(kv[0])] = sorted(set(props(kv[1])))
        return out

    def versions(body: str) -> dict[str, dict[str, list[str]]]:
        out = {}
        for part in split_top(body):
            kv = key_value(part)
            if kv:
                value = kv[1]
                out[json.loads(kv[0])] = kinds(value[value.index("{") + 1:-1])
        return out

    core_at = re.search(r"^var core = _versions", diff_go, re.M)
    assert core_at
    core = versions(literal_body(diff_go, "_versions{", core_at.start()) or "")
    by_group: dict[str, Any] = {}
    table = literal_body(diff_go, "var forceNew = _groups{") or ""
    for part in split_top(table):
        kv = key_value(part)
        if not kv:
            continue
        group = json.loads(kv[0])
        by_group[group] = core if kv[1] == "core" else versions(
            kv[1][kv[1].index("{") + 1:-1])
    metadata = helpers["metadataForceNewProperties"]
    secret = re.search(r"IsSecret\(obj\).*?properties\{([^}]*)\}", diff_go, re.S)
    configmap = re.search(r"IsConfigMap\(obj\).*?properties\{([^}]*)\}", diff_go, re.S)
    helm = re.search(r"forceNewFields := \[\]string\{([^}]*)\}", helm_release_go)
    assert secret and configmap and helm
    return {
        "metadata": [f".metadata{p}" for p in metadata],
        "kinds": by_group,
        "secret_unless_mutable": json.loads("[" + secret.group(1) + "]"),
        "configmap_unless_mutable": json.loads("[" + configmap.group(1) + "]"),
        "helm_release": json.loads("[" + helm.group(1) + "]"),
    }


# -- the whole extraction ----------------------------------------------------------------------

def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=True).stdout


def aws_facts(index: GoIndex) -> dict[str, Any]:
    types: dict[str, Any] = {}
    problems = []
    for pulumi_type, tf_type in sorted(AWS_TYPES.items()):
        try:
            kind, path, source = index.resource(tf_type)
        except LookupError as exc:
            problems.append(str(exc))
            continue
        service = path.split("/service/")[1].split("/")[0]
        global _CONSTANTS
        _CONSTANTS = index.constant_in(service)
        try:
            facts = (framework_resource_facts(source) if kind == "framework"
                     else sdk_resource_facts(source, index, service))
        except ValueError as exc:
            problems.append(f"{tf_type} ({path}): {exc}")
            continue
        args = _properties(_sdk_args(pulumi_type))
        unmatched = sorted(a for a in facts.attributes if pulumi_path(pulumi_type, a) is None)
        if len(unmatched) > max(2, len(facts.attributes) // 5):
            problems.append(f"{pulumi_type} <- {tf_type}: the SDK has no input for "
                            f"{unmatched} (is this the right Terraform type?)")
        entry: dict[str, Any] = {"terraform_type": tf_type, "schema": path}
        for key in ("force_new", "conditional", "unresolved"):
            mapped = {}
            for tf_path in sorted(getattr(facts, key)):
                p = pulumi_path(pulumi_type, tf_path)
                if p is None:
                    if tf_path.split(".")[0] in {a.split(".")[0] for a in unmatched} or \
                            tf_path.split(".")[0] not in facts.attributes:
                        continue  # computed-only, or an input the SDK does not expose
                    problems.append(f"{pulumi_type}: {tf_path} has no Pulumi input")
                    continue
                mapped[p] = tf_path
            entry[key] = sorted(mapped)
        entry["inputs"] = len(args)
        types[pulumi_type] = entry
    if problems:
        raise SystemExit("extraction stopped:\n  " + "\n  ".join(problems))
    return types


def random_facts(repo: Path, ref: str) -> dict[str, Any]:
    out = {}
    for pulumi_type, (path, function) in RANDOM_TYPES.items():
        source = _git(repo, "show", f"{ref}:{path}")
        start = source.index(f"func {function}(")
        body = source[start:matching(source, source.index("{", start))]
        facts = framework_resource_facts(body)
        out[pulumi_type] = {
            "terraform_type": "random_password", "schema": f"{path} ({function})",
            "force_new": sorted(p for p in (pulumi_path(pulumi_type, a)
                                            for a in facts.force_new) if p),
            "conditional": sorted(p for p in (pulumi_path(pulumi_type, a)
                                              for a in facts.conditional) if p),
            "unresolved": [],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tf-aws-index", type=Path, required=True)
    ap.add_argument("--tf-aws-tag", required=True)
    ap.add_argument("--kubernetes", type=Path, required=True)
    ap.add_argument("--kubernetes-ref", required=True)
    ap.add_argument("--random", type=Path, required=True)
    ap.add_argument("--random-ref", required=True)
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).with_name("replacement.json"))
    args = ap.parse_args(argv)
    index = GoIndex(args.tf_aws_index, args.tf_aws_tag)
    k8s_commit = _git(args.kubernetes, "rev-list", "-n1", args.kubernetes_ref).strip()
    random_commit = _git(args.random, "rev-list", "-n1", args.random_ref).strip()
    document = {
        "about": "Which input changes make the provider replace a resource (delete and create "
                 "anew) rather than update it in place. Generated by "
                 "`python -m platform_facts.replacement_extract`; do not edit by hand.",
        "sources": {
            "aws": {"provider": "terraform-provider-aws", "version": args.tf_aws_tag,
                    "read_from": "lonegunmanb/terraform-provider-aws-index (one Go function "
                                 "per file, tagged per provider release)",
                    "commit": index.commit},
            "kubernetes": {"provider": "pulumi-kubernetes", "version": args.kubernetes_ref,
                           "files": ["provider/pkg/provider/diff.go",
                                     "provider/pkg/provider/helm_release.go"],
                           "commit": k8s_commit},
            "random": {"provider": "terraform-provider-random", "version": args.random_ref,
                       "commit": random_commit},
        },
        "aws": aws_facts(index),
        "random": random_facts(args.random, args.random_ref),
        "kubernetes": kubernetes_facts(
            _git(args.kubernetes, "show", f"{args.kubernetes_ref}:provider/pkg/provider/diff.go"),
            _git(args.kubernetes, "show",
                 f"{args.kubernetes_ref}:provider/pkg/provider/helm_release.go")),
    }
    args.out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(document['aws'])} AWS types", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
