"""What a Lambda Python runtime puts on sys.path and in the environment, rebuilt locally.

Only the packages the managed runtime ships (boto3 and its dependencies, limits.RUNTIME_PROVIDED_MODULES)
are visible besides the function's own code and its layers, so a dependency missing from the layer
fails here as on Lambda.
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from pathlib import Path

from leanlambda.errors import UsageError
from leanlambda.limits import RUNTIME_PROVIDED_MODULES

LAYER_PYTHON_DIR = "python"
FAKE_ACCOUNT_ID = "123456789012"
PASSTHROUGH_PREFIXES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")


def build_runtime_dir(target: Path) -> Path:
    """A folder of symlinks to the toolkit env's copies of the runtime-provided packages."""
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PROVIDED_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            source = Path(next(iter(spec.submodule_search_locations)))
            link = target / name
        elif spec.origin:
            source = Path(spec.origin)
            link = target / source.name
        else:
            continue
        if not link.exists():
            link.symlink_to(source, target_is_directory=source.is_dir())
    return target


def layer_paths(layers: list[Path], extract_root: Path, python_minor: str) -> list[str]:
    """sys.path entries for each layer (a folder or a zip), as Lambda mounts them under /opt.

    Lambda puts /opt/python/lib/pythonX.Y/site-packages and /opt/python on the path; a zip is
    extracted first. A layer folder without a python/ subfolder is used as is (already the python/ dir).
    """
    paths: list[str] = []
    version = f"python{python_minor}"
    for index, layer in enumerate(layers):
        layer = Path(layer)
        if layer.is_file() and zipfile.is_zipfile(layer):
            root = extract_root / f"layer{index}"
            with zipfile.ZipFile(layer) as archive:
                archive.extractall(root)
        elif layer.is_dir():
            root = layer
        else:
            raise UsageError(f"--layer must be a folder or a zip: {layer}")
        python_dir = root / LAYER_PYTHON_DIR
        if not python_dir.is_dir():
            python_dir = root
        site = python_dir / "lib" / version / "site-packages"
        if site.is_dir():
            paths.append(str(site))
        paths.append(str(python_dir))
    return paths


def lambda_environment(
    function_name: str,
    memory_mb: int,
    region: str,
    runtime: str,
    log_format: str,
    task_root: Path,
    home: Path,
) -> dict[str, str]:
    """The environment variables Lambda sets, plus isolation from the developer's AWS config files."""
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2025/01/01/[$LATEST]leanlambda",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_FORMAT": log_format,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}" if runtime else "AWS_Lambda_python",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(task_root),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "aws-config-absent"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials-absent"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if log_format == "JSON":
        env["AWS_LAMBDA_LOG_LEVEL"] = "INFO"
    for key, value in os.environ.items():
        if key.startswith(PASSTHROUGH_PREFIXES):
            env[key] = value
    return env
