"""`leanlambda new --from EXAMPLE_DIR`: each Makenaide example copied under a new name, outside the
repository, passes its own `make test`, `make lint` and `make review`, is a clean git repository with one
commit, and is linked for cruft (`cruft check` succeeds, `cruft update` has nothing to do). Bad input ends
with one line on stderr and nothing written: a folder that is not an example, an example whose
recorded answers carry a Jinja payload (it would run a shell command at bake time), an output that
exists, edits that conflict with the overrides.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
BIN = Path(sys.executable).parent
EXAMPLE_NAMES = [path.parent.name for path in sorted(EXAMPLES.glob("*/.cookiecutter.json"))]
OLD_NAMES = [name for example in EXAMPLE_NAMES for name in (example, example.replace("-", "_"))]


def leanlambda(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "leanlambda"), *arguments], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTEST_", "DATABASE_URL"))}
    return {**env, "PYTHONDONTWRITEBYTECODE": "1", "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", **extra}


def git(function_dir: Path, *arguments: str) -> str:
    result = subprocess.run(["git", *arguments], cwd=function_dir, capture_output=True, text=True, check=True)
    return result.stdout


def answers(function_dir: Path) -> dict:
    return json.loads((function_dir / ".cookiecutter.json").read_text())


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_a_copy_of_each_example_tests_lints_and_is_linked_for_cruft(example, tmp_path, request):
    new_name = "copy-" + example.removeprefix("makenaide-")
    new_module = new_name.replace("-", "_")
    old_module = answers(EXAMPLES / example)["__module_name"]
    outside = tmp_path / "elsewhere"  # not under the repository: nothing may reach back into it

    made = leanlambda(
        "new", "--from", str(EXAMPLES / example), "--set", f"function_name={new_name}", str(outside)
    )

    assert made.returncode == 0, made.stderr
    copy = outside / new_name
    assert made.stdout.splitlines()[0] == str(copy)
    assert answers(copy)["__module_name"] == new_module
    assert not (copy / "src" / old_module).exists()
    for user_file in ("steps.py",):
        ours = (copy / "src" / new_module / user_file).read_text()
        theirs = (EXAMPLES / example / "src" / old_module / user_file).read_text()
        assert ours == theirs.replace(old_module, new_module).replace(example, new_name)
    template = (copy / "template.yaml").read_text()
    assert f'FunctionName: "{new_name}"' in template
    assert f"Handler: {new_module}.handler.lambda_handler" in template
    assert f"from {new_module}" in (copy / "tests" / "test_steps.py").read_text()
    readme = (copy / "README.md").read_text()
    assert new_name in readme and example not in readme
    assert git(copy, "rev-list", "--count", "HEAD").strip() == "1"
    assert git(copy, "status", "--porcelain") == ""

    database = request.getfixturevalue("session_postgres").database(f"copy_{new_module}")
    env = clean_env(DATABASE_URL=database)
    tools = [f"PYTHON={sys.executable}", f"CFN_LINT={BIN / 'cfn-lint'}", f"LEANLAMBDA={BIN / 'leanlambda'}"]
    checked = subprocess.run(
        ["make", "test", "lint", "review", *tools],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert checked.returncode == 0, checked.stdout[-6000:] + checked.stderr[-3000:]
    assert " passed" in checked.stdout
    assert git(copy, "status", "--porcelain") == ""  # what the tests wrote is ignored: cruft update may run

    cruft = [str(BIN / "cruft")]
    check = subprocess.run([*cruft, "check"], cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr
    update = subprocess.run(
        [*cruft, "update", "-y"], cwd=copy, env=env, capture_output=True, text=True, timeout=300
    )
    assert update.returncode == 0, update.stdout + update.stderr
    assert "up to date" in update.stdout


def test_overrides_beyond_the_name_reach_the_examples_own_template_yaml(tmp_path):
    made = leanlambda(
        "new",
        "--from",
        str(EXAMPLES / "makenaide-scanner"),
        "--set",
        "function_name=big-scan",
        "--set",
        "memory_size=512",
        "--set",
        "timeout=300",
        str(tmp_path),
    )

    assert made.returncode == 0, made.stderr
    template = (tmp_path / "big-scan" / "template.yaml").read_text()
    assert "MemorySize: 512" in template and "Timeout: 300" in template  # the template's lines, new answers
    assert "BLACKLIST: !Ref Blacklist" in template  # the example's own lines, kept
    assert "makenaide-scanner" not in template


def test_edits_that_overlap_an_override_are_a_conflict_and_nothing_is_written(tmp_path):
    example = tmp_path / "mine"
    shutil.copytree(EXAMPLES / "makenaide-scanner", example, ignore=shutil.ignore_patterns("__pycache__"))
    yaml = example / "template.yaml"
    yaml.write_text(yaml.read_text().replace("MemorySize: 256", "MemorySize: 384"))
    out = tmp_path / "out"

    made = leanlambda("new", "--from", str(example), "--set", "memory_size=512", str(out))

    assert made.returncode == 2
    assert len(made.stderr.strip().splitlines()) == 1
    assert "cannot carry template.yaml over" in made.stderr
    assert not out.exists()


def test_a_folder_that_is_not_an_example_is_refused_with_one_line(tmp_path):
    (tmp_path / "plain").mkdir()
    made = leanlambda("new", "--from", str(tmp_path / "plain"), str(tmp_path / "out"))
    assert made.returncode == 2
    assert len(made.stderr.strip().splitlines()) == 1
    assert "holds no .cookiecutter.json" in made.stderr
    assert not (tmp_path / "out").exists()


def test_a_jinja_payload_in_recorded_answers_never_runs(tmp_path):
    example = tmp_path / "hostile"
    shutil.copytree(EXAMPLES / "makenaide-integrated-orchestrator", example)
    marker = tmp_path / "pwned"
    recorded = answers(example)
    payload = "{{ cycler.__init__.__globals__.os.system('touch " + str(marker) + "') }}"
    recorded["description"] = "Hi " + payload
    (example / ".cookiecutter.json").write_text(json.dumps(recorded))

    made = leanlambda("new", "--from", str(example), "--set", "function_name=harmless", str(tmp_path / "out"))

    assert made.returncode == 2
    assert len(made.stderr.strip().splitlines()) == 1
    assert "answer 'description' holds template syntax" in made.stderr
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_an_existing_copy_is_left_alone(tmp_path):
    target = tmp_path / "copy-scanner"
    target.mkdir()
    (target / "mine.txt").write_text("keep me\n")

    made = leanlambda(
        "new",
        "--from",
        str(EXAMPLES / "makenaide-scanner"),
        "--set",
        "function_name=copy-scanner",
        str(tmp_path),
    )

    assert made.returncode == 2
    assert "already exists" in made.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["copy-scanner"]  # no staging folder left
    assert [path.name for path in target.iterdir()] == ["mine.txt"]


def test_a_symbolic_link_in_the_example_is_refused(tmp_path):
    example = tmp_path / "linked"
    shutil.copytree(EXAMPLES / "makenaide-integrated-orchestrator", example)
    (example / "events" / "secret.json").symlink_to("/etc/passwd")

    out = tmp_path / "out"
    made = leanlambda("new", "--from", str(example), "--set", "function_name=linked-copy", str(out))

    assert made.returncode == 2
    assert "is a symbolic link" in made.stderr
    assert not (tmp_path / "out").exists()
