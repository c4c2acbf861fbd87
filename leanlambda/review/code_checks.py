"""Checks on the code's structure: imports, clients, classes, metrics, errors, logs, cleanup."""

from __future__ import annotations

import ast

from leanlambda.review.model import FAIL, PASS, CheckResult, ReviewContext, count_result, listing
from leanlambda.review.source import FUNCTION_NODES, SourceFile, call_name

# Modules whose import costs tens to hundreds of ms (DESIGN section 7: boto3 142 ms, pyupbit 364 ms).
HEAVY_MODULES = frozenset(
    {
        "boto3",
        "botocore",
        "s3transfer",
        "psycopg2",
        "pyupbit",
        "pandas",
        "numpy",
        "requests",
        "aws_lambda_powertools",
        "scipy",
        "sqlalchemy",
    }
)
CLIENT_CONSTRUCTORS = frozenset(
    {
        "boto3.client",
        "boto3.resource",
        "boto3.Session",
        "boto3.session.Session",
        "botocore.session.get_session",
        "botocore.session.Session",
    }
)
FACTORY_MODULE = "clients"
METRICS_MODULE = "metrics"
# The three runtime classes of DESIGN section 3, each in its own module.
RUNTIME_CLASSES = (
    ("clients", "AWSClientFactory"),
    ("pipeline", "PipelineExecutor"),
    ("metrics", "MetricsCollector"),
)
BROAD_EXCEPTIONS = frozenset({"Exception", "BaseException"})
DB_CONNECT = frozenset(
    {"psycopg2.connect", "psycopg.connect", "pg8000.connect", "pymysql.connect", "sqlite3.connect"}
)
CURSOR_METHODS = frozenset({"cursor"})
STD_STREAM_WRITES = frozenset({"sys.stdout.write", "sys.stderr.write"})


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(node: ast.AST):
    """Imports that run when the module is imported: not in functions, not under `if TYPE_CHECKING:`."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, FUNCTION_NODES):
            continue
        branch = child.orelse if isinstance(child, ast.If) and _is_type_checking(child.test) else [child]
        for statement in branch:
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                yield statement
            elif not isinstance(statement, FUNCTION_NODES):
                yield from _module_level_imports(statement)


def lazy_imports(ctx: ReviewContext) -> CheckResult:
    findings = []
    for source in ctx.sources.files:
        for node in _module_level_imports(source.tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                names = [node.module or ""] if not node.level else []
            for name in names:
                if name.split(".")[0] in HEAVY_MODULES:
                    findings.append(f"{source.where(node)} imports {name} at module level")
    return count_result(
        "lazy-imports",
        findings,
        "no heavy module imported at module level",
        "import these inside the function that uses them",
    )


def client_reuse(ctx: ReviewContext) -> CheckResult:
    findings = []
    for source in ctx.sources.files:
        if source.basename == FACTORY_MODULE:
            continue
        for call in source.calls():
            name = source.qualname(call.func)
            if name in CLIENT_CONSTRUCTORS:
                findings.append(f"{source.where(call)} calls {name}()")
    return count_result(
        "client-reuse",
        findings,
        f"boto3 clients and sessions are created only in {FACTORY_MODULE}.py (the cached factory)",
        "get clients from AWSClientFactory instead",
    )


def _defines(source: SourceFile, class_name: str) -> bool:
    return any(isinstance(node, ast.ClassDef) and node.name == class_name for node in source.tree.body)


def _instantiated(ctx: ReviewContext, module: SourceFile, class_name: str) -> bool:
    target = f"{module.module}.{class_name}"
    for source in ctx.sources.files:
        for call in source.calls():
            name = source.qualname(call.func)
            if name == target or (source is module and name == class_name):
                return True
    return False


def modular(ctx: ReviewContext) -> CheckResult:
    problems, good = [], 0
    for basename, class_name in RUNTIME_CLASSES:
        modules = [s for s in ctx.sources.by_basename(basename) if _defines(s, class_name)]
        if not modules:
            problems.append(f"{class_name} is not defined in {basename}.py")
        elif not any(_instantiated(ctx, module, class_name) for module in modules):
            problems.append(f"{class_name} ({modules[0].rel}) is never instantiated")
        else:
            good += 1
    total = len(RUNTIME_CLASSES)
    if problems:
        return CheckResult("modular", FAIL, f"{good}/{total}", f"{total}/{total}", listing(problems))
    return CheckResult(
        "modular",
        PASS,
        f"{total}/{total}",
        f"{total}/{total}",
        "AWSClientFactory, PipelineExecutor and MetricsCollector present and used",
    )


def _single_metric_literal(call: ast.Call) -> bool:
    for keyword in call.keywords:
        if keyword.arg == "MetricData":
            return isinstance(keyword.value, ast.List) and len(keyword.value.elts) == 1
    return False


def metrics_batching(ctx: ReviewContext) -> CheckResult:
    findings = []
    for source in ctx.sources.files:
        for call in source.calls():
            if call_name(call) != "put_metric_data" or not isinstance(call.func, ast.Attribute):
                continue
            if source.basename != METRICS_MODULE:
                loop = " inside a loop" if source.in_loop(call) else ""
                findings.append(f"{source.where(call)} calls PutMetricData{loop} outside {METRICS_MODULE}.py")
            elif source.in_loop(call) and _single_metric_literal(call):
                findings.append(f"{source.where(call)} sends one metric per PutMetricData call in a loop")
    return count_result(
        "metrics-batching",
        findings,
        "metrics go through MetricsCollector (EMF or batched PutMetricData)",
        "add metrics to the collector; it flushes once per invocation",
    )


def _exception_names(node: ast.expr | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, ast.Tuple):
        return set().union(*(_exception_names(element) for element in node.elts))
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    return set()


def _swallows(handler: ast.ExceptHandler) -> bool:
    return all(
        isinstance(statement, (ast.Pass, ast.Continue))
        or (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
        for statement in handler.body
    )


def error_handling(ctx: ReviewContext) -> CheckResult:
    findings = []
    for source in ctx.sources.files:
        for node in ast.walk(source.tree):
            if not isinstance(node, ast.ExceptHandler):
                continue
            if node.type is None:
                findings.append(f"{source.where(node)} bare `except:`")
            elif _exception_names(node.type) & BROAD_EXCEPTIONS and _swallows(node):
                findings.append(f"{source.where(node)} `except Exception` that swallows the error")
    return count_result(
        "error-handling",
        findings,
        "no bare or swallowing except; step errors are recorded by PipelineExecutor",
        "catch specific exceptions, or let the executor record the failure",
    )


def structured_logging(ctx: ReviewContext) -> CheckResult:
    findings = []
    for source in ctx.sources.files:
        for call in source.calls():
            name = source.qualname(call.func)
            if name == "print":
                findings.append(f"{source.where(call)} print()")
            elif name in STD_STREAM_WRITES and source.basename != METRICS_MODULE:
                findings.append(f"{source.where(call)} {name}()")
    log_format = ctx.function.log_format
    if log_format != "JSON":
        findings.append(f"template.yaml LoggingConfig LogFormat is {log_format}, not JSON")
    return count_result(
        "structured-logging",
        findings,
        "logging only (no print); LoggingConfig LogFormat JSON",
        "use logging and LogFormat: JSON",
    )


def _closed_in_finally(function: ast.AST, name: str) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Try):
            for statement in node.finalbody:
                for inner in ast.walk(statement):
                    if (
                        isinstance(inner, ast.Call)
                        and isinstance(inner.func, ast.Attribute)
                        and inner.func.attr == "close"
                        and isinstance(inner.func.value, ast.Name)
                        and inner.func.value.id == name
                    ):
                        return True
    return False


def _class_closes(cls: ast.ClassDef | None) -> bool:
    return cls is not None and any(
        isinstance(node, ast.Call) and call_name(node) == "close" for node in ast.walk(cls)
    )


def _managed(source: SourceFile, call: ast.Call) -> bool:
    """A connection or cursor is managed when a `with` owns it, it is returned, or a finally closes it."""
    node: ast.AST = call
    parent = source.parents.get(node)
    # contextlib.closing(conn) and similar wrappers
    if isinstance(parent, ast.Call) and node in parent.args:
        node, parent = parent, source.parents.get(parent)
    if isinstance(parent, ast.withitem) and parent.context_expr is node:
        return True
    if isinstance(parent, (ast.Return, ast.Yield)):
        return True
    if isinstance(parent, (ast.Assign, ast.AnnAssign)):
        targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
        function = source.enclosing_function(call) or source.tree
        for target in targets:
            if isinstance(target, ast.Name) and _closed_in_finally(function, target.id):
                return True
            if isinstance(target, ast.Attribute) and _class_closes(source.enclosing_class(call)):
                return True
    return False


def cleanup(ctx: ReviewContext) -> CheckResult:
    findings = []
    for source in ctx.sources.files:
        for call in source.calls():
            name = source.qualname(call.func)
            if name in DB_CONNECT:
                kind = "connection"
            elif isinstance(call.func, ast.Attribute) and call.func.attr in CURSOR_METHODS and not call.args:
                kind = "cursor"
            else:
                continue
            if not _managed(source, call):
                findings.append(f"{source.where(call)} {kind} neither in `with` nor closed in `finally`")
    return count_result(
        "cleanup",
        findings,
        "database connections and cursors are closed by `with` or `finally`",
        "open them in a `with` block",
    )
