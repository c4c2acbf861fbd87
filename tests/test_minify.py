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


# ------------------------------------------- readers in another module (issue 14): the package decides
def _stage_and_run(tmp_path, files: dict[str, str], probe: str) -> tuple[str, list[str]]:
    """Stage a package the way `leanlambda package` does, then run ``probe`` against the shipped copy."""
    import subprocess
    import sys

    from leanlambda.packaging import stage_source_with_notes

    src = tmp_path / "src"
    for relative, text in files.items():
        (src / relative).parent.mkdir(parents=True, exist_ok=True)
        (src / relative).write_text(textwrap.dedent(text))
    staged, notes = stage_source_with_notes(src, tmp_path / "staged")
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, sys.argv[1])\n{probe}", str(staged)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip(), notes


def test_annotations_read_by_singledispatch_in_another_module_are_kept(tmp_path):
    handlers = """\
        from __future__ import annotations


        def on_int(value: int) -> str:
            return f"int {value}"


        def on_str(value: str) -> str:
            return f"str {value}"
        """
    dispatch = """\
        from functools import singledispatch

        from . import handlers


        @singledispatch
        def describe(value):
            return "other"


        describe.register(handlers.on_int)
        describe.register(handlers.on_str)
        """
    out, notes = _stage_and_run(
        tmp_path,
        {"app/__init__.py": "", "app/handlers.py": handlers, "app/dispatch.py": dispatch},
        "from app.dispatch import describe; print(describe(7), '|', describe('x'))",
    )
    assert out == "int 7 | str x"
    assert any("annotations" in note and "app/dispatch.py" in note for note in notes), notes
    assert "value: int" in (tmp_path / "staged" / "app" / "handlers.py").read_text().replace(":", ": ")


def test_docstrings_read_through_doc_are_kept(tmp_path):
    commands = '''\
        def report():
            """Daily report.

            Sends the totals.
            """
            return 1
        '''
    menu = """\
        from .commands import report

        TITLE = report.__doc__.splitlines()[0]
        """
    out, notes = _stage_and_run(
        tmp_path,
        {"app/__init__.py": "", "app/commands.py": commands, "app/menu.py": menu},
        "from app.menu import TITLE; print(TITLE)",
    )
    assert out == "Daily report."
    assert any("docstrings" in note and "app/menu.py" in note for note in notes), notes


def test_a_package_with_no_reader_still_loses_docstrings_and_annotations(tmp_path):
    source = '''\
        from __future__ import annotations


        def total(values: list[int]) -> int:
            """Sum them."""
            return sum(values)
        '''
    out, notes = _stage_and_run(
        tmp_path,
        {"app/__init__.py": "", "app/calc.py": source},
        "from app.calc import total; print(total([1, 2]))",
    )
    shipped = (tmp_path / "staged" / "app" / "calc.py").read_text()
    assert out == "3" and notes == []
    assert "Sum them" not in shipped and "list[int]" not in shipped
