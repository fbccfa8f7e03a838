"""`platformctl`: the platform team's command line.

    platformctl review dev                 # the dev stack's offline plan
    platformctl review Pulumi.prod.yaml    # any stack file, by path
    platformctl review ./sandbox.yaml --project-dir .

Exit codes: 0 success; 1 a mandatory platform-guard violation, or the program would fail for real
(a resource's inputs would not pass the provider's Check); 2 a usage or configuration error (the
message names the file, key and value).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from platformctl.harness import (
    Evaluation,
    InputCheckError,
    RecordedResource,
    evaluate,
    find_project_dir,
)
from stacks.config import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _console(stream) -> Console:
    # Wide enough for type tokens when the output is a pipe or a CI log rather than a terminal.
    return Console(file=stream, width=None if stream.isatty() else 120, highlight=False)


def _error(message: str) -> None:
    # Plain text, never re-wrapped: each problem stays on one line for grep and CI logs.
    print(f"error: {message}", file=sys.stderr)


def _label(resource: RecordedResource, descendants: int) -> Text:
    text = Text()
    text.append(resource.type, style="cyan" if resource.custom else "bold magenta")
    text.append("  ")
    text.append(resource.name, style="bold")
    if not resource.custom:
        text.append(f"  ({descendants} resources)", style="dim")
    if resource.protect:
        text.append("  protected", style="yellow")
    return text


def plan_tree(evaluation: Evaluation) -> Tree:
    """Resources as the program composed them: components, their resources, their children."""
    children: dict[str | None, list[RecordedResource]] = {}
    known = evaluation.by_urn()
    for resource in evaluation.resources:
        parent = resource.parent if resource.parent in known else None
        children.setdefault(parent, []).append(resource)

    def count(urn: str) -> int:
        return sum(1 + count(c.urn) for c in children.get(urn, []))

    root = Tree(Text.assemble(
        ("stack ", "dim"), (evaluation.stack, "bold"),
        (f"  ({len(evaluation.resources)} resources)", "dim"),
    ))

    def add(node: Tree, parent: str | None) -> None:
        # Sorted, not in registration order, which depends on RPC timing.
        for resource in sorted(children.get(parent, []), key=lambda r: (r.type, r.name)):
            add(node.add(_label(resource, count(resource.urn))), resource.urn)

    add(root, None)
    return root


def _type_table(evaluation: Evaluation) -> Table:
    table = Table(title="Resources by type", title_justify="left", show_edge=False)
    table.add_column("type")
    table.add_column("count", justify="right")
    for token, n in sorted(Counter(r.type for r in evaluation.resources).items()):
        table.add_row(token, str(n))
    table.add_row(Text("total", style="bold"), Text(str(len(evaluation.resources)), style="bold"))
    return table


def _outputs_table(evaluation: Evaluation) -> Table:
    table = Table(title="Stack outputs", title_justify="left", show_edge=False)
    table.add_column("output")
    table.add_column("value", overflow="fold")
    for key, value in evaluation.outputs.items():
        shown = value.shown()
        text = ", ".join(map(str, shown)) if isinstance(shown, list) else str(shown)
        table.add_row(key, Text(text, style="yellow" if value.secret else ""))
    return table


def _cost_table(report) -> tuple[Table, list[str]]:
    """The cost lines by component, with usage assumptions as numbered footnotes."""
    from platform_guard.costmodel import money

    table = Table(title=f"Monthly cost estimate ({report.region}, on-demand list prices)",
                  title_justify="left", show_edge=False)
    table.add_column("component")
    table.add_column("resource")
    table.add_column("item")
    table.add_column("USD/month", justify="right")
    notes: list[str] = []
    for line in sorted(report.lines, key=lambda x: (x.component or "", -(x.monthly_usd or 0))):
        amount = f"{money(line.monthly_usd):,.2f}" if line.priced else "unpriced"
        item = Text(line.item)
        if line.assumption:
            if line.assumption not in notes:
                notes.append(line.assumption)
            item.append(f"  usage [{notes.index(line.assumption) + 1}]", style="dim")
        if line.unpriced_reason:
            item.append(f"\n{line.unpriced_reason}", style="dim")
        table.add_row(line.component or "", line.resource_name, item, amount)
    for component, amount in report.by_component().items():
        table.add_row(Text(component, style="bold"), "", Text("subtotal", style="bold"),
                      Text(f"{amount:,.2f}", style="bold"))
    table.add_row(Text("total", style="bold"), "", "", Text(f"{report.total:,.2f}", style="bold"))
    return table, [f"[{i}] {note}" for i, note in enumerate(notes, 1)]


def _verdicts(report, console: Console) -> None:
    if not report.violations and not report.cannot_run:
        console.print(Text("platform-guard: no violations", style="green"))
        return
    for title, verdicts, style in (("mandatory", report.mandatory, "bold red"),
                                   ("advisory", report.advisory, "yellow"),
                                   ("could not run", report.cannot_run, "dim")):
        if not verdicts:
            continue
        console.print(Text(f"platform-guard {title} ({len(verdicts)})", style=style))
        for verdict in verdicts:
            console.print(Text(f"  [{verdict.policy}] {verdict.message}", style=style))


def render_review(evaluation: Evaluation, console: Console, guard_report=None,
                  costs=None) -> None:
    cfg = evaluation.config
    header = Text.assemble(("Offline plan of ", "bold"), (evaluation.stack, "bold green"),
                           (f"  from {evaluation.source}", "dim"))
    if cfg is not None:
        header.append(f"\npreset {cfg.preset} · environment {cfg.environment} · {cfg.region} · "
                      f"budget ${cfg.budget_monthly_usd:,.2f}/month", style="dim")
    console.print(header)
    console.print()
    console.print(plan_tree(evaluation))
    console.print()
    console.print(_type_table(evaluation))
    console.print()
    console.print(_outputs_table(evaluation))
    for warning in evaluation.warnings:
        console.print(Text(f"warning: {warning}", style="yellow"))
    if costs is not None:
        console.print()
        table, notes = _cost_table(costs)
        console.print(table)
        for note in notes:
            console.print(Text(note, style="dim"))
        if cfg is not None:
            budget = cfg.budget_monthly_usd
            console.print(Text(f"budget ${budget:,.2f}/month, headroom "
                               f"${float(budget) - float(costs.total):,.2f}", style="bold"))
    if guard_report is not None:
        console.print()
        _verdicts(guard_report, console)
    console.print()
    console.print(Text(
        f"Evaluated offline in {evaluation.seconds:.2f} s under Pulumi mocks: no AWS account or "
        "Pulumi engine involved. Every resource's inputs passed the SDK type check.", style="dim",
    ))


def _review(args: argparse.Namespace) -> int:
    project_dir = Path(args.project_dir) if args.project_dir else None
    if project_dir is not None and not (project_dir / "Pulumi.yaml").is_file():
        _error(f"--project-dir {project_dir}: no Pulumi.yaml there")
        return EXIT_USAGE
    try:
        evaluation = evaluate(args.stack, project_dir=project_dir)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except InputCheckError as exc:
        _error(str(exc))
        return EXIT_FAILED
    from platformctl.costs import cost_report
    from platformctl.guard import check_evaluation

    guard_report = check_evaluation(evaluation)
    out = _console(sys.stdout)
    render_review(evaluation, out, guard_report=guard_report, costs=cost_report(evaluation))
    return EXIT_FAILED if guard_report.mandatory else EXIT_OK


def _config_reference(args: argparse.Namespace) -> int:
    from platformctl import configdoc

    text = configdoc.render()
    if not args.write:
        sys.stdout.write(text)
        return EXIT_OK
    target = (Path(args.project_dir) if args.project_dir else find_project_dir()) / configdoc.DOC_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return EXIT_OK


def _policy_config(args: argparse.Namespace) -> int:
    import json

    from platformctl import guard
    from platformctl.harness import load_config

    try:
        cfg = load_config(args.stack, Path(args.project_dir) if args.project_dir else None)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    sys.stdout.write(json.dumps(guard.policy_config(cfg), indent=2) + "\n")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="platformctl",
        description="Review the platform's Pulumi stacks offline.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    review = commands.add_parser(
        "review",
        help="evaluate a stack offline and print its plan",
        description="Evaluate a stack offline (the real program under Pulumi mocks, with the real "
        "stack file) and print the resources it would create, grouped by component, and its "
        "outputs (secrets masked).",
    )
    review.add_argument("stack", help="a stack name (dev -> Pulumi.dev.yaml) or a stack file path")
    review.add_argument("--project-dir", help="directory holding Pulumi.yaml (default: found "
                        "from the working directory upwards)")
    review.set_defaults(handler=_review)

    reference = commands.add_parser(
        "config-reference",
        help="print (or --write) the configuration reference generated from the config model",
    )
    reference.add_argument("--write", action="store_true", help="write docs/config.md")
    reference.add_argument("--project-dir", help="directory holding Pulumi.yaml")
    reference.set_defaults(handler=_config_reference)

    policy = commands.add_parser(
        "policy-config",
        help="print the platform-guard policy config of a stack (for --policy-pack-config)",
        description="Print, as JSON, the platform-guard policy pack config derived from a stack's "
        "config (environment, budget, region, allowed instance families, production). Pass it to "
        "`pulumi preview --policy-pack policy-packs/platform-guard --policy-pack-config FILE`.",
    )
    policy.add_argument("stack", help="a stack name or a stack file path")
    policy.add_argument("--project-dir", help="directory holding Pulumi.yaml")
    policy.set_defaults(handler=_policy_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
