"""`leanlambda layer`: build a small, correct, deterministic Lambda layer and prove it imports."""

from __future__ import annotations

import argparse
from pathlib import Path

from leanlambda.errors import UsageError
from leanlambda.layer import Limits, build_layer, check_build, load_settings, report_lines
from leanlambda.layer.target import ARCH_MACHINE, DEFAULT_RUNTIME, RUNTIME_GLIBC
from leanlambda.limits import MIB, UNZIPPED_LIMIT_BYTES, ZIPPED_LIMIT_BYTES

DESCRIPTION = """\
Build a Lambda layer from LAYER_DIR/requirements.txt (defaults in LAYER_DIR/layer.toml).
Installs the full dependency closure from manylinux wheels for the target runtime and architecture
(never the build machine's platform), leaves out what the Lambda runtime provides (boto3, botocore,
s3transfer, jmespath; python-dateutil, six and urllib3 only when nothing in the layer needs them),
removes test suites, bytecode, type stubs, C sources and unneeded symbol tables (and, when layer.toml
says strip_docstrings, the docstrings of all but its keep_docstrings packages), writes requirements.lock
and a deterministic zip, reports the sizes against Lambda's limits, and imports every top-level module
(and runs layer.toml's smoke statements) in a clean interpreter of the target's Python. Exit 1 when over
a limit or when a module does not import."""


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of MB: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "layer", help="build, measure and prove a dependency layer", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("layer_dir", metavar="LAYER_DIR", type=Path,
                        help="directory holding requirements.txt (and optionally layer.toml)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="output directory (default: LAYER_DIR/build)")
    parser.add_argument("--runtime", choices=sorted(RUNTIME_GLIBC),
                        help=f"Lambda runtime (default: layer.toml, else {DEFAULT_RUNTIME})")
    parser.add_argument("--arch", choices=sorted(ARCH_MACHINE),
                        help="Lambda architecture (default: layer.toml, else x86_64)")
    parser.add_argument("--keep-runtime-provided", action="store_true",
                        help="keep boto3 & co in the layer (e.g. to pin a newer boto3 than the runtime's)")
    parser.add_argument("--max-unzipped-mb", type=_megabytes, default=UNZIPPED_LIMIT_BYTES / MIB,
                        help="fail above this unzipped size (default: Lambda's 250 MB)")
    parser.add_argument("--max-zipped-mb", type=_megabytes, default=ZIPPED_LIMIT_BYTES / MIB,
                        help="fail above this zipped size (default: Lambda's 50 MB direct upload)")
    parser.add_argument("--no-verify", action="store_true", help="skip the import proof (not recommended)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.layer_dir.exists():
        raise UsageError(f"{args.layer_dir}: no such directory")
    settings = load_settings(args.layer_dir, runtime=args.runtime, arch=args.arch)
    limits = Limits(int(args.max_unzipped_mb * MIB), int(args.max_zipped_mb * MIB))
    result = build_layer(settings, out_dir=args.out, keep_runtime_provided=args.keep_runtime_provided,
                         verify=not args.no_verify)
    print("\n".join(report_lines(result, limits)))
    check_build(result, limits)
    return 0
