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
from leanlambda.layer.builder import REPORT_FILE, NotProved, report_lines
from leanlambda.layer.elf import load_segments, loaded_image
from leanlambda.layer.install import Dist, check_pure_wheels, runtime_provided_to_drop
from leanlambda.layer.slim import slim, strip_symbol_tables
from leanlambda.layer.target import host_arch
from leanlambda.layer.verify import find_interpreter
from leanlambda.limits import DEFAULT_RUNTIME, python_of
from leanlambda.ziputil import write_deterministic_zip

REQUIREMENTS = "attrs\nrequests\nsimplejson\naws-xray-sdk\n"
TINY_LIMIT_MB = "0.01"
HERE_RUNTIME = DEFAULT_RUNTIME  # the runtime's exact Python is on this machine (pyenv), so the proof runs
HERE = python_of(HERE_RUNTIME)
RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"  # the Python running the tests
HOST_LIBPQ = Path("/usr/lib/x86_64-linux-gnu/libpq.so.5")  # Debian's libpq5, present on the build machine
pytestmark = pytest.mark.skipif(find_interpreter(HERE) is None, reason=f"needs Python {HERE} (the runtime's)")
SMOKE = (
    "import simplejson; assert simplejson.loads('[1, 2]') == [1, 2]",
    "import attr; assert attr.__version__",
)


@pytest.fixture(scope="session")
def layer_source(tmp_path_factory) -> Path:
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
    # boto3 is named in the requirements: kept (it shadows the runtime's); what only it needs is left out
    assert runtime_provided_to_drop(dists, target) == {"botocore", "jmespath", "urllib3"}


def test_explicit_pins_of_runtime_packages_are_kept_transitive_ones_are_not():
    target = Target.parse("python3.12", "x86_64")
    dists = [
        Dist("boto3", "1.40.0", ["botocore"], requested=True),
        Dist("botocore", "1.40.0", ["urllib3"]),
        Dist("urllib3", "2.2", requested=True),
        Dist("python-dateutil", "2.9", ["six"], requested=True),
        Dist("six", "1.17"),
    ]
    assert runtime_provided_to_drop(dists, target) == {"botocore"}


# --- slimming ----------------------------------------------------------------------------------------------


def test_built_layer_is_slim(built):
    result, _ = built
    site = site_of(result)
    leftovers = [
        p for p in site.rglob("*") if p.name in ("tests", "RECORD") or p.suffix in (".pyi", ".c", ".pyx")
    ]
    assert leftovers == []
    tag = f"cpython-{HERE.replace('.', '')}"
    assert all(p.parent.name == "__pycache__" and f".{tag}." in p.name for p in site.rglob("*.pyc"))
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
    assert find_interpreter(HERE) is not None  # at least the running one
    assert find_interpreter("2.99") is None


# --- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no requirements.txt"),
        ({"requirements.txt": "attrs\n", "layer.toml": "[layer]\nrutime = 'x'\n"}, "unknown key"),
        ({"requirements.txt": "attrs\n", "layer.toml": "[layer\n"}, "not valid TOML"),
        ({"requirements.txt": "attrs\n", "layer.toml": "[layer]\nruntime = 'py2'\n"}, "unsupported runtime"),
        ({"requirements.txt": "no-such-package-for-leanlambda-tests==0.0.1\n"}, "no such package"),
        ({"requirements.txt": "# only a comment\n"}, "no requirements"),
        (
            {"requirements.txt": "attrs\n", "layer.toml": "[layer]\nallow_pure_sdist = 'x'\n"},
            "allow_pure_sdist",
        ),
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


def test_help_documents_every_layer_toml_key_and_exit_status(capsys):
    from leanlambda.layer.settings import KNOWN_KEYS

    with pytest.raises(SystemExit):
        run_cli(["layer", "--help"], capsys)
    text = capsys.readouterr().out
    assert "runtime provides" in text
    assert all(f"{key} =" in text for key in KNOWN_KEYS), sorted(
        k for k in KNOWN_KEYS if f"{k} =" not in text
    )
    assert "exit 3" in text


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
        DEFAULT_RUNTIME,
        "x86_64",
    )
    assert settings.bytecode is None  # the default: bytecode whenever the runtime's Python is here
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


def test_every_install_for_lambda_offers_pip_the_targets_wheels_only(tmp_path):
    """Target.pip_install_command, through which the layer, the SDK stand-in, the naive layer and review's
    requirements install: the runtime's glibc tags, binary wheels only, bytecode only when asked."""
    target = Target.parse("python3.13", "arm64")
    command = target.pip_install_command(tmp_path, ["attrs==25.3.0"], python_version="3.11")
    assert command[1:6] == ["-m", "pip", "install", "--target", str(tmp_path)]
    assert "--only-binary=:all:" in command and "--no-compile" in command
    assert command[command.index("--python-version") + 1] == "3.11"  # the Python the wheels import under
    assert {"manylinux_2_34_aarch64", "manylinux2014_aarch64"} <= set(command)
    assert command[-1] == "attrs==25.3.0"
    naive = target.pip_install_command(
        tmp_path, ["-r", "pins.txt"], compile_bytecode=True, extra=["--no-deps"]
    )
    assert "--no-compile" not in naive and "--no-deps" in naive
    assert naive[naive.index("--python-version") + 1] == "3.13"


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
    assert version["Properties"]["CompatibleRuntimes"] == [load_settings(EXAMPLE).target.runtime]
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


# --- requirements are specifiers, never pip options (the attack: a line that overrides --only-binary) ---


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("--no-binary simplejson\nsimplejson\n", "pip option --no-binary is not accepted"),
        ("simplejson --no-binary simplejson\n", "only --hash may follow a requirement"),
        ("--no-index\nattrs\n", "pip option --no-index"),
        ("--find-links /tmp\nattrs\n", "pip option --find-links"),
        ("--index-url http://127.0.0.1:9/simple\nattrs\n", "pip option --index-url"),
        ("-e ./evil\n", "pip option -e"),
        ("-r other.txt\n", "pip option -r"),
        ("-c constraints.txt\n", "pip option -c"),
        ("./evil\n", "URLs and paths are not accepted"),
        ("evil.tar.gz\n", "URLs and paths are not accepted"),
        ("evil @ file:///tmp/evil\n", "URLs and paths are not accepted"),
        ("https://127.0.0.1:9/evil-1.0.tar.gz\n", "URLs and paths are not accepted"),
    ],
)
def test_requirement_lines_that_are_not_specifiers_are_refused_before_pip_runs(
    tmp_path, capsys, line, message
):
    source = tmp_path / "layer"
    source.mkdir()
    evil = source / "evil"  # a local project whose setup.py would write a file when pip builds it
    evil.mkdir()
    marker = tmp_path / "setup-py-ran"
    (evil / "setup.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nfrom setuptools import setup\nsetup()\n"
    )
    (source / "requirements.txt").write_text(line)
    out = tmp_path / "out"
    code, _, err = run_cli(["layer", str(source), "--out", str(out)], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and message in last and "requirements.txt:1" in last
    assert not out.exists() and not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layer"]  # nothing built, no scratch left


def test_hashes_markers_and_extras_are_accepted(tmp_path):
    from leanlambda.layer.requirements import read_requirements

    path = tmp_path / "requirements.txt"
    path.write_text(
        "# pinned\nattrs==23.2.0 \\\n"
        "    --hash=sha256:99b87a485a5820b23b879f04c2305b44b951b502fd64be915879d77a7e8fc6f1\n"
        "requests[socks]>=2.31 ; python_version >= '3.12'  # a marker\n"
    )
    lines = read_requirements(path)
    assert [line.requirement.name for line in lines] == ["attrs", "requests"]
    assert "--hash=sha256:" in lines[0].text


# --- the proof isolates: nothing from the build machine ----------------------------------------------------


def _psycopg_layer(tmp_path, requirement: str):
    source = tmp_path / "pg-layer"
    source.mkdir()
    (source / "requirements.txt").write_text(requirement + "\n")
    (source / "layer.toml").write_text(f'[layer]\nruntime = "{HERE_RUNTIME}"\n')
    messages: list[str] = []
    result = build_layer(
        load_settings(source), out_dir=tmp_path / "out", progress=messages.append, measure=False
    )
    return result, messages


@pytest.mark.skipif(not HOST_LIBPQ.exists() or host_arch() != "x86_64", reason="needs the host's libpq5")
def test_psycopg_without_binary_fails_the_proof_naming_the_host_libpq(tmp_path):
    """psycopg 3 without [binary] imports here through this machine's libpq; Lambda has none."""
    result, _ = _psycopg_layer(tmp_path, "psycopg>=3")
    verification = result.verification
    assert verification.status == "failed"
    assert verification.failures == {}  # the import itself succeeds here: that is the trap
    assert str(HOST_LIBPQ) in " ".join(verification.foreign_libraries["psycopg"])
    assert str(HOST_LIBPQ) in verification.summary()
    with pytest.raises(CheckFailed, match=r"libpq\.so\.5"):
        check_build(result)


def test_psycopg_binary_is_proved_through_its_parent(tmp_path):
    result, _ = _psycopg_layer(tmp_path, "psycopg[binary]>=3")
    verification = result.verification
    assert verification.status == "verified", verification.summary()
    assert verification.companions == {"psycopg_binary": "psycopg"}
    assert verification.foreign_libraries == {} and verification.unmet_needed == {}
    check_build(result)


def test_a_shipped_library_needing_a_host_library_fails_even_for_another_architecture(built, tmp_path):
    """DT_NEEDED is read from the files: an arm64 layer is checked without running it."""
    result, _ = built
    if not HOST_LIBPQ.exists():
        pytest.skip("needs a host library that needs libraries Lambda lacks")
    site = tmp_path / "python"
    shutil.copytree(site_of(result), site)
    shutil.copy(HOST_LIBPQ.resolve(), site / "libpq.so.5")  # what a source build would have linked
    foreign = "arm64" if host_arch() == "x86_64" else "x86_64"
    verification = verify_layer(site, Target.parse(HERE_RUNTIME, foreign))
    assert verification.status == "failed"
    assert "libldap-2.5.so.0" in verification.unmet_needed["libpq.so.5"]
    assert "libpq.so.5 needs" in verification.summary()


def test_the_runtime_sdk_stand_in_is_the_pinned_version(built):
    from leanlambda.limits import RUNTIME_SDK_VERSIONS

    result, _ = built
    pinned = RUNTIME_SDK_VERSIONS[HERE_RUNTIME]
    assert f"boto3 {pinned['boto3']}, botocore {pinned['botocore']}" in result.verification.runtime_sdk
    statement = (
        f"import botocore; assert botocore.__version__ == {pinned['botocore']!r}, botocore.__version__"
    )
    verification = verify_layer(
        site_of(result),
        Target.parse(HERE_RUNTIME, host_arch()),
        skip=tuple(result.verification.modules),
        smoke=(statement,),
    )
    assert verification.status == "verified", verification.summary()


# --- explicit beats implicit ------------------------------------------------------------------------------


def test_explicit_pins_of_runtime_provided_packages_are_kept_with_a_note(tmp_path):
    source = tmp_path / "pins"
    source.mkdir()
    (source / "requirements.txt").write_text("boto3==1.40.0\nurllib3>=2.2\npython-dateutil>=2.9\n")
    (source / "layer.toml").write_text(f'[layer]\nruntime = "{HERE_RUNTIME}"\n')
    messages: list[str] = []
    result = build_layer(
        load_settings(source), out_dir=tmp_path / "out", progress=messages.append, measure=False
    )
    kept = {pin.split("==")[0]: pin.split("==")[1] for pin in result.packages}
    assert kept["boto3"] == "1.40.0" and {"urllib3", "python-dateutil"} <= set(kept)
    assert "botocore" in {pin.split("==")[0] for pin in result.left_out}  # only boto3 needs it
    assert any("boto3==1.40.0 is named in the requirements" in m and "shadows" in m for m in messages)
    lock = (Path(result.out_dir) / "layer" / "requirements.lock").read_text()
    assert "boto3==1.40.0\n" in lock and "#   boto3" not in lock
    assert any(line.startswith("shadows    boto3==1.40.0") for line in report_lines(result))
    assert result.verification.status == "verified", result.verification.summary()


# --- clear failures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requirement", "expected", "not_expected"),
    [
        (
            "docopt==0.6.2",
            f"no wheel for {HERE_RUNTIME} manylinux x86_64 matching docopt==0.6.2 (only an sdist",
            "no such package",
        ),
        ("reqeusts-leanlambda-misspelled", "no such package: reqeusts-leanlambda-misspelled", "no wheel"),
        ("requests==99.0", "no release of requests matches ==99.0", "no such package"),
    ],
)
def test_an_sdist_only_package_is_told_apart_from_a_misspelled_one(
    tmp_path, capsys, requirement, expected, not_expected
):
    source = tmp_path / "layer"
    source.mkdir()
    (source / "requirements.txt").write_text(requirement + "\n")
    (source / "layer.toml").write_text(f'[layer]\nruntime = "{HERE_RUNTIME}"\n')
    code, _, err = run_cli(["layer", str(source), "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and expected in err and not_expected not in err
    assert len(err.strip().splitlines()) == 1 or err.strip().splitlines()[-1].startswith("leanlambda layer: ")
    assert not (tmp_path / "out").exists()


def test_allow_pure_sdist_builds_a_pure_sdist_into_the_layer(tmp_path):
    source = tmp_path / "sdist"
    source.mkdir()
    (source / "requirements.txt").write_text("docopt==0.6.2\n")
    (source / "layer.toml").write_text(
        f'[layer]\nruntime = "{HERE_RUNTIME}"\nallow_pure_sdist = ["docopt"]\n'
    )
    result = build_layer(
        load_settings(source), out_dir=tmp_path / "out", progress=lambda _: None, measure=False
    )
    assert result.packages == ["docopt==0.6.2"]
    assert result.verification.status == "verified", result.verification.summary()


def test_a_wheel_built_for_this_machine_is_refused_by_allow_pure_sdist(tmp_path):
    (tmp_path / "pure-1.0-py3-none-any.whl").write_bytes(b"")
    check_pure_wheels(tmp_path)
    (
        tmp_path / f"native-1.0-cp{HERE.replace('.', '')}-cp{HERE.replace('.', '')}-linux_x86_64.whl"
    ).write_bytes(b"")
    with pytest.raises(UsageError, match=r"native-1\.0-.* is not pure Python"):
        check_pure_wheels(tmp_path)


def test_a_layer_that_could_not_be_proved_exits_3(built, tmp_path, capsys, layer_source):
    foreign = "arm64" if host_arch() == "x86_64" else "x86_64"
    out = tmp_path / "foreign"
    code, _, err = run_cli(["layer", str(layer_source), "--arch", foreign, "--out", str(out)], capsys)
    assert code == NotProved.exit_code == 3
    assert "built but not verified" in err and f"{foreign} layer on a" in err
    assert (out / "small.zip").is_file()  # the layer is built, only not proved


# --- cold start first --------------------------------------------------------------------------------------


def test_the_default_layer_ships_bytecode_and_reports_its_cold_import_next_to_naive(built):
    result, _ = built
    assert result.bytecode is True
    with zipfile.ZipFile(result.zip_path) as archive:
        assert any(name.endswith(f".cpython-{HERE.replace('.', '')}.pyc") for name in archive.namelist())
    assert result.cold_import_s is not None and result.naive_cold_import_s is not None  # measured
    lines = report_lines(result)
    assert "bytecode   yes" in lines
    (cold,) = [line for line in lines if line.startswith("cold start")]
    assert f"{result.cold_import_s:.2f} s, naive `pip install -t` {result.naive_cold_import_s:.2f} s" in cold
    assert "read-only" in cold


def test_without_the_runtime_python_the_layer_has_no_bytecode_and_says_what_it_costs(
    layer_source, tmp_path, monkeypatch
):
    monkeypatch.setattr("leanlambda.layer.builder.find_interpreter", lambda version: None)
    messages: list[str] = []
    result = build_layer(
        load_settings(layer_source),
        out_dir=tmp_path / "out",
        progress=messages.append,
        verify=False,
        measure=False,
    )
    assert result.bytecode is False and not list(site_of(result).rglob("*.pyc"))
    (note,) = [message for message in messages if message.startswith("note: no bytecode")]
    assert "compile in" in note and f"pyenv install {HERE}" in note
    assert "bytecode   no" in report_lines(result)
