"""Build a layer: install for the target, leave out the runtime's packages, slim, lock, zip, measure, prove.

Everything is built in a scratch directory beside the output and moved into place at the end, so bad
input or a failed install never leaves a half-written build behind. Output (default LAYER_DIR/build):

    layer/python/...          the layer's tree, as it unpacks under /opt
    layer/requirements.lock   the frozen, resolved list of what the layer holds
    <name>.zip                deterministic zip of layer/ (same inputs, same sha256)
    layer-build.json          sizes, sha256, packages, slimming and verification, for tools
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from leanlambda.bytecode import LAYER_PYTHON_ROOT, compile_tree
from leanlambda.errors import CheckFailed, UsageError
from leanlambda.layer.install import (
    Dist,
    dist_info_dirs,
    lock_text,
    pip_install,
    remove_dist,
    runtime_provided_to_drop,
)
from leanlambda.layer.settings import LayerSettings
from leanlambda.layer.slim import slim
from leanlambda.layer.verify import Verification, find_interpreter, verify_layer
from leanlambda.limits import MIB, UNZIPPED_LIMIT_BYTES, ZIPPED_LIMIT_BYTES
from leanlambda.ziputil import write_deterministic_zip

REPORT_FILE = "layer-build.json"
LAYER_TREE = "layer"
SITE_DIR = "python"
LOCK_FILE = "requirements.lock"
STEPS = 6
PIP_REPORT_MIN = (22, 2)  # pip --report appeared in 22.2

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    sys.stderr.write(f"leanlambda layer: {message}\n")
    sys.stderr.flush()


@dataclass(frozen=True)
class Limits:
    unzipped_bytes: int = UNZIPPED_LIMIT_BYTES
    zipped_bytes: int = ZIPPED_LIMIT_BYTES


@dataclass
class LayerBuild:
    name: str
    runtime: str
    arch: str
    out_dir: str
    zip_path: str
    unzipped_bytes: int
    zipped_bytes: int
    sha256: str
    packages: list[str] = field(default_factory=list)  # name==version, what the layer holds
    left_out: list[str] = field(default_factory=list)  # name==version, provided by the runtime
    slimmed_bytes: dict[str, int] = field(default_factory=dict)
    verification: Verification = field(default_factory=lambda: Verification("unverified", "not run"))

    @property
    def site(self) -> Path:
        return Path(self.out_dir) / LAYER_TREE / SITE_DIR


def mb(size: int) -> str:
    """Sizes in MB of 1024*1024 bytes, as Lambda's limits are (250 MB = 262,144,000 bytes)."""
    return f"{size / MIB:.1f} MB" if size >= MIB / 10 else f"{size / 1024:.0f} KB"


def _tree_bytes(root: Path) -> int:
    return sum(path.stat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink())


def _check_out_dir(out_dir: Path, source_dir: Path) -> None:
    out, source = out_dir.resolve(), source_dir.resolve()
    if out == source or out in source.parents:
        raise UsageError(f"--out {out_dir} would replace the layer's own directory; choose another")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / REPORT_FILE).is_file())):
        raise UsageError(f"--out {out_dir} exists and is not a leanlambda layer build; choose a new one")


def _pip_python(settings: LayerSettings, progress: Progress) -> str:
    """Markers (python_version < "3.12") are read against the Python running pip, so prefer the target's."""
    version = settings.target.python_version
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        return sys.executable
    python = find_interpreter(version)
    if python:
        probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, text=True,
                               check=False)
        words = probe.stdout.split()
        if probe.returncode == 0 and len(words) > 1:
            pip_version = tuple(int(part) for part in words[1].split(".")[:2] if part.isdigit())
            if pip_version >= PIP_REPORT_MIN:
                return python
    progress(f"note: no Python {version} with pip here; dependency markers are read for this Python")
    return sys.executable


def _move_into_place(scratch: Path, out_dir: Path) -> None:
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        out_dir.rename(old)
    scratch.rename(out_dir)
    if old.exists():
        shutil.rmtree(old)


def build_layer(settings: LayerSettings, out_dir: Path | None = None, keep_runtime_provided: bool = False,
                progress: Progress = stderr_progress, verify: bool = True) -> LayerBuild:
    """Build, measure and prove the layer; the limits are checked separately by check_build."""
    target = settings.target
    out_dir = Path(out_dir) if out_dir else settings.source_dir / "build"
    _check_out_dir(out_dir, settings.source_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = out_dir.with_name(f".{out_dir.name}.building-{os.getpid()}")
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        site = scratch / LAYER_TREE / SITE_DIR
        site.mkdir(parents=True)
        progress(f"[1/{STEPS}] installing {settings.requirements} for {target.describe()}")
        dists = pip_install(target, settings.requirements, site, _pip_python(settings, progress))
        dropped_names = set() if keep_runtime_provided else runtime_provided_to_drop(dists, target)
        infos = dist_info_dirs(site)
        for name in sorted(dropped_names):
            if name in infos:
                remove_dist(site, infos[name])
        kept = [dist for dist in dists if dist.name not in dropped_names]
        dropped = [dist for dist in dists if dist.name in dropped_names]
        progress(f"[2/{STEPS}] {len(kept)} packages kept; left out as runtime-provided: "
                 f"{', '.join(sorted(dropped_names)) or 'none'}")
        saved = slim(
            site, strip_docstrings=settings.strip_docstrings, keep_docstrings=settings.keep_docstrings
        )
        progress(f"[3/{STEPS}] slimmed {mb(sum(saved.values()))}: "
                 + (", ".join(f"{category} {mb(size)}" for category, size in saved.items()) or "nothing"))
        if settings.bytecode:
            progress(f"[3/{STEPS}] compiling bytecode with Python {target.python_version}")
            compile_tree(site, target.python_version, LAYER_PYTHON_ROOT)
        (scratch / LAYER_TREE / LOCK_FILE).write_text(
            lock_text(target, kept, dropped, keep_runtime_provided), encoding="utf-8")
        zip_path = scratch / f"{settings.name}.zip"
        progress(f"[4/{STEPS}] writing deterministic zip {out_dir / zip_path.name}")
        zipped, sha256 = write_deterministic_zip(
            scratch / LAYER_TREE, zip_path, keep_bytecode=settings.bytecode
        )
        unzipped = _tree_bytes(scratch / LAYER_TREE)
        progress(f"[5/{STEPS}] sizes: {mb(unzipped)} unzipped, {mb(zipped)} zipped")
        result = LayerBuild(
            name=settings.name, runtime=target.runtime, arch=target.arch, out_dir=str(out_dir),
            zip_path=str(out_dir / zip_path.name), unzipped_bytes=unzipped, zipped_bytes=zipped,
            sha256=sha256, packages=_pins(kept), left_out=_pins(dropped), slimmed_bytes=saved,
        )
        if verify:
            smoke = (f" and running {len(settings.smoke)} smoke statements" if settings.smoke else "")
            progress(f"[6/{STEPS}] importing each top-level module{smoke} in a clean Python "
                     f"{target.python_version}")
            result.verification = verify_layer(site, target, settings.skip_imports, smoke=settings.smoke)
        else:
            result.verification = Verification("unverified", "verification skipped on request")
        (scratch / REPORT_FILE).write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
        _move_into_place(scratch, out_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def _pins(dists: list[Dist]) -> list[str]:
    return [f"{dist.name}=={dist.version}" for dist in sorted(dists, key=lambda d: d.name)]


def check_build(result: LayerBuild, limits: Limits = Limits()) -> None:
    """Raise CheckFailed when the layer is over a Lambda limit or one of its modules does not import."""
    problems = []
    if result.unzipped_bytes > limits.unzipped_bytes:
        problems.append(f"unzipped {mb(result.unzipped_bytes)} is over the {mb(limits.unzipped_bytes)} limit")
    if result.zipped_bytes > limits.zipped_bytes:
        problems.append(f"zipped {mb(result.zipped_bytes)} is over the {mb(limits.zipped_bytes)} limit")
    if result.verification.status == "failed":
        problems.append(result.verification.summary())
    if problems:
        raise CheckFailed(f"layer {result.name}: " + "; ".join(problems))


def report_lines(result: LayerBuild, limits: Limits = Limits()) -> list[str]:
    """The human summary printed on stdout."""
    def status(size: int, limit: int) -> str:
        return "ok" if size <= limit else "OVER"

    left_out = (", ".join(result.left_out) + " (provided by the Lambda runtime)" if result.left_out
                else "nothing (no runtime-provided package in the closure that the layer can do without)")
    lines = [
        f"layer      {result.name} ({result.runtime}, {result.arch})",
        f"packages   {len(result.packages)}: {', '.join(result.packages)}",
        f"left out   {left_out}",
        f"unzipped   {mb(result.unzipped_bytes):>9} of {mb(limits.unzipped_bytes)} (function + all layers)"
        f"  {status(result.unzipped_bytes, limits.unzipped_bytes)}",
        f"zipped     {mb(result.zipped_bytes):>9} of {mb(limits.zipped_bytes)} (direct upload)"
        f"  {status(result.zipped_bytes, limits.zipped_bytes)}",
        f"slimmed    {mb(sum(result.slimmed_bytes.values()))}",
        f"zip        {result.zip_path}",
        f"sha256     {result.sha256}",
        f"imports    {result.verification.summary()}",
    ]
    return lines
