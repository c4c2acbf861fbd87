"""Checks that read template.yaml (with the code where needed): layer, timeouts, IAM, cfn-lint."""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import tempfile
from pathlib import Path
from typing import Any

from leanlambda.limits import TIMEOUT_MAX_S
from leanlambda.review.model import FAIL, PASS, WARN, CheckResult, ReviewContext, listing
from leanlambda.review.source import SourceFile, call_name

WORST_CASE_NAME = "WORST_CASE_SECONDS"
WAIT_HELPERS_MODULE, WAIT_HELPERS_CLASS = "pipeline", "Deadline"
# Top-level names of packages that belong in the layer (or the runtime), never in the function zip.
THIRD_PARTY_TOP_LEVEL = frozenset(
    {
        "boto3",
        "botocore",
        "s3transfer",
        "jmespath",
        "dateutil",
        "six",
        "urllib3",
        "requests",
        "certifi",
        "idna",
        "charset_normalizer",
        "chardet",
        "psycopg2",
        "psycopg",
        "pyupbit",
        "pandas",
        "numpy",
        "pytz",
        "tzdata",
        "websockets",
        "jwt",
        "yaml",
        "pydantic",
        "pydantic_core",
        "attr",
        "attrs",
        "typing_extensions",
        "aws_lambda_powertools",
        "sqlalchemy",
        "pymysql",
    }
)
METADATA_SUFFIXES = (".dist-info", ".egg-info")
POLICY_RESOURCE_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role")
# Actions that only accept Resource "*": a wildcard resource is all one can write for them.
RESOURCE_STAR_ONLY_ACTIONS = frozenset(
    {
        "cloudwatch:putmetricdata",
        "cloudwatch:getmetricdata",
        "cloudwatch:listmetrics",
        "xray:puttracesegments",
        "xray:puttelemetryrecords",
        "sts:getcalleridentity",
        "ssm:describeinstanceinformation",
        "tag:getresources",
        "logs:describeloggroups",
        "ec2:createnetworkinterface",
        "ec2:deletenetworkinterface",
        "ec2:assignprivateipaddresses",
        "ec2:unassignprivateipaddresses",
    }
)
RESOURCE_STAR_ONLY_PREFIXES = ("describe", "list")  # most Describe*/List* calls are account-wide
CFN_LINT_SERVERLESS_RULES = "cfn_lint_serverless.rules"
CFN_LINT_CACHE_SIZE = 32


def _vendored(src: Path, own_package: str) -> list[str]:
    findings = []
    for path in sorted(src.rglob("*")):
        if path.is_dir() and path.name.endswith(METADATA_SUFFIXES):
            findings.append(f"{path.relative_to(src).as_posix()} (installed package metadata)")
    for entry in sorted(src.iterdir()):
        name = entry.name.removesuffix(".py")
        if name != own_package and name in THIRD_PARTY_TOP_LEVEL:
            findings.append(f"src/{entry.name} (third-party package)")
    return findings


def layer(ctx: ReviewContext) -> CheckResult:
    function = ctx.function
    layers = function.layers
    vendored = _vendored(function.src, function.package)
    problems = ([] if layers else ["the function has no Layers"]) + [f"vendors {v}" for v in vendored]
    value = f"{len(layers)} layer(s), {len(vendored)} vendored"
    budget = ">= 1 layer, 0 vendored"
    if problems:
        return CheckResult(
            "layer", FAIL, value, budget, listing(problems) + " (dependencies belong in the shared layer)"
        )
    return CheckResult("layer", PASS, value, budget, "dependencies come from the layer; the zip is code only")


def _number(node: ast.AST | None) -> float | None:
    """A numeric constant or simple arithmetic of constants (120 + 300 + 60)."""
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        left, right = _number(node.left), _number(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Add):
            return left + right
        return left - right if isinstance(node.op, ast.Sub) else left * right
    return None


def declared_worst_case(sources: list[SourceFile]) -> tuple[float, str] | None:
    for source in sources:
        for node in source.tree.body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else ([node.target] if isinstance(node, ast.AnnAssign) else [])
            )
            if any(isinstance(t, ast.Name) and t.id == WORST_CASE_NAME for t in targets):
                value = _number(node.value)
                if value is not None:
                    return value, source.where(node)
    return None


def _in_wait_helpers(source: SourceFile, node: ast.AST) -> bool:
    cls = source.enclosing_class(node)
    return source.basename == WAIT_HELPERS_MODULE and cls is not None and cls.name == WAIT_HELPERS_CLASS


def _waiter_names(source: SourceFile) -> set[str]:
    names = set()
    for node in ast.walk(source.tree):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call)
            and call_name(node.value) == "get_waiter"
        ):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _unbounded_waits(source: SourceFile) -> list[str]:
    findings = []
    waiters = _waiter_names(source)
    for node in ast.walk(source.tree):
        if _in_wait_helpers(source, node):
            continue
        if isinstance(node, ast.While) and isinstance(node.test, ast.Constant) and node.test.value:
            findings.append(f"{source.where(node)} `while True` loop")
        elif isinstance(node, ast.Call):
            name = source.qualname(node.func)
            if name in ("time.sleep", "asyncio.sleep"):
                findings.append(f"{source.where(node)} {name}() (use Deadline.sleep)")
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "wait":
                receiver = node.func.value
                if (isinstance(receiver, ast.Call) and call_name(receiver) == "get_waiter") or (
                    isinstance(receiver, ast.Name) and receiver.id in waiters
                ):
                    findings.append(f"{source.where(node)} boto3 waiter .wait() (use Deadline.poll)")
    return findings


def timeouts(ctx: ReviewContext) -> CheckResult:
    function = ctx.function
    problems = []
    timeout = function.setting("Timeout")
    if isinstance(timeout, str) and timeout.strip().isdigit():
        timeout = int(timeout)
    if timeout is None:
        problems.append("Timeout is not set (CloudFormation's default is 3 s)")
        seconds = None
    elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        problems.append(f"Timeout is not a number: {timeout!r}")
        seconds = None
    else:
        seconds = float(timeout)
        if seconds > TIMEOUT_MAX_S:
            problems.append(f"Timeout {seconds:g} s is over Lambda's {TIMEOUT_MAX_S} s")
    worst = declared_worst_case(ctx.sources.by_basename("steps"))
    if worst and seconds is not None and seconds < worst[0]:
        problems.append(
            f"Timeout {seconds:g} s does not cover {WORST_CASE_NAME} = {worst[0]:g} s ({worst[1]})"
        )
    waits = [finding for source in ctx.sources.files for finding in _unbounded_waits(source)]
    problems += waits
    value = (
        (f"Timeout {seconds:g} s" if seconds is not None else "Timeout unset")
        + (f", worst case {worst[0]:g} s" if worst else ", no declared worst case")
        + f", {len(waits)} unbounded wait(s)"
    )
    budget = f"<= {TIMEOUT_MAX_S} s, >= worst case, 0 unbounded waits"
    if problems:
        return CheckResult("timeouts", FAIL, value, budget, listing(problems))
    return CheckResult("timeouts", PASS, value, budget, "every wait is bounded by the Lambda deadline")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def _statements(template: dict[str, Any], function_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(where, statement) for the function's inline policies and the template's IAM resources."""
    found: list[tuple[str, dict[str, Any]]] = []
    resources = template.get("Resources") if isinstance(template.get("Resources"), dict) else {}
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict):
            continue
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        documents: list[Any] = []
        if kind == "AWS::Serverless::Function":
            for policy in _as_list(props.get("Policies")):
                if isinstance(policy, dict) and "Statement" in policy:  # not a SAM policy template
                    documents.append(policy)
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props.get("PolicyDocument"))
        elif kind == "AWS::IAM::Role":
            documents += [
                p.get("PolicyDocument") for p in _as_list(props.get("Policies")) if isinstance(p, dict)
            ]
        for document in documents:
            if isinstance(document, dict):
                for statement in _as_list(document.get("Statement")):
                    if isinstance(statement, dict) and statement.get("Effect", "Allow") == "Allow":
                        found.append((str(logical_id), statement))
    return found


def _needs_star_resource(action: str) -> bool:
    lowered = action.lower()
    verb = lowered.split(":", 1)[-1]
    return lowered in RESOURCE_STAR_ONLY_ACTIONS or verb.startswith(RESOURCE_STAR_ONLY_PREFIXES)


def iam_least_privilege(ctx: ReviewContext) -> CheckResult:
    failures, warnings = [], []
    for where, statement in _statements(ctx.function.template, ctx.function.logical_id):
        actions = [a for a in _as_list(statement.get("Action")) if isinstance(a, str)]
        if "NotAction" in statement:
            failures.append(f"{where}: NotAction grants everything else")
        for action in actions:
            if action == "*" or action.endswith(":*"):
                failures.append(f"{where}: Action {action!r}")
            elif "*" in action:
                warnings.append(f"{where}: wildcard action {action!r}")
        resources = _as_list(statement.get("Resource"))
        if "*" in resources and actions and not all(_needs_star_resource(a) for a in actions if "*" not in a):
            warnings.append(f"{where}: Resource '*' for {', '.join(actions)}")
    value = f"{len(failures)} wildcard action(s), {len(warnings)} broad grant(s)"
    budget = "0 wildcard actions, resources scoped"
    if failures:
        return CheckResult("iam-least-privilege", FAIL, value, budget, listing(failures + warnings))
    if warnings:
        return CheckResult("iam-least-privilege", WARN, value, budget, listing(warnings))
    return CheckResult(
        "iam-least-privilege",
        PASS,
        value,
        budget,
        "explicit actions (or SAM policy templates) on scoped resources",
    )


def run_cfn_lint(template: Path, region: str) -> list[tuple[str, int, str]]:
    """cfn-lint with the serverless rules: (rule id, line, message) per finding.

    Memoised on the template's bytes: linting (with the SAM transform) takes seconds, and a review of
    many copies of one function (CI matrices, tests) would otherwise pay it for identical input.
    """
    return list(_cfn_lint_cached(template.read_bytes(), region))


@functools.lru_cache(maxsize=CFN_LINT_CACHE_SIZE)
def _cfn_lint_cached(content: bytes, region: str) -> tuple[tuple[str, int, str], ...]:
    from cfnlint.api import Runner
    from cfnlint.config import ConfigMixIn

    with tempfile.TemporaryDirectory(prefix="leanlambda-lint-") as tmp:
        template = Path(tmp) / "template.yaml"
        template.write_bytes(content)
        config = ConfigMixIn(
            ["--template", str(template), "--append-rules", CFN_LINT_SERVERLESS_RULES, "--regions", region]
        )
        # cfn-lint's SAM translator may print warnings; they are not findings.
        with contextlib.redirect_stdout(io.StringIO()):
            matches = list(Runner(config).run())
    return tuple((match.rule.id, match.linenumber, match.message) for match in matches)


def iac_rules(ctx: ReviewContext) -> CheckResult:
    function = ctx.function
    findings = run_cfn_lint(function.template_path, function.region)
    serious = [f for f in findings if not f[0].startswith("I")]
    listed = [f"{rule} line {line}: {message}" for rule, line, message in findings]
    value, budget = f"{len(findings)} finding(s)", "0"
    if serious:
        return CheckResult("iac-rules", FAIL, value, budget, listing(listed))
    if findings:
        return CheckResult("iac-rules", WARN, value, budget, listing(listed))
    return CheckResult("iac-rules", PASS, value, budget, "cfn-lint and cfn-lint-serverless report nothing")
