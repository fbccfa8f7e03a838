"""Real OPA, the Go engine Gatekeeper embeds (v1.20 in the library `.ci/run` unpacks from the
wheel `opa-golib-python-bindings`, requirements-opa.txt), for the admission policies: every case
of tests/test_admission.py runs on it and on regorus, and the two must agree."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest


@cache
def _engine_class():
    try:
        from opa_bindings.engine import OpaEngine
    except ImportError:
        pytest.fail("the OPA library is not installed: `bash .ci/run` unpacks it into .venv "
                    "(requirements-opa.txt)")
    return OpaEngine


@cache
def engine(modules: tuple[tuple[str, str], ...]):
    """An OPA engine with these (file name, Rego v1 source) modules loaded."""
    opa = _engine_class()()
    for name, source in modules:
        opa.add_policy(name, source)
    return opa


def query(modules: tuple[tuple[str, str], ...], ref: str, input_doc: dict[str, Any]) -> Any:
    """The value of `ref` (e.g. `data.k8splatformnonroot.violation`) for `input_doc`, as OPA
    computes it; None when it is undefined."""
    results = engine(modules).eval_query(f"value := {ref}", input_doc)
    return results[0]["value"] if results else None
