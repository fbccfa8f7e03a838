"""`platformctl dora` on a history built here, commit by commit at set times, with release
records at set times: every figure against the value worked out by hand below."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from platformctl import cli
from tests.conftest import golden_path_copy

DIGEST = "sha256:" + "ab" * 32
RECORDS = Path("gitops/releases/checkout/checkout")
BASE_FILE = "gitops/teams/checkout/checkout/hpa.yaml"
DEV_APP = "gitops/environments/dev/checkout-checkout.yaml"
PROD_APP = "gitops/environments/prod/checkout-checkout.yaml"
SPEC = "services/checkout.yaml"

# The history (UTC, November 2026). Changes of the service: C0..C2, C4; C3 touches only prod.
#   C0 11-01 00:00  everything (the first commit)          -> shipped by P1 06:00: 6 h
#   C1 11-02 00:00  the base (hpa.yaml)                     -> shipped by P2: 24 h
#   C2 11-02 12:00  dev's Application (a new image)         -> shipped by P2: 12 h
#   C3 11-02 13:00  prod's Application only                 -> not a change of the service
#   P2 11-03 00:00, rolled back 11-03 02:00 (R1)            -> failed; restored by P3: 48 h
#   C4 11-04 00:00  the spec                                -> shipped by P3 11-05 00:00: 24 h
#   P4 11-20 00:00, re-promotion (no change); R2 11-29 (9 days later: outside a 7-day window)
#   P5 11-30 00:00, rolled back 11-30 01:00 (R3)            -> failed, not restored yet (open)
COMMITS = [("2026-11-02T00:00:00Z", BASE_FILE), ("2026-11-02T12:00:00Z", DEV_APP),
           ("2026-11-02T13:00:00Z", PROD_APP), ("2026-11-04T00:00:00Z", SPEC)]
PROMOTIONS = ["2026-11-01T06:00:00Z", "2026-11-03T00:00:00Z", "2026-11-05T00:00:00Z",
              "2026-11-20T00:00:00Z", "2026-11-30T00:00:00Z"]
ROLLBACKS = ["2026-11-03T02:00:00Z", "2026-11-29T00:00:00Z", "2026-11-30T01:00:00Z"]
HOUR = 3600


def _commit(project: Path, when: str, message: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when,
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    for args in (["add", "-A"], ["commit", "-qm", message]):
        subprocess.run(["git", "-C", str(project), "-c", "commit.gpgsign=false", *args],
                       check=True, env=env, capture_output=True)


def _record(project: Path, kind: str, when: str, n: int) -> None:
    (project / RECORDS / f"{when.replace(':', '').replace('-', '')}-prod-{kind}-{n}.yaml"
     ).write_text(yaml.safe_dump({
        "service": "checkout", "team": "checkout", "kind": kind,
        "from": "dev" if kind == "promotion" else "prod", "to": "prod", "digest": DIGEST,
        "sourceCommit": "0" * 40, "previousDigest": DIGEST, "time": when}, sort_keys=False))


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    project = golden_path_copy(tmp_path_factory.mktemp("dora") / "project")
    shutil.rmtree(project / RECORDS)
    (project / RECORDS).mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(project)], check=True)
    _commit(project, "2026-11-01T00:00:00Z", "C0: the platform")
    for n, (when, path) in enumerate(COMMITS, start=1):
        with (project / path).open("a") as f:
            f.write(f"# change {n}\n")
        _commit(project, when, f"C{n}")
    for n, when in enumerate(PROMOTIONS):
        _record(project, "promotion", when, n)
    for n, when in enumerate(ROLLBACKS):
        _record(project, "rollback", when, n)
    return project


def dora(project: Path, capsys, *args: str) -> tuple[int, dict]:
    code = cli.main(["dora", "--format", "json", "--project-dir", str(project), *args])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_the_four_keys_by_hand(history, capsys):
    code, doc = dora(history, capsys, "--since", "2026-11-01", "--until", "2026-12-01")
    assert code == 0
    (service,) = doc["services"]
    weeks = 30 / 7
    assert service["deployments"] == 5
    assert service["deployments_per_week"] == round(5 / weeks, 2) == 1.17
    # Lead times 6 h, 24 h, 12 h, 24 h (C3 is prod's file only; P4 and P5 ship no change).
    assert service["changes"] == 4
    assert service["lead_time_median_seconds"] == (12 * HOUR + 24 * HOUR) / 2
    # P2 and P5 rolled back within 7 days and before the next promotion; P4's rollback 9 days on.
    assert service["failed_changes"] == 2 and service["change_failure_rate"] == 0.4
    assert service["rollbacks"] == 3
    # P2 restored by P3 48 h later; P5 not yet.
    assert service["time_to_restore_median_seconds"] == 48 * HOUR
    assert service["open_failures"] == 1
    assert doc["teams"] == [{**service, "name": "checkout"}]


def test_the_window_and_the_change_window(history, capsys):
    code, doc = dora(history, capsys, "--since", "2026-11-04", "--until", "2026-12-01")
    (service,) = doc["services"]
    assert service["deployments"] == 3  # P3, P4, P5
    assert service["changes"] == 1 and service["lead_time_median_seconds"] == 24 * HOUR  # C4
    assert service["failed_changes"] == 1 and service["change_failure_rate"] == round(1 / 3, 4)
    assert service["rollbacks"] == 2 and service["time_to_restore_median_seconds"] is None
    # A 10-day change window: P4's rollback 9 days on fails it too; the next good promotion
    # after it is none (P5 failed): two open.
    code, doc = dora(history, capsys, "--since", "2026-11-01", "--until", "2026-12-01",
                     "--window", "10")
    (service,) = doc["services"]
    assert service["failed_changes"] == 3 and service["open_failures"] == 2
    assert service["time_to_restore_median_seconds"] == 48 * HOUR


def test_text_and_markdown_say_the_same(history, capsys):
    assert cli.main(["dora", "--since", "2026-11-01", "--until", "2026-12-01", "--format",
                     "markdown", "--project-dir", str(history)]) == 0
    markdown = capsys.readouterr().out
    assert ("| checkout | checkout | 1.17 (5) | 18 h 0 min (4 changes) | 40% (2 of 5) | "
            "2 d 0 h (1 open) |") in markdown


def test_no_records_is_an_empty_table_and_a_bad_record_is_named(tmp_path, capsys):
    project = golden_path_copy(tmp_path / "project")
    shutil.rmtree(project / RECORDS)
    subprocess.run(["git", "init", "-q", "-b", "main", str(project)], check=True)
    _commit(project, "2026-11-01T00:00:00Z", "C0")
    code, doc = dora(project, capsys)
    assert code == 0 and doc["records"] == 0 and doc["services"][0]["deployments"] == 0
    assert cli.main(["dora", "--project-dir", str(project)]) == 0
    assert "no promotion or rollback of prod" in capsys.readouterr().out
    (project / RECORDS).mkdir(parents=True)
    (project / RECORDS / "broken.yaml").write_text("service: checkout\n")
    assert cli.main(["dora", "--project-dir", str(project)]) == 2
    err = capsys.readouterr().err
    assert "gitops/releases/checkout/checkout/broken.yaml" in err and "not a release record" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["--since", "2026-13-01"], "--since: '2026-13-01': allowed: a date"),
    (["--window", "0"], "--window: '0': allowed: days, more than 0"),
    (["--since", "2026-12-01", "--until", "2026-11-01"], "not before --until"),
])
def test_bad_arguments_are_one_line(args, message, history, capsys):
    try:
        code = cli.main(["dora", "--project-dir", str(history), *args])
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# -- the dashboard: the same four keys from the facts, by Prometheus's own engine (promtool) --

UNTIL = "2026-12-01T00:00:00Z"
EVAL_S = 40 * 86400  # promtool's clock starts at 0: the facts are shifted so UNTIL is 40 days


def test_the_facts_are_the_records_and_the_history(history):
    from platformctl import dora

    text = dora.metrics_text(dora.histories(history))
    series = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in text.splitlines() if not line.startswith("#")}
    base = 'platform_service="checkout",platform_team="checkout"'
    promotions = {k: v for k, v in series.items()
                  if k.startswith("platform_dora_promotion_timestamp_seconds")}
    assert sorted(promotions.values()) == [dora.parse_time(t).timestamp() for t in PROMOTIONS]
    failed = {k.split('record="')[1]: v for k, v in series.items()
              if k.startswith("platform_dora_promotion_failed")}
    assert sum(failed.values()) == 2  # P2 and P5
    assert [v for k, v in series.items() if k.startswith("platform_dora_restore_seconds")] == \
        [48 * HOUR]
    leads = sorted(v for k, v in series.items()
                   if k.startswith("platform_dora_change_lead_time_seconds"))
    assert leads == [6 * HOUR, 12 * HOUR, 24 * HOUR, 24 * HOUR]
    assert all(base in k for k in series)
    # Prometheus's own parser (promtool, as node-exporter's textfile collector parses it) takes
    # the file, and its linter finds nothing.
    from tests.test_observability import PROMTOOL

    if PROMTOOL is not None:
        done = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_dashboard_counts_what_platformctl_dora_counts(history, tmp_path):
    """The dashboard's queries, evaluated by promtool on the facts as node-exporter serves
    them (two nodes, the same file), give `platformctl dora`'s figures for the same window."""
    from tests.test_observability import PROMTOOL

    if PROMTOOL is None:
        pytest.skip("promtool is installed by .ci/run")
    from components.observability import delivery_queries
    from platformctl import dora

    until = dora.parse_time(UNTIL)
    shift = until.timestamp() - EVAL_S
    report = dora.report(history, dora.parse_time("2026-11-01T00:00:00Z"), until)
    (expected,) = report["services"]
    series = []
    for line in dora.metrics_text(dora.histories(history)).splitlines():
        if line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        value = float(value)
        if "timestamp_seconds{" in name:
            value -= shift
        for node in ("a", "b"):
            labelled = name.replace("{", f'{{instance="{node}",job="node-exporter",', 1)
            series.append({"series": labelled, "values": f"{value:.0f}x{EVAL_S // 60 + 1}"})
    window = 30 * 86400
    queries = delivery_queries("platform_service", str(window))
    wanted = {
        "deployments per week": expected["deployments_per_week"],
        "lead time (median)": expected["lead_time_median_seconds"],
        "change failure rate": expected["change_failure_rate"],
        "time to restore (median)": expected["time_to_restore_median_seconds"],
    }
    tests = [{"interval": "1m", "input_series": series, "promql_expr_test": [
        {"expr": f"round({queries[key]}, 0.01)", "eval_time": f"{EVAL_S}s",
         "exp_samples": [{"labels": '{platform_service="checkout"}',
                          "value": round(value, 2)}]}
        for key, value in wanted.items()]}]
    (tmp_path / "rules.yaml").write_text("groups: []\n")
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "tests": tests}, sort_keys=False))
    done = subprocess.run([PROMTOOL, "test", "rules", "test.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert wanted == {"deployments per week": 1.17, "lead time (median)": 18 * HOUR,
                      "change failure rate": 0.4, "time to restore (median)": 48 * HOUR}


def test_the_facts_in_gitops_are_this_repositorys(capsys):
    """gitops/platform/dora/platform-dora.yaml is what `dora --write-metrics` writes now (a
    promotion rewrites it); it needs the whole history (a shallow clone cannot say)."""
    from platformctl import dora
    from tests.conftest import REPO

    shallow = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--is-shallow-repository"],
                             capture_output=True, text=True).stdout.strip()
    if shallow != "false":
        pytest.skip("a shallow clone: the lead times need the whole history")
    assert (REPO / dora.METRICS_PATH).read_text() == dora.metrics_configmap(REPO), (
        "stale: platformctl dora --write-metrics")
