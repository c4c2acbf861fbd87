"""`leanlambda layer`: build a small, correct, deterministic Lambda layer and prove it imports."""

from __future__ import annotations

import argparse
from pathlib import Path

from leanlambda.errors import UsageError
from leanlambda.layer import Limits, build_layer, check_build, load_settings, report_lines
from leanlambda.layer.target import ARCH_MACHINE, RUNTIME_GLIBC
from leanlambda.limits import DEFAULT_RUNTIME, MIB, UNZIPPED_LIMIT_BYTES, ZIPPED_LIMIT_BYTES

DESCRIPTION = """\
Build a Lambda layer from LAYER_DIR/requirements.txt (defaults in LAYER_DIR/layer.toml).
Installs the full dependency closure from manylinux wheels for the target runtime and architecture
(never the build machine's platform), leaves out what the Lambda runtime provides when only a dependency
needs it (boto3, botocore, s3transfer, jmespath; python-dateutil, six and urllib3 only when nothing in
the layer needs them; one the requirements name is kept and shadows the runtime's copy), removes test
suites, stray bytecode, type stubs, C sources and unneeded symbol tables, ships bytecode compiled by the
runtime's exact Python when that Python is on this machine, writes requirements.lock and a deterministic
zip, reports the sizes against Lambda's limits and the median cold import next to a naive
`pip install -t` build, and proves the layer: every top-level module imported (and layer.toml's smoke
statements run) in a clean interpreter of the runtime's Python with the runtime's SDK stand-in, no
shared object loaded from this machine (/proc/self/maps), every shipped .so's DT_NEEDED provided by the
layer or Lambda's image.

requirements.txt holds requirement specifiers only (names, versions, extras, markers, --hash): a pip
option (--no-binary, --index-url, -e, -r, ...), a URL or a path is refused with the line's number."""

EPILOG = """\
layer.toml, all keys optional, in a [layer] table:
  name = "my-layer"              zip name (default: the directory's name)
  runtime = "python3.13"         Lambda runtime (--runtime wins)
  architecture = "x86_64"        or "arm64" (--arch wins)
  bytecode = true                ship bytecode compiled by the runtime's Python; unset: yes when that
                                 Python is here, else no, with one line on what that costs
  skip_imports = ["name"]        top-level modules the proof must not import (cannot import off Lambda);
                                 a companion such as psycopg_binary needs no entry: proved via its parent
  smoke = ["import x; x.f()"]    statements the proof also runs, each in its own clean interpreter
  strip_docstrings = false       empty the docstrings of the layer's Python
  keep_docstrings = ["numpy"]    packages that read docstrings at run time (with strip_docstrings)
  allow_pure_sdist = ["docopt"]  build these sdist-only packages into wheels here; fail if not pure Python

exit status: 0 built and proved; 1 over a Lambda limit or the proof failed; 2 bad input (a refused
requirement line, no such package, no wheel for the target); exit 3 built but not proved (another
architecture, or no interpreter of the runtime's Python here), so CI can require proof (--no-verify
skips the proof on request and exits 0)."""


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MB: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "layer",
        help="build, measure and prove a dependency layer",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "layer_dir",
        metavar="LAYER_DIR",
        type=Path,
        help="directory holding requirements.txt (and optionally layer.toml)",
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="output directory (default: LAYER_DIR/build)")
    parser.add_argument(
        "--runtime",
        choices=sorted(RUNTIME_GLIBC),
        help=f"Lambda runtime (default: layer.toml, else {DEFAULT_RUNTIME})",
    )
    parser.add_argument(
        "--arch", choices=sorted(ARCH_MACHINE), help="Lambda architecture (default: layer.toml, else x86_64)"
    )
    parser.add_argument(
        "--keep-runtime-provided",
        action="store_true",
        help="keep every runtime-provided package the closure holds (naming one in the "
        "requirements already keeps that one)",
    )
    parser.add_argument(
        "--max-unzipped-mb",
        type=_megabytes,
        default=UNZIPPED_LIMIT_BYTES / MIB,
        help="fail above this unzipped size (default: Lambda's 250 MB)",
    )
    parser.add_argument(
        "--max-zipped-mb",
        type=_megabytes,
        default=ZIPPED_LIMIT_BYTES / MIB,
        help="fail above this zipped size (default: Lambda's 50 MB direct upload)",
    )
    parser.add_argument("--no-verify", action="store_true", help="skip the import proof (not recommended)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.layer_dir.exists():
        raise UsageError(f"{args.layer_dir}: no such directory")
    settings = load_settings(args.layer_dir, runtime=args.runtime, arch=args.arch)
    limits = Limits(int(args.max_unzipped_mb * MIB), int(args.max_zipped_mb * MIB))
    result = build_layer(
        settings,
        out_dir=args.out,
        keep_runtime_provided=args.keep_runtime_provided,
        verify=not args.no_verify,
    )
    print("\n".join(report_lines(result, limits)))
    check_build(result, limits)
    return 0
