"""The reference service on this machine for the service benchmarks (bench/load.py,
bench/release.py, bench/slow_database.py, bench/service_regression.py): a throwaway PostgreSQL with the
service's migrations, replicas of `python -m checkout serve` each in a cgroup at the spec's CPU
request and memory limit, pinned to CPU 0, and hey (Debian's Go load generator) pinned to CPU 1.
Everything listens on the loopback interface and stops by itself."""

from __future__ import annotations

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SERVICE_DIR = REPO / "services" / "checkout"
SPEC = REPO / "services" / "checkout.yaml"
ORDER_BODY = json.dumps({"item": "load", "quantity": 1})


def run_main(main: Callable[[], int]) -> None:
    """A benchmark's entry point: exit with its status; Ctrl-C is one line and 130 (the context
    managers have stopped the replicas, the database and the cgroups by then), no traceback."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if (os.cpu_count() or 1) > 1 else []


@contextlib.contextmanager
def cgroup(cpus: float, memory: int, name: str = "replica") -> Iterator[tuple[list[Path], str]]:
    """A cgroup limiting its processes to `cpus` CPUs and `memory` bytes: (the cgroup.procs
    files to write a pid into, what was limited). v2 where mounted so, else v1's cpu and
    memory controllers; nothing (and the reason) where neither is writable."""
    name = f"platform-bench-{os.getpid()}-{name}"
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


def wait_ready(base: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(base + "/ready", timeout=1) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        time.sleep(0.1)
    raise SystemExit(f"the service at {base} did not become ready in {seconds:g} s")


def post_order(base: str) -> int:
    request = urllib.request.Request(base + "/orders", data=ORDER_BODY.encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
        return json.loads(answer.read())["id"]


@dataclass(frozen=True)
class Replica:
    """What one replica gets: the spec's CPU request and memory limit, and its SLO."""

    cpus: float
    memory: int
    latency_p99_ms: float
    error_budget: float

    @classmethod
    def from_spec(cls, path: Path = SPEC) -> Replica:
        from platform_facts.capacity import cpu_millicores, memory_mib
        from stacks import service as service_spec

        spec = service_spec.load(path)
        return cls(cpu_millicores(spec.resources.cpu_request) / 1000,
                   int(memory_mib(spec.resources.memory_limit) * 1048576),
                   spec.slo.latency_p99_ms, spec.slo.error_budget)


@contextlib.contextmanager
def checkout_database(postgres: dict[str, str] | None = None,
                      service_dir: Path = SERVICE_DIR) -> Iterator[dict[str, str]]:
    """The environment a replica of the service in `service_dir` runs with: credentials files
    for a throwaway PostgreSQL (or for `postgres`'s libpq settings, e.g. a fault proxy's host
    and port) with that service's migrations applied."""
    from tests.postgres import throwaway_postgres

    with contextlib.ExitStack() as stack:
        settings = postgres or stack.enter_context(throwaway_postgres())
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for name, value in (("host", settings["host"]), ("dbname", settings["dbname"]),
                            ("username", settings["user"]), ("password", "unused"),
                            *((("port", settings["port"]),) if "port" in settings else ())):
            (scratch / name).write_text(value)
        env = {**os.environ, "DB_CREDENTIALS_DIR": str(scratch), "OTEL_SDK_DISABLED": "true",
               "PYTHONPATH": str(service_dir)}
        subprocess.run([sys.executable, "-m", "checkout", "migrate"], env=env, cwd=service_dir,
                       check=True, capture_output=True)
        yield env


@contextlib.contextmanager
def replica(env: dict[str, str], replica_: Replica, name: str = "replica",
            drain_seconds: float = 0.0, ready: bool = True,
            extra_env: dict[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, str, str]]:
    """One replica (of the service `env`'s PYTHONPATH names) listening on a free loopback
    port: (its process, its base URL, what limits it). Stopped (SIGTERM, then waited for) on
    leaving."""
    port = free_port()
    # Its stderr to a file (a pipe nobody reads would stop the replica once full).
    with cgroup(replica_.cpus, replica_.memory, name) as (procs, limited), \
            tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*pin(0), sys.executable, "-m", "checkout", "serve"], cwd=env["PYTHONPATH"],
            env={**env, "PORT": str(port), "DRAIN_SECONDS": str(drain_seconds),
                 **(extra_env or {})},
            stdout=subprocess.DEVNULL, stderr=log)
        try:
            for path in procs:
                path.write_text(str(process.pid))
            base = f"http://127.0.0.1:{port}"
            if ready:
                wait_ready(base)
            yield process, base, limited
        finally:
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(timeout=drain_seconds + 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def hey(url: str, rate: float, seconds: float, method: str = "GET", body: str | None = None,
        per_worker: float = 5.0) -> subprocess.Popen[str]:
    """hey sending `rate` requests/s for `seconds`: exactly rate x seconds requests (-n), so
    a request that failed in transport, which hey leaves out of its CSV, is one the count misses.
    Each worker sends at most `per_worker` requests/s: the rate holds while answers take up to
    1/per_worker s."""
    workers = max(2, math.ceil(rate / per_worker))
    total = max(workers, round(rate * seconds / workers) * workers)
    command = [*pin(1), "hey", "-n", str(total), "-c", str(workers),
               "-q", f"{rate / workers:.3f}", "-t", "5", "-o", "csv", "-m", method]
    if body is not None:
        command += ["-T", "application/json", "-d", body]
    process = subprocess.Popen([*command, url], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.sent = total  # type: ignore[attr-defined]
    return process


@dataclass
class Answers:
    """What hey saw: every request sent, and each answer's (seconds, status, offset in the run)."""

    sent: int
    rows: list[tuple[float, int, float]]
    seconds: float

    @property
    def failed(self) -> int:
        """Requests without a 2xx answer: non-2xx answers and those that failed in transport."""
        return self.sent - sum(1 for _, status, _ in self.rows if 200 <= status < 300)

    def p(self, fraction: float) -> float:
        """The `fraction` percentile of the answered requests' times, in milliseconds."""
        return round(percentile([row[0] for row in self.rows], fraction) * 1000, 1)


def answers(*processes: subprocess.Popen[str]) -> Answers:
    rows: list[tuple[float, int, float]] = []
    sent, began = 0, time.monotonic()
    for process in processes:
        out, err = process.communicate(timeout=300)
        if process.returncode != 0:
            raise SystemExit(f"hey failed: {err.strip()}")
        sent += process.sent  # type: ignore[attr-defined]
        rows += [(float(row["response-time"]), int(row["status-code"]), float(row["offset"]))
                 for row in csv.DictReader(io.StringIO(out))]
    last = max((offset + seconds for seconds, _, offset in rows), default=0.0)
    return Answers(sent, rows, last or (time.monotonic() - began))


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def cpu_seconds(pid: int) -> float:
    """CPU time the process (all its threads) has used: utime + stime of /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mixed_load(base: str, order: int, rate: float, seconds: float,
               read_share: float = 0.8) -> tuple[subprocess.Popen, subprocess.Popen]:
    """The benchmarks' traffic: `read_share` of the rate GET /orders/<order>, the rest POST
    /orders, both hey processes started now."""
    return (hey(f"{base}/orders/{order}", rate * read_share, seconds),
            hey(f"{base}/orders", rate * (1 - read_share), seconds, "POST", ORDER_BODY))
