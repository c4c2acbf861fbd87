"""What Lambda is, in one place: its managed Python runtimes, their quotas, the CPU share per memory size,
what every runtime provides, and its prices.

Sources: the AWS Lambda developer guide (runtimes and their deprecation dates, quotas, "memory and
computing power"); AWS Lambda pricing, us-east-1, first tier (duration per GB-second by architecture,
requests per million; since 2025-08 the INIT phase of on-demand zip functions on managed runtimes is billed
as duration). The template's hook keeps its own copy of the runtime choices and quotas, since a
generated function never imports the toolkit; a test compares the two.
"""

from __future__ import annotations

import math

MIB = 1024 * 1024

# Runtimes this project offers, the default first. Each maps to the exact Python it runs.
RUNTIME_PYTHONS = {
    "python3.13": "3.13",
    "python3.14": "3.14",
    "python3.12": "3.12",
}
DEFAULT_RUNTIME = "python3.13"
# Deprecated on Lambda (no more security patches, then creating and updating functions is blocked).
DEPRECATED_RUNTIMES = {
    "python3.11": "2026-06-30",
    "python3.10": "2026-06-30",
    "python3.9": "2025-12-15",
}
# Every runtime offered here runs on Amazon Linux 2023, whose glibc decides which manylinux wheels import.
RUNTIME_GLIBC = {"python3.12": (2, 34), "python3.13": (2, 34), "python3.14": (2, 34)}
ARCHITECTURES = ("x86_64", "arm64")

MEMORY_MIN_MB = 128
MEMORY_MAX_MB = 10_240
TIMEOUT_MAX_S = 900
UNZIPPED_LIMIT_BYTES = 250 * MIB  # function + all its layers, unzipped (262,144,000 bytes)
ZIPPED_LIMIT_BYTES = 50 * MIB  # a zip uploaded directly through the Lambda API
SYNC_RESPONSE_LIMIT_BYTES = 6 * MIB  # a synchronous invocation's response payload
FUNCTION_NAME_PATTERN = r"[A-Za-z0-9_-]{1,64}"  # a function's name (not its ARN)

# CPU: Lambda gives a function one full vCPU at 1,769 MB and a proportional share below it. The INIT
# phase of an on-demand function runs unthrottled (a "burst"), for at most 10 s.
FULL_VCPU_MEMORY_MB = 1769
INIT_BURST_MAX_S = 10


def python_of(runtime: str) -> str:
    """'3.13' for python3.13; a one-line ValueError for a runtime this project does not offer."""
    if runtime in RUNTIME_PYTHONS:
        return RUNTIME_PYTHONS[runtime]
    if runtime in DEPRECATED_RUNTIMES:
        raise ValueError(
            f"{runtime} is deprecated on Lambda since {DEPRECATED_RUNTIMES[runtime]}: "
            f"choose one of {', '.join(RUNTIME_PYTHONS)}"
        )
    raise ValueError(f"unknown runtime {runtime!r}: choose one of {', '.join(RUNTIME_PYTHONS)}")


def cpu_share(memory_mb: int) -> float:
    """The fraction of one vCPU a function of this memory size gets in its invoke phase (at most 1)."""
    return min(1.0, memory_mb / FULL_VCPU_MEMORY_MB)


# What every Python runtime has in /var/runtime, by distribution name -> top-level import name. boto3,
# botocore, s3transfer and jmespath are the SDK; python-dateutil, six and urllib3 come only as botocore's
# dependencies, in versions AWS picks for botocore, so a layer that needs them must ship its own.
RUNTIME_SDK_DISTRIBUTIONS = {
    "boto3": "boto3",
    "botocore": "botocore",
    "s3transfer": "s3transfer",
    "jmespath": "jmespath",
}
RUNTIME_SDK_DEPENDENCIES = {"python-dateutil": "dateutil", "six": "six", "urllib3": "urllib3"}
RUNTIME_PROVIDED_MODULES = (*RUNTIME_SDK_DISTRIBUTIONS.values(), *RUNTIME_SDK_DEPENDENCIES.values())


# The boto3/botocore a runtime carries in /var/runtime: the stand-in for the runtime's SDK when a layer is
# proved. AWS does not publish these versions: the Lambda developer guide ("Runtime-included SDK
# versions") says the version depends on the runtime and the Region, changes with runtime updates, and is
# found by printing boto3.__version__ from a function. So this table does not claim AWS's exact version:
# it pins one release per runtime, chosen by a stated rule, so that every proof is reproducible and none
# depends on the build machine's own boto3. Rule (applied 2026-12-02, newest release then 1.44.8): the
# first release on the package index of the line two minor versions behind the newest, for boto3 and
# botocore alike (their version numbers match in these lines; botocore has no 1.42.0, so 1.42.1). The
# same pair serves every runtime, since nothing published says they differ. Replace a row with the
# version a real function prints when that matters.
RUNTIME_SDK_VERSIONS = {
    "python3.12": {"boto3": "1.42.1", "botocore": "1.42.1"},
    "python3.13": {"boto3": "1.42.1", "botocore": "1.42.1"},
    "python3.14": {"boto3": "1.42.1", "botocore": "1.42.1"},
}

# System libraries a shared object in a layer may load from Lambda's image: the manylinux policy's
# allow-list (PEP 599/600, auditwheel's policy; the graphics libraries left out, Lambda's image has none)
# plus the dynamic loader itself. Anything else must come with the layer or with the runtime's Python.
RUNTIME_SYSTEM_LIBRARIES = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libnsl.so.1",
        "libcrypt.so.1",
        "libgcc_s.so.1",
        "libstdc++.so.6",
        "libz.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
        "linux-vdso.so.1",
    }
)


# Prices: AWS Lambda pricing, us-east-1, first tier.
PRICE_PER_GB_SECOND_USD = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
PRICE_PER_MILLION_REQUESTS_USD = 0.20
MILLION = 1_000_000
MB_PER_GB = 1024


def billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the next millisecond."""
    return max(1, math.ceil(duration_ms))


def cost_per_million(billed_duration_ms: int, memory_mb: int, architecture: str) -> float:
    """USD for a million invocations of this billed duration and memory, requests included."""
    price = PRICE_PER_GB_SECOND_USD.get(architecture, PRICE_PER_GB_SECOND_USD["x86_64"])
    gb_seconds = (billed_duration_ms / 1000) * (memory_mb / MB_PER_GB)
    return gb_seconds * price * MILLION + PRICE_PER_MILLION_REQUESTS_USD
