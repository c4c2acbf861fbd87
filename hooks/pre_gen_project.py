"""Validate every answer before cookiecutter writes anything.

Cookiecutter renders this file with Jinja, then runs it. The answers are read as
JSON inside main() (``json.loads(r'...| tojson')``: tojson escapes quotes, so no
answer can break or inject code), and every check is a small pure function, so the
unrendered file imports cleanly and the checks are unit-tested directly.

On a bad answer: one line on stderr, ``ERROR: <field>: <value> is not valid: <allowed>``,
and exit status 1; cookiecutter then removes the folder it created.

Regions are checked against botocore's partition data (its endpoints.json) when botocore is
importable. This hook runs in whatever Python runs cookiecutter, which may lack botocore; there the
region is checked for the shape of a region of a known partition only (and a warning says so), which
still refuses ``zz-nowhere-9`` but not a well-formed code that does not exist. ``leanlambda new`` runs
these checks in the toolkit's own Python, where botocore is a dependency.
"""

from __future__ import annotations

import functools
import json
import keyword
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Mapping
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
REGION_RE = re.compile(
    r"(us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov|us-iso|us-isob|eu-isoe|us-isof|eusc-[a-z]{2})-[a-z]+-\d{1,2}"
)
"""The shape of a region of a known partition: used only where botocore's list is not importable."""
STACK_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
"""CloudFormation's rule for a stack name: a letter, then letters, digits and '-', 128 at most."""
SERVICE_RE = re.compile(r"[a-z0-9-]+")
NAMESPACE_RE = re.compile(r"[A-Za-z0-9._/#:-]+")
RATE_RE = re.compile(r"rate\(([1-9][0-9]{0,6}) (minute|minutes|hour|hours|day|days)\)")
RATE_MAX = {"minute": 525_600, "hour": 8_760, "day": 365}
"""No schedule slower than once a year: a bigger number is a typo, and EventBridge refuses huge ones."""
CRON_RE = re.compile(r"cron\(([^ ()]+(?: [^ ()]+){5})\)")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
CRON_FIELDS = (
    # (name, lowest, highest, names standing for lowest.., special forms allowed)
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"),
    ("month", 1, 12, MONTHS, ""),
    ("day-of-week", 1, 7, WEEKDAYS, "?L#"),
    ("year", 1970, 2199, (), ""),
)
"""EventBridge's six cron fields, their ranges and the special characters each accepts."""
CRON_STEP_RE = re.compile(r"(.+)/([0-9]{1,4})")
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Marks, embeddings, overrides and isolates: text that reads differently from what it holds."""
LINE_BREAKING_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
"""Control characters (C0, DEL, C1 with U+0085) and the line and paragraph separators."""
POSITIVE_INT_RE = re.compile(r"[1-9][0-9]*")

# Top-level modules of the runtime, the layer and the test tools: a function module
# with one of these names would shadow it (or be shadowed) on sys.path. A copy, not an import: this
# hook runs without the toolkit. tests/test_template_contract.py checks it covers the toolkit's list
# of layer packages (leanlambda/known_packages.py).
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
        "chardet",
        "pydantic",
        "pydantic_core",
        "attr",
        "attrs",
        "pymysql",
        "scipy",
        "sqlalchemy",
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
        "no double quote, backslash, control, line-separator or bidi-control character"
    )
    value = _require_str("description", value, allowed)
    if (
        not value
        or len(value) > DESCRIPTION_MAX
        or value != value.strip()
        or any(unicodedata.category(ch) in LINE_BREAKING_CATEGORIES or ch in BIDI_CONTROLS for ch in value)
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


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str] | None:
    """Every region of every partition in botocore's endpoints.json, or None without botocore."""
    try:
        from botocore.loaders import create_loader
    except ImportError:
        return None
    partitions = create_loader().load_data("endpoints").get("partitions", [])
    return frozenset(region for partition in partitions for region in partition.get("regions", {}))


def validate_region(value: Any) -> str:
    allowed = "a region code such as ap-northeast-2 or us-gov-west-1"
    value = _require_match("region", value, REGION_RE, allowed)
    known = known_regions()
    if known is not None and value not in known:
        raise InvalidAnswer("region", value, f"not a region in botocore's partition data; {allowed}")
    return value


def validate_stack_name(value: Any) -> str:
    return _require_match(
        "function_name", value, STACK_NAME_RE, "its stack name must start with a letter (CloudFormation)"
    )


def _cron_number(token: str, low: int, high: int, names: tuple[str, ...]) -> int | None:
    if token.upper() in names:
        return low + names.index(token.upper())
    if token.isdigit() and len(token) <= 4 and low <= int(token) <= high:
        return int(token)
    return None


def _cron_item_ok(item: str, field: tuple[str, int, int, tuple[str, ...], str]) -> bool:
    """One comma-separated item of a cron field: *, a value, a range, each with an optional /step,
    or the field's special forms (L, nW, LW in day-of-month; L, nL, n#k in day-of-week)."""
    name, low, high, names, special = field
    if "L" in special and item == "L":
        return True
    if "W" in special and (item == "LW" or (item.endswith("W") and _cron_number(item[:-1], low, high, ()))):
        return True
    if "#" in special and "#" in item:
        day, _, nth = item.partition("#")
        return _cron_number(day, low, high, names) is not None and nth in ("1", "2", "3", "4", "5")
    if name == "day-of-week" and item.endswith("L") and len(item) > 1:
        return _cron_number(item[:-1], low, high, names) is not None
    step = CRON_STEP_RE.fullmatch(item)
    if step:
        item = step.group(1)
        if not 1 <= int(step.group(2)) <= high:
            return False
    if item == "*":
        return True
    first, dash, last = item.partition("-")
    start = _cron_number(first, low, high, names)
    if not dash:
        return start is not None
    end = _cron_number(last, low, high, names)
    return start is not None and end is not None


def _cron_ok(fields: list[str]) -> bool:
    if (fields[2] == "?") == (fields[4] == "?"):
        return False  # exactly one of day-of-month and day-of-week is '?'
    for text, field in zip(fields, CRON_FIELDS, strict=True):
        if text == "?" and "?" in field[4]:
            continue
        if not text or not all(item and _cron_item_ok(item, field) for item in text.split(",")):
            return False
    return True


def validate_schedule(value: Any) -> str:
    """Empty, ``rate(N unit)`` (singular unit only for 1, at most a year) or ``cron(...)`` with
    EventBridge's six fields, each within its range."""
    allowed = (
        "empty, rate(1 minute|hour|day), rate(N minutes|hours|days) for 1 < N <= a year, or cron(six "
        "fields: minutes 0-59, hours 0-23, day-of-month 1-31, month 1-12|JAN-DEC, day-of-week "
        "1-7|SUN-SAT, year 1970-2199) with '?' in exactly one of day-of-month and day-of-week"
    )
    value = _require_str("schedule_expression", value, allowed)
    if value == "":
        return value
    rate = RATE_RE.fullmatch(value)
    if rate:
        number, unit = int(rate.group(1)), rate.group(2)
        if (number == 1) != (not unit.endswith("s")) or number > RATE_MAX[unit.removesuffix("s")]:
            raise InvalidAnswer("schedule_expression", value, allowed)
        return value
    cron = CRON_RE.fullmatch(value)
    if cron and _cron_ok(cron.group(1).split(" ")):
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


FIELD_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "function_name": validate_function_name,
    "description": validate_description,
    "runtime": validate_runtime,
    "architecture": validate_architecture,
    "memory_size": validate_memory_size,
    "timeout": validate_timeout,
    "region": validate_region,
    "use_postgres": functools.partial(validate_flag, "use_postgres"),
    "use_upbit": functools.partial(validate_flag, "use_upbit"),
    "metrics_namespace": validate_metrics_namespace,
    "metrics_backend": validate_metrics_backend,
    "layer_name": validate_layer_name,
    "schedule_expression": validate_schedule,
}
"""Each prompt whose answer is judged alone, by cookiecutter key, in prompt order: the one list both
validate_answers and ``leanlambda new`` (on --set answers, before anything is written) run."""

ANSWER_ORDER = (
    "function_name",
    "module_name",
    "stack_name",
    "description",
    "runtime",
    "architecture",
    "memory_size",
    "timeout",
    "region",
    "aws_services",
    "prewarm_services",
    "use_postgres",
    "use_upbit",
    "metrics_namespace",
    "metrics_backend",
    "layer_name",
    "schedule_expression",
)
"""cookiecutter.json's prompts, with the names derived from function_name right after it: the first
bad answer in this order is the one reported."""
OPTIONAL_ANSWERS = frozenset({"stack_name"})
"""Answers a caller may leave out (a replay recorded before the stack name was derived)."""


def validate_answers(answers: Mapping[str, Any], known: frozenset[str] | None) -> dict[str, Any]:
    """Check every answer, in ANSWER_ORDER; returns the normalised values.

    FIELD_VALIDATORS judge an answer alone; the rest need an answer checked before them or the
    known service names.
    """
    result: dict[str, Any] = {}
    related: dict[str, Callable[[Any], Any]] = {
        "module_name": lambda value: validate_module_name(value, result["function_name"]),
        "stack_name": validate_stack_name,
        "aws_services": lambda value: validate_services(value, known),
        "prewarm_services": lambda value: validate_prewarm(value, result["aws_services"], known),
    }
    for field in ANSWER_ORDER:
        if field in OPTIONAL_ANSWERS and field not in answers:
            continue
        validator = FIELD_VALIDATORS.get(field) or related[field]
        result[field] = validator(answers[field])
    return result


def main() -> int:
    # The rendered answers; services are the normalised forms (spaces removed, lower case).
    # Single quotes are essential: tojson output starts and ends with '"' and escapes "'".
    # fmt: off
    answers = {
        "function_name": json.loads(r'{{ cookiecutter.function_name | tojson }}'),
        "module_name": json.loads(r'{{ cookiecutter.__module_name | tojson }}'),
        "stack_name": json.loads(r'{{ cookiecutter.__stack_name | tojson }}'),
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
            "WARNING: botocore is not importable here; service names and the region are checked "
            "for shape only",
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
