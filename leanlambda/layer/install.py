"""Install a layer's dependency closure for its target, and leave out what the Lambda runtime provides.

The Python runtimes ship boto3, botocore, s3transfer and jmespath in /var/runtime, so a layer that only
needs them through its dependencies leaves them out. The runtime also carries botocore's own dependencies
python-dateutil, six and urllib3, but only in versions AWS picks for botocore; a layer package that needs
them (pandas needs python-dateutil, requests needs urllib3) must not depend on that accident, so those
three are left out only when nothing kept in the layer requires them. A runtime-provided package that the
requirements name themselves (`boto3==1.40.0`) is kept: explicit beats implicit, and it shadows the
runtime's copy (the layer's /opt/python comes first on sys.path).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import InvalidRequirement, Requirement

from leanlambda.errors import UsageError
from leanlambda.imports import top_level_module
from leanlambda.layer.target import Target
from leanlambda.limits import RUNTIME_SDK_DEPENDENCIES, RUNTIME_SDK_DISTRIBUTIONS

ALWAYS_PROVIDED = frozenset(RUNTIME_SDK_DISTRIBUTIONS)
PROVIDED_IF_UNNEEDED = frozenset(RUNTIME_SDK_DEPENDENCIES)
RUNTIME_PROVIDED = ALWAYS_PROVIDED | PROVIDED_IF_UNNEEDED
PIP_TIMEOUT_S = 1800
PIP_PROBE_TIMEOUT_S = 120
PIP_ERROR_LINES = 3
_NO_MATCH_RE = re.compile(r"No matching distribution found for (\S+)")
_AVAILABLE_RE = re.compile(r"^Available versions: (.+)$", re.MULTILINE)
_INDEX_VERSION_RE = re.compile(r"^(\S+) \((\S+)\)$", re.MULTILINE)


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Dist:
    name: str  # canonical
    version: str
    requires: list[str] = field(default_factory=list)
    requested: bool = False
    requested_extras: list[str] = field(default_factory=list)


def shadowing(dists: list[Dist]) -> list[Dist]:
    """Runtime-provided packages the requirements name explicitly: kept, and shadowing the runtime's copy."""
    return [dist for dist in dists if dist.requested and dist.name in RUNTIME_PROVIDED]


def pip_install(
    target: Target, requirements: Path, dest: Path, python: str | None = None, find_links: Path | None = None
) -> list[Dist]:
    """pip install --target dest for the target's platform tags only; return what pip resolved.

    requirements must hold checked specifiers only (leanlambda.layer.requirements); find_links is the
    builder's own directory of pure wheels built from allow_pure_sdist packages."""
    report = dest.parent / f".{dest.name}-pip-report.json"
    extra = ["--no-warn-script-location", "--report", str(report)]
    if find_links is not None:
        extra += ["--find-links", str(find_links)]
    command = target.pip_install_command(
        dest, ["-r", str(requirements)], python=python, quiet=False, extra=extra
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        raise UsageError(f"pip did not finish within {PIP_TIMEOUT_S} s") from None
    if done.returncode != 0:
        missing = _NO_MATCH_RE.search(done.stderr)
        if missing:
            raise UsageError(_explain_no_match(missing.group(1), target, python or sys.executable))
        errors = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        wanted = [line for line in errors if line.startswith("ERROR")] or errors
        detail = " | ".join(wanted[:PIP_ERROR_LINES]) or f"pip exited with {done.returncode}"
        raise UsageError(f"pip could not install {requirements} for {target.runtime} {target.arch}: {detail}")
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    finally:
        report.unlink(missing_ok=True)
    return [
        Dist(
            name=canonical(item["metadata"]["name"]),
            version=item["metadata"]["version"],
            requires=list(item["metadata"].get("requires_dist") or []),
            requested=bool(item.get("requested")),
            requested_extras=[canonical(extra) for extra in item.get("requested_extras") or []],
        )
        for item in data.get("install", [])
    ]


def _explain_no_match(requirement: str, target: Target, python: str) -> str:
    """Tell "no such package" from "no wheel for this target": ask the index about the project, sdists
    included (pip index reads the project's page only; nothing is downloaded or built)."""
    name = re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0]
    command = [
        python,
        "-m",
        "pip",
        "index",
        "versions",
        name,
        "--disable-pip-version-check",
        "--no-input",
        "--python-version",
        target.python_version,
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_PROBE_TIMEOUT_S, check=False
        )
        found = _INDEX_VERSION_RE.search(done.stdout) if done.returncode == 0 else None
    except subprocess.TimeoutExpired:
        found = None
    where = f"{target.runtime} manylinux {target.arch}"
    if found is None:
        return f"no such package: {name} (the package index has no project of that name; check the spelling)"
    listed = _AVAILABLE_RE.search(done.stdout)
    versions = [version.strip() for version in listed.group(1).split(",")] if listed else []
    try:
        specifier = Requirement(requirement).specifier
    except InvalidRequirement:
        specifier = None
    if (
        specifier
        and versions
        and not any(specifier.contains(version, prereleases=True) for version in versions)
    ):
        return (
            f"no release of {name} matches {specifier} for {target.runtime} (newest on the index: "
            f"{found.group(2)})"
        )
    return (
        f"no wheel for {where} matching {requirement} (only an sdist, or wheels for other platforms; "
        f"newest on the index: {found.group(1)} {found.group(2)}); if it is pure Python, list it in "
        f"layer.toml's allow_pure_sdist"
    )


def build_pure_wheels(names: tuple[str, ...], requirements: Path, wheel_dir: Path, python: str) -> None:
    """Build the sdists of the allow_pure_sdist packages into wheels; refuse any that is not pure Python.

    The sdist's build runs here (that is what the opt-in allows); the wheel it gives is only accepted when
    it is tagged for any platform (`none-any`), so no build-machine code can reach the layer.
    """
    wanted = {canonical(name) for name in names}
    lines = [
        line
        for line in requirements.read_text(encoding="utf-8").splitlines()
        if line and canonical(Requirement(line.split(" --hash")[0]).name) in wanted
    ]
    missing = wanted - {canonical(Requirement(line.split(" --hash")[0]).name) for line in lines}
    if missing:
        raise UsageError(
            f"allow_pure_sdist names {', '.join(sorted(missing))}, which the requirements do not list"
        )
    wheel_dir.mkdir(parents=True, exist_ok=True)
    for line in lines:
        command = [
            python,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-input",
            "--disable-pip-version-check",
            "--no-binary",
            Requirement(line.split(" --hash")[0]).name,
            "--wheel-dir",
            str(wheel_dir),
            line.split(" --hash")[0],
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        if done.returncode != 0:
            errors = [text.strip() for text in done.stderr.splitlines() if text.startswith("ERROR")]
            raise UsageError(
                f"could not build {line} from its sdist: "
                f"{' | '.join(errors[:PIP_ERROR_LINES]) or done.returncode}"
            )
    check_pure_wheels(wheel_dir)


def check_pure_wheels(wheel_dir: Path) -> None:
    """Refuse any wheel in wheel_dir that is not tagged for every platform (`none-any`)."""
    for wheel in sorted(wheel_dir.glob("*.whl")):
        if not wheel.name.endswith("-none-any.whl"):
            raise UsageError(
                f"allow_pure_sdist: {wheel.name} is not pure Python (built for this machine's "
                "platform), so it cannot go into a Lambda layer"
            )


def _edges(dists: list[Dist], target: Target) -> dict[str, set[str]]:
    """name -> names it needs on the target. Extras count when anyone asks for them (keeps more, safely)."""
    installed = {dist.name for dist in dists}
    parsed: dict[str, list[Requirement]] = {}
    extras: dict[str, set[str]] = {dist.name: set(dist.requested_extras) for dist in dists}
    for dist in dists:
        parsed[dist.name] = []
        for text in dist.requires:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            parsed[dist.name].append(requirement)
            wanted = extras.setdefault(canonical(requirement.name), set())
            wanted.update(canonical(extra) for extra in requirement.extras)
    environment = target.marker_environment()
    edges: dict[str, set[str]] = {}
    for dist in dists:
        needed = set()
        for requirement in parsed[dist.name]:
            name = canonical(requirement.name)
            if name in installed and _active(requirement.marker, environment, extras[dist.name]):
                needed.add(name)
        edges[dist.name] = needed
    return edges


def _active(marker: Marker | None, environment: dict[str, str], extras: set[str]) -> bool:
    if marker is None:
        return True
    return any(marker.evaluate({**environment, "extra": extra}) for extra in ("", *sorted(extras)))


def runtime_provided_to_drop(dists: list[Dist], target: Target) -> set[str]:
    """The installed distributions the runtime provides, that the requirements do not name themselves and
    that nothing kept in the layer needs."""
    edges = _edges(dists, target)
    dropped = {dist.name for dist in dists if dist.name in RUNTIME_PROVIDED and not dist.requested}
    changed = True
    while changed:
        changed = False
        for name, needs in edges.items():
            if name in dropped:
                continue
            for needed in needs & dropped:
                if needed in PROVIDED_IF_UNNEEDED:
                    dropped.discard(needed)
                    changed = True
    return dropped


def companion_parents(site: Path, dists: list[Dist], target: Target) -> dict[str, list[str]]:
    """top-level module -> the top-level modules of the distributions that depend on its distribution
    (read from each RECORD, so call it before slimming): where a companion such as psycopg_binary, whose
    import needs psycopg first, is proved."""
    modules: dict[str, set[str]] = {}
    for name, info in dist_info_dirs(site).items():
        record = info / "RECORD"
        if record.is_file():
            lines = record.read_text(encoding="utf-8").splitlines()
            entries = {line.split(",", 1)[0].partition("/") for line in lines}
            tops = (top_level_module(top, bool(slash)) for top, slash, _rest in entries)
            modules[name] = {top for top in tops if top is not None}
    edges = _edges(dists, target)
    parents: dict[str, list[str]] = {}
    for dependant, needs in sorted(edges.items()):
        for needed in sorted(needs):
            for module in sorted(modules.get(needed, ())):
                for parent in sorted(modules.get(dependant, ())):
                    if parent != module and parent not in parents.setdefault(module, []):
                        parents[module].append(parent)
    return parents


def dist_info_dirs(site: Path) -> dict[str, Path]:
    """canonical name -> its .dist-info directory in site."""
    found = {}
    for info in site.glob("*.dist-info"):
        metadata = info / "METADATA"
        if metadata.is_file():
            headers = HeaderParser().parsestr(metadata.read_text(encoding="utf-8", errors="replace"))
            if headers.get("Name"):
                found[canonical(headers["Name"])] = info
    return found


def remove_dist(site: Path, info: Path) -> None:
    """Delete every file a distribution installed (its RECORD), then its empty directories."""
    record = info / "RECORD"
    site = site.resolve()
    directories = {info}
    if record.is_file():
        for line in record.read_text(encoding="utf-8").splitlines():
            relative = line.rsplit(",", 2)[0] if line.count(",") >= 2 else line
            if not relative:
                continue
            path = (site / relative).resolve()
            if site not in path.parents:
                continue  # scripts outside the layer's python/ dir: never ours to touch
            path.unlink(missing_ok=True)
            directories.update(parent for parent in path.parents if site in parent.parents)
    for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        pycache = directory / "__pycache__"
        if pycache.is_dir():
            shutil.rmtree(pycache)
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    if info.is_dir():
        shutil.rmtree(info)


def lock_text(target: Target, kept: list[Dist], dropped: list[Dist], keep_provided: bool) -> str:
    """The frozen list: exactly what the layer holds, so the build can be repeated with --no-deps."""
    lines = [
        f"# leanlambda layer: resolved for {target.describe()}",
        "# pip install --no-deps --only-binary=:all: -r requirements.lock (with the same platform tags)",
    ]
    lines += [f"{dist.name}=={dist.version}" for dist in sorted(kept, key=lambda d: d.name)]
    for dist in shadowing(kept):
        lines.append(
            f"# {dist.name}=={dist.version} is named in the requirements: it shadows the runtime's copy"
        )
    if dropped:
        lines.append("# left out, provided by the Lambda runtime:")
        lines += [f"#   {dist.name}=={dist.version}" for dist in sorted(dropped, key=lambda d: d.name)]
    elif keep_provided:
        lines.append("# runtime-provided packages kept on request (--keep-runtime-provided)")
    return "\n".join(lines) + "\n"
