"""The review as SARIF 2.1.0, the format GitHub code scanning reads: one result per failing check
(warnings too, at level "warning"), pointing at the file and line where the finding has one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from leanlambda import __version__
from leanlambda.review.model import FAIL, WARN, Review

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
DOCS_URI = "docs/checklist.md"
LEVELS = {FAIL: "error", WARN: "warning"}


def _rules(check_ids: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "id": check_id,
            "name": check_id.replace("-", " "),
            "shortDescription": {"text": f"leanlambda review check {check_id}"},
            "helpUri": f"{DOCS_URI}#{check_id}",
        }
        for check_id in check_ids
    ]


def _location(path: str, line: int) -> dict[str, Any]:
    """A path relative to the reviewed folder (FUNCTION_ROOT), as code scanning resolves it."""
    physical: dict[str, Any] = {"artifactLocation": {"uri": path, "uriBaseId": "FUNCTION_ROOT"}}
    if line > 0:
        physical["region"] = {"startLine": line}
    return {"physicalLocation": physical}


def _results(review: Review, rule_index: dict[str, int]) -> list[dict[str, Any]]:
    results = []
    for check in review.checks:
        if check.status not in LEVELS:
            continue
        figure = f"{check.value}; budget {check.budget}"
        message = f"{review.function}: {check.id} {check.status} ({figure}): {check.detail}"
        result: dict[str, Any] = {
            "ruleId": check.id,
            "ruleIndex": rule_index[check.id],
            "level": LEVELS[check.status],
            "message": {"text": message},
        }
        if check.locations:
            result["locations"] = [_location(path, line) for path, line, _ in check.locations[:1]]
            if len(check.locations) > 1:
                result["relatedLocations"] = [
                    {**_location(path, line), "id": index, "message": {"text": text}}
                    for index, (path, line, text) in enumerate(check.locations[1:], 1)
                ]
        results.append(result)
    return results


def to_sarif(reviews: list[Review]) -> str:
    check_ids = list(dict.fromkeys(check.id for review in reviews for check in review.checks))
    rule_index = {check_id: index for index, check_id in enumerate(check_ids)}
    root = reviews[0].root if reviews else "."
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "leanlambda review",
                        "version": __version__,
                        "rules": _rules(check_ids),
                    }
                },
                "originalUriBaseIds": {"FUNCTION_ROOT": {"uri": Path(root).resolve().as_uri() + "/"}},
                "results": [result for review in reviews for result in _results(review, rule_index)],
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False)
