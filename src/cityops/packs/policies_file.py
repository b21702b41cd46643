"""policies.yaml: eligibility policies, "enjoy without applying" (see
`cityops.domain.onestop.policies`). A list of policies, each with its condition in `when`.

A pack without the file gets the default set (`packs/policies.yaml`), less the policies of
departments the city lacks or naming licence types its catalogue does not have.
"""

from __future__ import annotations

import functools
from importlib import resources

import msgspec

from cityops.domain.city import CityPack
from cityops.domain.onestop.policies import Policy, PolicyError, check_policies
from cityops.packs.codec import describe, dump_yaml, load_yaml
from cityops.packs.errors import PackError
from cityops.packs.services_file import services_of

NAME = "policies.yaml"


def policies_from_yaml(data: bytes, name: str = NAME) -> list[Policy]:
    doc = load_yaml(data, name)
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise PackError(f"{name}: must be a list of policies")
    out = []
    for i, item in enumerate(doc):
        label = item.get("id") if isinstance(item, dict) else None
        where = f"{name}: policy {i}" + (f" ({label})" if isinstance(label, str) else "")
        try:
            out.append(msgspec.convert(item, Policy))
        except msgspec.ValidationError as error:
            raise PackError(f"{where}: {describe(error)}") from None
    try:
        check_policies(out)
    except PolicyError as error:
        raise PackError(f"{name}: {error}") from None
    return out


def policies_to_yaml(policies: list[Policy]) -> bytes:
    return dump_yaml([msgspec.to_builtins(p) for p in policies])


@functools.cache
def _defaults() -> tuple[Policy, ...]:
    data = resources.files("cityops.packs").joinpath(NAME).read_bytes()
    return tuple(policies_from_yaml(data, f"cityops/packs/{NAME}"))


def default_policies(departments: list[str], licence_types: set[str]) -> list[Policy]:
    have = set(departments)
    return [p for p in _defaults()
            if p.department in have and p.condition.licence_types() <= licence_types]


def default_for(pack: CityPack) -> list[Policy]:
    types = {t.code for t in services_of(pack).licences}
    return default_policies([d.code for d in pack.departments], types)


def policies_of(pack: CityPack) -> list[Policy]:
    """The pack's policies, or the default ones for a pack made in code without them."""
    return pack.policies if pack.policies is not None else default_for(pack)
