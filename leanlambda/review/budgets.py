"""Budgets that follow the function: the checklist's defaults, overridden with a stated reason.

Two places, read in this order, the later winning per check:
- `pyproject.toml` `[tool.leanlambda.review.<check-id>]`: in a generated function the template writes
  the budgets its options need there (the file is template-owned: `cruft update` refreshes it);
- `review.toml` `[<check-id>]`: the function's own overrides. A generated function lists this file
  under `[tool.cruft] skip`, so `cruft update` never touches it.

Every override must say why (`reason = "..."`); the review prints the reason beside the figure.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leanlambda.errors import UsageError

PYPROJECT_FILE = "pyproject.toml"
USER_FILE = "review.toml"
COLD_START_MS = 100.0  # Lambda's own Python hello world inits in ~80 ms
PACKAGE_KB = 10.0  # the function's own code, zipped
MEMORY_FRACTION = 0.30  # of MemorySize: room for the data a real run holds
MEASURE_INIT, MEASURE_COLD_PATH = "init", "init+first-invoke"
KNOWN: dict[str, dict[str, type]] = {
    "cold-start": {"max-ms": float, "measure": str},
    "package-size": {"max-kb": float},
    "memory": {"max-fraction": float},
}


@dataclass(frozen=True)
class Budget:
    limit: float
    reason: str = ""  # empty: the checklist's default
    source: str = ""
    measure: str = MEASURE_INIT

    def note(self) -> str:
        return f"; budget from {self.source}: {self.reason}" if self.reason else ""


@dataclass(frozen=True)
class Budgets:
    cold_start: Budget = Budget(COLD_START_MS)
    package_size: Budget = Budget(PACKAGE_KB)
    memory: Budget = Budget(MEMORY_FRACTION)


def _read(path: Path, *table: str) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    for key in table:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    return data if isinstance(data, dict) else {}


def _override(check_id: str, spec: Any, where: str, current: Budget) -> Budget:
    if not isinstance(spec, dict):
        raise UsageError(f"{where}: [{check_id}] must be a table")
    allowed = KNOWN[check_id]
    unknown = sorted(set(spec) - set(allowed) - {"reason"})
    if unknown:
        raise UsageError(f"{where}: [{check_id}] unknown key {unknown[0]!r} (known: {', '.join(allowed)})")
    reason = spec.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise UsageError(f'{where}: [{check_id}] needs a reason = "..." saying why the budget differs')
    limit_key = next(key for key, kind in allowed.items() if kind is float)
    limit = spec.get(limit_key, current.limit)
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0:
        raise UsageError(f"{where}: [{check_id}] {limit_key} must be a positive number")
    measure = spec.get("measure", current.measure)
    if measure not in (MEASURE_INIT, MEASURE_COLD_PATH):
        raise UsageError(f"{where}: [{check_id}] measure must be {MEASURE_INIT!r} or {MEASURE_COLD_PATH!r}")
    return Budget(float(limit), reason.strip(), where, measure)


def load_budgets(root: Path) -> Budgets:
    """The function's budgets; a UsageError (one line) for an override without a reason or a bad value."""
    values = {"cold-start": Budgets().cold_start, "package-size": Budgets().package_size}
    values["memory"] = Budgets().memory
    layers = (
        (
            root / PYPROJECT_FILE,
            ("tool", "leanlambda", "review"),
            f"{PYPROJECT_FILE} [tool.leanlambda.review]",
        ),
        (root / USER_FILE, (), USER_FILE),
    )
    for path, table, where in layers:
        for check_id, spec in _read(path, *table).items():
            if check_id not in KNOWN:
                raise UsageError(f"{where}: no budget for {check_id!r} (budgets: {', '.join(KNOWN)})")
            values[check_id] = _override(check_id, spec, where, values[check_id])
    return Budgets(values["cold-start"], values["package-size"], values["memory"])
