"""Security checks over the toolkit, the hooks, generated functions and the examples.

- bandit: no MEDIUM or HIGH issue (LOW ones are listed by ``bandit_low_issues`` for docs/reliability.md);
- secrets: detect-secrets (default plugins) over the repository's files and generated output, plus our
  own scan for AWS access key ids, private keys and password literals in shipped code;
- IAM: no ``*`` / ``svc:*`` action and no admin/full-access managed policy in any template;
- SQL: every ``execute``/``executemany``/``execute_values`` passes values as parameters;
- the layer's resolved requirements through pip-audit (skipped, with the reason, when its vulnerability
  service cannot be reached).

tests/fixtures/bad/** holds deliberately bad functions: excluded from the scans, and used as positive
controls that prove each scanner finds what it looks for.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import BAD_FIXTURES, apply_bad_fixture

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXAMPLES = REPO_ROOT / "examples"
LAYER_LOCK = EXAMPLES / "makenaide-core-layer" / "build" / "layer" / "requirements.lock"
LAYER_REQUIREMENTS = EXAMPLES / "makenaide-core-layer" / "requirements.txt"
ALL_OPTIONS = {
    "function_name": "all-options",
    "aws_services": "s3,ssm,ec2,rds,cloudwatch",
    "prewarm_services": "ssm,ec2",
    "use_postgres": True,
    "use_upbit": True,
    "metrics_backend": "put_metric_data",
    "schedule_expression": "rate(4 hours)",
}
EXCLUDED_PARTS = {".venv", ".git", "build", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}


def _is_excluded(path: Path) -> bool:
    rel = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    parts = rel.parts
    return bool(EXCLUDED_PARTS & set(parts)) or rel.as_posix().startswith("tests/fixtures/bad/")


def repo_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files (the work in progress is not committed yet)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    files = [REPO_ROOT / name for name in listed.split("\0") if name]
    return sorted(path for path in files if path.is_file() and not _is_excluded(path))


def example_src_dirs() -> list[Path]:
    return sorted(path for path in EXAMPLES.glob("*/src") if path.is_dir())


@pytest.fixture(scope="module")
def bakes(bake) -> dict[str, Path]:
    return {
        "default": bake(),
        "all-options": bake(**ALL_OPTIONS),
        "emf-postgres": bake(function_name="emf-postgres", use_postgres=True, aws_services="ec2,rds"),
    }


# --------------------------------------------------------------------------------------------- bandit
def run_bandit(paths: list[Path]) -> list[dict]:
    result = subprocess.run(
        [str(BIN / "bandit"), "-q", "-r", *map(str, paths), "-f", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(result.stdout)
    assert not report["errors"], report["errors"]
    return report["results"]


def _bandit_targets(bakes: dict[str, Path]) -> list[Path]:
    return [
        REPO_ROOT / "leanlambda",
        REPO_ROOT / "hooks",
        REPO_ROOT / "local_extensions.py",
        bakes["default"] / "src",
        bakes["all-options"] / "src",
        *example_src_dirs(),
    ]


def test_bandit_reports_no_medium_or_high_issue(bakes, record_property):
    issues = run_bandit(_bandit_targets(bakes))
    serious = [
        f"{i['issue_severity']} {i['test_id']} {i['filename']}:{i['line_number']} {i['issue_text']}"
        for i in issues
        if i["issue_severity"] in ("MEDIUM", "HIGH")
    ]
    low = [
        f"{i['test_id']} {i['filename']}:{i['line_number']}" for i in issues if i["issue_severity"] == "LOW"
    ]
    record_property("bandit_low_issues", low)
    assert not serious, "\n".join(serious)


# -------------------------------------------------------------------------------------------- secrets
AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")
SECRET_NAME = re.compile(r"(?i)(password|passwd|pwd|secret|token|api_?key|access_?key)")
# literals that look like secrets by name but are not: moto's documented fake credentials, the names
# of environment variables, ARNs/ARN templates, and empty strings.
HARMLESS_LITERAL = re.compile(r"^(|testing|[A-Z][A-Z0-9_]*|arn:[^ ]*|\$\{[^}]*\})$")
# detect-secrets "Secret Keyword" lines that are not secrets (each category is justified in the doc)
REVIEW_CORPUS = REPO_ROOT / "tests" / "data" / "review"  # wildcard grants there are the review's test cases
KEYWORD_FALSE_POSITIVES = [
    re.compile(r"""["']testing["']"""),  # moto's fake credentials
    re.compile(r"""=\s*["'][A-Z][A-Z0-9_]*["']"""),  # the name of an environment variable
    re.compile(r"secretsmanager:[A-Za-z]+"),  # IAM action names
    re.compile(r"arn:aws:secretsmanager:"),  # a secret's ARN (not its value)
    re.compile(
        r"""^\s*"secrets": "(pass|fail|warn|skip)",?$"""
    ),  # the review corpus's verdict for check `secrets`
]


def text_files(roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        candidates = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in candidates:
            if _is_excluded(path) or path.suffix in (".pyc", ".zip", ".so", ".whl"):
                continue
            yield path


def literal_secrets(path: Path) -> list[str]:
    """String literals assigned or passed under a secret-looking name, in Python source."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return []
    found = []

    def check(name: str | None, value: ast.AST, line: int) -> None:
        if (
            name
            and SECRET_NAME.search(name)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
            and not HARMLESS_LITERAL.match(value.value)
        ):
            found.append(f"{path}:{line} {name} = {value.value[:4]}...")

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
                check(name, node.value, node.lineno)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            check(node.target.id, node.value, node.lineno)
        elif isinstance(node, ast.keyword):
            check(node.arg, node.value, node.value.lineno)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    check(key.value, value, value.lineno)
    return found


def key_material(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []
    hits = [f"{path}: AWS access key id" for _ in AWS_KEY_ID.finditer(text)]
    hits += [f"{path}: private key" for _ in PRIVATE_KEY.finditer(text)]
    return hits


def shipped_code(bakes: dict[str, Path]) -> list[Path]:
    """Code that runs outside tests: toolkit, hooks, functions' src and templates."""
    roots = [REPO_ROOT / "leanlambda", REPO_ROOT / "hooks", *example_src_dirs()]
    roots += [bakes[name] / "src" for name in bakes]
    return roots


def test_no_key_material_in_repository_or_generated_output(bakes):
    files = [*repo_files(), *text_files(list(bakes.values()))]
    hits = [hit for path in files for hit in key_material(path)]
    assert not hits, "\n".join(hits)
    assert len(files) > 100


def test_no_password_literal_in_shipped_code(bakes):
    hits = [
        hit
        for path in text_files(shipped_code(bakes))
        if path.suffix == ".py"
        for hit in literal_secrets(path)
    ]
    assert not hits, "\n".join(hits)


def test_detect_secrets_finds_only_known_false_positives(bakes, tmp_path, record_property):
    staging = tmp_path / "generated"
    for name, path in bakes.items():
        shutil.copytree(path, staging / name, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    files = [str(p.relative_to(REPO_ROOT)) for p in repo_files()]
    reports = []
    for cwd, args in ((REPO_ROOT, files), (staging, ["--all-files", "."])):
        result = subprocess.run(
            [str(BIN / "detect-secrets"), "scan", *args], cwd=cwd, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, result.stderr[-2000:]
        reports.append((cwd, json.loads(result.stdout)["results"]))
    unexplained, explained = [], 0
    for cwd, results in reports:
        for filename, secrets in results.items():
            lines = (cwd / filename).read_text(encoding="utf-8", errors="replace").splitlines()
            for secret in secrets:
                line = lines[secret["line_number"] - 1]
                where = f"{filename}:{secret['line_number']} {secret['type']}"
                if secret["type"] == "Secret Keyword" and any(
                    p.search(line) for p in KEYWORD_FALSE_POSITIVES
                ):
                    explained += 1
                elif (
                    secret["type"] == "Secret Keyword"
                    and "/tests/" in f"/{filename}"
                    and "noqa: S105" in line
                ):
                    explained += 1  # a test's canary value, marked as such
                elif (
                    secret["type"] == "Secret Keyword"
                    and f"/{filename}".startswith(("/tests/", "/benchmarks/"))
                    and "MasterUserPassword=" in line
                ):
                    explained += 1  # the password of a moto-only RDS instance (tests, benchmarks)
                else:
                    unexplained.append(f"{where}: {line.strip()[:100]}")
    record_property("detect_secrets_explained", explained)
    assert not unexplained, "\n".join(unexplained)


@pytest.mark.parametrize("fixture", ["secrets"])
def test_secret_scan_catches_the_bad_fixture(fixture, function_copy):
    function = apply_bad_fixture(function_copy(), BAD_FIXTURES / fixture)
    hits = [hit for path in function.joinpath("src").rglob("*.py") for hit in literal_secrets(path)]
    assert hits, "the password-literal scan missed tests/fixtures/bad/secrets"


# ------------------------------------------------------------------------------------------------ IAM
BROAD_MANAGED = re.compile(r"(AdministratorAccess|PowerUserAccess|FullAccess|IAMFullAccess)")


def load_template(path: Path) -> dict:
    from cfnlint.decode.cfn_yaml import load

    return load(str(path))


def wildcard_grants(template: dict) -> list[str]:
    found: list[str] = []

    def actions(statement: dict) -> list[str]:
        value = statement.get("Action", statement.get("NotAction", []))
        return [value] if isinstance(value, str) else [a for a in value if isinstance(a, str)]

    def walk(node, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Statement":
                    for statement in value if isinstance(value, list) else [value]:
                        if not isinstance(statement, dict):
                            continue
                        if "NotAction" in statement and statement.get("Effect") == "Allow":
                            found.append(f"{where}: Allow with NotAction")
                        for action in actions(statement):
                            if action == "*" or action.endswith(":*"):
                                found.append(f"{where}: action {action!r}")
                elif key in ("Policies", "ManagedPolicyArns"):
                    for policy in value if isinstance(value, list) else [value]:
                        if isinstance(policy, str) and BROAD_MANAGED.search(policy):
                            found.append(f"{where}: managed policy {policy}")
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")

    walk(template.get("Resources", {}), "Resources")
    return found


def all_templates(bakes: dict[str, Path]) -> list[Path]:
    in_repo = [
        path
        for path in repo_files()
        if path.name == "template.yaml" and "{{" not in str(path) and REVIEW_CORPUS not in path.parents
    ]
    return in_repo + [path / "template.yaml" for path in bakes.values()]


def test_no_wildcard_iam_action_in_any_template(bakes, record_property):
    templates = all_templates(bakes)
    assert len(templates) >= 3 + len(example_src_dirs())
    problems = [
        f"{path.relative_to(path.parents[1])}: {grant}"
        for path in templates
        for grant in wildcard_grants(load_template(path))
    ]
    record_property("templates_checked", len(templates))
    assert not problems, "\n".join(problems)


def test_iam_walk_catches_the_bad_fixture(function_copy):
    function = apply_bad_fixture(function_copy(), BAD_FIXTURES / "iam-least-privilege")
    assert wildcard_grants(load_template(function / "template.yaml"))


# ------------------------------------------------------------------------------------------------ SQL
EXECUTE_NAMES = {"execute", "executemany", "execute_values", "execute_batch", "mogrify"}


def _is_built_string(node: ast.AST | None) -> str | None:
    """Why this expression is a string built from values, or None."""
    if isinstance(node, ast.JoinedStr) and any(isinstance(v, ast.FormattedValue) for v in node.values):
        return "f-string"
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _stringish(node.left):
        return "% formatting"
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Add)
        and (_stringish(node.left) or _stringish(node.right))
    ):
        return "concatenation"
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and _stringish(node.func.value)
    ):
        return ".format()"
    return None


def _stringish(node: ast.AST) -> bool:
    return (
        (isinstance(node, ast.Constant) and isinstance(node.value, str))
        or isinstance(node, ast.JoinedStr)
        or (isinstance(node, ast.BinOp) and (_stringish(node.left) or _stringish(node.right)))
    )


def unparameterised_sql(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # names assigned in the module or any function, for one level of indirection (query = f"...")
    assigned: dict[str, list[ast.AST]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name not in EXECUTE_NAMES:
            continue
        args = list(node.args)
        if name in ("execute_values", "execute_batch") and args:
            args = args[1:]  # (cursor, sql, ...)
        sql = args[0] if args else next((k.value for k in node.keywords if k.arg in ("query", "sql")), None)
        candidates = [sql]
        if isinstance(sql, ast.Name):
            candidates += assigned.get(sql.id, [])
        for candidate in candidates:
            why = _is_built_string(candidate)
            if why:
                found.append(f"{path}:{node.lineno} {name}() with SQL built by {why}")
    return found


def sql_sources(bakes: dict[str, Path]) -> list[Path]:
    roots = [*example_src_dirs(), *(path / "src" for path in bakes.values())]
    return [path for root in roots for path in sorted(root.rglob("*.py")) if "__pycache__" not in path.parts]


def test_every_sql_statement_is_parameterised(bakes, record_property):
    sources = sql_sources(bakes)
    calls = sum(
        1
        for path in sources
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and (
            getattr(node.func, "attr", None) in EXECUTE_NAMES
            or getattr(node.func, "id", None) in EXECUTE_NAMES
        )
    )
    record_property("sql_calls_checked", calls)
    problems = [problem for path in sources for problem in unparameterised_sql(path)]
    assert not problems, "\n".join(problems)
    assert calls > 0


def test_sql_walk_catches_the_bad_fixture(function_copy):
    function = apply_bad_fixture(function_copy(), BAD_FIXTURES / "sql-params")
    assert any(unparameterised_sql(path) for path in function.joinpath("src").rglob("*.py"))


# ------------------------------------------------------------------------------------------ pip-audit
def test_layer_requirements_pass_pip_audit(record_property):
    audit = BIN / "pip-audit"
    if not audit.exists():
        pytest.skip("pip-audit is not installed in this environment")
    requirements = LAYER_LOCK if LAYER_LOCK.is_file() else LAYER_REQUIREMENTS
    result = subprocess.run(
        [
            str(audit),
            "-r",
            str(requirements),
            "--no-deps",
            "--disable-pip",
            "-f",
            "json",
            "--progress-spinner",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.skip(f"pip-audit could not run: {result.stderr.strip().splitlines()[-1:]}")
    dependencies = report.get("dependencies", [])
    audited = [dep for dep in dependencies if "skip_reason" not in dep]
    vulnerable = [
        f"{dep['name']} {dep['version']}: {[v['id'] for v in dep['vulns']]}"
        for dep in audited
        if dep.get("vulns")
    ]
    record_property("pip_audit_audited", len(audited))
    assert not vulnerable, "\n".join(vulnerable)
    if not audited:
        reasons = sorted({dep["skip_reason"].split(":")[0] for dep in dependencies})
        pytest.skip(f"pip-audit audited none of {len(dependencies)} pinned packages: {reasons}")


# ---------------------------------------------------------------------------- YAML alias bomb (issue 14)
ALIAS_BOMB = "\n".join(
    [
        "Metadata:",
        '  l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]',
        *(f"  l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 10)),
    ]
)
"""Nine levels of nine aliases: under 2 KB of YAML, 9**10 (3.5 billion) strings once expanded."""


@pytest.mark.parametrize("section", ["Metadata", "Resources"])
def test_review_of_an_alias_bomb_ends_with_one_line(function_copy, section):
    function_dir = function_copy()
    template = function_dir / "template.yaml"
    text = template.read_text()
    anchors = ALIAS_BOMB.split("\n", 1)[1]  # the bomb without its "Metadata:" line
    assert f"\n{section}:\n" in text
    template.write_text(text.replace(f"\n{section}:\n", f"\n{section}:\n{anchors}\n", 1))
    assert len(ALIAS_BOMB) < 2048
    result = subprocess.run(
        [sys.executable, "-m", "leanlambda", "review", str(function_dir)],
        capture_output=True,
        text=True,
        timeout=90,  # the unfixed review walked the expanded tree for minutes
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "alias" in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_a_template_with_ordinary_aliases_still_loads(tmp_path):
    from leanlambda.cfn_yaml import load_template

    path = tmp_path / "template.yaml"
    path.write_text("Globals: &g {Timeout: 3}\nResources:\n  Fn: {Properties: *g, Tags: !Ref X}\n")
    assert load_template(path)["Resources"]["Fn"] == {"Properties": {"Timeout": 3}, "Tags": {"Ref": "X"}}


# ---------------------------------------------------- a server that trickles its body (issue 14)
TRICKLE_BODY = b'[{"market": "KRW-BTC", "korean_name": "x", "english_name": "Bitcoin"}]'
TRICKLE_BUDGET_S = 2.5
"""The invocation's time left in the test: the request must end within it, not after the body."""


class _TrickleHandler(BaseHTTPRequestHandler):
    """Answers every GET with a valid JSON body, one byte a second: each read is quick, the whole slow.
    Under /slow-headers the status line comes at once and a header line trickles instead."""

    def do_GET(self):
        if self.path.startswith("/slow-headers"):
            self._trickle(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 200 + b"\r\n\r\n[]")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(TRICKLE_BODY)))
        self.end_headers()
        self._trickle(TRICKLE_BODY)

    def _trickle(self, data: bytes) -> None:
        try:
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass  # the client hung up: what the deadline is for

    def log_message(self, *args):
        pass


@pytest.fixture
def trickling_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TrickleHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


TRICKLE_PROBE = """
import sys, time
sys.path.insert(0, sys.argv[1])
import requests
from {module} import upbit, web
from {module}.pipeline import Deadline, DeadlineExceeded

url, budget, how = sys.argv[2] + sys.argv[5], float(sys.argv[3]), sys.argv[4]
started = time.monotonic()
deadline = Deadline(lambda: int((started + budget - time.monotonic()) * 1000), safety_margin_ms=0)
try:
    if how == "upbit":
        upbit.API_URL = url
        upbit.UpbitClient(sleep=deadline.sleep).markets()
    else:
        total = web.budget_s(deadline, 60)
        web.fetch(requests.Session(), "GET", url + "/any", total, 3, 10)
    outcome = "finished"
except (DeadlineExceeded, upbit.UpbitError, web.RequestTimedOut) as error:
    outcome = type(error).__name__
print(outcome, time.monotonic() - started)
"""


@pytest.mark.parametrize("where", ["", "/slow-headers"], ids=["body", "headers"])
@pytest.mark.parametrize("how", ["upbit", "helper"])
def test_a_trickling_server_cannot_keep_a_request_past_its_deadline(bake, trickling_server, how, where):
    function_dir = bake(function_name="trickle-probe", use_upbit=True)
    module = function_dir.name.replace("-", "_")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            TRICKLE_PROBE.format(module=module),
            str(function_dir / "src"),
            trickling_server,
            str(TRICKLE_BUDGET_S),
            how,
            where,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    outcome, elapsed = result.stdout.split()
    # The body alone takes len(TRICKLE_BODY) seconds (about 70) to arrive; the request gives up at the
    # deadline instead, and says so.
    assert outcome in {"DeadlineExceeded", "UpbitError", "RequestTimedOut"}, result.stdout
    assert float(elapsed) < 1.5 * TRICKLE_BUDGET_S, result.stdout
    assert len(TRICKLE_BODY) > 10 * TRICKLE_BUDGET_S
