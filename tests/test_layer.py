"""`leanlambda layer`: a small layer is built once per session (from the package index) and examined.

Requirements of the test layer: attrs (pure python, ships .pyi stubs), requests (a dependency tree that
needs urllib3), simplejson (a C extension that ships a tests/ package) and aws-xray-sdk (pulls in
botocore, so the runtime-provided exclusion has something to leave out).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from leanlambda.commands import layer as layer_command
from leanlambda.errors import CheckFailed, UsageError
from leanlambda.layer import Limits, Target, build_layer, check_build, load_settings, verify_layer
from leanlambda.layer.builder import REPORT_FILE
from leanlambda.layer.install import Dist, runtime_provided_to_drop
from leanlambda.layer.slim import load_segments, loaded_image, slim, strip_symbol_tables
from leanlambda.layer.target import host_arch
from leanlambda.layer.verify import find_interpreter
from leanlambda.limits import DEFAULT_RUNTIME, python_of
from leanlambda.ziputil import write_deterministic_zip

REQUIREMENTS = "attrs\nrequests\nsimplejson\naws-xray-sdk\n"
TINY_LIMIT_MB = "0.01"
HERE_RUNTIME = DEFAULT_RUNTIME  # build for the default runtime; the proof runs under its Python
HERE = python_of(HERE_RUNTIME)
RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"  # the Python running the tests
SMOKE = (
    "import simplejson; assert simplejson.loads('[1, 2]') == [1, 2]",
    "import attr; assert attr.__version__",
)


@pytest.fixture(scope="session")
def layer_source(tmp_path_factory) -> Path:
    if find_interpreter(HERE) is None:
        pytest.skip(f"no Python {HERE} here (the {HERE_RUNTIME} runtime's) to prove the layer imports")
    source = tmp_path_factory.mktemp("src") / "small-layer"
    source.mkdir()
    (source / "requirements.txt").write_text(REQUIREMENTS)
    (source / "layer.toml").write_text(
        f'[layer]\nname = "small"\nruntime = "{HERE_RUNTIME}"\n'
        f"smoke = [{', '.join(repr(statement) for statement in SMOKE)}]\n"
    )
    return source


@pytest.fixture(scope="session")
def built(layer_source, tmp_path_factory):
    messages: list[str] = []
    out = tmp_path_factory.mktemp("out") / "first"
    result = build_layer(load_settings(layer_source), out_dir=out, progress=messages.append)
    return result, messages


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """The layer sub-command as leanlambda's CLI runs it (errors -> one line, exit code)."""
    parser = argparse.ArgumentParser(prog="leanlambda")
    layer_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except (UsageError, CheckFailed) as error:
        print(f"leanlambda layer: {error}", file=sys.stderr)
        code = error.exit_code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="session")
def second_build(layer_source, tmp_path_factory):
    """The same inputs again, through the CLI, with limits tiny enough to fail (proof already run once)."""
    out = tmp_path_factory.mktemp("out") / "second"
    parser = argparse.ArgumentParser(prog="leanlambda")
    layer_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        ["layer", str(layer_source), "--out", str(out), "--max-zipped-mb", TINY_LIMIT_MB, "--no-verify"]
    )
    with pytest.raises(CheckFailed) as failure:
        args.func(args)
    return out, str(failure.value)


def site_of(result) -> Path:
    return Path(result.out_dir) / "layer" / "python"


# --- exclusion of what the runtime provides --------------------------------------------------------------


def test_runtime_provided_packages_are_left_out(built):
    result, _ = built
    left_out = {pin.split("==")[0] for pin in result.left_out}
    kept = {pin.split("==")[0] for pin in result.packages}
    assert {"botocore", "jmespath", "python-dateutil"} <= left_out  # only botocore needed these
    assert "urllib3" in kept and "urllib3" not in left_out  # requests needs it: never rely on the runtime's
    site = site_of(result)
    assert not (site / "botocore").exists() and not list(site.glob("botocore-*.dist-info"))
    assert not (site / "jmespath").exists() and not (site / "dateutil").exists()
    assert (site / "urllib3").is_dir() and (site / "aws_xray_sdk").is_dir()


def test_drop_rule_keeps_shared_dependencies():
    target = Target.parse("python3.12", "x86_64")
    dists = [
        Dist("pandas", "2.2", ["python-dateutil>=2.8", "numpy"], requested=True),
        Dist("numpy", "2.0"),
        Dist("botocore", "1.0", ["python-dateutil", "jmespath", "urllib3"]),
        Dist("boto3", "1.0", ["botocore"], requested=True),
        Dist("python-dateutil", "2.9", ["six"]),
        Dist("six", "1.17"),
        Dist("jmespath", "1.0"),
        Dist("urllib3", "2.0"),
        Dist("tool", "1.0", ["urllib3; python_version < '3.8'", "six; extra == 'old'"], requested=True),
    ]
    assert runtime_provided_to_drop(dists, target) == {"boto3", "botocore", "jmespath", "urllib3"}


def test_keep_runtime_provided_keeps_boto3_too():
    target = Target.parse("python3.12", "x86_64")
    dists = [Dist("boto3", "1.0", ["botocore"], requested=True), Dist("botocore", "1.0")]
    assert runtime_provided_to_drop(dists, target) == {"boto3", "botocore"}


# --- slimming ----------------------------------------------------------------------------------------------


def test_built_layer_is_slim(built):
    result, _ = built
    site = site_of(result)
    leftovers = [
        p
        for p in site.rglob("*")
        if p.name in ("tests", "__pycache__", "RECORD") or p.suffix in (".pyi", ".pyc", ".c", ".pyx")
    ]
    assert leftovers == []
    assert not (site / "bin").exists()
    assert result.slimmed_bytes.get("test suites", 0) > 0  # simplejson/tests
    assert result.slimmed_bytes.get("type stubs", 0) > 0  # attr/*.pyi
    assert all((info / "METADATA").is_file() for info in site.glob("*.dist-info"))


def test_slim_rules_on_a_synthetic_tree(tmp_path):
    site = tmp_path / "python"
    files = {
        "pkg/__init__.py": "",
        "pkg/core.py": "",
        "pkg/core.pyi": "",
        "pkg/py.typed": "",
        "pkg/tests/test_core.py": "",
        "pkg/__pycache__/core.cpython-311.pyc": "x",
        "pkg/_speed.pyx": "",
        "pkg/include/pkg.h": "",
        "pkg/conftest.py": "",
        "pkg-1.0.dist-info/METADATA": "Name: pkg\n",
        "pkg-1.0.dist-info/RECORD": "",
        "pkg-1.0.dist-info/INSTALLER": "pip",
        "pkg-1.0.dist-info/entry_points.txt": "",
        "bin/pkg-cli": "#!/usr/bin/python",
        "pkg-stubs/__init__.pyi": "",
        "tests/__init__.py": "",
    }
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    saved = slim(site)
    remaining = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    assert remaining == [
        "pkg-1.0.dist-info/METADATA",
        "pkg-1.0.dist-info/entry_points.txt",
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/py.typed",
    ]
    assert saved["bytecode"] == 1 and saved["console scripts"] > 0


def test_test_modules_that_runtime_code_imports_stay(tmp_path):
    """numpy.testing imports numpy._core.tests._natype: removing it broke `from numpy import *`."""
    site = tmp_path / "python"
    files = {
        "pkg/__init__.py": "",
        "pkg/testing.py": "from pkg.core.tests._helper import VALUE\n",
        "pkg/util.py": "from .other.tests import shared\n",
        "pkg/core/__init__.py": "",
        "pkg/core/tests/__init__.py": "",
        "pkg/core/tests/test_x.py": "",
        "pkg/core/tests/_helper.py": "from . import _more\nVALUE = 1\n",
        "pkg/core/tests/_more.py": "",
        "pkg/core/tests/data/big.csv": "1,2\n",
        "pkg/other/__init__.py": "",
        "pkg/other/tests/shared.py": "",
        "pkg/other/tests/test_y.py": "",
        "pkg/unused/tests/test_z.py": "",
        "pkg/unused/__init__.py": "",
        "pkg/conftest.py": "from pkg.unused.tests import test_z\n",  # removed itself: keeps nothing
    }
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    saved = slim(site, strip_symbols=False)
    remaining = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    assert remaining == [
        "pkg/__init__.py",
        "pkg/core/__init__.py",
        "pkg/core/tests/__init__.py",
        "pkg/core/tests/_helper.py",
        "pkg/core/tests/_more.py",
        "pkg/other/__init__.py",
        "pkg/other/tests/shared.py",
        "pkg/testing.py",
        "pkg/unused/__init__.py",
        "pkg/util.py",
    ]
    assert saved["test suites"] > 0


def _extension_with_symbols() -> Path:
    """A small extension module of this Python that still has a symbol table (pyenv builds keep one)."""
    import _statistics

    return Path(_statistics.__file__)


@pytest.mark.skipif(shutil.which("strip") is None, reason="no strip on this machine")
def test_symbol_tables_are_stripped_when_the_loaded_image_is_unchanged(tmp_path):
    original = _extension_with_symbols()
    if original.suffix != ".so":
        pytest.skip("_statistics is built into this Python")
    copy = tmp_path / original.name
    shutil.copy2(original, copy)
    saved = strip_symbol_tables(copy, shutil.which("strip"))
    if saved == 0:
        pytest.skip("this Python's extension modules carry no symbol table")
    assert copy.stat().st_size == original.stat().st_size - saved
    assert loaded_image(copy) == loaded_image(original) is not None
    assert load_segments(copy) == load_segments(original)
    import subprocess

    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import _statistics; print(_statistics.__file__)",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stdout.strip() == str(copy), done.stderr


def test_a_strip_that_changes_what_the_loader_maps_is_refused(tmp_path):
    """What strip did to numpy's patchelf-ed OpenBLAS: smaller, but the loaded segments moved."""
    original = _extension_with_symbols()
    if original.suffix != ".so":
        pytest.skip("_statistics is built into this Python")
    library = tmp_path / original.name
    shutil.copy2(original, library)
    offset, _vaddr, filesz, _memsz, _align = load_segments(library)[0]
    fake_strip = tmp_path / "fake-strip"
    fake_strip.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "path = sys.argv[-1]\n"
        "data = bytearray(open(path, 'rb').read())\n"
        f"data[{offset + filesz - 1}] ^= 0xFF  # one byte the loader maps\n"
        "open(path, 'wb').write(bytes(data[:-16]))  # and smaller, like a real strip\n"
    )
    fake_strip.chmod(0o755)
    before = library.read_bytes()
    assert strip_symbol_tables(library, str(fake_strip)) == 0
    assert library.read_bytes() == before


# --- the frozen list ---------------------------------------------------------------------------------------


def test_lock_lists_exactly_what_the_layer_holds(built):
    result, _ = built
    lock = (Path(result.out_dir) / "layer" / "requirements.lock").read_text()
    pins = [line for line in lock.splitlines() if line and not line.startswith("#")]
    assert pins == result.packages == sorted(result.packages)
    assert all("==" in pin for pin in pins)
    assert "#   botocore==" in lock
    with zipfile.ZipFile(result.zip_path) as archive:
        assert archive.read("requirements.lock").decode() == lock


# --- determinism and limits ------------------------------------------------------------------------------


def test_two_builds_give_the_same_sha256(built, second_build):
    result, _ = built
    out, _ = second_build
    second_zip = out / "small.zip"
    assert hashlib.sha256(second_zip.read_bytes()).hexdigest() == result.sha256
    assert hashlib.sha256(Path(result.zip_path).read_bytes()).hexdigest() == result.sha256


def test_zip_layout(built):
    result, _ = built
    with zipfile.ZipFile(result.zip_path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert all(name.startswith(("python/", "requirements.lock")) for name in names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 & 0o777 for info in infos} == {0o644, 0o755}


def test_over_a_limit_fails_clearly(second_build):
    out, message = second_build
    assert "zipped" in message and "over the 10 KB limit" in message
    assert (out / REPORT_FILE).is_file()  # the complete build stays for inspection


def test_check_build_uses_injected_limits(built):
    result, _ = built
    check_build(result)  # a few MB: well within Lambda's limits
    with pytest.raises(CheckFailed, match=r"unzipped .* over the"):
        check_build(result, Limits(unzipped_bytes=1024, zipped_bytes=10**9))


# --- the import proof --------------------------------------------------------------------------------------


def test_every_module_imports_in_a_clean_interpreter(built):
    result, messages = built
    assert result.verification.status == "verified", result.verification.summary()
    assert {"attr", "attrs", "requests", "simplejson", "aws_xray_sdk", "urllib3"} <= set(
        result.verification.modules
    )
    assert any(message.startswith("[6/6]") for message in messages)


def test_smoke_statements_from_layer_toml_run_in_the_proof(built):
    result, messages = built
    assert result.verification.smoke == list(SMOKE)
    assert result.verification.smoke_failures == {}
    assert "and all 2 smoke statements run" in result.verification.summary()
    assert any("running 2 smoke statements" in message for message in messages)


def test_a_failing_smoke_statement_fails_the_proof(built):
    result, _ = built
    smoke = (
        "import simplejson; assert simplejson.loads('[1]') == [2]",
        "import requests",
        "import no_such_module_in_the_layer",
    )
    verification = verify_layer(
        site_of(result),
        Target.parse(HERE_RUNTIME, host_arch()),
        smoke=smoke,
        skip=tuple(result.verification.modules),
    )
    assert verification.status == "failed" and verification.failures == {}
    assert list(verification.smoke_failures) == [smoke[0], smoke[2]]
    assert verification.smoke_failures[smoke[0]] == "AssertionError"
    assert "No module named 'no_such_module_in_the_layer'" in verification.smoke_failures[smoke[2]]
    assert "2 of 3 smoke statements fail" in verification.summary()
    failed = dataclasses.replace(result, verification=verification)
    with pytest.raises(CheckFailed, match="smoke statements fail"):
        check_build(failed)


@pytest.mark.parametrize(
    ("smoke", "message"),
    [
        ("'import os'", "smoke must be a list"),
        ("['import os', '']", "smoke must be a list"),
        ("['import os', 'def (']", "is not valid Python"),
    ],
)
def test_bad_smoke_settings_are_usage_errors(tmp_path, smoke, message):
    (tmp_path / "requirements.txt").write_text("attrs\n")
    (tmp_path / "layer.toml").write_text(f"[layer]\nsmoke = {smoke}\n")
    with pytest.raises(UsageError, match=message):
        load_settings(tmp_path)


def test_proof_fails_when_a_dependency_is_missing(built, tmp_path):
    """The original layer's defect: a package without its dependency (pyupbit without pandas)."""
    result, _ = built
    broken = tmp_path / "python"
    shutil.copytree(site_of(result), broken)
    shutil.rmtree(broken / "idna")
    verification = verify_layer(broken, Target.parse(HERE_RUNTIME, host_arch()))
    assert verification.status == "failed"
    assert "requests" in verification.failures
    assert "No module named 'idna'" in verification.failures["requests"]
    assert "idna" not in verification.modules


def test_no_proof_for_a_foreign_architecture(built):
    result, _ = built
    foreign = "arm64" if host_arch() == "x86_64" else "x86_64"
    verification = verify_layer(site_of(result), Target.parse(HERE_RUNTIME, foreign))
    assert verification.status == "unverified"
    assert "built but not verified" in verification.summary()


def test_no_proof_without_the_target_python(built, monkeypatch):
    result, _ = built
    monkeypatch.setattr("leanlambda.layer.verify.find_interpreter", lambda version: None)
    verification = verify_layer(site_of(result), Target.parse("python3.12", host_arch()))
    assert verification.status == "unverified" and "no Python 3.12" in verification.reason


def test_find_interpreter_checks_the_version():
    assert find_interpreter(RUNNING) is not None  # at least the running one
    assert find_interpreter("2.99") is None


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no requirements.txt"),
        ({"requirements.txt": "attrs\n", "layer.toml": "[layer]\nrutime = 'x'\n"}, "unknown key"),
        ({"requirements.txt": "attrs\n", "layer.toml": "[layer\n"}, "not valid TOML"),
        ({"requirements.txt": "attrs\n", "layer.toml": "[layer]\nruntime = 'py2'\n"}, "unsupported runtime"),
        ({"requirements.txt": "no-such-package-for-leanlambda-tests==0.0.1\n"}, "pip could not install"),
    ],
)
def test_bad_input_is_a_usage_error_and_writes_nothing(tmp_path, capsys, files, message):
    source = tmp_path / "layer"
    source.mkdir()
    for name, text in files.items():
        (source / name).write_text(text)
    out = tmp_path / "out"
    code, _, err = run_cli(["layer", str(source), "--out", str(out)], capsys)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()[-1:]) == 1
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer"]  # no scratch left behind


def test_refuses_to_overwrite_a_foreign_directory(tmp_path, capsys):
    source = tmp_path / "layer"
    source.mkdir()
    (source / "requirements.txt").write_text("attrs\n")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    code, _, err = run_cli(["layer", str(source), "--out", str(precious)], capsys)
    assert code == 2 and "not a leanlambda layer build" in err
    assert (precious / "keep.txt").read_text() == "mine"


def test_help_describes_the_command(capsys):
    with pytest.raises(SystemExit):
        run_cli(["layer", "--help"], capsys)
    assert "runtime provides" in capsys.readouterr().out


# --- the deterministic zip -------------------------------------------------------------------------------


def test_write_deterministic_zip_ignores_time_permissions_and_bytecode(tmp_path):
    def tree(root: Path, mode: int, mtime: int) -> Path:
        (root / "pkg" / "__pycache__").mkdir(parents=True)
        (root / "pkg" / "__init__.py").write_text("x = 1\n")
        (root / "pkg" / "b.py").write_text("y = 2\n")
        (root / "pkg" / "__pycache__" / "b.cpython-311.pyc").write_bytes(b"junk")
        (root / "pkg" / "stray.pyc").write_bytes(b"junk")
        for path in root.rglob("*"):
            if path.is_file():
                path.chmod(mode)
            os.utime(path, (mtime, mtime))
        return root

    first = write_deterministic_zip(tree(tmp_path / "a", 0o600, 1_000_000), tmp_path / "a.zip", "python/")
    second = write_deterministic_zip(tree(tmp_path / "b", 0o755, 2_000_000), tmp_path / "b.zip", "python")
    assert first == second
    assert first[0] == (tmp_path / "a.zip").stat().st_size
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert archive.namelist() == ["python/", "python/pkg/", "python/pkg/__init__.py", "python/pkg/b.py"]
        assert archive.getinfo("python/pkg/b.py").compress_type == zipfile.ZIP_DEFLATED


# --- the Makenaide example ---------------------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "makenaide-core-layer"


def test_example_settings():
    settings = load_settings(EXAMPLE)
    assert (settings.name, settings.target.runtime, settings.target.arch) == (
        "makenaide-core-layer",
        "python3.13",
        "x86_64",
    )
    lines = settings.requirements.read_text().splitlines()
    names = {line.split(">")[0].split("=")[0].strip() for line in lines if line and not line.startswith("#")}
    assert names == {"psycopg2-binary", "requests", "pyupbit"}
    smoke = "\n".join(settings.smoke)
    for wanted in (
        "pandas.DataFrame({'a': [1, 2]}).rolling(2).mean()",
        "numpy.linalg.norm([3, 4])",
        "import pyupbit",
        "import psycopg2.extras",
        "import requests",
        "from numpy import *",
    ):
        assert wanted in smoke


def test_no_wheel_newer_than_the_runtimes_glibc_and_no_deprecated_runtime():
    tags = Target.parse("python3.13", "x86_64").platform_tags()
    assert "manylinux_2_34_x86_64" in tags and "manylinux2014_x86_64" in tags
    assert "manylinux_2_35_x86_64" not in tags
    with pytest.raises(UsageError, match=r"python3\.11"):
        Target.parse("python3.11", "x86_64")
    assert "manylinux_2_34_aarch64" in Target.parse("python3.12", "arm64").platform_tags()


def test_example_template_passes_cfn_lint_and_the_sam_translator(monkeypatch):
    import subprocess

    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = EXAMPLE / "template.yaml"
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    done = subprocess.run(
        [str(cfn_lint), "--append-rules", "cfn_lint_serverless.rules", "--", str(template)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-northeast-2")
    parsed = yaml_parse(template.read_text())
    layer = parsed["Resources"]["MakenaideCoreLayer"]
    assert layer["Properties"]["ContentUri"] == "."  # sam build runs the folder's Makefile (leanlambda layer)
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    layer["Properties"]["ContentUri"] = "s3://bucket/makenaide-core-layer.zip"  # what `sam package` does

    class NoManagedPolicies:
        def load(self):
            return {}

    resources = transform(parsed, {}, NoManagedPolicies())["Resources"]
    (version,) = [res for res in resources.values() if res["Type"] == "AWS::Lambda::LayerVersion"]
    assert version["DeletionPolicy"] == "Retain"
    assert version["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    assert version["Properties"]["CompatibleArchitectures"] == ["x86_64"]


def test_docstrings_are_emptied_except_in_kept_packages(tmp_path):
    from leanlambda.layer.slim import slim

    site = tmp_path / "python"
    for package in ("plain", "reads_docs"):
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text(
            'def f():\n    """A docstring the layer does not need."""\n    return 1\n'
        )
    saved = slim(site, strip_symbols=False, strip_docstrings=True, keep_docstrings=("reads_docs",))
    assert saved["docstrings"] > 0
    assert "A docstring" not in (site / "plain" / "__init__.py").read_text()
    assert "A docstring" in (site / "reads_docs" / "__init__.py").read_text()
    untouched = tmp_path / "untouched"
    (untouched / "plain").mkdir(parents=True)
    (untouched / "plain" / "__init__.py").write_text('def f():\n    """Kept."""\n')
    assert "docstrings" not in slim(untouched, strip_symbols=False)


def test_bytecode_is_compiled_for_the_runtime_reproducibly_and_used(tmp_path):
    import subprocess
    import zipfile

    from leanlambda.bytecode import LAYER_PYTHON_ROOT, compile_tree
    from leanlambda.ziputil import write_deterministic_zip

    digests = []
    for attempt in ("a", "b"):
        site = tmp_path / attempt / "python"
        (site / "pkg").mkdir(parents=True)
        (site / "pkg" / "__init__.py").write_text("def answer():\n    return 42\n")
        compile_tree(site, RUNNING, LAYER_PYTHON_ROOT)
        digests.append(
            write_deterministic_zip(site.parent, tmp_path / f"{attempt}.zip", keep_bytecode=True)[1]
        )
    assert digests[0] == digests[1]
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        assert f"python/pkg/__pycache__/__init__.cpython-{RUNNING.replace('.', '')}.pyc" in archive.namelist()
    # Unchecked bytecode is used even when the source no longer matches it, as after unzipping.
    (tmp_path / "a" / "python" / "pkg" / "__init__.py").write_text(
        "raise SystemExit('source was compiled')\n"
    )
    probe = "import sys; sys.path.insert(0, sys.argv[1]); import pkg; print(pkg.answer())"
    result = subprocess.run(
        [sys.executable, "-I", "-B", "-c", probe, str(tmp_path / "a" / "python")],
        capture_output=True,
        text=True,
    )
    assert result.stdout.strip() == "42", result.stderr
