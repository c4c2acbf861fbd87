"""Checks for leaks and injection: hard-coded or logged secrets, SQL built from strings."""

from __future__ import annotations

import ast
import re
from typing import Any

from leanlambda.cfn_yaml import is_intrinsic
from leanlambda.review.model import CheckResult, ReviewContext, count_result
from leanlambda.review.source import SourceFile, call_name

AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b")
SECRET_NAME = re.compile(
    r"pass(?:word|wd)?|pwd|secret|token|api_?key|access_?key|private_?key|credential", re.IGNORECASE
)
LOGGED_SECRET_NAME = re.compile(r"pass(?:word|wd)|secret", re.IGNORECASE)
# A name that ends like these holds where a secret is, not the secret: DB_SECRET_ARN, TOKEN_ENV...
NOT_A_SECRET_SUFFIX = re.compile(
    r"(?:_|\b|(?<=[a-z]))(?:arn|env|var|name|id|ids|field|key_name|header|param|path|prefix|url|uri|type|"
    r"length|len|ttl|count|file|location|ref)s?$",
    re.IGNORECASE,
)
ENV_VAR_VALUE = re.compile(r"^[A-Z][A-Z0-9_]*$")
REFERENCE_PREFIXES = ("arn:", "{{resolve:", "${", "ssm:", "secretsmanager:")
# Secrets Manager makes the secret from these: a shape and a key name, not a secret.
GENERATED_SECRET_KEYS = frozenset({"GenerateSecretString"})
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})
SQL_METHODS = frozenset({"execute", "executemany", "mogrify", "read_sql", "read_sql_query"})
SQL_KEYWORDS = ("query", "sql", "operation")


def _secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not NOT_A_SECRET_SUFFIX.search(name)


def _secret_literal(value: Any) -> bool:
    return (
        isinstance(value, str)
        and value.strip() != ""
        and not ENV_VAR_VALUE.match(value)
        and not value.startswith(REFERENCE_PREFIXES)
    )


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Attribute):
        return [target.attr]
    if isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
        return [str(target.slice.value)]
    return []


def _code_secrets(source: SourceFile) -> list[str]:
    findings = []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and AWS_KEY_ID.search(node.value):
            findings.append(f"{source.where(node)} AWS access key id in a string")
        pairs: list[tuple[str, ast.expr | None]] = []
        if isinstance(node, ast.Assign):
            pairs = [(name, node.value) for target in node.targets for name in _target_names(target)]
        elif isinstance(node, ast.AnnAssign):
            pairs = [(name, node.value) for name in _target_names(node.target)]
        elif isinstance(node, ast.keyword) and node.arg:
            pairs = [(node.arg, node.value)]
        elif isinstance(node, ast.Dict):
            pairs = [
                (key.value, value)
                for key, value in zip(node.keys, node.values, strict=True)
                if isinstance(key, ast.Constant) and isinstance(key.value, str)
            ]
        for name, value in pairs:
            if _secret_name(name) and isinstance(value, ast.Constant) and _secret_literal(value.value):
                findings.append(f"{source.where(value)} hard-coded {name}")
    return findings


def _names_secret(expr: ast.AST) -> str | None:
    for node in ast.walk(expr):
        name = None
        if isinstance(node, ast.Name):
            name = node.id
        elif isinstance(node, ast.Attribute):
            name = node.attr
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            name = str(node.slice.value)
        elif isinstance(node, ast.keyword) and node.arg:
            name = node.arg
        if name and LOGGED_SECRET_NAME.search(name) and not NOT_A_SECRET_SUFFIX.search(name):
            return name
    return None


def _whole_environ(source: SourceFile, expr: ast.AST) -> bool:
    """The whole of os.environ (not one variable): it holds the role's temporary credentials."""
    for node in ast.walk(expr):
        if source.qualname(node) != "os.environ":
            continue
        parent = source.parents.get(node)
        if isinstance(parent, ast.Subscript) and parent.value is node:
            continue
        if isinstance(parent, ast.Attribute) and parent.attr in ("get", "__getitem__", "setdefault"):
            continue
        return True
    return False


def _environ_copies(source: SourceFile, call: ast.Call) -> set[str]:
    scope = source.enclosing_function(call) or source.tree
    return {
        target.id
        for node in ast.walk(scope)
        if isinstance(node, ast.Assign) and _whole_environ(source, node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _logs(source: SourceFile, call: ast.Call) -> bool:
    if source.qualname(call.func) == "print":
        return True
    if not (isinstance(call.func, ast.Attribute) and call.func.attr in LOG_METHODS):
        return False
    receiver = source.qualname(call.func.value) or ""
    return "log" in receiver.lower()


def _logged_secrets(source: SourceFile) -> list[str]:
    findings = []
    for call in source.calls():
        if not _logs(source, call):
            continue
        arguments = [*call.args, *call.keywords]
        copies = _environ_copies(source, call)
        if any(
            _whole_environ(source, a) or any(isinstance(n, ast.Name) and n.id in copies for n in ast.walk(a))
            for a in arguments
        ):
            findings.append(f"{source.where(call)} logs the whole environment (the role's credentials)")
            continue
        if source.qualname(call.func) == "print":
            continue
        for argument in arguments:
            name = _names_secret(argument)
            if name:
                findings.append(f"{source.where(call)} logs {name}")
                break
    return findings


def _template_secrets(node: Any, path: str, findings: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(value, str) and _secret_name(str(key)) and _secret_literal(value):
                findings.append(f"template.yaml {where} is a literal (use a dynamic reference)")
            elif not is_intrinsic(value) and key not in GENERATED_SECRET_KEYS:
                _template_secrets(value, where, findings)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _template_secrets(value, f"{path}[{index}]", findings)
    elif isinstance(node, str) and AWS_KEY_ID.search(node):
        findings.append(f"template.yaml {path} holds an AWS access key id")


def _parameter_defaults(template: dict[str, Any], findings: list[str]) -> None:
    parameters = template.get("Parameters")
    if not isinstance(parameters, dict):
        return
    for name, spec in parameters.items():
        if isinstance(spec, dict) and _secret_name(str(name)) and _secret_literal(spec.get("Default")):
            findings.append(f"template.yaml Parameters.{name} has a literal Default")


def secrets(ctx: ReviewContext) -> CheckResult:
    findings: list[str] = []
    for source in ctx.sources.files:
        findings += _code_secrets(source)
        findings += _logged_secrets(source)
    template = ctx.function.template
    _template_secrets({key: value for key, value in template.items() if key != "Parameters"}, "", findings)
    _parameter_defaults(template, findings)
    return count_result(
        "secrets",
        findings,
        "no credential in code or template; no secret passed to a log call",
        "read secrets from Secrets Manager/SSM at run time and never log them",
    )


def _has_text(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.JoinedStr) or (isinstance(n, ast.Constant) and isinstance(n.value, str))
        for n in ast.walk(node)
    )


def _is_sql_composition(node: ast.AST) -> bool:
    """psycopg2.sql.SQL("...").format(...) composes identifiers safely."""
    return isinstance(node, ast.Call) and call_name(node) in ("SQL", "Composed", "Identifier")


def _built_string(node: ast.AST | None) -> str | None:
    """How a query string was built, when it was built unsafely."""
    if isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values):
        return "an f-string"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _has_text(node.left):
        return "%-formatting"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and _has_text(node):
        return "concatenation"
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and not _is_sql_composition(node.func.value)
    ):
        return ".format()"
    return None


def _assigned_values(source: SourceFile, call: ast.Call, name: str) -> list[ast.expr]:
    scope = source.enclosing_function(call) or source.tree
    values = []
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            values.append(node.value)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            values.append(ast.BinOp(left=ast.Constant(""), op=ast.Add(), right=node.value))
    return values


def _query_argument(call: ast.Call) -> ast.expr | None:
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg in SQL_KEYWORDS), None)


def sql_params(ctx: ReviewContext) -> CheckResult:
    findings = []
    for source in ctx.sources.files:
        for call in source.calls():
            if not (isinstance(call.func, ast.Attribute) and call.func.attr in SQL_METHODS):
                continue
            query = _query_argument(call)
            candidates: list[ast.expr | None] = [query]
            if isinstance(query, ast.Name):
                candidates = [*_assigned_values(source, call, query.id)]
            for candidate in candidates:
                how = _built_string(candidate)
                if how:
                    findings.append(f"{source.where(call)} {call.func.attr}() with SQL built by {how}")
                    break
    return count_result(
        "sql-params",
        findings,
        "queries pass values as parameters (or compose with psycopg2.sql)",
        "pass values as execute(sql, params)",
    )
