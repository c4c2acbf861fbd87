"""A generated function's folder as the toolkit sees it: answers, template, handler, source.

Every command starts here, so a folder that is not a function gets the same one-line usage error
from `package`, `invoke` and `review` alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanlambda.cfn_yaml import is_intrinsic, load_template
from leanlambda.errors import UsageError

TEMPLATE_FILE = "template.yaml"
ANSWERS_FILE = ".cookiecutter.json"
SOURCE_DIR = "src"
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
# CloudFormation's own defaults when a template leaves them out.
DEFAULT_MEMORY_MB = 128
DEFAULT_TIMEOUT_S = 3
DEFAULT_ARCHITECTURE = "x86_64"
DEFAULT_REGION = "us-east-1"


@dataclass
class FunctionDir:
    """One function folder: where things are and the settings Lambda would run it with."""

    root: Path
    answers: dict[str, Any]
    template: dict[str, Any]
    logical_id: str
    properties: dict[str, Any]  # the function's Properties with Globals.Function merged in
    handler: str
    name: str

    @property
    def src(self) -> Path:
        return self.root / SOURCE_DIR

    @property
    def template_path(self) -> Path:
        return self.root / TEMPLATE_FILE

    @property
    def module(self) -> str:
        """The handler's module path, e.g. `my_function.handler`."""
        return self.handler.rsplit(".", 1)[0]

    @property
    def package(self) -> str:
        """The top-level package under src/, e.g. `my_function`."""
        return self.handler.split(".", 1)[0]

    @property
    def package_dir(self) -> Path:
        return self.src / self.package

    @property
    def handler_attr(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    def setting(self, key: str) -> Any:
        """A function property, with `!Ref Parameter` resolved to the parameter's Default."""
        value = self.properties.get(key)
        if isinstance(value, dict) and set(value) == {"Ref"}:
            parameters = self.template.get("Parameters")
            spec = parameters.get(value["Ref"]) if isinstance(parameters, dict) else None
            return spec.get("Default") if isinstance(spec, dict) else None
        return value

    @property
    def memory_mb(self) -> int:
        return _int_setting(self.setting("MemorySize"), self.answers.get("memory_size"), DEFAULT_MEMORY_MB)

    @property
    def timeout_s(self) -> int:
        return _int_setting(self.setting("Timeout"), self.answers.get("timeout"), DEFAULT_TIMEOUT_S)

    @property
    def architecture(self) -> str:
        archs = self.properties.get("Architectures")
        if isinstance(archs, list) and archs and isinstance(archs[0], str):
            return archs[0]
        return str(self.answers.get("architecture") or DEFAULT_ARCHITECTURE)

    @property
    def runtime(self) -> str:
        runtime = self.properties.get("Runtime")
        return runtime if isinstance(runtime, str) else str(self.answers.get("runtime", ""))

    @property
    def region(self) -> str:
        return str(self.answers.get("region") or DEFAULT_REGION)

    @property
    def log_format(self) -> str:
        config = self.properties.get("LoggingConfig")
        value = config.get("LogFormat") if isinstance(config, dict) else None
        return value if isinstance(value, str) else "Text"

    @property
    def layers(self) -> list[Any]:
        layers = self.properties.get("Layers")
        return layers if isinstance(layers, list) else []

    def environment(self) -> dict[str, str]:
        """Literal environment variables of the template (computed ones are left out)."""
        env = self.properties.get("Environment")
        variables = env.get("Variables") if isinstance(env, dict) else None
        if not isinstance(variables, dict):
            return {}
        return {
            str(key): str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in variables.items()
            if not is_intrinsic(value) and value is not None
        }


def _int_setting(template_value: Any, answer: Any, default: int) -> int:
    for value in (template_value, answer):
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    return default


def _merge_globals(template: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    globals_ = template.get("Globals")
    function_globals = globals_.get("Function") if isinstance(globals_, dict) else None
    merged = dict(function_globals) if isinstance(function_globals, dict) else {}
    merged.update(properties)
    return merged


def find_function_resource(template: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The first Lambda function resource (logical id, Properties), or None."""
    resources = template.get("Resources")
    if not isinstance(resources, dict):
        return None
    for logical_id, resource in resources.items():
        if isinstance(resource, dict) and resource.get("Type") in FUNCTION_TYPES:
            properties = resource.get("Properties")
            return str(logical_id), properties if isinstance(properties, dict) else {}
    return None


def load_function(path: str | Path) -> FunctionDir:
    """Read a function folder; a UsageError (one line) says what is missing."""
    root = Path(path).expanduser()
    if not root.exists():
        raise UsageError(f"no such folder: {root}")
    if not root.is_dir():
        raise UsageError(f"not a folder: {root}")
    template_path = root / TEMPLATE_FILE
    if not template_path.is_file():
        raise UsageError(f"not a function folder (no {TEMPLATE_FILE}): {root}")
    if not (root / SOURCE_DIR).is_dir():
        raise UsageError(f"not a function folder (no {SOURCE_DIR}/): {root}")
    try:
        template = load_template(template_path)
    except (ValueError, OSError) as error:
        raise UsageError(f"cannot read {template_path}: {str(error).splitlines()[0]}") from None
    except Exception as error:  # yaml.YAMLError and friends
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"cannot parse {template_path}: {first}") from None
    answers: dict[str, Any] = {}
    answers_path = root / ANSWERS_FILE
    if answers_path.is_file():
        try:
            loaded = json.loads(answers_path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as error:
            raise UsageError(f"cannot read {answers_path}: {error}") from None
        answers = loaded if isinstance(loaded, dict) else {}
    found = find_function_resource(template)
    if found is None:
        raise UsageError(f"no Lambda function resource in {template_path}")
    logical_id, properties = found
    properties = _merge_globals(template, properties)
    handler = properties.get("Handler")
    if not isinstance(handler, str) or handler.count(".") < 1:
        raise UsageError(f"{template_path}: function {logical_id} has no Handler of the form module.function")
    name = properties.get("FunctionName")
    if not isinstance(name, str):
        name = str(answers.get("function_name") or root.resolve().name)
    return FunctionDir(
        root=root,
        answers=answers,
        template=template,
        logical_id=logical_id,
        properties=properties,
        handler=handler,
        name=name,
    )
