"""Reading manifests: YAML as people mean it, not as YAML 1.1 guesses it.

PyYAML follows YAML 1.1, where `on`, `off`, `yes` and `no` are booleans and `10:30` is the
integer 630. A geofence rule says `on: enter`, and a time of day is easy to leave unquoted, so
the manifest loader keeps only the YAML 1.2 core scalars (true/false, plain decimal numbers)
and refuses duplicate keys, which YAML would otherwise resolve silently to the last one.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class DuplicateKey(yaml.YAMLError):
    pass


class _CoreLoader(yaml.SafeLoader):
    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise DuplicateKey(f"line {line}: key {key!r} appears twice in one mapping")
            seen.add(key)
        return super().construct_mapping(node, deep)


_CoreLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CoreLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_CoreLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789"))
# Plain decimal, so that 012 is twelve (YAML 1.1 would read it as octal ten).
_CoreLoader.add_constructor(_INT, lambda loader, node: int(loader.construct_scalar(node), 10))
_CoreLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(r"^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"),
)


def load_yaml(text: str) -> Any:
    """Parse one YAML document with YAML 1.2 core scalars and no duplicate keys."""
    return yaml.load(text, Loader=_CoreLoader)  # noqa: S506 - a SafeLoader subclass
