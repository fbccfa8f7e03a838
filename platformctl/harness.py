"""The offline evaluation harness: run the real program on a real stack file under Pulumi's mocks
and record what it registers. That recording is the project's offline plan; the tests, the
review command and (later) the policy adapter and the cost model all read it.

It works as Pulumi documents for unit tests (`pulumi.runtime.set_mocks`), with what PLATFORM.md
learned the hard way:

* each evaluation gets fresh mocks, a fresh root stack and `preview=False`, so every apply runs;
* the monitor records what `MockResourceArgs` lacks (parent, dependencies, provider, protect, ...)
  and marks `additionalSecretOutputs` secret in its answers, as the engine does;
* the program returns its outputs, which are resolved here with their secretness;
* the SDK's source positions (a stack trace walked and kept per resource, for the engine's
  display) are not collected: nothing here reads them, and they were a tenth of a 200-team
  review's time and memory (issue 19).

After the run, every recorded resource's inputs are checked against the types its SDK declares
(:mod:`platformctl.inputcheck`), standing in for the provider's Check step.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import resource_pb2, source_pb2
from pulumi.runtime.sync_await import _sync_await

from platformctl import stackfile
from platformctl.mocks import PlatformMocks
from stacks import config as config_model

if TYPE_CHECKING:
    from platformctl.rendering import RenderedRelease
    from platformctl.runtime_checks import Application

Program = Callable[[str], Mapping[str, Any]]

PROJECT_FILE = "Pulumi.yaml"


@dataclass(frozen=True)
class Secret:
    """A secret value in a recorded input or output. Prints masked."""

    value: Any

    def __repr__(self) -> str:
        return "[secret]"


def unwrap_secrets(value: Any) -> Any:
    if isinstance(value, Secret):
        return unwrap_secrets(value.value)
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


def mask_secrets(value: Any) -> Any:
    """The value with every secret replaced by the string `[secret]` (for display and snapshots)."""
    if isinstance(value, Secret):
        return "[secret]"
    if isinstance(value, dict):
        return {k: mask_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secrets(v) for v in value]
    return value


def _from_wire(value: Any) -> Any:
    """Deserialized RPC values -> plain Python, secrets as :class:`Secret`."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return Secret(_from_wire(value.get("value")))
        return {k: _from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_wire(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the wire has only doubles; the SDK sent an int
    if isinstance(value, pulumi.Resource):
        return f"<resource reference {type(value).__name__}>"
    return value


@dataclass
class RecordedResource:
    type: str
    name: str
    urn: str
    custom: bool
    inputs: dict[str, Any]
    parent: str | None
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    provider: str | None
    protect: bool
    delete_before_replace: bool
    retain_on_delete: bool
    ignore_changes: list[str]
    additional_secret_outputs: list[str]
    id: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    # The `aliases` option as the engine receives it: a former URN ({"urn": ...}) or a spec
    # ({"name", "type", "stack", "project", "parentUrn", "noParent"}; empty means "the same").
    aliases: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tags(self) -> dict[str, Any] | None:
        from platform_guard.sdk_types import LISTED_TAG_TYPES, tag_map

        tags = self.inputs.get("tags")
        if self.type in LISTED_TAG_TYPES and isinstance(tags, list):
            return tag_map(unwrap_secrets(tags))
        return unwrap_secrets(tags) if isinstance(tags, (dict, Secret)) else None


@dataclass(frozen=True)
class OutputValue:
    value: Any
    secret: bool

    def shown(self) -> Any:
        return "[secret]" if self.secret else mask_secrets(self.value)


@dataclass
class Evaluation:
    """What one evaluation of a stack registered and returned."""

    stack: str
    source: str
    config: config_model.PlatformConfig | None
    resources: list[RecordedResource]
    outputs: dict[str, OutputValue]
    warnings: list[str]
    seconds: float
    # The objects inside each Helm release, rendered by the real helm (platformctl.rendering);
    # empty until rendered: the policies never see them, as CrossGuard never does for real.
    rendered: list[RenderedRelease] = field(default_factory=list)
    # Whether the releases were rendered (a stack may have none): the checks of rendered objects
    # run only then, and are "not evaluated" otherwise.
    is_rendered: bool = False
    # The team services Argo CD would sync into the cluster (platformctl.synced), read with the
    # rendering: their pods share the nodes.
    synced: list[Application] = field(default_factory=list)

    def by_urn(self) -> dict[str, RecordedResource]:
        """Resources by URN, built once per list of resources (ancestors() asks per resource:
        rebuilding it each time made walking the tree quadratic)."""
        key = (id(self.resources), len(self.resources))
        cached = self.__dict__.get("_by_urn")
        if cached is None or cached[0] != key:
            cached = (key, {r.urn: r for r in self.resources})
            self.__dict__["_by_urn"] = cached
        return cached[1]

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def one(self, type_token: str, name: str) -> RecordedResource:
        matches = [r for r in self.resources if r.type == type_token and r.name == name]
        if len(matches) != 1:
            raise LookupError(f"{len(matches)} resources {type_token} '{name}'")
        return matches[0]

    def ancestors(self, resource: RecordedResource) -> Iterator[RecordedResource]:
        known = self.by_urn()
        current = known.get(resource.parent or "")
        while current is not None:
            yield current
            current = known.get(current.parent or "")

    def component_of(self, resource: RecordedResource) -> RecordedResource | None:
        return next((a for a in self.ancestors(resource) if not a.custom), None)

    def former_urns(self) -> dict[str, set[str]]:
        """Per resource URN, the URNs its `aliases` let it take over from state, as the engine
        resolves them: each alias of its own (a URN, or a spec laid over its current name,
        type, stack, project and parent) and, for each URN its parent may have had, the URN it
        had under that parent (the engine carries a parent's aliases down to its children;
        pulumi/pulumi tests/integration/aliases, `adopt_into_component`)."""
        known = self.by_urn()
        formers: dict[str, set[str]] = {}

        def of(resource: RecordedResource) -> set[str]:
            if resource.urn in formers:
                return formers[resource.urn]
            stack, project, _, _ = _urn_parts(resource.urn)
            parent = known.get(resource.parent or "")
            parents = {resource.parent or ""} | (of(parent) if parent else set())
            found: set[str] = set()
            for alias in resource.aliases:
                if alias.get("urn"):
                    found.add(alias["urn"])
                    continue
                if alias.get("noParent"):
                    alias_parents = {""}
                elif alias.get("parentUrn"):
                    alias_parents = {alias["parentUrn"]}
                else:
                    alias_parents = parents
                for alias_parent in alias_parents:
                    found.add(make_urn(alias.get("stack") or stack,
                                       alias.get("project") or project, alias_parent,
                                       alias.get("type") or resource.type,
                                       alias.get("name") or resource.name))
            for parent_urn in parents - {resource.parent or ""}:
                found.add(make_urn(stack, project, parent_urn, resource.type, resource.name))
            found.discard(resource.urn)
            formers[resource.urn] = found
            return found

        for resource in self.resources:
            of(resource)
        return formers


STACK_TYPE = "pulumi:pulumi:Stack"


def _urn_parts(urn: str) -> tuple[str, str, str, str]:
    """(stack, project, qualified type, name) of `urn:pulumi:<stack>::<project>::<type>::<name>`."""
    stack, project, qualified, name = urn.removeprefix("urn:pulumi:").split("::", 3)
    return stack, project, qualified, name


def make_urn(stack: str, project: str, parent_urn: str, type_: str, name: str) -> str:
    """A resource's URN as the engine makes it: its type qualified by its parent's whole type
    chain (the root stack left out), so moving a component under another changes the URNs of
    everything beneath it. (The SDK's mock monitor qualifies by the parent's own type only.)"""
    qualified = type_
    if parent_urn:
        parent_type = _urn_parts(parent_urn)[2]
        if parent_type != STACK_TYPE:
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def _alias(alias: Any) -> dict[str, Any]:
    if alias.WhichOneof("alias") == "urn":
        return {"urn": alias.urn}
    spec = alias.spec
    return {"name": spec.name, "type": spec.type, "stack": spec.stack, "project": spec.project,
            "parentUrn": spec.parentUrn, "noParent": spec.noParent}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that records every registration with its options, and answers with
    `additionalSecretOutputs` marked secret, as the engine does."""

    def __init__(self, mocks: pulumi.runtime.Mocks, recorded: list[RecordedResource] | None = None):
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = recorded if recorded is not None else []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return make_urn(pulumi.get_stack(), pulumi.get_project(), parent, type_, name)

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        urn = self.make_urn(request.parent, request.type, request.name)
        record = RecordedResource(
            type=request.type,
            name=request.name,
            urn=urn,
            custom=bool(request.custom),
            inputs={},
            parent=request.parent or None,
            dependencies=list(request.dependencies),
            property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
            provider=request.provider or None,
            protect=bool(request.protect),
            delete_before_replace=bool(request.deleteBeforeReplace),
            retain_on_delete=bool(request.retainOnDelete),
            ignore_changes=list(request.ignoreChanges),
            additional_secret_outputs=list(request.additionalSecretOutputs),
            aliases=[_alias(a) for a in request.aliases],
        )
        self.recorded.append(record)
        if request.type == STACK_TYPE:
            return resource_pb2.RegisterResourceResponse(urn=urn)

        pulumi_mocks._ensure_event_loop()
        inputs = rpc.deserialize_properties(request.object)
        record.inputs = _from_wire(inputs)
        resource_args = pulumi_mocks.MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=unwrap_secrets(record.inputs),
            provider=request.provider,
            resource_id=request.importId,
            custom=request.custom or False,
        )
        resource_id, state = self.mocks.new_resource(resource_args)
        record.id = resource_id
        record.outputs = dict(state)
        answer = dict(state)
        for key in request.additionalSecretOutputs:
            if key in answer:
                answer[key] = {rpc._special_sig_key: rpc._special_secret_sig, "value": answer[key]}
        obj_proto = _sync_await(rpc.serialize_properties(answer, {}))
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id, state)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=obj_proto)


class _WarningCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class InputCheckError(Exception):
    """The program gave a resource inputs its SDK does not declare (the real provider would
    reject them at Check)."""

    def __init__(self, source: str, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: inputs the provider would reject:\n{lines}")


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest directory holding `Pulumi.yaml`, from `start` (default: the working directory)
    upwards; else the checkout this package was installed from."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    return Path(__file__).resolve().parent.parent


def project_name(project_dir: Path) -> str:
    """The project's name, from its Pulumi.yaml (read as every user file is)."""
    from stacks import userfile

    path = project_dir / PROJECT_FILE
    document = userfile.read_yaml(path)
    if not isinstance(document, dict) or not isinstance(document.get("name"), str):
        raise config_model.ConfigError(str(path), [
            "name: (not set): required; the Pulumi project file names its project"])
    return document["name"]


def project_config(project_dir: Path) -> dict[str, Any]:
    """Pulumi.yaml's project-level `config:` (every stack's defaults): scalar values, or an
    object under `value:` as the CLI requires."""
    from stacks import userfile

    path = project_dir / PROJECT_FILE
    document = userfile.read_yaml(path) or {}
    raw = document.get("config") or {} if isinstance(document, dict) else {}
    if not isinstance(raw, dict):
        raise config_model.ConfigError(str(path), ["config: must be a mapping of keys to values"])
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            if set(value) != {"value"}:
                raise config_model.ConfigError(str(path), [
                    f"config.{key}: {sorted(value)}: a project-level value that is an object goes "
                    "under `value:`; allowed: a scalar, or {value: ...}"])
            value = value["value"]
        values[str(key)] = value
    return values


def read_stack_file(stack: str | Path, project_dir: Path | None = None) -> stackfile.StackFile:
    """Find and read a stack file as the CLI would hand it to the program: Pulumi.yaml's
    project-level config under the stack file's own."""
    project_dir = (project_dir or find_project_dir()).resolve()
    path = stackfile.resolve(stack, project_dir)
    label = path.name if path.resolve().parent == project_dir else str(path)
    return stackfile.read(path, project_name(project_dir), label, project_config(project_dir))


def load_config(stack: str | Path, project_dir: Path | None = None) -> config_model.PlatformConfig:
    """A stack's validated config model, without evaluating the program."""
    stack_file = read_stack_file(stack, project_dir)
    pulumi.runtime.set_all_config(stack_file.config, stack_file.secret_keys)
    try:
        return config_model.load(stack_file.label)
    finally:
        pulumi.runtime.set_all_config({}, [])


@contextlib.contextmanager
def _without_source_positions() -> Iterator[None]:
    """The SDK walks and keeps the Python stack of every resource it registers (for the engine's
    source positions); the offline monitor never reads them. If a future SDK renames this
    private hook, the evaluation still runs, only slower (tests/test_harness.py notices)."""
    original = getattr(pulumi_resource, "_get_stack_trace", None)
    if original is None:
        yield
        return
    pulumi_resource._get_stack_trace = source_pb2.StackTrace
    try:
        yield
    finally:
        pulumi_resource._get_stack_trace = original


def _default_program(source: str) -> Mapping[str, Any]:
    from stacks.platform import run

    return run(source)


async def _resolve_outputs(outputs: Mapping[str, Any]) -> dict[str, OutputValue]:
    resolved: dict[str, OutputValue] = {}
    for key, value in outputs.items():
        output = pulumi.Output.from_input(value)
        resolved[key] = OutputValue(
            value=_from_wire(await output.future()), secret=bool(await output.is_secret())
        )
    return resolved


def evaluate(
    stack: str | Path,
    project_dir: Path | None = None,
    program: Program | None = None,
    check_inputs: bool = True,
    observed: list[RecordedResource] | None = None,
) -> Evaluation:
    """Evaluate a stack (`dev`, `prod`, or a stack file's path) offline.

    Raises `ConfigError` for a bad stack file or configuration (nothing is registered then),
    and `InputCheckError` when a resource's inputs would not pass the provider's Check.
    `observed`, if given, receives every registration as it happens, even if the run fails."""
    from platformctl import inputcheck

    started = time.perf_counter()
    stack_file = read_stack_file(stack, project_dir)
    label = stack_file.label

    pulumi.runtime.set_all_config(stack_file.config, stack_file.secret_keys)
    region = stack_file.config.get("aws:region") or config_model.DEFAULT_REGION
    mocks = PlatformMocks(region=region)
    monitor = RecordingMonitor(mocks, observed)
    warnings = _WarningCollector()
    logger = logging.getLogger(f"platformctl.engine.{id(monitor)}")
    logger.propagate = False
    logger.addHandler(warnings)

    run_program = program or _default_program
    captured: dict[str, Any] = {}

    @pulumi.runtime.test
    def _run():
        outputs = run_program(label)

        async def collect() -> None:
            captured.update(await _resolve_outputs(outputs))

        return pulumi.Output.from_input(collect())

    try:
        with _without_source_positions():
            # A fresh root stack (and no transformations) per evaluation.
            pulumi_settings.ROOT.set(None)
            pulumi.runtime.set_mocks(mocks, project=stack_file.project, stack=stack_file.stack,
                                     preview=False, logger=logger, monitor=monitor)
            _run()
        cfg = config_model.load(label)  # the run validated it; keep the model for the report
    finally:
        pulumi.runtime.set_all_config({}, [])

    warnings_seen = list(warnings.messages)
    if program is None:
        import stacks

        program_root = Path(stacks.__file__).resolve().parent.parent
        project_root = stack_file.path.resolve().parent
        if (project_root / "stacks").is_dir() and project_root != program_root:
            warnings_seen.append(
                f"the program evaluated is the one in {program_root}, not the stacks/ in "
                f"{project_root}: run platformctl from that checkout to evaluate its code")
    evaluation = Evaluation(
        stack=stack_file.stack,
        source=label,
        config=cfg,
        resources=[r for r in monitor.recorded if r.type != STACK_TYPE],
        outputs=captured,
        warnings=warnings_seen,
        seconds=0.0,
    )
    if check_inputs:
        problems = inputcheck.check(evaluation.resources)
        if problems:
            raise InputCheckError(label, problems)
    evaluation.seconds = time.perf_counter() - started
    return evaluation


__all__ = [
    "Evaluation",
    "InputCheckError",
    "OutputValue",
    "RecordedResource",
    "Secret",
    "evaluate",
    "find_project_dir",
    "mask_secrets",
    "unwrap_secrets",
]
