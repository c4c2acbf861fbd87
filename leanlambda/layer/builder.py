"""Build a layer: install for the target, leave out the runtime's packages, slim, lock, zip, measure, prove.

Everything is built in a scratch directory beside the output and moved into place at the end, so bad
input or a failed install never leaves a half-written build behind. Output (default LAYER_DIR/build):

    layer/python/...          the layer's tree, as it unpacks under /opt
    layer/requirements.lock   the frozen, resolved list of what the layer holds
    <name>.zip                deterministic zip of layer/ (same inputs, same sha256)
    layer-build.json          sizes, sha256, packages, slimming, verification and cold start, for tools

Exit statuses of `leanlambda layer` (check_build): 0 built and proved; 1 over a Lambda limit or the proof
failed; 2 bad input; 3 built but not proved (another architecture, or no interpreter of the runtime's
Python here), so that CI can require proof.
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
from leanlambda.interpreters import find_interpreter
from leanlambda.layer.coldstart import (
    COLD_IMPORT_RUNS,
    cold_import_medians,
    compile_seconds,
    naive_layer,
)
from leanlambda.layer.install import (
    Dist,
    build_pure_wheels,
    companion_parents,
    dist_info_dirs,
    lock_text,
    pip_install,
    remove_dist,
    runtime_provided_to_drop,
    shadowing,
)
from leanlambda.layer.requirements import read_requirements, write_checked_copy
from leanlambda.layer.runtime_sdk import runtime_sdk_path
from leanlambda.layer.settings import LayerSettings
from leanlambda.layer.slim import slim
from leanlambda.layer.target import Target, host_arch
from leanlambda.layer.verify import Verification, verify_layer
from leanlambda.limits import MIB, UNZIPPED_LIMIT_BYTES, ZIPPED_LIMIT_BYTES
from leanlambda.ziputil import write_deterministic_zip

REPORT_FILE = "layer-build.json"
LAYER_TREE = "layer"
SITE_DIR = "python"
LOCK_FILE = "requirements.lock"
STEPS = 6
PIP_REPORT_MIN = (22, 2)  # pip --report appeared in 22.2
SKIPPED = "verification skipped on request (--no-verify)"

Progress = Callable[[str], None]


class NotProved(CheckFailed):
    """The layer was built but nothing could prove it imports (exit 3, so CI can require proof)."""

    exit_code = 3


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
    shadowing: list[str] = field(default_factory=list)  # name==version kept over the runtime's own copy
    bytecode: bool = False
    cold_import_s: float | None = None  # median cold import of the top-level modules, read-only copy
    naive_cold_import_s: float | None = None  # the same for a naive `pip install -t` of the same pins
    cold_import_note: str = ""

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
        probe = subprocess.run(
            [python, "-m", "pip", "--version"], capture_output=True, text=True, check=False
        )
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


def build_layer(
    settings: LayerSettings,
    out_dir: Path | None = None,
    keep_runtime_provided: bool = False,
    progress: Progress = stderr_progress,
    verify: bool = True,
    measure: bool = True,
) -> LayerBuild:
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
        checked = write_checked_copy(
            read_requirements(settings.requirements), scratch / "requirements.checked"
        )
        bytecode_python = _bytecode_python(settings)
        progress(f"[1/{STEPS}] installing {settings.requirements} for {target.describe()}")
        pip_python = _pip_python(settings, progress)
        wheels = None
        if settings.allow_pure_sdist:
            wheels = scratch / "pure-wheels"
            progress(
                f"[1/{STEPS}] building pure-Python wheels from the sdists of "
                f"{', '.join(settings.allow_pure_sdist)} (allow_pure_sdist)"
            )
            build_pure_wheels(settings.allow_pure_sdist, checked, wheels, pip_python)
        dists = pip_install(target, checked, site, pip_python, find_links=wheels)
        parents = companion_parents(site, dists, target)
        dropped_names = set() if keep_runtime_provided else runtime_provided_to_drop(dists, target)
        infos = dist_info_dirs(site)
        for name in sorted(dropped_names):
            if name in infos:
                remove_dist(site, infos[name])
        kept = [dist for dist in dists if dist.name not in dropped_names]
        dropped = [dist for dist in dists if dist.name in dropped_names]
        if not kept:
            raise UsageError(
                f"the layer would be empty: everything {settings.requirements} resolves to is "
                "provided by the Lambda runtime"
            )
        progress(
            f"[2/{STEPS}] {len(kept)} packages kept; left out as runtime-provided: "
            f"{', '.join(sorted(dropped_names)) or 'none'}"
        )
        for dist in shadowing(kept):
            progress(
                f"note: {dist.name}=={dist.version} is named in the requirements, so the layer ships it "
                "and it shadows the runtime's own copy"
            )
        saved = slim(
            site, strip_docstrings=settings.strip_docstrings, keep_docstrings=settings.keep_docstrings
        )
        progress(
            f"[3/{STEPS}] slimmed {mb(sum(saved.values()))}: "
            + (", ".join(f"{category} {mb(size)}" for category, size in saved.items()) or "nothing")
        )
        if bytecode_python:
            progress(
                f"[3/{STEPS}] compiling bytecode with Python {target.python_version} ({bytecode_python})"
            )
            compile_tree(site, target.python_version, LAYER_PYTHON_ROOT)
        elif settings.bytecode is False:
            progress(f"[3/{STEPS}] no bytecode (bytecode = false in layer.toml)")
        else:
            count, seconds = compile_seconds(site)
            progress(
                f"note: no bytecode: Python {target.python_version} (the runtime's) is not on this machine, "
                f"so each cold start compiles what it imports of these {count} modules (all of them "
                f"compile in {seconds:.2f} s here); install it (e.g. `pyenv install "
                f"{target.python_version}`) and build again"
            )
        (scratch / LAYER_TREE / LOCK_FILE).write_text(
            lock_text(target, kept, dropped, keep_runtime_provided), encoding="utf-8"
        )
        zip_path = scratch / f"{settings.name}.zip"
        progress(f"[4/{STEPS}] writing deterministic zip {out_dir / zip_path.name}")
        zipped, sha256 = write_deterministic_zip(
            scratch / LAYER_TREE, zip_path, keep_bytecode=bool(bytecode_python)
        )
        unzipped = _tree_bytes(scratch / LAYER_TREE)
        progress(f"[5/{STEPS}] sizes: {mb(unzipped)} unzipped, {mb(zipped)} zipped")
        result = LayerBuild(
            name=settings.name,
            runtime=target.runtime,
            arch=target.arch,
            out_dir=str(out_dir),
            zip_path=str(out_dir / zip_path.name),
            unzipped_bytes=unzipped,
            zipped_bytes=zipped,
            sha256=sha256,
            packages=_pins(kept),
            left_out=_pins(dropped),
            slimmed_bytes=saved,
            shadowing=_pins(shadowing(kept)),
            bytecode=bool(bytecode_python),
        )
        if verify:
            smoke = f" and running {len(settings.smoke)} smoke statements" if settings.smoke else ""
            progress(
                f"[6/{STEPS}] importing each top-level module{smoke} in a clean Python "
                f"{target.python_version}, then checking every shared object it loads"
            )
            result.verification = verify_layer(
                site, target, settings.skip_imports, smoke=settings.smoke, parents=parents
            )
        else:
            result.verification = Verification("unverified", SKIPPED)
        if measure and result.verification.status == "verified":
            progress(f"[6/{STEPS}] timing cold imports against a naive `pip install -t` of the same pins")
            _measure_cold_start(result, site, dists, target, scratch)
        (scratch / REPORT_FILE).write_text(json.dumps(asdict(result), indent=2) + "\n", encoding="utf-8")
        _move_into_place(scratch, out_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return result


def _bytecode_python(settings: LayerSettings) -> str | None:
    """The runtime's exact Python when the layer ships bytecode; None when it does not."""
    if settings.bytecode is False:
        return None
    python = find_interpreter(settings.target.python_version)
    if python is None and settings.bytecode:
        raise UsageError(
            f"bytecode = true needs Python {settings.target.python_version} (the runtime's) on "
            "this machine; none found"
        )
    return python


def _measure_cold_start(
    result: LayerBuild, site: Path, dists: list[Dist], target: Target, scratch: Path
) -> None:
    """Median cold import of the proved top-level modules, this layer and a naive one, read-only copies."""
    python = find_interpreter(target.python_version)
    verification = result.verification
    modules = [name for name in verification.modules if name not in verification.companions]
    if python is None or host_arch() != target.arch or not modules:
        return
    runtime, _ = runtime_sdk_path(target, scratch / "runtime-fallback")
    try:
        naive = naive_layer(_pins(dists), target, python, scratch / "naive" / SITE_DIR)
        medians = cold_import_medians({"naive": naive, "layer": site}, python, modules, runtime)
        result.naive_cold_import_s, result.cold_import_s = medians["naive"], medians["layer"]
        result.cold_import_note = (
            f"median of {COLD_IMPORT_RUNS} fresh `python{target.python_version} -I -S -B` processes each, "
            f"read-only copies, importing {', '.join(modules)}"
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        result.cold_import_note = f"not measured ({type(error).__name__})"
    finally:
        shutil.rmtree(scratch / "naive", ignore_errors=True)


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
    if result.verification.status == "unverified" and result.verification.reason != SKIPPED:
        raise NotProved(f"layer {result.name}: {result.verification.summary()}")


def report_lines(result: LayerBuild, limits: Limits = Limits()) -> list[str]:
    """The human summary printed on stdout."""

    def status(size: int, limit: int) -> str:
        return "ok" if size <= limit else "OVER"

    left_out = (
        ", ".join(result.left_out) + " (provided by the Lambda runtime)"
        if result.left_out
        else "nothing (no runtime-provided package in the closure that the layer can do without)"
    )
    if result.cold_import_s is not None and result.naive_cold_import_s is not None:
        cold = (
            f"{result.cold_import_s:.2f} s, naive `pip install -t` {result.naive_cold_import_s:.2f} s "
            f"({result.cold_import_note})"
        )
    else:
        cold = result.cold_import_note or "not measured (the layer was not proved here)"
    lines = [
        f"layer      {result.name} ({result.runtime}, {result.arch})",
        f"packages   {len(result.packages)}: {', '.join(result.packages)}",
        f"left out   {left_out}",
        *(
            f"shadows    {pin} (named in the requirements: shadows the runtime's copy)"
            for pin in result.shadowing
        ),
        f"bytecode   {'yes' if result.bytecode else 'no'}",
        f"cold start {cold}",
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
