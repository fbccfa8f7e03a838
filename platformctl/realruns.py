"""The cost report from real Pulumi runs, so CI with credentials shows the same table.

* `pulumi preview --json`: the preview digest (pulumi/pkg/backend/display/json.go): `config`,
  `steps` of `{op, urn, provider, oldState, newState, ...}` whose states are `apitype.ResourceV3`
  (`type`, `custom`, `inputs`, `parent`, `propertyDependencies`, ...). Secrets read "[secret]",
  values unknown until apply are the engine's placeholder; the cost model reports those unpriced.
* `pulumi stack output --json`: the program exports `costReport` (computed by the same cost
  model after `up`); this reads it back.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from platform_facts.costmodel import CostInput
from stacks import userfile
from stacks.config import ConfigError

# Steps whose new state is what will exist after the update.
_KEEP_OPS = {"same", "create", "update", "replace", "create-replacement", "import", "read",
             "refresh", "import-replacement"}
COST_SCHEMA = "platformctl.cost/v1"


def _component_of(urn: str) -> str | None:
    """The platform component nearest a resource in its URN's type chain
    (`...::platform:index:SecurityStack$platform:index:SecretsStack$aws:...::n` is the
    SecretsStack's), as the offline review attributes it."""
    parts = urn.split("::")
    if len(parts) < 4:
        return None
    for token in reversed(parts[2].split("$")[:-1]):
        if token.startswith("platform:"):
            return token.rsplit(":", 1)[-1]
    return None


# A preview digest of a few hundred resources runs to a few MB; this is far beyond one.
MAX_JSON_BYTES = 100_000_000


def _load(path: Path, what: str) -> Any:
    """The JSON file a user passes by path, read the one way user files are (stacks/userfile)."""
    if not path.exists():
        raise ConfigError(str(path), [f"{what} file not found"])
    text = userfile.read_text(path, str(path), max_bytes=MAX_JSON_BYTES)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(str(path), [f"not valid JSON ({exc.msg} at line {exc.lineno})"]) from None


def preview_plan(path: Path, region: str | None = None) -> tuple[list[CostInput], str]:
    """A `pulumi preview --json` digest's planned resources, as the cost model's inputs, and
    the region to price them in (given, else the digest's `aws:region`, else us-east-1)."""
    digest = _load(path, "preview JSON")
    if not isinstance(digest, dict) or "steps" not in digest:
        raise ConfigError(str(path), ["not a `pulumi preview --json` digest (no steps)"])
    region = region or (digest.get("config") or {}).get("aws:region") or "us-east-1"
    inputs = []
    for step in digest["steps"]:
        state = step.get("newState")
        if step.get("op") not in _KEEP_OPS or not state:
            continue
        urn = state.get("urn") or step.get("urn", "")
        inputs.append(CostInput(
            type=state["type"],
            name=urn.rsplit("::", 1)[-1],
            props=state.get("inputs") or {},
            urn=urn,
            component=_component_of(urn),
            property_dependencies=state.get("propertyDependencies") or {},
            custom=bool(state.get("custom", True)),
        ))
    return inputs, region


def from_stack_outputs(path: Path) -> dict[str, Any]:
    outputs = _load(path, "stack output JSON")
    report = outputs.get("costReport") if isinstance(outputs, dict) else None
    if not isinstance(report, dict) or "lines" not in report:
        raise ConfigError(str(path), ["no costReport output (is this `pulumi stack output "
                                      "--json` of a platform stack after `up`?)"])
    return report


def _line(line: dict[str, Any]) -> dict[str, Any]:
    amount = line.get("monthlyUsd")
    return {
        "component": line.get("component"), "resource_type": line.get("resourceType"),
        "resource_name": line.get("resourceName"), "key": line.get("key", ""),
        "item": line.get("item"),
        "monthly_usd": None if amount is None else float(Decimal(amount)),
        "detail": line.get("detail", ""), "assumption": line.get("assumption"),
        "unpriced_reason": line.get("unpricedReason"),
        "usage": bool(line.get("usage", False)),
    }


def cost_document(report: dict[str, Any], source: str) -> dict[str, Any]:
    """A cost document (the cost part of a review document) from a cost report's dict form."""
    lines = [_line(line) for line in report["lines"]]
    usage = sum((Decimal(str(line["monthly_usd"])) for line in lines
                 if line["usage"] and line["monthly_usd"] is not None), Decimal(0))
    total = Decimal(report["totalMonthlyUsd"])
    return {
        "schema": COST_SCHEMA,
        "source": source,
        "region": report["region"],
        "total_monthly_usd": float(total),
        # Reports from before the split carry no usage flags: all fixed, as they were read.
        "fixed_monthly_usd": float(Decimal(report.get("fixedMonthlyUsd", total - usage))),
        "usage_monthly_usd": float(Decimal(report.get("usageMonthlyUsd", usage))),
        # Every node group at maxSize (reports from before the ceiling carry none).
        "ceiling_monthly_usd": (float(Decimal(report["ceilingMonthlyUsd"]))
                                if report.get("ceilingMonthlyUsd") is not None else None),
        "cost": {
            "by_component": {k: float(Decimal(v)) for k, v in report["byComponent"].items()},
            "lines": lines,
            "unpriced_count": sum(1 for line in lines if line["monthly_usd"] is None),
        },
    }
