"""The review document as a typed model (schema `platformctl.review/v1`).

`platformctl review --format json` is the serialisation of :class:`ReviewDocument`;
docs/review-schema.json is generated from it (`platformctl generate` checks it for drift, as it
checks the other generated files). Version 1 only ever gains fields: a field added within v1 has
a default, so documents made before it still validate; removing a field or changing its meaning
is v2, with a migration note in docs/review.md.

The terminal and markdown renderers (platformctl.review) read the model's serialisation, the
same mapping a consumer of the JSON reads, so no format can show what another does not carry.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from platform_facts.costmodel import money


def counted(n: int, noun: str) -> str:
    """`1 check`, `2 checks`: never `check(s)`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"

SCHEMA = "platformctl.review/v1"
SCHEMA_PATH = Path("docs") / "review-schema.json"

USD = "US dollars per month, rounded to the cent (half up)"


def usd(value: Decimal | float | str | None) -> float | None:
    """Money as every document carries it: US dollars rounded to the cent, half up (the cost
    model's one rounding, platform_facts.costmodel.money)."""
    if value is None:
        return None
    return float(money(Decimal(str(value))))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _absent_when_none(value: Any) -> bool:
    return value is None


def _absent_when_empty(value: Any) -> bool:
    return not value


class Resource(_Model):
    key: str = Field(description="<type>::<name>")
    type: str
    name: str
    component: str | None
    parent: str | None
    custom: bool
    protect: bool
    inputs: dict[str, Any] = Field(
        description='engine-shaped (camelCase) inputs; secrets replaced by "[secret]"')
    secret_digests: dict[str, str] = Field(
        {}, exclude_if=_absent_when_empty,
        description="input path -> the first 16 hex digits of the SHA-256 of the secret there, "
                    "as the offline evaluation holds it (config secrets are placeholders "
                    "naming their ciphertext's digest; never a real secret): `--base` compares "
                    "them")
    urn: str | None = Field(None, description="the URN as the engine makes it (the parent's "
                                              "whole type chain)")
    former_urns: list[str] = Field([], description="URNs this resource takes over from state "
                                                   "through aliases (its own and its parents')")
    ignore_changes: list[str] = Field([], exclude_if=_absent_when_empty,
                                      description="the ignoreChanges option: input paths the "
                                                  "engine leaves out of the diff")
    replace_on_changes: list[str] = Field([], exclude_if=_absent_when_empty,
                                          description="the replaceOnChanges option: input paths "
                                                      "whose change the engine makes a "
                                                      "replacement")
    dependencies: list[str] = Field([], exclude_if=_absent_when_empty,
                                    description="keys of the resources this one depends on "
                                                "(through its inputs or dependsOn)")
    property_dependencies: dict[str, list[str]] = Field(
        {}, exclude_if=_absent_when_empty,
        description="input name -> keys of the resources its value comes from")


class Output(_Model):
    value: Any
    secret: bool


class CostLine(_Model):
    component: str | None
    resource_type: str
    resource_name: str
    key: str = Field(description="stable within a resource; diffs match lines on "
                                 "(resource_type, resource_name, key)")
    item: str
    monthly_usd: float | None = Field(description="null: unpriced (see unpriced_reason), never "
                                                  "zero")
    detail: str | None = None
    assumption: str | None = Field(None, description="set on usage-based or assumed lines")
    unpriced_reason: str | None = None
    usage: bool = Field(False, description="a charge by usage at an assumed amount")


class Coverage(_Model):
    """What the cost model made of every resource of the plan."""

    resources: int
    priced: int = Field(description="resources with a priced line")
    free: int = Field(description="resources that cost nothing themselves")
    unpriced: int = Field(description="resources with a line the model could not price")
    components: int = Field(description="component resources (groupings, no bill)")


class Cost(_Model):
    by_component: dict[str, float] = Field(description=USD)
    lines: list[CostLine]
    unpriced_count: int
    coverage: Coverage | None = Field(None, description="none in documents of real runs")


class CeilingLine(_Model):
    resource_type: str
    resource_name: str
    key: str
    item: str = Field(description="the line as priced at the ceiling")
    expected_monthly_usd: float = Field(description=USD)
    ceiling_monthly_usd: float = Field(description=USD)


class NodePool(_Model):
    pool: str = Field(description="the configured node group (cluster.nodeGroups.<pool>)")
    max_size: int = Field(description="maxSize over its EKS node groups (one per AZ when zonal)")
    desired_size: int
    per_node_monthly_usd: float = Field(description="what one more node adds at the ceiling: "
                                        "the node, its root volume, usage scaling with nodes")
    largest_allowed_max_size: int = Field(description="the largest maxSize within the stack's "
                                          "ceiling budget, the other node groups unchanged")


class Commitment(_Model):
    """What a 1-year commitment (Savings Plan, reserved instances) would need to save to matter:
    the model prices no commitment rates (none sourced), so it says the bar instead."""

    on_demand_monthly_usd: float = Field(description="the lines a commitment could cover: "
                                         "on-demand nodes and database instances at the ceiling")
    needed_monthly_usd: float = Field(description="what would have to be saved for one more "
                                      "node of the cheapest growable node group at the ceiling "
                                      "(0: the headroom already buys one)")
    needed_percent: float | None = Field(description="needed over the on-demand lines, in %; none "
                                         "without on-demand lines or a growable node group")


class Ceiling(_Model):
    """The most the plan can cost as planned: every node group and Auto Scaling group at
    maxSize, database storage at its autoscaling maximum, usage that grows with nodes scaled
    with them; the same rules and prices as the expected figure."""

    total_monthly_usd: float = Field(description=USD)
    budget_monthly_usd: float = Field(description="the stack's share of the organisation's cap "
                                      "(platform:budgetCeilingMonthlyUsd)")
    headroom_monthly_usd: float = Field(description="budget minus total; negative when over")
    lines: list[CeilingLine] = Field(description="the lines the ceiling prices differently")
    node_groups: list[NodePool] = Field(description="node groups that can grow (maxSize above "
                                        "the desired size)")
    commitment: Commitment | None = Field(None, description="none without on-demand lines")


class TeamShowback(_Model):
    team: str
    namespaces: list[str]
    cpu_millicores: float = Field(description="the quotas' CPU requests, over its namespaces")
    memory_mib: float = Field(description="the quotas' memory requests, over its namespaces")
    share_percent: float = Field(description="its dominant share of the fleet's allocatable "
                                 "CPU or memory, in %")
    dominant: Literal["CPU", "memory"]
    monthly_usd: float = Field(description="that share of the fleet's node cost at the ceiling")


class Showback(_Model):
    """Each team's quota priced as its dominant share of the node groups at maxSize
    (platform_facts.showback; docs/cost-and-policies.md: Showback)."""

    nodes: int = Field(description="the fleet: every node group at maxSize")
    cpu_millicores: float = Field(description="the fleet's allocatable CPU")
    memory_mib: float = Field(description="the fleet's allocatable memory")
    fleet_monthly_usd: float = Field(description="the fleet's node lines at the ceiling")
    teams_monthly_usd: float = Field(description="the teams' lines added up")
    teams: list[TeamShowback]


class Verdict(_Model):
    policy: str
    enforcement: Literal["mandatory", "advisory"]
    severity: str | None
    resource_type: str | None
    resource_name: str | None
    message: str
    remediation: str | None


class NotEvaluated(_Model):
    policy: str
    reason: str


class Policies(_Model):
    mandatory: list[Verdict]
    advisory: list[Verdict]
    cannot_run: list[Verdict] = Field(description="policies that read a value unknown until "
                                                  "apply (\"can't run during preview\")")
    not_applicable_count: int = 0
    not_evaluated: list[NotEvaluated] = Field(
        [], description="Checks that did not run because what they read was not computed (the "
        "Helm releases not rendered, say): neither a pass nor a failure; a review with any never "
        "passes (exit 2). Added in v1, absent from documents made before it.")


class RenderedObject(_Model):
    apiVersion: str  # noqa: N815 - the Kubernetes field name
    kind: str
    namespace: str | None
    name: str
    source: str = Field(description="the chart template that made it")
    object: dict[str, Any] = Field(description="the object; Secret data masked, CRD schemas "
                                               "summarised by size and sha256")


class RenderedRelease(_Model):
    key: str = Field(description="the Release resource's key in resources")
    release: str = Field(description="the Helm release name")
    namespace: str
    chart: str
    version: str
    archive: str = Field(description="the vendored archive, relative to the project")
    sha256: str
    object_count: int
    object_counts: dict[str, int]
    placeholders: list[str] = Field(description="value paths rendered with a marked "
                                                "placeholder (secret, or unknown offline)")
    objects: list[RenderedObject]


class Rendered(_Model):
    """The objects inside each Helm release, rendered by the real helm from the vendored
    chart. Added in v1, absent from documents made before it."""

    object_count: int
    releases: list[RenderedRelease]


class Amount(_Model):
    requested: int
    allocatable: int


class NodeGroupShape(_Model):
    name: str
    nodes: int
    instance_types: str
    pods_per_node: int
    cpu_millicores_per_node: int
    memory_mib_per_node: int


class CapacityScenario(_Model):
    """Pods, CPU and memory the platform schedules against what its node groups hold in one
    scenario (at minimum size; in prod also with one node lost)."""

    scenario: str
    nodes: int
    fits: bool
    pods: Amount
    cpu_millicores: Amount
    memory_mib: Amount
    requests_unknown: list[str]
    node_groups: list[NodeGroupShape] = Field(
        [], description="Each node group in this scenario: its nodes and what one node holds "
        "(allocatable; pods: the kubelet's maxPods bounded by the VPC CNI's addresses).")


class Drain(_Model):
    node: str
    zone: str
    pending: list[str] = Field(description="pods no other node takes (a violation)")
    waiting: list[str] = Field(description="pods bound to their EBS volume's AZ that wait for "
                                           "the autoscaler to add a node there")


class Placement(_Model):
    """The pods placed one by one on the nodes at minimum size, then (production) each node
    drained in turn (platform_facts.capacity.placement)."""

    nodes: list[str]
    unplaced: list[str]
    drains: list[Drain]


class ResourceRef(_Model):
    key: str
    type: str
    name: str


class ValueChange(_Model):
    old: str = Field(description="as shown, cut to 160 characters; (not set) when absent")
    new: str


class ChangedResource(ResourceRef):
    changed_inputs: list[str]
    values: dict[str, ValueChange] = Field(
        {}, description="each changed input's old and new value, secrets masked (`--diff`)")
    action: Literal["update", "replace", "unknown", "refused"] = Field(
        "update", description="what the engine does, as `pulumi preview` says it: update in "
        "place, replace (delete and create anew), unknown (no facts to judge by), or refused "
        "(an update the API refuses: a Kubernetes immutable field, or AWS keeping a database "
        "in its VPC)")
    replace_fields: list[str] = Field(
        [], description="replace: the inputs whose change forces it (or the replaceOnChanges "
        "paths that did); unknown: the inputs it cannot judge; refused: the immutable fields")
    replaced_because: list[str] = Field(
        [], description="keys of replaced resources whose outputs this one's inputs use (their "
        "new values are unknown until they are created again)")
    conditional: bool = Field(False, description="the provider replaces on some changes of "
                              "these fields only; counted as a replacement")
    reason: str | None = Field(None, exclude_if=_absent_when_none)
    protect: bool = False
    dependents: list[str] = Field(
        [], description="replace: keys of the resources that depend on this one and are not "
        "replaced themselves")


class MovedResource(ResourceRef):
    base_urn: str
    urn: str


class ResourceChanges(_Model):
    added: list[ResourceRef]
    removed: list[ResourceRef]
    changed: list[ChangedResource]
    replaced: list[MovedResource] = Field(
        [], description="in both revisions, under a URN the engine cannot match: deleted and "
        "created anew")
    moved: list[MovedResource] = Field(
        [], description="in both revisions, under a new URN its aliases cover: adopted in place")
    counts: dict[str, int] = Field(
        {}, description="as `pulumi preview` counts them: create, update, replace, delete, "
        "unchanged (custom resources and their providers), unknown, and refused (updates the "
        "Kubernetes API server or AWS refuses)")


class RenderedChanges(_Model):
    """Objects inside Helm releases added, removed or changed, as 'release: Kind
    namespace/name'."""

    note: str | None = Field(None, exclude_if=_absent_when_none,
                             description="set when the base revision did not render Helm "
                                         "releases (then the lists are empty)")
    added: list[str]
    removed: list[str]
    changed: list[str]
    fields: dict[str, list[str]] = Field(
        default_factory=dict, description="for each changed object, the field paths that "
        "differ (at most 12, then '... N more'; a CRD's schema is compared by its digest)")
    crd_versions_removed: list[dict[str, Any]] = Field(
        default_factory=list, description="CRD versions the base served and the head no longer "
        "does: {crd, api, kind, in_use}; in_use: objects the head renders still use it (the API "
        "server would stop serving them)")


class ViolationChanges(_Model):
    new: list[Verdict]
    resolved: list[Verdict]


class CostChange(_Model):
    resource_type: str
    resource_name: str
    key: str
    item: str
    change: Literal["added", "removed", "changed"]
    before_monthly_usd: float
    after_monthly_usd: float
    delta_monthly_usd: float
    summary: str = Field(description='e.g. "+$32.85/month: NAT gateway in us-east-1b added '
                                     '(prod-nat-us-east-1b)"')


class ResourceCostChange(_Model):
    """A resource whose monthly cost changes: all its cost lines, before and after."""

    resource_type: str
    resource_name: str
    before_monthly_usd: float
    after_monthly_usd: float


class CostDiff(_Model):
    base_total_monthly_usd: float = Field(description=USD)
    total_monthly_usd: float = Field(description=USD)
    delta_monthly_usd: float = Field(description=USD)
    summary: str = Field(description='e.g. "+$36.50/month in total"')
    lines: list[CostChange]
    by_resource: list[ResourceCostChange] = Field(
        default_factory=list, description="each resource whose monthly cost changes, with "
        "all its cost lines summed before and after (a created one has 0 before)")
    base_by_component: dict[str, float] = Field(
        default_factory=dict,
        description="the base revision's USD/month per component (the document's "
                    "cost.by_component is the head's): the change per component, its pie")


class Diff(_Model):
    """What changed from the base revision (`--base`)."""

    base: str | None
    resources: ResourceChanges
    rendered: RenderedChanges | None = None
    violations: ViolationChanges
    cost: CostDiff


class ReviewDocument(_Model):
    """One stack's offline preview: plan, platform-guard verdicts, monthly cost and, with
    --base, what changed. Version 1: fields are only ever added within v1; a removal or a change
    of meaning is v2."""

    schema_: Literal["platformctl.review/v1"] = Field(SCHEMA, alias="schema")
    stack: str
    source: str = Field(description="the stack file")
    revision: str | None = Field(None, exclude_if=_absent_when_none,
                                 description="set on a base document: the git revision reviewed")
    preset: str
    environment: str
    region: str
    budget_monthly_usd: float = Field(description=USD)
    total_monthly_usd: float = Field(description="the stack's estimated monthly cost (priced "
                                                 "lines only)")
    fixed_monthly_usd: float | None = Field(None, description="every priced line but usage: "
                                            "what the plan costs whatever it serves")
    usage_monthly_usd: float | None = Field(None, description="the usage lines (data, logs, "
                                            "capacity units) at the cost model's assumptions")
    headroom_monthly_usd: float = Field(description="budget minus total; negative when over "
                                                    "budget")
    ceiling: Ceiling | None = Field(None, description="none where the plan's ceiling was not "
                                    "priced (a document of a real preview)")
    showback: Showback | None = Field(None, description="none without node groups or team "
                                      "quotas, or where the ceiling was not priced")
    resource_count: int
    resource_counts: dict[str, int]
    resources: list[Resource]
    outputs: dict[str, Output]
    cost: Cost
    policies: Policies
    rendered: Rendered | None = None
    capacity: list[CapacityScenario] = Field([], description="empty when the releases are not "
                                                             "rendered")
    placement: Placement | None = Field(None, description="none when the releases are not "
                                                          "rendered or there are no node groups")
    warnings: list[str]
    project_problems: list[str] = Field(
        [], description="what is wrong with the project as a whole (every stack file's shares "
        "against the organisation's cap in Pulumi.yaml): the stack is reviewed all the same, "
        "and the review does not pass")
    diff: Diff | None
    exit_code: Literal[0, 1, 2] = Field(description="1 when a mandatory violation blocks the "
                                        "change or the project has a problem; 2 when a check "
                                        "could not be evaluated (and none blocks)")

    def to_dict(self) -> dict[str, Any]:
        """The document as JSON carries it (and as the renderers read it)."""
        return self.model_dump(mode="python", by_alias=True)


def json_schema() -> str:
    """docs/review-schema.json: the JSON Schema of ReviewDocument."""
    generated = ReviewDocument.model_json_schema(by_alias=True)
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA,
              "title": "platformctl review --format json",
              **{k: v for k, v in generated.items() if k != "title"}}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
