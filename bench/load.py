"""Benchmark: where one replica of the reference service (services/checkout) stops meeting its
SLO, found by raising the request rate step by step against a real PostgreSQL.

    .venv/bin/python bench/load.py      # 10 s steps: bench/evidence/checkout-checkout-load.json
    .venv/bin/python bench/load.py --step-seconds 3 --output /tmp/load.json
    .venv/bin/python bench/load.py --chart-only      # the PNG again from the JSON

Method (all on the loopback interface, every step bounded in time):
- PostgreSQL: a throwaway cluster (tests/postgres.py) with the service's own migrations applied
  (bench/rig.py sets up the database, the replica and the load for every service benchmark).
- The service: `python -m checkout serve`, one process as one replica, in a cgroup whose CPU
  quota is the spec's cpuRequest (250m: 25 ms of CPU per 100 ms) and whose memory limit is the
  spec's memoryLimit, pinned to CPU 0. Without a writable cgroup it runs unlimited, and the
  result says so.
- The load: hey (Debian's package, a well-kept Go load generator: rate-limited workers, every
  request's time and status in its CSV, no Python in the client to compete with the service
  for CPU), pinned to CPU 1: 80% reads (GET /orders/<id> of an order made beforehand) and 20%
  writes (POST /orders) at each step's rate. hey's workers wait for each answer before the next
  request, so a slow service also lowers the rate it is offered: the achieved rate is reported
  beside the target.
- Each step: p50/p95/p99 of the answered requests' times; the error rate: requests sent without
  a 2xx answer (hey sends exactly rate x seconds requests, -n, so one that failed in transport,
  which its CSV leaves out, counts too); the achieved rate: answers over the time from the first
  request to the last answer. The breaking point is the first step whose p99 exceeds the
  SLO's latencyP99Ms, whose error rate exceeds the SLO's error budget (1 - availability), or
  whose achieved rate falls under 95% of its target (the service no longer keeps up: with
  workers that wait for answers, a queue shows as a lower rate as much as a longer time); the
  capacity is the achieved rate of the last step before it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import rig

# Committed: the evidence platformctl reads (platformctl/loadtest.py names the file).
RESULT = rig.REPO / "bench" / "evidence" / "checkout-checkout-load.json"
RATES = (25, 50, 100, 150, 200, 300, 400, 500, 600, 800, 1000)
READ_SHARE = 0.8
KEEP_UP = 0.95  # below this share of the target rate, the service no longer keeps up


def step(base: str, order: int, rate: float, seconds: float, pid: int, cpus: float) -> dict:
    """One step at `rate` requests/s for `seconds`: reads and writes at once; the service's CPU
    use over the step as a percentage of its CPU request (what an HPA's target is a share of)."""
    used, began = rig.cpu_seconds(pid), time.monotonic()
    seen = rig.answers(*rig.mixed_load(base, order, rate, seconds, READ_SHARE))
    utilisation = (rig.cpu_seconds(pid) - used) / (time.monotonic() - began) / cpus * 100
    return {"target_rps": rate, "achieved_rps": round(len(seen.rows) / seen.seconds, 1),
            "requests": seen.sent, "errors": seen.failed,
            "cpu_percent_of_request": round(utilisation, 1),
            "error_rate": round(seen.failed / max(1, seen.sent), 5),
            "p50_ms": seen.p(0.50), "p95_ms": seen.p(0.95), "p99_ms": seen.p(0.99)}


def run(step_seconds: float, rates: tuple[float, ...]) -> dict:
    from platformctl import loadtest
    from stacks import service as service_spec

    spec = service_spec.load(rig.SPEC)
    replica = rig.Replica.from_spec()
    with rig.checkout_database() as env, rig.replica(env, replica) as (service, base, limited):
        order = rig.post_order(base)
        steps, breaking = [], None
        for rate in rates:
            result = step(base, order, rate, step_seconds, service.pid, replica.cpus)
            result["keeps_up"] = result["achieved_rps"] >= KEEP_UP * rate
            result["within_slo"] = loadtest.within_slo(result, replica.latency_p99_ms,
                                                       replica.error_budget)
            steps.append(result)
            print(f"{rate:>6} rps: achieved {result['achieved_rps']:>7}, CPU "
                  f"{result['cpu_percent_of_request']}% of request, p50 "
                  f"{result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 "
                  f"{result['p99_ms']} ms, errors {result['error_rate']:.3%}", file=sys.stderr)
            if not result["within_slo"]:
                breaking = result
                break
    within = [s for s in steps if s["within_slo"]]
    return {
        "schema": "platformctl.load/v1",
        "service": f"{spec.team}/{spec.name}",
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "method": {"tool": "hey", "read_share": READ_SHARE, "step_seconds": step_seconds,
                   "replica": {"cpu": replica.cpus, "memory_bytes": replica.memory,
                               "limited_by": limited,
                               "service_cpu": 0 if rig.pin(0) else None,
                               "load_cpu": 1 if rig.pin(1) else None},
                   "slo": {"latency_p99_ms": replica.latency_p99_ms,
                           "error_budget": replica.error_budget}},
        "steps": steps,
        "breaking_point": breaking and {"target_rps": breaking["target_rps"],
                                        "p99_ms": breaking["p99_ms"],
                                        "error_rate": breaking["error_rate"]},
        "capacity_rps_per_replica": within[-1]["achieved_rps"] if within else 0.0,
        "cpu_percent_at_capacity": within[-1]["cpu_percent_of_request"] if within else None,
    }


def chart(result: dict, path: Path) -> None:
    """The report as a PNG: p50/p95/p99 and the SLO's latency against the offered rate, the
    CPU's share of the request on the right, the breaking point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = result["steps"]
    rates = [s["target_rps"] for s in steps]
    figure, latency = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key, style in (("p50_ms", ":"), ("p95_ms", "--"), ("p99_ms", "-")):
        latency.plot(rates, [s[key] for s in steps], style, marker="o", label=key[:3])
    slo = result["method"]["slo"]["latency_p99_ms"]
    latency.axhline(slo, color="red", linewidth=1, label=f"SLO p99 {slo:g} ms")
    if result["breaking_point"]:
        latency.axvline(result["breaking_point"]["target_rps"], color="grey", linewidth=1,
                        linestyle="--", label="breaking point")
    latency.set_xlabel("offered rate (requests/s)")
    latency.set_ylabel("latency (ms)")
    cpu = latency.twinx()
    cpu.plot(rates, [s["cpu_percent_of_request"] for s in steps], color="tab:green",
             alpha=0.5, marker=".", label="CPU % of request")
    cpu.set_ylabel("CPU, % of the request")
    cpu.set_ylim(0, 110)
    handles = [*latency.get_legend_handles_labels()[0], *cpu.get_legend_handles_labels()[0]]
    latency.legend(handles=handles, loc="upper left", fontsize=8)
    replica = result["method"]["replica"]
    latency.set_title(f"{result['service']}: one replica at {replica['cpu']:g} CPU, "
                      f"{result['measured_at'][:10]}: {result['capacity_rps_per_replica']:g} "
                      "requests/s within the SLO", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, metadata={"Software": None})
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--output", type=Path, default=RESULT)
    parser.add_argument("--chart-only", action="store_true",
                        help="draw the PNG from the JSON at --output, without a load run")
    args = parser.parse_args()
    if not args.step_seconds > 0:
        parser.error(f"--step-seconds {args.step_seconds}: allowed: a positive number")
    png = args.output.with_suffix(".png")
    if args.chart_only:
        if not args.output.is_file():
            parser.error(f"--output {args.output}: no report there to draw")
        chart(json.loads(args.output.read_text(encoding="utf-8")), png)
        print(f"wrote {png}")
        return 0
    result = run(args.step_seconds, RATES)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    chart(result, png)
    print(f"capacity {result['capacity_rps_per_replica']} requests/s per replica within the "
          f"SLO; breaking point {result['breaking_point']}; wrote {args.output} and {png}")
    # Not one step within the SLO: the service (or the harness) is broken, not slow.
    return 0 if result["capacity_rps_per_replica"] > 0 else 1


if __name__ == "__main__":
    rig.run_main(main)
