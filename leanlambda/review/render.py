"""The review as an aligned text table, JSON for tools, or a Markdown table for a PR comment."""

from __future__ import annotations

import json

from leanlambda.review.model import FAIL, PASS, SKIP, STATUSES, WARN, Review

ICONS = {PASS: "✅", FAIL: "❌", WARN: "⚠️", SKIP: "⏭️"}
HEADERS = ("CHECK", "STATUS", "VALUE", "BUDGET", "DETAIL")


def summary(review: Review) -> str:
    counts = ", ".join(f"{review.count(status)} {status}" for status in STATUSES)
    verdict = "PASSED" if review.passed else "FAILED"
    return f"{len(review.checks)} checks: {counts} -- {verdict}"


def to_text(review: Review) -> str:
    rows = [HEADERS] + [(c.id, c.status, c.value, c.budget, c.detail) for c in review.checks]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS) - 1)]
    lines = [f"leanlambda review: {review.function} ({review.logical_id}, profile {review.profile})"]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.append(summary(review))
    return "\n".join(lines)


def to_json(review: Review) -> str:
    return json.dumps(review.to_dict(), indent=2, ensure_ascii=False)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(review: Review) -> str:
    verdict = "✅ passed" if review.passed else "❌ failed"
    lines = [
        f"### leanlambda review: `{review.function}` ({review.profile} profile) {verdict}",
        "",
        "| | Check | Value | Budget | Detail |",
        "|---|---|---|---|---|",
    ]
    for check in review.checks:
        lines.append(
            f"| {ICONS[check.status]} | `{check.id}` | {_cell(check.value)} | {_cell(check.budget)} "
            f"| {_cell(check.detail)} |"
        )
    counts = " · ".join(f"{ICONS[status]} {review.count(status)} {status}" for status in STATUSES)
    lines += ["", f"**{len(review.checks)} checks:** {counts}"]
    return "\n".join(lines)


def render(reviews: list[Review], fmt: str) -> str:
    """One document for every reviewed function: JSON is one object for one function, a list for more."""
    if fmt == "sarif":
        from leanlambda.review.sarif import to_sarif

        return to_sarif(reviews)
    if fmt == "json":
        dicts = [review.to_dict() for review in reviews]
        return json.dumps(dicts[0] if len(dicts) == 1 else dicts, indent=2, ensure_ascii=False)
    return "\n\n".join(RENDERERS[fmt](review) for review in reviews)


RENDERERS = {"text": to_text, "json": to_json, "markdown": to_markdown}
FORMATS = (*RENDERERS, "sarif")
