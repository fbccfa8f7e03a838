"""Benchmark: where one replica of the reference service (services/checkout) stops meeting its
SLO, found by raising the request rate step by step against a real PostgreSQL.

    .venv/bin/python bench/load.py      # 10 s steps: bench/evidence/checkout-checkout-load.json
    .venv/bin/python bench/load.py --step-seconds 3 --output /tmp/load.json
    .venv/bin/python bench/load.py --chart-only      # the PNG again from the JSON

Method (all on the loopback interface, every step bounded in time):
- PostgreSQL: a throwaway cluster (tests/postgres.py) with the service's own migrations applied.
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
- Each step: p50/p95/p99 of every request's time, the error rate (transport errors and non-2xx
  answers), the achieved rate. The breaking point is the first step whose p99 exceeds the
  SLO's latencyP99Ms, whose error rate exceeds the SLO's error budget (1 - availability), or
  whose achieved rate falls under 95% of its target (the service no longer keeps up: with
  workers that wait for answers, a queue shows as a lower rate as much as a longer time); the
  capacity is the achieved rate of the last step before it.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SERVICE_DIR = REPO / "services" / "checkout"
SPEC = REPO / "services" / "checkout.yaml"
# Committed: the evidence platformctl reads (platformctl/loadtest.py names the file).
RESULT = REPO / "bench" / "evidence" / "checkout-checkout-load.json"
RATES = (25, 50, 100, 150, 200, 300, 400, 500, 600, 800, 1000)
READ_SHARE = 0.8
KEEP_UP = 0.95  # below this share of the target rate, the service no longer keeps up


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _cgroup(cpus: float, memory: int) -> Iterator[tuple[list[Path], str]]:
    """A cgroup limiting its processes to `cpus` CPUs and `memory` bytes: (the cgroup.procs
    files to write a pid into, what was limited). v2 where mounted so, else v1's cpu and
    memory controllers; nothing (and the reason) where neither is writable."""
    name = f"platform-bench-{os.getpid()}"
    period = 100_000
    made: list[Path] = []
    try:
        unified = Path("/sys/fs/cgroup")
        if (unified / "cgroup.controllers").is_file():
            group = unified / name
            group.mkdir()
            made.append(group)
            (group / "cpu.max").write_text(f"{int(cpus * period)} {period}")
            (group / "memory.max").write_text(str(memory))
            yield [group / "cgroup.procs"], f"cgroup v2: cpu.max {cpus} CPU, memory.max {memory}"
            return
        cpu, mem = Path("/sys/fs/cgroup/cpu") / name, Path("/sys/fs/cgroup/memory") / name
        cpu.mkdir()
        made.append(cpu)
        (cpu / "cpu.cfs_period_us").write_text(str(period))
        (cpu / "cpu.cfs_quota_us").write_text(str(int(cpus * period)))
        procs = [cpu / "cgroup.procs"]
        limited = f"cgroup v1: CFS quota {cpus} CPU"
        with contextlib.suppress(OSError):
            mem.mkdir()
            made.append(mem)
            (mem / "memory.limit_in_bytes").write_text(str(memory))
            procs.append(mem / "cgroup.procs")
            limited += f", memory limit {memory} bytes"
        yield procs, limited
    except OSError as error:
        yield [], f"not limited (no writable cgroup: {error.strerror or error})"
    finally:
        for group in reversed(made):
            with contextlib.suppress(OSError):
                group.rmdir()


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if (os.cpu_count() or 1) > 1 else []


def _wait_ready(base: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(base + "/ready", timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        time.sleep(0.1)
    raise SystemExit("the service did not become ready in 30 s")


def _hey(url: str, rate: float, seconds: float, method: str = "GET",
         body: str | None = None) -> subprocess.Popen[str]:
    # Each worker at most 5 requests/s: the rate holds while answers take up to 200 ms.
    workers = max(2, math.ceil(rate / 5))
    command = [*_pin(1), "hey", "-z", f"{seconds}s", "-c", str(workers),
               "-q", f"{rate / workers:.3f}", "-t", "5", "-o", "csv", "-m", method]
    if body is not None:
        command += ["-T", "application/json", "-d", body]
    return subprocess.Popen([*command, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _rows(process: subprocess.Popen[str]) -> list[tuple[float, int]]:
    out, err = process.communicate(timeout=120)
    if process.returncode != 0:
        raise SystemExit(f"hey failed: {err.strip()}")
    return [(float(row["response-time"]), int(row["status-code"]))
            for row in csv.DictReader(io.StringIO(out))]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _cpu_seconds(pid: int) -> float:
    """CPU time the process (all its threads) has used: utime + stime of /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def step(base: str, order: int, rate: float, seconds: float, pid: int, cpus: float) -> dict:
    """One step at `rate` requests/s for `seconds`: reads and writes at once; the service's CPU
    use over the step as a percentage of its CPU request (what an HPA's target is a share of)."""
    used, began = _cpu_seconds(pid), time.monotonic()
    reads = _hey(f"{base}/orders/{order}", rate * READ_SHARE, seconds)
    writes = _hey(f"{base}/orders", rate * (1 - READ_SHARE), seconds, "POST",
                  json.dumps({"item": "load", "quantity": 1}))
    rows = _rows(reads) + _rows(writes)
    utilisation = (_cpu_seconds(pid) - used) / (time.monotonic() - began) / cpus * 100
    # hey writes a row for every answered request; one that failed in transport has no status.
    times = [seconds_ for seconds_, _ in rows]
    errors = sum(1 for _, status in rows if not 200 <= status < 300)
    expected = rate * seconds
    lost = max(0, int(expected * 0.98) - len(rows))  # requests never answered in the step
    return {"target_rps": rate, "achieved_rps": round(len(rows) / seconds, 1),
            "requests": len(rows), "errors": errors,
            "cpu_percent_of_request": round(utilisation, 1),
            "error_rate": round((errors) / max(1, len(rows)), 5),
            "unsent_below_target": lost,
            "p50_ms": round(_percentile(times, 0.50) * 1000, 1),
            "p95_ms": round(_percentile(times, 0.95) * 1000, 1),
            "p99_ms": round(_percentile(times, 0.99) * 1000, 1)}


def run(step_seconds: float, rates: tuple[float, ...]) -> dict:
    from platform_facts.capacity import cpu_millicores, memory_mib
    from platformctl import loadtest
    from stacks import service as service_spec
    from tests.postgres import throwaway_postgres

    spec = service_spec.load(SPEC)
    cpus = cpu_millicores(spec.resources.cpu_request) / 1000
    memory = int(memory_mib(spec.resources.memory_limit) * 1048576)
    latency_ms = spec.slo.latency_p99_ms
    budget = spec.slo.error_budget
    with throwaway_postgres() as settings, tempfile.TemporaryDirectory() as scratch:
        credentials = Path(scratch)
        for name, value in (("host", settings["host"]), ("dbname", settings["dbname"]),
                            ("username", settings["user"]), ("password", "unused")):
            (credentials / name).write_text(value)
        env = {**os.environ, "DB_CREDENTIALS_DIR": str(credentials), "DRAIN_SECONDS": "0",
               "OTEL_SDK_DISABLED": "true", "PYTHONPATH": str(SERVICE_DIR)}
        python = sys.executable
        subprocess.run([python, "-m", "checkout", "migrate"], env=env, cwd=SERVICE_DIR,
                       check=True, capture_output=True)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        with _cgroup(cpus, memory) as (procs, limited):
            service = subprocess.Popen([*_pin(0), python, "-m", "checkout", "serve"],
                                       env={**env, "PORT": str(port)}, cwd=SERVICE_DIR,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                for path in procs:
                    path.write_text(str(service.pid))
                _wait_ready(base, time.monotonic() + 30)
                request = urllib.request.Request(
                    base + "/orders", data=json.dumps({"item": "load", "quantity": 1}).encode(),
                    headers={"Content-Type": "application/json"}, method="POST")
                with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
                    order = json.loads(answer.read())["id"]
                steps, breaking = [], None
                for rate in rates:
                    result = step(base, order, rate, step_seconds, service.pid, cpus)
                    result["keeps_up"] = result["achieved_rps"] >= KEEP_UP * rate
                    result["within_slo"] = loadtest.within_slo(result, latency_ms, budget)
                    steps.append(result)
                    print(f"{rate:>6} rps: achieved {result['achieved_rps']:>7}, CPU "
                          f"{result['cpu_percent_of_request']}% of request, p50 "
                          f"{result['p50_ms']} ms, p95 {result['p95_ms']} ms, p99 "
                          f"{result['p99_ms']} ms, errors {result['error_rate']:.3%}",
                          file=sys.stderr)
                    if not result["within_slo"]:
                        breaking = result
                        break
            finally:
                service.terminate()
                service.wait(timeout=30)
    within = [s for s in steps if s["within_slo"]]
    return {
        "schema": "platformctl.load/v1",
        "service": f"{spec.team}/{spec.name}",
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "method": {"tool": "hey", "read_share": READ_SHARE, "step_seconds": step_seconds,
                   "replica": {"cpu": cpus, "memory_bytes": memory, "limited_by": limited,
                               "service_cpu": 0 if _pin(0) else None,
                               "load_cpu": 1 if _pin(1) else None},
                   "slo": {"latency_p99_ms": latency_ms, "error_budget": budget}},
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
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
