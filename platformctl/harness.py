"""The offline evaluation harness: run the real program on a real stack file under Pulumi's mocks
and record what it registers. That recording is the project's offline plan; the tests, the
review pipeline, the policy adapter and the cost model all read it.

It works as Pulumi documents for unit tests (`pulumi.runtime.set_mocks`), with what
docs/harness.md records of how mocks differ from the engine:

* each evaluation gets fresh mocks, a fresh root stack and `preview=False`, so every apply runs;
* the monitor records what `MockResourceArgs` lacks (parent, dependencies, provider, protect, ...)
  and marks `additionalSecretOutputs` secret in its answers, as the engine does;
* the program returns its outputs, which are resolved here with their secretness;
* the SDK's source positions (a stack trace walked and kept per resource, for the engine's
  display) are not collected: nothing here reads them, and they were a tenth of a 200-team
  review's time and memory (docs/review.md, "At scale").

After the run, every recorded resource's inputs are checked against the types its SDK declares
(:mod:`platformctl.inputcheck`), standing in for the provider's Check step.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.proto import resource_pb2, source_pb2
from pulumi.runtime.sync_await import _sync_await

from platformctl import stackfile
from platformctl.mocks import PlatformMocks
from platformctl.recording import (
    STACK_TYPE,
    Evaluation,
    OutputValue,
    RecordedResource,
    Secret,
    make_urn,
    unwrap_secrets,
)
from stacks import config as config_model

Program = Callable[[str], Mapping[str, Any]]

PROJECT_FILE = "Pulumi.yaml"


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
            replace_on_changes=list(request.replaceOnChanges),
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
        with contextlib.chdir((project_dir or find_project_dir()).resolve()):
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
    # The engine's log for this evaluation alone: a logger of its own, not registered with
    # `logging` (a registered one per evaluation was never freed, nor its warnings).
    logger = logging.Logger("platformctl.engine")
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
        # The program runs where Pulumi runs it, in the project directory: the paths a stack
        # file names (platform:database.caBundleFile) are relative to it.
        with _without_source_positions(), contextlib.chdir(
                (project_dir or find_project_dir()).resolve()):
            # A fresh root stack (and no transformations) per evaluation.
            pulumi_settings.ROOT.set(None)
            pulumi.runtime.set_mocks(mocks, project=stack_file.project, stack=stack_file.stack,
                                     preview=False, logger=logger, monitor=monitor)
            _run()
            cfg = config_model.load(label)  # the run validated it; keep it for the report
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
    "InputCheckError",
    "RecordingMonitor",
    "evaluate",
    "find_project_dir",
    "load_config",
    "project_config",
    "read_stack_file",
]
