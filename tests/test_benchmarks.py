"""benchmarks/: the quick run writes every section with numbers; the eager transformer only hoists; the
Upbit replay server answers as Upbit does.

No timing is asserted: figures from a shared machine are reported, not tested.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.eager import PREWARM_MARKER, hoist_imports, make_eager
from benchmarks.harness import LAMBDA_PRELOADED, Samples, Variant
from benchmarks.report import Report, cold_table, init_table
from benchmarks.targets import target_rows
from benchmarks.upbit_replay import CANDLE_SERIES, MARKETS_RECORDING, UpbitReplay

REPO_ROOT = Path(__file__).resolve().parent.parent
NUMBER = r"\d+(?:\.\d+)?"
SECTIONS = (
    "## Machine and command",
    "## Method",
    "## Init",
    "## Cold path, warm invocation, memory, package",
    "## Metrics: API calls per invocation",
    "## Cost per million invocations (estimate)",
    "## What a local figure says about Lambda, and what it does not",
    "## Targets",
    "## Layer",
)
ROWS = (
    "floor (bare interpreter)",
    "floor (bare + json, logging)",
    "default bake",
    "default bake (runtime preloads json, logging)",
    "default bake, eager",
    "default logic, Powertools Logger + Metrics, module-level boto3 client",
    "default + prewarm s3",
)

LAZY_MODULE = '''"""Doc."""

from __future__ import annotations

import os

LIMIT = 3


def fetch(name):
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(name, config=BotoConfig()), os.sep


class Thing:
    def run(self):
        if LIMIT:
            import json  # the standard library, still hoisted
        return json.dumps({})

    def optional(self):
        try:
            import pyupbit
        except ImportError:
            pyupbit = None
        return pyupbit
'''


def table_rows(text: str, label: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith(f"| {label} |")]


@pytest.mark.slow
def test_quick_run_writes_every_section_and_row_with_numbers(tmp_path):
    doc = tmp_path / "benchmarks.md"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--skip-layer", "--markdown", str(doc)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = doc.read_text(encoding="utf-8")
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    for needle in (
        "AMD",
        "Python 3.",
        "boto3 ",
        "botocore ",
        "moto ",
        "aws-lambda-powertools ",
        "--quick --skip-layer",
    ):
        if needle == "AMD" and "AMD" not in text:
            continue  # another CPU vendor
        assert needle in text, needle
    for label in ROWS:
        rows = table_rows(text, label)
        with_medians = [row for row in rows if re.search(rf"\| {NUMBER} \({NUMBER}-{NUMBER}\) \|", row)]
        assert len(with_medians) >= 2, f"{label}: expected init and cold-path rows with figures, got {rows}"
    for n in ("1", "100", "1000", "5000"):
        for backend in ("emf", "put_metric_data"):
            row = table_rows(text, n)
            assert any(f"| {backend} |" in line for line in row), (n, backend)
    cost_rows = [line for line in table_rows(text, "default bake") if "| 256 | x86_64 |" in line]
    assert cost_rows and re.search(rf"\| {NUMBER} \| (?:{NUMBER}x|-) \|$", cost_rows[0])
    targets = text[text.index("## Targets") : text.index("## Layer")]
    verdicts = re.findall(r"\| (PASS|MISS|n/a)[^|]*\|$", targets, re.MULTILINE)
    assert len(verdicts) >= 8 and "n/a" not in verdicts
    assert "est. invoke phase at 128 MB" in text
    assert "Layer bench skipped" in text


def loaded_machine_report() -> Report:
    """Samples as a loaded machine can give them: the default's import median came out below its floor's,
    the shipped-bytecode copy level with its floor, the eager copies far above."""
    init = {
        "floor": 5.0,
        "floor_lambda": 3.0,
        "default": 4.0,
        "default_lambda": 2.5,
        "default_eager": 400.0,
        "default_eager_lambda": 390.0,
        "default_pyc_lambda": 3.0,
    }
    samples, event = {}, Path("event.json")
    for key, init_ms in init.items():
        preload = LAMBDA_PRELOADED if key.endswith("lambda") else ()
        variant = Variant(
            key,
            key.replace("_", " "),
            "m.handler",
            (Path("src"),),
            preload=preload,
            event=event,
            package_bytes=6000,
        )
        runs = [
            {
                "init_ms": init_ms + jitter,
                "init_cpu_ms": init_ms + jitter,
                "startup_init_ms": 20 + init_ms,
                "rss_init_kib": 10_000,
                "rss_first_kib": 11_000,
                "cold_ms": init_ms + 9,
                "cold_cpu_ms": 9.0,
                "first_ms": 9.0,
                "warm_ms": 1.0,
                "first_result": {"ok": True},
            }
            for jitter in (-0.5, 0, 0.5)
        ]
        samples[key] = Samples(variant, runs)
    return Report(samples, list(init))


def test_a_difference_below_zero_is_reported_as_a_number_with_a_verdict():
    rep = loaded_machine_report()
    rows = init_table(rep) + cold_table(rep)
    default_row = next(row for row in rows if row.startswith("| default |"))
    assert "| -1.00 |" in default_row  # the default's import minus its floor's, printed as it came
    assert not any("n/a" in row for row in rows)
    targets = target_rows(rep, [])[2:-1]  # the last row is the metrics row, given no metric rows here
    assert targets and all(row.endswith(("| PASS |", "| MISS |")) for row in targets), targets
    eager_rows = [row for row in targets if "less than its eager variant" in row]
    assert len(eager_rows) == 4
    assert all(re.search(rf"\| {NUMBER} ms / -{NUMBER} ms = no factor", row) for row in eager_rows), (
        eager_rows
    )
    pyc_row = next(row for row in targets if "bytecode shipped" in row)
    assert "| 0.00 ms |" in pyc_row


def test_extra_sections_follow_the_layer_and_a_failing_one_is_reported(monkeypatch, tmp_path):
    from benchmarks import run
    from benchmarks.document import Run, render

    def good(ctx: run.SectionContext) -> str:
        return f"## Good\n\nruns={ctx.runs}"

    def bad(ctx: run.SectionContext) -> str:
        raise ValueError("no figures")

    monkeypatch.setattr(run, "EXTRA_SECTIONS", (good, bad))
    report = loaded_machine_report()
    texts, failures = run.extra_sections(run.SectionContext(True, 3, tmp_path, report))
    assert texts[0] == "## Good\n\nruns=3"
    assert len(failures) == 1 and failures[0].endswith("bad: ValueError: no figures")
    doc = render(Run(report, 3, "cmd", 1.0, (0.0, 0.0), sections=[run.layer_section(tmp_path, True), *texts]))
    assert (
        doc.index("## Layer")
        < doc.index("## Good")
        < doc.index("this section failed (ValueError: no figures)")
    )


def test_eager_transformer_hoists_imports_and_changes_nothing_else():
    code, hoisted, kept = hoist_imports(LAZY_MODULE)
    assert hoisted == ["import boto3", "from botocore.config import Config as BotoConfig", "import json"]
    assert kept == ["import pyupbit (inside try)"]
    tree = ast.parse(code)
    top_level = [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert top_level == ["from __future__ import annotations", "import os", *hoisted]
    functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = [
        ast.unparse(node)
        for fn in functions
        for node in ast.walk(fn)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]
    assert inside == ["import pyupbit"]
    # Otherwise the same: without the hoisted block and the `pass` placeholders, the lines are the original's.
    original = [
        line
        for line in LAZY_MODULE.splitlines()
        if line.strip() not in hoisted and line.split("#")[0].strip() not in hoisted
    ]
    transformed = [line for line in code.splitlines() if line.strip() not in {*hoisted, "pass"}]
    assert transformed == original
    assert len(code.splitlines()) == len(LAZY_MODULE.splitlines()) + len(hoisted)


def test_make_eager_copies_source_and_prewarms_the_services(tmp_path):
    src = tmp_path / "src" / "fn"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("", encoding="utf-8")
    (src / "clients.py").write_text("def make():\n    import boto3\n\n    return boto3\n", encoding="utf-8")
    (src / "handler.py").write_text("def get_orchestrator():\n    return None\n", encoding="utf-8")
    cache = src / "__pycache__"
    cache.mkdir()
    (cache / "clients.cpython-311.pyc").write_bytes(b"")
    dest = tmp_path / "eager"
    result = make_eager(tmp_path / "src", dest, ["s3", "ssm"])
    assert result.hoisted == {"fn/clients.py": ["import boto3"]}
    assert result.prewarmed == ["fn/handler.py"]
    assert not (dest / "fn" / "__pycache__").exists()
    assert (dest / "fn" / "clients.py").read_text(encoding="utf-8") == (
        "import boto3\ndef make():\n    pass\n\n    return boto3\n"
    )
    handler = (dest / "fn" / "handler.py").read_text(encoding="utf-8")
    assert handler.endswith(f"{PREWARM_MARKER}\nget_orchestrator().clients.prewarm('s3', 'ssm')\n")
    assert (tmp_path / "src" / "fn" / "clients.py").read_text(encoding="utf-8").count("import boto3") == 1


def test_the_upbit_replay_server_answers_the_recorded_markets_and_pages_candles_like_upbit():
    import requests

    recorded = json.loads(MARKETS_RECORDING.read_text(encoding="utf-8"))
    days = json.loads(CANDLE_SERIES["/v1/candles/days"].read_text(encoding="utf-8"))
    newest_first = sorted((candle["candle_date_time_utc"] for candle in days), reverse=True)
    with UpbitReplay() as upbit, requests.Session() as session:
        markets = session.get(f"{upbit.url}/market/all", params={"isDetails": "false"}, timeout=5)
        assert markets.status_code == recorded["status"]
        assert markets.json() == recorded["body"]
        assert markets.headers["Remaining-Req"] == recorded["headers"]["Remaining-Req"]

        pages, to = [], None  # as the examples' UpbitClient pages: `to` is the oldest candle so far
        while True:
            params = {"market": "KRW-XRP", "count": 200, **({"to": to} if to else {})}
            page = session.get(f"{upbit.url}/candles/days", params=params, timeout=5).json()
            if not page:
                break
            pages.append(page)
            to = page[-1]["candle_date_time_utc"].replace("T", " ")
        assert [len(page) for page in pages] == [200, 200, len(days) - 400]
        served = [candle for page in pages for candle in page]
        assert [candle["candle_date_time_utc"] for candle in served] == newest_first
        assert {candle["market"] for candle in served} == {"KRW-XRP"}

        four_hour = session.get(
            f"{upbit.url}/candles/minutes/240", params={"market": "KRW-ETH", "count": 3}, timeout=5
        )
        assert four_hour.status_code == 200
        assert [candle["unit"] for candle in four_hour.json()] == [240] * 3
        unrecorded = session.get(f"{upbit.url}/candles/weeks", params={"market": "KRW-ETH"}, timeout=5)
        assert unrecorded.status_code == 404
