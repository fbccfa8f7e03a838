"""Benchmark: `platformctl review` of prod at organisation scale (1, 50 and 200 teams), each a
whole process, beside the Pulumi SDK's own floor for the same resource count, with peak memory.

    .venv/bin/python bench/scale.py                  # 1, 50 and 200 teams, 3 runs each
    .venv/bin/python bench/scale.py --teams 1 50 --runs 1

The stacks are prod's stack file with generated teams added (`team-001`, ... each with its
namespace and the baseline every team gets); the review runs warm (rendering cached by a first,
unmeasured run). The floor is `../shared/bench/sdk_floor.py N` (the SDK registering N comparable
Kubernetes objects under mocks, nothing else), run in the same process of measurement, when that
file is beside this repository; ratios, not seconds, are what compare across machines.
Targets (issue 19): 50 teams <= 3x the floor; 200 teams <= 4.5x the 50-team time; peak memory
<= 400 MB at 200 teams.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from review_timing import one_run  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FLOOR = REPO.parent / "shared" / "bench" / "sdk_floor.py"
TARGET_FLOOR_RATIO, TARGET_LINEAR_RATIO, TARGET_MIB = 3.0, 4.5, 400.0


def stack_with_teams(count: int, directory: Path) -> Path:
    """prod's stack file with `count` teams in all (the shipped ones first)."""
    raw = yaml.safe_load((REPO / "Pulumi.prod.yaml").read_text())
    config = raw["config"]
    teams = list(config.get("platform:teams") or [])
    for index in range(len(teams), count):
        teams.append({"name": f"team-{index:03d}"})
    config["platform:teams"] = teams[:count]
    path = directory / f"Pulumi.scale{count}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def resource_count(path: Path, env: dict[str, str]) -> int:
    done = subprocess.run([sys.executable, "-m", "platformctl.cli", "review", str(path),
                           "--format", "json", "--project-dir", str(REPO)], cwd=REPO, env=env,
                          capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"review of {path.name} failed: {done.stderr}")
    return int(json.loads(done.stdout)["resource_count"])


def floor_seconds(count: int, runs: int) -> float | None:
    if not FLOOR.is_file():
        return None
    times = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, str(FLOOR), str(count)], capture_output=True,
                              text=True, check=True)
        times.append(float(done.stdout.split()[2]))  # "<N> resources <seconds> s"
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PLATFORMCTL_CACHE_DIR": tempfile.mkdtemp(prefix="scale-cache-")}
    directory = Path(tempfile.mkdtemp(prefix="scale-stacks-"))
    rows = {}
    print(f"{'teams':>5} {'resources':>9} {'median s':>9} {'peak MiB':>9} {'floor s':>8} "
          f"{'x floor':>8}")
    for count in args.teams:
        path = stack_with_teams(count, directory)
        resources = resource_count(path, env)  # also warms the render cache
        results = [one_run([str(path), "--format", "json", "--project-dir", str(REPO)], REPO,
                           env) for _ in range(args.runs)]
        seconds = statistics.median(r[0] for r in results)
        peak = max(r[1] for r in results)
        floor = floor_seconds(resources, args.runs)
        ratio = seconds / floor if floor else None
        rows[count] = (resources, seconds, peak, floor, ratio)
        print(f"{count:>5} {resources:>9} {seconds:>9.2f} {peak:>9.1f} "
              f"{floor if floor is not None else float('nan'):>8.2f} "
              f"{ratio if ratio is not None else float('nan'):>8.2f}")
    targets = (f"targets: 50 teams <= {TARGET_FLOOR_RATIO}x the floor, 200 <= "
               f"{TARGET_LINEAR_RATIO}x 50, <= {TARGET_MIB:.0f} MiB at 200")
    if not (50 in rows and 200 in rows and rows[50][4] is not None):
        print(f"{targets}  -- not judged (needs 50 and 200 teams, and the floor script)")
        return 2
    linear = rows[200][1] / rows[50][1]
    print(f"200 teams / 50 teams: {linear:.2f}x")
    failed = (rows[50][4] > TARGET_FLOOR_RATIO or linear > TARGET_LINEAR_RATIO
              or rows[200][2] > TARGET_MIB)
    print(targets + ("  -- MISSED" if failed else "  -- met"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
