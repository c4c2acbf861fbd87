"""Read a layer's requirements.txt as requirement specifiers only, never as pip options.

pip reads a requirements file as part of its command line: a `--no-binary pkg`, `--no-index`,
`--find-links`, `-e`, `-r`/`-c`, `--index-url`, a URL or a local path in it overrides what the builder
asks for (`--only-binary=:all:` for the target's platform), so a package's setup.py would run on the build
machine and a build-machine `.so` would ship in the layer. The layer accepts names, versions, extras,
markers and `--hash` options; anything else is refused with one line naming the line. pip is then given a
copy holding exactly the accepted lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from leanlambda.errors import UsageError

_HASH_RE = re.compile(r"^--hash[=\s]\s*(sha256|sha384|sha512):[0-9a-fA-F]+$")
# pip reads a "name" with one of these endings as a local archive file.
ARCHIVE_SUFFIXES = (".whl", ".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz")
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")


@dataclass(frozen=True)
class Line:
    number: int
    text: str  # the line as pip will read it: specifier and any --hash options
    requirement: Requirement


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) with comments removed and backslash continuations joined, as pip does."""
    lines: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        joined = _COMMENT_RE.sub("", pending + raw).strip()
        pending = ""
        if joined:
            lines.append((start, joined))
    if pending.strip():
        lines.append((start, _COMMENT_RE.sub("", pending).strip()))
    return lines


def _split_hashes(text: str) -> tuple[str, list[str]] | None:
    """The specifier and its --hash options, or None if anything else option-like is on the line."""
    parts = re.split(r"\s+(?=--)", text)
    specifier, options = parts[0], parts[1:]
    if all(_HASH_RE.match(option) for option in options):
        return specifier, options
    return None


def read_requirements(path: Path) -> list[Line]:
    """Every requirement in path; a UsageError naming the first line that is not a plain specifier."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    accepted = []
    for number, line in _logical_lines(text):
        where = f"{path}:{number}"
        if line.startswith("-"):
            option = line.split()[0].split("=")[0]
            raise UsageError(
                f"{where}: pip option {option} is not accepted in a layer's requirements "
                f"(names, versions, extras, markers and --hash only): {line}"
            )
        split = _split_hashes(line)
        if split is None:
            raise UsageError(f"{where}: only --hash may follow a requirement, not: {line}")
        specifier, hashes = split
        try:
            requirement = Requirement(specifier)
        except InvalidRequirement:
            raise UsageError(
                f"{where}: not a requirement specifier (URLs and paths are not accepted): {line}"
            ) from None
        if requirement.url or requirement.name.lower().endswith(ARCHIVE_SUFFIXES):
            raise UsageError(
                f"{where}: URLs and paths are not accepted (name the package and its version): {line}"
            )
        accepted.append(Line(number, " ".join([specifier, *hashes]), requirement))
    if not accepted:
        raise UsageError(f"{path}: no requirements (the layer would be empty)")
    return accepted


def write_checked_copy(lines: list[Line], destination: Path) -> Path:
    """The accepted lines, one per line: the only requirements file pip is ever given."""
    destination.write_text("".join(f"{line.text}\n" for line in lines), encoding="utf-8")
    return destination
