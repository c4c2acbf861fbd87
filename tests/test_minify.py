"""What `leanlambda package` ships: the same code, without docstrings and comments, same lines."""

from __future__ import annotations

import textwrap

from leanlambda.minify import strip_documentation

SOURCE = textwrap.dedent(
    '''\
    # -*- coding: utf-8 -*-
    """Module docstring,
    over two lines."""

    from __future__ import annotations

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from typing import Any

    LIMIT = 3  # a remark
    """An attribute docstring."""


    class Signal(Exception):
        """A class that is only its docstring."""


    def double(value: Any) -> int:
        """Why it doubles."""
        text = "# not a comment"  # but this is
        return value * 2 if text else 0


    def fail():
        raise ValueError("line 26")
    '''
)


def test_docstrings_and_comments_are_gone_and_lines_kept():
    stripped = strip_documentation(SOURCE)
    assert len(stripped.splitlines()) == len(SOURCE.splitlines())
    for gone in ("Module docstring", "attribute docstring", "Why it doubles", "a remark", "but this is"):
        assert gone not in stripped
    assert "from typing import Any" not in stripped
    assert stripped.startswith("# -*- coding: utf-8 -*-")
    assert '"# not a comment"' in stripped


def test_the_stripped_code_behaves_the_same():
    original, stripped = {}, {}
    exec(compile(SOURCE, "original.py", "exec"), original)
    exec(compile(strip_documentation(SOURCE), "stripped.py", "exec"), stripped)
    assert stripped["double"](21) == original["double"](21) == 42
    assert issubclass(stripped["Signal"], Exception)
    assert stripped["LIMIT"] == 3


def test_a_traceback_names_the_same_line():
    namespace = {}
    exec(compile(strip_documentation(SOURCE), "stripped.py", "exec"), namespace)
    try:
        namespace["fail"]()
    except ValueError as error:
        assert error.__traceback__.tb_next.tb_lineno == 26


def test_invalid_python_is_returned_unchanged():
    assert strip_documentation("def broken(:\n") == "def broken(:\n"


def test_emptied_docstrings_stay_strings_for_code_that_reads_them():
    from leanlambda.minify import empty_docstrings

    source = 'def f():\n    """Long text\n    on two lines."""\n    return 1\n\nf.__doc__ += " appended"\n'
    emptied = empty_docstrings(source)
    assert "Long text" not in emptied
    assert len(emptied.splitlines()) == len(source.splitlines())
    namespace = {}
    exec(compile(emptied, "emptied.py", "exec"), namespace)
    assert namespace["f"].__doc__.strip() == "appended"


def test_function_annotations_go_where_they_are_postponed_and_unread():
    from leanlambda.minify import minify

    source = (
        "from __future__ import annotations\n"
        "def scale(value: float, factor: int = 2, *rest: str, **options: dict[str, int]) -> float:\n"
        "    return value * factor\n"
    )
    stripped = minify(source)
    assert "def scale(value,factor=2,*rest,**options):" in stripped
    namespace = {}
    exec(compile(stripped, "stripped.py", "exec"), namespace)
    assert namespace["scale"](1.5) == 3.0
    assert minify(source.replace("from __future__ import annotations\n", "\n")).count(":float") == 1
    reads_them = source + "from functools import singledispatch\n"
    assert ":float" in minify(reads_them)


def test_local_annotations_go_but_a_nested_dataclass_keeps_its_fields():
    from leanlambda.minify import minify

    source = (
        "from __future__ import annotations\n"
        "import dataclasses\n"
        "def build():\n"
        "    total: int = 0\n"
        "    @dataclasses.dataclass\n"
        "    class Point:\n"
        "        x: int = 1\n"
        "    return Point(), total\n"
    )
    stripped = minify(source)
    assert "\n total=0\n" in stripped
    assert "\n  x:int=1\n" in stripped
    namespace = {}
    exec(compile(stripped, "stripped.py", "exec"), namespace)
    point, total = namespace["build"]()
    assert (point.x, total) == (1, 0)


SPACED = textwrap.dedent(
    '''\
    from __future__ import annotations

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from typing import Any

    BANNER = """
        kept:   as written
    """


    def describe(values: list[Any], width: int = 8) -> str:
        total = sum(value * 2 for value in values if value is not None)
        if total > -1 and 1 .real:
            return f"{total:>{width}} | {'a  b'} | {BANNER!r}"
        return r"raw  \\d" + b"x".decode()


    def fail():
        raise ValueError("line 20")
    '''
)


def test_shipped_code_drops_spaces_and_indents_the_parser_ignores():
    from leanlambda.minify import minify

    shipped = minify(SPACED)
    assert "\n total=sum(value*2 for value in values if value is not None)\n" in shipped
    assert "\n  return f\"{total:>{width}} | {'a  b'} | {BANNER!r}\"\n" in shipped
    assert '\n return r"raw  \\d"+b"x".decode()\n' in shipped
    assert "1 .real" in shipped
    assert "TYPE_CHECKING" not in shipped and "__future__" not in shipped
    assert len(shipped.splitlines()) == len(SPACED.splitlines())
    assert len(shipped) < len(SPACED) * 0.75


def test_shipped_code_keeps_string_contents_results_and_line_numbers():
    from leanlambda.minify import minify

    original, shipped = {}, {}
    exec(compile(SPACED, "original.py", "exec"), original)
    exec(compile(minify(SPACED), "shipped.py", "exec"), shipped)
    assert shipped["BANNER"] == original["BANNER"]
    for values in ([1, 2, None], [], [-3]):
        assert shipped["describe"](values) == original["describe"](values)
    try:
        shipped["fail"]()
    except ValueError as error:
        assert error.__traceback__.tb_next.tb_lineno == 20


def test_spacing_that_changes_meaning_is_kept():
    from leanlambda.minify import compact_spaces, reindent

    compacted = compact_spaces("x = 1\ny = x if x else -x\nz = x< -y\n")
    assert "\ny=x if x else-x\n" in compacted and "\nz=x< -y\n" in compacted
    assert compact_spaces("def broken(:\n") == "def broken(:\n"
    nested = "if x:\n    y = '''\n    kept\n    '''\n"
    assert reindent(nested) == "if x:\n y = '''\n    kept\n    '''\n"
    assert reindent("def broken(:\n") == "def broken(:\n"
