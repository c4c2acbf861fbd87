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
    for start, end in sorted(_bare_string_spans(tree), reverse=True):
        lines = _replace_span(lines, start, end)
    stripped = _strip_comments("".join(lines))
    compile(stripped, "<minified>", "exec")
    return stripped


def _bare_string_spans(tree: ast.AST) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(line, col) spans of statements that are only a string literal: docstrings and their kind."""
    spans = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            spans.append(((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset)))
    return spans


def _replace_span(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> list[str]:
    (first, first_col), (last, last_col) = start, end
    head = lines[first - 1][:first_col]
    tail = lines[last - 1][last_col:]
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
