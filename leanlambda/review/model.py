"""A check's result and the review that collects them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from leanlambda.function import FunctionDir
from leanlambda.review.source import SourceTree

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
STATUSES = (PASS, FAIL, WARN, SKIP)
MAX_LISTED = 5  # findings named in a detail line; the rest are counted


@dataclass
class CheckResult:
    id: str
    status: str
    value: str
    budget: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class ReviewOptions:
    event: Path | None = None
    layers: list[Path] = field(default_factory=list)
    cold_start_runs: int = 7


@dataclass
class ReviewContext:
    """What every check may read: the function, its parsed source and the caller's options."""

    function: FunctionDir
    sources: SourceTree
    options: ReviewOptions


@dataclass
class Review:
    function: str
    checks: list[CheckResult]

    @property
    def passed(self) -> bool:
        return all(check.status != FAIL for check in self.checks)

    def count(self, status: str) -> int:
        return sum(1 for check in self.checks if check.status == status)

    def to_dict(self) -> dict:
        return {
            "function": self.function,
            "passed": self.passed,
            "checks": [check.to_dict() for check in self.checks],
        }


def listing(findings: list[str]) -> str:
    """`a; b; c (+2 more)`: a detail line that stays one line."""
    shown = "; ".join(findings[:MAX_LISTED])
    extra = len(findings) - MAX_LISTED
    return f"{shown} (+{extra} more)" if extra > 0 else shown


def count_result(
    check_id: str, findings: list[str], ok_detail: str, what: str, status_if_found: str = FAIL
) -> CheckResult:
    """The common shape: zero findings passes; any finding fails (or warns) and is listed."""
    if not findings:
        return CheckResult(check_id, PASS, "0", "0", ok_detail)
    return CheckResult(
        check_id, status_if_found, str(len(findings)), "0", f"{listing(findings)}; fix: {what}"
    )
