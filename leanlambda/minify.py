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
    try:
        compile(emptied, "<emptied>", "exec")
    except SyntaxError:
        return source
    return emptied


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
