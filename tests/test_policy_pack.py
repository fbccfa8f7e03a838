"""The pack as the Pulumi CLI runs it: its files, its pins, and that it is self-contained (its
policies and cost model load from the pack directory alone, as in the pack's own virtualenv)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib

import yaml

from tests.conftest import REPO, repository_files

PACK = REPO / "policy-packs" / "platform-guard"


def test_pulumi_policy_yaml_declares_a_python_pack_with_its_virtualenv():
    document = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert document["runtime"]["name"] == "python"
    assert document["runtime"]["options"]["virtualenv"] == "venv"
    assert document["description"]


def test_pack_requirements_pin_what_the_project_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(re.match(r"([\w-]+)(?:\[[\w,]+\])?==([\w.]+)", line).groups() for line in project)
    pack = [line for line in (PACK / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert pack, "the pack has requirements"
    for line in pack:
        name, version = line.split("==")
        assert pins[name] == version, line


def test_only_the_pack_main_builds_a_policy_pack():
    builders = [p.relative_to(REPO).as_posix() for p in repository_files("*.py")
                if "tests" not in p.parts and "PolicyPack(" in p.read_text()]
    assert builders == ["policy-packs/platform-guard/__main__.py"]


def test_the_pack_is_self_contained(tmp_path):
    copy = tmp_path / "platform-guard"
    shutil.copytree(PACK, copy, ignore=shutil.ignore_patterns("__pycache__", "venv"))
    site_packages = sysconfig.get_paths()["purelib"]
    # -S: no site processing, so this project's editable install is invisible; only the pack's
    # directory and the third-party packages a pack venv would hold are on the path.
    probe = (
        "import sys; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2]);"
        "import platform_guard, platform_guard.policies as p, platform_facts.costmodel as c;"
        "assert platform_guard.__file__.startswith(sys.argv[1]), platform_guard.__file__;"
        "assert c.__file__.startswith(sys.argv[1]), c.__file__;"
        "assert 'components' not in sys.modules and 'stacks' not in sys.modules;"
        "print(len(p.ALL), c.price_data()['hoursPerMonth'])"
    )
    result = subprocess.run([sys.executable, "-S", "-c", probe, str(copy), site_packages],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The pack's 26 policies: the checks of rendered objects run in the review, not in the pack.
    assert result.stdout.split() == ["26", "730"]
    compile((copy / "__main__.py").read_text(), "__main__.py", "exec")
