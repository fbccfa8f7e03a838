# ruff: noqa: E501  (the table below is texts of the code, kept whole)
"""Realistic weakenings of the controls the project enforces, applied one at a time to the
working tree, each with the tests that must catch it: the suite pins each control's boundary
if every one is caught. Each file is restored afterwards (Ctrl-C included).

    .venv/bin/python bench/weakenings.py          # prints CAUGHT or SURVIVED per weakening

Exit 1 if any survives. Run it on a clean working tree (it rewrites files in place).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# (what a tired reviewer might approve, file, the text, its weakened form, the tests)
WEAKENINGS = [
 ("canary action to any Service", "components/rego/ingress.rego",
  '	rollout_services(name)[field(group, "servicename")]', '	field(group, "servicename") != ""', "tests/test_admission.py"),
 ("PodMonitor endpoints escape", "components/rego/monitor_scope.rego",
  'field := ["endpoints", "podMetricsEndpoints"][_]\n	endpoint', 'field := ["endpoints"][_]\n	endpoint', "tests/test_admission.py"),
 ("digest any @sha256:", "components/rego/images.rego", "`@sha256:[a-f0-9]{64}$`", "`@sha256:`", "tests/test_admission.py"),
 ("backup retention 13", "stacks/config.py", "lambda c: c.database.backup_retention_days >= 14", "lambda c: c.database.backup_retention_days >= 13", "tests/test_config.py"),
 ("prod exceptions in non-prod", "stacks/config.py", '            if self.prod_exceptions:\n                raise Invalid("prodExceptions"', '            if False:\n                raise Invalid("prodExceptions"', "tests/test_config.py"),
 ("exception last day off by one", "policy-packs/platform-guard/platform_guard/policies/security.py", 'live = _today() < str(exception["until"])', 'live = _today() <= str(exception["until"])', "tests/test_config.py"),
 ("monitoring peer any namespace", "components/tenancy.py", '                "namespaceSelector": _namespace_selector(monitoring_namespace),\n                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]}],', '                "namespaceSelector": {},\n                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}}]}],', "tests/test_network_policy_edges.py"),
 ("drop all in any case", "components/rego/capabilities.rego", "dropped := {c | c :=", "dropped := {upper(c) | c :=", "tests/test_admission.py"),
 ("alert severity unchecked", "components/rego/telemetry.rego", "	not severities[severity]\n", "	false\n", "tests/test_admission.py"),
 ("externalIPs allowed", "components/admission.py", '"!has(object.spec.externalIPs) || size(object.spec.externalIPs) == 0"', '"true"', "tests/test_admission.py"),
 ("relabel job allowed", "components/rego/monitor_scope.rego", 'protected_labels := {"namespace", "job",', 'protected_labels := {"namespace",', "tests/test_admission.py"),
 ("verify-full downgraded", "components/database.py", '"sslmode": "verify-full" if config.ca_bundle_file else "require"', '"sslmode": "require"', "tests/test_database_tls.py tests/test_golden.py"),
 ("remote kustomize allowed", "platformctl/gitopscheck.py", "            if REMOTE.search(value):", "            if False:", "tests/test_gitops_sources.py"),
 ("exemption horizon off", "components/admission.py", "            if exemption.until > latest:", "            if False:", "tests/test_config.py"),
]


def main() -> int:
    survived = []
    for name, path, old, new, tests in WEAKENINGS:
        target = REPO / path
        original = target.read_text()
        if old not in original:
            print(f"STALE    {name}: the text is no longer in {path}", flush=True)
            survived.append(name)
            continue
        target.write_text(original.replace(old, new, 1))
        try:
            result = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-n", "2", *tests.split()],
                cwd=REPO, capture_output=True, text=True)
        finally:
            target.write_text(original)
        caught = result.returncode != 0
        print(f"{'CAUGHT  ' if caught else 'SURVIVED'} {name}", flush=True)
        if not caught:
            survived.append(name)
    print(f"{len(WEAKENINGS) - len(survived)} of {len(WEAKENINGS)} caught")
    return 1 if survived else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
