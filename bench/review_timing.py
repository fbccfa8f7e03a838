"""Benchmark: wall time and peak memory of `platformctl review` (plan + policies + cost).

    .venv/bin/python bench/review_timing.py              # dev, prod and dev --base, 3 runs each
    .venv/bin/python bench/review_timing.py --runs 5

Each run is a fresh process (what a user or CI pays: interpreter start, SDK imports, the
evaluation, the input check, the policies, the cost model, rendering). Peak memory is the
largest resident set of any process of the run (the review, helm, the --base review).
`--base` is measured in a scratch git repository of this project whose last commit adds a NAT
gateway to dev.
Rendering the Helm releases is cached (platformctl/rendering.py): `prod` and `dev` run warm
(the cache filled by a first, unmeasured run), `prod cold` with an empty cache directory each
run (helm renders every release). Targets: a review within a few seconds (< 10 s) and 1 GiB;
`--base` at most about twice a single review (< 2.2x); cold prod < 20 s.

The import floor: a fresh process that only imports every module a `review prod` process had
loaded when it finished (the SDKs, the program, platformctl, the policies: what the review cannot
do without), timed the same way. Warm `prod` is judged against it: <= 1.5x (the review's own
work, the evaluation, checks, cost and rendering from cache, at most half again its imports).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FILES = ["Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "__main__.py", "stacks", "charts",
         "components", "platformctl", "policy-packs", "pyproject.toml", "gitops", "certs"]
TARGET_SECONDS, TARGET_MIB, TARGET_BASE_RATIO, TARGET_COLD_SECONDS = 10.0, 1024.0, 2.2, 20.0
TARGET_IMPORT_RATIO = 1.5

# Runs the review in this process, then writes the names of every module it loaded.
_MODULES = """
import json, sys
sys.argv = ["platformctl", "review", *sys.argv[2:]]
from platformctl import cli
try:
    cli.main(sys.argv[1:])
finally:
    with open(OUT, "w") as f:
        json.dump(sorted(m for m in sys.modules if not m.startswith("__main__")), f)
"""

# Imports every module named in a file, nothing else.
_IMPORT_ONLY = """
import importlib, json, sys
for name in json.load(open(sys.argv[1])):
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""


def import_floor(repo: Path, env: dict[str, str], runs: int) -> float:
    """Median wall seconds of a fresh process importing what `review prod` imports."""
    listing = Path(tempfile.mkdtemp(prefix="platform-modules-")) / "modules.json"
    code = _MODULES.replace("OUT", repr(str(listing)))
    subprocess.run([sys.executable, "-c", code, "x", "prod", "--project-dir", str(repo)],
                   cwd=repo, env=env, capture_output=True, check=False)
    if not listing.exists():
        raise SystemExit("could not list the modules of a review")
    seconds = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", _WRAPPER, sys.executable, "-c",
                               _IMPORT_ONLY, str(listing)], cwd=repo, env=env,
                              capture_output=True, text=True, check=True)
        seconds.append(float(done.stdout.split()[0]))
    shutil.rmtree(listing.parent, ignore_errors=True)
    return statistics.median(seconds)


# Each run goes through a fresh wrapper process, so its RUSAGE_CHILDREN is that run's process
# tree alone (the review, the helm processes it starts, the --base review), not earlier runs'.
_WRAPPER = """
import resource, subprocess, sys, time
started = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
if code.returncode not in (0, 1):
    sys.stderr.buffer.write(code.stderr)
    sys.exit(3)
print(seconds, peak)
"""


def one_run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB (largest process of the run's tree) of one review."""
    done = subprocess.run([sys.executable, "-c", _WRAPPER, sys.executable, "-m",
                           "platformctl.cli", "review", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"platformctl review {' '.join(args)} failed: {done.stderr}")
    seconds, peak = done.stdout.split()
    return float(seconds), float(peak)


def commit_all(repo: Path, message: str) -> None:
    git = ["git", "-C", str(repo), "-c", "user.email=b@example.com", "-c", "user.name=b"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", message], check=True)


def scratch_repo() -> Path:
    """A git repository holding a copy of this project, one commit."""
    repo = Path(tempfile.mkdtemp(prefix="platform-bench-"))
    for name in FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, repo / name,
                            ignore=shutil.ignore_patterns("__pycache__", "venv", "*.egg-info"))
        else:
            shutil.copy2(source, repo / name)
    subprocess.run(["git", "-C", str(repo), "init", "-q", "-b", "main"], check=True)
    commit_all(repo, "base")
    return repo


def scratch_history() -> Path:
    repo = scratch_repo()
    dev = repo / "Pulumi.dev.yaml"
    dev.write_text(dev.read_text().replace("    cidr: 10.10.0.0/16\n",
                                           "    cidr: 10.10.0.0/16\n    natStrategy: one-per-az\n"))
    commit_all(repo, "dev: a NAT gateway per AZ")
    return repo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    repo = scratch_history()
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{repo / 'policy-packs' / 'platform-guard'}"}
    cases = [("dev", ["dev"]), ("prod", ["prod"]), ("prod cold", ["prod"]),
             ("dev --base", ["dev", "--base", "main~1"])]
    warm = tempfile.mkdtemp(prefix="platform-bench-cache-")
    env["PLATFORMCTL_CACHE_DIR"] = warm
    for stack in ("dev", "prod"):  # fill the cache: the warm cases measure a warm review
        one_run([stack, "--project-dir", str(repo)], repo, env)
    medians: dict[str, float] = {}
    failed = False
    print(f"{'review':<12} {'runs':>4} {'median s':>9} {'max s':>7} {'peak MiB':>9}")
    try:
        for label, argv in cases:
            results = []
            for _ in range(args.runs):
                run_env = env
                if label.endswith("cold"):
                    run_env = {**env, "PLATFORMCTL_CACHE_DIR": tempfile.mkdtemp(prefix="cold-")}
                results.append(one_run([*argv, "--project-dir", str(repo)], repo, run_env))
                if run_env is not env:
                    shutil.rmtree(run_env["PLATFORMCTL_CACHE_DIR"], ignore_errors=True)
            seconds = [r[0] for r in results]
            peak = max(r[1] for r in results)
            medians[label] = statistics.median(seconds)
            print(f"{label:<12} {args.runs:>4} {medians[label]:>9.2f} {max(seconds):>7.2f} "
                  f"{peak:>9.1f}")
            limit = TARGET_COLD_SECONDS if label.endswith("cold") else TARGET_SECONDS
            failed |= max(seconds) > limit or peak > TARGET_MIB
        floor = import_floor(repo, env, args.runs)
    finally:
        shutil.rmtree(repo, ignore_errors=True)
        shutil.rmtree(warm, ignore_errors=True)
    imports = medians["prod"] / floor
    failed |= imports > TARGET_IMPORT_RATIO
    print(f"import floor (what review prod imports, nothing else): {floor:.2f} s; "
          f"prod / import floor: {imports:.2f}x")
    ratio = medians["dev --base"] / medians["dev"]
    failed |= ratio > TARGET_BASE_RATIO
    print(f"--base / single review: {ratio:.2f}x")
    print(f"targets: < {TARGET_SECONDS:.0f} s, < {TARGET_MIB:.0f} MiB per review, --base < "
          f"{TARGET_BASE_RATIO}x, prod <= {TARGET_IMPORT_RATIO}x its import floor"
          + ("  -- MISSED" if failed else "  -- met"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
