"""The offline CrossGuard adapter: platform-guard's policies over a recorded evaluation.

It does what the Pulumi engine and pulumi_policy's analyzer do with a preview, with
pulumi_policy's own types: every resource policy gets a `ResourceValidationArgs` per resource,
every stack policy one `StackValidationArgs` whose `PolicyResource`s have their parents and
(property) dependencies linked; props are wrapped in pulumi_policy's unknown-checking proxy, so a
policy that reads a value unknown until apply is reported as "can't run during preview"
(advisory), and `args.not_applicable()` is recorded, not a violation. Policy config follows the
CLI's `--policy-pack-config` shape (`{"all": level, "<policy>": level | {"enforcementLevel":
level, ...}}`) with schema defaults filled in, as the engine fills them.

Beside the pack's policies it runs the checks of what the Helm releases render
(platformctl.runtime_checks), configured and reported the same way, when it is given the
rendered objects; without them those checks are "not evaluated", with the reason.

The policy config of a stack comes from its config model (:func:`policy_config`): the same file
`platformctl policy-config STACK` writes for the real CLI.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from platform_guard.policies import ALL
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from platform_facts import sdk_types
from platformctl.recording import STACK_TYPE, Evaluation, RecordedResource, unwrap_secrets
from platformctl.runtime_checks import (
    CHECKS,
    RELEASE_TYPE,
    Application,
    Release,
    RenderedCheck,
    RenderedStack,
)
from stacks.config import PlatformConfig

PACK_NAME = "platform-guard"


def policy_config(cfg: PlatformConfig) -> dict[str, Any]:
    """The pack's config for a stack, from its config model (the one source of these facts)."""
    production = cfg.preset == "prod"
    exceptions = [e.model_dump(by_alias=True) for e in cfg.prod_exceptions]
    budget = {"budgetMonthlyUsd": cfg.budget_monthly_usd, "region": cfg.region}
    return {
        "required-tags": {"environment": cfg.environment},
        "budget-warning": {**budget, "thresholdPercent": 80},
        "budget-limit": budget,
        "budget-ceiling": {"budgetCeilingMonthlyUsd": cfg.budget_ceiling_monthly_usd,
                           "region": cfg.region},
        "nat-per-az-outside-prod": {"production": production},
        "on-demand-nodes-outside-prod": {"production": production},
        "allowed-instance-families": {"families": list(cfg.cluster.allowed_instance_families)},
        "prod-data-protection": {"production": production, "minBackupRetentionDays": 14,
                                 "exceptions": exceptions},
        "node-capacity": {"production": production},
        "quota-capacity": {"production": production},
        "webhook-availability": {"production": production},
        **{name: {"exceptions": exceptions}
           for name in ("prod-exception", "prod-exception-expired")},
    }


@dataclass(frozen=True)
class Verdict:
    policy: str
    enforcement: str
    severity: str | None
    message: str
    remediation: str | None
    resource_type: str | None = None
    resource_name: str | None = None
    urn: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The verdict as the review document (and readiness beside it) carries it: no URN,
        which differs between the offline harness and the engine."""
        return {"policy": self.policy, "enforcement": self.enforcement,
                "severity": self.severity, "resource_type": self.resource_type,
                "resource_name": self.resource_name, "message": self.message,
                "remediation": self.remediation}


@dataclass(frozen=True)
class NotEvaluated:
    """A check that did not run because what it reads was not computed: it neither passed nor
    failed, and whoever reports it says so."""

    policy: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"policy": self.policy, "reason": self.reason}


NOT_RENDERED = ("the objects inside the Helm releases were not rendered for this run; "
                "`platformctl review` renders them with helm")


@dataclass
class GuardReport:
    violations: list[Verdict] = field(default_factory=list)
    cannot_run: list[Verdict] = field(default_factory=list)  # unknown values during preview
    not_applicable: list[tuple[str, str, str | None]] = field(default_factory=list)
    not_evaluated: list[NotEvaluated] = field(default_factory=list)

    @property
    def mandatory(self) -> list[Verdict]:
        return [v for v in self.violations if v.enforcement == "mandatory"]

    @property
    def advisory(self) -> list[Verdict]:
        return [v for v in self.violations if v.enforcement == "advisory"]

    def of(self, policy: str) -> list[Verdict]:
        return [v for v in self.violations if v.policy == policy]

    def evaluated(self, policy: str) -> bool:
        return all(n.policy != policy for n in self.not_evaluated)


@dataclass(frozen=True)
class RenderedObjects:
    """What the Helm releases of a plan render, and the team services Argo CD would sync: the
    inputs of the rendered checks (platformctl.runtime_checks)."""

    releases: Mapping[str, Release]  # by Release URN
    applications: Sequence[Application] = ()


@dataclass(frozen=True)
class GuardResource:
    """A resource as the engine describes it to an analyzer."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    parent: str | None = None
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, list[str]] = field(default_factory=dict)
    provider: str | None = None
    protect: bool = False
    delete_before_replace: bool = False
    ignore_changes: tuple[str, ...] = ()
    additional_secret_outputs: tuple[str, ...] = ()


def from_recording(resource: RecordedResource) -> GuardResource:
    """What a policy sees of a recorded resource: its inputs, as the engine hands them to an
    analyzer after the provider's Check, which fills an auto-named `name` in (`<name>-<hex>`;
    the mocks record it as an output). Length and pattern rules on names need it."""
    props = unwrap_secrets(resource.inputs)
    if ("name" not in props and isinstance(resource.outputs.get("name"), str)
            and sdk_types.takes_name(resource.type)):
        props = {**props, "name": resource.outputs["name"]}
    return GuardResource(
        type=resource.type, name=resource.name, urn=resource.urn,
        props=props, parent=resource.parent,
        dependencies=tuple(resource.dependencies),
        property_dependencies=dict(resource.property_dependencies),
        provider=resource.provider, protect=resource.protect,
        delete_before_replace=resource.delete_before_replace,
        ignore_changes=tuple(resource.ignore_changes),
        additional_secret_outputs=tuple(resource.additional_secret_outputs),
    )


def _level(policy: Policy | RenderedCheck, config: Mapping[str, Any]) -> EnforcementLevel:
    own = config.get(policy.name)
    if isinstance(own, str):
        return EnforcementLevel(own)
    if isinstance(own, Mapping) and "enforcementLevel" in own:
        return EnforcementLevel(own["enforcementLevel"])
    if isinstance(config.get("all"), str):
        return EnforcementLevel(config["all"])
    return policy.enforcement_level or EnforcementLevel.ADVISORY


def _policy_values(policy: Policy | RenderedCheck, config: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if policy.config_schema is not None:
        for key, spec in policy.config_schema.properties.items():
            if "default" in spec:
                values[key] = spec["default"]
    own = config.get(policy.name)
    if isinstance(own, Mapping):
        values.update({k: v for k, v in own.items() if k != "enforcementLevel"})
    return values


def _options(r: GuardResource) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=r.protect, ignore_changes=list(r.ignore_changes),
        delete_before_replace=r.delete_before_replace, aliases=[], custom_timeouts=None,
        additional_secret_outputs=list(r.additional_secret_outputs), parent=r.parent,
    )


def _run(result: Any) -> None:
    if inspect.isawaitable(result):
        asyncio.run(_await(result))


async def _await(result: Any) -> None:
    await result


def check(resources: Iterable[GuardResource], config: Mapping[str, Any],
          policies: Iterable[Policy] = ALL, rendered: RenderedObjects | None = None,
          checks: Iterable[RenderedCheck] = CHECKS,
          not_rendered: str = NOT_RENDERED) -> GuardReport:
    """Run the pack's policies over the resources, as the analyzer would, and the rendered
    checks over what the releases render; without `rendered`, each rendered check is reported
    not evaluated (`not_rendered` says why), never passed."""
    resources = [r for r in resources if r.type != STACK_TYPE]
    by_urn = {r.urn: r for r in resources}
    providers: dict[str, PolicyProviderResource] = {}
    for r in resources:
        if r.type.startswith("pulumi:providers:"):
            providers[r.urn] = PolicyProviderResource(
                r.type, unknown_checking_proxy(dict(r.props)), r.urn, r.name)

    def provider_of(r: GuardResource) -> PolicyProviderResource | None:
        # A provider reference is "<provider urn>::<provider id>".
        return providers.get(r.provider.rsplit("::", 1)[0]) if r.provider else None

    # What every policy sees of a resource, made once for all of them (policies read, never
    # write): its inputs behind the unknown-value check, and, for stack policies, the linked
    # graph of resources.
    shared = _Shared({r.urn: unknown_checking_proxy(dict(r.props)) for r in resources},
                     resources, provider_of)
    report = GuardReport()
    stack: RenderedStack | None = None  # what the rendered checks read, made once for all
    for policy in [*policies, *checks]:
        level = _level(policy, config)
        if level == EnforcementLevel.DISABLED:
            continue
        if level == EnforcementLevel.REMEDIATE:
            level = EnforcementLevel.MANDATORY  # as the analyzer reports it
        run = _PolicyRun(policy, level, _policy_values(policy, config), report, by_urn, shared)
        if not isinstance(policy, RenderedCheck):
            run.run(resources, provider_of)
        elif rendered is None:
            report.not_evaluated.append(NotEvaluated(policy.name, not_rendered))
        else:
            if stack is None:
                stack = RenderedStack(
                    resources=list(shared.linked().values()),
                    releases=[rendered.releases[r.urn] for r in resources
                              if r.type == RELEASE_TYPE and r.urn in rendered.releases],
                    applications=tuple(rendered.applications))
            run.run_rendered(stack)
    return report


@dataclass
class _Shared:
    props: dict[str, Any]
    resources: list[GuardResource]
    provider_of: Any
    _linked: dict[str, PolicyResource] | None = None

    def linked(self) -> dict[str, PolicyResource]:
        """The resources as a stack policy sees them: parents and (property) dependencies
        linked, built once for every policy that asks."""
        if self._linked is None:
            linked = {r.urn: PolicyResource(r.type, self.props[r.urn], r.urn, r.name,
                                            _options(r), self.provider_of(r), None, [], {})
                      for r in self.resources}
            for r in self.resources:
                node = linked[r.urn]
                node.parent = linked.get(r.parent or "")
                node.dependencies = [linked[d] for d in r.dependencies if d in linked]
                node.property_dependencies = {
                    key: [linked[d] for d in urns if d in linked]
                    for key, urns in r.property_dependencies.items()}
            self._linked = linked
        return self._linked


@dataclass
class _PolicyRun:
    """One policy over the resources, reporting into `report` as the analyzer would."""

    policy: Policy | RenderedCheck
    level: EnforcementLevel
    values: dict[str, Any]
    report: GuardReport
    by_urn: Mapping[str, GuardResource]
    shared: _Shared

    def _verdict(self, message: str, subject: GuardResource | None, urn: str | None,
                 enforcement: str, remediation: str | None) -> Verdict:
        return Verdict(
            policy=self.policy.name, enforcement=enforcement,
            severity=self.policy.severity.value if self.policy.severity else None,
            message=message, remediation=remediation,
            resource_type=subject.type if subject else None,
            resource_name=subject.name if subject else None,
            urn=subject.urn if subject else urn,
        )

    def _reporter(self, target: GuardResource | None):
        def report_violation(message: str, urn: str | None = None) -> None:
            subject = self.by_urn.get(urn) if urn else target
            self.report.violations.append(self._verdict(
                message, subject, urn, self.level.value, self.policy.remediation_steps))
        return report_violation

    def _attempt(self, validate, target: GuardResource | None) -> None:
        try:
            _run(validate())
        except UnknownValueError as error:
            self.report.cannot_run.append(self._verdict(
                f"can't run policy '{self.policy.name}' from policy pack '{PACK_NAME}' during "
                f"preview: {error}", target, None, EnforcementLevel.ADVISORY.value, None))
        except _NotApplicableError as error:
            self.report.not_applicable.append(
                (self.policy.name, error.reason or "", target.urn if target else None))

    def run(self, resources: list[GuardResource], provider_of) -> None:
        policy = self.policy
        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:
                args = ResourceValidationArgs(
                    r.type, self.shared.props[r.urn], r.urn, r.name, _options(r),
                    provider_of(r), dict(self.values))
                self._attempt(lambda a=args, t=r: policy.validate(a, self._reporter(t)), r)
        elif isinstance(policy, StackValidationPolicy):
            args = StackValidationArgs(list(self.shared.linked().values()), dict(self.values))
            self._attempt(lambda: policy.validate(args, self._reporter(None)), None)

    def run_rendered(self, stack: RenderedStack) -> None:
        check = self.policy
        assert isinstance(check, RenderedCheck)

        def validate() -> None:
            report = self._reporter(None)
            for message, urn in check.run(stack, dict(self.values)):
                report(message, urn)

        self._attempt(validate, None)


def rendered_releases(evaluation: Evaluation) -> dict[str, Release]:
    """An evaluation's rendered releases as the rendered checks take them, by Release URN."""
    return {r.resource.urn: Release(
        urn=r.resource.urn, name=r.release, namespace=r.namespace,
        chart=f"{r.chart.name} {r.chart.version}", objects=[o.object for o in r.objects])
        for r in evaluation.rendered}


def check_evaluation(evaluation: Evaluation, config: Mapping[str, Any] | None = None,
                     policies: Iterable[Policy] = ALL, checks: Iterable[RenderedCheck] = CHECKS,
                     not_rendered: str = NOT_RENDERED) -> GuardReport:
    """Run platform-guard over an evaluation with its stack's policy config (or `config`), and
    the rendered checks when its releases were rendered (else they are not evaluated)."""
    if config is None:
        assert evaluation.config is not None
        config = policy_config(evaluation.config)
    rendered = (RenderedObjects(rendered_releases(evaluation), tuple(evaluation.synced))
                if evaluation.is_rendered else None)
    return check([from_recording(r) for r in evaluation.resources], config, policies, rendered,
                 checks, not_rendered)
