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
MAX_ALIASES = 1_000
"""CloudFormation templates rarely use YAML aliases at all; a thousand is generous."""
MAX_EXPANDED_NODES = 1_000_000
"""Nodes once every alias is expanded, as a reader walking the tree sees them. A template body is at
most 1 MB, so a real one stays far below; a 2 KB alias bomb ("billion laughs") expands to 10**9."""


class TemplateTooLarge(ValueError):
    """The YAML expands beyond what any CloudFormation template can hold."""


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader plus every `!Tag`, mapped to its `Fn::Tag` (or `Ref`/`Condition`) long form.

    Aliases are counted, and the tree's size with aliases expanded is measured on the composed
    node graph (shared nodes counted once per use, computed once), so an alias bomb fails in
    milliseconds instead of hanging whatever walks the result.
    """

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases = getattr(self, "_aliases", 0) + 1
            if self._aliases > MAX_ALIASES:
                raise TemplateTooLarge(f"more than {MAX_ALIASES} YAML aliases")
        # types-PyYAML says int; PyYAML passes a mapping value's key node there
        return super().compose_node(parent, index)  # type: ignore[arg-type]

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None and _expanded_size(node) > MAX_EXPANDED_NODES:
            raise TemplateTooLarge(
                f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes (an alias bomb?)"
            )
        return node


def _expanded_size(root: yaml.Node) -> int:
    """Nodes in the tree with every alias expanded; each distinct node is sized once."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            sizes[id(node)] = 1
            continue
        if children_done:
            sizes[id(node)] = min(1 + sum(sizes[id(child)] for child in children), MAX_EXPANDED_NODES + 1)
        else:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix in _SCALAR_AS_LIST and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)  # the only other kind of node the composer makes
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
