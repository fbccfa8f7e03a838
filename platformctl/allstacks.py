"""`platformctl review --all`: every stack file of the project reviewed in parallel processes,
one table (verdict, cost, budget, headroom, resources) and one exit code, with the organisation's
cap checked against the sum of the estimates as `platformctl budget` checks it.

Each stack is a `platformctl review <file> --format json` process of its own (as CI runs one per
stack), as many at a time as the machine has cores; their documents are the rows. Where the OS
can fork, each process is a fork of this one after the program's modules are imported (a
second and a half of imports a stack, saved), running the same command in-process with its
output on files of its own; elsewhere, a new interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table
from rich.text import Text

from platformctl import report, review, stackfile
from platformctl.budget import CAP_KEY, cap_problems, stack_files
from platformctl.document import usd

SCHEMA = "platformctl.review-all/v1"


CAN_FORK = hasattr(os, "fork")


@dataclass
class _Done:
    """What one stack's review process left: its exit code, stdout (the JSON) and stderr."""

    returncode: int
    stdout: str
    stderr: str


def _argv(path: Path, project_dir: Path, base: str | None = None) -> list[str]:
    return ["review", str(path), "--format", "json", "--quiet", "--no-project-checks",
            "--project-dir", str(project_dir), *(["--base", base] if base else [])]


def _row(path: Path, done: _Done) -> dict[str, Any]:
    """One stack's row, from its review process."""
    row: dict[str, Any] = {"stack": stackfile.stack_name_of(path), "source": path.name}
    if done.returncode not in (0, 1):
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}, no message"]
        # Every problem the file has, not only the last: "  - key: value: why" lines after a
        # heading, or one "error: ..." line.
        problems = [line.strip().removeprefix("- ") for line in lines
                    if line.startswith("  - ")] or [lines[-1].removeprefix("error: ")]
        return {**row, "verdict": "error", "error": "; ".join(problems)}
    return {**row, **row_of(json.loads(done.stdout))}


def _in_new_interpreter(path: Path, project_dir: Path, base: str | None = None) -> _Done:
    done = subprocess.run([sys.executable, "-m", "platformctl.cli",
                           *_argv(path, project_dir, base)],
                          capture_output=True, text=True, cwd=project_dir, check=False)
    return _Done(done.returncode, done.stdout, done.stderr)


Command = Callable[[list[str]], int]  # platformctl's main: arguments in, exit code out


def _child(command: Command, argv: list[str], project_dir: Path, out: int,
           err: int) -> NoReturn:
    """The forked process: the command on its own stdout and stderr files, then gone without
    running the parent's exit handlers."""
    code = 70  # EX_SOFTWARE: the review itself failed to run
    try:
        os.dup2(out, 1)
        os.dup2(err, 2)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
        os.chdir(project_dir)
        # The fork has one thread: the parent's event loop (the SDK runs its mocked calls in
        # that loop's executor threads, which stayed behind) would wait on them for ever.
        asyncio.set_event_loop(asyncio.new_event_loop())
        code = command(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _forked(command: Command, files: list[Path], project_dir: Path,
            workers: int, base: str | None = None) -> list[_Done]:
    """Each stack's review (`command`, in-process) in a fork of this process, `workers` at a
    time."""
    import stacks.platform  # noqa: F401  (imported once here, shared by every fork)

    results: list[_Done | None] = [None] * len(files)
    running: dict[int, tuple[int, Any, Any]] = {}  # pid -> (index, stdout file, stderr file)
    waiting = list(enumerate(files))
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                index, path = waiting.pop(0)
                out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _child(command, _argv(path, project_dir, base), project_dir, out.fileno(),
                           err.fileno())
                running[pid] = (index, out, err)
            for pid in list(running):
                finished, status = os.waitpid(pid, os.WNOHANG)
                if finished == 0:
                    continue
                index, out, err = running.pop(pid)
                texts = []
                for stream in (out, err):
                    stream.seek(0)
                    texts.append(stream.read().decode("utf-8", "replace"))
                    stream.close()
                results[index] = _Done(os.waitstatus_to_exitcode(status), *texts)
            if running:
                time.sleep(0.02)
    finally:  # interrupted: no review outlives the command
        for pid, (_, out, err) in running.items():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            out.close()
            err.close()
    return [done for done in results if done is not None]


def row_of(doc: dict[str, Any]) -> dict[str, Any]:
    """A stack's row of the table, from its review document."""
    kind, said = review.verdict(doc)
    return {"verdict": kind, "said": said,
            "mandatory": len(doc["policies"]["mandatory"]),
            "advisory": len(doc["policies"]["advisory"]),
            "total_monthly_usd": doc["total_monthly_usd"],
            "budget_monthly_usd": doc["budget_monthly_usd"],
            "headroom_monthly_usd": doc["headroom_monthly_usd"],
            **({"ceiling_monthly_usd": doc["ceiling"]["total_monthly_usd"],
                "ceiling_budget_monthly_usd": doc["ceiling"]["budget_monthly_usd"]}
               if doc.get("ceiling") else {}),
            "resource_count": doc["resource_count"],
            # Each team's quota at list price in this stack (showback), for the teams' table.
            **({"showback": {t["team"]: t["monthly_usd"] for t in doc["showback"]["teams"]}}
               if doc.get("showback") else {}),
            **({"change_monthly_usd": doc["diff"]["cost"]["delta_monthly_usd"],
                "base_total_monthly_usd": doc["diff"]["cost"]["base_total_monthly_usd"]}
               if doc.get("diff") else {})}


def review_all(project_dir: Path, command: Command, workers: int | None = None,
               base: str | None = None) -> dict[str, Any]:
    """Every stack file of `project_dir` reviewed by `command` (platformctl's `main`), one
    process a stack; `base`: each against that git revision (`review --base`). The stacks'
    own documents are kept (`documents`) for the comment; the JSON leaves them out."""
    from platformctl.harness import project_config

    files = stack_files(project_dir)
    workers = workers or os.cpu_count() or 2
    if CAN_FORK:
        done = _forked(command, files, project_dir, workers, base)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            done = list(pool.map(lambda path: _in_new_interpreter(path, project_dir, base),
                                 files))
    rows = [_row(path, result) for path, result in zip(files, done, strict=True)]
    documents = [json.loads(result.stdout) for result in done if result.returncode in (0, 1)]
    cap = project_config(project_dir).get(CAP_KEY)
    reviewed = [r for r in rows if r["verdict"] != "error"]
    total = sum((Decimal(str(r["total_monthly_usd"])) for r in reviewed), Decimal(0))
    ceilings = sum((Decimal(str(r.get("ceiling_monthly_usd", r["total_monthly_usd"])))
                    for r in reviewed), Decimal(0))
    from platformctl.budget import budget_problems

    problems = [f"Pulumi.yaml: {p}" for p in budget_problems(project_dir)]
    if not files:
        problems.append(f"no stack files (Pulumi.<stack>.yaml) in {project_dir}")
    if isinstance(cap, (int, float)):
        budgets = sum((Decimal(str(r["budget_monthly_usd"])) for r in reviewed), Decimal(0))
        problems += cap_problems(Decimal(str(cap)), total, budgets, ceilings)
    if not files or any(r["verdict"] == "error" for r in rows):
        exit_code = 2
    elif problems or any(r["verdict"] == "blocked" for r in rows):
        exit_code = 1
    else:
        exit_code = 0
    changes = {}
    if reviewed and all("change_monthly_usd" in r for r in reviewed):  # --base: the sum's change
        changes = {key: usd(sum((Decimal(str(r[key])) for r in reviewed), Decimal(0)))
                   for key in ("change_monthly_usd", "base_total_monthly_usd")}
    return {"schema": SCHEMA, "stacks": rows, "teams": team_rows(reviewed), **changes,
            "cap_monthly_usd": cap,
            "total_monthly_usd": usd(total),
            "headroom_monthly_usd": (usd(Decimal(str(cap)) - total)
                                     if isinstance(cap, (int, float)) else None),
            "ceiling_monthly_usd": usd(ceilings),
            "ceiling_headroom_monthly_usd": (usd(Decimal(str(cap)) - ceilings)
                                             if isinstance(cap, (int, float)) else None),
            "problems": problems, "exit_code": exit_code, "documents": documents}


def team_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each team's showback across the stacks: its quota's list price in each stack that
    gives it one, and the sum, the costliest team first."""
    teams: dict[str, dict[str, float]] = {}
    for row in rows:
        for team, amount in (row.get("showback") or {}).items():
            teams.setdefault(team, {})[row["stack"]] = amount
    out = [{"team": team, "by_stack": by_stack,
            "monthly_usd": usd(sum((Decimal(str(a)) for a in by_stack.values()), Decimal(0)))}
           for team, by_stack in teams.items()]
    return sorted(out, key=lambda t: (-t["monthly_usd"], t["team"]))


_STYLE = {"blocked": "bold red", "not evaluated": "bold red", "advisory": "yellow",
          "passes": "green", "error": "bold red"}


def _verdict_text(row: dict[str, Any]) -> str:
    if row["verdict"] == "error":
        return f"error: {row['error']}"
    if row["verdict"] == "blocked":
        return f"blocked ({row['mandatory']} mandatory)"
    if row["verdict"] == "not evaluated":
        return "not evaluated"
    if row["verdict"] == "advisory":
        return f"passes ({row['advisory']} advisory)"
    return "passes"


def _money(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:,.2f}" if key in row else ""


def render_text(doc: dict[str, Any], console: Console) -> None:
    table = Table(title="Every stack, reviewed offline", title_justify="left", show_edge=False)
    # Expected against the stack's budget, and at the ceiling against its share of the cap;
    # with --base, the change of the expected cost.
    changed = any("change_monthly_usd" in row for row in doc["stacks"])
    for column in ("stack", "verdict", "expected", *(["change"] if changed else []), "budget",
                   "ceiling", "share", "resources"):
        table.add_column(column, justify="left" if column in ("stack", "verdict") else "right")
    for row in doc["stacks"]:
        table.add_row(row["stack"], Text(_verdict_text(row), style=_STYLE[row["verdict"]]),
                      _money(row, "total_monthly_usd"), *([_change(row)] if changed else []),
                      _money(row, "budget_monthly_usd"), _money(row, "ceiling_monthly_usd"),
                      _money(row, "ceiling_budget_monthly_usd"),
                      str(row.get("resource_count", "")))
    if doc["cap_monthly_usd"] is not None:
        table.add_row(Text("all", style="bold"), f"cap {doc['cap_monthly_usd']:,.2f}",
                      Text(f"{doc['total_monthly_usd']:,.2f}", style="bold"),
                      *([_change(doc)] if changed else []),
                      f"{doc['headroom_monthly_usd']:,.2f} left",
                      Text(f"{doc['ceiling_monthly_usd']:,.2f}", style="bold"),
                      f"{doc['ceiling_headroom_monthly_usd']:,.2f} left", "")
    console.print(table)
    if doc.get("teams"):
        console.print(Text("Team quotas at list price (showback), a month: " + "; ".join(
            f"{t['team']} ${t['monthly_usd']:,.2f} ("
            + ", ".join(f"{s} ${a:,.2f}" for s, a in t["by_stack"].items()) + ")"
            for t in doc["teams"])))
    for problem in doc["problems"]:
        console.print(Text(f"over: {problem}", style="bold red"))
    console.print(Text({0: "every stack passes, within the cap", 1: "blocked",
                        2: "not every stack could be reviewed"}[doc["exit_code"]],
                       style={0: "bold green", 1: "bold red", 2: "bold red"}[doc["exit_code"]]))


def _change(row: dict[str, Any]) -> str:
    if "change_monthly_usd" not in row:
        return ""
    delta, before = row["change_monthly_usd"], row["base_total_monthly_usd"]
    if delta == 0:
        return "no change"
    percent = f" ({delta / before:+.0%})" if before else " (new)"
    return f"{review.signed_dollars(delta)}{percent}"


def render_markdown(doc: dict[str, Any], diff: bool = False) -> str:
    """One comment for every stack: the table (with the change against the base, when there
    is one), then each stack's own comment folded (`diff`: with the changed inputs' old and
    new values), all under GitHub's limit."""
    verdict = {0: "**Passes**", 1: "**Blocked**", 2: "**Not reviewed**"}[doc["exit_code"]]
    changed = any("change_monthly_usd" in row for row in doc["stacks"])
    out = [f"### Every stack: {verdict}", "",
           "| stack | verdict | expected | " + ("change | " if changed else "")
           + "budget | ceiling | share of the cap | resources |",
           "|---|---|---:|" + ("---:|" if changed else "") + "---:|---:|---:|---:|"]
    for row in doc["stacks"]:
        out.append(f"| `{row['stack']}` | {report._md_escape(_verdict_text(row))} | "
                   f"{_money(row, 'total_monthly_usd')} | "
                   + (f"{_change(row)} | " if changed else "")
                   + f"{_money(row, 'budget_monthly_usd')} | "
                   f"{_money(row, 'ceiling_monthly_usd')} | "
                   f"{_money(row, 'ceiling_budget_monthly_usd')} | "
                   f"{row.get('resource_count', '')} |")
    if doc["cap_monthly_usd"] is not None:
        out.append(f"| **all** | cap {doc['cap_monthly_usd']:,.2f} | "
                   f"**{doc['total_monthly_usd']:,.2f}** | "
                   + (f"{_change(doc)} | " if changed else "")
                   + f"{doc['headroom_monthly_usd']:,.2f} left"
                   f" | **{doc['ceiling_monthly_usd']:,.2f}** | "
                   f"{doc['ceiling_headroom_monthly_usd']:,.2f} left | |")
    out.append("")
    out += [f"- :x: {p}" for p in doc["problems"]]
    if doc.get("teams"):
        stacks = [row["stack"] for row in doc["stacks"]
                  if any(row["stack"] in t["by_stack"] for t in doc["teams"])]
        if out[-1]:
            out.append("")
        out += ["**Team quotas at list price** (each team's share of the nodes at maxSize, "
                "USD/month; `platformctl budget` says how):", "",
                "| team | " + " | ".join(f"`{s}`" for s in stacks) + " | all |",
                "|---|" + "---:|" * (len(stacks) + 1)]
        out += [f"| `{t['team']}` | "
                + " | ".join(f"{t['by_stack'][s]:,.2f}" if s in t["by_stack"] else "" for s in stacks)
                + f" | **{t['monthly_usd']:,.2f}** |" for t in doc["teams"]]
        out.append("")
    documents = doc.get("documents") or []
    if documents:
        head = "\n".join(out).rstrip("\n") + "\n\n"
        # Each stack's comment, folded, in an equal share of what GitHub takes.
        share = (report.COMMENT_LIMIT - len(head) - 200) // len(documents)
        for stack_doc in documents:
            kind, said = review.verdict(stack_doc)
            body = report.render_markdown(stack_doc, limit=share - 120, diff=diff)
            if out[-1]:
                out.append("")
            out += [f"<details><summary><b>{stack_doc['stack']}</b>: "
                    f"{report._md_escape(said)}</summary>", "", body, "</details>"]
    return "\n".join(out).rstrip("\n") + "\n"
