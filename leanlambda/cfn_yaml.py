"""Read CloudFormation/SAM YAML with its short-form tags (!Ref, !Sub, !GetAtt ...).

PyYAML's safe loader rejects those tags; cfn-lint's own decoder understands them but costs most of a
second to import, too slow for `package` and `invoke`. Tags become the long form (`{"Ref": ...}`), the
shape every check already reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_SCALAR_AS_LIST = frozenset({"GetAtt"})


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader plus every `!Tag`, mapped to its `Fn::Tag` (or `Ref`/`Condition`) long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix in _SCALAR_AS_LIST and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    key = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    return {key: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """The template as plain dicts/lists; raises ValueError when it is not a YAML mapping."""
    with Path(path).open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506  # nosec B506 - a SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a CloudFormation template (no top-level mapping)")
    return data


def is_intrinsic(value: Any) -> bool:
    """True for `{"Ref": ...}` / `{"Fn::...": ...}`: a value CloudFormation computes, not a literal."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")
