"""Bundle the Cookiecutter template into the wheel, so `leanlambda new` works from an installed package.

pyproject.toml holds all metadata; this file only adds a build_py step that copies cookiecutter.json,
local_extensions.py, hooks/ and the template folder into build_lib/leanlambda/_template. Editable
installs read the repository root instead (leanlambda/template_source.py), so nothing is copied for them.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
TEMPLATE_ITEMS = ("cookiecutter.json", "local_extensions.py", "hooks", "{{cookiecutter.function_name}}")
BUNDLED_DIR = "_template"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", "build")


class BuildPyWithTemplate(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "leanlambda" / BUNDLED_DIR
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for name in TEMPLATE_ITEMS:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=IGNORED)
            elif source.is_file():
                shutil.copy2(source, target / name)


setup(cmdclass={"build_py": BuildPyWithTemplate})
