"""Where a review's time goes at organisation scale: cProfile of `platformctl review` of prod with
generated teams (bench/scale.py's stacks), in this process, warm, plus the garbage collector's
pauses (which cProfile does not see).

    .venv/bin/python bench/profile_review.py                 # 50 teams, top 25 by cumulative time
    .venv/bin/python bench/profile_review.py --teams 200 --top 40 --sort tottime
    .venv/bin/python bench/profile_review.py --default-gc    # Python's collector thresholds

Shows two views: the project's own functions (components/, stacks/, platformctl/, the policy
pack), and everything (the Pulumi SDK's Output machinery and asyncio included), so a change can
be judged by where the time moved; then the collections per generation and their time. The
collector is tuned as the `platformctl` command tunes it (cli._batch_process_gc) unless
`--default-gc`. What it found: the program's cost collector resolving every input of
every resource (Output.from_input), the policy adapter building each resource's view per policy,
Evaluation.by_urn() rebuilt per ancestors() call, the budget policy linking every resource's
dependencies; then, invisible to cProfile, full collections walking the whole live graph about a
dozen times (a third of the run at default thresholds), and the SDK walking the Python stack of
every resource for source positions nobody reads offline (a tenth at 200 teams).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import REPO, stack_with_teams  # noqa: E402

OWN = ("/components/", "/stacks/", "/platformctl/", "/platform_guard/", "/platform_facts/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", choices=["cumulative", "tottime"], default="cumulative")
    parser.add_argument("--default-gc", action="store_true",
                        help="keep Python's collector thresholds (the CLI tunes them)")
    args = parser.parse_args()
    path = stack_with_teams(args.teams, Path(tempfile.mkdtemp(prefix="profile-")))
    from platformctl import cli

    def review() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            cli.main(["review", str(path), "--format", "json", "--project-dir", str(REPO)])

    review()  # warm: imports, the render cache
    if not args.default_gc:
        gc.set_threshold(*cli.GC_THRESHOLDS)
    pauses = {generation: [0, 0.0] for generation in range(3)}
    started: list[float] = []

    def pause(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        else:
            entry = pauses[info["generation"]]
            entry[0] += 1
            entry[1] += time.perf_counter() - started.pop()

    gc.callbacks.append(pause)
    profile = cProfile.Profile()
    profile.enable()
    review()
    profile.disable()
    gc.callbacks.remove(pause)
    stats = pstats.Stats(profile)
    total = sum(row[2] for row in stats.stats.values())  # tottime over every function
    print(f"{args.teams} teams: {total:.2f} s of function time (profiled)\n")
    for title, keep in (("the project's own functions", lambda f: any(o in f for o in OWN)),
                        ("everything", lambda f: True)):
        rows = [(key, value) for key, value in stats.stats.items() if keep(key[0])]
        column = 3 if args.sort == "cumulative" else 2
        rows.sort(key=lambda kv: kv[1][column], reverse=True)
        print(f"-- {title}, by {args.sort} time")
        print(f"{'calls':>10} {'tottime':>8} {'cumtime':>8}  function")
        for (filename, line, name), (_, calls, tottime, cumtime, _) in rows[:args.top]:
            where = filename.split("/site-packages/")[-1].replace(str(REPO) + "/", "")
            print(f"{calls:>10} {tottime:>8.2f} {cumtime:>8.2f}  {where}:{line}({name})")
        print()
    print(f"-- garbage collector ({'default' if args.default_gc else 'tuned'} thresholds "
          f"{gc.get_threshold()})")
    for generation, (count, seconds) in pauses.items():
        print(f"generation {generation}: {count:>5} collections {seconds:>6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
