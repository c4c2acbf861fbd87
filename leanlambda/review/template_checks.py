"""Checks that read template.yaml (with the code where needed): layer, timeouts, IAM, cfn-lint."""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from leanlambda.known_packages import LAYER_PACKAGES
from leanlambda.limits import TIMEOUT_MAX_S
from leanlambda.review.locate import mapping
from leanlambda.review.model import FAIL, PASS, SKIP, WARN, CheckResult, ReviewContext, listing, locations_of
from leanlambda.review.source import SourceFile, call_name
from leanlambda.template_contract import (
    STEPS_MODULE,
    WAIT_HELPERS_CLASS,
    WAIT_HELPERS_MODULE,
    WORST_CASE_NAME,
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
        if name != own_package and name in LAYER_PACKAGES:
            findings.append(f"src/{entry.name} (third-party package)")
    return findings


def layer(ctx: ReviewContext) -> CheckResult:
    function = ctx.function
    layers = function.layers
    own = function.package if (function.src / function.package).is_dir() else ""
    vendored = _vendored(function.src, own)
    value = f"{len(layers)} layer(s), {len(vendored)} vendored"
    if not ctx.leanlambda:
        budget = "0 vendored packages in the code folder"
        if vendored:
            return CheckResult(
                "layer",
                WARN,
                value,
                budget,
                f"{listing(vendored)}; fix: list them in requirements.txt (sam build installs them)",
            )
        how = "from its layers" if layers else "from requirements.txt at build time"
        return CheckResult(
            "layer", PASS, value, budget, f"the code folder holds only code; dependencies come {how}"
        )
    problems = ([] if layers else ["the function has no Layers"]) + [f"vendors {v}" for v in vendored]
    budget = ">= 1 layer, 0 vendored"
    if problems:
        return CheckResult(
            "layer",
            FAIL,
            value,
            budget,
            listing(problems)
            + "; fix: attach the core layer and build dependencies into it with leanlambda layer",
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
            targets: list[ast.expr]
            assigned: ast.expr | None
            if isinstance(node, ast.Assign):
                targets, assigned = node.targets, node.value
            elif isinstance(node, ast.AnnAssign):
                targets, assigned = [node.target], node.value
            else:
                continue
            if any(isinstance(t, ast.Name) and t.id == WORST_CASE_NAME for t in targets):
                value = _number(assigned)
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
                findings.append(f"{source.where(node)} {name}()")
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "wait":
                receiver = node.func.value
                if (isinstance(receiver, ast.Call) and call_name(receiver) == "get_waiter") or (
                    isinstance(receiver, ast.Name) and receiver.id in waiters
                ):
                    findings.append(f"{source.where(node)} boto3 waiter .wait()")
    return findings


HTTP_CALLS = frozenset(
    {f"requests.{verb}" for verb in ("get", "post", "put", "patch", "delete", "head", "options", "request")}
    | {"urllib.request.urlopen"}
)


def _http_without_timeout(source: SourceFile) -> list[str]:
    """requests.get(...) with no timeout waits for ever on a server that stops answering."""
    findings = []
    for call in source.calls():
        name = source.qualname(call.func)
        timed = any(k.arg == "timeout" or k.arg is None for k in call.keywords) or (
            name == "urllib.request.urlopen" and len(call.args) >= 3
        )
        if name in HTTP_CALLS and not timed:
            findings.append(f"{source.where(call)} {name}() without a timeout")
    return findings


def timeouts(ctx: ReviewContext) -> CheckResult:
    function = ctx.function
    problems: list[str] = []
    warnings: list[str] = []
    http = [finding for source in ctx.sources.files for finding in _http_without_timeout(source)]
    if not function.has_template:
        waits = [finding for source in ctx.sources.files for finding in _unbounded_waits(source)]
        value = f"no template, {len(waits)} unbounded wait(s), {len(http)} call(s) without timeout"
        budget = "0 calls without timeout"
        if http:
            return CheckResult("timeouts", FAIL, value, budget, listing(http), locations_of(http))
        status = WARN if waits else PASS
        detail = (
            listing(waits) if waits else "every network call has a timeout (no template: Timeout unknown)"
        )
        return CheckResult("timeouts", status, value, budget, detail, locations_of(waits))
    timeout = function.setting("Timeout")
    if isinstance(timeout, str) and timeout.strip().isdigit():
        timeout = int(timeout)
    if timeout is None:
        (problems if ctx.leanlambda else warnings).append("Timeout is not set (Lambda's default is 3 s)")
        seconds = None
    elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        problems.append(f"Timeout is not a number: {timeout!r}")
        seconds = None
    else:
        seconds = float(timeout)
        if seconds > TIMEOUT_MAX_S:
            problems.append(f"Timeout {seconds:g} s is over Lambda's {TIMEOUT_MAX_S} s")
    worst = declared_worst_case(ctx.sources.by_basename(STEPS_MODULE))
    if worst and seconds is not None and seconds < worst[0]:
        problems.append(
            f"Timeout {seconds:g} s does not cover {WORST_CASE_NAME} = {worst[0]:g} s ({worst[1]})"
        )
    waits = [finding for source in ctx.sources.files for finding in _unbounded_waits(source)]
    if ctx.leanlambda:
        problems += waits
    else:
        warnings += waits
    problems += http
    value = (
        (f"Timeout {seconds:g} s" if seconds is not None else "Timeout unset")
        + (f", worst case {worst[0]:g} s" if worst else "")
        + f", {len(waits)} unbounded wait(s), {len(http)} call(s) without timeout"
    )
    budget = f"<= {TIMEOUT_MAX_S} s, >= worst case, 0 unbounded waits"
    fix = (
        "; fix: run.deadline.sleep/poll, and a timeout on every network call"
        if ctx.leanlambda
        else "; fix: bound each wait by context.get_remaining_time_in_millis(); give each call a timeout"
    )
    if problems:
        return CheckResult(
            "timeouts",
            FAIL,
            value,
            budget,
            listing(problems + warnings) + fix,
            locations_of(problems + warnings),
        )
    if warnings:
        return CheckResult("timeouts", WARN, value, budget, listing(warnings) + fix, locations_of(warnings))
    return CheckResult("timeouts", PASS, value, budget, "every wait is bounded by the Lambda deadline")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


# AWS managed policies that grant a whole service (or everything): never least privilege.
BROAD_MANAGED_POLICIES = frozenset({"AdministratorAccess", "PowerUserAccess"})
BROAD_MANAGED_SUFFIX = "FullAccess"


def _managed_policy_name(value: Any) -> str | None:
    """`AmazonS3FullAccess` for the name, its ARN, or a `!Sub` of its ARN."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        value = value["Fn::Sub"]
    if not isinstance(value, str):
        return None
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def _policies(
    template: dict[str, Any],
) -> Iterator[tuple[str, list[dict[str, Any]], list[str], list[str]]]:
    """(where, statements, managed policy names, SAM policy templates) per IAM-bearing resource."""
    resources = mapping(template.get("Resources"))
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict):
            continue
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        if not isinstance(props, dict):
            continue
        documents: list[Any] = []
        managed: list[Any] = []
        sam_templates: list[str] = []
        if kind == "AWS::Serverless::Function":
            for policy in _as_list(props.get("Policies")):
                if isinstance(policy, dict) and "Statement" in policy:
                    documents.append(policy)
                elif (
                    isinstance(policy, dict)
                    and len(policy) == 1
                    and not next(iter(policy)).startswith("Fn::")
                ):
                    sam_templates.append(str(next(iter(policy))))
                else:
                    managed.append(policy)
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props.get("PolicyDocument"))
        elif kind == "AWS::IAM::Role":
            documents += [
                p.get("PolicyDocument") for p in _as_list(props.get("Policies")) if isinstance(p, dict)
            ]
            managed += _as_list(props.get("ManagedPolicyArns"))
        if kind not in (*POLICY_RESOURCE_TYPES, "AWS::Serverless::Function"):
            continue
        statements = [
            statement
            for document in documents
            if isinstance(document, dict)
            for statement in _as_list(document.get("Statement"))
            if isinstance(statement, dict) and statement.get("Effect", "Allow") == "Allow"
        ]
        names = [name for name in map(_managed_policy_name, managed) if name]
        yield str(logical_id), statements, names, sam_templates


def _needs_star_resource(action: str) -> bool:
    lowered = action.lower()
    verb = lowered.split(":", 1)[-1]
    return lowered in RESOURCE_STAR_ONLY_ACTIONS or verb.startswith(RESOURCE_STAR_ONLY_PREFIXES)


def _line_of(ctx: ReviewContext, text: str) -> str:
    """`template.yaml:12` for the first line holding text, for a finding's location."""
    path = ctx.function.template_path
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return path.name
    number = next((i for i, line in enumerate(lines, 1) if text in line), 0)
    rel = (
        path.relative_to(ctx.function.root).as_posix()
        if path.is_relative_to(ctx.function.root)
        else path.name
    )
    return f"{rel}:{number}" if number else rel


def iam_least_privilege(ctx: ReviewContext) -> CheckResult:
    budget = "0 wildcard actions, 0 full-access policies, resources scoped"
    if not ctx.function.has_template:
        return CheckResult(
            "iam-least-privilege", SKIP, "no template", budget, "no template.yaml: no IAM to read"
        )
    failures, warnings, understood = [], [], []
    for where, statements, managed, sam_templates in _policies(ctx.function.template):
        understood += sam_templates
        for name in managed:
            if name in BROAD_MANAGED_POLICIES or name.endswith(BROAD_MANAGED_SUFFIX):
                failures.append(
                    f"{_line_of(ctx, name)} {where}: managed policy {name} grants a whole service"
                )
        for statement in statements:
            actions = [a for a in _as_list(statement.get("Action")) if isinstance(a, str)]
            if "NotAction" in statement:
                failures.append(f"{_line_of(ctx, 'NotAction')} {where}: NotAction grants everything else")
            for action in actions:
                if action == "*" or action.endswith(":*"):
                    failures.append(f"{_line_of(ctx, action)} {where}: Action {action!r} on any resource")
                elif "*" in action:
                    warnings.append(f"{_line_of(ctx, action)} {where}: wildcard action {action!r}")
            resources = _as_list(statement.get("Resource"))
            scopable = [a for a in actions if "*" not in a and not _needs_star_resource(a)]
            if "*" in resources and scopable:
                warnings.append(
                    f"{_line_of(ctx, scopable[0])} {where}: Resource '*' for {', '.join(scopable)}"
                )
    value = f"{len(failures)} wildcard/full-access grant(s), {len(warnings)} broad grant(s)"
    if understood:
        value += f", {len(understood)} SAM policy template(s)"
    findings = failures + warnings
    fix = "; fix: name each action and scope it to ARNs built with !Sub, or use a SAM policy template"
    if failures:
        return CheckResult(
            "iam-least-privilege", FAIL, value, budget, listing(findings) + fix, locations_of(findings)
        )
    if warnings:
        return CheckResult(
            "iam-least-privilege", WARN, value, budget, listing(warnings) + fix, locations_of(warnings)
        )
    detail = "explicit actions on scoped resources"
    if understood:
        detail += f"; SAM policy templates scoped by their parameters: {', '.join(sorted(set(understood)))}"
    return CheckResult("iam-least-privilege", PASS, value, budget, detail)


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


# cfn-lint's own rules: E = the template is wrong (fails), W = likely wrong (warns), I = informational.
# The serverless rules (ES*, WS*) are opinions on operations: tracing, log retention, destinations,
# throttling defaults. They warn, whatever their letter.
SERVERLESS_RULE_PREFIXES = ("ES", "WS")


def severity(rule_id: str) -> str:
    """fail or warn for a cfn-lint rule id (documented in docs/checklist.md)."""
    if rule_id.startswith(SERVERLESS_RULE_PREFIXES):
        return WARN
    return FAIL if rule_id.startswith("E") else WARN


def iac_rules(ctx: ReviewContext) -> CheckResult:
    function = ctx.function
    if not function.has_template:
        return CheckResult("iac-rules", SKIP, "no template", "0 errors", "no template.yaml to lint")
    findings = run_cfn_lint(function.template_path, function.region)
    rel = function.template_path.relative_to(function.root).as_posix()
    errors = [f for f in findings if severity(f[0]) == FAIL]
    listed = [f"{rel}:{line} {rule} ({severity(rule)}): {message}" for rule, line, message in findings]
    value, budget = f"{len(errors)} error(s), {len(findings) - len(errors)} opinion(s)/warning(s)", "0 errors"
    status = FAIL if errors else WARN if findings else PASS
    if not findings:
        return CheckResult(
            "iac-rules", PASS, value, budget, "cfn-lint and cfn-lint-serverless report nothing"
        )
    return CheckResult("iac-rules", status, value, budget, listing(listed), locations_of(listed))
