"""`leanlambda review`: the optimization checklist, scored with measured figures.

locate finds the functions and their profile (`general`: AWS's documented practice; `leanlambda`: that
plus the template's conformance); budgets reads the function's budgets. One module per group of
checks: code_checks (structure), safety_checks (secrets, SQL), template_checks (layer, timeouts, IAM,
cfn-lint), measured_checks (cold start, memory, package size).
"""

from __future__ import annotations

from collections.abc import Callable

from leanlambda.review import code_checks, measured_checks, safety_checks, template_checks
from leanlambda.review.budgets import load_budgets
from leanlambda.review.locate import PROFILES, ReviewedFunction, find_functions
from leanlambda.review.model import FAIL, CheckResult, Review, ReviewContext, ReviewOptions, listing
from leanlambda.review.source import load_sources

CHECKS: tuple[tuple[str, Callable[[ReviewContext], CheckResult]], ...] = (
    ("lazy-imports", code_checks.lazy_imports),
    ("layer", template_checks.layer),
    ("client-reuse", code_checks.client_reuse),
    ("modular", code_checks.modular),
    ("metrics-batching", code_checks.metrics_batching),
    ("error-handling", code_checks.error_handling),
    ("structured-logging", code_checks.structured_logging),
    ("timeouts", template_checks.timeouts),
    ("cleanup", code_checks.cleanup),
    ("cold-start", measured_checks.cold_start),
    ("memory", measured_checks.memory),
    ("package-size", measured_checks.package_size),
    ("secrets", safety_checks.secrets),
    ("sql-params", safety_checks.sql_params),
    ("iam-least-privilege", template_checks.iam_least_privilege),
    ("iac-rules", template_checks.iac_rules),
)
CHECK_IDS = tuple(check_id for check_id, _ in CHECKS)
# Static checks read parsed code; when a file does not parse they cannot vouch for it.
CODE_CHECKS = frozenset(
    {
        "lazy-imports",
        "client-reuse",
        "modular",
        "metrics-batching",
        "error-handling",
        "structured-logging",
        "timeouts",
        "cleanup",
        "secrets",
        "sql-params",
    }
)


def run_review(
    function: ReviewedFunction, options: ReviewOptions | None = None, only: tuple[str, ...] | None = None
) -> Review:
    ctx = ReviewContext(
        function=function,
        sources=load_sources(function),
        options=options or ReviewOptions(),
        budgets=load_budgets(function.root),
    )
    results = []
    for check_id, check in CHECKS:
        if only and check_id not in only:
            continue
        if check_id in CODE_CHECKS and ctx.sources.errors:
            results.append(CheckResult(check_id, FAIL, "unparsed", "0", listing(ctx.sources.errors)))
            continue
        try:
            result = check(ctx)
        except Exception as error:  # a check that cannot run must not pass silently
            result = CheckResult(
                check_id, FAIL, "error", "-", f"the check could not run: {type(error).__name__}: {error}"
            )
        results.append(result)
    return Review(
        function=function.name,
        checks=results,
        profile=function.profile,
        logical_id=function.logical_id,
        root=str(function.root),
    )


__all__ = ["CHECK_IDS", "PROFILES", "Review", "ReviewOptions", "find_functions", "run_review"]
