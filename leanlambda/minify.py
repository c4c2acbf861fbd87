"""Strip what the interpreter ignores from shipped Python, keeping every line where it was.

What a function needs at run time is its code; its documentation stays in the repository.
Like ``python -OO``, a docstring becomes empty; unlike it, the change is made to the files
that ship, so the zip shrinks. Line numbers are kept (a multi-line docstring becomes an empty
string spanning the same lines), so a traceback from Lambda points at the right source line.
Each rewrite is checked: the shipped file must parse to the same syntax tree (or, where docs and
annotations go, still compile), or the original ships.
"""

from __future__ import annotations

import ast
import io
import itertools
import tokenize

KEEP_COMMENT_PREFIXES = ("#!", "# -*-", "# vim:", "# coding")
"""Comments that mean something to the interpreter or the loader."""
READS_ANNOTATIONS = (
    "singledispatch",
    "get_type_hints",
    "__annotations__",
    "signature",
    "pydantic",
    "validate_call",
    "typeguard",
    "beartype",
    "inspect",
    "annotationlib",
    "aws_lambda_powertools",
    "fastapi",
    "typer",
    "msgspec",
    "marshmallow",
    "sqlalchemy",
    "strawberry",
    "enable_validation",
)
"""Names that may read function or module annotations at run time. When any module of the package
names one, annotations stay in every module: the reader may sit in another module than the functions
it reads (``singledispatch.register`` over a handler module). Class bodies always keep theirs, which
is all dataclasses, attrs and typing.NamedTuple read."""
READS_DOCSTRINGS = (
    "__doc__",
    "getdoc",
    "inspect",
    "pydantic",
    "aws_lambda_powertools",
    "fastapi",
    "typer",
    "click",
    "docopt",
    "fire.Fire",
    "pydoc",
    "doctest",
)
"""Names that may read docstrings at run time (help texts, OpenAPI descriptions, ``__doc__``):
when any module of the package names one, docstrings stay everywhere (comments still go)."""


def readers_named(sources: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """{module path: the first reader it names} for every module that names one of ``names``."""
    found = {}
    for path, source in sources.items():
        hit = next((name for name in names if name in source), None)
        if hit is not None:
            found[path] = hit
    return found


INDENT = " "
"""One space per block level: Python needs consistency, not width, and every byte of it ships."""


def minify(source: str, keep_annotations: bool = False, keep_docstrings: bool = False) -> str:
    """What ships: no docstrings, comments or annotations, one-space indents, every line where it was.

    Annotations go only from modules that postpone them (``from __future__ import annotations``:
    they are strings nobody evaluates) and name nothing that reads them; the caller passes
    ``keep_annotations``/``keep_docstrings`` when another module of the package reads them
    (``readers_named`` over the whole package).
    """
    documented = strip_documentation(source, keep_docstrings=keep_docstrings)
    annotated = documented if keep_annotations else strip_annotations(documented)
    return reindent(compact_spaces(drop_unused_headers(annotated)))


def compact_spaces(source: str) -> str:
    """No space between tokens where the parser needs none (``x = f(a, b)`` ships as ``x=f(a,b)``).

    Text inside strings and f-strings is never touched, and anything that would parse
    differently is returned as is.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        before = ast.dump(ast.parse(source))
    except (SyntaxError, tokenize.TokenError):
        return source
    lines = source.splitlines(keepends=True)
    fstring_depth = 0
    gaps: list[tuple[int, int, int]] = []  # (row, start column, end column)
    for previous, token in itertools.pairwise(tokens):
        kind = tokenize.tok_name[token.type]
        fstring_depth += (kind == "FSTRING_START") - (tokenize.tok_name[previous.type] == "FSTRING_END")
        gap = previous.end[0] == token.start[0] and token.start[1] > previous.end[1]
        if gap and not fstring_depth and not _space_needed(previous, token):
            gaps.append((token.start[0], previous.end[1], token.start[1]))
    for row, start, end in sorted(gaps, reverse=True):
        lines[row - 1] = lines[row - 1][:start] + lines[row - 1][end:]
    return _if_same_tree("".join(lines), before, source)


def _if_same_tree(rewritten: str, tree_dump: str, original: str) -> str:
    """A layout-only rewrite ships only when it parses to the very tree the original did."""
    try:
        same = ast.dump(ast.parse(rewritten)) == tree_dump
    except SyntaxError:
        same = False
    return rewritten if same else original


STRING_PREFIXES = frozenset({"r", "u", "b", "f", "br", "rb", "fr", "rf"})
"""Names that would become part of the string literal they touch."""


def _space_needed(previous: tokenize.TokenInfo, token: tokenize.TokenInfo) -> bool:
    """Whether two tokens on one line would lex differently (or not at all) written together."""
    if previous.type in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
        return True  # leading whitespace is reindent's business
    left, right = previous.string[-1:], token.string[:1]
    if _word_char(left) and _word_char(right):
        return True  # `return x`, `1 if`, `not x`
    if previous.type == tokenize.NUMBER and right == ".":
        return True  # `1 .real` is not `1.real`
    if previous.type == tokenize.NAME and token.type == tokenize.STRING:
        return previous.string.lower() in STRING_PREFIXES
    if previous.type != tokenize.OP or token.type != tokenize.OP:
        return False
    # No operator begins with these or ends with what precedes them; other pairs keep their
    # space (`a= -1`, `x< -y`): written together, two operators could be read as one.
    separable = left in ")]},;" or right in "([{),:" or (left == ":" and right != "=")
    return not separable


def _word_char(char: str) -> bool:
    return bool(char) and (char.isalnum() or char == "_" or not char.isascii())


def reindent(source: str) -> str:
    """Each block level indented by ``INDENT``; text inside strings untouched; the same syntax tree.

    Continuation lines (inside brackets) lose their alignment, which the parser ignores. Anything
    that would parse differently is returned as is.
    """
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
        before = ast.dump(ast.parse(source))
    except (SyntaxError, tokenize.TokenError):
        return source
    verbatim = _rows_inside_strings(tokens)
    depth_of_row = _logical_line_depths(tokens)
    lines = []
    for row, line in enumerate(source.splitlines(keepends=True), start=1):
        text = line.rstrip("\r\n")
        ending = line[len(text) :]
        if row in verbatim:
            lines.append(line)
        elif not text.strip():
            lines.append(ending)
        else:
            depth = depth_of_row.get(row, 1 if text[0] in " \t" else 0)
            lines.append(INDENT * depth + text.lstrip(" \t\f") + ending)
    return _if_same_tree("".join(lines), before, source)


def _rows_inside_strings(tokens: list[tokenize.TokenInfo]) -> set[int]:
    """Rows that continue a multi-line string: their leading spaces are part of its value."""
    rows: set[int] = set()
    fstring_starts: list[int] = []
    for token in tokens:
        kind = tokenize.tok_name[token.type]
        if kind == "STRING":
            rows.update(range(token.start[0] + 1, token.end[0] + 1))
        elif kind == "FSTRING_START":  # Python 3.12+ tokenizes f-strings in parts
            fstring_starts.append(token.start[0])
        elif kind == "FSTRING_END":
            rows.update(range(fstring_starts.pop() + 1, token.end[0] + 1))
    return rows


def _logical_line_depths(tokens: list[tokenize.TokenInfo]) -> dict[int, int]:
    """The block depth of every row that starts a statement."""
    depths: dict[int, int] = {}
    depth, at_statement_start = 0, True
    for token in tokens:
        if token.type == tokenize.INDENT:
            depth += 1
        elif token.type == tokenize.DEDENT:
            depth -= 1
        elif token.type == tokenize.NEWLINE:
            at_statement_start = True
        elif token.type in (tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER):
            continue
        elif at_statement_start:
            depths[token.start[0]] = depth
            at_statement_start = False
    return depths


def drop_unused_headers(source: str) -> str:
    """Blank ``from __future__ import annotations`` once no annotation is left, and an unread
    ``TYPE_CHECKING = False``: two lines that only served the annotations already removed."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    annotated = any(
        isinstance(node, ast.AnnAssign)
        or (isinstance(node, ast.arg) and node.annotation is not None)
        or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None)
        for node in ast.walk(tree)
    )
    reads_type_checking = any(
        isinstance(node, ast.Name) and node.id == "TYPE_CHECKING" and isinstance(node.ctx, ast.Load)
        for node in ast.walk(tree)
    )
    for node in tree.body:
        line = lines[node.lineno - 1]
        text = line.rstrip("\r\n")
        whole_line = node.col_offset == 0 and node.end_col_offset == len(text.rstrip())
        if node.lineno != node.end_lineno or not whole_line:
            continue  # not the whole line: a semicolon shares it
        future_annotations_only = (
            isinstance(node, ast.ImportFrom)
            and node.module == "__future__"
            and [alias.name for alias in node.names] == ["annotations"]
        )
        unread_flag = (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "TYPE_CHECKING"
        )
        if (future_annotations_only and not annotated) or (unread_flag and not reads_type_checking):
            lines[node.lineno - 1] = line[len(text) :]
    dropped = "".join(lines)
    return dropped if _compiles(dropped) else source


def strip_annotations(source: str) -> str:
    """Remove one-line parameter and return annotations of functions; invalid input is returned as is."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    postponed = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not postponed or any(name in source for name in READS_ANNOTATIONS):
        return source
    lines = source.splitlines(keepends=True)
    cuts = _variable_annotations(tree)  # (line, start column, end column)
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        cuts += _variable_annotations(node)
        arguments = node.args
        starred = (arguments.vararg, arguments.kwarg)
        for argument in (
            *arguments.posonlyargs,
            *arguments.args,
            *arguments.kwonlyargs,
            *(star for star in starred if star is not None),
        ):
            annotation = argument.annotation
            if annotation is not None and annotation.lineno == _end(annotation)[0] == argument.lineno:
                name_end = argument.col_offset + len(argument.arg.encode("utf-8"))
                cuts.append((argument.lineno, name_end, _end(annotation)[1]))
        returns = node.returns
        if returns is not None and returns.lineno == _end(returns)[0]:
            line = lines[returns.lineno - 1].encode("utf-8")
            arrow = line.rfind(b"->", 0, returns.col_offset)
            if arrow != -1:
                start = len(line[:arrow].rstrip())
                cuts.append((returns.lineno, start, _end(returns)[1]))
    for line_number, start, end in sorted(cuts, reverse=True):
        encoded = lines[line_number - 1].encode("utf-8")
        lines[line_number - 1] = (encoded[:start] + encoded[end:]).decode("utf-8")
    stripped = "".join(lines)
    return stripped if _compiles(stripped) else source


def _variable_annotations(scope: ast.AST) -> list[tuple[int, int, int]]:
    """``x: T = value`` in a function's or the module's own body, where nothing reads the annotation.

    In a function Python neither evaluates nor stores it; a module stores it as a string in
    ``__annotations__``, which this module does not read (``READS_ANNOTATIONS``). Nested functions
    are visited on their own, and classes keep theirs (a dataclass needs them).
    """
    cuts = []
    pending = list(ast.iter_child_nodes(scope))
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        pending.extend(ast.iter_child_nodes(node))
        if (
            isinstance(node, ast.AnnAssign)
            and node.value is not None
            and node.annotation.lineno == _end(node.annotation)[0] == _end(node.target)[0]
        ):
            cuts.append((*_end(node.target), _end(node.annotation)[1]))
    return cuts


def strip_documentation(source: str, keep_docstrings: bool = False) -> str:
    """``source`` without docstrings or comments, same line count; invalid Python is returned as is.

    With ``keep_docstrings`` only comments go (something reads ``__doc__``).
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    for first, last in _type_checking_blocks(tree):
        lines[first - 1 : last] = ["\n"] * (last - first + 1)
    blocks = _type_checking_blocks(tree)
    spans = (
        []
        if keep_docstrings
        else [span for span in _bare_string_spans(tree) if not _inside_any(span, blocks)]
    )
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


def _end(node: ast.expr | ast.stmt) -> tuple[int, int]:
    """(line, column) where a parsed node ends; only a node built by hand, never parsed, has none."""
    if node.end_lineno is None or node.end_col_offset is None:
        raise ValueError(f"{type(node).__name__} node without an end position: not from ast.parse")
    return node.end_lineno, node.end_col_offset


def _type_checking_blocks(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges of module-level ``if TYPE_CHECKING:`` blocks: imports for type checkers only."""
    return [
        (node.lineno, _end(node)[0])
        for node in tree.body
        if isinstance(node, ast.If)
        and not node.orelse
        and isinstance(node.test, ast.Name)
        and node.test.id == "TYPE_CHECKING"
    ]


def _inside_any(span: tuple[tuple[int, int], tuple[int, int], bool], blocks: list[tuple[int, int]]) -> bool:
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
                    end = _end(statement)
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
