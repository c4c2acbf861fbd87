"""A check's result and the review that collects them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanlambda.review.budgets import Budgets
from leanlambda.review.locate import PROFILE_LEANLAMBDA, ReviewedFunction
from leanlambda.review.source import SourceTree

PASS, FAIL, WARN, SKIP = "pass", "fail", "warn", "skip"
STATUSES = (PASS, FAIL, WARN, SKIP)
MAX_LISTED = 5  # findings named in a detail line; the rest are counted
# A finding that starts with where it is: `src/app.py:12 ...` or `template.yaml:30 ...`.
LOCATED = re.compile(r"^(?P<path>[^\s:]+\.(?:py|ya?ml)):(?P<line>\d+)\b\s*(?P<message>.*)$")


@dataclass
class CheckResult:
    id: str
    status: str
    value: str
    budget: str
    detail: str
    # (path relative to the function folder, line or 0, message): where a SARIF result points
    locations: list[tuple[str, int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "status": self.status,
            "value": self.value,
            "budget": self.budget,
            "detail": self.detail,
        }


@dataclass
class ReviewOptions:
    event: Path | None = None
    layers: list[Path] = field(default_factory=list)
    cold_start_runs: int = 7
    install_requirements: bool = True


@dataclass
class ReviewContext:
    """What every check may read: the function, its parsed source and the caller's options."""

    function: ReviewedFunction
    sources: SourceTree
    options: ReviewOptions
    budgets: Budgets = field(default_factory=Budgets)

    @property
    def leanlambda(self) -> bool:
        """The template's own conformance is judged too (a function generated here)."""
        return self.function.profile == PROFILE_LEANLAMBDA


@dataclass
class Review:
    function: str
    checks: list[CheckResult]
    profile: str = ""
    logical_id: str = ""
    root: str = ""

    @property
    def passed(self) -> bool:
        return all(check.status != FAIL for check in self.checks)

    def count(self, status: str) -> int:
        return sum(1 for check in self.checks if check.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "profile": self.profile,
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
        check_id,
        status_if_found,
        str(len(findings)),
        "0",
        f"{listing(findings)}; fix: {what}",
        locations_of(findings),
    )


def locations_of(findings: list[str]) -> list[tuple[str, int, str]]:
    """Where each finding that starts with `path:line` is."""
    found = []
    for finding in findings:
        match = LOCATED.match(finding)
        if match:
            found.append((match["path"], int(match["line"]), match["message"] or finding))
    return found
