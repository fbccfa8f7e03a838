"""The Backstage software template, run by Backstage's real scaffolder (its dry-run, in a test
backend: tools/backstage/dry-run.cjs): the spec it writes for the reference service's values
turns, by `platformctl new-service`, into exactly the committed manifests; what the command
refuses, the form refuses, on the same key and in the same words where JSON Schema has them."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from platformctl import cli, template
from stacks import service as service_spec
from tests.conftest import REPO, golden_path_copy
from tests.test_catalog import NODE, TOOLS, needs_backstage, validate

SPEC = REPO / "services" / "checkout.yaml"


def checkout_values() -> dict:
    """What the form sends for the reference service: its spec, defaults filled in as the form
    fills them."""
    spec = service_spec.load(SPEC)
    return spec.model_dump(by_alias=True, exclude_none=True, mode="json")


def _with(values: dict, key: str, value) -> dict:
    changed = copy.deepcopy(values)
    target = changed
    *parents, last = key.split(".")
    for parent in parents:
        target = target[parent]
    if value is None:
        del target[last]
    else:
        target[last] = value
    return changed


# (key new-service names, values changed like this[, key the form names when another])
BAD = [
    ("name", lambda v: _with(v, "name", "Checkout!")),
    ("team", lambda v: _with(v, "team", "nobody")),
    ("port", lambda v: _with(v, "port", 80)),
    ("host", lambda v: _with(v, "host", None)),  # exposure public without its host
    ("image.digest", lambda v: _with(v, "image.digest", "latest")),
    ("slo.availability", lambda v: _with(v, "slo.availability", 1.5)),
    ("migrations", lambda v: _with(v, "database", False), "database"),  # need the database
]


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory) -> list[dict]:
    """The reference service's values and each bad variant, through one scaffolder."""
    needs_backstage()
    cases = [checkout_values(), *(bad[1](checkout_values()) for bad in BAD)]
    path = tmp_path_factory.mktemp("template") / "cases.json"
    path.write_text(json.dumps(cases))
    result = subprocess.run([NODE, str(TOOLS / "dry-run.cjs"), str(REPO / template.TEMPLATE_DIR),
                             str(path)], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _project(tmp_path: Path) -> Path:
    return golden_path_copy(tmp_path / "project")


@pytest.mark.e2e
def test_the_template_is_generated_and_valid_by_backstage():
    files = cli.generated_files(REPO)
    for path in (template.TEMPLATE_PATH, template.SKELETON_PATH):
        assert (REPO / path).read_text() == files[Path(path)], (
            f"{path} is stale: platformctl generate --write")
    code, results = validate(REPO / template.TEMPLATE_PATH)
    assert code == 0 and [r["kind"] for r in results] == ["Template"], results


def test_the_form_asks_for_every_field_of_the_spec():
    asked = {name for _, names in template.PAGES for name in names}
    assert asked == set(service_spec.ServiceSpec.model_json_schema(by_alias=True)["properties"])


@pytest.mark.e2e
def test_the_scaffolders_spec_becomes_the_committed_manifests(dry_runs, tmp_path, capsys):
    run = dry_runs[0]
    assert run["status"] == 200, run
    assert list(run["files"]) == ["services/checkout.yaml"]
    written = run["files"]["services/checkout.yaml"]
    # The same service as the hand-written spec.
    assert service_spec.ServiceSpec.model_validate(yaml.safe_load(written)) == \
        service_spec.load(SPEC)
    # ...and, where the hand-written spec was, the same manifests, byte for byte.
    project = _project(tmp_path)
    (project / "services" / "checkout.yaml").write_text(written)
    code = cli.main(["new-service", str(project / "services" / "checkout.yaml"), "--check",
                     "--project-dir", str(project)])
    out = capsys.readouterr().out
    assert code == 0 and "stale" not in out, out
    # The pull request, in the dry run: this repository, a branch named after the service.
    assert run["output"]["links"] == [{"title": "The pull request",
                                       "url": "github.com?owner=example-org&repo=platform"}]
    assert any('"branchName": "service-checkout"' in line for line in run["log"])


@pytest.mark.e2e
@pytest.mark.parametrize("index", range(len(BAD)), ids=[bad[0] for bad in BAD])
def test_the_form_refuses_what_new_service_refuses(index, dry_runs, tmp_path, capsys):
    key, change, *form_key = BAD[index]
    run = dry_runs[index + 1]
    assert run["status"] == 400, run
    # The property's path, or for a missing one the message naming it ('requires property').
    named = {".".join(map(str, e["path"])) or e["message"] for e in run["errors"]}
    wanted = form_key[0] if form_key else key
    assert wanted in named or f'requires property "{wanted}"' in named, (key, run["errors"])
    # new-service refuses the same spec, naming the same key.
    project = _project(tmp_path)
    path = project / "services" / "checkout.yaml"
    path.write_text(yaml.safe_dump(change(checkout_values()), sort_keys=False))
    code = cli.main(["new-service", str(path), "--check", "--project-dir", str(project)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{key}" in err or key.rsplit(".", 1)[-1] in err, err
    # Where the command says what is allowed, the form's help for the field says it too.
    if "allowed: " in err and key != "team":
        allowed = err.split("allowed: ", 1)[1].splitlines()[0].rstrip(".")
        fields = {name: field for page in template.parameters(["checkout"])
                  for name, field in page["properties"].items()}
        field = fields[key.split(".")[0]]
        if "." in key:
            field = field["properties"][key.split(".")[1]]
        assert allowed in field.get("description", ""), (allowed, field)
