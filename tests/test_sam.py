"""The real AWS SAM CLI ships what `leanlambda package` measures.

For a default bake, a full-options bake and the examples' stack: `sam validate --lint`, `sam build`
(the template's `Metadata: BuildMethod: makefile`), then `sam package` to a moto server's S3 on a
loopback port. Every uploaded zip is read back and compared, file by file and byte by byte, with what
`leanlambda package` (or `leanlambda layer`) builds. Stale caches are left in src/ first, as `make
test` leaves them, so the comparison proves they do not leak. The packaged template is then deployed
to moto's CloudFormation and the functions read back. Last, a bake made by plain cookiecutter reaches
its own tools: `make venv && make package && make review` with nothing else done.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest
import yaml

from leanlambda.emulator.motoserver import moto_server
from leanlambda.interpreters import find_interpreter
from leanlambda.limits import python_of
from tests.conftest import REPO_ROOT, module_name

pytestmark = pytest.mark.slow

VENV_BIN = Path(sys.executable).parent
SAM = VENV_BIN / "sam"
REGION = "ap-northeast-2"
BUCKET = "leanlambda-sam-artifacts"
ACCOUNT = "123456789012"  # moto's account
LAYER_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:core-layer:1"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db"
COMMAND_TIMEOUT_S = 1200
FULL_OPTIONS = {
    "function_name": "full-fn",
    "use_postgres": True,
    "use_upbit": True,
    "metrics_backend": "put_metric_data",
    "aws_services": "s3,ssm",
    "prewarm_services": "s3",
    "schedule_expression": "rate(1 hour)",
    "architecture": "arm64",
}
EXAMPLES_COPY_IGNORE = shutil.ignore_patterns(
    "build", ".aws-sam", ".venv", "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache"
)

if not SAM.is_file():
    pytest.skip(
        f"the AWS SAM CLI is not installed in {VENV_BIN} (the dev extra has it)", allow_module_level=True
    )


def _env(**extra: str) -> dict[str, str]:
    """The toolkit's venv first on PATH (sam build runs `leanlambda package` through make), no telemetry."""
    env = {key: value for key, value in os.environ.items() if key not in ("AWS_PROFILE", "AWS_ENDPOINT_URL")}
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", SAM_CLI_TELEMETRY="0")
    env.update(AWS_DEFAULT_REGION=REGION, **extra)
    return env


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout + done.stderr


def _files(archive_bytes: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}


def _leave_caches(function_dir: Path) -> None:
    """What `make test`, editors and old Pythons leave in src/: none of it may reach Lambda."""
    package = function_dir / "src" / module_name(function_dir)
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"bytecode of another Python")
    (package / "__pycache__" / "steps.cpython-313.pyc").write_bytes(b"stale bytecode of an old steps.py")
    (package / "tests").mkdir(exist_ok=True)
    (package / "tests" / "test_in_src.py").write_text("def test_never_ships():\n    pass\n")
    (function_dir / "src" / "conftest.py").write_text("")
    (function_dir / "src" / ".pytest_cache").mkdir(exist_ok=True)
    (function_dir / "src" / ".pytest_cache" / "README.md").write_text("cache\n")


def _leanlambda_package(function_dir: Path, out: Path) -> dict[str, bytes]:
    """The files of the zip `leanlambda package` builds for this function, with its default options."""
    _run(
        [str(VENV_BIN / "leanlambda"), "package", str(function_dir), "--out", str(out)], function_dir, _env()
    )
    (zip_path,) = out.glob("*.zip")
    return _files(zip_path.read_bytes())


def _runtime_tag(runtime: str) -> str | None:
    """cpython-313 for python3.13 when that Python is here (the package then holds its bytecode)."""
    version = python_of(runtime)
    return f"cpython-{version.replace('.', '')}" if find_interpreter(version) else None


def _assert_only_what_lambda_runs(files: dict[str, bytes], runtime: str) -> None:
    tag = _runtime_tag(runtime)
    caches = [name for name in files if "__pycache__" in name or name.endswith(".pyc")]
    assert all(tag and f".{tag}.pyc" in name for name in caches), caches
    if tag:
        assert caches, f"no bytecode although Python {python_of(runtime)} is here"
    assert not [name for name in files if "/tests/" in name or name.startswith("tests/")]
    assert not [name for name in files if Path(name).name.startswith(("test_", "conftest"))]
    assert not [name for name in files if ".pytest_cache" in name]
    assert not [
        data for name, data in files.items() if data.startswith(b"stale") or b"another Python" in data
    ]


@pytest.fixture(scope="module")
def moto_env():
    """A moto server on loopback with the artifacts bucket; its env points boto3 and the SAM CLI at it."""
    with moto_server() as env:
        client = boto3.client(
            "s3", region_name=REGION, endpoint_url=env["AWS_ENDPOINT_URL"], **_credentials(env)
        )
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield env


def _credentials(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": env["AWS_SESSION_TOKEN"],
    }


def _client(service: str, env: dict[str, str]):
    return boto3.client(
        service, region_name=REGION, endpoint_url=env["AWS_ENDPOINT_URL"], **_credentials(env)
    )


def _validate_build_package(project: Path, env: dict[str, str], prefix: str) -> tuple[dict, dict[str, bytes]]:
    """sam validate --lint, sam build, sam package: the packaged template and every uploaded object."""
    _run(
        [str(SAM), "validate", "--lint", "--template-file", "template.yaml", "--region", REGION],
        project,
        _env(),
    )
    _run([str(SAM), "build", "--template-file", "template.yaml", "--region", REGION], project, _env())
    packaged = project / "packaged.yaml"
    command = [str(SAM), "package", "--template-file", ".aws-sam/build/template.yaml", "--s3-bucket", BUCKET]
    command += ["--s3-prefix", prefix, "--output-template-file", str(packaged), "--region", REGION]
    _run(command, project, _env(**env))
    s3 = _client("s3", env)
    keys = [
        item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/").get("Contents", [])
    ]
    objects = {key: s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}
    return yaml.load(packaged.read_text(), Loader=_CfnLoader), objects


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short tags (!Ref, !GetAtt, !Sub) as their long form."""


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        return {name: value.split(".", 1) if suffix == "GetAtt" else value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _short_tag)


def _uploaded_size(uri: str, objects: dict[str, bytes]) -> int:
    return len(objects[uri.removeprefix(f"s3://{BUCKET}/")])


def _uploaded(uri: str, objects: dict[str, bytes]) -> dict[str, bytes]:
    key = uri.removeprefix(f"s3://{BUCKET}/")
    assert key in objects, (uri, sorted(objects))
    return _files(objects[key])


def _deploy_to_moto(packaged: dict, env: dict[str, str], stack: str, parameters: dict[str, str]) -> dict:
    """Deploy the packaged template to moto's CloudFormation; the deployed functions' configurations.

    moto's CloudFormation does not run the AWS::Serverless transform (it skips Serverless resources),
    so the packaged template goes through the SAM translator, as CloudFormation's transform does.
    """
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:
        def load(self):
            return {}

    translated = transform(json.loads(json.dumps(packaged)), parameters, NoManagedPolicies())
    cloudformation = _client("cloudformation", env)
    cloudformation.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(translated),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
    )
    status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    if status != "CREATE_COMPLETE":
        pytest.skip(f"moto's CloudFormation did not create the translated stack ({status})")
    resources = cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    functions = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == "AWS::Lambda::Function"
    }
    lam = _client("lambda", env)
    return {
        "lambda": lam,
        "translated": translated,
        "functions": {
            logical: lam.get_function(FunctionName=name)["Configuration"]
            for logical, name in functions.items()
        },
    }


def _assert_deployed_as_written(
    deployed: dict, packaged: dict, logical: str, parameters: dict[str, str]
) -> None:
    """Runtime, Handler, MemorySize, Timeout and environment as the template says; Layers as translated."""
    written = packaged["Resources"][logical]["Properties"]
    globals_ = packaged.get("Globals", {}).get("Function", {})
    configuration = deployed["functions"][logical]
    assert configuration["Runtime"] == written.get("Runtime", globals_.get("Runtime"))
    assert configuration["Handler"] == written["Handler"]
    assert configuration["MemorySize"] == written["MemorySize"]
    assert configuration["Timeout"] == written["Timeout"]
    variables = configuration["Environment"]["Variables"]
    for key, value in written["Environment"]["Variables"].items():
        if isinstance(value, dict):
            name = value["Ref"]
            value = parameters.get(name, packaged["Parameters"][name].get("Default"))
        assert str(variables[key]) == str(value), key
    # moto's CloudFormation drops a function's Layers when it creates it: the deployed (translated)
    # template's are resolved instead, to the ARN passed in or a layer version the stack created.
    layers = deployed["translated"]["Resources"][logical]["Properties"]["Layers"]
    assert len(layers) == len(written.get("Layers", globals_.get("Layers"))), logical
    for layer in layers:
        if layer["Ref"] in parameters:
            assert parameters[layer["Ref"]].startswith(f"arn:aws:lambda:{REGION}:"), layer
        else:
            assert _stack_layer(deployed, layer["Ref"]), layer


def _stack_layer(deployed: dict, logical: str) -> dict | None:
    """The layer the stack created for resource ``logical`` (moto names it <stack>-<logical id>-...)."""
    layers = deployed["lambda"].list_layers()["Layers"]
    return next((layer for layer in layers if f"-{logical}-" in layer["LayerName"]), None)


@pytest.mark.parametrize(("label", "answers"), [("default", {}), ("full-options", FULL_OPTIONS)])
def test_sam_build_ships_exactly_the_measured_package(label, answers, moto_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # the SAM translator reads it
    from cookiecutter.main import cookiecutter

    function_dir = Path(
        cookiecutter(str(REPO_ROOT), no_input=True, extra_context=answers, output_dir=str(tmp_path))
    )
    runtime = json.loads((function_dir / ".cookiecutter.json").read_text())["runtime"]
    if label == "default":  # what `make test` leaves behind: real bytecode of the toolkit's Python
        _run([sys.executable, "-m", "pytest", "-q", "-x", "tests/test_steps.py"], function_dir, _env())
    _leave_caches(function_dir)
    expected = _leanlambda_package(function_dir, tmp_path / "measured")
    packaged, objects = _validate_build_package(function_dir, moto_env, label)

    shipped = _uploaded(packaged["Resources"]["Function"]["Properties"]["CodeUri"], objects)
    assert shipped == expected
    _assert_only_what_lambda_runs(shipped, runtime)
    built = function_dir / ".aws-sam" / "build" / "Function"
    assert {
        p.relative_to(built).as_posix(): p.read_bytes() for p in built.rglob("*") if p.is_file()
    } == expected
    uri = packaged["Resources"]["Function"]["Properties"]["CodeUri"]
    measured = next((tmp_path / "measured").glob("*.zip")).stat().st_size
    print(
        f"{label}: uploaded {_uploaded_size(uri, objects)} bytes, measured {measured}, {len(shipped)} files"
    )

    parameters = {"CoreLayerArn": LAYER_ARN}
    if answers.get("use_postgres"):
        parameters["DbSecretArn"] = SECRET_ARN
    deployed = _deploy_to_moto(packaged, moto_env, f"sam-{label}", parameters)
    _assert_deployed_as_written(deployed, packaged, "Function", parameters)


def test_the_examples_stack_ships_its_packages_and_its_layer(moto_env, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # the SAM translator reads it
    examples = tmp_path / "examples"
    shutil.copytree(REPO_ROOT / "examples", examples, ignore=EXAMPLES_COPY_IGNORE)
    for folder in sorted(examples.glob("*/src")):
        _leave_caches(folder.parent)
    packaged, objects = _validate_build_package(examples, moto_env, "examples")
    resources = packaged["Resources"]
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 4
    runtime = packaged["Globals"]["Function"]["Runtime"]
    for logical, resource in functions.items():
        folder = examples / resource["Metadata"]["ContextPath"]
        uri = resource["Properties"]["CodeUri"]
        shipped = _uploaded(uri, objects)
        assert shipped == _leanlambda_package(folder, tmp_path / "measured" / logical), logical
        measured = next((tmp_path / "measured" / logical).glob("*.zip")).stat().st_size
        print(f"{logical}: uploaded {_uploaded_size(uri, objects)} bytes, measured {measured}")
        _assert_only_what_lambda_runs(shipped, runtime)

    layer = resources["CoreLayer"]["Properties"]["ContentUri"]
    built_layer = examples / "makenaide-core-layer" / "build" / "makenaide-core-layer.zip"
    assert _uploaded(layer, objects) == _files(built_layer.read_bytes())
    print(f"CoreLayer: uploaded {_uploaded_size(layer, objects)} bytes, built {built_layer.stat().st_size}")
    assert any(name.startswith("python/pandas/") for name in _uploaded(layer, objects))

    parameters = {
        "DbSecretArn": SECRET_ARN,
        "ScannerDbSecretArn": f"{SECRET_ARN}-scanner",
        "CollectorDbSecretArn": f"{SECRET_ARN}-collector",
        "InstanceId": "i-0123456789abcdef0",
        "DbInstanceIdentifier": "makenaide",
    }
    deployed = _deploy_to_moto(packaged, moto_env, "sam-examples", parameters)
    for logical in functions:
        _assert_deployed_as_written(deployed, packaged, logical, parameters)
    translated = deployed["translated"]["Resources"]
    (layer_logical,) = [name for name, r in translated.items() if r["Type"] == "AWS::Lambda::LayerVersion"]
    created = _stack_layer(deployed, layer_logical)
    assert created and runtime in created["LatestMatchingVersion"]["CompatibleRuntimes"]


def test_a_plain_cookiecutter_bake_reaches_its_tools(tmp_path):
    """From `cookiecutter <template>` alone: make venv, make package, make review; no manual step."""
    _run(
        [str(VENV_BIN / "cookiecutter"), "--no-input", str(REPO_ROOT), "-o", str(tmp_path)], tmp_path, _env()
    )
    function_dir = tmp_path / "my-function"
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != VENV_BIN)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = path  # the function's own .venv, never the toolkit's
    for target in ("venv", "package", "review"):
        output = _run(["make", target], function_dir, env)
    assert ".venv/bin/leanlambda review ." in output and "PASSED" in output
    assert (function_dir / "build" / "my-function.zip").is_file()
    subprocess.run(["git", "init", "-q"], cwd=function_dir, check=True)
    staged = subprocess.run(
        ["git", "add", "--dry-run", "-A"], cwd=function_dir, capture_output=True, text=True, check=True
    ).stdout
    assert "src/my_function/handler.py" in staged
    assert not [
        line for line in staged.splitlines() if ".venv" in line or "build/" in line or "__pycache__" in line
    ]


def test_the_benchmark_measures_the_deployed_artifact_under_the_runtimes_python():
    from benchmarks.sam_artifact import section

    version = python_of(json.loads((REPO_ROOT / "cookiecutter.json").read_text())["runtime"][0])
    text = section(runs=1)
    assert text.startswith("## The deployed artifact (`sam build`)")
    if find_interpreter(version) is None:
        assert f"Not measured: no Python {version} here" in text
        return
    rows = [line for line in text.splitlines() if line.startswith("| deployed artifact")]
    assert len(rows) == 1 and rows[0].count("|") == 6
    assert f"bytecode for Python {version}" in text and "over the floor" in text
