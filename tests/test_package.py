"""`leanlambda package`: the zip is src/'s contents, reproducible to the byte, within its budget."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from leanlambda.cli import main
from leanlambda.interpreters import find_interpreter
from leanlambda.limits import DEFAULT_RUNTIME, python_of
from leanlambda.packaging import BYTECODE_BUDGET_KB
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
    _code, path, _, _ = package(capsys, default_bake, "--out", str(tmp_path), "--no-bytecode")
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


def _interpreter_or_skip(runtime: str) -> str:
    python = find_interpreter(python_of(runtime))
    if python is None:
        pytest.skip(f"no Python {python_of(runtime)} here (the {runtime} runtime's) to compile bytecode with")
    return python


def test_bytecode_for_the_runtime_ships_by_default_and_is_used(default_bake, tmp_path, capsys):
    runtime = DEFAULT_RUNTIME
    python = _interpreter_or_skip(runtime)
    tag = "cpython-" + python_of(runtime).replace(".", "")
    code, first, size, digest = package(capsys, default_bake, "--out", str(tmp_path / "a"))
    assert code == 0
    assert package(capsys, default_bake, "--out", str(tmp_path / "b"), "--bytecode")[3] == digest
    module = module_name(default_bake)
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "task")
    assert f"{module}/__pycache__/handler.{tag}.pyc" in names
    assert size / 1024 <= BYTECODE_BUDGET_KB  # `--bytecode` works without --max-kb
    assert not [name for name in names if "__pycache__" in name and tag not in name]
    # The bytecode is unchecked: Lambda uses it even though the source's timestamps are 1980's.
    (tmp_path / "task" / module / "steps.py").write_text("this is not Python\n")
    probe = f"import sys; sys.path.insert(0, sys.argv[1]); import {module}.handler"
    result = subprocess.run(
        [python, "-I", "-B", "-c", probe, str(tmp_path / "task")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_without_the_runtimes_python_source_ships_and_one_line_says_why(
    default_bake, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr("leanlambda.bytecode.find_interpreter", lambda version: None)
    assert main(["package", str(default_bake), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    with zipfile.ZipFile(out[0]) as archive:
        assert not [name for name in archive.namelist() if "__pycache__" in name or name.endswith(".pyc")]
    version = python_of(DEFAULT_RUNTIME)
    assert out[3].startswith("bytecode: none") and f"Python {version}" in out[3] and "pyenv" in out[3]
    assert main(["package", str(default_bake), "--out", str(tmp_path / "b"), "--bytecode"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"Python {version}" in err[0]
    assert not (tmp_path / "b").exists()


def test_artifacts_dir_holds_exactly_the_zips_files(default_bake, tmp_path, capsys):
    _code, path, size, digest = package(capsys, default_bake, "--out", str(tmp_path / "zip"))
    code, folder, size2, digest2 = package(capsys, default_bake, "--artifacts-dir", str(tmp_path / "art"))
    assert (code, folder, size2, digest2) == (0, tmp_path / "art", size, digest)
    with zipfile.ZipFile(path) as archive:
        expected = {name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}
    written = {
        file.relative_to(folder).as_posix(): file.read_bytes() for file in folder.rglob("*") if file.is_file()
    }
    assert written == expected
    # A folder that already holds something is refused, untouched.
    assert main(["package", str(default_bake), "--artifacts-dir", str(folder)]) == 2
    assert "new or empty folder" in capsys.readouterr().err
    assert {f.relative_to(folder).as_posix() for f in folder.rglob("*") if f.is_file()} == set(expected)


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


# ------------------------------------------------------------------ hostile source trees (issue 14)
def _refused(capsys, function_dir: Path, out: Path) -> str:
    """package exits 2 with one stderr line and writes nothing into (or beside) the output folder."""
    assert main(["package", str(function_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert not out.exists() or list(out.iterdir()) == []
    return err


def test_a_link_to_a_file_outside_src_is_refused_by_name(function_copy, tmp_path, capsys):
    function_dir = function_copy()
    secret = tmp_path / "home" / ".aws" / "credentials"
    secret.parent.mkdir(parents=True)
    secret.write_text("[default]\nnot-a-real-key = 1\n")
    module_dir = function_dir / "src" / module_name(function_dir)
    (module_dir / "settings.txt").symlink_to(secret)
    err = _refused(capsys, function_dir, tmp_path / "out")
    assert f"src/{module_name(function_dir)}/settings.txt" in err and "outside src/" in err


def test_a_link_to_a_folder_outside_src_is_refused(function_copy, tmp_path, capsys):
    function_dir = function_copy()
    (tmp_path / "home" / ".aws").mkdir(parents=True)
    (tmp_path / "home" / ".aws" / "credentials").write_text("[default]\n")
    (function_dir / "src" / "home").symlink_to(tmp_path / "home", target_is_directory=True)
    assert "src/home" in _refused(capsys, function_dir, tmp_path / "out")


def test_a_dangling_link_is_one_line_not_a_traceback(function_copy, tmp_path, capsys):
    function_dir = function_copy()
    (function_dir / "src" / "gone.py").symlink_to(tmp_path / "nowhere.py")
    err = _refused(capsys, function_dir, tmp_path / "out")
    assert "src/gone.py" in err and "missing" in err and "Traceback" not in err


def test_a_link_that_loops_back_is_refused(function_copy, tmp_path, capsys):
    function_dir = function_copy()
    module_dir = function_dir / "src" / module_name(function_dir)
    (module_dir / "again").symlink_to(module_dir, target_is_directory=True)
    assert "cycle" in _refused(capsys, function_dir, tmp_path / "out")


def test_a_link_inside_src_that_resolves_inside_ships_its_target(function_copy, tmp_path, capsys):
    function_dir = function_copy()
    module = module_name(function_dir)
    module_dir = function_dir / "src" / module
    (module_dir / "data").mkdir()
    (module_dir / "data" / "rates.json").write_text('{"krw": 1}\n')
    (module_dir / "rates.json").symlink_to(Path("data") / "rates.json")
    code, path, _, _ = package(capsys, function_dir, "--out", str(tmp_path / "out"))
    assert code == 0
    with zipfile.ZipFile(path) as archive:
        assert archive.read(f"{module}/rates.json") == b'{"krw": 1}\n'


@pytest.mark.parametrize("hostile", ["../../x", "/tmp/leanlambda-absolute-name", "a/b", "..", ""])
def test_a_function_name_that_is_a_path_writes_nothing_anywhere(function_copy, tmp_path, capsys, hostile):
    function_dir = function_copy()
    template = function_dir / "template.yaml"
    text = template.read_text()
    assert 'FunctionName: "my-function"' in text
    template.write_text(text.replace('FunctionName: "my-function"', f"FunctionName: '{hostile}'"))
    before = set(tmp_path.rglob("*"))
    for extra in ([], ["--out", str(tmp_path / "out")]):
        assert main(["package", str(function_dir), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "function name" in err, err
    assert set(tmp_path.rglob("*")) == before
    assert not Path(f"{hostile}.zip").is_absolute() or not Path(f"{hostile}.zip").exists()


def test_a_test_module_the_handler_imports_ships_and_unimported_tests_are_named(
    function_copy, tmp_path, capsys
):
    function_dir = function_copy()
    module = module_name(function_dir)
    module_dir = function_dir / "src" / module
    (module_dir / "test_vectors.py").write_text("VECTORS = (1, 2)\n")
    (module_dir / "tests").mkdir()
    (module_dir / "tests" / "__init__.py").write_text("")
    (module_dir / "tests" / "fixtures.py").write_text("from ..test_vectors import VECTORS\nROWS = VECTORS\n")
    (module_dir / "test_unused.py").write_text("def test(): pass\n")
    handler = module_dir / "handler.py"
    handler.write_text(handler.read_text() + "\nfrom .tests.fixtures import ROWS  # noqa: E402\n")
    code = main(["package", str(function_dir), "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    with zipfile.ZipFile(captured.out.splitlines()[0]) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "task")
    assert {
        f"{module}/tests/__init__.py",
        f"{module}/tests/fixtures.py",
        f"{module}/test_vectors.py",
    } <= names
    assert f"{module}/test_unused.py" not in names
    assert f"left out src/{module}/test_unused.py" in captured.err
    probe = f"import sys; sys.path.insert(0, sys.argv[1]); import {module}.handler as h; print(h.ROWS)"
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(tmp_path / "task")], capture_output=True, text=True
    )
    assert result.stdout.strip() == "(1, 2)", result.stderr


def test_a_latin_1_module_ships_in_its_own_encoding(function_copy, tmp_path, capsys):
    function_dir = function_copy()
    module = module_name(function_dir)
    source = '# -*- coding: latin-1 -*-\n"""Caf\xe9 prices."""\nSIGN = "\xa3"  # pound\n'
    (function_dir / "src" / module / "prices.py").write_bytes(source.encode("latin-1"))
    code, path, _, _ = package(capsys, function_dir, "--out", str(tmp_path / "out"))
    assert code == 0
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "task")
    probe = (
        f"import sys; sys.path.insert(0, sys.argv[1]); from {module}.prices import SIGN; print(ascii(SIGN))"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe, str(tmp_path / "task")], capture_output=True, text=True
    )
    assert result.stdout.strip() == "'\\xa3'", result.stderr
