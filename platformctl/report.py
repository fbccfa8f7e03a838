"""The review document as people read it: the terminal summary and details (rich), the
pull-request comment (markdown, with the cost pie) and JSON. Every output is rendered from the
one document (platformctl.review, validated by platformctl.document), so they cannot disagree.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from platformctl.review import counted, dollars, named, signed_dollars, verdict


def _tree(doc: Mapping[str, Any]) -> Tree:
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    keys = {r["key"] for r in doc["resources"]}
    for r in doc["resources"]:
        parent = r["parent"] if r["parent"] in keys else None
        children.setdefault(parent, []).append(r)

    def count(key: str) -> int:
        return sum(1 + count(c["key"]) for c in children.get(key, []))

    root = Tree(Text.assemble(("stack ", "dim"), (doc["stack"], "bold"),
                              (f"  ({doc['resource_count']} resources)", "dim")))

    def add(node: Tree, parent: str | None) -> None:
        for r in sorted(children.get(parent, []), key=lambda r: (r["type"], r["name"])):
            label = Text()
            label.append(r["type"], style="cyan" if r["custom"] else "bold magenta")
            label.append("  ")
            label.append(r["name"], style="bold")
            if not r["custom"]:
                label.append(f"  ({count(r['key'])} resources)", style="dim")
            if r["protect"]:
                label.append("  protected", style="yellow")
            add(node.add(label), r["key"])

    add(root, None)
    return root


def _notes(doc: Mapping[str, Any]) -> list[str]:
    notes: list[str] = []
    for line in doc["cost"]["lines"]:
        if line["assumption"] and line["assumption"] not in notes:
            notes.append(line["assumption"])
    return notes


def _sorted_lines(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return sorted(doc["cost"]["lines"],
                  key=lambda x: (x["component"] or "", -(x["monthly_usd"] or 0)))


SUMMARY_LINES = 24  # an 80x24 terminal: the verdict, the cost and the change on one screen
PROMPT_LINES = 2  # the shell's prompt after it may take two lines (a path line, then "$ ")


def summary_lines(console: Console) -> int:
    """The lines the summary may take: the terminal's height (24 when not a terminal, as an
    80x24 one), less a two-line prompt that follows, so its first line does not scroll off."""
    height = console.size.height if console.is_terminal else SUMMARY_LINES
    return max(SUMMARY_LINES, height) - PROMPT_LINES

BAR_WIDTH = 20


def component_rows(doc: Mapping[str, Any]) -> list[tuple[str, int, float]]:
    """(component, resources, USD/month) per component, the costliest first: the same
    attribution as the cost table (each resource to its nearest platform component)."""
    resources = Counter(r["component"] or "stack" for r in doc["resources"]
                        if not r["type"].startswith("platform:"))
    costs = doc["cost"]["by_component"]
    names = set(resources) | set(costs)
    return sorted(((n, resources.get(n, 0), float(costs.get(n, 0.0))) for n in names),
                  key=lambda row: (-row[2], -row[1], row[0]))


def _bar(amount: float, largest: float) -> str:
    if largest <= 0 or amount <= 0:
        return ""
    return "█" * max(1, round(BAR_WIDTH * amount / largest))


def _first_line(text: str) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else ""


def render_summary(doc: Mapping[str, Any], console: Console, details_hint: bool = True) -> None:
    """The verdict, the cost against the budget, the change and where the money and resources
    are, in at most SUMMARY_LINES lines, each cut to the terminal's width (long lists end in a
    count; `--details` and the JSON have them all)."""
    def line(text: str | Text, style: str = "") -> None:
        console.print(text if isinstance(text, Text) else Text(text, style=style),
                      no_wrap=True, overflow="ellipsis", crop=True)

    kind, said = verdict(doc)
    head: list[tuple[str | Text, str]] = [
        (Text.assemble(("Review of ", "bold"), (doc["stack"], "bold"),
                       (f"  {doc['source']} · preset {doc['preset']} · {doc['region']}", "dim")),
         ""),
        (said, {"blocked": "bold red", "not evaluated": "bold red", "advisory": "bold yellow",
                "passes": "bold green"}[kind])]
    head += [(f"PROJECT: {p}", "bold red") for p in doc.get("project_problems") or ()]
    budget, total = doc["budget_monthly_usd"], doc["total_monthly_usd"]
    share = f" · {total / budget:.0%} of budget" if budget else ""
    money = (f"${total:,.2f}/month of ${budget:,.2f} · headroom "
             f"{dollars(doc['headroom_monthly_usd'])}{share}")
    parts = f"fixed ${doc['fixed_monthly_usd']:,.2f} + usage ${doc['usage_monthly_usd']:,.2f}"
    if len(money) + 3 + len(parts) <= console.size.width:
        head.append((f"{money} · {parts}", "bold"))
    else:  # never cut a figure: two lines on a narrow terminal
        head += [(money, "bold"), (parts, "bold")]
    if doc.get("ceiling"):
        head.append((ceiling_text(doc["ceiling"]), "bold"))
    change = doc.get("diff")
    if change is not None:
        cost, resources = change["cost"], change["resources"]
        # `pulumi preview`'s footer where the change counts it; else the lists' lengths.
        counts = (preview_counts(resources["counts"]) if resources.get("counts") else
                  ", ".join(f"{len(resources.get(k, []))} {k}"
                            for k in ("added", "removed", "changed", "replaced")))
        head.append((f"Against {change['base']}: {cost['summary']} "
                     f"(${cost['base_total_monthly_usd']:,.2f} -> "
                     f"${cost['total_monthly_usd']:,.2f})", "bold"))
        head.append((f"Resources against {change['base']}: {counts}", "bold"))
    if doc.get("showback"):
        head.append((showback_text(doc["showback"]), ""))
    policies = doc["policies"]
    listed = [("mandatory", v) for v in policies["mandatory"]] + [
        ("advisory", v) for v in policies["advisory"]]
    warnings = [_first_line(w) for w in doc["warnings"]]
    section = doc.get("rendered") or {"releases": [], "object_count": 0}
    rows = component_rows(doc)
    # What follows the table, made first: the table gets the lines that are left.
    # One count everywhere: the plan's resources, of which the components themselves (the
    # rows' total is the rest, the same number as the comment's table).
    grouped = sum(row[1] for row in rows)
    tail: list[tuple[str, str]] = [(f"{doc['resource_count']} resources: {grouped} in "
                                    f"{len(rows)} components, and the "
                                    f"{doc['resource_count'] - grouped} components themselves",
                                    "")]
    if section["releases"]:
        biggest = sorted(section["releases"], key=lambda r: -r["object_count"])
        tail.append((f"{len(biggest)} Helm releases render {section['object_count']} objects: "
                     + ", ".join(f"{r['release']} {r['object_count']}" for r in biggest), ""))
    hint = [("--details: the resource tree, releases, capacity, outputs, every cost line "
             "and violation · --format json: everything", "dim")] if details_hint else []

    def listing(violations: int, warned: int) -> list[tuple[str, str]]:
        out = [(f"{level:9} [{v['policy']}] {_first_line(v['message'])}",
                "red" if level == "mandatory" else "yellow") for level, v in listed[:violations]]
        if len(listed) > violations:
            out.append((f"          ... and {len(listed) - violations} more", "dim"))
        out += [(f"warning   {warning}", "yellow") for warning in warnings[:warned]]
        if len(warnings) > warned:
            out.append((f"          ... and {len(warnings) - warned} more warnings", "dim"))
        return out

    # The table needs its header and two rows; on a short screen, fewer violations and
    # warnings are listed (all are counted) rather than the screen overflowing.
    budget_lines = summary_lines(console) - len(head) - 3
    for violations, warned in ((4, 2), (3, 1), (2, 1), (1, 1), (1, 0)):
        lines_after = [*tail, *listing(violations, warned), *hint]
        if budget_lines - len(lines_after) >= 2:
            break
    tail = lines_after
    room = budget_lines - len(tail)  # blank lines around the table, its header
    shown = rows if len(rows) <= room else rows[:max(1, room - 1)]
    table = Table(show_edge=False, box=None, padding=(0, 1), pad_edge=False)
    table.add_column("component", no_wrap=True)
    table.add_column("resources", justify="right", no_wrap=True)
    table.add_column("USD/month", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True, style="cyan")
    largest = max((row[2] for row in rows), default=0.0)
    for name, count, amount in shown:
        table.add_row(name, str(count), f"{amount:,.2f}", _bar(amount, largest))
    if len(shown) < len(rows):
        rest = rows[len(shown):]
        table.add_row(Text(f"{len(rest)} others", style="dim"),
                      str(sum(r[1] for r in rest)), f"{sum(r[2] for r in rest):,.2f}",
                      _bar(sum(r[2] for r in rest), largest))
    for text, style in head:
        line(text, style)
    console.print()
    console.print(table)
    console.print()
    for text, style in tail:
        line(text, style)


def _without_outputs(warning: str, outputs: Mapping[str, Any]) -> str:
    """A warning without the text a stack output already shows (printed once, as the output)."""
    shown = [(len(value.strip()), key, value.strip()) for key, out in outputs.items()
             if isinstance(value := out.get("value"), str) and len(value.strip()) > 40
             and value.strip() in warning]
    if not shown:
        return warning
    _, key, value = max(shown)  # the longest: the whole text, not a command inside it
    return warning.replace(value, "").strip() + f" (the steps: the {key} output above)"


def render_text(doc: Mapping[str, Any], console: Console, details: bool = False,
                diff: bool = False) -> None:
    """The summary (one screen), and with `details` everything behind it; `diff`: the old and
    new value of each changed input (`pulumi preview --diff`), with the change."""
    render_summary(doc, console, details_hint=not details)
    if diff and doc["diff"] is not None and not details:
        console.print()
        _render_diff_text(doc["diff"], console, values=True)
    if not details:
        return
    console.print()
    console.print(Text.assemble(("Details of ", "bold"), (doc["stack"], "bold green"),
                                (f"  from {doc['source']}", "dim")))
    console.print(Text(f"preset {doc['preset']} · environment {doc['environment']} · "
                       f"{doc['region']} · budget ${doc['budget_monthly_usd']:,.2f}/month",
                       style="dim"))
    console.print()
    console.print(_tree(doc))
    console.print()
    types = Table(title="Resources by type", title_justify="left", show_edge=False)
    types.add_column("type")
    types.add_column("count", justify="right")
    for token, n in doc["resource_counts"].items():
        types.add_row(token, str(n))
    types.add_row(Text("total", style="bold"), Text(str(doc["resource_count"]), style="bold"))
    console.print(types)
    console.print()
    render_releases_text(doc, console)
    render_capacity_text(doc, console)
    outputs = Table(title="Stack outputs", title_justify="left", show_edge=False)
    outputs.add_column("output")
    outputs.add_column("value", overflow="fold")
    for key, out in doc["outputs"].items():
        value = out["value"]
        if key == "costReport":
            value = f"{len(value['lines'])} cost lines (below)" if isinstance(value, dict) else value
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        outputs.add_row(key, Text(text, style="yellow" if out["secret"] else ""))
    console.print(outputs)
    for problem in doc.get("project_problems") or ():
        console.print(Text(f"project: {problem}", style="bold red"))
    for warning in doc["warnings"]:
        console.print(Text(f"warning: {_without_outputs(warning, doc['outputs'])}",
                           style="yellow"))
    console.print()
    render_cost_text(doc, console)
    console.print(Text(f"budget ${doc['budget_monthly_usd']:,.2f}/month, headroom "
                       f"{dollars(doc['headroom_monthly_usd'])}", style="bold"))
    console.print(Text(f"fixed ${doc['fixed_monthly_usd']:,.2f} + usage at the assumptions "
                       f"${doc['usage_monthly_usd']:,.2f}"))
    if doc.get("ceiling"):
        console.print(Text(ceiling_text(doc["ceiling"]), style="bold"))
        for pool in doc["ceiling"]["node_groups"]:
            console.print(Text(pool_text(pool)))
        if doc["ceiling"].get("commitment"):
            console.print(Text(commitment_text(doc["ceiling"]["commitment"])))
    if doc.get("showback"):
        console.print(Text(showback_text(doc["showback"])))
        for team in doc["showback"]["teams"]:
            console.print(Text(team_text(team)))
    console.print()
    policies = doc["policies"]
    unevaluated = policies.get("not_evaluated") or []
    if not (policies["mandatory"] or policies["advisory"] or policies["cannot_run"]
            or unevaluated):
        console.print(Text("platform-guard: no violations", style="green"))
    for entry in unevaluated:
        console.print(Text(f"not evaluated [{entry['policy']}] {entry['reason']}",
                           style="bold red"))
    for title, kind, style in (("mandatory", "mandatory", "bold red"),
                               ("advisory", "advisory", "yellow"),
                               ("could not run", "cannot_run", "dim")):
        if policies[kind]:
            console.print(Text(f"platform-guard {title} ({len(policies[kind])})", style=style))
            for v in policies[kind]:
                console.print(Text(f"  [{v['policy']}] {v['message']}", style=style))
    if doc["diff"] is not None:
        console.print()
        _render_diff_text(doc["diff"], console, values=diff)


_HIGHLIGHTS = (("deploy", ("Deployment",)), ("sts", ("StatefulSet",)), ("ds", ("DaemonSet",)),
               ("job", ("Job", "CronJob")), ("crd", ("CustomResourceDefinition",)),
               ("webhook", ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")))


def _top_kinds(counts: Mapping[str, int]) -> str:
    """What matters of a release at a glance: what runs pods, the CRDs and the webhooks."""
    shown = [f"{n} {label}" for label, kinds in _HIGHLIGHTS
             if (n := sum(counts.get(kind, 0) for kind in kinds))]
    return ", ".join(shown) or "-"


def render_releases_text(doc: Mapping[str, Any], console: Console) -> None:
    """What each Helm release would create, as the real helm rendered it."""
    section = doc.get("rendered") or {"releases": [], "object_count": 0}
    if not section["releases"]:
        return
    table = Table(title=f"Helm releases, rendered ({section['object_count']} objects)",
                  title_justify="left", show_edge=False)
    for column in ("release", "objects"):
        table.add_column(column, justify="right" if column == "objects" else "left",
                         no_wrap=True)
    table.add_column("workloads, CRDs, webhooks", no_wrap=True)
    table.add_column("chart version", no_wrap=True)
    for r in section["releases"]:
        table.add_row(f"{r['namespace']}/{r['release']}", str(r["object_count"]),
                      _top_kinds(r["object_counts"]), r["version"])
    console.print(table)
    for r in section["releases"]:
        if r["placeholders"]:
            console.print(Text(f"  {r['release']}: rendered with placeholders for "
                               f"{', '.join(r['placeholders'])}", style="dim"))
    console.print()


def _capacity_cell(pair: Mapping[str, float], unit: str = "") -> str:
    used, held = pair["requested"], pair["allocatable"]
    return f"{used:,.0f}{unit} / {held:,.0f}{unit} ({held - used:+,.0f})"


def _capacity_nodes(row: Mapping[str, Any]) -> str:
    """'3: system 3 x t4g.medium' (each group's nodes in the scenario)."""
    groups = row.get("node_groups") or []
    if not groups:  # a document from before node groups were reported
        return str(row["nodes"])
    return f"{row['nodes']}: " + ", ".join(
        f"{g['name']} {g['nodes']} x {g['instance_types']}" for g in groups)


def _capacity_node_shapes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per node shape: the groups of that shape (a zonal group's per-AZ groups share
    one) and what one of their nodes holds (allocatable)."""
    shapes: dict[tuple[Any, ...], list[str]] = {}
    for row in rows:
        for g in row.get("node_groups") or []:
            shape = (g["instance_types"], g["pods_per_node"], g["cpu_millicores_per_node"],
                     g["memory_mib_per_node"])
            names = shapes.setdefault(shape, [])
            if g["name"] not in names:
                names.append(g["name"])
    return [f"{', '.join(names)} ({types}): one node holds {pods} pods, {cpu:,}m CPU, "
            f"{memory:,} MiB (allocatable)"
            for (types, pods, cpu, memory), names in shapes.items()]


def render_capacity_text(doc: Mapping[str, Any], console: Console) -> None:
    """Pods, CPU and memory requested against allocatable, per scenario."""
    rows = doc.get("capacity") or []
    if not rows:
        return
    table = Table(title="Capacity: requested / allocatable (headroom)", title_justify="left",
                  show_edge=False)
    for column in ("scenario", "nodes", "pods", "CPU", "memory", ""):
        table.add_column(column, justify="left" if column in ("scenario", "nodes", "")
                         else "right")
    for row in rows:
        table.add_row(row["scenario"], _capacity_nodes(row), _capacity_cell(row["pods"]),
                      _capacity_cell(row["cpu_millicores"], "m"),
                      _capacity_cell(row["memory_mib"], " MiB"),
                      Text("fits", style="green") if row["fits"]
                      else Text("does not fit", style="bold red"))
    console.print(table)
    for line in _capacity_node_shapes(rows):
        console.print(Text(f"  {line}", style="dim"))
    unknown = sorted({u for row in rows for u in row["requests_unknown"]})
    if unknown:
        console.print(Text(f"  requests not known (counted as pod slots only): "
                           f"{', '.join(unknown)}", style="dim"))
    for line in placement_lines(doc.get("placement")):
        console.print(Text(f"  {line}", style="dim"))
    console.print()


def placement_lines(placement: Mapping[str, Any] | None) -> list[str]:
    """What placing the pods one by one, and draining each node, found."""
    if not placement:
        return []
    lines = [f"placed pod by pod on {counted(len(placement['nodes']), 'node')}: "
             + (f"{len(placement['unplaced'])} find no node" if placement["unplaced"]
                else "every pod finds a node")]
    drains = placement["drains"]
    if drains:
        pending = [d for d in drains if d["pending"]]
        lines.append("each node drained in turn: "
                     + (f"{len(pending)} drain(s) leave pods with nowhere to go" if pending
                        else "every other pod finds another node"))
        for d in drains:
            if d["waiting"]:
                lines.append(f"draining {d['node']} ({d['zone']}): "
                             f"{counted(len(d['waiting']), 'pod')} wait for a new node in {d['zone']} "
                             "(EBS volume): " + ", ".join(w.split(" (")[0] for w in d["waiting"]))
    return lines


def render_cost_text(doc: Mapping[str, Any], console: Console) -> None:
    """The cost table of a review or cost document, usage assumptions as footnotes."""
    notes = _notes(doc)
    costs = Table(title=f"Monthly cost estimate ({doc['region']}, on-demand list prices)",
                  title_justify="left", show_edge=False)
    for column in ("component", "resource", "item"):
        costs.add_column(column)
    costs.add_column("USD/month", justify="right")
    for line in _sorted_lines(doc):
        item = Text(line["item"])
        if line["assumption"]:
            item.append(f"  assumed [{notes.index(line['assumption']) + 1}]", style="dim")
        if line["unpriced_reason"]:
            item.append(f"\n{line['unpriced_reason']}", style="dim")
        amount = "unpriced" if line["monthly_usd"] is None else f"{line['monthly_usd']:,.2f}"
        costs.add_row(line["component"] or "", line["resource_name"], item, amount)
    for component, amount in doc["cost"]["by_component"].items():
        costs.add_row(Text(component, style="bold"), "", Text("subtotal", style="bold"),
                      Text(f"{amount:,.2f}", style="bold"))
    costs.add_row(Text("total", style="bold"), "", "",
                  Text(f"{doc['total_monthly_usd']:,.2f}", style="bold"))
    console.print(costs)
    for index, note in enumerate(notes, 1):
        console.print(Text(f"[{index}] {note}", style="dim"))


def preview_counts(counts: Mapping[str, int]) -> str:
    """`pulumi preview`'s footer: "2 to create, 1 to update, 8 to replace, 1 to delete, 220
    unchanged" (and how many it cannot judge)."""
    words = [f"{counts[k]} to {k}" for k in ("create", "update", "replace", "delete")
             if counts.get(k)]
    if counts.get("unknown"):
        words.append(f"{counts['unknown']} replace or update not known")
    if counts.get("refused"):
        words.append(f"{counts['refused']} refused by the API (Kubernetes or AWS)")
    words.append(f"{counts.get('unchanged', 0)} unchanged")
    return ", ".join(words)


def _change_detail(r: Mapping[str, Any], markdown: bool = False, values: bool = False) -> str:
    """The inputs that changed, the ones forcing a replacement marked, and why; `values`: each
    with its old and new value (secrets masked), as `pulumi preview --diff` shows them."""
    code = (lambda x: f"`{x}`") if markdown else (lambda x: x)  # noqa: E731
    forced = set(r.get("replace_fields", ()))
    marks = {"replace": " (forces replacement)", "refused": " (immutable)"}

    def shown(key: str) -> str:
        value = (r.get("values") or {}).get(key)
        if not values or value is None:
            return ""
        return f": {code(value['old'])} → {code(value['new'])}"

    inputs = ", ".join(code(k) + shown(k) + (marks.get(r.get("action"), "") if k in forced
                                             else "")
                       for k in r.get("changed_inputs", []))
    parts = [inputs] if inputs else []
    if r.get("replaced_because"):
        parts.append("uses the outputs of replaced " + ", ".join(
            code(k.split("::", 1)[1]) for k in r["replaced_because"]))
    if r.get("action") == "replace" and r.get("dependents"):
        parts.append(f"{counted(len(r['dependents']), 'other resource')} depend on it")
    if r.get("conditional"):
        parts.append("the provider replaces on some changes of it only")
    if r.get("action") in ("unknown", "refused") and r.get("reason"):
        parts.append(r["reason"])
    if r.get("action") == "replace" and r.get("reason") == "its replaceOnChanges option":
        parts.append("replaced by " + r["reason"])
    if r.get("protect") and r.get("action") == "replace":
        parts.append("PROTECTED")
    return "; ".join(parts)


def resource_cost_changes(change: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """What each resource's monthly cost does in a change (all its cost lines): "+$33.98" for
    one created or a cost it gains, "-$1.10" for one deleted or a cost it loses, "$a -> $b"
    for one whose cost moves (Infracost's per-resource column)."""
    out = {}
    for r in change["cost"].get("by_resource") or ():
        before, after = r["before_monthly_usd"], r["after_monthly_usd"]
        out[(r["resource_type"], r["resource_name"])] = (
            signed_dollars(after - before) if 0 in (before, after)
            else f"${before:,.2f} -> ${after:,.2f}")
    return out


def _render_diff_text(change: Mapping[str, Any], console: Console, values: bool = False) -> None:
    console.print(Text(f"Changes against {change['base']}", style="bold"))
    resources = change["resources"]
    costs = resource_cost_changes(change)

    def cost(r: Mapping[str, Any]) -> str:
        said = costs.get((r["type"], r["name"]))
        return f"  {said}/month" if said else ""

    for kind, word, style in (("added", "create", "green"), ("removed", "delete", "red")):
        for r in resources[kind]:
            console.print(Text(f"  {word:8} {r['type']}  {r['name']}{cost(r)}", style=style))
    for r in resources["changed"]:
        action = r.get("action", "update")
        console.print(Text(f"  {action:8} {r['type']}  {r['name']}{cost(r)}  "
                           f"{_change_detail(r, values=values)}",
                           style={"replace": "bold red", "refused": "bold red",
                                  "unknown": "magenta"}.get(action, "yellow")))
    for r in resources.get("replaced", []):
        console.print(Text(f"  replace  {r['type']}  {r['name']}  (its URN changes without an "
                           f"alias: pulumi up deletes it and creates it anew)", style="bold red"))
    if resources.get("counts"):
        console.print(Text("  " + preview_counts(resources["counts"]), style="bold"))
    moved = resources.get("moved", [])
    if moved:
        console.print(Text(f"  moved    {len(moved)} resources to a new place in the tree, adopted "
                           f"through aliases (nothing replaced)", style="dim"))
    objects = change.get("rendered") or {}
    if objects.get("note"):
        console.print(Text(f"  rendered objects: {objects['note']}", style="dim"))
    per_release: dict[str, Counter] = {}
    for kind in ("added", "removed", "changed"):
        for key in objects.get(kind, []):
            per_release.setdefault(key.split(":", 1)[0], Counter())[kind] += 1
    for release, counts in sorted(per_release.items()):  # the objects themselves: --format json
        summary = ", ".join(f"{counts[k]} {k}" for k in ("added", "removed", "changed") if counts[k])
        console.print(Text(f"  rendered {release}: {summary}", style="yellow"))
    for gone in objects.get("crd_versions_removed", []):
        console.print(Text(f"  CRD {gone['crd']} no longer serves {gone['api']}"
                           + (f": {gone['kind']} objects still use it" if gone["in_use"] else ""),
                           style="bold red" if gone["in_use"] else "yellow"))
    for v in change["violations"]["new"]:
        console.print(Text(f"  new violation [{v['policy']}] {v['message']}", style="red"))
    for v in change["violations"]["resolved"]:
        console.print(Text(f"  resolved [{v['policy']}] {v['message']}", style="green"))
    for line in change["cost"]["lines"]:
        console.print(Text(f"  {line['summary']}"))
    console.print(Text(f"  {change['cost']['summary']} (${change['cost']['base_total_monthly_usd']:,.2f}"
                       f" -> ${change['cost']['total_monthly_usd']:,.2f})", style="bold"))


def ceiling_text(ceiling: Mapping[str, Any]) -> str:
    """One line: the plan at its ceiling against the stack's share of the organisation's cap."""
    return (f"ceiling ${ceiling['total_monthly_usd']:,.2f}/month of "
            f"${ceiling['budget_monthly_usd']:,.2f} · headroom "
            f"{dollars(ceiling['headroom_monthly_usd'])} (every node group at maxSize)")


def showback_text(showback: Mapping[str, Any]) -> str:
    """One line: each team's quota priced (its dominant share of the nodes at maxSize)."""
    teams = ", ".join(f"{t['team']} ${t['monthly_usd']:,.2f}" for t in showback["teams"])
    return (f"team quotas ${showback['teams_monthly_usd']:,.2f}/month of the nodes' "
            f"${showback['fleet_monthly_usd']:,.2f} at maxSize: {teams}")


def team_text(team: Mapping[str, Any]) -> str:
    return (f"  team {team['team']} ({', '.join(team['namespaces'])}): quota "
            f"{team['cpu_millicores']:,.0f}m CPU, {team['memory_mib'] / 1024:,.2f} GiB = "
            f"{team['share_percent']:g}% of the nodes' {team['dominant']} at maxSize, "
            f"${team['monthly_usd']:,.2f}/month")


def commitment_text(commitment: Mapping[str, Any]) -> str:
    percent = commitment["needed_percent"]
    bar = (f"would need to save ${commitment['needed_monthly_usd']:,.2f} "
           f"({percent:g}%) to buy one more node at the ceiling" if percent else
           "is not needed for one more node at the ceiling")
    return (f"  a 1-year commitment on the on-demand lines "
            f"(${commitment['on_demand_monthly_usd']:,.2f}/month at the ceiling) {bar}; "
            "the model prices none (no sourced rates)")


def pool_text(pool: Mapping[str, Any]) -> str:
    return (f"  node group {pool['pool']}: {pool['desired_size']} desired, maxSize "
            f"{pool['max_size']} (largest within the ceiling budget: "
            f"{pool['largest_allowed_max_size']}); one more node "
            f"${pool['per_node_monthly_usd']:,.2f}/month")


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def cost_markdown(doc: Mapping[str, Any], stack: str | None = None) -> list[str]:
    """The cost table of a review or cost document, as markdown lines (collapsed)."""
    out = ["<details><summary>Cost, line by line</summary>", "",
           "| component | resource | item | USD/month |", "|---|---|---|---:|"]
    rows = []
    for line in _sorted_lines(doc):
        amount = "unpriced" if line["monthly_usd"] is None else f"{line['monthly_usd']:,.2f}"
        usage = " *(assumed usage or price)*" if line["assumption"] else ""
        # How it is priced, with the unit price ("131.40 GB x $0.09"), as Infracost shows it.
        how = f" <sub>{_md_escape(line['detail'])}</sub>" if line.get("detail") else ""
        # The resource, so four CloudWatch alarms are four rows one can tell apart.
        rows.append(f"| {line['component'] or ''} | `{line['resource_name']}` | "
                    f"{_md_escape(line['item'])}{usage}{how} | {amount} |")
    out += _rows(rows, "cost lines", 3, stack) if stack else rows
    for component, amount in doc["cost"]["by_component"].items():
        out.append(f"| **{component}** | | subtotal | **{amount:,.2f}** |")
    out += [f"| **total** | | | **{doc['total_monthly_usd']:,.2f}** |",
            f"| fixed | | | {doc['fixed_monthly_usd']:,.2f} |",
            f"| usage at the assumptions | | | {doc['usage_monthly_usd']:,.2f} |",
            "", "</details>", ""]
    return out


COMMENT_LIMIT = 65_536  # GitHub refuses a comment body longer than this
MAX_ROWS = 40  # per table in a comment; the JSON artefact has every row


def _rows(rows: list[str], what: str, columns: int, stack: str) -> list[str]:
    """A table's rows, cut to MAX_ROWS with a row that says how many more and where they are."""
    if len(rows) <= MAX_ROWS:
        return rows
    more = (f"*{len(rows) - MAX_ROWS} more {what}: the run's `review` artefact (`{stack}` in "
            f"review.json's `documents`; `platformctl review {stack} --format json`) has every "
            "one*")
    return [*rows[:MAX_ROWS], "| " + more + " |" * columns]


# A slice under 4% is merged into "N others": smaller ones, side by side, put their labels on
# top of each other (Mermaid draws each label at 0.75 of the radius; at 3% a row of them already
# overlaps); Mermaid leaves out a slice under 1% altogether. tests/test_mermaid.py renders the
# pies with the real Mermaid and measures where the labels land.
PIE_MIN_SHARE = 0.04
PIE_DRAWN_SHARE = 0.01  # Mermaid (pieRenderer) drops a slice under 1% of the pie


def pie_slices(rows: Sequence[tuple[str, int, float]]) -> list[tuple[str, float]]:
    """(label, amount) of the pie: the components that cost something, those under
    PIE_MIN_SHARE of the total as one slice ("N others", or its own name when alone), left out
    when even together they are under the 1% Mermaid draws (the table lists each)."""
    priced = [(name, amount) for name, _, amount in rows if amount > 0]
    total = sum(amount for _, amount in priced)
    big = [(n, a) for n, a in priced if a / total >= PIE_MIN_SHARE]
    small = [(n, a) for n, a in priced if (n, a) not in big]
    together = round(sum(a for _, a in small), 2)
    if not small or together / total < PIE_DRAWN_SHARE:
        return big
    return [*big, small[0] if len(small) == 1 else (f"{len(small)} others", together)]


def component_changes(doc: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """(before, after) USD/month per component that changed against the base revision, from
    the base's and the head's cost by component (empty without --base or a base breakdown)."""
    change = doc.get("diff")
    if not change or not change["cost"].get("base_by_component"):
        return {}
    before, after = change["cost"]["base_by_component"], doc["cost"]["by_component"]
    return {n: (float(before.get(n, 0.0)), float(after.get(n, 0.0)))
            for n in sorted(set(before) | set(after))
            if round(float(after.get(n, 0.0)) - float(before.get(n, 0.0)), 2) != 0}


def _pie(title: str, slices: Sequence[tuple[str, float]]) -> list[str]:
    return ["```mermaid", "pie showData", f"    title {title}",
            *(f'    "{name}" : {amount:.2f}' for name, amount in slices), "```", ""]


def cost_pie(doc: Mapping[str, Any]) -> list[str]:
    """Where the money goes: a Mermaid pie (GitHub draws it) and the same numbers as a table,
    per component (components that cost nothing are in the table only). With --base, the
    change too: a pie of the cost the change adds and one of what it removes, by component,
    and the table's before and change columns."""
    rows = component_rows(doc)
    changes = component_changes(doc)
    out = _pie(f"{doc['stack']}: ${doc['total_monthly_usd']:,.2f}/month by component",
               pie_slices(rows))
    for sign, word in ((1, "adds"), (-1, "removes")):
        moved = [(n, 0, round(sign * (after - before), 2))
                 for n, (before, after) in changes.items() if sign * (after - before) > 0]
        if moved:
            amount = sum(a for _, _, a in moved)
            out += _pie(f"the change {word} ${amount:,.2f}/month: by component",
                        pie_slices(sorted(moved, key=lambda m: (-m[2], m[0]))))
    if changes:
        base = doc["diff"]["cost"]["base_by_component"]
        out += ["| component | resources | before | USD/month | change |",
                "|---|---:|---:|---:|---:|"]
        out += [f"| {name} | {count} | {float(base.get(name, 0.0)):,.2f} | {amount:,.2f} | "
                + (signed_dollars(changes[name][1] - changes[name][0]) if name in changes
                   else "") + " |" for name, count, amount in rows]
        before_total = doc["diff"]["cost"]["base_total_monthly_usd"]
        tail = (f" | {before_total:,.2f} | **{doc['total_monthly_usd']:,.2f}** | "
                f"{signed_dollars(doc['total_monthly_usd'] - before_total)} |")
    else:
        out += ["| component | resources | USD/month |", "|---|---:|---:|"]
        out += [f"| {name} | {count} | {amount:,.2f} |" for name, count, amount in rows]
        tail = f" | **{doc['total_monthly_usd']:,.2f}** |"
    grouped = sum(row[1] for row in rows)
    out += [f"| **total** | **{grouped}** (+ {doc['resource_count'] - grouped} components "
            f"= {doc['resource_count']})" + tail, ""]
    if doc["cost"].get("coverage"):
        out += [coverage_text(doc["cost"]["coverage"]), ""]
    return out


def coverage_text(c: Mapping[str, int]) -> str:
    """Infracost's coverage line: what the cost model made of every resource."""
    return (f"{c['resources']} resources: {c['priced']} priced, {c['free']} free, "
            f"{c['unpriced']} not priced, {c['components']} components (no bill of their own)")


def render_markdown(doc: Mapping[str, Any], limit: int = COMMENT_LIMIT,
                    diff: bool = False) -> str:
    """A pull-request comment under GitHub's size limit: verdict first, then the change, where
    the money goes, and the details folded. Long tables stop at MAX_ROWS rows with a count;
    if it is still too long, folded sections go, the least needed first."""
    sections = dict(_markdown_sections(doc, diff))  # in order
    for dropping in ("plan", "capacity", "releases", "objects", "cost lines", "violations",
                     "change"):
        text = "\n".join(line for lines in sections.values() for line in lines)
        if len(text) < limit:
            return text
        if dropping in sections:
            sections[dropping] = [f"*({dropping} left out: the comment would exceed GitHub's "
                                  "size limit; the JSON artefact has it)*", ""]
    text = "\n".join(line for lines in sections.values() for line in lines)
    if len(text) < limit:
        return text
    cut = text[:limit - 200].rsplit("\n", 1)[0]
    return cut + "\n\n*(cut at GitHub's comment size limit: the JSON artefact has the review)*\n"


def _markdown_sections(doc: Mapping[str, Any],
                       diff: bool = False) -> list[tuple[str, list[str]]]:
    """The comment's sections, in order, each (name, lines)."""
    stack = doc["stack"]
    policies = doc["policies"]
    mandatory, advisory = policies["mandatory"], policies["advisory"]
    kind, _ = verdict(doc)
    head = [f"### `{stack}`: "
            + {"blocked": f"**Blocked**: {counted(len(mandatory), 'mandatory violation')}",
               "not evaluated": f"**Not evaluated**: {named(policies['not_evaluated'])}",
               "advisory": f"**Passes** platform-guard ({len(advisory)} advisory)",
               "passes": "**Passes** platform-guard"}[kind]
            + f", ${doc['total_monthly_usd']:,.2f}/month of ${doc['budget_monthly_usd']:,.2f} "
            f"(headroom {dollars(doc['headroom_monthly_usd'])})", ""]
    head += [f":x: **The project:** {_md_escape(p)}" for p in doc.get("project_problems") or ()]
    if doc.get("project_problems"):
        head.append("")
    if doc.get("ceiling"):
        ceiling = doc["ceiling"]
        head += [f"At the ceiling (every node group at maxSize): "
                       f"${ceiling['total_monthly_usd']:,.2f}/month of "
                       f"${ceiling['budget_monthly_usd']:,.2f} "
                       f"(headroom {dollars(ceiling['headroom_monthly_usd'])})", ""]
    if mandatory or advisory:
        head += [f"{'Blocked by' if mandatory else 'Advisory'}: {named(mandatory or advisory)}",
                 ""]
    if doc.get("showback"):
        showback = doc["showback"]
        head += [f"Team quotas at list price (share of the nodes at maxSize, "
                 f"${showback['fleet_monthly_usd']:,.2f}/month):", ""]
        head += [f"- `{t['team']}`: ${t['monthly_usd']:,.2f}/month "
                 f"({t['cpu_millicores']:,.0f}m CPU, {t['memory_mib'] / 1024:,.2f} GiB: "
                 f"{t['share_percent']:g}% of the nodes' {t['dominant']})"
                 for t in showback["teams"]] + [""]
    sections: list[tuple[str, list[str]]] = [("verdict", head)]
    change = doc["diff"]
    if change is not None:
        cost = change["cost"]
        out = [f"**Monthly cost: {cost['summary']}** "
               f"(${cost['base_total_monthly_usd']:,.2f} → ${cost['total_monthly_usd']:,.2f}, "
               f"against `{change['base']}`)", ""]
        out += _rows([f"- {_md_escape(line['summary'])}" for line in cost["lines"]],
                     "cost changes", 0, stack)
        resources = change["resources"]
        counts = (preview_counts(resources["counts"]) if resources.get("counts") else
                  ", ".join(f"{len(resources[k])} {k}" for k in ("added", "removed", "changed")))
        out += ["", f"**Resources:** {counts}", ""]
        if any(resources[k] for k in ("added", "removed", "changed")):
            costs = resource_cost_changes(change)
            out += ["| change | type | name | USD/month | inputs changed |",
                    "|---|---|---|---:|---|"]
            rows = [f"| {word} | `{r['type']}` | `{r['name']}` | "
                    f"{_md_escape(costs.get((r['type'], r['name']), ''))} |  |"
                    for kind, word in (("added", "create"), ("removed", "delete"))
                    for r in resources[kind]]
            # Replacements first: they are what a reviewer must not miss.
            order = {"refused": 0, "replace": 0, "unknown": 1, "update": 2}
            for r in sorted(resources["changed"],
                            key=lambda r: (order.get(r.get("action", "update"), 2), r["key"])):
                action = r.get("action", "update")
                word = {"replace": "**replace**", "refused": "**refused**",
                        "unknown": "unknown"}.get(action, action)
                rows.append(f"| {word} | `{r['type']}` | `{r['name']}` | "
                            f"{_md_escape(costs.get((r['type'], r['name']), ''))} | "
                            + _md_escape(_change_detail(r, markdown=True, values=diff)) + " |")
            out += _rows(rows, "resource changes", 4, stack)
            out.append("")
        for r in resources.get("replaced", []):
            out.append(f"- :x: **replaced** `{r['type']}` `{r['name']}`: its URN changes without "
                       "an alias, so `pulumi up` deletes it and creates it anew")
        if resources.get("moved"):
            out.append(f"- {len(resources['moved'])} resources move in the tree, adopted through "
                       "aliases (nothing replaced)")
        if resources.get("replaced") or resources.get("moved"):
            out.append("")
        # New violations are named here and said once, in the violations table below.
        out += _rows([f"- :x: new **{v['enforcement']}** `{v['policy']}` on "
                      f"{'`' + v['resource_name'] + '`' if v['resource_name'] else 'the stack'}"
                      " (below)" for v in change["violations"]["new"]],
                     "new violations", 0, stack)
        out += _rows([f"- :white_check_mark: resolved `{v['policy']}`: {_md_escape(v['message'])}"
                      for v in change["violations"]["resolved"]], "resolved violations", 0, stack)
        out.append("")
        sections.append(("change", out))
        objects = change.get("rendered") or {}
        if any(objects.get(k) for k in ("added", "removed", "changed")):
            counts = ", ".join(f"{len(objects.get(k, []))} {k}"
                               for k in ("added", "removed", "changed"))
            folded = [f"<details><summary><b>Objects inside Helm releases:</b> {counts}</summary>",
                      ""]
            folded += _rows([f"- :x: CRD `{g['crd']}` no longer serves `{g['api']}`"
                             + (f" and `{g['kind']}` objects still use it" if g["in_use"] else "")
                             for g in objects.get("crd_versions_removed", [])],
                            "removed CRD versions", 0, stack)
            fields = objects.get("fields", {})
            folded += _rows([f"- {k}: `{key}`" + (
                f" ({', '.join(f'`{p}`' for p in fields[key])})" if key in fields else "")
                for k in ("added", "removed", "changed")
                for key in objects.get(k, [])], "objects", 0, stack)
            sections.append(("objects", [*folded, "", "</details>", ""]))
    if mandatory or advisory:
        out = ["| enforcement | policy | resource | message |", "|---|---|---|---|"]
        out += _rows([f"| {v['enforcement']} | `{v['policy']}` | "
                      f"{'`' + v['resource_name'] + '`' if v['resource_name'] else 'stack'} | "
                      f"{_md_escape(v['message'])} |" for v in [*mandatory, *advisory]],
                     "violations", 3, stack)
        sections.append(("violations", [*out, ""]))
    # What the program itself warned about, as the terminal shows it (not-evaluated checks are
    # in the verdict line above).
    if doc["warnings"]:
        sections.append(("warnings", [
            f"**Warnings** ({len(doc['warnings'])}, from the program, as `pulumi preview` "
            "prints them):", "",
            *(f"- :warning: {_md_escape(_first_line(_without_outputs(w, doc['outputs'])))}"
              for w in doc["warnings"]), ""]))
    sections.append(("cost", ["**Where the money goes**", "", *cost_pie(doc)]))
    sections.append(("cost lines", cost_markdown(doc, stack)))
    section = doc.get("rendered") or {"releases": []}
    if section["releases"]:
        out = [f"<details><summary>Helm releases, rendered: {section['object_count']} objects"
               "</summary>", "", "| release | namespace | chart | objects | workloads, CRDs, "
               "webhooks |", "|---|---|---|---:|---|"]
        out += [f"| `{r['release']}` | `{r['namespace']}` | {r['chart']} {r['version']} | "
                f"{r['object_count']} | {_top_kinds(r['object_counts'])} |"
                for r in section["releases"]]
        sections.append(("releases", [*out, "", "</details>", ""]))
    if doc.get("capacity"):
        out = ["<details><summary>Capacity: "
               + ", ".join(f"{r['scenario']} {'fits' if r['fits'] else '**does not fit**'}"
                           for r in doc["capacity"]) + "</summary>", "",
               "| scenario | nodes | pods | CPU (m) | memory (MiB) |", "|---|---:|---:|---:|---:|"]
        out += [f"| {r['scenario']} | {_capacity_nodes(r)} | {_capacity_cell(r['pods'])} | "
                f"{_capacity_cell(r['cpu_millicores'])} | {_capacity_cell(r['memory_mib'])} |"
                for r in doc["capacity"]]
        out += ["", *(f"- {line}" for line in _capacity_node_shapes(doc["capacity"])),
                "", "</details>", ""]
        sections.append(("capacity", out))
    out = [f"<details><summary>Plan: {doc['resource_count']} resources</summary>", "",
           "| type | count |", "|---|---:|"]
    out += _rows([f"| `{t}` | {n} |" for t, n in doc["resource_counts"].items()],
                 "types", 1, stack)
    sections.append(("plan", [*out, "", "</details>", ""]))
    sections.append(("footer", [
        f"<sub>platformctl review {stack}, offline (Pulumi mocks, real stack file "
        f"`{doc['source']}`); schema {doc['schema']}</sub>", ""]))
    return sections


def render_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n"
