"""Make a lazy function eager, mechanically, so the comparison is the same code loaded the common way.

``make_eager(src, dest, services)`` copies ``src`` and, in every module:
- moves every function-level ``import`` / ``from ... import`` to module level (hoisting): the statement's
  line becomes ``pass`` (so line numbers and the rest of the code stay exactly as they were) and the
  import is added after the module's own top-level imports;
- appends to each ``handler.py`` a call creating the function's clients at import:
  ``get_orchestrator().clients.prewarm(<services>)``.

Imports a function binds under a name the module binds otherwise (a def, class or assignment), imports
sharing a line with other code, and imports inside ``try`` blocks (optional dependencies) stay where they
are and are reported in ``EagerResult.kept``.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass, field
from pathlib import Path

HANDLER_FILE = "handler.py"
PREWARM_MARKER = "# benchmarks.eager: clients created at import"
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")


@dataclass
class EagerResult:
    hoisted: dict[str, list[str]] = field(default_factory=dict)  # file -> hoisted statements
    kept: dict[str, list[str]] = field(default_factory=dict)  # file -> imports left in place, with why
    prewarmed: list[str] = field(default_factory=list)  # handler files given the prewarm call


def _module_level_names(tree: ast.Module) -> set[str]:
    """Names bound at module level by anything but an import."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _bound_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.asname or alias.name.split(".")[0] for alias in node.names]
    return [alias.asname or alias.name for alias in node.names]


class _Finder(ast.NodeVisitor):
    """Import statements inside function bodies, noting those inside ``try``."""

    def __init__(self) -> None:
        self.found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
        self._depth = 0
        self._in_try = 0

    def _function(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_Try(self, node: ast.Try) -> None:
        self._in_try += 1
        for child in node.body:
            self.visit(child)
        self._in_try -= 1
        for child in [*node.handlers, *node.orelse, *node.finalbody]:
            self.visit(child)

    visit_TryStar = visit_Try

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        if self._depth:
            self.found.append((node, self._in_try > 0))

    visit_Import = visit_ImportFrom = _import


def hoist_imports(source: str) -> tuple[str, list[str], list[str]]:
    """``source`` with its function-level imports moved to module level; (code, hoisted, kept)."""
    tree = ast.parse(source)
    finder = _Finder()
    finder.visit(tree)
    if not finder.found:
        return source, [], []
    lines = source.splitlines(keepends=True)
    module_names = _module_level_names(tree)
    hoisted: list[str] = []
    kept: list[str] = []
    for node, in_try in finder.found:
        text = ast.get_source_segment(source, node) or ast.unparse(node)
        first, last = node.lineno - 1, node.end_lineno - 1
        indent = lines[first][: node.col_offset]
        alone = (
            not indent.strip()
            and lines[last].rstrip("\r\n")[node.end_col_offset :].split("#")[0].strip() == ""
        )
        clash = sorted(set(_bound_names(node)) & module_names)
        if in_try or not alone or clash:
            why = "inside try" if in_try else "shares its line" if not alone else f"name clash {clash}"
            kept.append(f"{text} ({why})")
            continue
        newline = lines[last][len(lines[last].rstrip("\r\n")) :] or "\n"
        lines[first] = f"{indent}pass{newline}"
        for index in range(first + 1, last + 1):
            lines[index] = newline
        statement = ast.unparse(node)
        if statement not in hoisted:
            hoisted.append(statement)
    if not hoisted:
        return source, [], kept
    insert_at = _after_module_imports(tree)
    block = "".join(f"{statement}\n" for statement in hoisted)
    if insert_at == 0:
        lines.insert(0, block)
    else:
        previous = lines[insert_at - 1]
        if not previous.endswith("\n"):
            lines[insert_at - 1] = previous + "\n"
        lines.insert(insert_at, block)
    return "".join(lines), hoisted, kept


def _after_module_imports(tree: ast.Module) -> int:
    """The line index just after the module's leading docstring, ``__future__`` and top-level imports."""
    end = 0
    for index, node in enumerate(tree.body):
        is_docstring = index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if is_docstring or isinstance(node, (ast.Import, ast.ImportFrom)):
            end = node.end_lineno
        elif end:
            break
    return end


def prewarm_call(services: list[str]) -> str:
    quoted = ", ".join(repr(service) for service in services)
    return f"\n\n{PREWARM_MARKER}\nget_orchestrator().clients.prewarm({quoted})\n"


def make_eager(src: Path, dest: Path, services: list[str] | tuple[str, ...] = ()) -> EagerResult:
    """Copy ``src`` to ``dest`` with imports hoisted and, in handler.py, the clients made at import."""
    src, dest = Path(src), Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=COPY_IGNORE)
    result = EagerResult()
    for path in sorted(dest.rglob("*.py")):
        relative = str(path.relative_to(dest))
        source = path.read_text(encoding="utf-8")
        code, hoisted, kept = hoist_imports(source)
        if hoisted:
            result.hoisted[relative] = hoisted
        if kept:
            result.kept[relative] = kept
        if path.name == HANDLER_FILE and services and "def get_orchestrator" in code:
            code = code.rstrip("\n") + "\n" + prewarm_call(list(services))
            result.prewarmed.append(relative)
        if code != source:
            path.write_text(code, encoding="utf-8")
    return result


def services_of(answers: dict) -> list[str]:
    """The function's AWS services from its .cookiecutter.json answers."""
    raw = answers.get("__services") or answers.get("aws_services") or ""
    return [service.strip().lower() for service in str(raw).split(",") if service.strip()]
