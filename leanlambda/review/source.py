"""The function's Python source as syntax trees, with the little name resolution the checks need.

Checks read the AST, not the text: a comment or a string that mentions `boto3.client` is not a call,
and `import boto3 as b; b.client()` still is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from leanlambda.function import FunctionDir
from leanlambda.imports import import_source, is_package, module_name

SKIPPED_DIRS = frozenset(
    {"__pycache__", "tests", "test", ".aws-sam", ".venv", "venv", "build", "dist", "node_modules", "events"}
)
FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
LOOP_NODES = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass
class SourceFile:
    """One parsed module: its path, dotted name, tree, parents and import aliases."""

    path: Path
    rel: str  # path relative to the function folder, for messages
    module: str  # dotted module name, e.g. my_function.handler
    tree: ast.Module
    parents: dict[ast.AST, ast.AST] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    @property
    def basename(self) -> str:
        return self.module.rsplit(".", 1)[-1]

    def where(self, node: ast.AST) -> str:
        return f"{self.rel}:{getattr(node, 'lineno', 0)}"

    def ancestors(self, node: ast.AST) -> Iterator[ast.AST]:
        current = self.parents.get(node)
        while current is not None:
            yield current
            current = self.parents.get(current)

    def enclosing_function(self, node: ast.AST) -> ast.AST | None:
        return next((parent for parent in self.ancestors(node) if isinstance(parent, FUNCTION_NODES)), None)

    def enclosing_class(self, node: ast.AST) -> ast.ClassDef | None:
        return next((parent for parent in self.ancestors(node) if isinstance(parent, ast.ClassDef)), None)

    def in_loop(self, node: ast.AST) -> bool:
        """True when node runs once per iteration of a loop in the same function."""
        for parent in self.ancestors(node):
            if isinstance(parent, FUNCTION_NODES):
                return False
            if isinstance(parent, LOOP_NODES):
                return True
        return False

    def qualname(self, node: ast.AST) -> str | None:
        """`boto3.client` for `boto3.client`, `b.client` (import boto3 as b) or `client` (from boto3 ...)."""
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def calls(self) -> Iterator[ast.Call]:
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                yield node


def call_name(call: ast.Call) -> str | None:
    """The called attribute or function name: `put_metric_data` for `cw.put_metric_data(...)`."""
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    if isinstance(call.func, ast.Name):
        return call.func.id
    return None


def _aliases(tree: ast.Module, module: str, package: bool) -> dict[str, str]:
    """Local name -> the absolute name it is bound to by the module's imports."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom):
            source = import_source(node, module, package)
            if source is None:
                continue  # a relative import that cannot resolve binds nothing at run time
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
    return aliases


@dataclass
class SourceTree:
    files: list[SourceFile]
    errors: list[str]  # files that do not parse

    def by_basename(self, name: str) -> list[SourceFile]:
        return [source for source in self.files if source.basename == name]

    def by_module(self, module: str) -> SourceFile | None:
        return next((source for source in self.files if source.module == module), None)


def load_sources(function: FunctionDir) -> SourceTree:
    """Parse every .py file under src/ (tests and caches excluded)."""
    files: list[SourceFile] = []
    errors: list[str] = []
    src = function.src
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src).parts[:-1]
        if any(part in SKIPPED_DIRS or part.startswith(".") for part in parts):
            continue
        rel = path.relative_to(function.root).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError, ValueError) as error:
            errors.append(f"{rel}: cannot parse ({error.__class__.__name__}: {error})")
            continue
        relative = path.relative_to(src)
        module = module_name(relative)
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        files.append(
            SourceFile(
                path=path,
                rel=rel,
                module=module,
                tree=tree,
                parents=parents,
                aliases=_aliases(tree, module, is_package(relative)),
            )
        )
    return SourceTree(files=files, errors=errors)
