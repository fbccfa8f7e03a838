"""What the Pulumi CLI prints, rebuilt from an offline evaluation in the CLI's documented shapes,
for tests of `platformctl cost`:

* `pulumi preview --json` of a first preview (pulumi pkg/backend/display/json.go): `config`,
  `steps` of `{op, urn, provider, newState}` with `newState` an `apitype.ResourceV3` (`urn`,
  `custom`, `type`, `inputs`, `outputs`, `parent`, `provider`, `dependencies`,
  `propertyDependencies`, ...), `duration` in nanoseconds and `changeSummary`. On a first preview
  every input that comes from another resource's output is unknown: the engine's placeholder
  string (kept element-wise in lists). Secrets print as "[secret]".
* `pulumi stack output --json`: outputs by name, secrets as "[secret]".
"""

from __future__ import annotations

from typing import Any

from platformctl.recording import Evaluation, Secret

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _massage(value: Any) -> Any:
    if isinstance(value, Secret):
        return "[secret]"
    if isinstance(value, dict):
        return {k: _massage(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_massage(v) for v in value]
    return value


def _unknown_like(value: Any) -> Any:
    if isinstance(value, list):
        return [UNKNOWN for _ in value]
    return UNKNOWN


def preview_json(evaluation: Evaluation, project: str = "platform") -> dict[str, Any]:
    stack_urn = f"urn:pulumi:{evaluation.stack}::{project}::pulumi:pulumi:Stack::" \
                f"{project}-{evaluation.stack}"
    steps = [{"op": "create", "urn": stack_urn, "newState": {
        "urn": stack_urn, "custom": False, "type": "pulumi:pulumi:Stack", "inputs": {},
        "outputs": {}}}]
    for r in evaluation.resources:
        inputs = {}
        for key, value in r.inputs.items():
            came_from_outputs = bool(r.property_dependencies.get(key))
            inputs[key] = _unknown_like(value) if came_from_outputs else _massage(value)
        state: dict[str, Any] = {
            "urn": r.urn, "custom": r.custom, "type": r.type, "inputs": inputs, "outputs": {},
            "parent": r.parent or stack_urn, "protect": r.protect,
            "dependencies": r.dependencies, "propertyDependencies": r.property_dependencies,
        }
        if r.provider:
            state["provider"] = r.provider
        if r.additional_secret_outputs:
            state["additionalSecretOutputs"] = r.additional_secret_outputs
        step = {"op": "create", "urn": r.urn, "newState": state}
        if r.provider:
            step["provider"] = r.provider
        steps.append(step)
    assert evaluation.config is not None
    return {
        "config": {"aws:region": evaluation.config.region,
                   "platform:preset": evaluation.config.preset},
        "steps": steps,
        "duration": 1_234_000_000,
        "changeSummary": {"create": len(steps)},
    }


def stack_output_json(evaluation: Evaluation) -> dict[str, Any]:
    return {key: ("[secret]" if out.secret else _massage(out.value))
            for key, out in evaluation.outputs.items()}
