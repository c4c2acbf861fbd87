"""Validate every answer before cookiecutter writes anything.

Cookiecutter renders this file with Jinja, then runs it. The answers are read as
JSON inside main() (``json.loads(r'...| tojson')``: tojson escapes quotes, so no
answer can break or inject code), and every check is a small pure function, so the
unrendered file imports cleanly and the checks are unit-tested directly.

On a bad answer: one line on stderr, ``ERROR: <field>: <value> is not valid: <allowed>``,
and exit status 1; cookiecutter then removes the folder it created.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

RUNTIMES = ("python3.13", "python3.14", "python3.12")
# Lambda no longer patches these (then blocks creating and updating functions): an old answer, e.g.
# from `cruft update` of a function baked before, is told what to choose instead.
DEPRECATED_RUNTIMES = {"python3.11": "2026-06-30", "python3.10": "2026-06-30", "python3.9": "2025-12-15"}
ARCHITECTURES = ("x86_64", "arm64")
METRICS_BACKENDS = ("emf", "put_metric_data")
MEMORY_MIN_MB, MEMORY_MAX_MB = 128, 10_240
TIMEOUT_MIN_S, TIMEOUT_MAX_S = 3, 900
"""The runtime keeps up to a fifth of the timeout to flush metrics and answer: below 3 s, no work fits."""
DESCRIPTION_MAX = 256
NAMESPACE_MAX = 255
VALUE_REPR_MAX = 60

FUNCTION_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
LAYER_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,140}")
REGION_RE = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
SERVICE_RE = re.compile(r"[a-z0-9-]+")
NAMESPACE_RE = re.compile(r"[A-Za-z0-9._/#:-]+")
RATE_RE = re.compile(r"rate\(([1-9][0-9]*) (minute|minutes|hour|hours|day|days)\)")
CRON_RE = re.compile(r"cron\(([^ ()]+(?: [^ ()]+){5})\)")
CRON_FIELD_RE = re.compile(r"[0-9A-Za-z*?,/#L-]+")
POSITIVE_INT_RE = re.compile(r"[1-9][0-9]*")

# Top-level modules of the runtime, the layer and the test tools: a function module
# with one of these names would shadow it (or be shadowed) on sys.path.
SHADOWED_MODULES = frozenset(
    {
        "awslambdaric",
        "bootstrap",
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "dateutil",
        "urllib3",
        "six",
        "psycopg2",
        "psycopg",
        "pyupbit",
        "requests",
        "certifi",
        "charset_normalizer",
        "idna",
        "pandas",
        "numpy",
        "jwt",
        "websockets",
        "pytz",
        "tzdata",
        "yaml",
        "simplejson",
        "typing_extensions",
        "aws_lambda_powertools",
        "aws_xray_sdk",
        "pkg_resources",
        "setuptools",
        "pip",
        "pytest",
        "_pytest",
        "moto",
        "responses",
        "leanlambda",
        "src",
        "tests",
        "test",
    }
)
_FALLBACK_STDLIB = frozenset(
    {
        "abc",
        "argparse",
        "asyncio",
        "base64",
        "collections",
        "copy",
        "csv",
        "dataclasses",
        "datetime",
        "decimal",
        "email",
        "enum",
        "functools",
        "glob",
        "hashlib",
        "http",
        "importlib",
        "io",
        "json",
        "logging",
        "math",
        "os",
        "pathlib",
        "pickle",
        "queue",
        "random",
        "re",
        "select",
        "shutil",
        "signal",
        "socket",
        "ssl",
        "string",
        "struct",
        "subprocess",
        "sys",
        "tempfile",
        "threading",
        "time",
        "types",
        "typing",
        "unittest",
        "urllib",
        "uuid",
        "warnings",
        "zipfile",
    }
)
STDLIB_MODULES = frozenset(getattr(sys, "stdlib_module_names", _FALLBACK_STDLIB))


class InvalidAnswer(ValueError):
    """An answer that the template cannot use."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        super().__init__(f"{field}: {value!r}: {allowed}")
        self.field = field
        self.value = value
        self.allowed = allowed

    def line(self) -> str:
        """The one-line message shown to the user."""
        shown = repr(self.value)
        if len(shown) > VALUE_REPR_MAX:
            shown = shown[: VALUE_REPR_MAX - 3] + "..."
        return f"ERROR: {self.field}: {shown} is not valid: {self.allowed}"


def _require_str(field: str, value: Any, allowed: str) -> str:
    if not isinstance(value, str):
        raise InvalidAnswer(field, value, allowed)
    return value


def _require_match(field: str, value: Any, pattern: re.Pattern[str], allowed: str) -> str:
    if not pattern.fullmatch(_require_str(field, value, allowed)):
        raise InvalidAnswer(field, value, allowed)
    return value


def validate_function_name(value: Any) -> str:
    return _require_match(
        "function_name", value, FUNCTION_NAME_RE, "1-64 characters: letters, digits, '-' and '_'"
    )


def validate_module_name(value: Any, function_name: str | None = None) -> str:
    """The package name derived from function_name (lower case, '-' -> '_')."""
    field, shown = ("function_name", function_name) if function_name is not None else ("module_name", value)

    def fail(reason: str) -> InvalidAnswer:
        return InvalidAnswer(field, shown, f"its module name {value!r} {reason}")

    if not isinstance(value, str) or not value.isascii() or not value.isidentifier():
        raise fail("must be a Python identifier (start with a letter or '_')")
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        raise fail("must not be a Python keyword")
    if value in STDLIB_MODULES:
        raise fail("must not shadow a standard-library module")
    if value in SHADOWED_MODULES:
        raise fail("must not shadow a runtime, layer or test-tool module")
    return value


def validate_description(value: Any) -> str:
    allowed = (
        f"one line of 1-{DESCRIPTION_MAX} characters, no leading or trailing spaces, "
        "no double quote or backslash"
    )
    value = _require_str("description", value, allowed)
    if (
        not value
        or len(value) > DESCRIPTION_MAX
        or value != value.strip()
        or any(ch < " " or ch == "\x7f" for ch in value)
        or '"' in value
        or "\\" in value
    ):
        raise InvalidAnswer("description", value, allowed)
    return value


def validate_choice(field: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise InvalidAnswer(field, value, "one of " + ", ".join(choices))
    return value


def validate_runtime(value: Any) -> str:
    if value in DEPRECATED_RUNTIMES:
        raise InvalidAnswer(
            "runtime",
            value,
            f"deprecated on Lambda since {DEPRECATED_RUNTIMES[value]}; set runtime to one of "
            + ", ".join(RUNTIMES)
            + " (in .cookiecutter.json for cruft update)",
        )
    return validate_choice("runtime", value, RUNTIMES)


def validate_architecture(value: Any) -> str:
    return validate_choice("architecture", value, ARCHITECTURES)


def validate_metrics_backend(value: Any) -> str:
    return validate_choice("metrics_backend", value, METRICS_BACKENDS)


def _int_in_range(field: str, value: Any, low: int, high: int, unit: str) -> int:
    allowed = f"a whole number of {unit} from {low} to {high}"
    if isinstance(value, bool):
        raise InvalidAnswer(field, value, allowed)
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and POSITIVE_INT_RE.fullmatch(value):
        number = int(value)
    else:
        raise InvalidAnswer(field, value, allowed + " (digits only, no leading zero)")
    if not low <= number <= high:
        raise InvalidAnswer(field, value, allowed)
    return number


def validate_memory_size(value: Any) -> int:
    return _int_in_range("memory_size", value, MEMORY_MIN_MB, MEMORY_MAX_MB, "MB")


def validate_timeout(value: Any) -> int:
    return _int_in_range("timeout", value, TIMEOUT_MIN_S, TIMEOUT_MAX_S, "seconds")


def validate_region(value: Any) -> str:
    return _require_match("region", value, REGION_RE, "a region code such as ap-northeast-2 or us-gov-west-1")


def validate_schedule(value: Any) -> str:
    """Empty, ``rate(N unit)`` (singular unit only for 1) or ``cron(...)`` with six fields."""
    allowed = (
        "empty, rate(1 minute|hour|day), rate(N minutes|hours|days) for N > 1, or cron(six fields) "
        "with '?' in exactly one of day-of-month and day-of-week"
    )
    value = _require_str("schedule_expression", value, allowed)
    if value == "":
        return value
    rate = RATE_RE.fullmatch(value)
    if rate:
        singular = not rate.group(2).endswith("s")
        if (int(rate.group(1)) == 1) != singular:
            raise InvalidAnswer("schedule_expression", value, allowed)
        return value
    cron = CRON_RE.fullmatch(value)
    if cron:
        fields = cron.group(1).split(" ")
        if all(CRON_FIELD_RE.fullmatch(field) for field in fields) and (fields[2] == "?") != (
            fields[4] == "?"
        ):
            return value
    raise InvalidAnswer("schedule_expression", value, allowed)


def known_services() -> frozenset[str] | None:
    """botocore's service names, or None when botocore is not importable here."""
    try:
        import botocore.session
    except ImportError:
        return None
    return frozenset(botocore.session.get_session().get_available_services())


def parse_services(field: str, value: Any, known: frozenset[str] | None) -> list[str]:
    allowed = "comma-separated botocore service names (e.g. s3,ssm,ec2), no duplicates, or empty"
    value = _require_str(field, value, allowed)
    if value == "":
        return []
    services = value.split(",")
    for service in services:
        if not SERVICE_RE.fullmatch(service):
            raise InvalidAnswer(field, value, allowed)
        if known is not None and service not in known:
            raise InvalidAnswer(field, value, f"{service!r} is not a botocore service name; {allowed}")
    duplicates = sorted({service for service in services if services.count(service) > 1})
    if duplicates:
        raise InvalidAnswer(field, value, f"{', '.join(duplicates)} listed twice; {allowed}")
    return services


def validate_services(value: Any, known: frozenset[str] | None) -> list[str]:
    return parse_services("aws_services", value, known)


def validate_prewarm(value: Any, used: Iterable[str], known: frozenset[str] | None) -> list[str]:
    prewarm = parse_services("prewarm_services", value, known)
    used = list(used)
    extra = [service for service in prewarm if service not in used]
    if extra:
        raise InvalidAnswer(
            "prewarm_services",
            value,
            f"a subset of aws_services ({','.join(used) or 'empty'}); not used: {','.join(extra)}",
        )
    return prewarm


def validate_flag(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidAnswer(field, value, "yes or no")
    return value


def validate_metrics_namespace(value: Any) -> str:
    allowed = (
        f"1-{NAMESPACE_MAX} characters from letters, digits and . _ / # : -, not starting with ':' or 'AWS/'"
    )
    value = _require_str("metrics_namespace", value, allowed)
    if (
        not 1 <= len(value) <= NAMESPACE_MAX
        or not NAMESPACE_RE.fullmatch(value)
        or value.startswith(":")
        or value.startswith("AWS/")
    ):
        raise InvalidAnswer("metrics_namespace", value, allowed)
    return value


def validate_layer_name(value: Any) -> str:
    return _require_match(
        "layer_name", value, LAYER_NAME_RE, "1-140 characters: letters, digits, '-' and '_'"
    )


def validate_answers(answers: Mapping[str, Any], known: frozenset[str] | None) -> dict[str, Any]:
    """Check every answer, in prompt order; returns the normalised values."""
    result: dict[str, Any] = {}
    result["function_name"] = validate_function_name(answers["function_name"])
    result["module_name"] = validate_module_name(answers["module_name"], result["function_name"])
    result["description"] = validate_description(answers["description"])
    result["runtime"] = validate_runtime(answers["runtime"])
    result["architecture"] = validate_architecture(answers["architecture"])
    result["memory_size"] = validate_memory_size(answers["memory_size"])
    result["timeout"] = validate_timeout(answers["timeout"])
    result["region"] = validate_region(answers["region"])
    result["aws_services"] = validate_services(answers["aws_services"], known)
    result["prewarm_services"] = validate_prewarm(answers["prewarm_services"], result["aws_services"], known)
    result["use_postgres"] = validate_flag("use_postgres", answers["use_postgres"])
    result["use_upbit"] = validate_flag("use_upbit", answers["use_upbit"])
    result["metrics_namespace"] = validate_metrics_namespace(answers["metrics_namespace"])
    result["metrics_backend"] = validate_metrics_backend(answers["metrics_backend"])
    result["layer_name"] = validate_layer_name(answers["layer_name"])
    result["schedule_expression"] = validate_schedule(answers["schedule_expression"])
    return result


def main() -> int:
    # The rendered answers; services are the normalised forms (spaces removed, lower case).
    # Single quotes are essential: tojson output starts and ends with '"' and escapes "'".
    # fmt: off
    answers = {
        "function_name": json.loads(r'{{ cookiecutter.function_name | tojson }}'),
        "module_name": json.loads(r'{{ cookiecutter.__module_name | tojson }}'),
        "description": json.loads(r'{{ cookiecutter.description | tojson }}'),
        "runtime": json.loads(r'{{ cookiecutter.runtime | tojson }}'),
        "architecture": json.loads(r'{{ cookiecutter.architecture | tojson }}'),
        "memory_size": json.loads(r'{{ cookiecutter.memory_size | tojson }}'),
        "timeout": json.loads(r'{{ cookiecutter.timeout | tojson }}'),
        "region": json.loads(r'{{ cookiecutter.region | tojson }}'),
        "aws_services": json.loads(r'{{ cookiecutter.__services | tojson }}'),
        "prewarm_services": json.loads(r'{{ cookiecutter.__prewarm | tojson }}'),
        "use_postgres": json.loads(r'{{ cookiecutter.use_postgres | tojson }}'),
        "use_upbit": json.loads(r'{{ cookiecutter.use_upbit | tojson }}'),
        "metrics_namespace": json.loads(r'{{ cookiecutter.metrics_namespace | tojson }}'),
        "metrics_backend": json.loads(r'{{ cookiecutter.metrics_backend | tojson }}'),
        "layer_name": json.loads(r'{{ cookiecutter.layer_name | tojson }}'),
        "schedule_expression": json.loads(r'{{ cookiecutter.schedule_expression | tojson }}'),
    }
    # fmt: on
    known = known_services()
    if known is None:
        print(
            "WARNING: botocore is not importable here; service names are checked for shape only",
            file=sys.stderr,
        )
    try:
        validate_answers(answers, known)
    except InvalidAnswer as error:
        print(error.line(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
