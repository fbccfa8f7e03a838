"""Benchmark: the reference service survives a slow, then a dead, database path and recovers.

    .venv/bin/python bench/slow_database.py      # ~45 s; exit 1 unless the design held
    .venv/bin/python bench/slow_database.py --output /tmp/slow.json

One replica (bench/rig.py: cgroup at the spec's CPU request, pinned) against a throwaway
PostgreSQL reached through a fault proxy (tests/netproxy.py FaultProxy, TCP on the loopback),
under RATE requests/s (80% reads, 20% writes) from hey for the whole run, with the phases:

    normal -> latency (+500 ms on every chunk the service sends the database: the same fault as
    gitops/chaos/checkout-latency.yaml) -> normal -> dead (every open connection and every new
    one acknowledged and never answered) -> normal

Every request's start, time and status comes from hey; /live and /ready are polled every
POLL s. Per phase: requests, failed share, p50/p99 of the answers, the slowest answer; the
recovery time after each fault: from the fault's end to the start of the last failed request
after it. What the service is designed to do, and what the exit status checks:
- it stays alive (/live 200 throughout; the process never exits);
- during a fault every request is answered or refused within MAX_ANSWER_S (the pool's 1 s wait
  plus one query at the client's deadline), most refusals at once by the open circuit breaker
  with 503 and Retry-After; /ready fails (the canary's analysis and the balancer see it);
- after each fault it serves again within RECOVERY_S (the breaker's 2 s reset and a trial).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import rig

RATE = 50.0
POLL = 0.25
PHASES = (("normal", 6.0), ("latency", 8.0), ("normal", 8.0), ("dead", 8.0), ("normal", 10.0))
LATENCY_S = 0.5
MAX_ANSWER_S = 2.5
RECOVERY_S = 5.0


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - loopback
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _poll(base: str, began: float, stop: threading.Event, out: list) -> None:
    while not stop.is_set():
        out.append((round(time.monotonic() - began, 2), _status(base + "/live"),
                    _status(base + "/ready")))
        stop.wait(POLL)


def run() -> dict:
    from tests.netproxy import FaultProxy
    from tests.postgres import throwaway_postgres

    replica = rig.Replica.from_spec()
    seconds = sum(length for _, length in PHASES)
    with throwaway_postgres() as postgres, \
            FaultProxy(f"{postgres['host']}/.s.PGSQL.5432") as proxy, \
            rig.checkout_database({**postgres, "host": "127.0.0.1",
                                   "port": str(proxy.port)}) as env, \
            rig.replica(env, replica, "slowdb") as (service, base, limited):
        order = rig.post_order(base)
        probes: list[tuple[float, int, int]] = []
        stop = threading.Event()
        load = (rig.hey(f"{base}/orders/{order}", RATE * 0.8, seconds, per_worker=1.0),
                rig.hey(f"{base}/orders", RATE * 0.2, seconds, "POST", rig.ORDER_BODY,
                        per_worker=1.0))
        began = time.monotonic()
        poller = threading.Thread(target=_poll, args=(base, began, stop, probes), daemon=True)
        poller.start()
        windows, at = [], 0.0
        for name, length in PHASES:
            if name == "latency":
                proxy.latency = LATENCY_S
            elif name == "dead":
                proxy.dead()
            time.sleep(max(0.0, began + at + length - time.monotonic()))
            if name == "latency":
                proxy.latency = 0.0
            elif name == "dead":
                proxy.heal()  # new connections only: the dead ones stay dead
            windows.append((name, at, at + length))
            at += length
        seen = rig.answers(*load)
        stop.set()
        poller.join(5)
        alive_at_end = service.poll() is None
    phases = []
    for index, (name, start, end) in enumerate(windows):
        rows = [row for row in seen.rows if start <= row[2] < end]
        times = [row[0] for row in rows]
        failed = [row for row in rows if not 200 <= row[1] < 300]
        ready = [p for p in probes if start <= p[0] < end]
        phase = {"phase": name, "from_s": start, "to_s": end, "answered": len(rows),
                 "failed": len(failed), "failed_share": round(len(failed) / max(1, len(rows)), 3),
                 "p50_ms": round(rig.percentile(times, 0.5) * 1000, 1),
                 "p99_ms": round(rig.percentile(times, 0.99) * 1000, 1),
                 "slowest_ms": round(max(times, default=0) * 1000, 1),
                 "refused_at_once": sum(1 for row in failed if row[0] < 0.05),
                 "ready_share": round(sum(1 for p in ready if p[2] == 200) / max(1, len(ready)), 2),
                 "live_share": round(sum(1 for p in ready if p[1] == 200) / max(1, len(ready)), 2)}
        if name != "normal":
            until = windows[index + 1][2] if index + 1 < len(windows) else end + 1e9
            after = [row[2] for row in seen.rows
                     if end <= row[2] < until and not 200 <= row[1] < 300]
            phase["recovery_s"] = round(max(after) - end, 2) if after else 0.0
            back = [p[0] for p in probes if p[0] >= end and p[2] == 200]
            phase["ready_again_after_s"] = round(back[0] - end, 2) if back else None
        phases.append(phase)
    return {"schema": "platformctl.slow-database/v1",
            "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "method": {"rate_rps": RATE, "read_share": 0.8, "latency_ms": LATENCY_S * 1000,
                       "phases": [list(p) for p in PHASES], "replica_cpu": replica.cpus,
                       "limited_by": limited, "probe_every_s": POLL},
            "requests": seen.sent, "unanswered": seen.sent - len(seen.rows),
            "alive_at_end": alive_at_end, "phases": phases}


def checks(report: dict) -> dict[str, bool]:
    faults = [p for p in report["phases"] if p["phase"] != "normal"]
    return {
        "alive throughout (/live 200 at every probe, the process running at the end)":
            report["alive_at_end"] and all(p["live_share"] == 1.0 for p in report["phases"]),
        "every request answered (none lost in transport)": report["unanswered"] == 0,
        f"during each fault every answer within {MAX_ANSWER_S:g} s":
            all(p["slowest_ms"] <= MAX_ANSWER_S * 1000 for p in faults),
        "during each fault /ready failed": all(p["ready_share"] < 1.0 for p in faults),
        f"each fault recovered within {RECOVERY_S:g} s":
            all(p["recovery_s"] <= RECOVERY_S for p in faults),
        "before the faults, no failure": report["phases"][0]["failed"] == 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path,
                        default=rig.REPO / "bench" / "evidence" / "checkout-slow-database.json")
    args = parser.parse_args()
    report = run()
    report["checks"] = checks(report)
    for phase in report["phases"]:
        print(json.dumps(phase), file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for check, held in report["checks"].items():
        print(f"{'ok  ' if held else 'FAIL'} {check}")
    print(f"wrote {args.output}")
    return 0 if all(report["checks"].values()) else 1


if __name__ == "__main__":
    rig.run_main(main)
