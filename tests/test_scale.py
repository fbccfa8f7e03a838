"""Team scale must not change what the review says: a generated 50-team prod stack (bench/scale.py)
reviews to the verdicts, cost, capacity and resource count recorded in tests/fixtures/scale50.json
when that snapshot was taken, so an optimisation of the review that changes an answer
fails here. `python -m tests.test_scale --write` takes a new snapshot after a deliberate change."""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
from pathlib import Path

from tests.conftest import REPO

SNAPSHOT = REPO / "tests" / "fixtures" / "scale50.json"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_scale", REPO / "bench" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(REPO / "bench"))
    spec.loader.exec_module(module)
    return module


def review_of(teams: int) -> dict:
    from platformctl.cli import review_document

    path = _bench().stack_with_teams(teams, Path(tempfile.mkdtemp(prefix=f"scale{teams}-")))
    return review_document(str(path), REPO)  # the collector tuned by tests/conftest.py


def answers() -> dict:
    """What the review of the 50-team stack says, without what varies by machine or path."""
    doc = review_of(50)
    return {
        "resource_count": doc["resource_count"],
        "resource_counts": doc["resource_counts"],
        "exit_code": doc["exit_code"],
        "policies": doc["policies"],
        "total_monthly_usd": doc["total_monthly_usd"],
        "fixed_monthly_usd": doc["fixed_monthly_usd"],
        "usage_monthly_usd": doc["usage_monthly_usd"],
        "cost_lines": sorted([line["resource_name"], line["key"], line["monthly_usd"]]
                             for line in doc["cost"]["lines"]),
        "capacity": doc["capacity"],
    }


def test_a_50_team_stack_reviews_as_it_did():
    found = json.loads(json.dumps(answers()))
    recorded = json.loads(SNAPSHOT.read_text())
    assert found["resource_count"] == recorded["resource_count"] > 900
    for key in recorded:
        assert found[key] == recorded[key], key


if __name__ == "__main__" and "--write" in sys.argv:
    SNAPSHOT.write_text(json.dumps(answers(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT.relative_to(REPO)}")
