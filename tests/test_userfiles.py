"""Every file a user writes (stack files, service specs) is read one way (stacks/userfile.py):
UTF-8 or refused with the line and column, each key once, a regular file of bounded size, and
config keys only in namespaces the program reads. Never a traceback, never a value dropped."""

from __future__ import annotations

import pytest

from platformctl import cli
from stacks import userfile
from tests.conftest import REPO, config_error

DEV = (REPO / "Pulumi.dev.yaml").read_bytes()


def _write(tmp_path, data: bytes, name: str = "Pulumi.mutant.yaml"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_latin1_byte_is_refused_with_its_line_and_column(tmp_path, capsys):
    data = DEV.replace(b"owner: platform-team@example.com",
                       "owner: équipe@example.com".encode("latin-1"))
    line = data[:data.index(b"\xe9")].count(b"\n") + 1
    err = config_error(_write(tmp_path, data), capsys)
    assert f"not UTF-8 at line {line}, column 12 (byte 0xe9)" in err
    assert "Pulumi.mutant.yaml" in err


def test_a_utf16_file_is_refused_and_a_utf8_bom_is_accepted(tmp_path, capsys):
    err = config_error(_write(tmp_path, DEV.decode().encode("utf-16")), capsys)
    assert "not UTF-8 at line 1" in err
    bom = _write(tmp_path, b"\xef\xbb\xbf" + DEV, "Pulumi.bom.yaml")
    assert userfile.read_yaml(bom) == userfile.read_yaml(REPO / "Pulumi.dev.yaml")


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path, capsys):
    data = DEV.replace(b"  platform:budgetMonthlyUsd: 106\n",
                       b"  platform:budgetMonthlyUsd: 106\n  platform:budgetMonthlyUsd: 900\n")
    assert data != DEV
    first = data[:data.index(b"platform:budgetMonthlyUsd")].count(b"\n") + 1
    err = config_error(_write(tmp_path, data), capsys)
    assert (f"key 'platform:budgetMonthlyUsd' is given twice (line {first} and line "
            f"{first + 1})") in err


def test_a_misspelt_namespace_is_refused_with_a_suggestion(tmp_path, capsys):
    data = DEV.replace(b"  platform:teams:", b"  platfrom:teams:")
    err = config_error(_write(tmp_path, data), capsys)
    assert "platfrom:teams: unknown config namespace 'platfrom' (did you mean " \
           "'platform:teams'?)" in err


def test_a_directory_or_a_huge_file_is_refused(tmp_path, capsys):
    directory = tmp_path / "Pulumi.dir.yaml"
    directory.mkdir()
    assert "not a regular file" in config_error(directory, capsys)
    huge = _write(tmp_path, DEV + b"#" * (userfile.MAX_BYTES + 1))
    assert f"allowed: at most {userfile.MAX_BYTES:,}" in config_error(huge, capsys)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes((REPO / "services/checkout.yaml").read_bytes().replace(
        b"name: checkout\n", "name: caf\xe9\n".encode("latin-1"), 1)), "not UTF-8 at line"),
    (lambda p: p.mkdir(), "not a regular file"),
    (lambda p: p.write_bytes(b"name: a\nname: b\n"), "key 'name' is given twice"),
])
def test_a_bad_service_spec_file_is_one_clean_error(tmp_path, capsys, make, message):
    spec = tmp_path / "svc.yaml"
    make(spec)
    assert cli.main(["new-service", str(spec), "--project-dir", str(REPO), "--check"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(spec) in err and "Traceback" not in err, err


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes(b'{"costReport": "caf\xe9"}'), "not UTF-8 at line 1"),
    (lambda p: p.mkdir(), "not a regular file"),
    (lambda p: None, "stack output JSON file not found"),
])
def test_a_bad_json_file_passed_by_path_is_one_clean_error(tmp_path, capsys, make, message):
    path = tmp_path / "outputs.json"
    make(path)
    assert cli.main(["cost", "--stack-output", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_a_project_file_without_a_name_is_one_clean_error(tmp_path, capsys):
    (tmp_path / "Pulumi.yaml").write_text("runtime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_bytes(DEV)
    assert cli.main(["review", "dev", "--project-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.yaml" in err and "name: (not set): required" in err and "Traceback" not in err
