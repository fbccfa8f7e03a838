"""Shared fixtures: each real stack is evaluated once per session (about a second each) and the
many assertions read that one recording; only mutants get evaluations of their own. The
commands the tests run in-process (`cli.main`) get a copy of that recording too, through the
one pipeline, when they review a real stack of this repository."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from platformctl.harness import evaluate
from platformctl.recording import Evaluation

REPO = Path(__file__).resolve().parent.parent
REAL_STACKS = ("dev", "prod")
# What the golden path reads and writes: the stack files, their certificates, gitops/,
# services/ and the software catalog.
GOLDEN_PATH_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "certs", "gitops",
                     "services", "catalog", "catalog-info.yaml")


def require_tool(present: bool, message: str) -> None:
    """A test's outside tool (Node's Mermaid, Backstage): skipped when missing, except under
    .ci/run (PLATFORM_CI), which installs it and where a missing tool fails, never skips."""
    import os

    if present:
        return
    if os.environ.get("PLATFORM_CI"):
        pytest.fail(message)
    pytest.skip(message)


def _repository_names(pattern: str = "*") -> list[str]:
    """The repository's own paths matching `pattern`: tracked, and new ones git does not ignore
    (what a walk of the tree finds without the virtualenvs, node_modules and .git)."""
    import subprocess

    names = subprocess.run(["git", "-C", str(REPO), "ls-files", "--cached", "--others",
                            "--exclude-standard", "-z", pattern], capture_output=True,
                           text=True, check=True).stdout
    return sorted(set(filter(None, names.split("\0"))))


def repository_files(pattern: str = "*") -> list[Path]:
    """The repository's own files matching `pattern` (see _repository_names)."""
    return [REPO / name for name in _repository_names(pattern) if (REPO / name).is_file()]


def repository_copy(project: Path, leave_out: str | None = None) -> Path:
    """This repository's files as they are in the working tree (tracked, and new ones git does
    not ignore), links kept as links, in `project`; `leave_out`: a path prefix not copied."""
    for name in _repository_names():
        source = REPO / name
        if (source.is_file() or source.is_symlink()) and not (
                leave_out and name.startswith(leave_out)):
            (project / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, project / name, follow_symlinks=False)
    return project


def golden_path_copy(project: Path) -> Path:
    """A project directory with this repository's golden-path files (for commands that write)."""
    project.mkdir(parents=True, exist_ok=True)
    for name in GOLDEN_PATH_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, project / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project / name)
    return project


def pytest_configure(config):
    """Each test worker is a batch process too: the collector tuned as `platformctl` tunes it
    (cli.GC_THRESHOLDS: full collections were a third of an evaluation's time), and the heap
    frozen at exit, so the interpreter's last collections do not walk the session's recordings
    (about two seconds a worker)."""
    import atexit
    import gc

    from platformctl import cli

    gc.set_threshold(*cli.GC_THRESHOLDS)
    atexit.register(gc.freeze)


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config):
    """The heap frozen before pytest's own last collections (its unraisable-exception check
    collects twice at the end, walking every recording: about three seconds a worker)."""
    import gc

    gc.freeze()


_SHARED: dict[str, tuple[bytes, Evaluation]] = {}  # per worker: stack -> (its file, recording)
_RUN_DIR: list[Path] = []  # a directory every worker of this run shares (none without xdist)


@pytest.fixture(scope="session", autouse=True)
def _run_directory(tmp_path_factory):
    """xdist's workers have base directories under the run's own (pytest keeps and removes it
    with the run); without xdist there is one process and nothing to share."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        _RUN_DIR.append(tmp_path_factory.getbasetemp().parent)
    yield
    _RUN_DIR.clear()


def shared_evaluation(name: str) -> Evaluation:
    """The real stack `name` of this repository, evaluated once per run (again if its stack
    file changed): by the first worker that asks, the others load its recording. The recording
    is shared: read it, never change it."""
    source = (REPO / f"Pulumi.{name}.yaml").read_bytes()
    if name not in _SHARED or _SHARED[name][0] != source:
        _SHARED[name] = (source, _evaluated_once_per_run(name, source))
    evaluation = _SHARED[name][1]
    assert not evaluation.rendered, (
        f"the shared recording of {name} was rendered in place by an earlier test: hand the "
        "pipeline recording_copy(), never the recording itself")
    return evaluation


def _evaluated_once_per_run(name: str, source: bytes) -> Evaluation:
    import hashlib

    return once_per_run(f"{name}-{hashlib.sha256(source).hexdigest()[:16]}",
                        lambda: evaluate(name, project_dir=REPO))


def once_per_run(key: str, make: Callable[[], Evaluation]) -> Evaluation:
    """`make()`'s recording, made by the first worker of the run that asks (the others wait for
    it and load it); `key` names what `make` evaluates, inputs included."""
    import fcntl
    import pickle

    if not _RUN_DIR:
        return make()
    directory = _RUN_DIR[0]
    saved = directory / f"recording-{key}.pickle"
    with open(directory / f".recording-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a worker that asks meanwhile waits for this one
        try:
            if saved.exists():
                return pickle.loads(saved.read_bytes())
            evaluation = make()
            partial = saved.with_suffix(".partial")
            partial.write_bytes(pickle.dumps(evaluation))
            partial.replace(saved)
            return evaluation
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def recording_copy(name: str) -> Evaluation:
    """A deep copy of the shared recording of the real stack `name`: what the pipeline may
    render and change (in-process reviews get one instead of evaluating again)."""
    return copy_of(shared_evaluation(name))


def copy_of(evaluation: Evaluation) -> Evaluation:
    """A deep copy of a recording (by pickle: twice as fast as copy.deepcopy)."""
    import pickle

    return pickle.loads(pickle.dumps(evaluation))


@pytest.fixture(scope="session", autouse=True)
def _pipeline_shares_the_real_stacks():
    """`review_stack("dev")` in-process evaluates the same program with the same inputs as the
    `evaluations` fixture (test_harness proves evaluations repeatable): it gets a deep copy of
    the shared recording, which it may render and change. So does a real stack's file copied
    into another project directory whose inputs are this repository's (`_same_inputs`). Anything
    else is evaluated as before."""
    from platformctl import pipeline, stackfile
    from platformctl.harness import find_project_dir

    original = pipeline.evaluate

    def evaluate_or_share(stack, project_dir=None, **kwargs):
        project = Path(project_dir or find_project_dir()).resolve()
        path = stackfile.resolve(stack, project)
        name = stackfile.stack_name_of(path)
        if not kwargs and name in REAL_STACKS and (
                (project == REPO and str(stack) == name) or _same_inputs(project, path, name)):
            return recording_copy(name)
        return original(stack, project_dir=project_dir, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline, "evaluate", evaluate_or_share)
        yield


def _same_inputs(project: Path, path: Path, name: str) -> bool:
    """Whether evaluating `path` in `project` reads exactly what the real stack `name` reads
    here: the stack file in the project's root (its label is its name), Pulumi.yaml (project
    name and config), the CA bundles the config names (under certs/), and no program of the
    project's own (stacks/, which the harness warns about). Byte for byte."""
    if project == REPO or path.parent.resolve() != project or (project / "stacks").exists():
        return False
    try:
        if (path.read_bytes() != (REPO / f"Pulumi.{name}.yaml").read_bytes()
                or (project / "Pulumi.yaml").read_bytes() != (REPO / "Pulumi.yaml").read_bytes()):
            return False
        certs = sorted(p.relative_to(REPO) for p in (REPO / "certs").rglob("*") if p.is_file())
        return certs == sorted(p.relative_to(project) for p in (project / "certs").rglob("*")
                               if p.is_file()) and all(
            (project / c).read_bytes() == (REPO / c).read_bytes() for c in certs)
    except OSError:
        return False


@pytest.fixture
def evaluated_once(monkeypatch):
    """Within one test, a stack the commands are run on several times (another format, another
    command) is evaluated once: each later run gets a copy of the first recording while the
    stack file and its project's Pulumi.yaml are unchanged (any change evaluates again)."""
    from platformctl import pipeline, stackfile
    from platformctl.harness import find_project_dir

    inner = pipeline.evaluate  # the session's own (it shares the real stacks)
    recorded: dict[tuple[str, bytes, bytes], Evaluation] = {}

    def once(stack, project_dir=None, **kwargs):
        project = Path(project_dir or find_project_dir()).resolve()
        path = stackfile.resolve(stack, project).resolve()
        if kwargs or not path.is_file():
            return inner(stack, project_dir=project_dir, **kwargs)
        key = (str(path), path.read_bytes(), (project / "Pulumi.yaml").read_bytes())
        if key not in recorded:
            recorded[key] = inner(stack, project_dir=project_dir)
        return copy_of(recorded[key])

    monkeypatch.setattr(pipeline, "evaluate", once)


@pytest.fixture(scope="session")
def evaluations() -> dict[str, Evaluation]:
    """Both real stacks' recordings. Each worker starts with another stack (gw1 with prod), so
    two workers evaluate one each at the same time and load the other's."""
    import os

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    first = int(worker.removeprefix("gw") or 0) % len(REAL_STACKS)
    for name in (*REAL_STACKS[first:], *REAL_STACKS[:first]):
        shared_evaluation(name)
    return {name: shared_evaluation(name) for name in REAL_STACKS}


def _rendered_copies(evaluations: dict[str, Evaluation], helm: str) -> dict[str, Evaluation]:
    import dataclasses

    from platformctl import rendering

    copies = {name: dataclasses.replace(evaluation, rendered=[])
              for name, evaluation in evaluations.items()}
    with _one_worker_at_a_time(f"render-real-stacks-{helm}"):
        for evaluation in copies.values():
            rendering.render(evaluation, helm=helm)
    return copies


@pytest.fixture(scope="session")
def rendered(evaluations) -> dict[str, Evaluation]:
    """The real stacks with their Helm releases rendered by the real helm (Helm 3, the
    installer's major; cached between runs under the platformctl cache directory). Copies:
    `evaluations` stay unrendered, so what a test of them sees does not depend on which tests
    ran before it."""
    return _rendered_copies(evaluations, "helm")


@pytest.fixture(scope="session")
def rendered_by_helm4(evaluations) -> dict[str, Evaluation]:
    """The same, rendered by Helm 4 (the helm 3/4 differential)."""
    return _rendered_copies(evaluations, "helm4")


@contextlib.contextmanager
def _one_worker_at_a_time(name: str) -> Iterator[None]:
    """Across the test workers: one does it while the others wait, then they find its results
    in the render cache (cold, both workers rendering the same charts at once doubled ~16 s
    of helm on two cores; warm, the wait is a few tenths of a second)."""
    import fcntl

    from platformctl import helmbin

    directory = helmbin.cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def crds(rendered):
    """The CRDs the platform installs, from the vendored charts as prod renders them."""
    from platformctl.crds import CrdIndex

    return CrdIndex.of(rendered["prod"].rendered)


TEAMS = [
    {"name": "checkout", "namespaces": ["checkout", "checkout-jobs"],
     "adminGroups": ["checkout-oncall"], "quota": {"pods": 20, "requestsCpu": "2"}},
    {"name": "search"},
]


@pytest.fixture(scope="session")
def two_teams(tmp_path_factory) -> Evaluation:
    """prod with two teams, one of them with two namespaces, its own admins and quota."""
    directory = tmp_path_factory.mktemp("teams")
    return once_per_run("two-teams", lambda: evaluate(write_stack(directory, mutate(
        stack_config("prod"), "platform:teams", TEAMS)), project_dir=REPO))


@pytest.fixture(scope="session")
def dev_without_logs_or_traces(tmp_path_factory) -> Evaluation:
    """dev with both telemetry pipelines switched off (each is an opt-out of its own)."""
    config = mutate(stack_config("dev"), "platform:observability.logs", {"enabled": False})
    config = mutate(config, "platform:observability.traces", {"enabled": False})
    return once_per_run("dev-without-logs-or-traces", lambda: evaluate(
        write_stack(tmp_path_factory.mktemp("no-telemetry"), config), project_dir=REPO))


@pytest.fixture(params=REAL_STACKS)
def stack(request, evaluations) -> Evaluation:
    """Each real stack in turn."""
    return evaluations[request.param]


def with_resources(evaluation: Evaluation, resources: list) -> Evaluation:
    """A copy of a rendered evaluation with other resource records (a seeded defect), its
    rendered releases pointing at the new records of their Release resources."""
    import dataclasses

    changed = dataclasses.replace(evaluation, resources=resources)
    by_urn = changed.by_urn()
    changed.rendered = [dataclasses.replace(release, resource=by_urn[release.resource.urn])
                        for release in evaluation.rendered]
    return changed


def stack_config(name: str = "dev") -> dict[str, Any]:
    """The `config:` mapping of a real stack file, to derive mutants from."""
    from stacks import userfile

    return userfile.read_yaml(REPO / f"Pulumi.{name}.yaml")["config"]  # parsed once, a copy


def write_stack(directory: Path, config: dict[str, Any], name: str = "mutant") -> Path:
    path = directory / f"Pulumi.{name}.yaml"
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return path


def mutate(base: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of a stack config with `platform:network.cidr`-style key set (or removed when
    `value` is `DELETE`)."""
    import copy

    config = copy.deepcopy(base)
    head, *rest = dotted.split(".")
    target = config
    keys = [head, *rest]
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    if value is DELETE:
        target.pop(keys[-1], None)
    else:
        target[keys[-1]] = value
    return config


DELETE = object()


def config_error(path: Path, capsys) -> str:
    """`platformctl review` of a stack file it must refuse as a configuration error (exit 2, no
    traceback): what it printed on stderr."""
    from platformctl import cli

    assert cli.main(["review", str(path), "--project-dir", str(REPO)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err


_REVIEWS: dict[tuple[str, Any], dict[str, Any]] = {}  # per worker: each real stack reviewed once


@pytest.fixture(scope="module")
def one_review_per_stack():
    """The real stacks' review documents, computed once per worker for the format tests: each
    format is rendered from the same document (the CLI path is exercised all the same)."""
    import copy

    from platformctl import cli

    original = cli.review_document

    def cached(stack, project_dir):
        if (stack, project_dir) not in _REVIEWS:
            _REVIEWS[(stack, project_dir)] = original(stack, project_dir)
        return _REVIEWS[(stack, project_dir)]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "review_document", lambda stack, project_dir, *_: copy.deepcopy(
            cached(stack, project_dir)) if stack in ("dev", "prod") else original(
                stack, project_dir))
        yield
