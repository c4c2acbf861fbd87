"""`leanlambda package`: the zip is src/'s contents, reproducible to the byte, within its budget."""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

from leanlambda.cli import main
from tests.conftest import module_name


def package(capsys, function_dir: Path, *extra: str) -> tuple[int, Path, int, str]:
    code = main(["package", str(function_dir), *extra])
    out = capsys.readouterr().out.splitlines()
    size = int(re.search(r"size: (\d+) bytes", out[1])[1])
    digest = re.fullmatch(r"sha256: ([0-9a-f]{64})", out[2])[1]
    return code, Path(out[0]), size, digest


def test_same_source_same_bytes_and_a_change_changes_them(function_copy, tmp_path, capsys):
    function_dir = function_copy()
    code, first, size, digest = package(capsys, function_dir, "--out", str(tmp_path / "a"))
    assert code == 0
    assert first == tmp_path / "a" / "my-function.zip"
    assert first.stat().st_size == size
    # bytecode and tests under src/ never ship, and do not change the hash
    module_dir = function_dir / "src" / module_name(function_dir)
    (module_dir / "__pycache__").mkdir(exist_ok=True)
    (module_dir / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"stale")
    (module_dir / "tests").mkdir()
    (module_dir / "tests" / "test_x.py").write_text("def test(): pass\n")
    (module_dir / "handler.py").touch()  # a new mtime alone changes nothing
    code, second, size2, digest2 = package(capsys, function_dir, "--out", str(tmp_path / "b"))
    assert (size2, digest2) == (size, digest)
    assert first.read_bytes() == second.read_bytes()
    steps = module_dir / "steps.py"
    steps.write_text(steps.read_text() + "\nCHANGED = True\n")
    code, _, _, digest3 = package(capsys, function_dir, "--out", str(tmp_path / "c"))
    assert digest3 != digest


def test_zip_holds_src_contents_at_its_root(default_bake, tmp_path, capsys):
    _code, path, _, _ = package(capsys, default_bake, "--out", str(tmp_path))
    module = module_name(default_bake)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    assert f"{module}/handler.py" in names
    assert not any(
        name.startswith("src/") or "__pycache__" in name or name.endswith(".pyc") for name in names
    )
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 & 0o777 for info in infos if not info.is_dir()} == {0o644}


def test_documentation_does_not_ship_but_every_line_does(function_copy, tmp_path, capsys):
    function_dir = function_copy()
    handler = function_dir / "src" / module_name(function_dir) / "handler.py"
    source = handler.read_text()
    _code, path, _, digest = package(capsys, function_dir, "--out", str(tmp_path / "a"))
    with zipfile.ZipFile(path) as archive:
        shipped = archive.read(f"{module_name(function_dir)}/handler.py").decode()
    assert "Module level imports only the standard library" in source
    assert "Module level imports only the standard library" not in shipped
    assert len(shipped.splitlines()) == len(source.splitlines())
    handler.write_text(source.replace('"""Turns an event into', '"""Makes an event into'))
    assert package(capsys, function_dir, "--out", str(tmp_path / "b"))[3] == digest


def test_bytecode_for_the_runtime_is_shipped_on_request_and_used(tmp_path, capsys):
    from cookiecutter.main import cookiecutter

    from tests.conftest import REPO_ROOT

    function_dir = Path(
        cookiecutter(
            str(REPO_ROOT), no_input=True, output_dir=str(tmp_path), extra_context={"runtime": "python3.11"}
        )
    )
    _code, first, _, digest = package(
        capsys, function_dir, "--out", str(tmp_path / "a"), "--bytecode", "--max-kb", "64"
    )
    _code, _, _, again = package(
        capsys, function_dir, "--out", str(tmp_path / "b"), "--bytecode", "--max-kb", "64"
    )
    assert again == digest
    module = module_name(function_dir)
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "task")
    assert f"{module}/__pycache__/handler.cpython-311.pyc" in names
    # The bytecode is unchecked: Lambda uses it even though the source's timestamps are 1980's.
    (tmp_path / "task" / module / "steps.py").write_text("this is not Python\n")
    probe = f"import sys; sys.path.insert(0, sys.argv[1]); import {module}.handler"
    result = subprocess.run(
        ["python3.11", "-I", "-B", "-c", probe, str(tmp_path / "task")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_default_output_is_the_build_folder(function_copy, capsys):
    function_dir = function_copy()
    _code, path, _, _ = package(capsys, function_dir)
    assert path == function_dir / "build" / "my-function.zip" and path.is_file()


def test_over_budget_exits_1_with_one_line(default_bake, tmp_path, capsys):
    assert main(["package", str(default_bake), "--out", str(tmp_path), "--max-kb", "1"]) == 1
    err = capsys.readouterr().err
    assert "over the 1 KB budget" in err and len(err.strip().splitlines()) == 1


def test_not_a_function_exits_2(tmp_path, capsys):
    assert main(["package", str(tmp_path)]) == 2
    assert "not a function folder" in capsys.readouterr().err
    assert main(["package", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
