"""Checks on the code's structure: imports, clients, classes, metrics, errors, logs, cleanup."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from leanlambda.known_packages import HEAVY_MODULES
from leanlambda.review.import_cost import import_cost
from leanlambda.review.model import FAIL, PASS, WARN, CheckResult, ReviewContext, count_result, listing
from leanlambda.review.source import FUNCTION_NODES, SourceFile, call_name
from leanlambda.template_contract import (
    ALWAYS_RETURN_ENV,
    FACTORY_CLASS,
    FACTORY_MODULE,
    FAILED_RUN_CLASS,
    METRICS_CLASS,
    METRICS_MODULE,
    PIPELINE_CLASS,
    RUNTIME_CLASSES,
)

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
"""A module-level def or class: what the handler's call path is followed through."""
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


def _module_level_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
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


def _module_defs(source: SourceFile) -> dict[str, Definition]:
    return {
        node.name: node
        for node in source.tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def path_names(source: SourceFile, entry: str | None) -> set[str]:
    """Names the import-time code and (from `entry`) the handler's call path read in this module.

    Without an entry (a module the handler imports) everything outside the import lines counts.
    """
    defs = _module_defs(source)
    used: set[str] = set()
    for statement in source.tree.body:
        definition = isinstance(statement, (*FUNCTION_NODES, ast.ClassDef))
        if isinstance(statement, (ast.Import, ast.ImportFrom)) or (definition and entry is not None):
            continue
        used |= _names_in(statement)
    if entry is None:
        return used
    pending, seen = [entry], set()
    while pending:
        name = pending.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        names = _names_in(defs[name])
        used |= names
        pending += [n for n in names if n in defs]
    return used


def _heavy_imports(source: SourceFile) -> Iterator[tuple[ast.Import | ast.ImportFrom, str, str]]:
    """(node, module, bound name) for each heavy module imported when the module is imported."""
    for node in _module_level_imports(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in HEAVY_MODULES:
                    yield node, alias.name, alias.asname or alias.name.split(".")[0]
        elif not node.level and (node.module or "").split(".")[0] in HEAVY_MODULES:
            for alias in node.names:
                yield node, node.module or "", alias.asname or alias.name


def lazy_imports(ctx: ReviewContext) -> CheckResult:
    if ctx.leanlambda:
        findings = [
            f"{source.where(node)} imports {module} at module level"
            for source in ctx.sources.files
            for node, module, _ in _heavy_imports(source)
        ]
        return count_result(
            "lazy-imports",
            findings,
            "no heavy module imported at module level",
            "import these inside the function that uses them (as clients.py, db.py and upbit.py do)",
        )
    handler_module = ctx.function.module
    findings, used_notes = [], []
    for source in ctx.sources.files:
        entry = ctx.function.handler_attr if source.module == handler_module else None
        used = path_names(source, entry)
        for node, module, bound in _heavy_imports(source):
            cost = import_cost(module.split(".")[0], ctx.function.src)
            note = f"{module} ({cost})"
            if bound in used:
                used_notes.append(note) if note not in used_notes else None
            else:
                findings.append(
                    f"{source.where(node)} imports {module} at init ({cost}), unused by the handler's path"
                )
    ok = (
        "heavy imports at init are used by the handler's path: " + listing(used_notes)
        if used_notes
        else ("no heavy module imported at init")
    )
    return count_result(
        "lazy-imports",
        findings,
        ok,
        "drop the import, or import it inside the rarely used function that needs it",
    )


def client_reuse(ctx: ReviewContext) -> CheckResult:
    findings = []
    for source in ctx.sources.files:
        if ctx.leanlambda and source.basename == FACTORY_MODULE:
            continue
        for call in source.calls():
            name = source.qualname(call.func)
            if name not in CLIENT_CONSTRUCTORS:
                continue
            if ctx.leanlambda:
                findings.append(f"{source.where(call)} calls {name}()")
            elif not _once_per_container(ctx, source, call):
                where = source.enclosing_function(call)
                inside = getattr(where, "name", "a function")
                findings.append(f"{source.where(call)} {name}() in {inside}() runs on every invocation")
    if ctx.leanlambda:
        return count_result(
            "client-reuse",
            findings,
            f"boto3 clients and sessions are created only in {FACTORY_MODULE}.py (the cached factory)",
            f"get clients from {FACTORY_MODULE}.py's {FACTORY_CLASS}: run.clients.get(service)",
        )
    return count_result(
        "client-reuse",
        findings,
        "every boto3 client/session is created once per container (module level or a cached factory)",
        "create the client once per container: at module level, or in a functools.cache'd function",
    )


CACHE_DECORATORS = frozenset({"cache", "lru_cache", "cached_property", "cached"})


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""


def _instantiated_at_module_level(ctx: ReviewContext, class_name: str) -> bool:
    for source in ctx.sources.files:
        for statement in source.tree.body:
            if isinstance(statement, (ast.Assign, ast.AnnAssign, ast.Expr)) and statement.value is not None:
                for node in ast.walk(statement.value):
                    if isinstance(node, ast.Call) and (source.qualname(node.func) or "").endswith(class_name):
                        return True
    return False


def _once_per_container(ctx: ReviewContext, source: SourceFile, call: ast.Call) -> bool:
    """Module level, a cached function, a lazily filled global, or a module-level object's method."""
    function = source.enclosing_function(call)
    if function is None:
        return True
    for scope in [function, *[p for p in source.ancestors(function) if isinstance(p, FUNCTION_NODES)]]:
        decorators = getattr(scope, "decorator_list", [])
        if any(_decorator_name(d) in CACHE_DECORATORS for d in decorators):
            return True
        if any(isinstance(n, ast.Global) for n in ast.walk(scope)):
            return True
    cls = source.enclosing_class(call)
    return cls is not None and (_instantiated_at_module_level(ctx, cls.name) or _memoizes(cls))


def _memoizes(cls: ast.ClassDef) -> bool:
    """A cached factory: the class keeps what it made in `self.<cache>[key] = ...`."""
    for node in ast.walk(cls):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Attribute)
                    and isinstance(target.value.value, ast.Name)
                    and target.value.value.id == "self"
                ):
                    return True
    return False


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


SMALL_FUNCTION_LINES = 200  # one module is the right shape below this many lines of code
HANDLER_MAX_LINES = 60  # above SMALL_FUNCTION_LINES, the handler should delegate, not hold the work


def _code_lines(source: SourceFile) -> int:
    lines = set()
    for node in ast.walk(source.tree):
        if isinstance(node, ast.stmt) and not (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            lines.add(node.lineno)
    return len(lines)


def _general_modular(ctx: ReviewContext) -> CheckResult:
    lines = sum(_code_lines(source) for source in ctx.sources.files)
    modules = len(ctx.sources.files)
    value = f"{modules} module(s), {lines} statement line(s)"
    budget = f"one module up to {SMALL_FUNCTION_LINES} lines; above, a handler <= {HANDLER_MAX_LINES} lines"
    if lines <= SMALL_FUNCTION_LINES:
        return CheckResult("modular", PASS, value, budget, "small enough to read as one module")
    handler = ctx.sources.by_module(ctx.function.module)
    entry = _module_defs(handler).get(ctx.function.handler_attr) if handler else None
    length = (entry.end_lineno or entry.lineno) - entry.lineno + 1 if entry is not None else 0
    problems = []
    if modules < 2:
        problems.append(f"{lines} lines in one module")
    if length > HANDLER_MAX_LINES:
        problems.append(f"the handler {ctx.function.handler_attr}() is {length} lines long")
    if problems:
        fix = "keep the handler thin: move the work into functions or modules it calls"
        return CheckResult("modular", FAIL, value, budget, f"{listing(problems)}; fix: {fix}")
    return CheckResult("modular", PASS, value, budget, "split into modules; the handler delegates")


def modular(ctx: ReviewContext) -> CheckResult:
    if not ctx.leanlambda:
        return _general_modular(ctx)
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
        fix = f"keep the template's classes and run your steps through {PIPELINE_CLASS}"
        return CheckResult(
            "modular", FAIL, f"{good}/{total}", f"{total}/{total}", f"{listing(problems)}; fix: {fix}"
        )
    return CheckResult(
        "modular",
        PASS,
        f"{total}/{total}",
        f"{total}/{total}",
        f"{FACTORY_CLASS}, {PIPELINE_CLASS} and {METRICS_CLASS} present and used",
    )


def _single_metric_literal(call: ast.Call) -> bool:
    for keyword in call.keywords:
        if keyword.arg == "MetricData":
            return isinstance(keyword.value, ast.List) and len(keyword.value.elts) == 1
    return False


def metrics_batching(ctx: ReviewContext) -> CheckResult:
    findings, calls = [], 0
    for source in ctx.sources.files:
        for call in source.calls():
            if call_name(call) != "put_metric_data" or not isinstance(call.func, ast.Attribute):
                continue
            calls += 1
            if ctx.leanlambda and source.basename != METRICS_MODULE:
                loop = " inside a loop" if source.in_loop(call) else ""
                findings.append(f"{source.where(call)} calls PutMetricData{loop} outside {METRICS_MODULE}.py")
            elif source.in_loop(call) and (ctx.leanlambda is False or _single_metric_literal(call)):
                findings.append(f"{source.where(call)} calls PutMetricData once per value, in a loop")
    if ctx.leanlambda:
        return count_result(
            "metrics-batching",
            findings,
            f"metrics go through the generated {METRICS_CLASS} (EMF or batched PutMetricData)",
            "add metrics to the collector (run.metrics.add); it flushes once per invocation",
        )
    ok = f"{calls} PutMetricData call(s), none per value in a loop" if calls else "no PutMetricData calls"
    return count_result(
        "metrics-batching",
        findings,
        ok,
        "collect the values and send them in one call (up to 1000 per call), or log them as EMF",
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


ERROR_KEYS = frozenset({"error", "errors", "errorMessage", "errorType", "message", "exception"})
ERROR_STATUS_MIN = 400


def _error_shaped(value: ast.expr | None) -> bool:
    """A returned value that reports the failure: an error key, ok/success False, statusCode >= 400."""
    if not isinstance(value, ast.Dict):
        return isinstance(value, ast.Call)  # a built response, e.g. error_response(...)
    for key, item in zip(value.keys, value.values, strict=True):
        name = key.value if isinstance(key, ast.Constant) else None
        if name in ERROR_KEYS:
            return True
        if name in ("ok", "success") and isinstance(item, ast.Constant) and item.value is False:
            return True
        if name == "statusCode" and isinstance(item, ast.Constant) and isinstance(item.value, int):
            return item.value >= ERROR_STATUS_MIN
    return False


def _raises(handler: ast.ExceptHandler) -> bool:
    return any(isinstance(node, ast.Raise) for node in ast.walk(handler))


def _returns(handler: ast.ExceptHandler) -> list[ast.Return]:
    return [node for node in ast.walk(handler) if isinstance(node, ast.Return)]


def _broad(handler: ast.ExceptHandler) -> bool:
    return handler.type is None or bool(_exception_names(handler.type) & BROAD_EXCEPTIONS)


def _constant_bools(source: SourceFile) -> dict[str, bool]:
    found = {}
    for node in source.tree.body:
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, bool)
        ):
            found.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return found


def _switched_off(source: SourceFile, node: ast.AST, constants: dict[str, bool]) -> str | None:
    """The module-level constant that makes this statement unreachable (`if RAISE: raise ...`)."""
    child = node
    for parent in source.ancestors(node):
        if isinstance(parent, ast.If):
            test, wanted = parent.test, child not in parent.orelse
            if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                test, wanted = test.operand, not wanted
            if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) and wanted:
                test = next((v for v in test.values if _switch_name(v, constants)), test)
            if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
                test, wanted = test.operand, not wanted
            name = _switch_name(test, constants)
            if name and constants[name] != wanted:
                return f"{name} = {constants[name]}"
        child = parent
    return None


def _switch_name(test: ast.expr, constants: dict[str, bool]) -> str | None:
    """`NAME` or `module.NAME` (or `not ...` of either) naming a known module-level bool."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test = test.operand
    name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
    return name if name in constants else None


def _caught_locally(source: SourceFile, node: ast.AST) -> bool:
    """Raised inside a try that has handlers: it does not reach Lambda (as far as the AST tells)."""
    child = node
    for parent in source.ancestors(node):
        if isinstance(parent, FUNCTION_NODES):
            return False
        if isinstance(parent, ast.Try) and parent.handlers and child in parent.body:
            return True
        child = parent
    return False


def _always_returns(ctx: ReviewContext) -> tuple[str, str] | None:
    """(where, why) when the handler module never lets a failed run end in an error."""
    source = ctx.sources.by_module(ctx.function.module)
    if source is None:
        return None
    raises = [
        node
        for node in ast.walk(source.tree)
        if isinstance(node, ast.Raise) and node.exc is not None and not _caught_locally(source, node)
    ]
    constants: dict[str, bool] = {}
    for other in ctx.sources.files:  # a switch may live in another module (from .settings import X)
        constants.update(_constant_bools(other))
    constants.update(_constant_bools(source))
    live = [node for node in raises if _switched_off(source, node, constants) is None]
    if live:
        return None
    switch = next((_switched_off(source, node, constants) for node in raises), None)
    why = f"the switch {switch} keeps it returning" if switch else "it never raises"
    return f"{source.rel}:1", why


def error_handling(ctx: ReviewContext) -> CheckResult:
    findings, warnings = [], []
    retries = ctx.function.retries_configured
    handler_module = ctx.function.module
    for source in ctx.sources.files:
        for node in ast.walk(source.tree):
            if not isinstance(node, ast.ExceptHandler):
                continue
            if node.type is None:
                findings.append(f"{source.where(node)} bare `except:`")
                continue
            if not _broad(node) or _raises(node):
                continue
            if _swallows(node):
                findings.append(f"{source.where(node)} `except Exception` that swallows the error")
                continue
            returned = _returns(node)
            function = source.enclosing_function(node)
            is_handler = source.module == handler_module and getattr(function, "name", "") == (
                ctx.function.handler_attr
            )
            defaults = [r for r in returned if not _error_shaped(r.value)]
            if defaults:
                findings.append(
                    f"{source.where(node)} catch-all returns a default result, hiding the failure"
                )
            elif returned and is_handler and retries:
                findings.append(
                    f"{source.where(node)} the handler turns every failure into a normal return, so the "
                    f"template's {retries} never sees one"
                )
    if ctx.leanlambda and retries:
        always = _always_returns(ctx)
        switch = str(ctx.function.environment().get(ALWAYS_RETURN_ENV, "true")).strip().lower()
        if always is None and switch == "false":
            always = ("template.yaml", f"{ALWAYS_RETURN_ENV}=false keeps it returning")
        if always:
            warnings.append(
                f"{always[0]} the handler returns on a failed run ({always[1]}): Lambda counts it as a "
                f"success, so {retries} never applies"
            )
    fix = (
        "catch the exceptions you expect; let a failed run end in an error (the generated handler raises "
        f"{FAILED_RUN_CLASS}) so Lambda retries it and counts it in Errors"
        if ctx.leanlambda
        else "catch the exceptions you expect and let the rest raise: Lambda then reports, retries and "
        "counts the failure"
    )
    if findings:
        return count_result("error-handling", findings + warnings, "", fix)
    if warnings:
        return count_result("error-handling", warnings, "", fix, status_if_found=WARN)
    ok = "no bare, swallowing or default-returning catch-all"
    if retries:
        ok += f"; failures reach Lambda ({retries})"
    return count_result("error-handling", [], ok, fix)


POWERTOOLS_LOGGER = "aws_lambda_powertools.Logger"


def _json_logger(ctx: ReviewContext) -> bool:
    """Powertools' Logger writes JSON whatever the function's LogFormat."""
    return any(
        source.qualname(call.func) in (POWERTOOLS_LOGGER, "aws_lambda_powertools.logging.Logger")
        for source in ctx.sources.files
        for call in source.calls()
    )


def structured_logging(ctx: ReviewContext) -> CheckResult:
    findings = []
    for source in ctx.sources.files:
        for call in source.calls():
            name = source.qualname(call.func)
            if name == "print":
                findings.append(f"{source.where(call)} print()")
            elif name in STD_STREAM_WRITES and not (ctx.leanlambda and source.basename == METRICS_MODULE):
                findings.append(f"{source.where(call)} {name}()")
    log_format = ctx.function.log_format
    json_logger = _json_logger(ctx)
    if ctx.function.has_template and log_format != "JSON" and not (json_logger and not ctx.leanlambda):
        findings.append(f"template.yaml LoggingConfig LogFormat is {log_format}, not JSON")
    ok = "logging only (no print); " + (
        "Powertools Logger writes JSON" if json_logger and log_format != "JSON" else f"LogFormat {log_format}"
    )
    fix = "use logging (or Powertools' Logger) and LoggingConfig: {LogFormat: JSON}"
    return count_result(
        "structured-logging", findings, ok, fix, status_if_found=FAIL if ctx.leanlambda else WARN
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
        declared_global = {
            name for node in ast.walk(function) if isinstance(node, ast.Global) for name in node.names
        }
        for target in targets:
            if isinstance(target, ast.Name) and target.id in declared_global:
                return True  # one connection per container, reused by design (AWS's practice)
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
