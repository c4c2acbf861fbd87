"""What the toolkit relies on in the template (leanlambda/template_contract.py) holds in a real bake.

Renaming a module, class, constant or switch in the template without changing the contract would make
`leanlambda review` judge generated functions by names they no longer have: these tests fail first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from leanlambda import known_packages, template_contract
from leanlambda.review.locate import find_functions
from leanlambda.review.source import load_sources
from leanlambda.review.template_checks import declared_worst_case
from leanlambda.template_contract import pre_gen_hook, user_owned_entries


def _tree(path: Path) -> ast.Module:
    assert path.is_file(), f"the template no longer generates {path.name}"
    return ast.parse(path.read_text(encoding="utf-8"))


def _top_level_classes(path: Path) -> set[str]:
    return {node.name for node in _tree(path).body if isinstance(node, ast.ClassDef)}


@pytest.fixture(scope="module")
def function(default_bake: Path):
    (found,) = find_functions(default_bake)
    return found


CLASSES = [
    *template_contract.RUNTIME_CLASSES,
    (template_contract.WAIT_HELPERS_MODULE, template_contract.WAIT_HELPERS_CLASS),
    (template_contract.HANDLER_MODULE, template_contract.FAILED_RUN_CLASS),
]


@pytest.mark.parametrize("module, class_name", CLASSES)
def test_each_promised_class_is_defined_in_its_module(function, module, class_name):
    assert class_name in _top_level_classes(function.package_dir / f"{module}.py")


def test_the_template_names_the_handler_module_of_the_contract(function):
    assert function.module == f"{function.package}.{template_contract.HANDLER_MODULE}"


def test_the_steps_module_declares_its_worst_case(function):
    """review's timeouts check finds the declaration where the contract says it is."""
    steps = load_sources(function).by_basename(template_contract.STEPS_MODULE)
    assert steps, f"the template no longer generates {template_contract.STEPS_MODULE}.py"
    assert declared_worst_case(steps) is not None, f"no {template_contract.WORST_CASE_NAME} = <number>"


def test_the_handler_reads_the_always_return_switch_that_template_yaml_sets(function):
    handler = (function.package_dir / f"{template_contract.HANDLER_MODULE}.py").read_text(encoding="utf-8")
    assert f'"{template_contract.ALWAYS_RETURN_ENV}"' in handler
    assert template_contract.ALWAYS_RETURN_ENV in function.environment()


def test_the_user_owned_entries_exist_and_hold_the_steps(default_bake: Path, function):
    entries = user_owned_entries(default_bake)
    assert entries, "pyproject.toml lists no [tool.cruft] skip"
    for entry in entries:
        assert (default_bake / entry).exists(), entry
    package = function.package_dir.relative_to(default_bake).as_posix()
    assert template_contract.is_user_owned(f"{package}/{template_contract.STEPS_MODULE}.py", entries)
    assert not template_contract.is_user_owned(f"{package}/{template_contract.HANDLER_MODULE}.py", entries)


def test_the_pre_gen_hook_offers_what_leanlambda_new_calls():
    hook = pre_gen_hook()
    assert hook is pre_gen_hook()  # loaded once
    assert callable(hook.validate_answers)
    assert issubclass(hook.InvalidAnswer, ValueError)
    assert all(callable(validator) for validator in hook.FIELD_VALIDATORS.values())


def test_the_hooks_shadowed_modules_cover_the_toolkits_layer_packages():
    """The hook keeps its own copy of these names: it runs in cookiecutter's Python, without the toolkit.

    A function module named after a package of the layer would shadow it (or be shadowed) on sys.path,
    so every name the toolkit knows as a layer or runtime package must be refused by the hook too.
    """
    missing = known_packages.LAYER_PACKAGES - pre_gen_hook().SHADOWED_MODULES
    assert missing == frozenset()
