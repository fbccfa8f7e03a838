"""Benchmark: `platformctl review` of prod at organisation scale (1, 50 and 200 teams), each a
whole process, beside the Pulumi SDK's own floor for the same resource count, with peak memory.

    .venv/bin/python bench/scale.py                  # 1, 50 and 200 teams, 3 runs each
    .venv/bin/python bench/scale.py --teams 1 50 --runs 1

The stacks are prod's stack file with generated teams added (`team-001`, ... each with its
namespace and the baseline every team gets); the review runs warm (rendering cached by a first,
unmeasured run). The floor is `bench/sdk_floor.py N` (the SDK registering N comparable
Kubernetes objects under mocks, nothing else), run in the same process of measurement: `floor s`
is the time it prints (its registrations, imports excluded), `floor proc s` its whole process;
the review is judged against the first, the stricter. Ratios, not seconds, are what compare
across machines. `--base` is measured at 50 teams in a scratch git repository (prod grown to 50
teams) whose last commit gives one team a second namespace (a typical pull request), next to the
same review without `--base`.
Targets: 50 teams <= 2x the floor; 200 teams <= 4.5x the 50-team time; peak memory
<= 400 MiB at 200 teams; `--base` at 50 teams <= 1.5x its review.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from review_timing import commit_all, one_run, scratch_repo  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FLOOR = REPO / "bench" / "sdk_floor.py"
TARGET_FLOOR_RATIO, TARGET_LINEAR_RATIO, TARGET_MIB, TARGET_BASE_RATIO = 2.0, 4.5, 400.0, 1.5


# A generated team's quota: small enough that 49 of them fit beside prod's platform and
# checkout at maxSize with one node lost (quota-capacity), so the 50-team review measures a
# stack that passes; quotas are capacity, and prod's nodes do not hold 50 default ones.
GENERATED_QUOTA = {"requestsCpu": "40m", "requestsMemory": "64Mi", "limitsMemory": "128Mi",
                   "pods": 1}


def with_teams(raw: dict, count: int) -> dict:
    """A stack file's content with `count` teams in all (its own first, then generated)."""
    config = raw["config"]
    teams = list(config.get("platform:teams") or [])
    for index in range(len(teams), count):
        teams.append({"name": f"team-{index:03d}", "quota": dict(GENERATED_QUOTA)})
    config["platform:teams"] = teams[:count]
    return raw


def stack_with_teams(count: int, directory: Path) -> Path:
    """prod's stack file with `count` teams in all (the shipped ones first)."""
    raw = with_teams(yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text()), count)
    path = directory / f"Pulumi.scale{count}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def resource_count(path: Path, env: dict[str, str], project: Path = REPO) -> int:
    done = subprocess.run([sys.executable, "-m", "platformctl.cli", "review", str(path),
                           "--format", "json", "--project-dir", str(project)], cwd=project,
                          env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"review of {path.name} failed: {done.stderr}")
    return int(json.loads(done.stdout)["resource_count"])


def floor_seconds(count: int, runs: int) -> tuple[float, float] | None:
    """The floor's median printed time and median whole-process time."""
    if not FLOOR.is_file():
        return None
    printed, whole = [], []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, str(FLOOR), str(count)], capture_output=True,
                              text=True, check=True)
        whole.append(time.perf_counter() - started)
        printed.append(float(done.stdout.split()[2]))  # "<N> resources <seconds> s"
    return statistics.median(printed), statistics.median(whole)


def base_ratio(runs: int, env: dict[str, str]) -> tuple[float, float]:
    """Median seconds of a 50-team review with and without `--base`, in a scratch repository
    (prod with 50 teams) whose last commit gives one team a second namespace."""
    repo = scratch_repo()
    try:
        # prod itself grows to 50 teams (another stack file would count against the
        # organisation's budget, and --base needs the file inside the project).
        stack = repo / "Pulumi.prod.yaml"
        raw = with_teams(yaml.safe_load(stack.read_text()), 50)
        stack.write_text(yaml.safe_dump(raw, sort_keys=False))
        commit_all(repo, "prod: 50 teams")
        team = raw["config"]["platform:teams"][-1]
        team["namespaces"] = [team["name"], f"{team['name']}-batch"]
        stack.write_text(yaml.safe_dump(raw, sort_keys=False))
        commit_all(repo, f"{team['name']}: a second namespace")
        env = {**env, "PYTHONPATH": os.pathsep.join([str(repo),
                                                    str(repo / "policy-packs" / "platform-guard")])}
        resource_count(stack, env, repo)  # warm the render cache for this copy
        cases = {"review": [stack.name, "--format", "json", "--project-dir", str(repo)]}
        cases["--base"] = [*cases["review"], "--base", "main~1"]
        medians = {label: statistics.median(one_run(argv, repo, env)[0] for _ in range(runs))
                   for label, argv in cases.items()}
        return medians["review"], medians["--base"]
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PLATFORMCTL_CACHE_DIR": tempfile.mkdtemp(prefix="scale-cache-")}
    directory = Path(tempfile.mkdtemp(prefix="scale-stacks-"))
    rows = {}
    print(f"{'teams':>5} {'resources':>9} {'median s':>9} {'peak MiB':>9} {'floor s':>8} "
          f"{'floor proc s':>12} {'x floor':>8}")
    nan = float("nan")
    for count in args.teams:
        path = stack_with_teams(count, directory)
        resources = resource_count(path, env)  # also warms the render cache
        results = [one_run([str(path), "--format", "json", "--project-dir", str(REPO)], REPO,
                           env) for _ in range(args.runs)]
        seconds = statistics.median(r[0] for r in results)
        peak = max(r[1] for r in results)
        floor = floor_seconds(resources, args.runs)
        ratio = seconds / floor[0] if floor else None
        rows[count] = (resources, seconds, peak, floor, ratio)
        print(f"{count:>5} {resources:>9} {seconds:>9.2f} {peak:>9.1f} "
              f"{floor[0] if floor else nan:>8.2f} {floor[1] if floor else nan:>12.2f} "
              f"{ratio if ratio is not None else nan:>8.2f}")
    base = None
    if 50 in rows:
        review, with_base = base_ratio(args.runs, env)
        base = with_base / review
        print(f"50 teams --base main~1: {with_base:.2f} s, the same review alone {review:.2f} s: "
              f"{base:.2f}x")
    targets = (f"targets: 50 teams <= {TARGET_FLOOR_RATIO}x the floor, 200 <= "
               f"{TARGET_LINEAR_RATIO}x 50, <= {TARGET_MIB:.0f} MiB at 200, --base <= "
               f"{TARGET_BASE_RATIO}x")
    if not (50 in rows and 200 in rows and rows[50][4] is not None):
        print(f"{targets}  -- not judged (needs 50 and 200 teams, and the floor script)")
        return 2
    linear = rows[200][1] / rows[50][1]
    print(f"200 teams / 50 teams: {linear:.2f}x")
    failed = (rows[50][4] > TARGET_FLOOR_RATIO or linear > TARGET_LINEAR_RATIO
              or rows[200][2] > TARGET_MIB or base > TARGET_BASE_RATIO)
    print(targets + ("  -- MISSED" if failed else "  -- met"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
