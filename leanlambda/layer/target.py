"""What a layer is built for: the Lambda runtime (Python minor version, glibc) and the architecture.

A wheel only works on Lambda if its manylinux tag needs no newer glibc than the runtime's OS has:
python3.10 and python3.11 run on Amazon Linux 2 (glibc 2.26), python3.12 and later on Amazon Linux 2023
(glibc 2.34). A manylinux_2_28 wheel therefore imports on python3.12 but not on python3.11, so the tags
offered to pip are derived from the runtime, never from the build machine.
"""

from __future__ import annotations

import platform
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from leanlambda import limits
from leanlambda.errors import UsageError

RUNTIME_GLIBC: dict[str, tuple[int, int]] = limits.RUNTIME_GLIBC
DEFAULT_RUNTIME = limits.DEFAULT_RUNTIME
ARCH_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}  # Lambda's name -> the ELF/wheel name
DEFAULT_ARCH = "x86_64"
OLDEST_MANYLINUX2014_GLIBC = 17  # manylinux2014 == manylinux_2_17: the oldest tag aarch64 wheels use
LEGACY_X86_TAGS = ("manylinux_2_12", "manylinux2010", "manylinux_2_5", "manylinux1")
PIP_QUIET_ARGS = ("--disable-pip-version-check", "--no-input")  # never prompt, never nag about pip itself
_RUNTIME_RE = re.compile(r"^python(\d+)\.(\d+)$")


@dataclass(frozen=True)
class Target:
    runtime: str  # e.g. "python3.13"
    arch: str  # Lambda's name: "x86_64" or "arm64"

    @classmethod
    def parse(cls, runtime: str, arch: str) -> Target:
        if runtime not in RUNTIME_GLIBC:
            known = ", ".join(RUNTIME_GLIBC)
            raise UsageError(f"unsupported runtime {runtime!r}; choose one of {known}")
        if arch not in ARCH_MACHINE:
            raise UsageError(f"unsupported architecture {arch!r}; choose x86_64 or arm64")
        return cls(runtime, arch)

    @property
    def python_version(self) -> str:
        """'3.13' for python3.13."""
        match = _RUNTIME_RE.match(self.runtime)
        assert match is not None
        return f"{match.group(1)}.{match.group(2)}"

    @property
    def machine(self) -> str:
        return ARCH_MACHINE[self.arch]

    @property
    def glibc(self) -> tuple[int, int]:
        return RUNTIME_GLIBC[self.runtime]

    def platform_tags(self) -> list[str]:
        """Every manylinux tag the runtime's glibc can load, newest first (pip matches them literally)."""
        major, newest = self.glibc
        tags = [
            f"manylinux_{major}_{minor}_{self.machine}"
            for minor in range(newest, OLDEST_MANYLINUX2014_GLIBC - 1, -1)
        ]
        tags.append(f"manylinux2014_{self.machine}")
        if self.machine == "x86_64":
            tags.extend(f"{tag}_{self.machine}" for tag in LEGACY_X86_TAGS)
        return tags

    def pip_target_args(self, python_version: str | None = None) -> list[str]:
        """pip options that select wheels for this target and nothing built for the build machine.

        python_version: the Python the wheels must import under when it is not the runtime's own (a
        measured run on the toolkit's Python); the platform tags stay the runtime's."""
        version = python_version or self.python_version
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", version]
        for tag in self.platform_tags():
            args += ["--platform", tag]
        return args

    def pip_install_command(
        self,
        destination: Path,
        requirements: Sequence[str],
        *,
        python: str | None = None,
        compile_bytecode: bool = False,
        quiet: bool = True,
        python_version: str | None = None,
        extra: Sequence[str] = (),
    ) -> list[str]:
        """`python -m pip install --target destination` of requirements (name==version pins, or `-r FILE`)
        with this target's wheels only: the one way the toolkit installs anything for Lambda.

        python runs pip (default: this one; its version does not choose the wheels). compile_bytecode
        keeps pip's default of compiling with that Python (a naive layer, as most are built); otherwise
        nothing is compiled, and the caller compiles with the runtime's Python (leanlambda.bytecode).
        extra holds the caller's own options (--no-deps, --report).
        """
        command = [python or sys.executable, "-m", "pip", "install", "--target", str(destination)]
        command += [*PIP_QUIET_ARGS, *(["--quiet"] if quiet else [])]
        command += [] if compile_bytecode else ["--no-compile"]
        return [*command, *self.pip_target_args(python_version), *extra, *requirements]

    def marker_environment(self) -> dict[str, str]:
        """PEP 508 marker values as they are on Lambda, for reading the dependency graph."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python_version}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_system": "Linux",
            "python_full_version": f"{self.python_version}.0",
            "python_version": self.python_version,
            "sys_platform": "linux",
        }

    def describe(self) -> str:
        major, minor = self.glibc
        return f"{self.runtime} {self.arch} (manylinux, glibc <= {major}.{minor})"


def host_arch() -> str:
    """This machine's architecture in Lambda's naming ('x86_64' or 'arm64'), or the raw name."""
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
