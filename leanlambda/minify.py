"""Strip docstrings and comments from shipped Python, keeping every line where it was.

What a function needs at run time is its code; its documentation stays in the repository.
Like ``python -OO``, a docstring becomes empty; unlike it, the change is made to the files
that ship, so the zip shrinks. Line numbers are kept (a multi-line docstring becomes an empty
string spanning the same lines), so a traceback from Lambda points at the right source line.
"""

from __future__ import annotations

import ast
import io
import tokenize

KEEP_COMMENT_PREFIXES = ("#!", "# -*-", "# vim:", "# coding")
"""Comments that mean something to the interpreter or the loader."""
READS_ANNOTATIONS = (
    "singledispatch", "get_type_hints", "__annotations__", "signature", "pydantic", "validate_call",
    "typeguard", "beartype", "inspect",
)
"""Names in a module that may read function annotations at run time: such a module keeps them."""


def minify(source: str) -> str:
    """What ships: no docstrings, comments or function annotations, every line where it was.

    Function annotations go only from modules that postpone them (``from __future__ import
    annotations``: they are strings nobody evaluates) and name nothing that reads them.
    """
    return strip_annotations(strip_documentation(source))


def strip_annotations(source: str) -> str:
    """Remove one-line parameter and return annotations of functions; invalid input is returned as is."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    postponed = any(
        isinstance(node, ast.ImportFrom) and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not postponed or any(name in source for name in READS_ANNOTATIONS):
        return source
    lines = source.splitlines(keepends=True)
    cuts: list[tuple[int, int, int]] = []  # (line, start column, end column)
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        cuts += _local_variable_annotations(node)
        arguments = node.args
        for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                         arguments.vararg, arguments.kwarg):
            annotation = argument.annotation if argument is not None else None
            if annotation is not None and annotation.lineno == annotation.end_lineno == argument.lineno:
                name_end = argument.col_offset + len(argument.arg.encode("utf-8"))
                cuts.append((argument.lineno, name_end, annotation.end_col_offset))
        returns = node.returns
        if returns is not None and returns.lineno == returns.end_lineno:
            line = lines[returns.lineno - 1].encode("utf-8")
            arrow = line.rfind(b"->", 0, returns.col_offset)
            if arrow != -1:
                start = len(line[:arrow].rstrip())
                cuts.append((returns.lineno, start, returns.end_col_offset))
    for line_number, start, end in sorted(cuts, reverse=True):
        encoded = lines[line_number - 1].encode("utf-8")
        lines[line_number - 1] = (encoded[:start] + encoded[end:]).decode("utf-8")
    stripped = "".join(lines)
    return stripped if _compiles(stripped) else source


def _local_variable_annotations(function: ast.AST) -> list[tuple[int, int, int]]:
    """``x: T = value`` in a function's own body: Python neither evaluates nor stores those annotations.

    Nested functions are visited on their own, and nested classes keep theirs (a dataclass needs them).
    """
    cuts = []
    pending = list(ast.iter_child_nodes(function))
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        pending.extend(ast.iter_child_nodes(node))
        if (
            isinstance(node, ast.AnnAssign)
            and node.value is not None
            and node.annotation.lineno == node.annotation.end_lineno == node.target.end_lineno
        ):
            cuts.append((node.target.end_lineno, node.target.end_col_offset, node.annotation.end_col_offset))
    return cuts


def strip_documentation(source: str) -> str:
    """``source`` without docstrings or comments, same line count; invalid Python is returned as is."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    for first, last in _type_checking_blocks(tree):
        lines[first - 1 : last] = ["\n"] * (last - first + 1)
    blocks = _type_checking_blocks(tree)
    spans = [span for span in _bare_string_spans(tree) if not _inside_any(span, blocks)]
    for start, end, removable in sorted(spans, reverse=True):
        lines = _replace_span(lines, start, end, removable)
    stripped = _strip_comments("".join(lines))
    compile(stripped, "<minified>", "exec")
    return stripped


def empty_docstrings(source: str) -> str:
    """``source`` with every docstring emptied to ``""`` (still a str), lines kept; comments stay.

    For third-party code in a layer: ``__doc__`` stays a string, so code that formats or appends to
    docstrings at import (pandas' decorators) keeps working. Invalid Python is returned as is.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    for start, end, _removable in sorted(_bare_string_spans(tree), reverse=True):
        lines = _replace_span(lines, start, end, removable=False)
    emptied = "".join(lines)
    return emptied if _compiles(emptied) else source


def _compiles(source: str) -> bool:
    """A rewrite is kept only when it is still Python; otherwise the original ships unchanged."""
    try:
        compile(source, "<minified>", "exec")
    except SyntaxError:
        return False
    return True


def _type_checking_blocks(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges of module-level ``if TYPE_CHECKING:`` blocks: imports for type checkers only."""
    return [
        (node.lineno, node.end_lineno)
        for node in tree.body
        if isinstance(node, ast.If)
        and not node.orelse
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    ]


def _inside_any(span: tuple, blocks: list[tuple[int, int]]) -> bool:
    return any(first <= span[0][0] <= last for first, last in blocks)


def _bare_string_spans(tree: ast.AST) -> list[tuple[tuple[int, int], tuple[int, int], bool]]:
    """(start, end, removable) of statements that are only a string literal: docstrings and their kind.

    A string is removable outright when other statements share its body; a lone one (a class
    that is only a docstring) must stay as an empty string to keep the body valid.
    """
    spans = []
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if not isinstance(body, list):
                continue
            for statement in body:
                if (
                    isinstance(statement, ast.Expr)
                    and isinstance(statement.value, ast.Constant)
                    and isinstance(statement.value.value, str)
                ):
                    start = (statement.lineno, statement.col_offset)
                    end = (statement.end_lineno, statement.end_col_offset)
                    spans.append((start, end, len(body) > 1))
    return spans


def _replace_span(
    lines: list[str], start: tuple[int, int], end: tuple[int, int], removable: bool
) -> list[str]:
    (first, first_col), (last, last_col) = start, end
    head = lines[first - 1][:first_col]
    tail = lines[last - 1][last_col:]
    if removable and not head.strip() and not tail.strip():
        return lines[: first - 1] + ["\n"] * (last - first + 1) + lines[last:]
    empty = '""' if first == last else '"""' + "\n" * (last - first) + '"""'
    replaced = (head + empty + tail).splitlines(keepends=True)
    return lines[: first - 1] + replaced + lines[last:]


def _strip_comments(source: str) -> str:
    lines = source.splitlines(keepends=True)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT or token.string.startswith(KEEP_COMMENT_PREFIXES):
            continue
        row, col = token.start
        line = lines[row - 1]
        ending = line[len(line.rstrip("\r\n")) :]
        lines[row - 1] = line[:col].rstrip() + ending
    return "".join(lines)
