"""Re-bake every example from its recorded answers and refresh its template-owned files.

    python examples/regenerate.py           # copy template-owned files over the examples
    python examples/regenerate.py --check   # change nothing; exit 1 listing drifted files

An example is a folder under examples/ holding ``.cookiecutter.json`` (the answers it was
generated with). Its *user-owned* files are those its ``pyproject.toml`` lists under
``[tool.cruft] skip``, read and matched as cruft does by ``leanlambda.template_contract``
(``user_owned_entries``, ``is_user_owned``). Every other file is
*template-owned* and must be byte-identical to a fresh bake of the template with those
answers: this script makes it so, and ``tests/test_examples.py`` checks it with ``drift()``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath

from leanlambda.function import ANSWERS_FILE
from leanlambda.template_contract import is_user_owned, user_owned_entries

EXAMPLES = Path(__file__).resolve().parent
REPO = EXAMPLES.parent

# Files that tools write into a function folder; neither template- nor user-owned.
IGNORED_PARTS = frozenset(
    {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".venv", ".aws-sam", "build", "dist"}
)
IGNORED_SUFFIXES = (".pyc", ".pyo")
IGNORED_NAMES = frozenset({".DS_Store", ".coverage"})


def example_dirs(root: Path = EXAMPLES) -> list[Path]:
    """The example functions: folders under ``root`` holding recorded answers."""
    return sorted(path.parent for path in root.glob(f"*/{ANSWERS_FILE}"))


def recorded_answers(example: Path) -> dict[str, object]:
    """The answers to bake with: the recorded ones, without cookiecutter's private ``_`` keys."""
    answers = json.loads((example / ANSWERS_FILE).read_text(encoding="utf-8"))
    return {key: value for key, value in answers.items() if not key.startswith("_")}


def _ignored(relative: PurePosixPath) -> bool:
    return (
        any(part in IGNORED_PARTS for part in relative.parts)
        or relative.name in IGNORED_NAMES
        or relative.name.endswith(IGNORED_SUFFIXES)
    )


def _files(root: Path) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() or path.is_symlink():
            relative = PurePosixPath(path.relative_to(root).as_posix())
            if not _ignored(relative):
                found[str(relative)] = path
    return found


def bake(answers: dict[str, object], output_dir: Path, template: Path = REPO) -> Path:
    """A fresh bake of ``template`` with ``answers``; returns the function folder."""
    from cookiecutter.main import cookiecutter

    return Path(
        cookiecutter(
            str(template),
            no_input=True,
            extra_context=answers,
            output_dir=str(output_dir),
            overwrite_if_exists=False,
            default_config={"replay_dir": str(output_dir.parent / "replay")},
        )
    )


class Drift:
    """How an example's template-owned files differ from a fresh bake."""

    def __init__(self, example: Path, changed: list[str], missing: list[str], extra: list[str]) -> None:
        self.example = example
        self.changed = changed  # differ from the bake
        self.missing = missing  # the bake has them, the example does not
        self.extra = extra  # template-owned by the skip list, but the bake no longer has them

    @property
    def files(self) -> list[str]:
        return sorted(self.changed + self.missing + self.extra)

    def __bool__(self) -> bool:
        return bool(self.files)

    def lines(self) -> list[str]:
        kinds = [("changed", self.changed), ("missing", self.missing), ("not in the template", self.extra)]
        return [f"{self.example.name}/{name}: {kind}" for kind, names in kinds for name in sorted(names)]


def compare(example: Path, baked: Path) -> Drift:
    """Compare an example with a fresh bake of its answers (``baked``), byte for byte."""
    skip = user_owned_entries(example)
    fresh = {name: path for name, path in _files(baked).items() if not is_user_owned(name, skip)}
    present = {name: path for name, path in _files(example).items() if not is_user_owned(name, skip)}
    changed = [
        name for name in fresh if name in present and present[name].read_bytes() != fresh[name].read_bytes()
    ]
    missing = [name for name in fresh if name not in present]
    extra = [name for name in present if name not in fresh]
    return Drift(example, changed, missing, extra)


def drift(example: Path, template: Path = REPO) -> Drift:
    """Bake the example's answers afresh (in a temporary folder) and compare."""
    with tempfile.TemporaryDirectory(prefix="leanlambda-regenerate-") as tmp:
        baked = bake(recorded_answers(example), Path(tmp) / "out", template)
        return compare(example, baked)


def regenerate(example: Path, template: Path = REPO) -> Drift:
    """Copy template-owned files of a fresh bake over the example; delete those it no longer has."""
    with tempfile.TemporaryDirectory(prefix="leanlambda-regenerate-") as tmp:
        baked = bake(recorded_answers(example), Path(tmp) / "out", template)
        found = compare(example, baked)
        for name in found.changed + found.missing:
            target = example / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(baked / name, target)
        for name in found.extra:
            (example / name).unlink()
            parent = (example / name).parent
            while parent != example and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent
        return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 listing drifted files")
    parser.add_argument("examples", nargs="*", type=Path, help="example folders (default: all)")
    args = parser.parse_args(argv)
    examples = [path.resolve() for path in args.examples] or example_dirs()
    drifted = False
    for example in examples:
        found = drift(example) if args.check else regenerate(example)
        if found:
            drifted = True
            for line in found.lines():
                sys.stdout.write(("drift: " if args.check else "updated: ") + line + "\n")
        else:
            sys.stdout.write(f"ok: {example.name}\n")
    return 1 if args.check and drifted else 0


if __name__ == "__main__":
    sys.exit(main())
