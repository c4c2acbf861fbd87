"""Install a layer's dependency closure for its target, and leave out what the Lambda runtime provides.

The Python runtimes ship boto3, botocore, s3transfer and jmespath in /var/runtime, so a layer never needs
them (pass keep_runtime_provided to pin your own, newer boto3). The runtime also carries botocore's own
dependencies python-dateutil, six and urllib3, but only in versions AWS picks for botocore; a layer package
that needs them (pandas needs python-dateutil, requests needs urllib3) must not depend on that accident, so
those three are left out only when nothing kept in the layer requires them.
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
from leanlambda.layer.target import Target

ALWAYS_PROVIDED = frozenset({"boto3", "botocore", "s3transfer", "jmespath"})
PROVIDED_IF_UNNEEDED = frozenset({"python-dateutil", "six", "urllib3"})
RUNTIME_PROVIDED = ALWAYS_PROVIDED | PROVIDED_IF_UNNEEDED
PIP_TIMEOUT_S = 1800
PIP_ERROR_LINES = 3


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


def pip_install(target: Target, requirements: Path, dest: Path, python: str | None = None) -> list[Dist]:
    """pip install --target dest for the target's platform tags only; return what pip resolved."""
    report = dest.parent / f".{dest.name}-pip-report.json"
    command = [python or sys.executable, "-m", "pip", "install", "--target", str(dest), "--no-compile",
               "--no-input", "--disable-pip-version-check", "--no-warn-script-location",
               *target.pip_target_args(), "--report", str(report), "-r", str(requirements)]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, env=env,
                              check=False)
    except subprocess.TimeoutExpired:
        raise UsageError(f"pip did not finish within {PIP_TIMEOUT_S} s") from None
    if done.returncode != 0:
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
    """The installed distributions the runtime provides and nothing kept in the layer needs."""
    edges = _edges(dists, target)
    dropped = {dist.name for dist in dists if dist.name in RUNTIME_PROVIDED}
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
    lines = [f"# leanlambda layer: resolved for {target.describe()}",
             "# pip install --no-deps --only-binary=:all: -r requirements.lock (with the same platform tags)"]
    lines += [f"{dist.name}=={dist.version}" for dist in sorted(kept, key=lambda d: d.name)]
    if dropped:
        lines.append("# left out, provided by the Lambda runtime:")
        lines += [f"#   {dist.name}=={dist.version}" for dist in sorted(dropped, key=lambda d: d.name)]
    elif keep_provided:
        lines.append("# runtime-provided packages kept on request (--keep-runtime-provided)")
    return "\n".join(lines) + "\n"
