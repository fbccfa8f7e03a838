"""Benchmark: a release of the reference service under live load loses no request.

    .venv/bin/python bench/release.py            # both runs; exit 1 unless draining holds
    .venv/bin/python bench/release.py --output /tmp/release.json

Two runs of the same release, each against a throwaway PostgreSQL, behind a load balancer
modelled on the ALB's target group (tests/netproxy.py Balancer: health checks of /ready,
deregistration that still routes new requests for PROPAGATION s, in-flight requests kept for
the deregistration delay, 502 for a target that does not answer):

1. hey sends RATE requests/s (80% GET /orders/<id>, 20% POST /orders; bench/rig.py) through
   the balancer to the old replica for SECONDS s, exactly RATE x SECONDS requests;
2. after NEW_AT s the new replica starts and is registered; once the balancer has seen it
   healthy (two passing checks of /ready), the old one is deregistered and sent SIGTERM at the
   same moment, as kubelet does when the rollout deletes the old pod (without the preStop
   hook the manifests add: the service's own draining is what is measured);
3. the old replica drains: not ready at once, serving for DRAIN_SECONDS, then it stops.

With draining (DRAIN_SECONDS 5, longer than PROPAGATION) every request must get a 2xx answer
and the p99 must stay within the spec's SLO; with draining disabled (DRAIN_SECONDS 0: the old
replica stops accepting at SIGTERM) the requests the balancer still sends it fail, and the run
must show them: a benchmark that cannot see a lost request is no evidence. The exit status says
whether both held; the JSON has every figure.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import rig

RATE = 100.0  # requests/s: half of one replica's capacity (bench/evidence/checkout-checkout-load.json)
SECONDS = 14.0
NEW_AT = 3.0
PROPAGATION = 2.0  # seconds the balancer still routes new requests to a deregistered target
DRAIN_SECONDS = 5.0


def release(env: dict[str, str], replica: rig.Replica, drain_seconds: float) -> dict:
    from tests.netproxy import Balancer

    with Balancer(propagation=PROPAGATION, deregistration_delay=DRAIN_SECONDS + 5) as balancer, \
            rig.replica(env, replica, "old", drain_seconds) as (old, old_url, limited):
        old_target = balancer.register(old_url)
        balancer.wait_healthy(old_target)
        order = rig.post_order(balancer.url)
        load = rig.mixed_load(balancer.url, order, RATE, SECONDS)
        began = time.monotonic()
        events: dict[str, float] = {}
        time.sleep(NEW_AT)
        with rig.replica(env, replica, "new", drain_seconds, ready=False) as (_, new_url, _):
            events["new_started"] = time.monotonic() - began
            new_target = balancer.register(new_url)
            balancer.wait_healthy(new_target)
            events["new_healthy"] = time.monotonic() - began
            balancer.deregister(old_target)
            old.send_signal(signal.SIGTERM)
            events["old_sigterm"] = time.monotonic() - began
            events["old_exited"] = None

            def exited() -> None:
                old.wait()
                events["old_exited"] = time.monotonic() - began

            waiter = threading.Thread(target=exited, daemon=True)
            waiter.start()
            seen = rig.answers(*load)
            waiter.join(timeout=drain_seconds + 10)
    failed_after = sorted(offset for _, status, offset in seen.rows if not 200 <= status < 300)
    return {"drain_seconds": drain_seconds, "requests": seen.sent, "failed": seen.failed,
            "error_rate": round(seen.failed / max(1, seen.sent), 5),
            "p50_ms": seen.p(0.50), "p99_ms": seen.p(0.99),
            "routed": {"old": old_target.routed, "new": new_target.routed},
            "balancer_answered": dict(balancer.counts),
            "first_failure_at_s": round(failed_after[0], 2) if failed_after else None,
            "events_s": {k: v and round(v, 2) for k, v in events.items()},
            "limited_by": limited}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path,
                        default=rig.REPO / "bench" / "evidence" / "checkout-release.json")
    args = parser.parse_args()
    replica = rig.Replica.from_spec()
    runs = {}
    with rig.checkout_database() as env:
        for label, drain in (("draining", DRAIN_SECONDS), ("no_draining", 0.0)):
            runs[label] = result = release(env, replica, drain)
            print(f"{label:>12}: {result['failed']} of {result['requests']} requests failed, "
                  f"p99 {result['p99_ms']} ms, routed {result['routed']}, balancer "
                  f"{result['balancer_answered']}", file=sys.stderr)
    draining, bare = runs["draining"], runs["no_draining"]
    checks = {
        "draining: 0 failed requests": draining["failed"] == 0,
        f"draining: p99 within the SLO ({replica.latency_p99_ms:g} ms)":
            draining["p99_ms"] <= replica.latency_p99_ms,
        "no draining: failed requests seen (the benchmark can fail)": bare["failed"] > 0,
    }
    report = {"schema": "platformctl.release-under-load/v1",
              "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "method": {"rate_rps": RATE, "seconds": SECONDS, "new_replica_at_s": NEW_AT,
                         "propagation_s": PROPAGATION, "read_share": 0.8,
                         "replica_cpu": replica.cpus, "slo_p99_ms": replica.latency_p99_ms},
              "runs": runs, "checks": checks}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for check, held in checks.items():
        print(f"{'ok  ' if held else 'FAIL'} {check}")
    print(f"wrote {args.output}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    rig.run_main(main)
