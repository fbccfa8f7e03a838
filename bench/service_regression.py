"""Benchmark: does this branch make the reference service slower than its base? (the pull
request workflow's service-regression job)

    .venv/bin/python bench/service_regression.py --base origin/main
    .venv/bin/python bench/service_regression.py --base HEAD                  # A/A: must pass
    .venv/bin/python bench/service_regression.py --base HEAD --seed-regression 1   # must fail

Both versions run on this machine at once, each one replica in its own cgroup at the spec's CPU
request (bench/rig.py), both pinned to CPU 0 and each against its own database (its own
migrations) in one throwaway PostgreSQL. The base is services/checkout/ as committed at
--base (git archive); the branch is the working tree's. The same fixed-rate load (RATE
requests/s, 80% reads, 20% writes, hey on CPU 1) goes to one version at a time, in ROUNDS rounds
of SECONDS s that alternate which version goes first, so a drift of the host's speed falls on
both. Per version, the median over the rounds of:
- p99 at the fixed rate (the SLO's own measure);
- CPU per request: the replica's CPU time over the requests it answered (steadier than any
  latency figure: it does not move with CFS throttling's timing).
The branch fails when either exceeds the base's by more than its tolerance (P99_TOLERANCE,
CPU_TOLERANCE; docs/ci-cd.md says how they were chosen), or when it fails requests the base
serves. --seed-regression MS runs the branch with MS ms of CPU burned in every read (a copy of
the service with one line added): the job's own check that it sees a regression of that size.
Exit 0: no regression beyond tolerance; 1: regression; 2: bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import rig

RATE = 120.0  # requests/s: ~3/4 of one replica's capacity, where a slower service shows
SECONDS = 6.0
ROUNDS = 5
P99_TOLERANCE = 0.5  # the branch's p99 may exceed the base's by 50% (+ P99_SLACK_MS)
P99_SLACK_MS = 10.0
CPU_TOLERANCE = 0.15  # and its CPU per request by 15%
SEED_MARK = "    def _get_order(self, order_id: int) -> int:\n"


def _base_tree(revision: str, into: Path) -> Path:
    """services/checkout/ as committed at `revision`, unpacked under `into`."""
    try:
        archive = subprocess.run(["git", "-C", str(rig.REPO), "archive", revision,
                                  "services/checkout"], check=True, capture_output=True).stdout
    except subprocess.CalledProcessError as error:
        raise SystemExit(f"--base {revision}: not a revision with services/checkout/ in this "
                         f"repository ({error.stderr.decode().strip()})") from None
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "services" / "checkout"


def _seeded(service_dir: Path, milliseconds: float, into: Path) -> Path:
    """A copy of the service that burns `milliseconds` of CPU in every GET /orders/<id>."""
    copy = into / "seeded" / "checkout"
    shutil.copytree(service_dir, copy, ignore=shutil.ignore_patterns("__pycache__"))
    app = copy / "checkout" / "app.py"
    text = app.read_text(encoding="utf-8")
    if SEED_MARK not in text:
        raise SystemExit(f"--seed-regression: {app} no longer has {SEED_MARK.strip()!r}")
    burn = (f"{SEED_MARK}        spent = time.thread_time()  # seeded regression\n"
            f"        while time.thread_time() - spent < {milliseconds / 1000!r}:\n"
            "            pass\n")
    app.write_text(text.replace(SEED_MARK, burn), encoding="utf-8")
    return copy


def _measure(base_url: str, order: int, pid: int) -> dict:
    used = rig.cpu_seconds(pid)
    seen = rig.answers(*rig.mixed_load(base_url, order, RATE, SECONDS))
    answered = max(1, len(seen.rows))
    return {"p99_ms": seen.p(0.99), "p50_ms": seen.p(0.5), "failed": seen.failed,
            "cpu_ms_per_request": round((rig.cpu_seconds(pid) - used) * 1000 / answered, 3)}


def compare(base_dir: Path, head_dir: Path) -> dict:
    import psycopg

    from tests.postgres import throwaway_postgres

    replica = rig.Replica.from_spec()
    rounds: dict[str, list[dict]] = {"base": [], "head": []}
    with throwaway_postgres() as postgres, contextlib.ExitStack() as stack:
        running = {}
        for name, directory in (("base", base_dir), ("head", head_dir)):
            with psycopg.connect(**postgres, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            env = stack.enter_context(rig.checkout_database({**postgres, "dbname": name},
                                                            directory))
            process, url, limited = stack.enter_context(rig.replica(env, replica, name))
            running[name] = (process, url, rig.post_order(url))
        for index in range(ROUNDS):
            for name in (("base", "head") if index % 2 == 0 else ("head", "base")):
                process, url, order = running[name]
                rounds[name].append(_measure(url, order, process.pid))
                time.sleep(0.5)
    summary = {name: {"p99_ms": statistics.median(r["p99_ms"] for r in runs),
                      "cpu_ms_per_request": statistics.median(r["cpu_ms_per_request"]
                                                              for r in runs),
                      "failed": sum(r["failed"] for r in runs), "rounds": runs}
               for name, runs in rounds.items()}
    base, head = summary["base"], summary["head"]
    p99_limit = round(base["p99_ms"] * (1 + P99_TOLERANCE) + P99_SLACK_MS, 1)
    cpu_limit = round(base["cpu_ms_per_request"] * (1 + CPU_TOLERANCE), 3)
    checks = {
        f"p99 {head['p99_ms']} ms within {p99_limit} ms (base {base['p99_ms']} ms "
        f"+{P99_TOLERANCE:.0%} +{P99_SLACK_MS:g} ms)": head["p99_ms"] <= p99_limit,
        f"CPU per request {head['cpu_ms_per_request']} ms within {cpu_limit} ms (base "
        f"{base['cpu_ms_per_request']} ms +{CPU_TOLERANCE:.0%})":
            head["cpu_ms_per_request"] <= cpu_limit,
        f"failed requests {head['failed']} not above the base's {base['failed']}":
            head["failed"] <= base["failed"],
    }
    return {"schema": "platformctl.service-regression/v1",
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "method": {"rate_rps": RATE, "seconds": SECONDS, "rounds": ROUNDS,
                       "replica_cpu": replica.cpus, "limited_by": limited},
            "base": base, "head": head, "checks": checks}


def markdown(report: dict, base: str, seeded: float | None) -> str:
    verdict = "no regression" if all(report["checks"].values()) else "**regression**"
    lines = [f"### Service benchmark (checkout): {verdict} against `{base}`"
             + (f" (branch seeded with {seeded:g} ms of CPU per read)" if seeded else ""), "",
             f"{report['method']['rate_rps']:g} requests/s to one replica at "
             f"{report['method']['replica_cpu']:g} CPU, {report['method']['rounds']} rounds "
             f"of {report['method']['seconds']:g} s each, medians:", "",
             "| | p99 (ms) | CPU per request (ms) | failed |", "|---|---:|---:|---:|"]
    for name in ("base", "head"):
        side = report[name]
        lines.append(f"| {name} | {side['p99_ms']} | {side['cpu_ms_per_request']} | "
                     f"{side['failed']} |")
    lines += ["", *(f"- {'ok' if held else 'FAIL'}: {check}"
                    for check, held in report["checks"].items())]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", required=True, help="the git revision to compare with")
    parser.add_argument("--seed-regression", type=float, metavar="MS",
                        help="burn MS ms of CPU in every read on the branch's side")
    parser.add_argument("--output", type=Path,
                        default=rig.REPO / "bench" / "results" / "service-regression.json")
    parser.add_argument("--markdown", type=Path, help="also write the summary here")
    args = parser.parse_args()
    if args.seed_regression is not None and not args.seed_regression > 0:
        parser.error(f"--seed-regression {args.seed_regression}: allowed: a positive number")
    with tempfile.TemporaryDirectory() as scratch:
        base_dir = _base_tree(args.base, Path(scratch))
        head_dir = (_seeded(rig.SERVICE_DIR, args.seed_regression, Path(scratch))
                    if args.seed_regression else rig.SERVICE_DIR)
        report = compare(base_dir, head_dir)
    report["base_revision"], report["seeded_ms"] = args.base, args.seed_regression
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    summary = markdown(report, args.base, args.seed_regression)
    if args.markdown:
        args.markdown.write_text(summary, encoding="utf-8")
    print(summary)
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    rig.run_main(main)
